// target_gaussian.wgsl — a Gaussian target with a known normaliser, for analytic tests:
//   log R(x) = −½ (x − m)ᵀ P (x − m) + c,      ∇log R(x) = −P (x − m)
// With P = S⁻¹ and c = log Z − ½ log det(2πS), ∫R = Z.
//
// Bindings (group 0):
//   0: x     array<f32>, [B, d], read
//   1: mean  array<f32>, [d], read
//   2: prec  array<f32>, [d, d], read (symmetric)
//   3: logr  array<f32>, [B], written
//   4: grad  array<f32>, [B, d], written when p.want_grad = 1
//   5: p     uniform { batch: u32, dim: u32, want_grad: u32, c: f32 }
// Dispatch: ceil(B / 64) workgroups of 64 along x (folded into y beyond 65535).

struct Params {
	batch: u32,
	dim: u32,
	want_grad: u32,
	c: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> prec: array<f32>;
@group(0) @binding(3) var<storage, read_write> logr: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let b = (wid.x + wid.y * nwg.x) * 64u + lid;
	if (b >= p.batch) {
		return;
	}
	let d = p.dim;
	let base = b * d;
	var q = 0.0;
	for (var i = 0u; i < d; i++) {
		// (P (x − m))_i, then its dot product with (x − m).
		var pi = 0.0;
		for (var j = 0u; j < d; j++) {
			pi += prec[i * d + j] * (x[base + j] - mean[j]);
		}
		q += (x[base + i] - mean[i]) * pi;
		if (p.want_grad == 1u) {
			grad[base + i] = -pi;
		}
	}
	logr[b] = -0.5 * q + p.c;
}
