// tb_drift_grad.wgsl — gradient of the loss with respect to the drift of one step.
// log p_F(z_{k+1}|z_k) = Σ_j log N(z_{k+1,j}; z_{k,j} + u_j dt, σ² dt), so
//   ∂log p_F/∂u_j = (z_{k+1,j} − z_{k,j} − u_j dt) / σ²
// and with coef_b = ∂L/∂log p_F(τ_b):
//   du[b, j] = coef_b · (z1[b, j] − z0[b, j] − u[b, j]·dt) / σ²
// over a stack of steps (row s·stride + b holds step s's sample b; rows with b ≥ B are
// padding and get 0), or one step (stride = rows = B).
// u is the clipped drift clip(v, ±DRIFT_CLIP) of the network's output v, so ∂L/∂v = du
// inside the bound and 0 where |u| reached it: du is written as 0 there.
//
// Entry learned_variance: the network's output row is [u, h] (2d wide) and the policy
// variance of coordinate j is v_j = σ²·dt·e^{ℓ_j}, ℓ_j = 4·tanh(h_j). With
// e_j = z1_j − z0_j − u_j·dt and log p_F = Σ_j −e_j²/(2v_j) − ½·ln(2π v_j):
//   du[b, j]     = coef_b · e_j·dt / v_j
//   du[b, d + j] = coef_b · (e_j²/(2v_j) − ½) · 4·(1 − tanh²(h_j))   (the last factor as 4/cosh²h_j)
// (each 0 where its clipped output reached the bound). u and du are [rows, 2d] there.
//
// Bindings (group 0):
//   0: z0    array<f32>, [rows, d], read (z_k)
//   1: z1    array<f32>, [rows, d], read (z_{k+1})
//   2: u     array<f32>, [rows, d], read (the drift the step used)
//   3: coef  array<f32>, [B], read
//   4: du    array<f32>, [rows, d], written
//   5: p     uniform { batch B: u32, dim: u32, dt: f32, sigma2: f32, stride, rows: u32 }
// Dispatch: ceil(rows·d / 256) workgroups (learned_variance: ceil(rows·2d / 256)) of 256
// along x (folded into y beyond 65535).

struct Params {
	batch: u32,
	dim: u32,
	dt: f32,
	sigma2: f32,
	stride: u32,
	rows: u32,
}

@group(0) @binding(0) var<storage, read> z0: array<f32>;
@group(0) @binding(1) var<storage, read> z1: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> coef: array<f32>;
@group(0) @binding(4) var<storage, read_write> du: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const DRIFT_CLIP: f32 = 1e4; // kernels.DriftClip

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let i = (wid.x + wid.y * nwg.x) * 256u + lid;
	if (i >= p.rows * p.dim) {
		return;
	}
	let b = (i / p.dim) % p.stride;
	if (b >= p.batch) {
		du[i] = 0.0;
		return;
	}
	du[i] = select(0.0, coef[b] * (z1[i] - z0[i] - u[i] * p.dt) / p.sigma2, abs(u[i]) < DRIFT_CLIP);
}

@compute @workgroup_size(256)
fn learned_variance(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let i = (wid.x + wid.y * nwg.x) * 256u + lid;
	let w = 2u * p.dim;
	if (i >= p.rows * w) {
		return;
	}
	let row = i / w;
	let j = i % w;
	let b = row % p.stride;
	if (b >= p.batch) {
		du[i] = 0.0;
		return;
	}
	let jd = j % p.dim;
	let zi = row * p.dim + jd;
	let uj = u[row * w + jd];
	let h = u[row * w + p.dim + jd];
	let th = tanh(h);
	let v = p.sigma2 * p.dt * exp(4.0 * th);
	let e = z1[zi] - z0[zi] - uj * p.dt;
	if (j < p.dim) {
		du[i] = select(0.0, coef[b] * e * p.dt / v, abs(uj) < DRIFT_CLIP);
	} else {
		// 1 − tanh²h as 1/cosh²h: the difference loses digits where |tanh h| → 1.
		let ch = cosh(h);
		du[i] = select(0.0, coef[b] * (0.5 * e * e / v - 0.5) * 4.0 / (ch * ch), abs(h) < DRIFT_CLIP);
	}
}
