// logpf.wgsl — the forward log-density of a given transition, for trajectories the
// sampler did not draw (backward trajectories from data or a replay buffer):
//   logpf[b] += Σ_j log N(z1[b, j]; z0[b, j] + u[b, j]·dt, σ²·dt)
//
// Bindings (group 0), B samples of dimension d:
//   0: z0     array<f32>, read: [B, d]  z_k
//   1: z1     array<f32>, read: [B, d]  z_{k+1}
//   2: u      array<f32>, read: [B, d]  the policy's drift at (z_k, t_k)
//   3: logpf  array<f32>, read+written: [B]
//   4: p      uniform { B, d: u32, dt, inv_var = 1/(σ²·dt), logc = −(d/2)·ln(2π·σ²·dt): f32 }
// Dispatch: one invocation per sample (fixed summation order), Grid1D(B, 64) workgroups of 64.

struct Params {
	B: u32,
	d: u32,
	dt: f32,
	inv_var: f32,
	logc: f32,
}

@group(0) @binding(0) var<storage, read> z0: array<f32>;
@group(0) @binding(1) var<storage, read> z1: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> logpf: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
	let b = (wid.x + wid.y * nwg.x) * 64u + lid.x;
	if (b >= p.B) {
		return;
	}
	var sq = 0.0;
	for (var j = 0u; j < p.d; j++) {
		let i = b * p.d + j;
		let r = z1[i] - z0[i] - u[i] * p.dt;
		sq += r * r;
	}
	logpf[b] += -0.5 * sq * p.inv_var + p.logc;
}
