package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// Config describes a diffusion sampler and how it is trained (defaults: DefaultConfig,
// the published benchmark settings).
type Config struct {
	Steps     int     // T, the number of SDE steps on [0, 1]
	Sigma2    float64 // σ², the diffusion coefficient
	Batch     int     // trajectories per iteration
	Width     int     // hidden width of every MLP
	Harmonics int     // Fourier time features (frequencies linspace(0.1, 100, H))
	Objective kernels.Objective
	LR        float64 // Adam learning rate of the drift network
	LRLogZ    float64 // Adam learning rate of log Z (TB)
	// Explore is the extra per-step exploration std e of the behaviour policy, decayed
	// linearly to 0 over ExploreIters iterations.
	Explore      float64
	ExploreIters int
	Seed         uint64
	// BothWays alternates: even iterations train on forward (exploratory) trajectories,
	// whose terminal states enter a FIFO replay buffer of Buffer states; odd iterations
	// train on Brownian-bridge backward trajectories from states drawn from it (or from
	// local search's buffer, see LS), uniformly or by rank (Rank).
	BothWays bool
	Buffer   int
	// Rank draws the replayed states and local search's starting states rank-prioritised
	// by their log R (row of rank r among N: weight ∝ 1/(0.01·N + r), kernels.RankSampler)
	// instead of uniformly. Unconditional samplers only: an amortised sampler replays
	// whole blocks of conditions, whose log R values do not compare.
	Rank bool
	// Langevin adds the Langevin parametrisation u = NN₁(z, t) + NN₂(t)·clip(∇log R(z), ±100):
	// one gradient of log R per step, the scalar NN₂ starting at 0.01.
	Langevin bool
	// LocalSearch (with BothWays) runs MALA chains from Batch buffer states every
	// LS.Every iterations; their states after every post-burn-in step enter a buffer of
	// their own (D_LS, of Buffer states), which replay trains on once it holds a batch.
	LS LocalSearch
	// Classes > 0 makes the sampler amortised over the conditions y ∈ {0, …, Classes−1}
	// (e.g. the classes of a classifier constraint): one network u_φ(z, t, y) for all of
	// them, the condition entering as a learned embedding E[y] added to the state and
	// time embeddings (equivalently, a one-hot y concatenated to the state input). Row b
	// of every training batch has condition b mod Classes, so each batch covers every
	// condition evenly. TB learns one log Z per condition (Network.LogZ has Classes
	// entries); VarGrad replaces log Z[y] by the batch mean of the rows of condition y.
	// With BothWays the batch must be a multiple of Classes (replay keeps each row's
	// condition; see Trainer).
	Classes int
	// OpByOp runs the iteration op by op (a dispatch per layer per step: the reference
	// implementation) instead of the fused iteration, which is the default wherever it
	// applies (see Graph.FusedReason).
	OpByOp bool
	// LearnedVariance gives the policy a learned variance per step and coordinate: the
	// network's output layer is 2d wide, [u, h], and step k's coordinate j has variance
	// σ²·dt·exp(4·tanh(h_j)) (within σ²·dt·e^{±4}, the published learned-variance
	// variant) instead of σ²·dt, so that posteriors sharper than σ²/T in some direction
	// can be represented; exploration still adds its variance on top. The backward
	// process (the Brownian bridge) is unchanged. Fused iteration only.
	LearnedVariance bool
}

// LocalSearch configures MALA local search on replay-buffer samples: Steps MALA steps
// with step size Eta (adapted ×1.01 / ×0.99 every 5 steps towards acceptance 0.574) on
// R^Beta; after Burn steps the chains' states enter the local-search buffer every step.
type LocalSearch struct {
	Every, Steps, Burn int
	Eta, Beta          float64
}

// DefaultConfig returns the settings of the diffusion-sampler benchmarks (T = 100,
// batch 300, width 64, 64 harmonics, TB with log Z at lr 0.1, drift at 1e-3).
func DefaultConfig(t Target) Config { return DefaultConfigSigma2(t.Sigma2()) }

// DefaultConfigSigma2 is DefaultConfig with the diffusion coefficient σ² given, for
// rewards that are not a Target (posteriors in a prior's noise space use σ² = 1, so that
// the untrained sampler, Brownian motion from 0, ends exactly at the prior N(0, I)).
func DefaultConfigSigma2(sigma2 float64) Config {
	return Config{Steps: 100, Sigma2: sigma2, Batch: 300, Width: 64, Harmonics: 64,
		Objective: kernels.TB, LR: 1e-3, LRLogZ: 0.1, ExploreIters: 5000, Seed: 1}
}

func (c Config) check() error {
	switch {
	case c.Steps < 1:
		return fmt.Errorf("train: steps %d (want ≥ 1)", c.Steps)
	case !(c.Sigma2 > 0) || math.IsInf(c.Sigma2, 0):
		return fmt.Errorf("train: σ² = %v (want a positive finite value)", c.Sigma2)
	case c.Batch < 1:
		return fmt.Errorf("train: batch %d (want ≥ 1)", c.Batch)
	case c.Width < 1 || c.Harmonics < 1:
		return fmt.Errorf("train: width %d and harmonics %d must be positive", c.Width, c.Harmonics)
	case c.Explore < 0:
		return fmt.Errorf("train: exploration %v (want ≥ 0)", c.Explore)
	case c.BothWays && c.Buffer < c.Batch:
		return fmt.Errorf("train: replay buffer of %d states is smaller than the batch %d", c.Buffer, c.Batch)
	case c.LS.Every > 0 && (!c.BothWays || c.LS.Steps < 1 || c.LS.Burn < 0 || c.LS.Burn >= c.LS.Steps || !(c.LS.Eta > 0) || !(c.LS.Beta > 0)):
		return fmt.Errorf("train: local search %+v needs --both-ways, steps > burn-in ≥ 0, η > 0 and β > 0", c.LS)
	case c.Objective != kernels.TB && c.Objective != kernels.VarGrad && c.Objective != kernels.RTB:
		return fmt.Errorf("train: unknown objective %d (want tb, vargrad or rtb)", c.Objective)
	case c.Objective == kernels.RTB && c.LS.Every > 0:
		return fmt.Errorf("train: local search needs the target density, but relative TB's target is the prior sampler's marginal × r, whose density is unknown")
	case c.Classes < 0 || c.Classes > kernels.MaxConditions:
		return fmt.Errorf("train: %d conditions (want 0 for an unconditional sampler, or 1..%d)", c.Classes, kernels.MaxConditions)
	case c.Rank && !c.BothWays:
		return fmt.Errorf("train: rank-prioritised replay needs a replay buffer (--both-ways or --local-search)")
	case c.Rank && c.Classes > 0:
		return fmt.Errorf("train: rank-prioritised replay ranks single states by log R, but an amortised sampler replays blocks of %d conditions whose rewards do not compare: use uniform replay", c.Classes)
	case c.Classes > 0 && c.BothWays && c.Batch%c.Classes != 0:
		return fmt.Errorf("train: an amortised sampler over %d conditions with a replay buffer needs a batch that is a multiple of %d (got %d)", c.Classes, c.Classes, c.Batch)
	}
	return nil
}

// lossMode is the loss kernel's objective: relative TB is TB's loss against the prior.
func (c Config) lossMode() kernels.Objective {
	if c.Objective == kernels.RTB {
		return kernels.TB
	}
	return c.Objective
}

// learnsLogZ reports whether log Z is a trained parameter (TB and relative TB).
func (c Config) learnsLogZ() bool { return c.Objective != kernels.VarGrad }

// TrainingLabels are the conditions of the rows of a training batch of an amortised
// sampler: row b has condition b mod classes (nil for unconditional samplers).
func TrainingLabels(batch, classes int) []int {
	if classes <= 0 {
		return nil
	}
	out := make([]int, batch)
	for b := range out {
		out[b] = b % classes
	}
	return out
}

// Network is the drift u_φ(z, t) of the published sampler architecture:
//
//	temb(t) = L_t2(GELU(L_t1([sin(f t + φ), cos(f t + φ)])))     (time, per step)
//	h       = L_s(z) + temb(t) [+ E[y]]
//	u       = L_3(GELU(L_2(GELU(L_1(GELU(h))))))                  (L_3 zero-initialised)
//
// and log Z of trajectory balance. An amortised network (Classes > 0) adds the learned
// condition embedding E [Classes, W] (normal init, like PyTorch's nn.Embedding) to the
// sum h, and has one log Z per condition.
type Network struct {
	Dim, Width, Harmonics int
	Classes               int // 0: unconditional
	// LearnedVariance: L3 is [W, 2·Dim], the drift and the log-variance head
	// (Config.LearnedVariance).
	LearnedVariance       bool
	Freq                  *kernels.Tensor // [H] constant frequencies
	Phase                 *nn.Param       // [H] learned phase
	T1, T2, S, L1, L2, L3 *nn.Linear
	LogZ                  *nn.Param // [max(1, Classes)]
	Emb                   *nn.Param // [Classes, W] condition embedding (nil: unconditional)

	// The Langevin scale NN₂(t) (nil without Cfg.Langevin): time features with their own
	// phase, Linear(2H, W) → GELU → Linear(W, W) → GELU → Linear(W, W) → GELU → Linear(W, 1),
	// the last layer zero with bias 0.01.
	LPhase         *nn.Param
	M1, M2, M3, M4 *nn.Linear
}

// LangevinClip bounds each component of ∇log R in the Langevin drift.
const LangevinClip = kernels.LangevinClip

// NewNetwork initialises an unconditional network (PyTorch-style uniform init, normal
// phases, zero last layer, log Z = 0).
func NewNetwork(d *gpu.Device, dim, width, harmonics int, rng *rand.Rand, langevin bool) (*Network, error) {
	return NewCondNetwork(d, dim, width, harmonics, 0, rng, langevin)
}

// NewNetworkFor initialises the network of cfg (width, harmonics, Langevin, conditions)
// for dimension dim, seeded like the trainer's.
func NewNetworkFor(d *gpu.Device, dim int, cfg Config) (*Network, error) {
	return newNetwork(d, dim, cfg.Width, cfg.Harmonics, cfg.Classes, rand.New(rand.NewPCG(cfg.Seed, 0x05d5)), cfg.Langevin, cfg.LearnedVariance)
}

// NewCondNetwork is NewNetwork amortised over classes conditions (0: unconditional).
// The embedding is drawn after every other parameter, so an unconditional network is
// the same for a seed whatever the code path.
func NewCondNetwork(d *gpu.Device, dim, width, harmonics, classes int, rng *rand.Rand, langevin bool) (*Network, error) {
	return newNetwork(d, dim, width, harmonics, classes, rng, langevin, false)
}

// newNetwork is NewCondNetwork with, when lv, the learned-variance head: L3 2·dim wide,
// zero-initialised like the drift, so the initial policy is the fixed-variance one.
func newNetwork(d *gpu.Device, dim, width, harmonics, classes int, rng *rand.Rand, langevin, lv bool) (*Network, error) {
	if classes < 0 || classes > kernels.MaxConditions {
		return nil, fmt.Errorf("train: network over %d conditions (want 0..%d)", classes, kernels.MaxConditions)
	}
	n := &Network{Dim: dim, Width: width, Harmonics: harmonics, Classes: classes, LearnedVariance: lv}
	outs := dim
	if lv {
		outs = 2 * dim
	}
	var err error
	fail := func(e error) (*Network, error) { n.Release(); return nil, e }
	if n.Freq, err = kernels.FromSlice(d, "time.freq", kernels.Linspace(0.1, 100, harmonics), harmonics); err != nil {
		return fail(err)
	}
	if n.Phase, err = nn.NewParam(d, "time.phase", nn.NormalInit(rng, harmonics), harmonics); err != nil {
		return fail(err)
	}
	layers := []struct {
		dst     **nn.Linear
		name    string
		in, out int
		zero    bool
	}{
		{&n.T1, "time.l1", 2 * harmonics, width, false},
		{&n.T2, "time.l2", width, width, false},
		{&n.S, "state", dim, width, false},
		{&n.L1, "joint.l1", width, width, false},
		{&n.L2, "joint.l2", width, width, false},
		{&n.L3, "joint.out", width, outs, true},
	}
	for _, l := range layers {
		if *l.dst, err = nn.NewLinear(d, l.name, l.in, l.out, rng, l.zero); err != nil {
			return fail(err)
		}
	}
	if n.LogZ, err = nn.NewParam(d, "logZ", make([]float32, max(1, classes)), max(1, classes)); err != nil {
		return fail(err)
	}
	if langevin {
		if n.LPhase, err = nn.NewParam(d, "langevin.phase", nn.NormalInit(rng, harmonics), harmonics); err != nil {
			return fail(err)
		}
		for _, l := range []struct {
			dst     **nn.Linear
			name    string
			in, out int
		}{{&n.M1, "langevin.l1", 2 * harmonics, width}, {&n.M2, "langevin.l2", width, width}, {&n.M3, "langevin.l3", width, width}, {&n.M4, "langevin.out", width, 1}} {
			if *l.dst, err = nn.NewLinear(d, l.name, l.in, l.out, rng, l.out == 1); err != nil {
				return fail(err)
			}
		}
		if err := n.M4.B.Value.Fill(0.01); err != nil {
			return fail(err)
		}
	}
	if classes > 0 {
		if n.Emb, err = nn.NewParam(d, "cond.embedding", nn.NormalInit(rng, classes*width), classes, width); err != nil {
			return fail(err)
		}
	}
	return n, nil
}

// Params lists the drift network's parameters (without log Z).
func (n *Network) Params() []*nn.Param {
	ps := []*nn.Param{n.Phase}
	for _, l := range []*nn.Linear{n.T1, n.T2, n.S, n.L1, n.L2, n.L3} {
		ps = append(ps, l.Params()...)
	}
	if n.LPhase != nil {
		ps = append(ps, n.LPhase)
		for _, l := range []*nn.Linear{n.M1, n.M2, n.M3, n.M4} {
			ps = append(ps, l.Params()...)
		}
	}
	if n.Emb != nil {
		ps = append(ps, n.Emb)
	}
	return ps
}

// CopyFrom writes src's parameters into n's where both have a parameter of the same
// name (the drift, the Langevin scale when both have one; never log Z or the condition
// embedding, which only n may have). The shared parameters must have equal shapes.
func (n *Network) CopyFrom(src *Network) error {
	if src.Dim != n.Dim || src.Width != n.Width || src.Harmonics != n.Harmonics {
		return fmt.Errorf("train: copying a network of dimension %d, width %d and %d harmonics into one of %d, %d and %d", src.Dim, src.Width, src.Harmonics, n.Dim, n.Width, n.Harmonics)
	}
	ts, err := nn.Snapshot(src.Params())
	if err != nil {
		return err
	}
	var shared []*nn.Param
	have := map[string]bool{}
	for _, t := range ts {
		have[t.Name] = true
	}
	for _, p := range n.Params() {
		if have[p.Name] {
			shared = append(shared, p)
		}
	}
	return nn.Restore(shared, ts)
}

// Release frees every tensor.
func (n *Network) Release() {
	n.Freq.Release()
	for _, p := range append(n.Params(), n.LogZ) {
		if p != nil {
			p.Release()
		}
	}
}

// Graph is the recorded computation of one batch of trajectories: the forward SDE with
// the network at every step, the log-probabilities, log R at the end and, when built for
// training, the loss and the backward pass into the parameters' gradients. All ops are
// built once; an iteration records them into one command buffer.
type Graph struct {
	net    *Network
	lib    *kernels.Library
	batch  int
	steps  int
	dt     float64
	sigma2 float64
	train  bool

	// Forward state. Z[k] is z_k (Z[0] stays 0), a slice of ZEven or ZOdd; U[k] the drift
	// of step k; the pre- and post-activations are kept per step only when training.
	Z, U                   []*kernels.Tensor
	h0, a0, h1, a1, h2, a2 []*kernels.Tensor
	s                      *kernels.Tensor // L_s(z_k) of an amortised network (its row sum follows)
	LogPF, LogPB, LogR     *kernels.Tensor
	tgrid, feat, g1, ga    *kernels.Tensor
	temb                   *kernels.Tensor
	// sbias [T, W] = temb + b_S, the state layer's bias at every step of an unconditional
	// network: folded into S's product, it makes h0 and GELU(h0) one dispatch.
	sbias *kernels.Tensor
	// LogRef is the reference term of the loss and of the log weights: LogPB, or with a
	// relative-TB prior its log p_F^prior(τ) (a tensor of its own).
	LogRef *kernels.Tensor

	// Amortised networks: the rows' conditions (host copy and device indices).
	labels []int
	lab    *kernels.IndexTensor

	// Relative TB: the frozen prior sampler's drift at every step (one buffer set for
	// all steps: no gradient flows into the prior).
	prior                          *Network
	pfeat, pg1, pga, ptemb, psbias *kernels.Tensor
	pa0, pa1, pa2, pu              *kernels.Tensor
	priorTimeOps                   []*kernels.Op

	// Backward state.
	// Langevin parametrisation: ∇log R at every step, the network's own drift, the
	// per-step scale NN₂(t_k) and its chain. When training, G[k] are slices of GStack
	// (laid out like DU).
	G                             []*kernels.Tensor
	GStack                        *kernels.Tensor
	unn, lrScratch                *kernels.Tensor
	lfeat, m1, b1, m2, b2, m3, b3 *kernels.Tensor
	scale, dscale                 *kernels.Tensor
	dm3, dm2, dm1                 *kernels.Tensor
	dlfeat                        *kernels.Tensor

	coef, Stats       *kernels.Tensor
	dtemb, dg1, dfeat *kernels.Tensor
	onesT             *kernels.Tensor

	// Per-step tensors of training, stacked: A0, A1, A2 (the inputs of L1..L3), DU, DH2,
	// DH1 (the gradients of their outputs) hold step k in rows k·rows..k·rows+B−1, and
	// a0, a1, a2, du, dh2, dh1 are those slices. The padding rows stay zero.
	rows                     int
	A0, A1, A2, DU, DH2, DH1 *kernels.Tensor
	du, dh2, dh1             []*kernels.Tensor
	// The states and the gradients of S's output alternate between two stacks each, even
	// steps in one and odd steps in the other (see build): ZEven holds z_0, z_2, …, ZOdd
	// z_1, z_3, …, and DHEven, DHOdd the gradients dh_k of the same parity.
	ZEven, ZOdd, DHEven, DHOdd *kernels.Tensor
	dh                         []*kernels.Tensor

	timeOps, stepOps, rewardOps, lossOps, backOps []*kernels.Op
	sde                                           []*kernels.SDEStepOp
	bridge                                        []*kernels.BridgeStepOp
	sdeParams                                     kernels.SDEParams
	fromData                                      bool // backward trajectories from Z[T]
	owned                                         []*kernels.Tensor
	// fg is the fused iteration's state (nil: op by op, for the reason opReason).
	fg       *fusedGraph
	opReason string
	// rewards are the graph's reward call sites; their ops sit in stepOps and rewardOps
	// but may be shared with other graphs, so only the rewards release them.
	rewards []*Reward
}

// NewGraph builds the ops for batch trajectories of cfg.Steps steps of an unconditional
// network. reward computes log R at the terminal states. With train, activations are
// kept per step and the loss and backward ops are built too.
func NewGraph(l *kernels.Library, net *Network, cfg Config, batch int, reward RewardFunc, train bool) (*Graph, error) {
	return NewGraphWith(l, net, cfg, batch, reward, GraphOptions{Train: train})
}

// NewBackwardGraph builds the ops for backward trajectories: terminal states written into
// Z[T] (data, replay-buffer samples) are noised back to 0 along the Brownian bridge p_B,
// and the policy's log p_F of those transitions is evaluated. The loss and backward ops
// are the same as for forward trajectories (TB is off-policy).
func NewBackwardGraph(l *kernels.Library, net *Network, cfg Config, batch int, reward RewardFunc, train bool) (*Graph, error) {
	return NewGraphWith(l, net, cfg, batch, reward, GraphOptions{Train: train, Backward: true})
}

// GraphOptions are the variants of a trajectory graph.
type GraphOptions struct {
	// Train keeps the activations of every step and builds the loss and backward ops.
	Train bool
	// Backward builds backward trajectories from the terminal states in Z[T].
	Backward bool
	// Labels are the rows' conditions (len = batch, each < net.Classes); required for
	// an amortised network, refused for an unconditional one. The reward must be the
	// reward of these rows (CondRewardFunc).
	Labels []int
	// Prior is the frozen prior sampler of relative TB (cfg.Objective = RTB, required
	// there): an unconditional network without the Langevin drift and of the graph's
	// dimension; its log p_F of each trajectory replaces log p_B in the loss and in the
	// log weights (LogRef).
	Prior *Network
}

// NewGraphWith builds a graph with options (NewGraph, NewBackwardGraph).
func NewGraphWith(l *kernels.Library, net *Network, cfg Config, batch int, reward RewardFunc, o GraphOptions) (*Graph, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if net.Classes != cfg.Classes {
		return nil, fmt.Errorf("train: the network has %d conditions but the configuration %d", net.Classes, cfg.Classes)
	}
	if net.Classes > 0 {
		if len(o.Labels) != batch {
			return nil, fmt.Errorf("train: an amortised sampler's graph needs a condition per row: %d labels for a batch of %d", len(o.Labels), batch)
		}
		for i, y := range o.Labels {
			if y < 0 || y >= net.Classes {
				return nil, fmt.Errorf("train: row %d has condition %d; the sampler has conditions 0..%d", i, y, net.Classes-1)
			}
		}
	} else if o.Labels != nil {
		return nil, fmt.Errorf("train: conditions given for an unconditional sampler")
	}
	if (cfg.Objective == kernels.RTB) != (o.Prior != nil) {
		return nil, fmt.Errorf("train: relative TB needs a prior sampler, and only relative TB uses one (objective %v, prior given: %v)", cfg.Objective, o.Prior != nil)
	}
	if p := o.Prior; p != nil {
		if p.Dim != net.Dim || p.Classes != 0 || p.LPhase != nil {
			return nil, fmt.Errorf("train: the relative-TB prior sampler must be unconditional, without the Langevin drift, and of dimension %d (it has dimension %d, %d conditions, Langevin %v)", net.Dim, p.Dim, p.Classes, p.LPhase != nil)
		}
	}
	g := &Graph{net: net, lib: l, batch: batch, steps: cfg.Steps, dt: 1 / float64(cfg.Steps), sigma2: cfg.Sigma2, train: o.Train, fromData: o.Backward,
		labels: append([]int(nil), o.Labels...), prior: o.Prior}
	build := g.build
	if o.Prior != nil && o.Prior.LearnedVariance {
		return nil, fmt.Errorf("train: the relative-TB prior sampler has a learned variance, which relative TB does not support yet (train the prior with fixed variance)")
	}
	if why := fusedUnsupported(l, net, cfg, o.Prior); why != nil {
		if net.LearnedVariance {
			return nil, fmt.Errorf("train: learned variance runs on the fused iteration only, which this graph cannot use: %v", why)
		}
		g.opReason = why.Error()
	} else {
		build = g.buildFused
	}
	if err := g.buildCatching(build)(cfg, reward); err != nil {
		g.Release()
		return nil, err
	}
	return g, nil
}

// Labels are the rows' conditions (nil for an unconditional sampler).
func (g *Graph) Labels() []int { return g.labels }

// stepStack allocates the [T·rows, cols] tensor of a per-step quantity and returns it
// with its T slices [B, cols], one per step (see Graph.rows).
func (g *Graph) stepStack(name string, cols int) (*kernels.Tensor, []*kernels.Tensor) {
	return g.stack(name, 0, 1, g.steps, cols)
}

// stack allocates a [count·rows, cols] tensor and returns it with its count slices
// [B, cols], named for the steps first, first+step, first+2·step, … (nil for count 0).
func (g *Graph) stack(name string, first, step, count, cols int) (*kernels.Tensor, []*kernels.Tensor) {
	if count == 0 {
		return nil, nil
	}
	stack := g.tensor(fmt.Sprintf("%s (%d steps)", name, count), count*g.rows, cols)
	return stack, g.slices(stack, name, first, step, count, cols)
}

// slices are the count slices [B, cols] of a [count·rows, cols] stack, named as stack's.
func (g *Graph) slices(stack *kernels.Tensor, name string, first, step, count, cols int) []*kernels.Tensor {
	out := make([]*kernels.Tensor, count)
	for i := range out {
		v, err := stack.Slice(fmt.Sprintf("%s%d", name, first+i*step), i*g.rows*cols, g.batch, cols)
		if err != nil {
			panic(buildError{err})
		}
		out[i] = v
	}
	return out
}

// alternating allocates the n per-step tensors [B, cols] of steps 0..n−1 as slices of
// two stacks, the even steps in one and the odd steps in the other, and returns the two
// stacks and the n slices in step order.
func (g *Graph) alternating(name string, n, cols int) (even, odd *kernels.Tensor, steps []*kernels.Tensor) {
	even, evens := g.stack(name, 0, 2, (n+1)/2, cols)
	odd, odds := g.stack(name, 1, 2, n/2, cols)
	steps = make([]*kernels.Tensor, n)
	for k := range steps {
		if k%2 == 0 {
			steps[k] = evens[k/2]
		} else {
			steps[k] = odds[k/2]
		}
	}
	return even, odd, steps
}

// leadingRows is the first rows·cols elements of a stack as a [rows, cols] tensor.
func (g *Graph) leadingRows(t *kernels.Tensor, rows int) *kernels.Tensor {
	cols := t.Shape[1]
	if t.Shape[0] == rows {
		return t
	}
	v, err := t.Slice(t.Label()+" (leading rows)", 0, rows, cols)
	if err != nil {
		panic(buildError{err})
	}
	return v
}

// stepRowStride is the smallest row count R ≥ batch at which every step's slice of a
// stack with any of the given column counts starts at a multiple of align elements.
func stepRowStride(batch int, cols []int, align int) int {
	r := batch
	for ; ; r++ {
		ok := true
		for _, c := range cols {
			ok = ok && (r*c)%max(align, 1) == 0
		}
		if ok {
			return r
		}
	}
}

func (g *Graph) tensor(label string, shape ...int) *kernels.Tensor {
	t, err := kernels.NewTensor(g.lib.Device(), label, shape...)
	if err != nil {
		panic(buildError{err})
	}
	g.owned = append(g.owned, t)
	return t
}

// buildError carries an error out of the panicking helpers of build.
type buildError struct{ err error }

// buildCatching returns b with the buildErrors of must and the helpers returned as errors.
func (g *Graph) buildCatching(b func(Config, RewardFunc) error) func(Config, RewardFunc) error {
	return func(cfg Config, reward RewardFunc) (err error) {
		defer func() {
			if r := recover(); r != nil {
				be, ok := r.(buildError)
				if !ok {
					panic(r)
				}
				err = be.err
			}
		}()
		return b(cfg, reward)
	}
}

// sigma is σ, the square root of the diffusion coefficient.
func (g *Graph) sigma() float64 { return math.Sqrt(g.sigma2) }

// build builds the op-by-op graph (the reference the fused one is tested against): a
// dispatch per layer per step. Its helpers panic with buildErrors (see buildCatching).
func (g *Graph) build(cfg Config, reward RewardFunc) error {
	l, n := g.lib, g.net
	B, T, d, W := g.batch, g.steps, n.Dim, n.Width
	rewardOps := func(logr, grad, z *kernels.Tensor) []*kernels.Op {
		r, e := reward(l, logr, grad, z)
		if e != nil {
			panic(buildError{fmt.Errorf("train: reward: %w", e)})
		}
		g.rewards = append(g.rewards, r)
		return r.Ops
	}

	if err := g.buildTimeEmbedding(); err != nil {
		return err
	}
	lp := n.LPhase != nil
	if lp {
		g.buildLangevinScale()
		g.unn = g.tensor("drift nn", B, d)
	}

	// Every per-step slice of a stack must start at an aligned offset, so each stack holds
	// a step in every `rows` rows (≥ B, the rest zero padding).
	g.rows = stepRowStride(B, []int{W, d}, int(l.Device().Limits().MinStorageBufferOffsetAlignment)/4)
	// The states z_0..z_T alternate between two stacks: the SDE step reads z_k and writes
	// z_{k+1}, and WebGPU tracks usage per buffer, so the two may not share one. Stacked,
	// the state layer's weight gradient over all steps is two products (one per parity).
	g.ZEven, g.ZOdd, g.Z = g.alternating("z", T+1, d)
	if lp {
		// ∇log R(z_k) of every step: a stack like du's when training, so that the scale's
		// gradient over all steps is one dispatch; sampling needs only the current step's.
		if g.train {
			g.GStack, g.G = g.stepStack("grad", d)
		} else {
			g.G = make([]*kernels.Tensor, T)
			g.G[0] = g.tensor("grad", B, d)
			for k := range g.G {
				g.G[k] = g.G[0]
			}
		}
	}
	if err := g.Z[0].Fill(0); err != nil {
		return err
	}
	if n.Classes > 0 {
		idx := make([]uint32, B)
		for i, y := range g.labels {
			idx[i] = uint32(y)
		}
		var err error
		if g.lab, err = kernels.IndexFromSlice(l.Device(), "conditions", idx, n.Classes); err != nil {
			return err
		}
	}
	// The first layer of step k: a0 = GELU(h0), h0 = z_k·W_S + b_S + temb[k] (+ E[y_b] for
	// an amortised network); pre, when not nil, keeps h0 for the backward pass. Without
	// conditions b_S + temb[k] is one row of sbias and the product does it all; the
	// per-row embedding needs a product, then the row sums with the GELU.
	if n.Classes == 0 {
		g.sbias = g.tensor("state bias", T, W)
		g.timeOps = append(g.timeOps, must(l.AddRow(g.sbias, g.temb, n.S.B.Value, 0)))
	} else {
		g.s = g.tensor("s", B, W)
	}
	stateLayer := func(a0, pre, z *kernels.Tensor, k int) []*kernels.Op {
		if n.Classes == 0 {
			return []*kernels.Op{must(n.S.ForwardFolded(l, a0, pre, z, g.sbias, k, kernels.GELU))}
		}
		return []*kernels.Op{
			must(n.S.Forward(l, g.s, z, kernels.Identity)),
			must(l.AddRowCond(a0, pre, g.s, g.temb, k, n.Emb.Value, g.lab, kernels.GELU)),
		}
	}
	if p := g.prior; p != nil {
		pW := p.Width
		g.buildPriorTime()
		g.pa0 = g.tensor("prior a0", B, pW)
		g.pa1, g.pa2, g.pu = g.tensor("prior a1", B, pW), g.tensor("prior a2", B, pW), g.tensor("prior u", B, d)
		g.LogRef = g.tensor("logpf prior", B)
	}
	// priorStep appends the prior's log p_F of the transition z_k → z_{k+1} to LogRef.
	priorStep := func(k int) {
		p := g.prior
		if p == nil {
			return
		}
		// No gradient flows into the prior: its activations go straight into the products.
		g.stepOps = append(g.stepOps,
			must(p.S.ForwardFolded(l, g.pa0, nil, g.Z[k], g.psbias, k, kernels.GELU)),
			must(p.L1.Forward(l, g.pa1, g.pa0, kernels.GELU)),
			must(p.L2.Forward(l, g.pa2, g.pa1, kernels.GELU)),
			must(p.L3.Forward(l, g.pu, g.pa2, kernels.Identity)),
			must(l.LogPF(g.LogRef, g.Z[k], g.Z[k+1], g.pu, g.dt, g.sigma2)))
	}

	g.U = make([]*kernels.Tensor, T)
	perStep := func(name string) []*kernels.Tensor {
		out := make([]*kernels.Tensor, T)
		for k := range out {
			// Training keeps every step's activations for the backward pass; sampling
			// and evaluation reuse one buffer for all steps.
			if g.train || k == 0 {
				out[k] = g.tensor(fmt.Sprintf("%s%d", name, k), B, W)
			} else {
				out[k] = out[0] // sampling only: one buffer serves every step
			}
		}
		return out
	}
	if g.train {
		// Only the backward pass reads h0, h1 and h2; sampling applies each GELU in the
		// dispatch that forms its input.
		g.h0, g.h1, g.h2 = perStep("h0_"), perStep("h1_"), perStep("h2_")
		// The layers' inputs a0, a1, a2 are slices of one tensor each (see stepStack), so
		// that one product over all steps forms each layer's weight gradient.
		g.A0, g.a0 = g.stepStack("a0", W)
		g.A1, g.a1 = g.stepStack("a1", W)
		g.A2, g.a2 = g.stepStack("a2", W)
	} else {
		g.a0, g.a1, g.a2 = perStep("a0_"), perStep("a1_"), perStep("a2_")
	}
	g.LogPF, g.LogPB, g.LogR = g.tensor("logpf", B), g.tensor("logpb", B), g.tensor("logr", B)
	if g.LogRef == nil {
		g.LogRef = g.LogPB
	}
	g.sdeParams = kernels.SDEParams{Steps: T, Sigma: math.Sqrt(cfg.Sigma2), Seed: cfg.Seed}
	if g.fromData {
		// Noise the terminal states back to z_0 = 0 first; the network then runs on them.
		for k := T - 1; k >= 0; k-- {
			b, err := l.BridgeStep(g.Z[k], g.Z[k+1], g.LogPB, kernels.BridgeParams{Step: k, Steps: T, Sigma2: cfg.Sigma2, Seed: cfg.Seed})
			if err != nil {
				return err
			}
			g.bridge = append(g.bridge, b)
			g.stepOps = append(g.stepOps, b.Op)
		}
	}
	// The drift is bounded at ±kernels.DriftClip: by the last layer's epilogue, or with the
	// Langevin term by LangevinDrift, which clips the sum.
	lastAct := kernels.Clip
	if lp {
		lastAct = kernels.Identity
	}
	for k := 0; k < T; k++ {
		g.U[k] = g.tensor(fmt.Sprintf("u%d", k), B, d)
		out := g.U[k]
		if lp {
			out = g.unn
			g.stepOps = append(g.stepOps, rewardOps(g.lrScratch, g.G[k], g.Z[k])...)
		}
		var pre *kernels.Tensor
		if g.train {
			pre = g.h0[k]
		}
		g.stepOps = append(g.stepOps, stateLayer(g.a0[k], pre, g.Z[k], k)...)
		if g.train {
			// The pre-activations h1, h2 are kept for the backward pass, written by the
			// same dispatch as the activations.
			g.stepOps = append(g.stepOps,
				must(n.L1.ForwardKeep(l, g.a1[k], g.h1[k], g.a0[k], kernels.GELU)),
				must(n.L2.ForwardKeep(l, g.a2[k], g.h2[k], g.a1[k], kernels.GELU)))
		} else {
			g.stepOps = append(g.stepOps,
				must(n.L1.Forward(l, g.a1[k], g.a0[k], kernels.GELU)),
				must(n.L2.Forward(l, g.a2[k], g.a1[k], kernels.GELU)))
		}
		g.stepOps = append(g.stepOps, must(n.L3.Forward(l, out, g.a2[k], lastAct)))
		if lp {
			g.stepOps = append(g.stepOps, must(l.LangevinDrift(g.U[k], g.unn, g.G[k], g.scale, k, LangevinClip)))
		}
		if g.fromData {
			g.stepOps = append(g.stepOps, must(l.LogPF(g.LogPF, g.Z[k], g.Z[k+1], g.U[k], g.dt, g.sigma2)))
			priorStep(k)
			continue
		}
		p := g.sdeParams
		p.Step = k
		s, err := l.SDEStep(g.Z[k], g.U[k], g.Z[k+1], g.LogPF, g.LogPB, p)
		if err != nil {
			return err
		}
		g.sde = append(g.sde, s)
		g.stepOps = append(g.stepOps, s.Op)
		priorStep(k)
	}
	g.rewardOps = append(g.rewardOps, rewardOps(g.LogR, nil, g.Z[T])...)
	if !g.train {
		return nil
	}

	// Loss and backward. States are detached (TB is off-policy), so the gradient reaches
	// each step's drift only through log p_F; steps are independent given the states.
	g.buildLoss(cfg)
	// The gradients of each layer's output at every step, stacked like the inputs.
	g.DU, g.du = g.stepStack("du", d)
	g.DH2, g.dh2 = g.stepStack("dh2", W)
	g.DH1, g.dh1 = g.stepStack("dh1", W)
	// dh_k alternates like z_k, so that S's weight gradient pairs stacks of one parity.
	g.DHEven, g.DHOdd, g.dh = g.alternating("dh", T, W)
	for k := 0; k < T; k++ {
		g.backOps = append(g.backOps, must(l.TBDriftGrad(g.du[k], g.Z[k], g.Z[k+1], g.U[k], g.coef, g.dt, g.sigma2)))
		// Each layer's input gradient goes through the GELU before it in the same
		// dispatch; the weight gradients of L1..L3 come after the loop, over all steps.
		g.backOps = append(g.backOps,
			must(n.L3.InputGradThrough(l, g.dh2[k], g.du[k], g.h2[k], kernels.GELU)),
			must(n.L2.InputGradThrough(l, g.dh1[k], g.dh2[k], g.h1[k], kernels.GELU)),
			must(n.L1.InputGradThrough(l, g.dh[k], g.dh1[k], g.h0[k], kernels.GELU)))
	}
	// The time embedding's gradient, row k = Σ_b dh_k[b] (and each condition's embedding
	// gradient), summed from the two stacks of dh: even steps into rows 0, 2, …, odd
	// steps into rows 1, 3, ….
	for parity, stack := range []*kernels.Tensor{g.DHEven, g.DHOdd} {
		if stack == nil {
			continue // a single step has no odd one
		}
		seg := kernels.Segments{Stride: g.rows, Rows: B, First: parity, Step: 2}
		if n.Classes > 0 {
			g.backOps = append(g.backOps, must(l.SumSegmentsCond(g.dtemb, seg, n.Emb.Grad, g.lab, stack)))
		} else {
			g.backOps = append(g.backOps, must(l.SumSegmentsInto(g.dtemb, seg, stack)))
		}
	}
	// dW = Σ_k a_kᵀ·dy_k as one product over the stacks, db = Σ_k Σ_b dy_k as one column sum.
	// S's input z_k lives in the stack of k's parity, which holds z_T too when T has that
	// parity: its leading rows pair with the gradients dh_k, k < T.
	g.backOps = append(g.backOps, must(n.S.ParamGrads(l, g.DHEven, g.leadingRows(g.ZEven, g.DHEven.Shape[0])))...)
	if g.DHOdd != nil { // nil for a single step
		g.backOps = append(g.backOps, must(n.S.ParamGrads(l, g.DHOdd, g.leadingRows(g.ZOdd, g.DHOdd.Shape[0])))...)
	}
	g.backOps = append(g.backOps, must(n.L3.ParamGrads(l, g.DU, g.A2))...)
	g.backOps = append(g.backOps, must(n.L2.ParamGrads(l, g.DH2, g.A1))...)
	g.backOps = append(g.backOps, must(n.L1.ParamGrads(l, g.DH1, g.A0))...)
	g.buildTimeBackward()
	if lp {
		g.buildLangevinBackward(g.DU, g.GStack)
	}
	return nil
}

// must panics with a buildError when e is not nil (build's helpers), else returns o.
func must[T any](o T, e error) T {
	if e != nil {
		panic(buildError{e})
	}
	return o
}

// buildTimeEmbedding builds the time embedding of every step at once (one [T, ·] chain
// instead of T tiny ones): t, the Fourier features, temb = L_t2(GELU(L_t1(feat))).
func (g *Graph) buildTimeEmbedding() error {
	l, n, T := g.lib, g.net, g.steps
	g.tgrid = g.tensor("t", T)
	ts := make([]float32, T)
	for k := range ts {
		ts[k] = float32(float64(k) * g.dt)
	}
	if err := g.tgrid.Write(ts); err != nil {
		return err
	}
	W, H := n.Width, n.Harmonics
	g.feat, g.g1, g.ga, g.temb = g.tensor("time feat", T, 2*H), g.tensor("time g1", T, W), g.tensor("time ga", T, W), g.tensor("temb", T, W)
	g.timeOps = append(g.timeOps,
		must(l.Fourier(g.feat, g.tgrid, n.Freq, n.Phase.Value)),
		must(n.T1.ForwardKeep(l, g.ga, g.g1, g.feat, kernels.GELU)),
		must(n.T2.Forward(l, g.temb, g.ga, kernels.Identity)))
	return nil
}

// buildPriorTime builds the relative-TB prior's time embedding and its folded state bias
// psbias = temb_prior + b_S (the prior is unconditional).
func (g *Graph) buildPriorTime() {
	l, p, T := g.lib, g.prior, g.steps
	pW, pH := p.Width, p.Harmonics
	g.pfeat, g.pg1, g.pga, g.ptemb = g.tensor("prior time feat", T, 2*pH), g.tensor("prior time g1", T, pW), g.tensor("prior time ga", T, pW), g.tensor("prior temb", T, pW)
	g.psbias = g.tensor("prior state bias", T, pW)
	g.priorTimeOps = append(g.priorTimeOps,
		must(l.Fourier(g.pfeat, g.tgrid, p.Freq, p.Phase.Value)),
		must(p.T1.Forward(l, g.pg1, g.pfeat, kernels.Identity)),
		must(l.Activate(g.pga, g.pg1, kernels.GELU)),
		must(p.T2.Forward(l, g.ptemb, g.pga, kernels.Identity)),
		must(l.AddRow(g.psbias, g.ptemb, p.S.B.Value, 0)))
}

// buildLoss builds the loss over the batch: per-row coefficients ∂L/∂log p_F and the
// statistics (loss, ∂L/∂log Z, …); an amortised network's loss writes log Z's gradient.
func (g *Graph) buildLoss(cfg Config) {
	l, n, B := g.lib, g.net, g.batch
	g.coef, g.Stats = g.tensor("coef", B), g.tensor("stats", 4)
	if n.Classes > 0 {
		// ∂L/∂log Z goes straight into log Z's gradient (one entry per condition).
		g.lossOps = append(g.lossOps, must(l.CondTBLoss(g.coef, n.LogZ.Grad, g.Stats, g.LogPF, g.LogRef, g.LogR, n.LogZ.Value, g.lab, cfg.lossMode())))
	} else {
		g.lossOps = append(g.lossOps, must(l.TBLoss(g.coef, g.Stats, g.LogPF, g.LogRef, g.LogR, n.LogZ.Value, cfg.lossMode())))
	}
	g.dtemb = g.tensor("dtemb", g.steps, n.Width)
	g.onesT = must(nn.Ones(l.Device(), g.steps))
	g.owned = append(g.owned, g.onesT)
}

// buildTimeBackward builds the time embedding's backward pass from dtemb (row k = ∂L/∂temb_k)
// into L_t2, L_t1 and the phase.
func (g *Graph) buildTimeBackward() {
	l, n := g.lib, g.net
	g.dg1, g.dfeat = g.tensor("dg1", g.steps, n.Width), g.tensor("dfeat", g.steps, 2*n.Harmonics)
	g.backOps = append(g.backOps, must(n.T2.BackwardThrough(l, g.dg1, g.dtemb, g.ga, g.g1, g.onesT, kernels.GELU))...)
	g.backOps = append(g.backOps, must(n.T1.Backward(l, g.dfeat, g.dg1, g.feat, g.onesT))...)
	g.backOps = append(g.backOps, must(l.FourierPhaseGrad(n.Phase.Grad, g.dfeat, g.tgrid, n.Freq, n.Phase.Value)))
}

// SetNoise sets the Philox stream (fresh noise per iteration) and the exploration std of
// every step.
func (g *Graph) SetNoise(stream uint32, explore float64) error {
	if g.fg != nil {
		return g.setFusedNoise(stream, explore)
	}
	for _, s := range g.sde {
		p := s.P
		p.Stream, p.SigmaExplore = stream, explore
		if err := s.Update(p); err != nil {
			return err
		}
	}
	for _, b := range g.bridge {
		p := b.P
		p.Stream = stream
		if err := b.Update(p); err != nil {
			return err
		}
	}
	return nil
}

// RecordForward records the trajectories: clears the log-probability accumulators,
// computes the time embedding, runs the T steps and log R at the end.
func (g *Graph) RecordForward(r *kernels.Recorder) {
	enc := r.Encoder()
	enc.ClearBuffer(g.LogPF.Buf, 0, uint64(4*g.batch))
	enc.ClearBuffer(g.LogPB.Buf, 0, uint64(4*g.batch))
	if g.LogRef != g.LogPB {
		enc.ClearBuffer(g.LogRef.Buf, 0, uint64(4*g.batch))
	}
	r.Record(g.timeOps...)
	r.Record(g.priorTimeOps...)
	g.recordPacks(r)
	r.Record(g.stepOps...)
	r.Record(g.rewardOps...)
}

// RecordBackward records the loss and the gradients of every parameter (zeroed first)
// and of log Z (copied from the loss statistics).
func (g *Graph) RecordBackward(r *kernels.Recorder) {
	nn.ZeroGrads(r, g.net.Params())
	r.Encoder().ClearBuffer(g.dtemb.Buf, 0, uint64(4*g.dtemb.Len()))
	if g.dscale != nil {
		r.Encoder().ClearBuffer(g.dscale.Buf, 0, uint64(4*g.dscale.Len()))
	}
	r.Record(g.lossOps...)
	r.Record(g.backOps...)
	if g.net.Classes == 0 {
		// ∂L/∂log Z is stats[1] (the conditional loss writes log Z's gradient itself).
		r.Encoder().CopyBufferToBuffer(g.Stats.Buf, 4, g.net.LogZ.Grad.Buf, 0, 4)
	}
}

// Release frees the graph's ops and tensors (not the network). Reward ops are released
// by their rewards (which free only what they own, not a shared reward graph).
func (g *Graph) Release() {
	fromRewards := map[*kernels.Op]bool{}
	for _, r := range g.rewards {
		for _, o := range r.Ops {
			fromRewards[o] = true
		}
	}
	for _, group := range [][]*kernels.Op{g.timeOps, g.priorTimeOps, g.stepOps, g.rewardOps, g.lossOps, g.backOps} {
		for _, o := range group {
			if !fromRewards[o] {
				o.Release()
			}
		}
	}
	for _, r := range g.rewards {
		r.Release()
	}
	for _, t := range g.owned {
		t.Release()
	}
	g.lab.Release()
}
