// cond_loss.wgsl — trajectory balance and VarGrad for an amortised sampler, whose batch
// mixes conditions: row b has condition labels[b] ∈ [0, G). With
// Δ_b = log p_F(τ_b) − ref_b − log R(x_b | y_b), where ref_b is log p_B(τ_b|x_b) (TB,
// VarGrad) or the frozen prior sampler's log p_F^prior(τ_b) (relative TB):
//
//   TB      (mode 0): one learned log Z per condition,
//                     r_b = log Z[y_b] + Δ_b,  L = ½ mean_b r_b²,  coef_b = r_b / B,
//                     ∂L/∂log Z[g] = Σ_{b: y_b = g} r_b / B
//   VarGrad (mode 1): log Z[y_b] replaced by the batch mean over the rows of the same
//                     condition, r_b = Δ_b − mean_{b': y_b' = y_b} Δ_b',
//                     L = ½ mean_b r_b² (the group means' own derivatives cancel:
//                     the residuals of a group sum to 0), ∂L/∂log Z = 0
//
// coef_b = ∂L/∂log p_F(τ_b) (the states are detached: the only path to the drift).
//
// Bindings (group 0):
//   0: logpf   array<f32>, [B], read
//   1: ref     array<f32>, [B], read
//   2: logr    array<f32>, [B], read
//   3: logz    array<f32>, [G], read (ignored by VarGrad)
//   4: labels  array<u32>, [B], read (a label ≥ G makes its residual NaN)
//   5: coef    array<f32>, [B], written
//   6: dlogz   array<f32>, [G], written: ∂L/∂log Z (0 for VarGrad)
//   7: stats   array<f32>, [4], written: loss, mean_g log Z[g] (TB; 0 for VarGrad),
//              mean Δ, mean Δ²
//   8: p       uniform { batch: u32, groups: u32, mode: u32, nan_bits: u32 }
// Dispatch: exactly 1 workgroup of 256. Per-condition sums run one invocation per
// condition over the batch in increasing order, batch sums through a fixed tree: the
// results are deterministic.

struct Params {
	batch: u32,
	groups: u32,
	mode: u32,
	nan_bits: u32,
}

@group(0) @binding(0) var<storage, read> logpf: array<f32>;
@group(0) @binding(1) var<storage, read> logref: array<f32>;
@group(0) @binding(2) var<storage, read> logr: array<f32>;
@group(0) @binding(3) var<storage, read> logz: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> coef: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogz: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;

var<workgroup> part: array<f32, 256>;
// zoff[g]: log Z[g] (TB) or −mean Δ over condition g (VarGrad); at most 256 conditions.
var<workgroup> zoff: array<f32, 256>;

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

fn delta(b: u32) -> f32 {
	return logpf[b] - logref[b] - logr[b];
}

fn residual(b: u32) -> f32 {
	let g = labels[b];
	if (g >= p.groups) {
		return bitcast<f32>(p.nan_bits);
	}
	return zoff[g] + delta(b);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
	let n = p.batch;
	let inv = 1.0 / f32(n);
	// Pass 1: the offset of every condition, one invocation per condition.
	for (var g = lid; g < p.groups; g += 256u) {
		if (p.mode == 0u) {
			zoff[g] = logz[g];
		} else {
			var s = 0.0;
			var cnt = 0.0;
			for (var b = 0u; b < n; b++) {
				if (labels[b] == g) {
					s += delta(b);
					cnt += 1.0;
				}
			}
			zoff[g] = select(0.0, -s / max(cnt, 1.0), cnt > 0.0);
		}
	}
	workgroupBarrier();
	// Pass 2: coefficients and the batch sums.
	var sq = 0.0;
	var wsq = 0.0;
	var dsum = 0.0;
	for (var b = lid; b < n; b += 256u) {
		let d = delta(b);
		let r = residual(b);
		coef[b] = r * inv;
		sq += r * r;
		wsq += d * d;
		dsum += d;
	}
	part[lid] = sq;
	let total_sq = tree_sum(lid);
	part[lid] = wsq;
	let total_wsq = tree_sum(lid);
	part[lid] = dsum;
	let total_d = tree_sum(lid);
	// Pass 3: ∂L/∂log Z per condition (the residuals recomputed, in batch order).
	for (var g = lid; g < p.groups; g += 256u) {
		var s = 0.0;
		if (p.mode == 0u) {
			for (var b = 0u; b < n; b++) {
				if (labels[b] == g) {
					s += residual(b);
				}
			}
		}
		dlogz[g] = s * inv;
	}
	if (lid == 0u) {
		var mz = 0.0;
		if (p.mode == 0u) {
			for (var g = 0u; g < p.groups; g++) {
				mz += logz[g];
			}
			mz /= f32(p.groups);
		}
		stats[0] = 0.5 * total_sq * inv;
		stats[1] = mz;
		stats[2] = total_d * inv;
		stats[3] = total_wsq * inv;
	}
}
