// bridge_trajectory.wgsl — a whole backward (Brownian-bridge) trajectory in one dispatch:
// from the terminal state z_T in the stack, z_k ~ p_B(z_k | z_{k+1}) = N(r_k·z_{k+1},
// σ²·dt·r_k·I), r_k = k/(k+1), for k = T−1 down to 0 (z_0 = 0, pinned), with log p_B
// accumulated. The same noise and arithmetic as T dispatches of bridge.wgsl (Philox domain
// 2, counter (b·nb + j/4, k, stream, 2)), so the fused and op-by-op paths draw the same
// trajectories; one invocation walks one row through every step.
//
// Bindings (group 0); the stack holds step k's row b at row k·rows + b:
//   0: zs     array<f32>, read+written: [(T+1)·rows, d]; z_T read, z_{T−1..0} written
//   1: logpb  array<f32>, read+written: [B] += Σ_{k≥1} log p_B(z_k | z_{k+1})
//   2: steps  array<vec4<f32>>, read: [T] (r_k, sqrt(σ²·dt·r_k), −(d/2)·ln(2π·σ²·dt·r_k), 0)
//   3: p      uniform { B, d, rows, T, stream, seed_lo, seed_hi, nb = ⌈d/4⌉: u32 }
// Dispatch: one invocation per row, Grid1D(B, 64) workgroups of 64.
//
//!include philox.wgsl

struct Params {
	B: u32,
	d: u32,
	rows: u32,
	T: u32,
	stream: u32,
	seed_lo: u32,
	seed_hi: u32,
	nb: u32,
}

@group(0) @binding(0) var<storage, read_write> zs: array<f32>;
@group(0) @binding(1) var<storage, read_write> logpb: array<f32>;
@group(0) @binding(2) var<storage, read> steps: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
	let b = (wid.x + wid.y * nwg.x) * 64u + lid.x;
	if (b >= p.B) {
		return;
	}
	var lp = 0.0;
	for (var k = p.T - 1u; k >= 1u; k--) {
		let st = steps[k];
		let next = ((k + 1u) * p.rows + b) * p.d;
		let cur = (k * p.rows + b) * p.d;
		var sq = 0.0;
		for (var q = 0u; q < p.nb; q++) {
			let eps = philox_normal4(philox4x32_10(vec4<u32>(b * p.nb + q, k, p.stream, 2u), vec2<u32>(p.seed_lo, p.seed_hi)));
			for (var l = 0u; l < min(4u, p.d - 4u * q); l++) {
				let j = 4u * q + l;
				zs[cur + j] = st.x * zs[next + j] + st.y * eps[l];
				sq += eps[l] * eps[l];
			}
		}
		// (z_k − r·z_{k+1})² / (σ²·dt·r) = ε²: the noise, not the rounded difference.
		lp = lp + (-0.5 * sq + st.z);
	}
	for (var j = 0u; j < p.d; j++) {
		zs[b * p.d + j] = 0.0; // z_0
	}
	logpb[b] = logpb[b] + lp;
}
