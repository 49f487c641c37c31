// user_function.wgsl — the harness of a user's WGSL function (kernels.UserWGSL): a scalar
// f(x) and its gradient ∇_x f(x) for the rows x_b of x [B, D]. Two kinds use it:
//   WGSL constraints (posterior.WGSL):  $FN = log_reward,  $GRAD = grad_log_reward,
//                                       $ROW = Sample, D generated (the prior's row width)
//   WGSL targets (train.WGSLTarget):    $FN = log_density, $GRAD = grad_log_density,
//                                       $ROW = State, D declared by the user's file
//
// This file is a template: kernels.UserWGSL replaces $ROW, $FN and $GRAD by the kind's
// names (in place, so line numbers stay those of this file) and assembles the module as
//   <the user's file, unchanged>  <this file>  <generated lines>
// so that compiler line numbers in the user's part are the user's own (WGSL declarations
// are order-independent). The generated lines declare D (constraints) or assert that the
// user's D is the one osds read from the file (targets). The user's file defines, over ONE
// row,
//   fn $FN(x: $ROW) -> f32                 (required)
//   fn $GRAD(x: $ROW) -> $ROW              (optional: ∇_x f(x))
// with $ROW = array<f32, D> declared here. The lines between `//!if grad` and `//!end` are
// blanked (line count kept) when the user's file defines no $GRAD. Every name of the
// harness starts with osds_ (or Osds) to stay out of the user's way.
//
// osds_value:     out_b  = $FN(x_b)
// osds_grad_user: dx_b   = $GRAD(x_b)
// osds_grad_fd:   dx_bi  = ($FN(x_b + h_i e_i) − $FN(x_b − h_i e_i)) / (2 h_i),
//                 h_i = h · max(|x_bi|, 1), the denominator taken as the difference of the
//                 two rounded abscissae (central finite differences: 2 evaluations of
//                 $FN per invocation, 2D per row)
//
// Bindings (group 0):
//   osds_value:     0 x [B, D] read, 1 out [B] written, 2 p
//   osds_grad_user: 0 x [B, D] read, 1 dx [B, D] written, 2 p
//   osds_grad_fd:   0 x [B, D] read, 1 dx [B, D] written, 2 p
//   p: uniform { rows: u32 = B, h: f32 (relative step, osds_grad_fd only), 2 × u32 padding }
// Dispatch: workgroups of 64 along x (folded into y beyond 65535 groups, linear index
// wid.x + wid.y · nwg.x); osds_value and osds_grad_user one invocation per row,
// ceil(B / 64) workgroups; osds_grad_fd one invocation per (row, coordinate), b-major,
// ceil(B·D / 64) workgroups.

alias $ROW = array<f32, D>;

struct OsdsParams {
	rows: u32,
	h: f32,
	pad0: u32,
	pad1: u32,
}

@group(0) @binding(0) var<storage, read> osds_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> osds_out: array<f32>;
@group(0) @binding(2) var<uniform> osds_p: OsdsParams;

fn osds_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
	return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn osds_value(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
	let b = osds_index(wid, nwg, lid);
	if (b >= osds_p.rows) {
		return;
	}
	var x: $ROW;
	for (var i = 0u; i < D; i++) {
		x[i] = osds_x[b * D + i];
	}
	let f: f32 = $FN(x);
	osds_out[b] = f;
}

@compute @workgroup_size(64)
fn osds_grad_fd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
	let k = osds_index(wid, nwg, lid);
	if (k >= osds_p.rows * D) {
		return;
	}
	let b = k / D;
	let i = k % D;
	var x: $ROW;
	for (var j = 0u; j < D; j++) {
		x[j] = osds_x[b * D + j];
	}
	let t = x[i];
	let h = osds_p.h * max(abs(t), 1.0);
	let tp = t + h;
	let tm = t - h;
	// One call site in a loop of two: half the code of two calls once inlined.
	var f = vec2<f32>();
	for (var s = 0u; s < 2u; s++) {
		x[i] = select(tm, tp, s == 0u);
		let v: f32 = $FN(x);
		f[s] = v;
	}
	osds_out[k] = (f[0] - f[1]) / (tp - tm);
}

//!if grad
@compute @workgroup_size(64)
fn osds_grad_user(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
	let b = osds_index(wid, nwg, lid);
	if (b >= osds_p.rows) {
		return;
	}
	var x: $ROW;
	for (var i = 0u; i < D; i++) {
		x[i] = osds_x[b * D + i];
	}
	var g: $ROW = $GRAD(x);
	for (var i = 0u; i < D; i++) {
		osds_out[b * D + i] = g[i];
	}
}
//!end
