// sde.wgsl — one Euler–Maruyama step of the sampler SDE with its log-densities
// (DESIGN.md §1), fused: noise, update, log p_F and log p_B in one dispatch.
//
// Bindings (group 0), B samples of dimension d:
//   0: z      array<f32>, read:    [B, d]  z_k
//   1: u      array<f32>, read:    [B, d]  drift u(z_k, t_k) from the network
//   2: znext  array<f32>, written: [B, d]  z_{k+1} (a different buffer from z)
//   3: logpf  array<f32>, read+written: [B]  += log p_F(z_{k+1} | z_k)
//   4: logpb  array<f32>, read+written: [B]  += log p_B(z_k | z_{k+1}) (untouched when k = 0)
//   5: params uniform SDEParams (below; the host derives the f32 constants in float64)
// Entries and dispatch:
//   sde_row: one invocation per sample, 64 per workgroup: Grid1D(B, 64) workgroups
//            (d < 256, and every d on CPU adapters: no barriers, which lavapipe makes
//            expensive)
//   sde_wg:  one workgroup of 64 per sample: Grid1D(B, 1) workgroups (d ≥ 256 on GPUs,
//            where B invocations alone would leave the device idle)
//   Folded grids: linear id = wid.x + wid.y·nwg.x.
//
// Math (s_b = sqrt(σ²·dt + σ_explore²): σ_explore is an absolute std per step, as in the
// published code; t_k = k·dt):
//   ε ~ N(0, I): lane j mod 4 of philox_normal4(Philox((b·⌈d/4⌉ + j/4, k, stream, 1), seed))
//   z_{k+1} = z_k + u·dt + s_b·ε                                         (behaviour policy)
//   log p_F = Σ_j log N(z_{k+1,j}; z_{k,j} + u_j·dt, σ²·dt)                (policy, σ only)
//           = −½·Σ_j (s_b·ε_j)² / (σ²·dt) − (d/2)·ln(2π·σ²·dt)
//   log p_B = Σ_j log N(z_{k,j}; r·z_{k+1,j}, σ²·dt·r),  r = t_k / t_{k+1} = k/(k+1), k ≥ 1
// Each sample's sums run in a fixed order (sequentially in sde_row; per-thread strided then
// a fixed tree in sde_wg), so results are deterministic for a given shape and adapter.
//
//!include philox.wgsl

struct SDEParams {
	B: u32,
	d: u32,
	step: u32,
	stream: u32,
	seed_lo: u32,
	seed_hi: u32,
	bridge: u32,    // 1 when k ≥ 1 (log p_B is accumulated), else 0
	nb: u32,        // ⌈d/4⌉ Philox blocks per sample
	dt: f32,
	noise_std: f32, // s_b
	inv_var_f: f32, // 1 / (σ²·dt)
	logc_f: f32,    // −(d/2)·ln(2π·σ²·dt)
	ratio: f32,     // k / (k+1)
	inv_var_b: f32, // 1 / (σ²·dt·r)
	logc_b: f32,    // −(d/2)·ln(2π·σ²·dt·r)
}

@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read_write> znext: array<f32>;
@group(0) @binding(3) var<storage, read_write> logpf: array<f32>;
@group(0) @binding(4) var<storage, read_write> logpb: array<f32>;
@group(0) @binding(5) var<uniform> S: SDEParams;

const SDE_WG: u32 = 64u;

// sde_block advances the (up to) four coordinates 4q..4q+3 of sample b and returns their
// Σ(z_{k+1} − mean_F)² and Σ(z_k − r·z_{k+1})².
fn sde_block(b: u32, q: u32) -> vec2<f32> {
	let ctr = vec4<u32>(b * S.nb + q, S.step, S.stream, 1u);
	let eps = philox_normal4(philox4x32_10(ctr, vec2<u32>(S.seed_lo, S.seed_hi)));
	let j0 = 4u * q;
	let base = b * S.d + j0;
	let cnt = min(4u, S.d - j0);
	var sf = 0.0;
	var sb = 0.0;
	for (var l = 0u; l < cnt; l = l + 1u) {
		let i = base + l;
		let zk = z[i];
		let noise = S.noise_std * eps[l];
		let zn = zk + u[i] * S.dt + noise;
		znext[i] = zn;
		// z_{k+1} − (z_k + u·dt) is the noise itself: use it rather than the rounded difference.
		sf = sf + noise * noise;
		let db = zk - S.ratio * zn;
		sb = sb + db * db;
	}
	return vec2<f32>(sf, sb);
}

// sde_finish adds sample b's log-densities from its sums of squares.
fn sde_finish(b: u32, s: vec2<f32>) {
	logpf[b] = logpf[b] + (-0.5 * s.x * S.inv_var_f + S.logc_f);
	if (S.bridge != 0u) {
		logpb[b] = logpb[b] + (-0.5 * s.y * S.inv_var_b + S.logc_b);
	}
}

@compute @workgroup_size(64)
fn sde_row(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let b = (wid.x + wid.y * nwg.x) * SDE_WG + lid.x;
	if (b >= S.B) {
		return;
	}
	var s = vec2<f32>(0.0, 0.0);
	for (var q = 0u; q < S.nb; q = q + 1u) {
		s = s + sde_block(b, q);
	}
	sde_finish(b, s);
}

var<workgroup> sde_red: array<vec2<f32>, 64>;

@compute @workgroup_size(64)
fn sde_wg(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	// b is uniform across the workgroup, so the early return keeps barriers uniform.
	let b = wid.x + wid.y * nwg.x;
	if (b >= S.B) {
		return;
	}
	let t = lid.x;
	var s = vec2<f32>(0.0, 0.0);
	for (var q = t; q < S.nb; q = q + SDE_WG) {
		s = s + sde_block(b, q);
	}
	sde_red[t] = s;
	workgroupBarrier();
	for (var h = SDE_WG / 2u; h > 0u; h = h >> 1u) {
		if (t < h) {
			sde_red[t] = sde_red[t] + sde_red[t + h];
		}
		workgroupBarrier();
	}
	if (t == 0u) {
		sde_finish(b, sde_red[0]);
	}
}
