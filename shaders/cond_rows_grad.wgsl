// cond_rows_grad.wgsl — the gradient of cond_rows.wgsl with respect to its two tables,
// for a stack dy of S segments of `stride` rows whose first B rows are summed (the rest
// is padding); row b of every segment has condition labels[b]:
//   table[row + s·step, c] += Σ_{b < B} dy[s·stride + b, c]               (time rows)
//   emb[g, c]              += Σ_s Σ_{b < B : labels[b] = g} dy[s·stride + b, c]
// One segment (S = 1, stride = B) is one step's gradient.
//
// Bindings (group 0):
//   0: dy      array<f32>, [S·stride, C], read
//   1: table   array<f32>, [T, C], read-write (rows row + s·step accumulated into)
//   2: emb     array<f32>, [G, C], read-write (accumulated into)
//   3: labels  array<u32>, [B], read (rows with a label ≥ G reach only the time rows)
//   4: p       uniform { rows_b: u32 (B), cols: u32 (C), row: u32, groups: u32 (G),
//                        segments: u32 (S), stride: u32, step: u32 }
// Invocation (c, y) sums column c in increasing order of s then b (deterministic):
// y < G into emb[y, c] over every segment, y = G + s into the time row of segment s.
// Dispatch: (ceil(C / 64), G + S, 1) workgroups of 64 along x.

struct Params {
	rows_b: u32,
	cols: u32,
	row: u32,
	groups: u32,
	segments: u32,
	stride: u32,
	step: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> emb: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	let c = gid.x;
	let y = gid.y;
	if (c >= p.cols || y >= p.groups + p.segments) {
		return;
	}
	var s = 0.0;
	if (y >= p.groups) {
		let seg = y - p.groups;
		let base = seg * p.stride * p.cols;
		for (var b = 0u; b < p.rows_b; b++) {
			s += dy[base + b * p.cols + c];
		}
		table[(p.row + seg * p.step) * p.cols + c] += s;
		return;
	}
	for (var seg = 0u; seg < p.segments; seg++) {
		let base = seg * p.stride * p.cols;
		for (var b = 0u; b < p.rows_b; b++) {
			if (labels[b] == y) {
				s += dy[base + b * p.cols + c];
			}
		}
	}
	emb[y * p.cols + c] += s;
}
