package train

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"osds/kernels"
)

// gaussianReward returns the reward op builder of a Gaussian target (tensors uploaded once).
func gaussianReward(t testing.TB, l *kernels.Library, g *Gaussian) RewardFunc {
	d := g.Dim()
	f32 := func(xs []float64) []float32 {
		out := make([]float32, len(xs))
		for i, x := range xs {
			out[i] = float32(x)
		}
		return out
	}
	mean, err := kernels.FromSlice(l.Device(), "target mean", f32(g.Mean), d)
	if err != nil {
		t.Fatal(err)
	}
	prec, err := kernels.FromSlice(l.Device(), "target precision", f32(g.Precision()), d, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mean.Release(); prec.Release() })
	return func(l *kernels.Library, logr, grad, z *kernels.Tensor) (*Reward, error) {
		return OpReward(l.GaussianLogReward(logr, grad, z, mean, prec, g.Offset()))
	}
}

// TestSamplerLearnsGaussian trains the sampler on N(m, S) with log Z = 1.5 and checks
// the sampler's mean, covariance and log-partition estimates against the exact values.
// Tolerances: 5 standard errors of each estimator at n samples, plus a small allowance
// for the sampler's own bias after this short training.
func TestSamplerLearnsGaussian(t *testing.T) {
	l := testLibrary(t)
	target, err := NewGaussian([]float64{1, -0.5}, [][]float64{{0.5, 0.2}, {0.2, 0.3}}, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(target)
	cfg.Steps, cfg.Batch, cfg.Seed = 20, 256, 7
	cfg.LR = 3e-3
	// Half the iterations train on backward trajectories from the replay buffer, so both
	// trajectory sources (and the bridge kernels) are exercised.
	cfg.BothWays, cfg.Buffer = true, 8192
	tr, err := NewTrainer(l, 2, cfg, gaussianReward(t, l, target))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	start := time.Now()
	const iters = 1500
	var last Stats
	for i := 0; i < iters; i++ {
		st, ok, err := tr.Step()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			last = st
		}
		if ok && st.Iter%250 == 0 {
			t.Logf("iter %d loss %.4f log Z %.4f ELBO %.4f", st.Iter, st.Loss, st.LogZ, -st.MeanDelta)
		}
	}
	if _, err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d iterations in %v (%.1f it/s); last loss %.4f", iters, time.Since(start), iters/time.Since(start).Seconds(), last.Loss)
	const n = 4096
	s, err := tr.Sample(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	est := EstimateLogZ(s.LogW, 1.5)
	t.Logf("ELBO %.4f (Δ %.4f), IW %.4f (Δ^RW %.4f), learned log Z %.4f", est.ELBO, est.Delta, est.IW, est.DelRW, last.LogZ)
	var mean [2]float64
	for _, z := range s.Z {
		mean[0] += z[0] / n
		mean[1] += z[1] / n
	}
	var cov [2][2]float64
	for _, z := range s.Z {
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				cov[i][j] += (z[i] - mean[i]) * (z[j] - mean[j]) / (n - 1)
			}
		}
	}
	t.Logf("mean %.4f, cov %.4f", mean, cov)
	for i := 0; i < 2; i++ {
		se := math.Sqrt(target.Cov.At(i, i) / n)
		if math.Abs(mean[i]-target.Mean[i]) > 5*se+0.03 {
			t.Errorf("mean[%d] = %.4f, want %.4f ± %.4f", i, mean[i], target.Mean[i], 5*se+0.03)
		}
		for j := 0; j < 2; j++ {
			// Var of a sample covariance entry: (S_ii S_jj + S_ij²)/n.
			sij := target.Cov.At(i, j)
			se := math.Sqrt((target.Cov.At(i, i)*target.Cov.At(j, j) + sij*sij) / n)
			if math.Abs(cov[i][j]-sij) > 5*se+0.03 {
				t.Errorf("cov[%d][%d] = %.4f, want %.4f ± %.4f", i, j, cov[i][j], sij, 5*se+0.03)
			}
		}
	}
	// ELBO ≤ log Z ≤ ... : the gap Δ shrinks as the sampler learns; IW is tighter.
	if est.Delta < -5*stdErr(s.LogW) || est.Delta > 0.1 {
		t.Errorf("Δ log Ẑ = %.4f, want within [0, 0.1]", est.Delta)
	}
	if math.Abs(est.DelRW) > 0.05 {
		t.Errorf("Δ log Ẑ^RW = %.4f, want |Δ| ≤ 0.05", est.DelRW)
	}
	if math.Abs(last.LogZ-1.5) > 0.1 {
		t.Errorf("learned log Z = %.4f, want 1.5 ± 0.1", last.LogZ)
	}
	// The EUBO from exact samples bounds log Z from above; for a good sampler it is close.
	eubo, err := tr.EUBO(target.Sample(rand.New(rand.NewPCG(5, 6)), 2048), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EUBO %.4f", eubo)
	if eubo < 1.5-0.02 || eubo > 1.5+0.1 {
		t.Errorf("EUBO = %.4f, want within [1.48, 1.6] (an upper bound on log Z = 1.5)", eubo)
	}
}

func stdErr(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	s := 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)-1) / float64(len(v)))
}
