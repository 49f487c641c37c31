// fourier_grad.wgsl — gradient of fourier.wgsl with respect to the phase:
//   dphase[j] += Σ_k ( dfeat[k, j] · cos(a_kj) − dfeat[k, H + j] · sin(a_kj) ),
//   a_kj = f_j · t_k + φ_j
//
// Bindings (group 0):
//   0: t       array<f32>, [T], read
//   1: freq    array<f32>, [H], read
//   2: phase   array<f32>, [H], read
//   3: dfeat   array<f32>, [T, 2H], read
//   4: dphase  array<f32>, [H], read-write (accumulated)
//   5: p       uniform { steps: u32 (T), harmonics: u32 (H) }
// One invocation per harmonic sums over k in increasing order (deterministic).
// Dispatch: ceil(H / 64) workgroups of 64 along x.

struct Params {
	steps: u32,
	harmonics: u32,
}

@group(0) @binding(0) var<storage, read> t: array<f32>;
@group(0) @binding(1) var<storage, read> freq: array<f32>;
@group(0) @binding(2) var<storage, read> phase: array<f32>;
@group(0) @binding(3) var<storage, read> dfeat: array<f32>;
@group(0) @binding(4) var<storage, read_write> dphase: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	let j = gid.x;
	if (j >= p.harmonics) {
		return;
	}
	let h = p.harmonics;
	var s = 0.0;
	for (var k = 0u; k < p.steps; k++) {
		let a = freq[j] * t[k] + phase[j];
		s += dfeat[k * 2u * h + j] * cos(a) - dfeat[k * 2u * h + h + j] * sin(a);
	}
	dphase[j] += s;
}
