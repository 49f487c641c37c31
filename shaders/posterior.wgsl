// posterior.wgsl — posterior targets in the noise space of a prior x = f(z):
//   log R(z) = log N(z; 0, I_d) + log r(f(z))
//
// observe / observe_value: a Gaussian observation of some coordinates of each row x_b,
//   log r_b = Σ_i m_i · ( c − ½ (x_bi − y_i)² / σ² ),   c = −½ log(2πσ²)
//   dx_bi   = −m_i (x_bi − y_i) / σ²                     (observe only)
// with the observation y [D] and mask m [D] (1 observed, 0 not) shared by every row.
//
// combine / combine_value: the row-wise combination with the standard normal prior,
//   logR_b  = −½ ‖z_b‖² − (d/2) log 2π + lr_b
//   grad_b  = −z_b + jt_b                                (combine only)
// where lr_b = log r(f(z_b)) and jt_b = J_f(z_b)ᵀ ∇_x log r (the generator's backward).
//
// Bindings (group 0):
//   observe:        0 x [B, D] read, 1 y [D] read, 2 mask [D] read, 3 logr [B] written,
//                   4 dx [B, D] written, 5 p
//   observe_value:  0 x, 1 y, 2 mask, 3 logr, 4 p
//   combine:        0 z [B, d] read, 1 lr [B] read, 2 jt [B, d] read, 3 logR [B] written,
//                   4 grad [B, d] written, 5 p
//   combine_value:  0 z, 1 lr, 2 logR [B] written, 3 p
//   p: uniform { rows: u32, cols: u32, a: f32, c: f32 } — observe: a = 1/σ², c as above;
//      combine: cols = d, c = −(d/2) log 2π (a unused).
// Dispatch: one invocation per row, ceil(B / 64) workgroups of 64 along x (folded into y
// beyond 65535 groups).

struct Params {
	rows: u32,
	cols: u32,
	a: f32,
	c: f32,
}

@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(2) var<storage, read_write> out2: array<f32>;
@group(0) @binding(3) var<storage, read_write> out3: array<f32>;
@group(0) @binding(3) var<uniform> p3: Params;
@group(0) @binding(4) var<storage, read_write> out4: array<f32>;
@group(0) @binding(4) var<uniform> p4: Params;
@group(0) @binding(5) var<uniform> p5: Params;

fn row_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
	return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn observe(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
	let b = row_index(wid, nwg, lid);
	if (b >= p5.rows) {
		return;
	}
	let base = b * p5.cols;
	var s = 0.0;
	for (var i = 0u; i < p5.cols; i++) {
		let r = in0[base + i] - in1[i];
		let m = in2[i];
		s += m * (p5.c - 0.5 * r * r * p5.a);
		out4[base + i] = -m * r * p5.a;
	}
	out3[b] = s;
}

@compute @workgroup_size(64)
fn observe_value(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
	let b = row_index(wid, nwg, lid);
	if (b >= p4.rows) {
		return;
	}
	let base = b * p4.cols;
	var s = 0.0;
	for (var i = 0u; i < p4.cols; i++) {
		let r = in0[base + i] - in1[i];
		s += in2[i] * (p4.c - 0.5 * r * r * p4.a);
	}
	out3[b] = s;
}

@compute @workgroup_size(64)
fn combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
	let b = row_index(wid, nwg, lid);
	if (b >= p5.rows) {
		return;
	}
	let base = b * p5.cols;
	var q = 0.0;
	for (var i = 0u; i < p5.cols; i++) {
		let z = in0[base + i];
		q += z * z;
		out4[base + i] = in2[base + i] - z;
	}
	out3[b] = p5.c - 0.5 * q + in1[b];
}

@compute @workgroup_size(64)
fn combine_value(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
	let b = row_index(wid, nwg, lid);
	if (b >= p3.rows) {
		return;
	}
	let base = b * p3.cols;
	var q = 0.0;
	for (var i = 0u; i < p3.cols; i++) {
		let z = in0[base + i];
		q += z * z;
	}
	out2[b] = p3.c - 0.5 * q + in1[b];
}
