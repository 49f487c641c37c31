package kernels

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Several AdamW steps against RefAdam on awkward sizes, with clipping off, active,
// inactive (max norm above the norm) and norm-only, fresh gradients every step.
func TestAdamMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	type clipCase struct {
		name string
		// maxNorm returns the clipping threshold given the first step's gradient norm.
		maxNorm func(norm float64) float64
	}
	clips := []clipCase{
		{"no clipping", func(float64) float64 { return 0 }},
		{"clipping active", func(n float64) float64 { return 0.3 * n }},
		{"clipping inactive", func(n float64) float64 { return 10 * n }},
		{"norm only", func(float64) float64 { return math.Inf(1) }},
	}
	for _, p := range []int{1, 7, 1000003} {
		for ci, cc := range clips {
			if p == 1000003 && ci == 3 {
				continue // the norm-only path is covered on the small sizes
			}
			cfg := AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}
			if ci%2 == 1 {
				cfg.WeightDecay = 0.1
			}
			params := randn(rng, p, 1)
			grads := randn(rng, p, 0.5)
			var ss float64
			for _, g := range grads {
				ss += float64(g) * float64(g)
			}
			cfg.MaxGradNorm = cc.maxNorm(math.Sqrt(ss))
			pT := mustTensor(t, l, "params", params, p)
			gT := mustTensor(t, l, "grads", grads, p)
			mT := mustTensor(t, l, "m", make([]float32, p), p)
			vT := mustTensor(t, l, "v", make([]float32, p), p)
			a, err := l.NewAdam(pT, gT, mT, vT, cfg)
			if err != nil {
				t.Fatal(err)
			}
			wp, wm, wv := to64(params), make([]float64, p), make([]float64, p)
			for step := 1; step <= 3; step++ {
				what := fmt.Sprintf("P=%d %s step %d", p, cc.name, step)
				if step > 1 {
					grads = randn(rng, p, 0.5)
					if err := gT.Write(grads); err != nil {
						t.Fatal(err)
					}
					a.Config.LR *= 0.5 // a schedule: applied by SetStep
				}
				if err := a.SetStep(step); err != nil {
					t.Fatal(err)
				}
				if err := a.Norm.Poison(); err != nil {
					t.Fatal(err)
				}
				if err := l.Run(a.Ops()...); err != nil {
					t.Fatal(err)
				}
				norm := RefAdam(wp, to64(grads), wm, wv, a.Config, step)
				assertClose(t, what+" params", readT(t, pT), wp, 1e-4)
				assertClose(t, what+" m", readT(t, mT), wm, 1e-4)
				assertClose(t, what+" v", readT(t, vT), wv, 1e-4)
				if cfg.MaxGradNorm != 0 {
					scale := 1.0
					if !math.IsInf(cfg.MaxGradNorm, 1) {
						scale = math.Min(1, cfg.MaxGradNorm/(norm+1e-6))
					}
					assertClose(t, what+" norm", readT(t, a.Norm), []float64{norm, scale}, 1e-5)
				}
			}
			a.Release()
		}
	}
}

// The norm is the same bits on every run (fixed partial sums).
func TestAdamNormDeterministic(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	const p = 300007
	gT := mustTensor(t, l, "grads", randn(rng, p, 1), p)
	pT := mustTensor(t, l, "params", randn(rng, p, 1), p)
	mT := mustTensor(t, l, "m", make([]float32, p), p)
	vT := mustTensor(t, l, "v", make([]float32, p), p)
	cfg := DefaultAdamConfig()
	cfg.MaxGradNorm = math.Inf(1)
	a, err := l.NewAdam(pT, gT, mT, vT, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	ops := a.Ops()
	var first []float32
	for run := 0; run < 3; run++ {
		if err := l.Run(ops[:2]...); err != nil {
			t.Fatal(err)
		}
		got := readT(t, a.Norm)
		if run == 0 {
			first = got
		} else if got[0] != first[0] {
			t.Fatalf("norm %v on run %d, %v on run 0", got[0], run, first[0])
		}
	}
}

func TestAdamErrors(t *testing.T) {
	l := testLib(t)
	mk := func(name string, n int) *Tensor { return mustTensor(t, l, name, make([]float32, n), n) }
	p, g, m, v, short := mk("p", 5), mk("g", 5), mk("m", 5), mk("v", 5), mk("short", 4)
	def := DefaultAdamConfig()
	bad := func(f func(*AdamConfig)) AdamConfig { c := def; f(&c); return c }
	cases := []struct {
		what       string
		p, g, m, v *Tensor
		cfg        AdamConfig
		want       string
	}{
		{"length", p, g, short, v, def, "params is 5 (5 elements) but m is 4 (4 elements)"},
		{"aliasing", p, g, m, g, def, "grads and v are the same tensor"},
		{"beta1", p, g, m, v, bad(func(c *AdamConfig) { c.Beta1 = 1 }), "β1 = 1"},
		{"eps", p, g, m, v, bad(func(c *AdamConfig) { c.Eps = 0 }), "eps 0"},
		{"lr", p, g, m, v, bad(func(c *AdamConfig) { c.LR = math.NaN() }), "learning rate NaN"},
		{"max norm", p, g, m, v, bad(func(c *AdamConfig) { c.MaxGradNorm = -1 }), "max gradient norm -1"},
	}
	for _, c := range cases {
		a, err := l.NewAdam(c.p, c.g, c.m, c.v, c.cfg)
		if err == nil {
			a.Release()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.what, err, c.want)
		}
	}
	a, err := l.NewAdam(p, g, m, v, def)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	if err := a.SetStep(0); err == nil || !strings.Contains(err.Error(), "step 0") {
		t.Errorf("SetStep(0): error %v", err)
	}
	a.Config.MaxGradNorm = 1
	if err := a.SetStep(2); err == nil || !strings.Contains(err.Error(), "clipping was fixed") {
		t.Errorf("turning clipping on later: error %v", err)
	}
}
