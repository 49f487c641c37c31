// mala.wgsl — Metropolis-adjusted Langevin steps on a batch of chains (local search around
// replay-buffer samples). Two entry points per step, recorded in order:
//
// propose (bindings: 0 x [M, d] read, 1 g [M, d] read = ∇log R(x), 2 xp [M, d] written,
//          3 p uniform):
//   xp = x + η·g + sqrt(2η)·ξ,  ξ_j = lane j mod 4 of philox_normal4(Philox((b·nb + j/4,
//   step, stream, 3), seed))  (Philox domain 3, kernels.PhiloxDomainMALA)
// The caller then evaluates log R(xp) and ∇log R(xp) (targets.wgsl) into lrp, gp.
// accept (bindings: 0 x [M, d] rw, 1 g [M, d] rw, 2 lr [M] rw, 3 xp [M, d] read,
//         4 gp [M, d] read, 5 lrp [M] read, 6 acc [M] rw (+1 when accepted), 7 p uniform):
//   log α = β·(lrp − lr) + log q(x | xp) − log q(xp | x),  log q(b | a) = −|b − a − η∇log R(a)|²/(4η)
//   accept when log u < log α with u = philox_uniform(Philox((b, step, stream, 4), seed)):
//   x, g, lr ← xp, gp, lrp.
// Uniform p: { M, d, step, stream, seed_lo, seed_hi, nb: u32, eta, beta: f32 }.
// Dispatch: one invocation per chain, Grid1D(M, 64) workgroups of 64 (folded into y).
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

@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read> g_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> xp_out: array<f32>;
@group(0) @binding(3) var<uniform> pp: Params;

fn chain(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
	return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn propose(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
	let b = chain(wid, nwg, lid);
	if (b >= pp.M) {
		return;
	}
	let s = sqrt(2.0 * pp.eta);
	for (var q = 0u; q < pp.nb; q++) {
		let xi = philox_normal4(philox4x32_10(vec4<u32>(b * pp.nb + q, pp.step, pp.stream, 3u), vec2<u32>(pp.seed_lo, pp.seed_hi)));
		for (var l = 0u; l < min(4u, pp.d - 4u * q); l++) {
			let i = b * pp.d + 4u * q + l;
			xp_out[i] = x_in[i] + pp.eta * g_in[i] + s * xi[l];
		}
	}
}
