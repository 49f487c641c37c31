// selftest.wgsl — the kernel `osds info` runs to prove the adapter computes correctly.
//
// Bindings (group 0):
//   0: x  array<f32>, n elements, read
//   1: y  array<f32>, n elements, written: y[i] = a * x[i] * x[i] + b * x[i] + c
// Overrides: a, b, c (f32).
// Dispatch: ceil(n / 256) workgroups of 256 along x.

override a: f32 = 1.0;
override b: f32 = 0.0;
override c: f32 = 0.0;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
	let i = id.x;
	if (i >= arrayLength(&y)) {
		return;
	}
	let v = x[i];
	// Horner form: one rounding less than the expanded polynomial.
	y[i] = (a * v + b) * v + c;
}
