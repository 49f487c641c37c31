package train

import (
	"fmt"

	"osds/kernels"
)

// The fused iteration (DESIGN.md §5). The sampled states are detached, so the whole
// forward rollout is one dispatch (kernels.Rollout: each workgroup owns a block of rows for
// all T steps, activations in workgroup memory) and the backward pass is a batch of T·B
// independent rows: the drift gradient, three input-gradient products and four weight-
// gradient products over whole stacks, whatever T is. With the Langevin drift the target's
// ∇log R(z_k) is formed between steps, so a sampling rollout is one dispatch per step
// (after the target's kernels of that step). The op-by-op graph (Graph.build) stays as the
// reference this path is tested against.

// fusedUnsupported says why a graph of net under cfg runs op by op (nil: it is fused).
func fusedUnsupported(l *kernels.Library, net *Network, cfg Config, prior *Network) error {
	switch {
	case cfg.OpByOp:
		return fmt.Errorf("the op-by-op path was asked for")
	}
	if err := kernels.RolloutSupported(l.Device(), rolloutShape(net, cfg.Steps)); err != nil {
		return err
	}
	if prior != nil {
		return kernels.RolloutSupported(l.Device(), rolloutShape(prior, cfg.Steps))
	}
	return nil
}

// rolloutShape is the fused rollout's view of network n over steps steps.
func rolloutShape(n *Network, steps int) kernels.RolloutShape {
	classes := 0
	if n.Emb != nil {
		classes = n.Classes
	}
	return kernels.RolloutShape{D: n.Dim, W: n.Width, T: steps, Classes: classes, LV: n.LearnedVariance, LP: n.LPhase != nil}
}

// fusedNet is a network's parameters packed for the fused rollout, with the copies that
// refresh the pack from the parameters (recorded at the start of every iteration, after
// the time embedding has formed the folded state bias).
type fusedNet struct {
	lay    kernels.RolloutLayout
	pack   *kernels.Tensor
	copies []packCopy
}

type packCopy struct {
	src *kernels.Tensor
	at  int // float offset in the pack
}

// newFusedNet packs n's drift parameters with sbias [T, W] (b_S + temb, per step) and,
// with the Langevin drift, scale [T] (s(t_k), formed by the time ops).
func (g *Graph) newFusedNet(n *Network, sbias, scale *kernels.Tensor, label string) *fusedNet {
	lay := kernels.NewRolloutLayout(rolloutShape(n, g.steps))
	f := &fusedNet{lay: lay, pack: g.tensor(label, lay.Len)}
	f.copies = []packCopy{{n.S.W.Value, lay.WS}, {sbias, lay.SBias}, {n.L1.W.Value, lay.W1}, {n.L1.B.Value, lay.B1},
		{n.L2.W.Value, lay.W2}, {n.L2.B.Value, lay.B2}, {n.L3.W.Value, lay.W3}, {n.L3.B.Value, lay.B3}}
	if lay.Classes > 0 {
		f.copies = append(f.copies, packCopy{n.Emb.Value, lay.Emb})
	}
	if lay.LP {
		f.copies = append(f.copies, packCopy{scale, lay.Scale})
	}
	return f
}

// record copies the current parameters into the pack.
func (f *fusedNet) record(r *kernels.Recorder) {
	enc := r.Encoder()
	for _, c := range f.copies {
		enc.CopyBufferToBuffer(c.src.Buf, 0, f.pack.Buf, uint64(4*c.at), uint64(4*c.src.Len()))
	}
}

// fusedGraph holds what only the fused path has.
type fusedGraph struct {
	net, prior *fusedNet
	// rollouts are the policy's: one over all steps, or with the Langevin drift one per
	// step when sampling. They sample, or evaluate given states.
	rollouts  []*kernels.RolloutOp
	priorEval *kernels.RolloutOp // relative TB: the prior's log p_F of the same states
	bridge    *kernels.BridgeTrajectoryOp
	// ZS is the state stack [(T+1)·rows, d]; Z[k] are its slices. US the drift stack,
	// Save the six activation stacks h0, a0, h1, a1, h2, a2 ([T·rows, W] each, training).
	ZS, US, Save *kernels.Tensor
	h, a         [3]*kernels.Tensor
	dh0          *kernels.Tensor
}

// buildFused builds the fused graph: time embedding, the rollout in one dispatch (after the
// bridge trajectory in one dispatch, for backward trajectories), log R and, when training,
// the loss and the backward pass over whole stacks.
func (g *Graph) buildFused(cfg Config, reward RewardFunc) error {
	l, n := g.lib, g.net
	B, T, d, W := g.batch, g.steps, n.Dim, n.Width
	f := &fusedGraph{}
	g.fg = f
	if err := g.buildTimeEmbedding(); err != nil {
		return err
	}
	lp := n.LPhase != nil
	if lp {
		g.buildLangevinScale()
	}
	g.sbias = g.tensor("state bias", T, W)
	g.timeOps = append(g.timeOps, must(l.AddRow(g.sbias, g.temb, n.S.B.Value, 0)))
	if g.prior != nil {
		g.buildPriorTime()
	}
	// The output layer's rows: the drift, and with learned variance its log-variance head.
	out := d
	if n.LearnedVariance {
		out = 2 * d
	}
	g.rows = stepRowStride(B, []int{W, d, out}, int(l.Device().Limits().MinStorageBufferOffsetAlignment)/4)
	f.ZS, g.Z = g.stack("z", 0, 1, T+1, d)
	f.US, g.U = g.stepStack("u", out)
	if n.Classes > 0 {
		idx := make([]uint32, B)
		for i, y := range g.labels {
			idx[i] = uint32(y)
		}
		g.lab = must(kernels.IndexFromSlice(l.Device(), "conditions", idx, n.Classes))
	}
	g.LogPF, g.LogPB, g.LogR = g.tensor("logpf", B), g.tensor("logpb", B), g.tensor("logr", B)
	g.LogRef = g.LogPB
	if g.prior != nil {
		g.LogRef = g.tensor("logpf prior", B)
	}
	if g.train {
		f.Save = g.tensor("activations (h0, a0, h1, a1, h2, a2)", 6*T*g.rows, W)
		for i := 0; i < 3; i++ {
			f.h[i] = must(f.Save.Slice(fmt.Sprintf("h%d", i), 2*i*T*g.rows*W, T*g.rows, W))
			f.a[i] = must(f.Save.Slice(fmt.Sprintf("a%d", i), (2*i+1)*T*g.rows*W, T*g.rows, W))
		}
	}
	sigma := g.sigma()
	f.net = g.newFusedNet(n, g.sbias, g.scale, "parameter pack")
	inputs := must(kernels.NewRolloutInputs(l.Device(), "rollout steps", f.net.lay, g.rows, cfg.Sigma2))
	g.owned = append(g.owned, inputs.All)
	table := inputs.All // the relative-TB prior's step table (it has no Langevin drift)
	if lp {
		// ∇log R(z_k) of every step, laid out like the drift gradients for the scale's
		// backward; the target's kernels write step k's slice before its rollout step.
		g.GStack, g.G = inputs.Grads, g.slices(inputs.Grads, "grad", 0, 1, T, d)
		if g.prior != nil {
			// The policy's inputs carry the gradient stack; the prior's layout wants the table alone.
			table = must(kernels.FromSlice(l.Device(), "rollout steps (prior)", kernels.RolloutStepTable(T, d, cfg.Sigma2), T, 4))
			g.owned = append(g.owned, table)
		}
	}
	p := kernels.RolloutParams{Steps: T, Sigma: sigma, Seed: cfg.Seed, K0: 0, K1: T}
	bufs := kernels.RolloutBuffers{Net: f.net.pack, Steps: inputs.All, Z: f.ZS, U: f.US, Save: f.Save, LogPF: g.LogPF, LogPB: g.LogPB, Labels: g.lab}
	mode := kernels.RolloutSample
	if g.fromData {
		btable := must(kernels.FromSlice(l.Device(), "bridge steps", kernels.BridgeStepTable(T, d, cfg.Sigma2), T, 4))
		g.owned = append(g.owned, btable)
		f.bridge = must(l.BridgeTrajectory(f.ZS, g.LogPB, btable, B, g.rows, kernels.BridgeParams{Steps: T, Sigma2: cfg.Sigma2, Seed: cfg.Seed}))
		g.stepOps = append(g.stepOps, f.bridge.Op)
		mode, bufs.LogPB = kernels.RolloutGiven, nil
	}
	// gradAt appends the target's kernels that form ∇log R(z_k) into G[k].
	gradAt := func(k int) {
		r, err := reward(l, g.lrScratch, g.G[k], g.Z[k])
		if err != nil {
			panic(buildError{fmt.Errorf("train: reward: %w", err)})
		}
		g.rewards = append(g.rewards, r)
		g.stepOps = append(g.stepOps, r.Ops...)
	}
	rollout := func(k0, k1 int) {
		q := p
		q.K0, q.K1 = k0, k1
		op := must(l.Rollout(f.net.lay, B, g.rows, mode, bufs, q))
		f.rollouts = append(f.rollouts, op)
		g.stepOps = append(g.stepOps, op.Op)
	}
	switch {
	case !lp:
		rollout(0, T)
	case mode == kernels.RolloutGiven:
		// Every state is known: all the gradients first, then one dispatch.
		for k := 0; k < T; k++ {
			gradAt(k)
		}
		rollout(0, T)
	default:
		for k := 0; k < T; k++ {
			gradAt(k)
			rollout(k, k+1)
		}
	}
	if pr := g.prior; pr != nil {
		// The prior's log p_F of the policy's transitions: the same kernel on the same states.
		f.prior = g.newFusedNet(pr, g.psbias, nil, "prior parameter pack")
		pu := g.tensor("prior u", T*g.rows, d)
		f.priorEval = must(l.Rollout(f.prior.lay, B, g.rows, kernels.RolloutGiven,
			kernels.RolloutBuffers{Net: f.prior.pack, Steps: table, Z: f.ZS, U: pu, LogPF: g.LogRef}, p))
		g.stepOps = append(g.stepOps, f.priorEval.Op)
	}
	r, err := reward(l, g.LogR, nil, g.Z[T])
	if err != nil {
		return fmt.Errorf("train: reward: %w", err)
	}
	g.rewards = append(g.rewards, r)
	g.rewardOps = append(g.rewardOps, r.Ops...)
	if !g.train {
		return nil
	}

	// Loss and backward over whole stacks: row k·rows + b of every stack is (step k, row b),
	// and the padding rows stay zero through every product.
	g.buildLoss(cfg)
	TR := T * g.rows
	zk := must(f.ZS.Slice("z_k (all steps)", 0, TR, d))
	zn := must(f.ZS.Slice("z_k+1 (all steps)", g.rows*d, TR, d))
	g.DU = g.tensor("du (all steps)", TR, out)
	g.DH2, g.DH1, f.dh0 = g.tensor("dh2 (all steps)", TR, W), g.tensor("dh1 (all steps)", TR, W), g.tensor("dh0 (all steps)", TR, W)
	g.backOps = append(g.backOps,
		must(l.TBDriftGradStack(g.DU, zk, zn, f.US, g.coef, g.rows, g.dt, g.sigma2)),
		must(n.L3.InputGradThrough(l, g.DH2, g.DU, f.h[2], kernels.GELU)),
		must(n.L2.InputGradThrough(l, g.DH1, g.DH2, f.h[1], kernels.GELU)),
		must(n.L1.InputGradThrough(l, f.dh0, g.DH1, f.h[0], kernels.GELU)))
	// Row k of dtemb is Σ_b dh0[k·rows + b] (and each condition's embedding gradient).
	seg := kernels.Segments{Stride: g.rows, Rows: B, First: 0, Step: 1}
	if n.Classes > 0 {
		g.backOps = append(g.backOps, must(l.SumSegmentsCond(g.dtemb, seg, n.Emb.Grad, g.lab, f.dh0)))
	} else {
		g.backOps = append(g.backOps, must(l.SumSegmentsInto(g.dtemb, seg, f.dh0)))
	}
	g.backOps = append(g.backOps, must(n.S.ParamGrads(l, f.dh0, zk))...)
	g.backOps = append(g.backOps, must(n.L3.ParamGrads(l, g.DU, f.a[2]))...)
	g.backOps = append(g.backOps, must(n.L2.ParamGrads(l, g.DH2, f.a[1]))...)
	g.backOps = append(g.backOps, must(n.L1.ParamGrads(l, g.DH1, f.a[0]))...)
	g.buildTimeBackward()
	if lp {
		g.buildLangevinBackward(g.DU, g.GStack)
	}
	return nil
}

// Fused reports whether the graph runs the fused iteration; FusedReason, when it does
// not, says why.
func (g *Graph) Fused() bool { return g.fg != nil }

// FusedReason says why the graph runs op by op ("" when it is fused).
func (g *Graph) FusedReason() string { return g.opReason }

// recordPacks copies the parameters into the fused rollout's packs (after the time
// embedding, which forms the folded state bias).
func (g *Graph) recordPacks(r *kernels.Recorder) {
	if g.fg == nil {
		return
	}
	g.fg.net.record(r)
	if g.fg.prior != nil {
		g.fg.prior.record(r)
	}
}

// setFusedNoise sets the fused ops' Philox stream and exploration std.
func (g *Graph) setFusedNoise(stream uint32, explore float64) error {
	f := g.fg
	for _, r := range f.rollouts {
		p := r.P
		p.Stream, p.SigmaExplore = stream, explore
		if err := r.Update(p); err != nil {
			return err
		}
	}
	if f.bridge != nil {
		bp := f.bridge.P
		bp.Stream = stream
		return f.bridge.Update(bp)
	}
	return nil
}
