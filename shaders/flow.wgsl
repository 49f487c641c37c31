// flow.wgsl — the kernels of an affine-coupling normalizing flow (RealNVP): column
// gather/scatter by a coupling's partition, the coupling forward and inverse with their
// log-determinant, their backward, the dequantise-and-logit input transform, the standard
// normal negative log-likelihood and the sigmoid output transform. Every tensor is
// float32 row-major [B, D] (B = rows, D = cols) unless noted.
//
// A coupling splits the D columns by a permutation perm [D] (u32): the first na entries
// are the conditioning set A, the other nb = D − na the transformed set B. Its network
// reads x[:, A] and writes h [B, 2·nb]: h[:, j] = ŝ_j, h[:, nb + j] = t_j for the column
// B_j = perm[na + j]. With s = a·tanh(ŝ/a) (a = p.clamp, the soft bound of the log-scale):
//
//   forward   out[A] = in[A]    out[B_j] = in[B_j]·exp(s_j) + t_j     ld[b] += Σ_j s_j
//   inverse   out[A] = in[A]    out[B_j] = (in[B_j] − t_j)·exp(−s_j)  ld[b] −= Σ_j s_j
//   backward (g = p.ldgrad = ∂L/∂ld[b], the same for every row; s' = 1 − tanh²(ŝ/a)):
//     forward   din[B_j] = dout·e^s   dh[t_j] = dout          dh[ŝ_j] = (dout·in[B_j]·e^s + g)·s'
//     inverse   din[B_j] = dout·e^−s  dh[t_j] = −dout·e^−s    dh[ŝ_j] = −(dout·out[B_j] + g)·s'
//     both      din[A] = dout[A]  (the network's input gradient is added by scatter_add_cols)
//
//   gather_cols       dst[b, i] = src[b, perm[i]]           (i < na; dst [B, na])
//   scatter_add_cols  dst[b, perm[i]] += src[b, i]          (i < na; src [B, na])
//   dequant_logit     k = round(255·pix), x = (k + u)/256, q = α + (1 − 2α)·x,
//                     y = log q − log(1 − q)   (1 − q computed as α + (1 − 2α)·(1 − x)),
//                     ld[b] = Σ_d log((1 − 2α)/256) − log q − log(1 − q)   (overwritten)
//   gauss_nll         nll[b] = ½ Σ_d z² + (D/2)·log 2π − ld[b]       dz = scale·z
//   logit_out         out = clamp((sigmoid(y) − α)/(1 − 2α), 0, 1)
//   logit_out_bwd     dy = dout·sigmoid'(y)/(1 − 2α) where 0 < (sigmoid(y) − α)/(1 − 2α) < 1, else 0
//
// Bindings (group 0), per entry point; the uniform params sit after the buffers. Entry
// points share binding slots (WGSL allows two declarations at one slot when no entry
// point uses both), hence slot-named variables (in0 = read f32 at slot 0, idx2 = read u32
// at slot 2, out3 = written f32 at slot 3, ...):
//   coupling_ld       0: in [B, D]   1: h [B, 2nb]   2: perm u32 [D]   3: out [B, D]   4: ld [B] (+=)   5: params
//   coupling          0: in [B, D]   1: h [B, 2nb]   2: perm u32 [D]   3: out [B, D]   4: params
//   coupling_bwd      0: in [B, D]   1: h [B, 2nb]   2: perm u32 [D]   3: dout [B, D]
//                     4: dh [B, 2nb]   5: din [B, D]   6: params
//   gather_cols       0: src [B, D]   1: perm u32 [D]   2: dst [B, na]   3: params
//   scatter_add_cols  0: src [B, na]  1: perm u32 [D]   2: dst [B, D] (+=)   3: params
//   dequant_logit     0: pix [B, D]   1: u [B, D]   2: y [B, D]   3: ld [B]   4: params
//   gauss_nll         0: z [B, D]   1: ld [B]   2: nll [B]   3: dz [B, D]   4: params
//   gauss_nll_fwd     0: z [B, D]   1: ld [B]   2: nll [B]   3: params
//   logit_out         0: y [B, D]   1: out [B, D]   2: params
//   logit_out_bwd     0: dout [B, D]   1: y [B, D]   2: dy [B, D]   3: params
// Uniform params: struct { rows: u32 (B), d: u32 (D), na: u32, nb: u32, clamp: f32 (a),
//   ldgrad: f32 (g), alpha: f32 (α), scale: f32, nan_bits: u32 (0x7FC00000, a quiet NaN:
//   WGSL rejects a NaN constant) }; unused fields are 0.
// Overrides: inverse (bool) selects the inverse coupling in coupling, coupling_ld and
//   coupling_bwd; wg (u32), the workgroup size: on GPUs 256 for the elementwise kernels
//   and 32..256 by row length for the row kernels; on CPU adapters the SIMD width.
// Dispatch: the row kernels (coupling_ld, dequant_logit, gauss_nll, gauss_nll_fwd) give
//   each workgroup a contiguous block of rows, ceil(B / G) for G workgroups in the
//   (possibly folded) grid, and reduce each row with the whole workgroup: on GPUs
//   Grid1D(B, 1), one row per workgroup; on CPU adapters a few workgroups per core. The
//   others are elementwise over B·D (coupling, coupling_bwd, logit_out, logit_out_bwd) or
//   B·na (gather_cols, scatter_add_cols) items, workgroup g owning a contiguous chunk of
//   them (on GPUs Grid1D(items, 256), one item per invocation). The linear workgroup
//   index is wid.x + wid.y·nwg.x.
//
// Determinism: lane k of a row workgroup sums the row's items k, k + wg, ... in order and
// lane 0 merges the partials in lane order; no atomics, so the log-determinants and
// losses are bit-reproducible for a given wg. A perm entry ≥ D (only possible if a GPU
// kernel wrote it) makes gather_cols write NaN and is skipped elsewhere.

override wg: u32 = 64u;
override inverse: bool = false;

const LOG_2PI: f32 = 1.8378770664093453;

struct Params {
	rows: u32,
	d: u32,
	na: u32,
	nb: u32,
	clamp: f32,
	ldgrad: f32,
	alpha: f32,
	scale: f32,
	nan_bits: u32,
}

@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(1) var<storage, read> idx1: array<u32>;
@group(0) @binding(1) var<storage, read_write> out1: array<f32>;
@group(0) @binding(2) var<storage, read> idx2: array<u32>;
@group(0) @binding(2) var<storage, read_write> out2: array<f32>;
@group(0) @binding(2) var<uniform> p2: Params;
@group(0) @binding(3) var<storage, read> in3: array<f32>;
@group(0) @binding(3) var<storage, read_write> out3: array<f32>;
@group(0) @binding(3) var<uniform> p3: Params;
@group(0) @binding(4) var<storage, read_write> out4: array<f32>;
@group(0) @binding(4) var<uniform> p4: Params;
@group(0) @binding(5) var<storage, read_write> out5: array<f32>;
@group(0) @binding(5) var<uniform> p5: Params;
@group(0) @binding(6) var<uniform> p6: Params;

var<workgroup> part: array<f32, wg>;
var<workgroup> total: f32;

// row_block returns this workgroup's rows [first, last) (see Dispatch above).
fn row_block(wid: vec3<u32>, nwg: vec3<u32>, rows: u32) -> vec2<u32> {
	let groups = nwg.x * nwg.y;
	let per = (rows + groups - 1u) / groups;
	let first = min((wid.x + wid.y * nwg.x) * per, rows);
	return vec2<u32>(first, min(first + per, rows));
}

// chunk returns this workgroup's items [start, end) of n (see Dispatch above).
fn chunk(wid: vec3<u32>, nwg: vec3<u32>, n: u32) -> vec2<u32> {
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	return vec2<u32>(start, min(start + size, n));
}

// row_sum returns Σ over the lanes of v, merged by lane 0 in lane order. Two barriers; a
// lane may write part again (next row) as soon as it has read the result.
fn row_sum(v: f32, lid: u32) -> f32 {
	part[lid] = v;
	workgroupBarrier();
	if (lid == 0u) {
		var s = part[0];
		for (var k = 1u; k < wg; k++) {
			s += part[k];
		}
		total = s;
	}
	workgroupBarrier();
	return total;
}

// soft_clamp returns (s, ds/dŝ) for s = a·tanh(ŝ/a). tanh's argument is clamped to ±15
// (tanh = ±1 in f32 there) because WGSL's tanh returns NaN for large |x| on some backends.
fn soft_clamp(sh: f32, a: f32) -> vec2<f32> {
	let th = tanh(clamp(sh / a, -15.0, 15.0));
	return vec2<f32>(a * th, 1.0 - th * th);
}

// couple returns (out[B_j], s_j) for the input value v of column B_j and network outputs
// sh = ŝ_j, t = t_j.
fn couple(v: f32, sh: f32, t: f32, a: f32) -> vec2<f32> {
	let s = soft_clamp(sh, a).x;
	if (inverse) {
		return vec2<f32>((v - t) * exp(-s), s);
	}
	return vec2<f32>(fma(v, exp(s), t), s);
}

@compute @workgroup_size(wg)
fn coupling_ld(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p5;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.d;
		let hbase = row * 2u * P.nb;
		var acc = 0.0;
		for (var i = lid; i < P.d; i += wg) {
			let c = idx2[i];
			if (c >= P.d) {
				continue;
			}
			if (i < P.na) {
				out3[base + c] = in0[base + c];
			} else {
				let j = i - P.na;
				let r = couple(in0[base + c], in1[hbase + j], in1[hbase + P.nb + j], P.clamp);
				out3[base + c] = r.x;
				acc += r.y;
			}
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out4[row] += select(s, -s, inverse);
		}
	}
}

@compute @workgroup_size(wg)
fn coupling(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p4;
	let ch = chunk(wid, nwg, P.rows * P.d);
	for (var k = ch.x + lid; k < ch.y; k += wg) {
		let row = k / P.d;
		let i = k - row * P.d;
		let c = idx2[i];
		if (c >= P.d) {
			continue;
		}
		let base = row * P.d;
		if (i < P.na) {
			out3[base + c] = in0[base + c];
		} else {
			let j = i - P.na;
			let hbase = row * 2u * P.nb;
			out3[base + c] = couple(in0[base + c], in1[hbase + j], in1[hbase + P.nb + j], P.clamp).x;
		}
	}
}

@compute @workgroup_size(wg)
fn coupling_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p6;
	let ch = chunk(wid, nwg, P.rows * P.d);
	for (var k = ch.x + lid; k < ch.y; k += wg) {
		let row = k / P.d;
		let i = k - row * P.d;
		let c = idx2[i];
		if (c >= P.d) {
			continue;
		}
		let base = row * P.d;
		let g = in3[base + c];
		if (i < P.na) {
			out5[base + c] = g;
			continue;
		}
		let j = i - P.na;
		let hs = row * 2u * P.nb + j;
		let ht = hs + P.nb;
		let sc = soft_clamp(in1[hs], P.clamp);
		let v = in0[base + c];
		let t = in1[ht];
		if (inverse) {
			let e = exp(-sc.x);
			let o = (v - t) * e;
			out5[base + c] = g * e;
			out4[ht] = -g * e;
			out4[hs] = -fma(g, o, P.ldgrad) * sc.y;
		} else {
			let e = exp(sc.x);
			out5[base + c] = g * e;
			out4[ht] = g;
			out4[hs] = fma(g * v, e, P.ldgrad) * sc.y;
		}
	}
}

@compute @workgroup_size(wg)
fn gather_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p3;
	let ch = chunk(wid, nwg, P.rows * P.na);
	for (var k = ch.x + lid; k < ch.y; k += wg) {
		let row = k / P.na;
		let c = idx1[k - row * P.na];
		// A bad index reads nothing out of bounds and cannot pass unnoticed.
		out2[k] = select(bitcast<f32>(P.nan_bits), in0[row * P.d + min(c, P.d - 1u)], c < P.d);
	}
}

@compute @workgroup_size(wg)
fn scatter_add_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p3;
	let ch = chunk(wid, nwg, P.rows * P.na);
	for (var k = ch.x + lid; k < ch.y; k += wg) {
		let row = k / P.na;
		let c = idx1[k - row * P.na];
		if (c < P.d) {
			out2[row * P.d + c] += in0[k];
		}
	}
}

@compute @workgroup_size(wg)
fn dequant_logit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p4;
	let rb = row_block(wid, nwg, P.rows);
	let lo = P.alpha;
	let span = 1.0 - 2.0 * P.alpha;
	let ldc = log(span / 256.0);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.d;
		var acc = 0.0;
		for (var j = lid; j < P.d; j += wg) {
			let k = round(255.0 * in0[base + j]);
			let u = in1[base + j];
			// q and 1 − q each from its own side, (k + u) and (256 − k) − u: exact to a
			// few ulp even where the other is within 1e-6 of 1 (α = 1e-6, white pixels).
			let q = fma(span, (k + u) / 256.0, lo);
			let lq = log(q);
			let l1q = log(fma(span, ((256.0 - k) - u) / 256.0, lo));
			out2[base + j] = lq - l1q;
			acc += ldc - lq - l1q;
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out3[row] = s;
		}
	}
}

@compute @workgroup_size(wg)
fn gauss_nll(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p4;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.d;
		var acc = 0.0;
		for (var j = lid; j < P.d; j += wg) {
			let z = in0[base + j];
			acc += z * z;
			out3[base + j] = P.scale * z;
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out2[row] = 0.5 * (s + f32(P.d) * LOG_2PI) - in1[row];
		}
	}
}

@compute @workgroup_size(wg)
fn gauss_nll_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p3;
	let rb = row_block(wid, nwg, P.rows);
	for (var row = rb.x; row < rb.y; row++) {
		let base = row * P.d;
		var acc = 0.0;
		for (var j = lid; j < P.d; j += wg) {
			let z = in0[base + j];
			acc += z * z;
		}
		let s = row_sum(acc, lid);
		if (lid == 0u) {
			out2[row] = 0.5 * (s + f32(P.d) * LOG_2PI) - in1[row];
		}
	}
}

// sigmoid_pos returns sigmoid(y) without overflow for any finite y.
fn sigmoid_pos(y: f32) -> f32 {
	let e = exp(-abs(y));
	return select(e, 1.0, y >= 0.0) / (1.0 + e);
}

@compute @workgroup_size(wg)
fn logit_out(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p2;
	let ch = chunk(wid, nwg, P.rows * P.d);
	let span = 1.0 - 2.0 * P.alpha;
	for (var k = ch.x + lid; k < ch.y; k += wg) {
		out1[k] = clamp((sigmoid_pos(in0[k]) - P.alpha) / span, 0.0, 1.0);
	}
}

@compute @workgroup_size(wg)
fn logit_out_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let P = p3;
	let ch = chunk(wid, nwg, P.rows * P.d);
	let span = 1.0 - 2.0 * P.alpha;
	for (var k = ch.x + lid; k < ch.y; k += wg) {
		let sg = sigmoid_pos(in1[k]);
		let v = (sg - P.alpha) / span;
		let inside = v > 0.0 && v < 1.0;
		out2[k] = select(0.0, in0[k] * sg * (1.0 - sg) / span, inside);
	}
}
