// fourier.wgsl — Fourier time features with a learned phase:
//   feat[k, j]     = sin(f_j · t_k + φ_j)
//   feat[k, H + j] = cos(f_j · t_k + φ_j)      for k < T, j < H
//
// Bindings (group 0):
//   0: t      array<f32>, [T], read
//   1: freq   array<f32>, [H], read
//   2: phase  array<f32>, [H], read
//   3: feat   array<f32>, [T, 2H], written
//   4: p      uniform { steps: u32 (T), harmonics: u32 (H) }
// Dispatch: ceil(T·H / 64) workgroups of 64 along x.

struct Params {
	steps: u32,
	harmonics: u32,
}

@group(0) @binding(0) var<storage, read> t: array<f32>;
@group(0) @binding(1) var<storage, read> freq: array<f32>;
@group(0) @binding(2) var<storage, read> phase: array<f32>;
@group(0) @binding(3) var<storage, read_write> feat: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	let i = gid.x;
	if (i >= p.steps * p.harmonics) {
		return;
	}
	let k = i / p.harmonics;
	let j = i % p.harmonics;
	let a = freq[j] * t[k] + phase[j];
	feat[k * 2u * p.harmonics + j] = sin(a);
	feat[k * 2u * p.harmonics + p.harmonics + j] = cos(a);
}
