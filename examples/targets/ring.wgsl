// ring.wgsl — an osds WGSL target: eight Gaussians on a circle,
//
//   R(z) = Σ_k exp(−|z − μ_k|² / (2 s²)),   μ_k = r (cos 2πk/8, sin 2πk/8),  r = 3, s = 0.4,
//
// unnormalised, with log Z = log(8 · 2π s²) in closed form (each term integrates to
// 2π s²). Neighbouring modes are 2r sin(π/8) = 2.3 apart, 5.7 s: a sampler has to find
// all eight.
//   osds train --target wgsl:examples/targets/ring.wgsl --iters 2000 --out runs/ring
//   osds eval runs/ring/checkpoint.safetensors     # log Ẑ, log Ẑ^RW and their errors
// See README.md for the contract: this file declares D, log_density, its exact gradient
// grad_log_density, LOG_Z and SIGMA2; osds declares State = array<f32, D>.

const D: u32 = 2u;             // a state is (z_0, z_1)
const LOG_Z: f32 = 2.0847371;  // log(8 · 2π · 0.16) = log(2.56 π)
const SIGMA2: f32 = 4.0;       // σ = 2: Brownian motion from 0 already reaches the ring

const K: u32 = 8u;             // components
const RADIUS: f32 = 3.0;
const S2: f32 = 0.16;          // s², the variance of each component

fn mean(k: u32) -> vec2<f32> {
	let a = 6.2831853 * f32(k) / f32(K);
	return RADIUS * vec2<f32>(cos(a), sin(a));
}

// e_k(z) = −|z − μ_k|² / (2 s²), the log of term k.
fn term(z: State, k: u32) -> f32 {
	let d = vec2<f32>(z[0], z[1]) - mean(k);
	return -dot(d, d) / (2.0 * S2);
}

// log R = m + log Σ_k exp(e_k − m), m = max_k e_k: far from the ring every exp(e_k)
// underflows to 0 in f32, and log 0 would be −inf.
fn log_density(z: State) -> f32 {
	var m = term(z, 0u);
	for (var k = 1u; k < K; k++) {
		m = max(m, term(z, k));
	}
	var s = 0.0;
	for (var k = 0u; k < K; k++) {
		s += exp(term(z, k) - m);
	}
	return m + log(s);
}

// ∇log R = Σ_k w_k (μ_k − z) / s², with the responsibilities w_k = exp(e_k − log R).
fn grad_log_density(z: State) -> State {
	let lr = log_density(z);
	let p = vec2<f32>(z[0], z[1]);
	var g = vec2<f32>();
	for (var k = 0u; k < K; k++) {
		g += exp(term(z, k) - lr) * (mean(k) - p) / S2;
	}
	var out: State;
	out[0] = g.x;
	out[1] = g.y;
	return out;
}
