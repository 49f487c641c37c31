// ceiling.wgsl — an FMA-bound microkernel that measures the adapter's arithmetic ceiling
// for `osds bench` (what fraction of it each real kernel reaches).
//
// Bindings (group 0):
//   0: out  array<vec4<f32>>, one per invocation, written (keeps the loop from being
//           optimised away)
//   1: p    uniform Params { iters: u32, n: u32 (number of invocations), seed: f32 }
// Work: each invocation runs p.iters rounds of 8 independent vec4 FMAs:
//   FLOPs = n · iters · 8 · 4 · 2.
// Dispatch: ceil(n / 64) workgroups of 64 along x (folded into y beyond 65535).

struct Params {
	iters: u32,
	n: u32,
	seed: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let i = (wid.x + wid.y * nwg.x) * 64u + lid;
	if (i >= p.n) {
		return;
	}
	// Eight independent accumulator chains hide the FMA latency; the multiplier stays
	// just below 1 so values neither overflow nor flush to zero.
	let m = vec4<f32>(0.9999, 0.99991, 0.99992, 0.99993);
	let c = vec4<f32>(p.seed * 1e-3);
	var a0 = vec4<f32>(f32(i) * 1e-6);
	var a1 = a0 + 0.1;
	var a2 = a0 + 0.2;
	var a3 = a0 + 0.3;
	var a4 = a0 + 0.4;
	var a5 = a0 + 0.5;
	var a6 = a0 + 0.6;
	var a7 = a0 + 0.7;
	for (var k = 0u; k < p.iters; k++) {
		a0 = fma(a0, m, c);
		a1 = fma(a1, m, c);
		a2 = fma(a2, m, c);
		a3 = fma(a3, m, c);
		a4 = fma(a4, m, c);
		a5 = fma(a5, m, c);
		a6 = fma(a6, m, c);
		a7 = fma(a7, m, c);
	}
	out[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
