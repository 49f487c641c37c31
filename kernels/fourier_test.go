package kernels

import (
	"math"
	"testing"
)

func TestFourierAndPhaseGrad(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct{ steps, h int }{{1, 1}, {7, 13}, {101, 64}} {
		ts := make([]float32, s.steps)
		for i := range ts {
			ts[i] = float32(i) / float32(s.steps)
		}
		freq := Linspace(0.1, 100, s.h)
		ph := randn(rng, s.h, 1)
		dfs := randn(rng, s.steps*2*s.h, 1)
		dph0 := randn(rng, s.h, 1)
		tt := mustTensor(t, l, "t", ts, s.steps)
		ft := mustTensor(t, l, "freq", freq, s.h)
		pt := mustTensor(t, l, "phase", ph, s.h)
		df := mustTensor(t, l, "dfeat", dfs, s.steps, 2*s.h)
		dp := mustTensor(t, l, "dphase", dph0, s.h)
		feat := poisoned(t, l, "feat", s.steps, 2*s.h)
		fw, err := l.Fourier(feat, tt, ft, pt)
		if err != nil {
			t.Fatal(err)
		}
		bw, err := l.FourierPhaseGrad(dp, df, tt, ft, pt)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(fw, bw); err != nil {
			t.Fatal(err)
		}
		// Arguments reach f·t ≈ 100: f32 sin/cos of such arguments carry absolute error
		// ~|a|·eps ≈ 1e-5, hence 1e-4 on values of size ≤ 1.
		assertClose(t, "fourier", readT(t, feat), RefFourier(to64(ts), to64(freq), to64(ph)), 1e-4)
		assertClose(t, "fourier phase grad", readT(t, dp), RefFourierPhaseGrad(to64(dph0), to64(dfs), to64(ts), to64(freq), to64(ph)), 1e-4*math.Sqrt(float64(s.steps)))
		fw.Release()
		bw.Release()
	}
}

func TestFourierPhaseGradMatchesFiniteDifferences(t *testing.T) {
	// The reference gradient itself, checked against central differences of
	// L(φ) = Σ dfeat ⊙ feat(φ) in float64.
	rng := testRNG(t)
	steps, h := 9, 5
	ts := make([]float64, steps)
	for i := range ts {
		ts[i] = float64(i) / float64(steps)
	}
	freq, ph, df := to64(Linspace(0.1, 100, h)), to64(randn(rng, h, 1)), to64(randn(rng, steps*2*h, 1))
	g := RefFourierPhaseGrad(make([]float64, h), df, ts, freq, ph)
	loss := func(p []float64) float64 {
		s := 0.0
		for i, v := range RefFourier(ts, freq, p) {
			s += df[i] * v
		}
		return s
	}
	for j := range ph {
		pp, pm := append([]float64(nil), ph...), append([]float64(nil), ph...)
		pp[j] += 1e-6
		pm[j] -= 1e-6
		fd := (loss(pp) - loss(pm)) / 2e-6
		if math.Abs(fd-g[j]) > 1e-6*math.Max(1, math.Abs(fd)) {
			t.Fatalf("dφ_%d: reference %v, finite difference %v", j, g[j], fd)
		}
	}
}
