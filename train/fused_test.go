package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"osds/kernels"
)

// fusedCase is one configuration the fused and op-by-op graphs are compared on.
type fusedCase struct {
	d, batch, steps int
	backward        bool
	classes         int
	obj             kernels.Objective
	explore         float64
	prior           bool // relative TB against a random prior sampler
	langevin        bool // the Langevin drift (one rollout dispatch per step when sampling)
}

func (c fusedCase) String() string {
	dir := "forward"
	if c.backward {
		dir = "backward"
	}
	s := fmt.Sprintf("d%d_b%d_T%d_%s_%v", c.d, c.batch, c.steps, dir, c.obj)
	if c.classes > 0 {
		s += fmt.Sprintf("_cond%d", c.classes)
	}
	if c.explore > 0 {
		s += "_explore"
	}
	if c.langevin {
		s += "_langevin"
	}
	return s
}

// TestFusedGraphMatchesOpByOp runs one training iteration (forward and backward, no
// optimizer) of the fused graph and of the op-by-op reference on the same network, noise
// and terminal states, and compares what they compute: every state of the trajectories,
// log p_F, log p_B (or the prior's log p_F), log R, the loss statistics and every
// parameter's gradient. Sizes are awkward (d = 1, 3, 32; batch 1, 7, 301; T = 1, 2, 100),
// every parameter is random (the zero last layer would hide the layers before it), and
// the outputs of the fused graph are poisoned first.
func TestFusedGraphMatchesOpByOp(t *testing.T) {
	l := testLibrary(t)
	cases := []fusedCase{
		{d: 2, batch: 7, steps: 100, obj: kernels.TB},
		{d: 2, batch: 301, steps: 100, obj: kernels.TB, explore: 0.1},
		{d: 1, batch: 1, steps: 1, obj: kernels.TB},
		{d: 3, batch: 7, steps: 2, obj: kernels.VarGrad, explore: 0.3},
		{d: 3, batch: 301, steps: 2, obj: kernels.TB, backward: true},
		{d: 32, batch: 7, steps: 100, obj: kernels.TB},
		{d: 32, batch: 7, steps: 2, obj: kernels.TB, backward: true},
		{d: 3, batch: 9, steps: 2, obj: kernels.TB, classes: 3},
		{d: 2, batch: 6, steps: 3, obj: kernels.VarGrad, classes: 3, backward: true},
		{d: 3, batch: 7, steps: 2, obj: kernels.RTB, prior: true},
		{d: 3, batch: 7, steps: 2, obj: kernels.RTB, prior: true, backward: true},
		// The Langevin drift: sampled (with exploration) and given trajectories, long ones,
		// amortised ones, and against a relative-TB prior.
		{d: 2, batch: 7, steps: 100, obj: kernels.TB, langevin: true, explore: 0.1},
		{d: 1, batch: 1, steps: 1, obj: kernels.TB, langevin: true},
		{d: 3, batch: 301, steps: 2, obj: kernels.VarGrad, langevin: true, backward: true},
		{d: 32, batch: 7, steps: 3, obj: kernels.TB, langevin: true},
		{d: 3, batch: 9, steps: 2, obj: kernels.TB, classes: 3, langevin: true},
		{d: 3, batch: 7, steps: 2, obj: kernels.RTB, prior: true, langevin: true},
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) { checkFusedCase(t, l, c) })
	}
}

func checkFusedCase(t *testing.T, l *kernels.Library, c fusedCase) {
	rng := rand.New(rand.NewPCG(uint64(c.d*1000+c.batch), uint64(c.steps)))
	mean := make([]float64, c.d)
	cov := make([][]float64, c.d)
	for i := range cov {
		mean[i] = rng.NormFloat64()
		cov[i] = make([]float64, c.d)
		cov[i][i] = 0.5 + rng.Float64()
	}
	target, err := NewGaussian(mean, cov, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	reward := gaussianReward(t, l, target)
	cfg := DefaultConfigSigma2(1.7)
	cfg.Steps, cfg.Batch, cfg.Width, cfg.Harmonics = c.steps, c.batch, 16, 5
	cfg.Classes, cfg.Objective, cfg.Langevin = c.classes, c.obj, c.langevin
	random := func(n *Network) {
		for _, p := range append(n.Params(), n.LogZ) {
			// The Langevin scale network's weights are scaled by 1/√fan-in, so that its
			// scale s_k stays O(1) as a trained one's does: at 0.5·N(0, 1) weights s_k
			// reaches tens, the drift s_k·∇log R hundreds, and the drift gradient's
			// z_{k+1} − z_k − u·dt loses to f32 cancellation what the two paths'
			// different summation orders leave (a 1e-4 relative difference at d = 32).
			sd := 0.5
			if strings.HasPrefix(p.Name, "langevin.") && len(p.Value.Shape) == 2 {
				sd = 1 / math.Sqrt(float64(p.Value.Shape[0]))
			}
			v := make([]float32, p.Len())
			for i := range v {
				v[i] = float32(sd * rng.NormFloat64())
			}
			if err := p.Value.Write(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	net, err := NewCondNetwork(l.Device(), c.d, cfg.Width, cfg.Harmonics, c.classes, rng, c.langevin)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	random(net)
	var opts GraphOptions
	opts.Train, opts.Backward, opts.Labels = true, c.backward, TrainingLabels(c.batch, c.classes)
	if c.prior {
		p, err := NewNetwork(l.Device(), c.d, 12, 3, rng, false)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Release()
		random(p)
		opts.Prior = p
	}
	zT := make([]float32, c.batch*c.d)
	for i := range zT {
		zT[i] = float32(2 * rng.NormFloat64())
	}
	// run builds the graph of one path, runs one iteration and returns what it computed.
	run := func(opByOp bool) map[string][]float32 {
		cfg := cfg
		cfg.OpByOp = opByOp
		g, err := NewGraphWith(l, net, cfg, c.batch, reward, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		if g.Fused() == opByOp {
			t.Fatalf("op-by-op %v but the graph is fused: %v (%s)", opByOp, g.Fused(), g.FusedReason())
		}
		if !opByOp {
			for _, x := range append(g.Z[1:], g.LogR, g.DU, g.DH1, g.DH2) {
				if err := x.Poison(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if c.backward {
			if err := g.Z[c.steps].Write(zT); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.SetNoise(9, c.explore); err != nil {
			t.Fatal(err)
		}
		submitIteration(t, l, g)
		out := map[string][]float32{}
		read := func(name string, x *kernels.Tensor) {
			v, err := x.Read()
			if err != nil {
				t.Fatal(err)
			}
			out[name] = v
		}
		for k := 0; k <= c.steps; k++ {
			read(fmt.Sprintf("z_%d", k), g.Z[k])
		}
		read("log p_F", g.LogPF)
		read("log p_B or the prior's log p_F", g.LogRef)
		read("log R", g.LogR)
		read("loss statistics", g.Stats)
		for _, p := range append(net.Params(), net.LogZ) {
			read("∇"+p.Name, p.Grad)
		}
		return out
	}
	ref, got := run(true), run(false)
	for name, want := range ref {
		if err := closeRel(got[name], want, 2e-5); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// closeRel checks |got − want| ≤ tol·max(1, max|want|) element by element (NaN fails).
func closeRel(got, want []float32, tol float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	scale := 1.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	worst, at := 0.0, -1
	for i := range want {
		e := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(e) {
			return fmt.Errorf("element %d is %v, want %v", i, got[i], want[i])
		}
		if e > worst {
			worst, at = e, i
		}
	}
	if worst > tol*scale {
		return fmt.Errorf("element %d is %v, want %v (error %.3g of scale %.3g, tolerance %.1g relative)", at, got[at], want[at], worst, scale, tol)
	}
	return nil
}
