// rows_grad.wgsl — column sums of a batch accumulated into rows of a table: the gradient
// of rows.wgsl's broadcast. dy is a stack of S segments of `stride` rows, of which the
// first B are summed (the rest is padding):
//   table[row + s·step, c] += Σ_{b < B} dy[s·stride + b, c],   s = 0..S−1.
// One segment (S = 1, stride = B) is the gradient of one step's AddRow; a stack of every
// step's gradients gives the whole time-embedding gradient in one dispatch.
//
// Bindings (group 0):
//   0: dy     array<f32>, [S·stride, C], read
//   1: table  array<f32>, [T, C], read-write (rows row + s·step accumulated into)
//   2: p      uniform { rows_b: u32 (B), cols: u32 (C), row: u32, segments: u32 (S),
//                       stride: u32, step: u32 }
// Each invocation sums one column of one segment over b in increasing order, so the
// result is deterministic. Dispatch: (ceil(C / 64), S, 1) workgroups of 64 along x.

struct Params {
	rows_b: u32,
	cols: u32,
	row: u32,
	segments: u32,
	stride: u32,
	step: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> table: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	let c = gid.x;
	let seg = gid.y;
	if (c >= p.cols || seg >= p.segments) {
		return;
	}
	let base = seg * p.stride * p.cols;
	var s = 0.0;
	for (var b = 0u; b < p.rows_b; b++) {
		s += dy[base + b * p.cols + c];
	}
	table[(p.row + seg * p.step) * p.cols + c] += s;
}
