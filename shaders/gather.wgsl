// gather.wgsl — copy rows by index (replay-buffer sampling and insertion).
//
// Bindings (group 0), d = row length, n = number of indices, N = rows of the table:
//   0: src  array<f32>, read:     [N, d] (gather) or [n, d] (scatter)
//   1: idx  array<u32>, read:     [n]
//   2: dst  array<f32>, written:  [n, d] (gather) or [N, d] (scatter; rows not named by
//           idx keep their values)
//   3: params  uniform GatherParams: n u32, d u32, rows u32 (= N), nan_bits u32
//      (0x7FC00000, a quiet NaN: WGSL rejects a NaN constant, so the host supplies it)
// Entries:
//   gather:  dst[i, j] = src[idx[i], j]; a row whose index is ≥ N is filled with NaN
//   scatter: dst[idx[i], j] = src[i, j]; an index ≥ N is skipped; with repeated indices
//            each element gets one of the writers' values, which one is undefined
// Dispatch: one invocation per element of the [n, d] side, 256 per workgroup:
//   Grid1D(n·d, 256) workgroups, folded into (x, y) when above 65535
//   (linear id = (wid.x + wid.y·nwg.x)·256 + lid.x).

struct GatherParams {
	n: u32,
	d: u32,
	rows: u32,
	nan_bits: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> G: GatherParams;

const GATHER_WG: u32 = 256u;

@compute @workgroup_size(256)
fn gather(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let e = (wid.x + wid.y * nwg.x) * GATHER_WG + lid.x;
	if (e >= G.n * G.d) {
		return;
	}
	let i = e / G.d;
	let j = e - i * G.d;
	let r = idx[i];
	if (r >= G.rows) {
		dst[e] = bitcast<f32>(G.nan_bits); // a bad index must show
		return;
	}
	dst[e] = src[r * G.d + j];
}

@compute @workgroup_size(256)
fn scatter(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let e = (wid.x + wid.y * nwg.x) * GATHER_WG + lid.x;
	if (e >= G.n * G.d) {
		return;
	}
	let i = e / G.d;
	let j = e - i * G.d;
	let r = idx[i];
	if (r >= G.rows) {
		return;
	}
	dst[r * G.d + j] = src[e];
}
