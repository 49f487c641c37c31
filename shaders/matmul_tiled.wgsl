// matmul_tiled.wgsl — C = act(op(A)·op(B) + bias) (+ C) with tiles staged in workgroup
// memory: the kernel for GPUs, and for any adapter without subgroups of ≥ 8 invocations.
//
// Bindings (group 0), declared in matmul_common.wgsl:
//   0: a     array<f32>, A: M×K row-major (K×M when TRANS_A), read
//   1: b     array<f32>, B: K×N row-major (N×K when TRANS_B), read
//   2: bias  array<f32>, N elements from p.bias_off on, read only when HAS_BIAS
//   3: c     array<f32>, C: M×N row-major, written (read first when ACCUMULATE)
//   4: aux   array<f32>, M×N: the epilogue's pre-activation (see matmul_common.wgsl)
//   5: p     uniform Params { m, n, k, bias_off: u32 }
// Overrides: TRANS_A, TRANS_B, HAS_BIAS, ACCUMULATE: bool; ACT, EPILOGUE, DERIV_ACT: u32.
// Dispatch: ceil(N / 16) × ceil(M / 16) workgroups of 16×16 invocations.
//
// Each workgroup computes a 16×16 tile of C, one element per invocation. Per step of 16 k
// the workgroup stages op(A)[its 16 rows, k..k+15] and op(B)[k..k+15, its 16 columns] in
// workgroup memory, each invocation loading one element of each, then every invocation
// adds 16 products from there.
//
// Why a second kernel: matmul.wgsl gives each 16-invocation workgroup a 32×64 tile of C,
// which suits lavapipe (few lanes, loads shared by subgroup broadcasts) but leaves a GPU
// idle on the trainer's shapes: a 64×64 weight gradient with K = 300 (the batch) is two
// workgroups running K serially, 0.10 ms on an H200, no faster than lavapipe. Here it is
// 16 workgroups of 256 invocations. The loads are coalesced in both layouts: local x runs
// along the dimension that is contiguous in memory (k for row-major A, the row for Aᵀ).
// The tiles are 17 wide so that the transposed loads, which write a column of the tile,
// fall in different memory banks.

//!include matmul_common.wgsl
//!include activations.wgsl

const TILE: u32 = 16u;

var<workgroup> a_tile: array<array<f32, 17>, 16>; // a_tile[r][t] = op(A)[row0 + r, k0 + t]
var<workgroup> b_tile: array<array<f32, 17>, 16>; // b_tile[t][c] = op(B)[k0 + t, col0 + c]

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
	let row0 = wid.y * TILE;
	let col0 = wid.x * TILE;
	// The tile element this invocation loads, (row, t) of A's tile and (t, column) of B's.
	var ar = lid.y;
	var at = lid.x;
	if (TRANS_A) {
		ar = lid.x;
		at = lid.y;
	}
	var bt = lid.y;
	var bc = lid.x;
	if (TRANS_B) {
		bt = lid.x;
		bc = lid.y;
	}
	let ai = row0 + ar;
	let bj = col0 + bc;
	var s = 0.0;
	for (var k0 = 0u; k0 < p.k; k0 += TILE) {
		// Outside A or B the tile holds 0, so the partial last step and the edge tiles add
		// nothing; the clamped indices keep the (discarded) reads in bounds.
		let ak = k0 + at;
		let bk = k0 + bt;
		a_tile[ar][at] = select(0.0, a_at(min(ai, p.m - 1u), min(ak, p.k - 1u)), ai < p.m && ak < p.k);
		b_tile[bt][bc] = select(0.0, b_at(min(bk, p.k - 1u), min(bj, p.n - 1u)), bk < p.k && bj < p.n);
		workgroupBarrier();
		for (var t = 0u; t < TILE; t++) {
			s = fma(a_tile[lid.y][t], b_tile[t][lid.x], s);
		}
		workgroupBarrier();
	}
	store1(row0 + lid.y, col0 + lid.x, s);
}
