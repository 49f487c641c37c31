// cond_rows.wgsl — the input sum of an amortised (conditional) sampler network and the
// activation after it: every row b gets the time embedding of step k AND the learned
// embedding of its condition,
//   h[b, c] = x[b, c] + table[p.row, c] + emb[labels[b], c],   out[b, c] = act(h[b, c])
// (x = the state embedding L_s(z), table = the time embeddings [T, C], emb = the
// condition embeddings [G, C]); with SAVE_PRE, pre receives h for the backward pass.
// Summing a learned row per condition equals concatenating a one-hot condition to the
// state input of L_s. The gradient (of h) is cond_rows_grad.wgsl.
//
// Bindings (group 0):
//   0: x       array<f32>, [B, C], read
//   1: table   array<f32>, [T, C], read
//   2: emb     array<f32>, [G, C], read
//   3: labels  array<u32>, [B], read (a label ≥ G writes NaN into its row: never silent)
//   4: out     array<f32>, [B, C], written
//   5: pre     array<f32>, [B, C], written when SAVE_PRE (the launcher binds a
//              placeholder otherwise)
//   6: p       uniform { rows_b: u32 (B), cols: u32 (C), row: u32, groups: u32 (G),
//                        nan_bits: u32 (0x7FC00000: WGSL has no NaN constant) }
// Overrides: ACT (a kernels.Activation), SAVE_PRE (bool).
// Dispatch: ceil(B·C / 256) workgroups of 256 along x (folded into y beyond 65535).
//!include activations.wgsl

struct Params {
	rows_b: u32,
	cols: u32,
	row: u32,
	groups: u32,
	nan_bits: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> emb: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
override ACT: u32 = 0u;
override SAVE_PRE: bool = false;

@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> pre: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let i = (wid.x + wid.y * nwg.x) * 256u + lid;
	if (i >= p.rows_b * p.cols) {
		return;
	}
	let b = i / p.cols;
	let c = i - b * p.cols;
	let g = labels[b];
	var e = bitcast<f32>(p.nan_bits);
	if (g < p.groups) {
		e = emb[g * p.cols + c];
	}
	let h = src[i] + table[p.row * p.cols + c] + e;
	if (SAVE_PRE) {
		pre[i] = h;
	}
	out[i] = act_fwd(h, ACT);
}
