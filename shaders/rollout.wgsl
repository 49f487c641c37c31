// rollout.wgsl — the fused rollout: the sampler's drift network and its Euler–Maruyama
// steps k0..k1−1 for a block of rows in one dispatch (DESIGN.md §5). It replaces, per step,
// the state layer, two hidden layers, the output layer and the SDE step (or log p_F of a
// given transition) of the op-by-op path, which stays as the reference (train/sampler.go).
//
// The network (train.Network), per row b and step k, t_k = k·dt:
//   h0 = z_k·W_S + sbias[k] (+ E[y_b]),  a0 = GELU(h0)        sbias[k] = b_S + temb(t_k)
//   h1 = a0·W_1 + b_1,                   a1 = GELU(h1)
//   h2 = a1·W_2 + b_2,                   a2 = GELU(h2)
//   u  = clip(a2·W_3 + b_3, ±CLIP_BOUND)               (LV: [u, h] = clip(a2·W_3 + b_3), 2D wide)
// With the Langevin term (LP) the drift coordinates j < D are, as langevin.wgsl forms them,
//   u_j = clip(a2·W_3 + b_3 + s_k·finite_clamp(g_j, ±lp_clip), ±CLIP_BOUND)
// where g = ∇log R(z_k) comes from the stack after the step table (formed by the target's kernels before
// this step's dispatch, so an LP rollout runs one step per dispatch when sampling) and s_k
// is the time-only scale network's output, packed at P.o_sc.
// The policy's variance per coordinate is v_j = σ²·dt (fixed), or with learned variance
// (LV) v_j = σ²·dt·exp(ℓ_j), ℓ_j = 4·tanh(h_j) (within σ²·dt·e^{±4}, as the published
// learned-variance variant).
// SAMPLE (forward trajectories; fixed variance: the same noise and arithmetic as sde.wgsl's sde_row):
//   ε = lane j mod 4 of philox_normal4(Philox((b·NB + j/4, k, stream, 1), seed))
//   z_{k+1} = z_k + u·dt + s_j·ε,  s_j = sqrt(v_j + σ_explore²) (exploration adds variance)
//   log p_F += −½·Σ_j ((s_j·ε_j)²/v_j + ℓ_j)  − (D/2)·ln(2π·σ²·dt)    (ℓ_j = 0 fixed)
//   log p_B += −½·Σ_j (z_k − r·z_{k+1})²·inv_var_b + logc_b (k ≥ 1)
// otherwise (given states, as logpf.wgsl): z_{k+1} is read from the stack and
//   log p_F += −½·Σ_j ((z_{k+1} − z_k − u·dt)²/v_j + ℓ_j) − (D/2)·ln(2π·σ²·dt).
// The sums are formed as inv_var_f·Σ_j (e_j²·e^{−ℓ_j} + ℓ_j·var_f), so that the fixed case
// is exactly the sum of squares times inv_var_f.
//
// Bindings (group 0); a stack holds step k's row b at row k·P.rows + b (rows ≥ B: padding,
// never written):
//   0: net    array<vec4<f32>>, read: the packed parameters, float offsets P.o_* (multiples of 4):
//             W_S [D, W], sbias [T, W], W_1 [W, W], b_1 [W], W_2 [W, W], b_2 [W], W_3 [W, OUT],
//             b_3 [OUT], E [classes, W] (COND only), s [T] (LP only); OUT = D, or 2D with LV
//   1: steps  array<vec4<f32>>, read: [T] (r = k/(k+1), inv_var_b, logc_b, 0) of each step;
//             with LP followed, from float offset P.o_g on, by the stack [T·rows, D] of
//             ∇log R(z_k) (in this buffer, not a tenth binding, so that the rollout binds
//             8 storage buffers, WebGPU's portable limit)
//   2: zs     array<f32>, read+written: [(T+1)·rows, D] states; SAMPLE writes z_{k0+1..k1}
//             (and z_0 = 0 when k0 = 0), otherwise reads them all
//   3: us     array<f32>, written: [T·rows, OUT] the drift of every step (LV: u then h)
//   4: save   array<vec4<f32>>, written when SAVE: six stacks [T·rows, W] one after the other,
//             h0, a0, h1, a1, h2, a2 (the backward pass's inputs)
//   5: logpf  array<f32>, read+written: [B] += Σ_k log p_F
//   6: logpb  array<f32>, read+written: [B] += Σ_k log p_B (SAMPLE only)
//   7: labels array<u32>, read: [B] the rows' conditions (COND only)
//   8: P      uniform Params (below; the host derives the f32 constants in float64)
// Overrides: W (width, a multiple of 4), D (state dimension), WG (invocations per
//   workgroup, W/8 ≤ WG ≤ W/4), SAMPLE, SAVE, COND, LV, LP: bool. ROWS = 8 rows per
//   workgroup.
// Dispatch: Grid1D(⌈B / 8⌉, 1) workgroups of WG invocations; invocation c owns the vec4
//   column groups c and c + WG (< W/4; columns 4g..4g+3) of every hidden layer for the
//   workgroup's 8 rows.
//   Workgroup memory: (2·ROWS·W + ROWS·(D + OUT) + 2·ROWS·NB + 2·ROWS)·4 bytes.
// WG is the adapter's choice (kernels.RolloutInvocations): one 8-lane SIMD chunk on
// lavapipe, where a wider workgroup makes every barrier a switch between its chunks (the
// first version, 16 invocations of one column group each, ran the 25GMM rollout in
// 180–320 ms against 130–170 ms for this one, which also changed the accumulators, on a
// shared machine), and W/4 on GPUs.
//
// Activations stay in workgroup memory (two halves of ROWS·W floats: a layer reads one and
// writes the other); weights are read through the cache (two 64×64 f32 matrices are 32 KiB,
// the portable workgroup-memory limit). Per layer: every invocation forms its 4 columns of
// all ROWS rows from vec4 weight loads and workgroup-memory activations, writes their GELU
// into the other half, and one barrier follows. Per-row sums run in a fixed
// order (blocks of 4 coordinates in order), so results are deterministic on an adapter.
//
//!include philox.wgsl
//!include activations.wgsl
//!include acc8.wgsl
//!include finite_clamp.wgsl

override W: u32 = 64u;
override D: u32 = 2u;
override WG: u32 = 16u;   // ≤ W/4, ≥ W/8
override SAMPLE: bool = true;
override SAVE: bool = false;
override COND: bool = false;
override LV: bool = false;
override LP: bool = false;

override WV: u32 = W / 4u;             // vec4 column groups of a hidden layer
override NCG: u32 = (WV + WG - 1u) / WG; // column groups per invocation: 1 or 2
override NB: u32 = (D + 3u) / 4u;      // Philox blocks per row
override OUT: u32 = D * (1u + u32(LV)); // output layer width: u, and h with LV
const ROWS: u32 = 8u;                  // rows per workgroup (the fields of Acc8)

struct Params {
	B: u32,
	rows: u32,     // the stacks' row stride per step (≥ B)
	T: u32,        // steps of the whole trajectory (the stacks' length)
	k0: u32,       // first step of this dispatch
	k1: u32,       // one past its last step
	stream: u32,
	seed_lo: u32,
	seed_hi: u32,
	dt: f32,
	noise_std: f32,
	inv_var_f: f32,
	logc_f: f32,
	o_ws: u32,
	o_sb: u32,
	o_w1: u32,
	o_b1: u32,
	o_w2: u32,
	o_b2: u32,
	o_w3: u32,
	o_b3: u32,
	o_emb: u32,
	var_f: f32,   // σ²·dt
	ex_var: f32,  // σ_explore² (LV: added to each coordinate's variance)
	o_sc: u32,    // LP: the scale s [T] in the pack
	o_g: u32,     // LP: the gradient stack in steps (float offset)
	lp_clip: f32, // LP: the bound of each component of ∇log R
}

@group(0) @binding(0) var<storage, read> net: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> steps: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> zs: array<f32>;
@group(0) @binding(3) var<storage, read_write> us: array<f32>;
@group(0) @binding(4) var<storage, read_write> save: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> logpf: array<f32>;
@group(0) @binding(6) var<storage, read_write> logpb: array<f32>;
@group(0) @binding(7) var<storage, read> labels: array<u32>;
@group(0) @binding(8) var<uniform> P: Params;

var<workgroup> act: array<vec4<f32>, 2u * ROWS * WV>; // two halves of ROWS rows × W, row-major
var<workgroup> zsh: array<f32, ROWS * D>;        // z_k of the workgroup's rows
var<workgroup> ush: array<f32, ROWS * OUT>;      // u_k (and h_k with LV), row-major
var<workgroup> part: array<vec2<f32>, ROWS * NB>; // per-block sums of squares
var<workgroup> lp: array<vec2<f32>, ROWS>;        // Σ_k log p_F, Σ_k log p_B

// Acc8 (acc8.wgsl) holds one vec4 column group of the 8 rows; an invocation holds NCG ≤ 2.

// Rows8 is one vec4 of the current layer's input for each of the 8 rows.
struct Rows8 {
	r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
	r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
}

// netf is element i of the packed parameters.
fn netf(i: u32) -> f32 {
	return net[i >> 2u][i & 3u];
}

fn gelu4(x: vec4<f32>) -> vec4<f32> {
	return vec4<f32>(act_fwd(x.x, 4u), act_fwd(x.y, 4u), act_fwd(x.z, 4u), act_fwd(x.w, 4u));
}

// rows_in is x_r[4kv..4kv+3], one vec4 of row r of act from vec4 index src on.
fn rows_in(src: u32, kv: u32) -> Rows8 {
	return Rows8(act[src + kv], act[src + WV + kv], act[src + 2u * WV + kv], act[src + 3u * WV + kv],
		act[src + 4u * WV + kv], act[src + 5u * WV + kv], act[src + 6u * WV + kv], act[src + 7u * WV + kv]);
}

// dot4 is g plus x_r[4kv..4kv+3] · W[4kv..4kv+3, group] for each row: w0..w3 are the four
// weight rows of the group.
fn dot4(g: Acc8, x: Rows8, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> Acc8 {
	return Acc8(
		fma(vec4<f32>(x.r0.w), w3, fma(vec4<f32>(x.r0.z), w2, fma(vec4<f32>(x.r0.y), w1, fma(vec4<f32>(x.r0.x), w0, g.r0)))),
		fma(vec4<f32>(x.r1.w), w3, fma(vec4<f32>(x.r1.z), w2, fma(vec4<f32>(x.r1.y), w1, fma(vec4<f32>(x.r1.x), w0, g.r1)))),
		fma(vec4<f32>(x.r2.w), w3, fma(vec4<f32>(x.r2.z), w2, fma(vec4<f32>(x.r2.y), w1, fma(vec4<f32>(x.r2.x), w0, g.r2)))),
		fma(vec4<f32>(x.r3.w), w3, fma(vec4<f32>(x.r3.z), w2, fma(vec4<f32>(x.r3.y), w1, fma(vec4<f32>(x.r3.x), w0, g.r3)))),
		fma(vec4<f32>(x.r4.w), w3, fma(vec4<f32>(x.r4.z), w2, fma(vec4<f32>(x.r4.y), w1, fma(vec4<f32>(x.r4.x), w0, g.r4)))),
		fma(vec4<f32>(x.r5.w), w3, fma(vec4<f32>(x.r5.z), w2, fma(vec4<f32>(x.r5.y), w1, fma(vec4<f32>(x.r5.x), w0, g.r5)))),
		fma(vec4<f32>(x.r6.w), w3, fma(vec4<f32>(x.r6.z), w2, fma(vec4<f32>(x.r6.y), w1, fma(vec4<f32>(x.r6.x), w0, g.r6)))),
		fma(vec4<f32>(x.r7.w), w3, fma(vec4<f32>(x.r7.z), w2, fma(vec4<f32>(x.r7.y), w1, fma(vec4<f32>(x.r7.x), w0, g.r7)))));
}

// plus adds v to every row.
fn plus(g: Acc8, v: vec4<f32>) -> Acc8 {
	return Acc8(g.r0 + v, g.r1 + v, g.r2 + v, g.r3 + v, g.r4 + v, g.r5 + v, g.r6 + v, g.r7 + v);
}

// group is the vec4 column group an invocation's j-th accumulator covers (clamped: a group
// past W/4 computes a copy that is never stored).
fn group(c: u32, j: u32) -> u32 {
	return min(c + j * WG, WV - 1u);
}

// hidden returns x_r·W_l + b_l in the invocation's two column groups for the 8 rows x_r of
// act from vec4 index src on (W_l at float offset ow, b_l at ob). Each weight load serves
// all 8 rows and each activation load both groups: loads, not arithmetic, are what
// lavapipe pays for.
fn hidden(src: u32, c: u32, ow: u32, ob: u32) -> array<Acc8, 2> {
	// Initialised explicitly: with `var g0: Acc8;` the second call of a dispatch started
	// from the first call's sums on lavapipe (Dawn 0.1.7, Mesa 25.0.7; caught by
	// TestRolloutMatchesReference at one column group per invocation).
	var g0 = Acc8();
	var g1 = Acc8();
	let c0 = ow / 4u + group(c, 0u);
	let c1 = ow / 4u + group(c, 1u);
	for (var kv = 0u; kv < WV; kv++) {
		let x = rows_in(src, kv);
		let base = 4u * kv * WV;
		g0 = dot4(g0, x, net[c0 + base], net[c0 + base + WV], net[c0 + base + 2u * WV], net[c0 + base + 3u * WV]);
		if (NCG > 1u) {
			g1 = dot4(g1, x, net[c1 + base], net[c1 + base + WV], net[c1 + base + 2u * WV], net[c1 + base + 3u * WV]);
		}
	}
	return array<Acc8, 2>(plus(g0, net[ob / 4u + group(c, 0u)]), plus(g1, net[ob / 4u + group(c, 1u)]));
}

// axpy8 is g plus x_r·w for each row r, x holding rows 0..3 and y rows 4..7.
fn axpy8(g: Acc8, x: vec4<f32>, y: vec4<f32>, w: vec4<f32>) -> Acc8 {
	return Acc8(fma(vec4<f32>(x.x), w, g.r0), fma(vec4<f32>(x.y), w, g.r1), fma(vec4<f32>(x.z), w, g.r2), fma(vec4<f32>(x.w), w, g.r3),
		fma(vec4<f32>(y.x), w, g.r4), fma(vec4<f32>(y.y), w, g.r5), fma(vec4<f32>(y.z), w, g.r6), fma(vec4<f32>(y.w), w, g.r7));
}

// emit writes GELU of one column group g of 8 rows into act from vec4 index dst on and,
// when SAVE, the pre-activations and activations to stacks 2·layer and 2·layer + 1 of save
// (rows b < B only). Groups past W/4 (clamped copies) are not written.
fn emit(a8: Acc8, g: u32, layer: u32, k: u32, row0: u32, dst: u32) {
	if (g >= WV) {
		return;
	}
	let block = P.T * P.rows * WV;
	for (var r = 0u; r < ROWS; r++) {
		let h = row_of(a8, r);
		let a = gelu4(h);
		act[dst + r * WV + g] = a;
		let b = row0 + r;
		if (SAVE && b < P.B) {
			let i = (k * P.rows + b) * WV + g;
			save[2u * layer * block + i] = h;
			save[(2u * layer + 1u) * block + i] = a;
		}
	}
}

// emit2 is emit of both of the invocation's column groups.
fn emit2(acc: array<Acc8, 2>, c: u32, layer: u32, k: u32, row0: u32, dst: u32) {
	emit(acc[0], c, layer, k, row0, dst);
	if (NCG > 1u) {
		emit(acc[1], c + WG, layer, k, row0, dst);
	}
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
		@builtin(local_invocation_index) c: u32) {
	let row0 = (wid.x + wid.y * nwg.x) * ROWS; // uniform: every barrier below is reached by all
	let key = vec2<u32>(P.seed_lo, P.seed_hi);
	let given = !SAMPLE || P.k0 > 0u;
	for (var i = c; i < ROWS * D; i += WG) {
		let b = row0 + i / D;
		var v = 0.0;
		if (b < P.B) {
			let g = (P.k0 * P.rows + b) * D + i % D;
			if (given) {
				v = zs[g];
			} else {
				zs[g] = 0.0; // z_0
			}
		}
		zsh[i] = v;
	}
	for (var r = c; r < ROWS; r += WG) {
		lp[r] = vec2<f32>(0.0);
	}
	workgroupBarrier();

	for (var k = P.k0; k < P.k1; k++) {
		// State layer: h0 = z_k·W_S + sbias[k] (+ E[y]), into half 0 of act.
		var s0 = Acc8();
		var s1 = Acc8();
		for (var jd = 0u; jd < D; jd++) {
			let x = vec4<f32>(zsh[jd], zsh[D + jd], zsh[2u * D + jd], zsh[3u * D + jd]);
			let y = vec4<f32>(zsh[4u * D + jd], zsh[5u * D + jd], zsh[6u * D + jd], zsh[7u * D + jd]);
			s0 = axpy8(s0, x, y, net[P.o_ws / 4u + jd * WV + group(c, 0u)]);
			if (NCG > 1u) {
				s1 = axpy8(s1, x, y, net[P.o_ws / 4u + jd * WV + group(c, 1u)]);
			}
		}
		var acc = array<Acc8, 2>(plus(s0, net[(P.o_sb + k * W) / 4u + group(c, 0u)]), plus(s1, net[(P.o_sb + k * W) / 4u + group(c, 1u)]));
		if (COND) {
			// The condition's embedding row, per row (labels clamped for padding rows).
			for (var j = 0u; j < 2u; j++) {
				let e = P.o_emb / 4u + group(c, j);
				var a8 = acc[j];
				a8.r0 += net[e + labels[min(row0, P.B - 1u)] * WV];
				a8.r1 += net[e + labels[min(row0 + 1u, P.B - 1u)] * WV];
				a8.r2 += net[e + labels[min(row0 + 2u, P.B - 1u)] * WV];
				a8.r3 += net[e + labels[min(row0 + 3u, P.B - 1u)] * WV];
				a8.r4 += net[e + labels[min(row0 + 4u, P.B - 1u)] * WV];
				a8.r5 += net[e + labels[min(row0 + 5u, P.B - 1u)] * WV];
				a8.r6 += net[e + labels[min(row0 + 6u, P.B - 1u)] * WV];
				a8.r7 += net[e + labels[min(row0 + 7u, P.B - 1u)] * WV];
				acc[j] = a8;
			}
		}
		emit2(acc, c, 0u, k, row0, 0u);
		workgroupBarrier();
		// Hidden layers 1 and 2: layer 1 reads half 0 of act and writes half 1, layer 2 the
		// reverse, so one barrier per layer separates every read from the next write.
		emit2(hidden(0u, c, P.o_w1, P.o_b1), c, 1u, k, row0, ROWS * WV);
		workgroupBarrier();
		emit2(hidden(ROWS * WV, c, P.o_w2, P.o_b2), c, 2u, k, row0, 0u);
		workgroupBarrier();
		// Output layer: u = clip(a2·W_3 + b_3 (+ the Langevin term)), one output coordinate j
		// of all 8 rows per invocation at a time, so that each weight load serves the 8 rows.
		for (var j = c; j < OUT; j += WG) {
			var lo = vec4<f32>(0.0); // rows 0..3
			var hi = vec4<f32>(0.0); // rows 4..7
			for (var kv = 0u; kv < WV; kv++) {
				let x = rows_in(0u, kv);
				let o = P.o_w3 + 4u * kv * OUT + j;
				let w = vec4<f32>(netf(o), netf(o + OUT), netf(o + 2u * OUT), netf(o + 3u * OUT));
				lo += vec4<f32>(dot(x.r0, w), dot(x.r1, w), dot(x.r2, w), dot(x.r3, w));
				hi += vec4<f32>(dot(x.r4, w), dot(x.r5, w), dot(x.r6, w), dot(x.r7, w));
			}
			let b3 = netf(P.o_b3 + j);
			let lp_on = LP && j < D;
			var s_k = 0.0;
			if (lp_on) {
				s_k = netf(P.o_sc + k);
			}
			for (var r = 0u; r < ROWS; r++) {
				let b = row0 + r;
				var x = select(lo[r & 3u], hi[r & 3u], r >= 4u) + b3;
				if (lp_on && b < P.B) {
					let gi = P.o_g + (k * P.rows + b) * D + j;
					x += s_k * finite_clamp(steps[gi >> 2u][gi & 3u], P.lp_clip);
				}
				let u = clamp(x, -CLIP_BOUND, CLIP_BOUND);
				ush[r * OUT + j] = u;
				if (b < P.B) {
					us[(k * P.rows + b) * OUT + j] = u;
				}
			}
		}
		workgroupBarrier();
		// The step (or the given transition) and its sums of squares per block of 4.
		let st = steps[k];
		for (var i = c; i < ROWS * NB; i += WG) {
			let r = i / NB;
			let q = i % NB;
			let b = row0 + r;
			var eps = vec4<f32>(0.0);
			if (SAMPLE) {
				eps = philox_normal4(philox4x32_10(vec4<u32>(b * NB + q, k, P.stream, 1u), key));
			}
			var sf = 0.0;
			var sb = 0.0;
			for (var l = 0u; l < min(4u, D - 4u * q); l++) {
				let j = 4u * q + l;
				let zk = zsh[r * D + j];
				let g = ((k + 1u) * P.rows + b) * D + j;
				let uj = ush[r * OUT + j];
				// ℓ_j and e^{−ℓ_j}: the learned log-variance offset (0 and 1 when fixed).
				var lv = 0.0;
				var iw = 1.0;
				if (LV) {
					lv = 4.0 * tanh(ush[r * OUT + D + j]);
					iw = exp(-lv);
				}
				var e = 0.0;
				if (SAMPLE) {
					var sd = P.noise_std;
					if (LV) {
						sd = sqrt(P.var_f * exp(lv) + P.ex_var);
					}
					e = sd * eps[l];
					let zn = zk + uj * P.dt + e;
					zsh[r * D + j] = zn;
					if (b < P.B) {
						zs[g] = zn;
					}
					let db = zk - st.x * zn;
					sb = sb + db * db;
				} else {
					var z1 = 0.0;
					if (b < P.B) {
						z1 = zs[g];
					}
					e = z1 - zk - uj * P.dt;
					zsh[r * D + j] = z1;
				}
				if (LV) {
					sf += e * e * iw + lv * P.var_f;
				} else {
					sf += e * e;
				}
			}
			part[i] = vec2<f32>(sf, sb);
		}
		workgroupBarrier();
		for (var r = c; r < ROWS; r += WG) {
			var s = vec2<f32>(0.0);
			for (var q = 0u; q < NB; q++) {
				s = s + part[r * NB + q];
			}
			var v = lp[r];
			v.x = v.x + (-0.5 * s.x * P.inv_var_f + P.logc_f);
			if (SAMPLE && k > 0u) {
				v.y = v.y + (-0.5 * s.y * st.y + st.z);
			}
			lp[r] = v;
		}
		// No barrier needed here: part is next written after three more barriers, and each
		// lp[r] is read and written by one invocation only.
	}
	for (var r = c; r < ROWS; r += WG) {
		let b = row0 + r;
		if (b < P.B) {
			logpf[b] = logpf[b] + lp[r].x;
			if (SAMPLE) {
				logpb[b] = logpb[b] + lp[r].y;
			}
		}
	}
}
