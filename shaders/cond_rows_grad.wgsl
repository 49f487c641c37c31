// cond_rows_grad.wgsl — the gradient of cond_rows.wgsl with respect to its two tables:
//   table[p.row, c] += Σ_b dy[b, c]                      (the time embedding of step k)
//   emb[g, c]       += Σ_{b : labels[b] = g} dy[b, c]    (every condition's embedding)
//
// Bindings (group 0):
//   0: dy      array<f32>, [B, C], read
//   1: table   array<f32>, [T, C], read-write (row p.row accumulated into)
//   2: emb     array<f32>, [G, C], read-write (accumulated into)
//   3: labels  array<u32>, [B], read (rows with a label ≥ G reach only the time row)
//   4: p       uniform { rows_b: u32 (B), cols: u32 (C), row: u32, groups: u32 (G) }
// Invocation (c, g) sums column c over b in increasing order (deterministic): g < G
// into emb[g, c], g = G into table[p.row, c].
// Dispatch: (ceil(C / 64), G + 1, 1) workgroups of 64 along x.

struct Params {
	rows_b: u32,
	cols: u32,
	row: u32,
	groups: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> emb: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	let c = gid.x;
	let g = gid.y;
	if (c >= p.cols || g > p.groups) {
		return;
	}
	var s = 0.0;
	if (g == p.groups) {
		for (var b = 0u; b < p.rows_b; b++) {
			s += dy[b * p.cols + c];
		}
		table[p.row * p.cols + c] += s;
		return;
	}
	for (var b = 0u; b < p.rows_b; b++) {
		if (labels[b] == g) {
			s += dy[b * p.cols + c];
		}
	}
	emb[g * p.cols + c] += s;
}
