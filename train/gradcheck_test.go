package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"osds/kernels"
)

// TestNetworkGradientsMatchFiniteDifferences checks the whole training graph at once:
// the gradient the GPU computes for every parameter of the sampler (time features with
// their learned phase, state embedding, the joint MLP, log Z, and where present the
// Langevin scale network and the condition embedding) against central finite differences
// of the loss the same graph computes. Backward (Brownian-bridge) trajectories from fixed
// terminal states with fixed noise make the loss a deterministic, smooth function of the
// parameters (the states do not depend on them), so the two must agree. Every parameter
// starts random (the last layers too, which are zero at initialisation and would hide
// the layers before them), and the tolerance allows for float32 differences of the loss.
func TestNetworkGradientsMatchFiniteDifferences(t *testing.T) {
	l := testLibrary(t)
	for _, c := range []struct {
		name         string
		langevin, lv bool
		classes      int
		obj          kernels.Objective
	}{
		{"tb", false, false, 0, kernels.TB},
		{"tb+langevin", true, false, 0, kernels.TB},
		{"amortised tb", false, false, 3, kernels.TB},
		{"amortised vargrad+langevin", true, false, 3, kernels.VarGrad},
		// Learned variance (fused only): the log-variance head's gradient through log p_F.
		{"tb+learned variance", false, true, 0, kernels.TB},
		{"amortised vargrad+learned variance", false, true, 3, kernels.VarGrad},
		{"tb+langevin+learned variance", true, true, 0, kernels.TB},
	} {
		t.Run(c.name, func(t *testing.T) { checkNetworkGradients(t, l, c.langevin, c.lv, c.classes, c.obj) })
	}
}

// submitIteration records g's forward and backward pass (an iteration without the
// optimizer) into one command buffer and submits it.
func submitIteration(tb testing.TB, l *kernels.Library, g *Graph) {
	tb.Helper()
	r, err := l.NewRecorder("one iteration")
	if err != nil {
		tb.Fatal(err)
	}
	g.RecordForward(r)
	g.RecordBackward(r)
	if err := r.Submit(); err != nil {
		tb.Fatal(err)
	}
}

func checkNetworkGradients(t *testing.T, l *kernels.Library, langevin, lv bool, classes int, obj kernels.Objective) {
	rng := rand.New(rand.NewPCG(11, uint64(classes)))
	cfg := DefaultConfig(GMM25{})
	cfg.Steps, cfg.Batch, cfg.Width, cfg.Harmonics = 3, 6, 8, 4
	cfg.Langevin, cfg.Classes, cfg.Objective, cfg.LearnedVariance = langevin, classes, obj, lv
	net, err := newNetwork(l.Device(), 2, cfg.Width, cfg.Harmonics, classes, rng, langevin, lv)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	params := append(net.Params(), net.LogZ)
	for _, p := range params {
		v := make([]float32, p.Len())
		for i := range v {
			v[i] = float32(0.4 * rng.NormFloat64())
		}
		if err := p.Value.Write(v); err != nil {
			t.Fatal(err)
		}
	}
	labels := TrainingLabels(cfg.Batch, classes)
	g, err := NewGraphWith(l, net, cfg, cfg.Batch, TargetReward("gmm25"), GraphOptions{Train: true, Backward: true, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	zT := make([]float32, cfg.Batch*2)
	for i := range zT {
		zT[i] = float32(3 * rng.NormFloat64())
	}
	if err := g.Z[cfg.Steps].Write(zT); err != nil {
		t.Fatal(err)
	}
	if err := g.SetNoise(5, 0); err != nil {
		t.Fatal(err)
	}
	// run records the whole iteration (without the optimizer) and returns the loss.
	run := func() float64 {
		submitIteration(t, l, g)
		st, err := g.Stats.Read()
		if err != nil {
			t.Fatal(err)
		}
		return float64(st[0])
	}
	run()
	grads := make([][]float32, len(params))
	largest := 0.0
	for i, p := range params {
		if grads[i], err = p.Grad.Read(); err != nil {
			t.Fatal(err)
		}
		for _, v := range grads[i] {
			largest = math.Max(largest, math.Abs(float64(v)))
		}
	}
	if largest == 0 {
		t.Fatal("every gradient is zero")
	}
	const eps = 1e-2
	checked := 0
	for i, p := range params {
		if obj == kernels.VarGrad && p == net.LogZ {
			continue // VarGrad has no log Z: its loss does not depend on it
		}
		v, err := p.Value.Read()
		if err != nil {
			t.Fatal(err)
		}
		// A few entries of every parameter, the largest gradient among them.
		picks := []int{rng.IntN(len(v)), rng.IntN(len(v)), argmaxAbs(grads[i])}
		for _, j := range picks {
			at := func(x float32) float64 {
				w := append([]float32(nil), v...)
				w[j] = x
				if err := p.Value.Write(w); err != nil {
					t.Fatal(err)
				}
				return run()
			}
			fd := (at(v[j]+eps) - at(v[j]-eps)) / (2 * eps)
			if err := p.Value.Write(v); err != nil {
				t.Fatal(err)
			}
			got := float64(grads[i][j])
			if tol := 2e-2*math.Abs(fd) + 2e-3*largest; math.Abs(got-fd) > tol {
				t.Errorf("∂L/∂%s[%d]: GPU %.6g, finite difference %.6g (tolerance %.2g)", p.Name, j, got, fd, tol)
			}
			checked++
		}
	}
	t.Logf("%d entries of %d parameters checked; largest gradient %.3g", checked, len(params), largest)
	if checked < 3*len(params)-3 {
		t.Fatalf("only %d entries checked", checked)
	}
}

func argmaxAbs(xs []float32) int {
	best := 0
	for i, x := range xs {
		if math.Abs(float64(x)) > math.Abs(float64(xs[best])) {
			best = i
		}
	}
	return best
}
