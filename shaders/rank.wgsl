// rank.wgsl — rank-prioritised sampling of a table's rows by score (the replay buffer's
// log R): sort the rows by score, then draw ranks from a decreasing distribution.
//
// Bindings (group 0), shared by the three entries:
//   0: score  array<f32>, N scores (rows ≥ filled are ignored), read
//   1: keys   array<f32>, next power of two ≥ N, scratch: sorted scores (the first P used)
//   2: order  array<u32>, as keys, written: order[r] = the row of rank r (rank 0 = highest
//             score), r < P
//   3: out    array<u32>, n drawn rows (entry rank_draw), written
//   4: params uniform RankParams (below)
// Every entry touches all five (phony reads `_ = x[0]` where it needs none), so one
// bind group layout serves the three.
// Params (uniform, in order): filled u32 (rows in use, 1..N), pow2 u32 (P: the sort covers
//   rows [0, P), the next power of two ≥ filled), k u32 and
//   j u32 (the bitonic stage and distance of a rank_sort_pass), n u32 (draws), seed_lo u32,
//   seed_hi u32, stream u32, offset u32 (Philox counter words of rank_draw), c f32
//   (= k_rank·filled), growth f32 (= log2(1 + 1/k_rank)).
// Dispatch: rank_init Grid1D(P, 64); rank_sort_pass Grid1D(P/2, 64), one op per (k, j)
//   with k = 2, 4, …, P and j = k/2, k/4, …, 1; rank_draw Grid1D(ceil(n/4), 64). Grids
//   above 65535 workgroups fold into (x, y): linear id = (wid.x + wid.y·nwg.x)·64 + lid.x.
//
// The order: descending score, ties by ascending row; NaN scores and the rows ≥ filled
// sort last (as −∞, by row). Bitonic sort: pass (k, j) compares elements i and i + j for
// every i with bit j clear, in descending order where bit k of i is clear and ascending
// where it is set; after all passes the P elements are in descending order. Rows
// [filled, P) are ignored rows; the rows ≥ P are neither read nor written.
//
// The draw (Sendera et al. 2024, replay buffer): rank r of filled rows has weight
// ∝ 1/(k_rank·filled + r). A uniform u becomes the continuous rank s = c·((1 + 1/k_rank)^u
// − 1), the inverse CDF of the density ∝ 1/(c + s) on [0, filled); the drawn rank is ⌊s⌋
// (capped at filled − 1), so P(r) ∝ log(1 + 1/(c + r)), within a factor 1 + 1/(2c) of
// 1/(c + r). u comes from lane i mod 4 of Philox4x32((i/4, offset, stream, 0), seed) as in
// rng.wgsl.
//
//!include philox.wgsl

struct RankParams {
	filled: u32,
	pow2: u32,
	k: u32,
	j: u32,
	n: u32,
	seed_lo: u32,
	seed_hi: u32,
	stream: u32,
	offset: u32,
	c: f32,
	growth: f32,
}

@group(0) @binding(0) var<storage, read> score: array<f32>;
@group(0) @binding(1) var<storage, read_write> keys: array<f32>;
@group(0) @binding(2) var<storage, read_write> order: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<uniform> P: RankParams;

const RANK_WG: u32 = 64u;
const LOWEST: f32 = -3.4028234e38;

fn rank_id(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
	return (wid.x + wid.y * nwg.x) * RANK_WG + lid.x;
}

// is_nan tests the bits (exponent all ones, mantissa not zero): comparisons with NaN may
// be optimised away by shader compilers.
fn is_nan(x: f32) -> bool {
	let b = bitcast<u32>(x);
	return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}

@compute @workgroup_size(64)
fn rank_init(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	_ = out[0];
	let i = rank_id(lid, wid, nwg);
	if (i >= P.pow2) {
		return;
	}
	var key = LOWEST;
	if (i < P.filled) {
		let s = score[i];
		if (!is_nan(s)) {
			key = max(s, LOWEST); // −∞ too sorts with the ignored rows
		}
	}
	keys[i] = key;
	order[i] = i;
}

// before reports whether (ka, ia) comes before (kb, ib): higher score first, then lower row.
fn before(ka: f32, ia: u32, kb: f32, ib: u32) -> bool {
	return ka > kb || (ka == kb && ia < ib);
}

@compute @workgroup_size(64)
fn rank_sort_pass(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	_ = score[0];
	_ = out[0];
	let t = rank_id(lid, wid, nwg);
	if (t >= P.pow2 / 2u) {
		return;
	}
	// The t-th element with bit j clear, and its partner.
	let i = (t / P.j) * 2u * P.j + t % P.j;
	let m = i + P.j;
	let ki = keys[i];
	let km = keys[m];
	let oi = order[i];
	let om = order[m];
	let descending = (i & P.k) == 0u;
	if (select(before(ki, oi, km, om), before(km, om, ki, oi), descending)) {
		keys[i] = km;
		keys[m] = ki;
		order[i] = om;
		order[m] = oi;
	}
}

@compute @workgroup_size(64)
fn rank_draw(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	_ = score[0];
	_ = keys[0];
	let j = rank_id(lid, wid, nwg);
	let i0 = 4u * j;
	if (i0 >= P.n) {
		return;
	}
	let r = philox4x32_10(vec4<u32>(j, P.offset, P.stream, 0u), vec2<u32>(P.seed_lo, P.seed_hi));
	for (var l = 0u; l < 4u && i0 + l < P.n; l = l + 1u) {
		let u = philox_uniform(r[l]);
		let s = P.c * (exp2(u * P.growth) - 1.0);
		let rank = min(u32(max(s, 0.0)), P.filled - 1u);
		out[i0 + l] = order[rank];
	}
}
