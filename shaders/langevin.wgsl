// langevin.wgsl — the Langevin-parametrised drift of one step k:
//   u[i] = clamp(nn[i] + scale[k] · clamp(g[i], −c, c), ±DRIFT_CLIP)
// where nn is the network's drift, g = ∇log R(z_k) and scale[k] the time-only network's
// output for step k; the outer clamp is the drift bound of every sampler (kernels.DriftClip,
// whose derivative tb_drift_grad.wgsl applies). Its gradients are in langevin_grad.wgsl.
//
// Bindings (group 0):
//   0: nn     array<f32>, [B, d], read
//   1: g      array<f32>, [B, d], read
//   2: scale  array<f32>, [T], read
//   3: u      array<f32>, [B, d], written
//   4: p      uniform { n = B·d, k: u32, clip c: f32 }
// Dispatch: ceil(n / 256) workgroups of 256 along x (folded into y beyond 65535).
//
//!include finite_clamp.wgsl

struct Params {
	n: u32,
	k: u32,
	clip: f32,
}

@group(0) @binding(0) var<storage, read> nn: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> u: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const DRIFT_CLIP: f32 = 1e4; // kernels.DriftClip

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let i = (wid.x + wid.y * nwg.x) * 256u + lid;
	if (i >= p.n) {
		return;
	}
	// A NaN gradient (outside the target's support) contributes nothing, as
	// torch.nan_to_num does in the reference implementation.
	let gi = finite_clamp(g[i], p.clip);
	u[i] = clamp(nn[i] + scale[p.k] * gi, -DRIFT_CLIP, DRIFT_CLIP);
}
