// rows.wgsl — broadcasting one row of a table over a batch. The sampler network adds the
// time embedding of step k to every sample's state embedding: h = s + temb[k]. The
// gradient (column sums into one row) is rows_grad.wgsl.
//
// Bindings (group 0):
//   0: x      array<f32>, [B, C], read
//   1: table  array<f32>, [T, C], read
//   2: out    array<f32>, [B, C], written: out[b, c] = x[b, c] + table[p.row, c]
//   3: p      uniform { rows_b: u32 (B), cols: u32 (C), row: u32 }
// Dispatch: ceil(B·C / 256) workgroups of 256 along x (folded into y beyond 65535).

struct Params {
	rows_b: u32,
	cols: u32,
	row: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn add_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
	let i = (wid.x + wid.y * nwg.x) * 256u + lid;
	if (i >= p.rows_b * p.cols) {
		return;
	}
	let c = i % p.cols;
	out[i] = src[i] + table[p.row * p.cols + c];
}
