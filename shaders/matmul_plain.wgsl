// matmul_plain.wgsl — C = act(op(A)·op(B) + bias) (+ C) without subgroups: the fallback of
// matmul.wgsl for adapters that lack the subgroups feature or have subgroups under 8 lanes.
//
// Bindings (group 0), declared in matmul_common.wgsl:
//   0: a     array<f32>, A: M×K row-major (K×M when TRANS_A), read
//   1: b     array<f32>, B: K×N row-major (N×K when TRANS_B), read
//   2: bias  array<f32>, N elements, read only when HAS_BIAS
//   3: c     array<f32>, C: M×N row-major, written (read first when ACCUMULATE)
//   4: p     uniform Params { m, n, k: u32 }
// Overrides: TRANS_A, TRANS_B, HAS_BIAS, ACCUMULATE: bool; ACT: u32 (a kernels.Activation).
// Dispatch: ceil(N / 64) × ceil(M / 4) workgroups of 16 invocations.
//
// Each invocation computes 4 rows × 4 adjacent columns of C in named vec4 accumulators and
// loads everything it needs itself: 9 GFLOP/s at 1024³ on lavapipe (v1 of matmul.wgsl's notes
// with f32 instead of vec4 loads).

//!include matmul_common.wgsl
//!include activations.wgsl

const WG: u32 = 16u;
const ROWS: u32 = 4u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
	let row0 = wid.y * ROWS;
	let col = (wid.x * WG + lid.x) * 4u;
	let ar = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.m - 1u));
	let cols = cols4(col);

	var c0 = vec4<f32>(0.0);
	var c1 = vec4<f32>(0.0);
	var c2 = vec4<f32>(0.0);
	var c3 = vec4<f32>(0.0);
	for (var kk = 0u; kk < p.k; kk += 4u) {
		let kn = min(4u, p.k - kk);
		// Rows of op(A): a0[t] = op(A)[row0, kk + t], ...; columns of bk: rows of op(B).
		let a0 = a_k4(ar.x, kk, kn);
		let a1 = a_k4(ar.y, kk, kn);
		let a2 = a_k4(ar.z, kk, kn);
		let a3 = a_k4(ar.w, kk, kn);
		let bk = b_k4(kk, kn, cols);
		c0 += a0.x * bk[0] + a0.y * bk[1] + a0.z * bk[2] + a0.w * bk[3];
		c1 += a1.x * bk[0] + a1.y * bk[1] + a1.z * bk[2] + a1.w * bk[3];
		c2 += a2.x * bk[0] + a2.y * bk[1] + a2.z * bk[2] + a2.w * bk[3];
		c3 += a3.x * bk[0] + a3.y * bk[1] + a3.z * bk[2] + a3.w * bk[3];
	}

	store4(row0, col, c0);
	store4(row0 + 1u, col, c1);
	store4(row0 + 2u, col, c2);
	store4(row0 + 3u, col, c3);
}
