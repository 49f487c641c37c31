// targets.wgsl — log R(x) and ∇log R(x) of the synthetic benchmark targets, one sample
// per invocation (d is small: 2, 10, 32).
//
// Bindings (group 0):
//   0: x     array<f32>, [B, d] row-major, read
//   1: logr  array<f32>, [B], written: log R(x_b)
//   2: grad  array<f32>, [B, d], written: ∇log R(x_b) when p.want_grad = 1 (else untouched)
//   3: p     uniform Params { batch: u32, dim: u32, want_grad: u32 }
// Entry points: gmm25 (d = 2), funnel (d = 10), manywell (d = 32); the math of each is in
// the doc comments of osds/train (GMM25, Funnel, Manywell) and is restated below.
// Dispatch: ceil(B / 64) workgroups of 64 along x (folded into y beyond 65535).

struct Params {
	batch: u32,
	dim: u32,
	want_grad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> logr: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const LOG_2PI: f32 = 1.8378770664093453;

fn sample_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
	return (wid.x + wid.y * nwg.x) * 64u + lid;
}

// 25GMM: means on {-10,-5,0,5,10}², covariance 0.3 I, equal weights.
// log R = logsumexp_k [-log 25 - log(2π·0.3) - |x - μ_k|² / 0.6]
// ∇log R = Σ_k r_k (μ_k - x) / 0.3 with responsibilities r_k.
@compute @workgroup_size(64)
fn gmm25(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
	let b = sample_index(wid, nwg, lid);
	if (b >= p.batch) {
		return;
	}
	let x0 = x[2u * b];
	let x1 = x[2u * b + 1u];
	// Two passes over the 25 components: the maximum first, for a stable logsumexp.
	var m = -3.0e38;
	for (var k = 0u; k < 25u; k++) {
		let d0 = x0 - (-10.0 + 5.0 * f32(k / 5u));
		let d1 = x1 - (-10.0 + 5.0 * f32(k % 5u));
		m = max(m, -(d0 * d0 + d1 * d1) / 0.6);
	}
	var s = 0.0;
	var g0 = 0.0;
	var g1 = 0.0;
	for (var k = 0u; k < 25u; k++) {
		let d0 = x0 - (-10.0 + 5.0 * f32(k / 5u));
		let d1 = x1 - (-10.0 + 5.0 * f32(k % 5u));
		let w = exp(-(d0 * d0 + d1 * d1) / 0.6 - m);
		s += w;
		g0 -= w * d0;
		g1 -= w * d1;
	}
	logr[b] = m + log(s) - log(25.0) - LOG_2PI - log(0.3);
	if (p.want_grad == 1u) {
		grad[2u * b] = g0 / (s * 0.3);
		grad[2u * b + 1u] = g1 / (s * 0.3);
	}
}

// Funnel (d = 10): x0 ~ N(0, 9), x_i | x0 ~ N(0, e^{x0}).
// log R = -½log2π - ½log9 - x0²/18 + Σ_{i≥1} [-½log2π - x0/2 - ½ x_i² e^{-x0}]
@compute @workgroup_size(64)
fn funnel(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
	let b = sample_index(wid, nwg, lid);
	if (b >= p.batch) {
		return;
	}
	let base = b * p.dim;
	let a = x[base];
	let e = exp(-a);
	var sq = 0.0;
	for (var i = 1u; i < p.dim; i++) {
		let v = x[base + i];
		sq += v * v;
		if (p.want_grad == 1u) {
			grad[base + i] = -v * e;
		}
	}
	let n = f32(p.dim - 1u);
	logr[b] = -0.5 * LOG_2PI - 0.5 * log(9.0) - a * a / 18.0 + n * (-0.5 * LOG_2PI - 0.5 * a) - 0.5 * sq * e;
	if (p.want_grad == 1u) {
		grad[base] = -a / 9.0 - 0.5 * n + 0.5 * sq * e;
	}
}

// Manywell (d = 32): Σ over pairs (a, b) = (x_2k, x_2k+1) of -a⁴ + 6a² + a/2 - b²/2.
// ∂/∂a = -4a³ + 12a + ½, ∂/∂b = -b.
@compute @workgroup_size(64)
fn manywell(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
	let b = sample_index(wid, nwg, lid);
	if (b >= p.batch) {
		return;
	}
	let base = b * p.dim;
	var acc = 0.0;
	for (var k = 0u; k + 1u < p.dim; k += 2u) {
		let u = x[base + k];
		let v = x[base + k + 1u];
		let u2 = u * u;
		acc += (-u2 + 6.0) * u2 + 0.5 * u - 0.5 * v * v;
		if (p.want_grad == 1u) {
			grad[base + k] = (-4.0 * u2 + 12.0) * u + 0.5;
			grad[base + k + 1u] = -v;
		}
	}
	logr[b] = acc;
}
