package train

import (
	"math"
	"testing"
)

// TestLangevinSamplerLearnsGaussian: with the Langevin parametrisation the drift starts
// at 0.01·∇log R and the sampler reaches the target faster; after a short training its
// importance-weighted log Ẑ and moments must match N(m, S) with log Z = 1.5.
func TestLangevinSamplerLearnsGaussian(t *testing.T) {
	l := testLibrary(t)
	target, err := NewGaussian([]float64{1, -0.5}, [][]float64{{0.5, 0.2}, {0.2, 0.3}}, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(target)
	cfg.Steps, cfg.Batch, cfg.Seed, cfg.LR, cfg.Langevin = 20, 256, 3, 3e-3, true
	tr, err := NewTrainer(l, 2, cfg, gaussianReward(t, l, target))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	var last Stats
	for i := 0; i < 500; i++ {
		st, ok, err := tr.Step()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			last = st
		}
	}
	if _, err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := tr.Sample(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	est := EstimateLogZ(s.LogW, 1.5)
	t.Logf("loss %.4f, learned log Z %.4f, ELBO %.4f (Δ %.4f), IW Δ^RW %.4f", last.Loss, last.LogZ, est.ELBO, est.Delta, est.DelRW)
	if est.Delta < -0.02 || est.Delta > 0.15 || math.Abs(est.DelRW) > 0.05 {
		t.Errorf("Δ = %.4f, Δ^RW = %.4f: want Δ in [0, 0.15] and |Δ^RW| ≤ 0.05", est.Delta, est.DelRW)
	}
	var mean [2]float64
	for _, z := range s.Z {
		mean[0] += z[0] / 4096
		mean[1] += z[1] / 4096
	}
	for i, m := range []float64{1, -0.5} {
		if se := math.Sqrt(target.Cov.At(i, i) / 4096); math.Abs(mean[i]-m) > 5*se+0.03 {
			t.Errorf("mean[%d] = %.4f, want %.4f", i, mean[i], m)
		}
	}
}
