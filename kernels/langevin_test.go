package kernels

import (
	"math"
	"testing"
)

func TestLangevinDriftAndScaleGrad(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct{ b, d, steps, k int }{{1, 1, 1, 0}, {7, 13, 5, 3}, {300, 32, 100, 99}} {
		nnv, g, du := randn(rng, s.b*s.d, 1), randn(rng, s.b*s.d, 80), randn(rng, s.b*s.d, 1)
		g[0] = float32(math.NaN())         // outside the support: counts as 0
		for i := 1; i < len(nnv); i += 5 { // beyond the drift bound: clipped
			nnv[i] *= 3 * DriftClip
		}
		sc, ds0 := randn(rng, s.steps, 1), randn(rng, s.steps, 1)
		u := poisoned(t, l, "u", s.b, s.d)
		ds := mustTensor(t, l, "dscale", ds0, s.steps)
		gt := mustTensor(t, l, "g", g, s.b, s.d)
		fw, err := l.LangevinDrift(u, mustTensor(t, l, "nn", nnv, s.b, s.d), gt, mustTensor(t, l, "scale", sc, s.steps), s.k, 100)
		if err != nil {
			t.Fatal(err)
		}
		bw, err := l.LangevinScaleGrad(ds, mustTensor(t, l, "du", du, s.b, s.d), gt, s.k, 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(fw, bw); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "langevin drift", readT(t, u), RefLangevinDrift(to64(nnv), to64(g), float64(sc[s.k]), 100), 1e-5)
		want := to64(ds0)
		inc := RefLangevinScaleGrad(to64(du), to64(g), 100)
		want[s.k] += inc
		// A sum of B·d terms of size up to 100: tolerance relative to Σ|terms|.
		abs := 0.0
		for i := range du {
			if !math.IsNaN(float64(g[i])) {
				abs += math.Abs(float64(du[i])) * math.Min(100, math.Abs(float64(g[i])))
			}
		}
		got := readT(t, ds)
		for i := range got {
			if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-6*(abs+1)) {
				t.Fatalf("dscale[%d] = %v, want %v", i, got[i], want[i])
			}
		}
		fw.Release()
		bw.Release()
	}
}
