// adam.wgsl — AdamW over one flat parameter buffer, with optional global-norm gradient
// clipping computed on the GPU (no host round trip).
//
// Three entries, recorded in this order when a norm is wanted (clipping, or norm only for
// logging), only the last otherwise:
//
// adam_sumsq_partial — G fixed partial sums of squares of the gradient.
//   Bindings: 0: grads array<f32> [P], read; 1: partials array<f32> [G], written;
//             2: params uniform NormParams.
//   Dispatch: G workgroups of 256 (G ≤ 256, a function of P only). Workgroup g sums
//             grads[i]² for i = g·256 + t + s·G·256 (thread t, s = 0, 1, …), then a fixed
//             tree over its 256 threads: the result is deterministic.
//
// adam_sumsq_final — the norm and the clipping factor.
//   Bindings: 0: partials array<f32> [G], read; 1: norm array<f32> [2], written:
//             norm[0] = ‖g‖₂, norm[1] = min(1, max_norm / (‖g‖₂ + 1e-6)) (1 in mode 2);
//             2: params uniform NormParams.
//   Dispatch: 1 workgroup of 256.
//
// adam_update — one AdamW step per element, g = grads[i]·scale (scale = norm[1] when
//   clip ≠ 0, else 1; grads are not modified):
//     m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//     p ← p − lr·wd·p − (lr / (1−β1^t))·m / (sqrt(v)/sqrt(1−β2^t) + eps)
//   Bindings: 0: params array<f32> [P], read+written; 1: grads array<f32> [P], read;
//             2: m array<f32> [P], read+written; 3: v array<f32> [P], read+written;
//             4: norm array<f32> [2], read; 5: params uniform AdamParams.
//   Dispatch: Grid1D(P, 256) workgroups of 256, folded into (x, y) above 65535
//             (linear id = (wid.x + wid.y·nwg.x)·256 + lid.x).
//
// Params (uniform, in order):
//   NormParams: P u32, G u32, mode u32 (1 clip, 2 norm only), max_norm f32
//   AdamParams: P u32, clip u32, beta1, beta2, one_minus_beta1, one_minus_beta2, eps,
//               lr_wd (= lr·wd), step_size (= lr/(1−β1^t)), inv_sqrt_bc2 (= 1/sqrt(1−β2^t)),
//               all f32 after the two u32 (derived on the host in float64).

struct NormParams {
	P: u32,
	G: u32,
	mode: u32,
	max_norm: f32,
}

struct AdamParams {
	P: u32,
	clip: u32,
	beta1: f32,
	beta2: f32,
	one_minus_beta1: f32,
	one_minus_beta2: f32,
	eps: f32,
	lr_wd: f32,
	step_size: f32,
	inv_sqrt_bc2: f32,
}

const ADAM_WG: u32 = 256u;

// Bindings of adam_sumsq_partial and adam_sumsq_final.
@group(0) @binding(0) var<storage, read> sq_grads: array<f32>;
@group(0) @binding(1) var<storage, read_write> sq_partials: array<f32>;
@group(0) @binding(0) var<storage, read> fin_partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> fin_norm: array<f32>;
@group(0) @binding(2) var<uniform> NP: NormParams;

// Bindings of adam_update.
@group(0) @binding(0) var<storage, read_write> up_params: array<f32>;
@group(0) @binding(1) var<storage, read> up_grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> up_m: array<f32>;
@group(0) @binding(3) var<storage, read_write> up_v: array<f32>;
@group(0) @binding(4) var<storage, read> up_norm: array<f32>;
@group(0) @binding(5) var<uniform> AP: AdamParams;

var<workgroup> adam_red: array<f32, 256>;

// adam_tree_sum sums adam_red[0..256) in a fixed order; every thread must call it.
fn adam_tree_sum(t: u32) -> f32 {
	workgroupBarrier();
	for (var h = ADAM_WG / 2u; h > 0u; h = h >> 1u) {
		if (t < h) {
			adam_red[t] = adam_red[t] + adam_red[t + h];
		}
		workgroupBarrier();
	}
	return adam_red[0];
}

@compute @workgroup_size(256)
fn adam_sumsq_partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
	let t = lid.x;
	let stride = NP.G * ADAM_WG;
	var acc = 0.0;
	for (var i = wid.x * ADAM_WG + t; i < NP.P; i = i + stride) {
		let g = sq_grads[i];
		acc = acc + g * g;
	}
	adam_red[t] = acc;
	let s = adam_tree_sum(t);
	if (t == 0u) {
		sq_partials[wid.x] = s;
	}
}

@compute @workgroup_size(256)
fn adam_sumsq_final(@builtin(local_invocation_id) lid: vec3<u32>) {
	let t = lid.x;
	var acc = 0.0;
	if (t < NP.G) {
		acc = fin_partials[t];
	}
	adam_red[t] = acc;
	let s = adam_tree_sum(t);
	if (t == 0u) {
		let norm = sqrt(s);
		fin_norm[0] = norm;
		if (NP.mode == 1u) {
			fin_norm[1] = min(1.0, NP.max_norm / (norm + 1e-6));
		} else {
			fin_norm[1] = 1.0;
		}
	}
}

@compute @workgroup_size(256)
fn adam_update(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = (wid.x + wid.y * nwg.x) * ADAM_WG + lid.x;
	if (i >= AP.P) {
		return;
	}
	var scale = 1.0;
	if (AP.clip != 0u) {
		scale = up_norm[1];
	}
	let g = up_grads[i] * scale;
	let m = AP.beta1 * up_m[i] + AP.one_minus_beta1 * g;
	let v = AP.beta2 * up_v[i] + AP.one_minus_beta2 * (g * g);
	up_m[i] = m;
	up_v[i] = v;
	let p = up_params[i];
	up_params[i] = p - AP.lr_wd * p - AP.step_size * m / (sqrt(v) * AP.inv_sqrt_bc2 + AP.eps);
}
