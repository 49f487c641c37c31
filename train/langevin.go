package train

import "osds/kernels"

// The Langevin parametrisation of the drift (both iteration paths):
//
//	u_k = clip(u_nn(z_k, t_k) + s(t_k)·clip(∇log R(z_k), ±LangevinClip))
//
// where s is a time-only network NN₂ (Network.LPhase, M1..M4). Its forward runs once per
// iteration over all T steps (a [T, ·] chain among the time ops); the drift network gets
// ∂L/∂u unchanged and s gets ds_k = Σ_b du_k ⊙ clip(g_k), for every step in one dispatch.

// buildLangevinScale records s(t_k) of every step into g.scale, keeping the chain's
// activations for the backward pass, and allocates the per-step scratch of ∇log R's
// kernels (their log R output).
func (g *Graph) buildLangevinScale() {
	l, n, T, W, H := g.lib, g.net, g.steps, g.net.Width, g.net.Harmonics
	g.lfeat, g.scale = g.tensor("langevin feat", T, 2*H), g.tensor("langevin scale", T, 1)
	g.m1, g.b1, g.m2, g.b2, g.m3, g.b3 = g.tensor("lm1", T, W), g.tensor("lb1", T, W), g.tensor("lm2", T, W), g.tensor("lb2", T, W), g.tensor("lm3", T, W), g.tensor("lb3", T, W)
	g.timeOps = append(g.timeOps,
		must(l.Fourier(g.lfeat, g.tgrid, n.Freq, n.LPhase.Value)),
		must(n.M1.ForwardKeep(l, g.b1, g.m1, g.lfeat, kernels.GELU)),
		must(n.M2.ForwardKeep(l, g.b2, g.m2, g.b1, kernels.GELU)),
		must(n.M3.ForwardKeep(l, g.b3, g.m3, g.b2, kernels.GELU)),
		must(n.M4.Forward(l, g.scale, g.b3, kernels.Identity)))
	g.lrScratch = g.tensor("langevin logr", g.batch)
}

// buildLangevinBackward records the scale network's backward pass: ds from the drift
// gradients du and the gradients g of every step (matching [T·rows, d] stacks, step k's
// rows from k·rows on), then NN₂'s parameter gradients.
func (g *Graph) buildLangevinBackward(du, grads *kernels.Tensor) {
	l, n, T, W, H := g.lib, g.net, g.steps, g.net.Width, g.net.Harmonics
	g.dscale = g.tensor("dscale", T, 1)
	seg := kernels.Segments{Stride: g.rows, Rows: g.batch, First: 0, Step: 1}
	g.backOps = append(g.backOps, must(l.LangevinScaleGrad(g.dscale, seg, du, grads, LangevinClip)))
	g.dm3, g.dm2, g.dm1 = g.tensor("ldm3", T, W), g.tensor("ldm2", T, W), g.tensor("ldm1", T, W)
	g.dlfeat = g.tensor("langevin dfeat", T, 2*H)
	g.backOps = append(g.backOps, must(n.M4.BackwardThrough(l, g.dm3, g.dscale, g.b3, g.m3, g.onesT, kernels.GELU))...)
	g.backOps = append(g.backOps, must(n.M3.BackwardThrough(l, g.dm2, g.dm3, g.b2, g.m2, g.onesT, kernels.GELU))...)
	g.backOps = append(g.backOps, must(n.M2.BackwardThrough(l, g.dm1, g.dm2, g.b1, g.m1, g.onesT, kernels.GELU))...)
	g.backOps = append(g.backOps, must(n.M1.Backward(l, g.dlfeat, g.dm1, g.lfeat, g.onesT))...)
	g.backOps = append(g.backOps, must(l.FourierPhaseGrad(n.LPhase.Grad, g.dlfeat, g.tgrid, n.Freq, n.LPhase.Value)))
}
