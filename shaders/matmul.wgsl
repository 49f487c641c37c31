// matmul.wgsl — C = act(op(A)·op(B) + bias) (+ C), the kernel for adapters with subgroups of
// at least 8 invocations on CPU adapters (lavapipe: 8). matmul_tiled.wgsl serves GPUs.
//
// Bindings (group 0), declared in matmul_common.wgsl:
//   0: a     array<f32>, A: M×K row-major (K×M when TRANS_A), read
//   1: b     array<f32>, B: K×N row-major (N×K when TRANS_B), read
//   2: bias  array<f32>, N elements from p.bias_off on, read only when HAS_BIAS
//   3: c     array<f32>, C: M×N row-major, written (read first when ACCUMULATE)
//   4: aux   array<f32>, M×N: the epilogue's pre-activation (see matmul_common.wgsl)
//   5: p     uniform Params { m, n, k, bias_off: u32 }
// Overrides: TRANS_A, TRANS_B, HAS_BIAS, ACCUMULATE: bool; ACT, EPILOGUE, DERIV_ACT: u32.
// Dispatch: ceil(N / 64) × ceil(M / 32) workgroups of 16 invocations.
//
// Each workgroup computes a 32×64 tile of C; each invocation 32 rows × 4 adjacent columns, held
// in 32 named vec4 accumulators (four Acc8 groups of 8 rows). No workgroup memory, no barriers.
// Per step of 4 k, an invocation loads its own 4×4 block of op(B); the 32×4 block of op(A),
// which every invocation needs whole, is loaded once per subgroup — lane l loads rows
// 8g + l — and handed out with subgroupBroadcast from lanes 0..7. That is what makes it fast
// on lavapipe: there every storage access is a per-lane, bounds-checked scalar access (Mesa
// 25.0 loads once for all lanes only when the offset is a constant or a push constant),
// about 5–10 instructions per element and lane, while a broadcast from a constant lane is
// one shuffle.
//
// Versions, 1024×1024×1024 C = A·B on the 2-core AVX-512 Xeon, lavapipe (Mesa 25.0.7,
// LLVM 15, 256-bit), GPU timestamps over back-to-back dispatches, next to gonum
// blas32.Gemm (v0.17.0, 2 goroutines) in the same process: 19–19.5 GFLOP/s.
//   v1  4×4 per invocation, vec4 loads, every invocation loads its own A      14 GFLOP/s
//       (8×4, 4×8, 2×16, 16×4 blocks; workgroups of 8..64: 11–15)
//   v2  A shared with subgroupBroadcast, 8 rows × 4 columns, vec4 loads        32
//   v3  16 rows                                                                38
//   v4  32 rows, workgroup 16 (vec4 loads: K and N multiples of 4 only)        44
//       (32 rows × 8 columns, 48 or 64 rows, workgroups 8/32/64: 34–39;
//        8 k per iteration instead of 4: 20 — the accumulators spill)
//   v5  v4 with f32 loads for any M, N, K and both transposes (this file)     37–39  (1.9× gonum)
//       A·B, Aᵀ·B and A·Bᵀ all run at 36–38.
// Compile time (lavapipe, cold cache) came from the epilogue: 32 inlined copies with the
// activation as a uniform switch took 16 s, a loop over a local array of the rows 7 s, the
// select chain of row_of 0.6 s. The activation, bias and accumulate options as uniforms cost
// 15–20% at 300×64×64 (lavapipe evaluates every case), so they are overrides.
// LP_NATIVE_VECTOR_WIDTH=512 (subgroups of 16): this file 27 GFLOP/s, v4 43 (with 16-row
// broadcast groups 41): no gain over the default 256 bits. llvmpipe emits no FMA here
// (ffma becomes mul + add) and spills most of the 128 accumulator registers; the loads still
// dominate, hence the large row block.

enable subgroups;

//!include matmul_common.wgsl
//!include activations.wgsl
//!include acc8.wgsl

const WG: u32 = 16u;      // invocations per workgroup, side by side along the columns
const ROWS: u32 = 32u;    // rows of C per workgroup: four broadcast groups of 8

// g plus one rank-1 term: row r gains op(A)[row r, k] · bv, where lane r of the subgroup holds
// op(A)[row r, k] in av and bv is op(B)[k, this invocation's 4 columns]. Must run in uniform
// control flow (every lane of the subgroup takes part in the broadcasts).
fn rank1(g: Acc8, av: f32, bv: vec4<f32>) -> Acc8 {
	return Acc8(
		fma(vec4<f32>(subgroupBroadcast(av, 0u)), bv, g.r0),
		fma(vec4<f32>(subgroupBroadcast(av, 1u)), bv, g.r1),
		fma(vec4<f32>(subgroupBroadcast(av, 2u)), bv, g.r2),
		fma(vec4<f32>(subgroupBroadcast(av, 3u)), bv, g.r3),
		fma(vec4<f32>(subgroupBroadcast(av, 4u)), bv, g.r4),
		fma(vec4<f32>(subgroupBroadcast(av, 5u)), bv, g.r5),
		fma(vec4<f32>(subgroupBroadcast(av, 6u)), bv, g.r6),
		fma(vec4<f32>(subgroupBroadcast(av, 7u)), bv, g.r7));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
		@builtin(local_invocation_id) lid: vec3<u32>,
		@builtin(subgroup_invocation_id) lane: u32) {
	let row0 = wid.y * ROWS;
	let col = (wid.x * WG + lid.x) * 4u;
	// The rows this lane loads for the four groups. Rows past M are clamped to M-1: loaded,
	// computed, never stored. Lanes ≥ 8 (larger subgroups) load copies nobody reads.
	let l = lane % 8u;
	let ar = min(vec4<u32>(row0 + l) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(p.m - 1u));
	let cols = cols4(col);

	var g0: Acc8;
	var g1: Acc8;
	var g2: Acc8;
	var g3: Acc8;
	// One copy of the step serves the last, partial one too (kn < 4): a separate tail would
	// double the code lavapipe compiles, for no measurable gain.
	for (var kk = 0u; kk < p.k; kk += 4u) {
		let kn = min(4u, p.k - kk);
		let f0 = a_k4(ar.x, kk, kn);
		let f1 = a_k4(ar.y, kk, kn);
		let f2 = a_k4(ar.z, kk, kn);
		let f3 = a_k4(ar.w, kk, kn);
		let bk = b_k4(kk, kn, cols);
		g0 = rank1(g0, f0.x, bk[0]); g1 = rank1(g1, f1.x, bk[0]); g2 = rank1(g2, f2.x, bk[0]); g3 = rank1(g3, f3.x, bk[0]);
		g0 = rank1(g0, f0.y, bk[1]); g1 = rank1(g1, f1.y, bk[1]); g2 = rank1(g2, f2.y, bk[1]); g3 = rank1(g3, f3.y, bk[1]);
		g0 = rank1(g0, f0.z, bk[2]); g1 = rank1(g1, f1.z, bk[2]); g2 = rank1(g2, f2.z, bk[2]); g3 = rank1(g3, f3.z, bk[2]);
		g0 = rank1(g0, f0.w, bk[3]); g1 = rank1(g1, f1.w, bk[3]); g2 = rank1(g2, f2.w, bk[3]); g3 = rank1(g3, f3.w, bk[3]);
	}

	// One copy of the epilogue in a loop over this tile's rows inside C.
	let nrows = min(ROWS, p.m - row0);
	for (var r = 0u; r < nrows; r++) {
		let q = r % 8u;
		var v = row_of(g0, q);
		v = select(v, row_of(g1, q), r / 8u == 1u);
		v = select(v, row_of(g2, q), r / 8u == 2u);
		v = select(v, row_of(g3, q), r / 8u == 3u);
		store4(row0 + r, col, v);
	}
}
