// bridge.wgsl — one step of a backward (Brownian-bridge) trajectory from a terminal
// state: z_k drawn from p_B(z_k | z_{k+1}) = N(r·z_{k+1}, σ²·dt·r·I), r = t_k/t_{k+1} = k/(k+1),
// with log p_B accumulated; for k = 0 the bridge is pinned: z_0 = 0 and log p_B += 0.
// Off-policy trajectories for training (replay buffer, local search) and for the EUBO.
//
// Bindings (group 0), B samples of dimension d:
//   0: znext  array<f32>, read:    [B, d]  z_{k+1}
//   1: z      array<f32>, written: [B, d]  z_k
//   2: logpb  array<f32>, read+written: [B]  += log p_B(z_k | z_{k+1}) (untouched when k = 0)
//   3: p      uniform { B, d, step k, stream, seed_lo, seed_hi, nb = ⌈d/4⌉: u32,
//                       ratio r, noise_std sqrt(σ²·dt·r), logc −(d/2)·ln(2π·σ²·dt·r): f32 }
// Noise: ε_j = lane j mod 4 of philox_normal4(Philox((b·nb + j/4, k, stream, 2), seed))
// (Philox domain 2, kernels.PhiloxDomainBridge).
// Dispatch: one invocation per sample, Grid1D(B, 64) workgroups of 64 (folded into y).
//
//!include philox.wgsl

struct Params {
	B: u32,
	d: u32,
	step: u32,
	stream: u32,
	seed_lo: u32,
	seed_hi: u32,
	nb: u32,
	ratio: f32,
	noise_std: f32,
	logc: f32,
}

@group(0) @binding(0) var<storage, read> znext: array<f32>;
@group(0) @binding(1) var<storage, read_write> z: array<f32>;
@group(0) @binding(2) var<storage, read_write> logpb: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
	let b = (wid.x + wid.y * nwg.x) * 64u + lid.x;
	if (b >= p.B) {
		return;
	}
	if (p.step == 0u) {
		for (var j = 0u; j < p.d; j++) {
			z[b * p.d + j] = 0.0;
		}
		return;
	}
	var sq = 0.0;
	for (var q = 0u; q < p.nb; q++) {
		let eps = philox_normal4(philox4x32_10(vec4<u32>(b * p.nb + q, p.step, p.stream, 2u), vec2<u32>(p.seed_lo, p.seed_hi)));
		for (var l = 0u; l < min(4u, p.d - 4u * q); l++) {
			let i = b * p.d + 4u * q + l;
			z[i] = p.ratio * znext[i] + p.noise_std * eps[l];
			sq += eps[l] * eps[l];
		}
	}
	// (z_k − r·z_{k+1})² / (σ²·dt·r) = ε²: use the noise, not the rounded difference.
	logpb[b] += -0.5 * sq + p.logc;
}
