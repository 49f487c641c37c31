// mala_accept.wgsl — the Metropolis–Hastings half of a MALA step (see mala.wgsl for the
// math, the bindings' meaning and the dispatch).
//
// Bindings (group 0): 0 x [M, d] rw, 1 g [M, d] rw, 2 lr [M] rw, 3 xp [M, d] read,
// 4 gp [M, d] read, 5 lrp [M] read, 6 acc [M] rw, 7 p uniform (as in mala.wgsl).
//
//!include philox.wgsl

struct Params {
	M: u32,
	d: u32,
	step: u32,
	stream: u32,
	seed_lo: u32,
	seed_hi: u32,
	nb: u32,
	eta: f32,
	beta: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> lr: array<f32>;
@group(0) @binding(3) var<storage, read> xp: array<f32>;
@group(0) @binding(4) var<storage, read> gp: array<f32>;
@group(0) @binding(5) var<storage, read> lrp: array<f32>;
@group(0) @binding(6) var<storage, read_write> acc: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let b = (wid.x + wid.y * nwg.x) * 64u + lid;
	if (b >= p.M) {
		return;
	}
	// log q(xp | x) and log q(x | xp), up to the same constant.
	var fwd = 0.0;
	var bwd = 0.0;
	for (var j = 0u; j < p.d; j++) {
		let i = b * p.d + j;
		let a = xp[i] - x[i] - p.eta * g[i];
		let c = x[i] - xp[i] - p.eta * gp[i];
		fwd += a * a;
		bwd += c * c;
	}
	let log_alpha = p.beta * (lrp[b] - lr[b]) + (fwd - bwd) / (4.0 * p.eta);
	let u = philox_uniform(philox4x32_10(vec4<u32>(b, p.step, p.stream, 4u), vec2<u32>(p.seed_lo, p.seed_hi)).x);
	// A NaN proposal (log α NaN) is rejected: the comparison is false.
	if (log(u) < log_alpha) {
		for (var j = 0u; j < p.d; j++) {
			let i = b * p.d + j;
			x[i] = xp[i];
			g[i] = gp[i];
		}
		lr[b] = lrp[b];
		acc[b] += 1.0;
	}
}
