// rows_grad.wgsl — column sums of a batch accumulated into one row of a table: the
// gradient of rows.wgsl's broadcast, table[row, c] += Σ_b dy[b, c].
//
// Bindings (group 0):
//   0: dy     array<f32>, [B, C], read
//   1: table  array<f32>, [T, C], read-write (row p.row is accumulated into)
//   2: p      uniform { rows_b: u32 (B), cols: u32 (C), row: u32 }
// Each invocation sums one column over b in increasing order, so the result is
// deterministic. Dispatch: ceil(C / 64) workgroups of 64 along x.

struct Params {
	rows_b: u32,
	cols: u32,
	row: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> table: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	let c = gid.x;
	if (c >= p.cols) {
		return;
	}
	var s = 0.0;
	for (var b = 0u; b < p.rows_b; b++) {
		s += dy[b * p.cols + c];
	}
	table[p.row * p.cols + c] += s;
}
