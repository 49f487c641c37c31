// langevin_grad.wgsl — gradient of langevin.wgsl's scale, every step of a stack at once:
//   dscale[first + s·step] += Σ_{b < rows} Σ_{i < cols} du[s·stride + b, i] · clamp(g[s·stride + b, i], −c, c)
// for each segment s of the stacks du and g (NaN gradients count as 0; the padding rows
// of a segment, b ≥ rows, are skipped). The network's drift receives du unchanged. du's
// rows may be wider than g's (du_cols ≥ cols): a learned-variance network's output is
// [u, h], and only the drift u carries the Langevin term.
//
// Bindings (group 0):
//   0: du      array<f32>, [S·stride, du_cols], read
//   1: g       array<f32>, [S·stride, cols], read
//   2: dscale  array<f32>, [T], read-write
//   3: p       uniform { rows, cols, first, segs, stride, step: u32, clip c: f32, du_cols: u32 }
// Dispatch: 1 × S workgroups of 256, one per segment; each invocation sums a fixed stride
// of its segment, then a fixed tree combines the partial sums, so the result is
// deterministic. Segments write distinct entries of dscale, so no two workgroups race.
//
//!include finite_clamp.wgsl

struct Params {
	rows: u32,
	cols: u32,
	first: u32,
	segs: u32,
	stride: u32,
	step: u32,
	clip: f32,
	du_cols: u32,
}

@group(0) @binding(0) var<storage, read> du: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dscale: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
	let base = wid.y * p.stride * p.cols;
	let dbase = wid.y * p.stride * p.du_cols;
	let n = p.rows * p.cols; // the segment's rows are contiguous: padding only follows them
	var s = 0.0;
	for (var i = lid; i < n; i += 256u) {
		let du_i = select(dbase + (i / p.cols) * p.du_cols + i % p.cols, dbase + i, p.du_cols == p.cols);
		s += du[du_i] * finite_clamp(g[base + i], p.clip);
	}
	part[lid] = s;
	for (var h = 128u; h > 0u; h >>= 1u) {
		workgroupBarrier();
		if (lid < h) {
			part[lid] += part[lid + h];
		}
	}
	if (lid == 0u) {
		let k = p.first + wid.y * p.step;
		dscale[k] += part[0];
	}
}
