package posterior

import (
	"math"
	"testing"
	"time"

	"osds/kernels"
	"osds/train"
)

// The analytic problem: a linear prior x = A z + b (d = 2, D = 5) observed with noise
// σ = 1 on coordinates 0, 2 and 3. The noise-space posterior is N(μ, P⁻¹) with
// P = I + A_MᵀA_M/σ² (LinearGaussianPosterior), here μ ≈ (0.46, 0.70), variances ≈ 0.36
// and covariance ≈ −0.08, log Z ≈ −5.1.
var (
	linA   = [][]float64{{1, 0.5}, {0.3, -1}, {-0.5, 1}, {0.8, 0.8}, {0, 1}}
	linB   = []float64{0.2, 0, -0.3, 0.1, 0.5}
	linObs = GaussianObservation{Y: []float32{1.2, 0, 0.4, 1.5, 0}, Mask: []float32{1, 0, 1, 1, 0}, Sigma: 1}
)

// trainLinearPosterior trains a sampler on the linear posterior for iters iterations and
// draws n on-policy samples.
func trainLinearPosterior(t *testing.T, cfg train.Config, iters, n int) (*train.Samples, train.Stats) {
	t.Helper()
	return trainLinearObserved(t, cfg, linObs, iters, n)
}

// trainLinearObserved is trainLinearPosterior with the observation obs of linA z + linB.
func trainLinearObserved(t *testing.T, cfg train.Config, obs GaussianObservation, iters, n int) (*train.Samples, train.Stats) {
	t.Helper()
	l := testLibrary(t)
	prior, err := NewLinear(l.Device(), linA, linB)
	if err != nil {
		t.Fatal(err)
	}
	defer prior.Release()
	r, err := NewReward(l, prior, obs)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	tr, err := train.NewTrainer(l, r.Dim(), cfg, r.Func())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	start := time.Now()
	var last train.Stats
	for i := 0; i < iters; i++ {
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
	t.Logf("%d iterations in %v; last loss %.4f, learned log Z %.4f", iters, time.Since(start).Round(time.Millisecond), last.Loss, last.LogZ)
	s, err := tr.Sample(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s, last
}

// checkMoments compares the sample mean and covariance with the exact posterior:
// 5 standard errors of each estimator at n samples plus an allowance for the sampler's
// own bias after a short training (0.03).
func checkMoments(t *testing.T, zs [][]float64, mean []float64, cov [][]float64) {
	t.Helper()
	n := float64(len(zs))
	d := len(mean)
	m := make([]float64, d)
	for _, z := range zs {
		for i := range m {
			m[i] += z[i] / n
		}
	}
	c := make([][]float64, d)
	for i := range c {
		c[i] = make([]float64, d)
		for j := range c[i] {
			for _, z := range zs {
				c[i][j] += (z[i] - m[i]) * (z[j] - m[j]) / (n - 1)
			}
		}
	}
	t.Logf("mean %.4f (exact %.4f), cov %.4f (exact %.4f)", m, mean, c, cov)
	for i := 0; i < d; i++ {
		if tol := 5*math.Sqrt(cov[i][i]/n) + 0.03; math.Abs(m[i]-mean[i]) > tol {
			t.Errorf("mean[%d] = %.4f, want %.4f ± %.4f", i, m[i], mean[i], tol)
		}
		for j := 0; j < d; j++ {
			// Var of a sample covariance entry: (S_ii S_jj + S_ij²)/n.
			se := math.Sqrt((cov[i][i]*cov[j][j] + cov[i][j]*cov[i][j]) / n)
			if tol := 5*se + 0.03; math.Abs(c[i][j]-cov[i][j]) > tol {
				t.Errorf("cov[%d][%d] = %.4f, want %.4f ± %.4f", i, j, c[i][j], cov[i][j], tol)
			}
		}
	}
}

func linearConfig() train.Config {
	return train.Config{Steps: 20, Sigma2: 1, Batch: 256, Width: 64, Harmonics: 64, Objective: kernels.TB,
		LR: 3e-3, LRLogZ: 0.1, Seed: 7}
}

// TestSamplerLearnsLinearPosteriorTB is the must-show of posterior sampling in noise
// space: a sampler trained with trajectory balance through the prior-and-observation
// reward (on-policy and replay-buffer batches) matches the exact Gaussian posterior in
// mean and covariance, its log Ẑ^RW matches the exact log Z, and its ELBO stays below
// log Z (up to the estimator's noise) and close to it.
func TestSamplerLearnsLinearPosteriorTB(t *testing.T) {
	mean, cov, logZ, err := LinearGaussianPosterior(linA, linB, linObs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := linearConfig()
	cfg.BothWays, cfg.Buffer = true, 8192
	const n = 4096
	s, last := trainLinearPosterior(t, cfg, 400, n)
	est := train.EstimateLogZ(s.LogW, logZ)
	se := stdErr(s.LogW)
	t.Logf("log Z %.4f: ELBO %.4f (Δ %.4f ± %.4f), IW %.4f (Δ^RW %.4f)", logZ, est.ELBO, est.Delta, se, est.IW, est.DelRW)
	checkMoments(t, s.Z, mean, cov)
	if est.Delta < -5*se || est.Delta > 0.1 {
		t.Errorf("Δ = log Z − ELBO = %.4f, want within [−5 se, 0.1] = [%.4f, 0.1] (the ELBO bounds log Z from below)", est.Delta, -5*se)
	}
	if math.Abs(est.DelRW) > 0.05 {
		t.Errorf("Δ^RW = %.4f, want |Δ^RW| ≤ 0.05", est.DelRW)
	}
	if math.Abs(last.LogZ-logZ) > 0.1 {
		t.Errorf("learned log Z = %.4f, want %.4f ± 0.1", last.LogZ, logZ)
	}
}

// TestSamplerLearnsLinearPosteriorLangevin trains with VarGrad and the Langevin drift,
// which asks the reward for ∇log R at every one of the 20 steps: 21 call sites on one
// shared prior-and-observation graph per batch.
func TestSamplerLearnsLinearPosteriorLangevin(t *testing.T) {
	mean, cov, logZ, err := LinearGaussianPosterior(linA, linB, linObs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := linearConfig()
	cfg.Objective, cfg.Langevin, cfg.Seed = kernels.VarGrad, true, 3
	const n = 4096
	s, _ := trainLinearPosterior(t, cfg, 250, n)
	est := train.EstimateLogZ(s.LogW, logZ)
	se := stdErr(s.LogW)
	t.Logf("log Z %.4f: ELBO %.4f (Δ %.4f ± %.4f), IW %.4f (Δ^RW %.4f)", logZ, est.ELBO, est.Delta, se, est.IW, est.DelRW)
	checkMoments(t, s.Z, mean, cov)
	if est.Delta < -5*se || est.Delta > 0.15 || math.Abs(est.DelRW) > 0.05 {
		t.Errorf("Δ = %.4f, Δ^RW = %.4f: want Δ in [−5 se, 0.15] and |Δ^RW| ≤ 0.05", est.Delta, est.DelRW)
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
