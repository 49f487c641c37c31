// losses.wgsl — per-row training losses with their input gradients (classifier and VAE
// training), the per-row argmax (classifier evaluation) and the VAE reparameterization.
// Every tensor is float32 row-major [B, D] (B = rows, D = cols) unless noted; the loss
// outputs hold one value per row, [B]. Gradients are written (never accumulated) and
// scaled by p.scale (e.g. 1/B for a batch mean).
//
//   softmax cross entropy   loss[b] = max(logsumexp_d x[b, d] − x[b, y_b], loss_floor)
//                           g[b, d] = scale·(softmax(x[b])_d − [d = y_b]), 0 where the
//                                     floor holds (the derivative of the max)
//   Bernoulli logits NLL    loss[b] = Σ_d max(x, 0) − x·t + log1p(exp(−|x|))   (x, t at [b, d])
//                           g[b, d] = scale·(sigmoid(x) − t)
//   argmax                  out[b] = the smallest d with x[b, d] maximal (NaN counts as max)
//   reparameterize          z = mu + exp(logvar/2)·eps                    (elementwise)
//   Gaussian KL             kl[b] = ½ Σ_d mu² + exp(logvar) − 1 − logvar
//                           dmu = dz + scale·mu
//                           dlogvar = dz·eps·exp(logvar/2)/2 + scale·½(exp(logvar) − 1)
//
// Bindings (group 0), per entry point; the uniform params sit after the buffers. Entry
// points share binding slots (WGSL allows two declarations at one slot when no entry point
// uses both), hence the slot-named variables below (in0 = read f32 at slot 0, out3 =
// written f32 at slot 3, ...):
//   xent              0: logits [B, D]  1: labels u32 [B]   2: loss [B]    3: dlogits [B, D]  4: params
//   xent_forward      0: logits [B, D]  1: labels u32 [B]   2: loss [B]    3: params
//   bce               0: logits [B, D]  1: target [B, D]    2: loss [B]    3: dlogits [B, D]  4: params
//   bce_forward       0: logits [B, D]  1: target [B, D]    2: loss [B]    3: params
//   argmax            0: x [B, D]       1: out u32 [B]      2: params
//   reparameterize    0: mu [B, Z]      1: logvar [B, Z]    2: eps [B, Z]  3: z [B, Z]        4: params
//   gauss_kl          0: mu   1: logvar   2: dz   3: eps (all [B, Z])   4: kl [B]
//                     5: dmu [B, Z]   6: dlogvar [B, Z]   7: params
//   gauss_kl_prior    0: mu   1: logvar   2: kl [B]   3: dmu   4: dlogvar   5: params   (dz = 0)
//   gauss_kl_forward  0: mu   1: logvar   2: kl [B]   3: params
// Uniform params: struct { rows: u32 (B), cols: u32 (D or Z), scale: f32,
//   nan_bits: u32 (0x7FC00000, a quiet NaN: WGSL rejects a NaN constant) }.
// A label ≥ D (only possible when a GPU kernel produced it) makes its row's loss and
// gradient NaN, so it cannot pass unnoticed.
//
// Overrides: loss_floor (f32, xent and xent_forward only; default 0, which no cross
//   entropy is below, so no floor): the hinge max(xent, floor). With floor = −log τ a
//   reward −β·loss = β·min(log p_y, log τ) saturates once the class has probability τ.
//   wg (u32), the workgroup size: on GPUs 32..256 by row length; on CPU adapters
//   (lavapipe) the SIMD width, so that a workgroup is one SIMD chunk and its barriers are
//   cheap.
// Dispatch: the row kernels (all but reparameterize) give each workgroup a contiguous
//   block of rows, ceil(B / G) for G workgroups in the (possibly folded) grid, and reduce
//   each row with the whole workgroup. GPUs: Grid1D(B, 1), one row per workgroup, folded
//   into (x, y) past 65535 rows; CPU adapters: a few workgroups per core. reparameterize
//   is elementwise over B·Z, chunked the same way (Grid1D(B·Z, wg) on GPUs).
//   The linear workgroup index is wid.x + wid.y·nwg.x.
//
// Determinism: lane k of a workgroup accumulates the row's elements k, k + wg, ... in
// order, and lane 0 merges the wg partials in lane order; no atomics. Results are
// bit-reproducible for a given wg.
//
// No clamping: exp(logvar) overflows to +inf for logvar > 88.7 and so does the KL;
// the losses take any finite logits (the max is subtracted, exp(−|x|) ≤ 1).

override wg: u32 = 64u;
override loss_floor: f32 = 0.0;

// Lowest finite f32: the running max of an empty lane. Not −inf, so that merging two empty
// lanes computes exp(0)·0 rather than exp(−inf − −inf) = NaN.
const LOWEST: f32 = -3.40282346638528859812e+38;
const NONE: u32 = 0xFFFFFFFFu;

struct Params {
	rows: u32,
	cols: u32,
	scale: f32,
	nan_bits: u32,
}

@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(1) var<storage, read> lab1: array<u32>;
@group(0) @binding(1) var<storage, read_write> idx1: array<u32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(2) var<storage, read_write> out2: array<f32>;
@group(0) @binding(2) var<uniform> p2: Params;
@group(0) @binding(3) var<storage, read> in3: array<f32>;
@group(0) @binding(3) var<storage, read_write> out3: array<f32>;
@group(0) @binding(3) var<uniform> p3: Params;
@group(0) @binding(4) var<storage, read_write> out4: array<f32>;
@group(0) @binding(4) var<uniform> p4: Params;
@group(0) @binding(5) var<storage, read_write> out5: array<f32>;
@group(0) @binding(5) var<uniform> p5: Params;
@group(0) @binding(6) var<storage, read_write> out6: array<f32>;
@group(0) @binding(7) var<uniform> p7: Params;

// Per-lane partials and the merged result, broadcast to the workgroup.
var<workgroup> part_a: array<f32, wg>;
var<workgroup> part_b: array<f32, wg>;
var<workgroup> part_i: array<u32, wg>;
var<workgroup> res_a: f32;
var<workgroup> res_b: f32;
var<workgroup> res_i: u32;

// row_block returns this workgroup's rows [first, last): with G workgroups, workgroup g
// owns [g·per, (g+1)·per) clipped to rows, per = ceil(rows / G). The bounds are uniform
// (workgroup id, grid size, uniform params), so the barriers in the row loops are too.
fn row_block(wid: vec3<u32>, nwg: vec3<u32>, rows: u32) -> vec2<u32> {
	let groups = nwg.x * nwg.y;
	let per = (rows + groups - 1u) / groups;
	let first = min((wid.x + wid.y * nwg.x) * per, rows);
	return vec2<u32>(first, min(first + per, rows));
}

// row_sum returns Σ over the lanes of v, merged by lane 0 in lane order. Two barriers; a
// lane may write part_a again (next row) as soon as it has read the result.
fn row_sum(v: f32, lid: u32) -> f32 {
	part_a[lid] = v;
	workgroupBarrier();
	if (lid == 0u) {
		var s = part_a[0];
		for (var k = 1u; k < wg; k++) {
			s += part_a[k];
		}
		res_a = s;
	}
	workgroupBarrier();
	return res_a;
}

// lse_add adds v to the running (max m, Σ exp(x − m)) pair a, with one exp: when v is the
// new max the old sum shrinks by exp(m − v); otherwise v adds exp(v − m).
fn lse_add(a: vec2<f32>, v: f32) -> vec2<f32> {
	let up = v > a.x;
	let e = exp(select(v - a.x, a.x - v, up));
	return vec2<f32>(max(a.x, v), select(a.y + e, fma(a.y, e, 1.0), up));
}

fn lse_merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
	let m = max(a.x, b.x);
	return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

// row_lse returns (m, s) for the row in0[base .. base + cols): m = max, s = Σ exp(x − m).
fn row_lse(base: u32, cols: u32, lid: u32) -> vec2<f32> {
	var a = vec2<f32>(LOWEST, 0.0);
	for (var j = lid; j < cols; j += wg) {
		a = lse_add(a, in0[base + j]);
	}
	part_a[lid] = a.x;
	part_b[lid] = a.y;
	workgroupBarrier();
	if (lid == 0u) {
		var r = vec2<f32>(part_a[0], part_b[0]);
		for (var k = 1u; k < wg; k++) {
			r = lse_merge(r, vec2<f32>(part_a[k], part_b[k]));
		}
		res_a = r.x;
		res_b = r.y;
	}
	workgroupBarrier();
	return vec2<f32>(res_a, res_b);
}

// xent_loss is logsumexp − x_y = (m − x_y) + log s: the difference first, so that a
// confident row (x_y = m, s ≈ 1) keeps its small loss instead of losing it next to m.
// It is not floored (see xent_floor).
// A label y ≥ cols has no loss: the caller writes NaN for that row.
fn xent_loss(base: u32, st: vec2<f32>, y: u32, P: Params) -> f32 {
	return (st.x - in0[base + min(y, P.cols - 1u)]) + log(st.y);
}

// xent_out is the row's output: max(loss, loss_floor), or NaN for a bad label. The NaN is
// selected last, as a plain move of the uniform's bits: WGSL lets a compiler assume that no
// NaN occurs, and NVIDIA's Vulkan driver turned the earlier select(NaN, floor, NaN < floor)
// into a max that returned the floor, hiding the bad label.
fn xent_out(loss: f32, ok: bool, P: Params) -> f32 {
	return select(bitcast<f32>(P.nan_bits), select(loss, loss_floor, loss < loss_floor), ok);
}

@compute @workgroup_size(wg)
fn xent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p4;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.cols;
		let st = row_lse(base, P.cols, lid);
		let y = lab1[row];
		// Every lane computes the loss (one read of x_y): the floor decides the gradient.
		let loss = xent_loss(base, st, y, P);
		let ok = y < P.cols;
		if (lid == 0u) {
			out2[row] = xent_out(loss, ok, P);
		}
		let floored = loss < loss_floor;
		let nan = bitcast<f32>(P.nan_bits);
		let k = P.scale / st.y;
		for (var j = lid; j < P.cols; j += wg) {
			let g = exp(in0[base + j] - st.x) * k - select(0.0, P.scale, j == y);
			out3[base + j] = select(nan, select(g, 0.0, floored), ok);
		}
	}
}

@compute @workgroup_size(wg)
fn xent_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p3;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.cols;
		let st = row_lse(base, P.cols, lid);
		if (lid == 0u) {
			let y = lab1[row];
			out2[row] = xent_out(xent_loss(base, st, y, P), y < P.cols, P);
		}
	}
}

// log1p_small returns log(1 + e) for e in [0, 1] to a few ulp: where 1 + e rounds, the
// factor e / (u − 1) corrects log(u) for the rounding (Goldberg's trick).
fn log1p_small(e: f32) -> f32 {
	let u = 1.0 + e;
	if (u == 1.0) {
		return e;
	}
	return log(u) * (e / (u - 1.0));
}

// bce_term returns (the loss term, sigmoid(x)) of one logit x: max(x, 0) − x·t +
// log1p(exp(−|x|)); sigmoid from the same exp(−|x|), never overflowing.
fn bce_term(x: f32, t: f32) -> vec2<f32> {
	let e = exp(-abs(x));
	let sig = select(e, 1.0, x >= 0.0) / (1.0 + e);
	return vec2<f32>(max(x, 0.0) - x * t + log1p_small(e), sig);
}

@compute @workgroup_size(wg)
fn bce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p4;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.cols;
		var acc = 0.0;
		for (var j = lid; j < P.cols; j += wg) {
			let t = in1[base + j];
			let r = bce_term(in0[base + j], t);
			acc += r.x;
			out3[base + j] = P.scale * (r.y - t);
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out2[row] = s;
		}
	}
}

@compute @workgroup_size(wg)
fn bce_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p3;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.cols;
		var acc = 0.0;
		for (var j = lid; j < P.cols; j += wg) {
			acc += bce_term(in0[base + j], in1[base + j]).x;
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out2[row] = s;
		}
	}
}

fn is_nan(v: f32) -> bool {
	return (bitcast<u32>(v) & 0x7FFFFFFFu) > 0x7F800000u;
}

// beats reports whether candidate (v, i) replaces the best (b, k) so far: a larger value,
// or an equal one at a smaller index; NaN beats any number (numpy's and torch's argmax),
// and an empty best (k = NONE) loses to anything.
fn beats(v: f32, i: u32, b: f32, k: u32) -> bool {
	if (i == NONE) {
		return false;
	}
	if (k == NONE) {
		return true;
	}
	let vn = is_nan(v);
	let bn = is_nan(b);
	if (vn || bn) {
		return vn && (!bn || i < k);
	}
	return v > b || (v == b && i < k);
}

@compute @workgroup_size(wg)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p2;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.cols;
		var b = LOWEST;
		var k = NONE;
		for (var j = lid; j < P.cols; j += wg) {
			let v = in0[base + j];
			if (beats(v, j, b, k)) {
				b = v;
				k = j;
			}
		}
		part_a[lid] = b;
		part_i[lid] = k;
		workgroupBarrier();
		if (lid == 0u) {
			var best = part_a[0];
			var at = part_i[0];
			for (var q = 1u; q < wg; q++) {
				if (beats(part_a[q], part_i[q], best, at)) {
					best = part_a[q];
					at = part_i[q];
				}
			}
			idx1[row] = at;
		}
		// The next row rewrites part_a / part_i only after lane 0 has read them.
		workgroupBarrier();
	}
}

@compute @workgroup_size(wg)
fn reparameterize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p4;
	// Elementwise: workgroup g owns the contiguous chunk [g·per·wg, (g+1)·per·wg) of the
	// B·Z elements, per = ceil(n / (G·wg)).
	let n = P.rows * P.cols;
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	let end = min(start + size, n);
	for (var i = start + lid; i < end; i += wg) {
		out3[i] = fma(exp(0.5 * in1[i]), in2[i], in0[i]);
	}
}

// kl_term returns (mu² + exp(lv) − 1 − lv, exp(lv), exp(lv/2)) for one coordinate.
fn kl_term(mu: f32, lv: f32) -> vec3<f32> {
	let ev = exp(lv);
	return vec3<f32>(mu * mu + (ev - 1.0 - lv), ev, exp(0.5 * lv));
}

@compute @workgroup_size(wg)
fn gauss_kl(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p7;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.cols;
		var acc = 0.0;
		for (var j = lid; j < P.cols; j += wg) {
			let i = base + j;
			let mu = in0[i];
			let r = kl_term(mu, in1[i]);
			let dz = in2[i];
			acc += r.x;
			out5[i] = fma(P.scale, mu, dz);
			out6[i] = 0.5 * (dz * in3[i] * r.z + P.scale * (r.y - 1.0));
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out4[row] = 0.5 * s;
		}
	}
}

@compute @workgroup_size(wg)
fn gauss_kl_prior(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p5;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.cols;
		var acc = 0.0;
		for (var j = lid; j < P.cols; j += wg) {
			let i = base + j;
			let mu = in0[i];
			let r = kl_term(mu, in1[i]);
			acc += r.x;
			out3[i] = P.scale * mu;
			out4[i] = 0.5 * P.scale * (r.y - 1.0);
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out2[row] = 0.5 * s;
		}
	}
}

@compute @workgroup_size(wg)
fn gauss_kl_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p3;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.cols;
		var acc = 0.0;
		for (var j = lid; j < P.cols; j += wg) {
			acc += kl_term(in0[base + j], in1[base + j]).x;
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out2[row] = 0.5 * s;
		}
	}
}
