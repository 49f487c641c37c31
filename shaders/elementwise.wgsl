// elementwise.wgsl — activations (forward and backward) and elementwise arithmetic over
// flat float32 arrays of n elements (any shape: the launchers check that shapes agree).
//
// Bindings (group 0), per entry point; every array has n elements:
//   activate           0: x  read        1: y  write        2: params     y = f(x)
//   activate_backward  0: dy read        1: x  read         2: dx write   3: params
//                                                                         dx = dy * f'(x)
//   add                0: x  read        1: y  read         2: z  write   3: params   z = x + y
//   mul                0: x  read        1: y  read         2: z  write   3: params   z = x * y
//   axpy               0: x  read        1: y  read_write   2: params     y = alpha * x + y
//   scale              0: x  read        1: y  write        2: params     y = alpha * x
//   clamp_op           0: x  read        1: y  write        2: params     y = min(max(x, lo), hi)
// Entry points of one arity share binding slots; WGSL allows two declarations at one
// slot when no entry point uses both. The uniform params sit after the buffers.
// Uniform params: struct { n: u32, s0: f32, s1: f32 } — n is the element count; s0 is
//   alpha (axpy, scale) or lo (clamp); s1 is hi (clamp); unused fields are 0.
// Overrides: act (u32, a kernels.Activation) for activate and activate_backward;
//   wg (u32), the workgroup size: 256 on GPUs, the SIMD width on CPU adapters.
// Dispatch: on GPUs Grid1D(n, 256): ceil(n / 256) workgroups, one element per
//   invocation, folded into (x, y) beyond 65535 workgroups; the linear workgroup index is
//   wid.x + wid.y * nwg.x. On CPU adapters (lavapipe) a few workgroups per core, each
//   looping over a contiguous chunk (see chunk()). Any grid covers all n elements.

//!include activations.wgsl

override act: u32 = 0u;

// Workgroup size: 256 on GPUs; on CPU adapters the SIMD width (lavapipe's subgroup
// size), so that one SIMD chunk walks the workgroup's elements contiguously instead of
// 32 chunks each striding over the whole block (16M-element Add: 11 GB/s vs 3 GB/s).
override wg: u32 = 256u;

struct Params {
	n: u32,
	s0: f32,
	s1: f32,
}

// Unary entry points (activate, axpy, scale, clamp).
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y1: array<f32>;
@group(0) @binding(2) var<uniform> p2: Params;

// Binary entry points (activate_backward, add, mul): a second input at binding 1.
@group(0) @binding(1) var<storage, read> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> z2: array<f32>;
@group(0) @binding(3) var<uniform> p3: Params;

// chunk returns the elements [start, end) of this workgroup: with G workgroups in the
// (possibly folded) grid, workgroup g owns the contiguous chunk [g·per·wg, (g+1)·per·wg)
// clipped to n, per = ceil(n / (G·wg)); invocation lid visits start + lid, + wg, ... —
// coalesced on GPUs. GPU grids cover n (per = 1); on CPU adapters the launchers dispatch
// a few workgroups per core instead, because each workgroup is a task of its own there.
fn chunk(wid: vec3<u32>, nwg: vec3<u32>, n: u32) -> vec2<u32> {
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	return vec2<u32>(start, min(start + size, n));
}

@compute @workgroup_size(wg)
fn activate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = chunk(wid, nwg, p2.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		y1[i] = act_fwd(x[i], act);
	}
}

@compute @workgroup_size(wg)
fn activate_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	// Here binding 0 is dy and binding 1 the pre-activation x.
	let c = chunk(wid, nwg, p3.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		z2[i] = x[i] * act_bwd(b1[i], act);
	}
}

@compute @workgroup_size(wg)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = chunk(wid, nwg, p3.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		z2[i] = x[i] + b1[i];
	}
}

@compute @workgroup_size(wg)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = chunk(wid, nwg, p3.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		z2[i] = x[i] * b1[i];
	}
}

@compute @workgroup_size(wg)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = chunk(wid, nwg, p2.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		// fma: one rounding, like the float64 reference rounded once to f32.
		y1[i] = fma(p2.s0, x[i], y1[i]);
	}
}

@compute @workgroup_size(wg)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = chunk(wid, nwg, p2.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		y1[i] = p2.s0 * x[i];
	}
}

@compute @workgroup_size(wg)
fn clamp_op(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = chunk(wid, nwg, p2.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		// min(max()) rather than clamp(): clamp's result for NaN x is not pinned down.
			y1[i] = min(max(x[i], p2.s0), p2.s1);
	}
}
