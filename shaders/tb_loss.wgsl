// tb_loss.wgsl — trajectory-balance and VarGrad losses over a batch, with the
// coefficients the backward pass needs. With Δ_b = log p_F(τ_b) − log p_B(τ_b|x_b) − log R(x_b):
//
//   TB      (mode 0): L = ½ mean_b (log Z + Δ_b)²      coef_b = (log Z + Δ_b)/B
//                     ∂L/∂log Z = mean_b (log Z + Δ_b)
//   VarGrad (mode 1): L = ½ mean_b (Δ_b − mean Δ)²     coef_b = (Δ_b − mean Δ)/B
//                     (the mean's own derivative cancels: Σ_b (Δ_b − mean Δ) = 0)
//
// coef_b = ∂L/∂log p_F(τ_b); the states are detached, so that is the only path to the drift.
//
// Bindings (group 0):
//   0: logpf  array<f32>, [B], read
//   1: logpb  array<f32>, [B], read
//   2: logr   array<f32>, [B], read
//   3: logz   array<f32>, [1], read (ignored by VarGrad)
//   4: coef   array<f32>, [B], written
//   5: stats  array<f32>, [4], written: loss, ∂L/∂log Z (0 for VarGrad), mean Δ, mean log w²
//   6: p      uniform { batch: u32, mode: u32 }
// Dispatch: exactly 1 workgroup of 256: each invocation sums a fixed stride of the batch,
// then a fixed tree combines them, so results are deterministic.

struct Params {
	batch: u32,
	mode: u32,
}

@group(0) @binding(0) var<storage, read> logpf: array<f32>;
@group(0) @binding(1) var<storage, read> logpb: array<f32>;
@group(0) @binding(2) var<storage, read> logr: array<f32>;
@group(0) @binding(3) var<storage, read> logz: array<f32>;
@group(0) @binding(4) var<storage, read_write> coef: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

var<workgroup> part: array<f32, 256>;

fn tree_sum(lid: u32) -> f32 {
	for (var s = 128u; s > 0u; s >>= 1u) {
		workgroupBarrier();
		if (lid < s) {
			part[lid] += part[lid + s];
		}
	}
	workgroupBarrier();
	let total = part[0];
	workgroupBarrier();
	return total;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
	let n = p.batch;
	let inv = 1.0 / f32(n);
	// Pass 1: mean Δ.
	var s = 0.0;
	for (var b = lid; b < n; b += 256u) {
		s += logpf[b] - logpb[b] - logr[b];
	}
	part[lid] = s;
	let mean_delta = tree_sum(lid) * inv;
	// The residual's offset: log Z for TB, −mean Δ for VarGrad.
	var offset = logz[0];
	if (p.mode == 1u) {
		offset = -mean_delta;
	}
	// Pass 2: coefficients, loss and ∂L/∂log Z.
	var sq = 0.0;
	var lin = 0.0;
	var wsq = 0.0;
	for (var b = lid; b < n; b += 256u) {
		let delta = logpf[b] - logpb[b] - logr[b];
		let r = offset + delta;
		coef[b] = r * inv;
		sq += r * r;
		lin += r;
		wsq += delta * delta;
	}
	part[lid] = sq;
	let total_sq = tree_sum(lid);
	part[lid] = lin;
	let total_lin = tree_sum(lid);
	part[lid] = wsq;
	let total_wsq = tree_sum(lid);
	if (lid == 0u) {
		stats[0] = 0.5 * total_sq * inv;
		stats[1] = select(total_lin * inv, 0.0, p.mode == 1u);
		stats[2] = mean_delta;
		stats[3] = total_wsq * inv;
	}
}
