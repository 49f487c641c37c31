package posterior

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"osds/train"
)

// linearEvaluator is an Evaluator of the analytic linear-Gaussian posterior (linA, linB,
// linObs of analytic_test.go) for batches of up to batch rows.
func linearEvaluator(t *testing.T, batch int) *Evaluator {
	t.Helper()
	l := testLibrary(t)
	prior, err := NewLinear(l.Device(), linA, linB)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReward(l, prior, linObs)
	if err != nil {
		prior.Release()
		t.Fatal(err)
	}
	ev, err := NewEvaluator(l, r.Func(), r.Dim(), batch)
	if err != nil {
		r.Release()
		prior.Release()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ev.Release()
		r.Release()
		prior.Release()
	})
	return ev
}

func exactLinear(t *testing.T) ([]float64, [][]float64, float64) {
	t.Helper()
	mean, cov, logZ, err := LinearGaussianPosterior(linA, linB, linObs)
	if err != nil {
		t.Fatal(err)
	}
	return mean, cov, logZ
}

// TestEvaluatorMatchesExactLogR checks log R and ∇log R of the evaluator against the
// closed form of the linear-Gaussian target on rows not a multiple of the batch, and its
// cost accounting (padding not counted).
func TestEvaluatorMatchesExactLogR(t *testing.T) {
	ev := linearEvaluator(t, 64)
	rng := testRNG(t)
	zs := make([][]float64, 150)
	for i := range zs {
		zs[i] = []float64{1.5 * rng.NormFloat64(), 1.5 * rng.NormFloat64()}
	}
	lr, g, err := ev.LogRGrad(zs)
	if err != nil {
		t.Fatal(err)
	}
	s2 := linObs.Sigma * linObs.Sigma
	for i, z := range zs {
		want := LogNormal(z)
		grad := []float64{-z[0], -z[1]}
		for j, row := range linA {
			if linObs.Mask[j] == 0 {
				continue
			}
			x := row[0]*z[0] + row[1]*z[1] + linB[j]
			r := float64(linObs.Y[j]) - x
			want += -0.5*math.Log(2*math.Pi*s2) - 0.5*r*r/s2
			grad[0] += row[0] * r / s2
			grad[1] += row[1] * r / s2
		}
		if math.Abs(lr[i]-want) > 1e-4*math.Max(1, math.Abs(want)) {
			t.Fatalf("row %d: log R %.6f, want %.6f", i, lr[i], want)
		}
		for j := range grad {
			if math.Abs(g[i][j]-grad[j]) > 1e-4*math.Max(1, math.Abs(grad[j])) {
				t.Fatalf("row %d: ∇log R %v, want %v", i, g[i], grad)
			}
		}
	}
	if _, err := ev.LogR(zs[:10]); err != nil {
		t.Fatal(err)
	}
	if want := (Cost{Forward: 160, VJP: 150}); ev.Cost != want {
		t.Fatalf("cost %+v, want %+v", ev.Cost, want)
	}
	if ev.Cost.Evals() != 310 {
		t.Fatalf("evaluations %v, want 310 (a VJP counts %v)", ev.Cost.Evals(), VJPCost)
	}
}

// TestImportanceSamplingLinearGaussian: with 20,000 prior proposals, log Ẑ matches the
// exact log Z within 5 standard errors derived from the ESS (Var Ẑ/Z² ≈ (N/ESS − 1)/N),
// the weighted mean matches the exact mean within 5 √(σ²/ESS), and the resampled output
// has the posterior's mean.
func TestImportanceSamplingLinearGaussian(t *testing.T) {
	mean, cov, logZ := exactLinear(t)
	ev := linearEvaluator(t, 4096)
	const N = 20000
	start := time.Now()
	res, err := ImportanceSample(ev, N, 4000, 11)
	if err != nil {
		t.Fatal(err)
	}
	se := math.Sqrt((N/res.ESS - 1) / N)
	t.Logf("%v in %v: ESS %.0f, log Ẑ %.4f (exact %.4f, se %.4f)", res.Cost, time.Since(start).Round(time.Millisecond), res.ESS, res.LogZ, logZ, se)
	if res.Cost != (Cost{Forward: N}) {
		t.Errorf("cost %+v, want %d forward rows", res.Cost, N)
	}
	if res.ESS < 100 || res.ESS > N {
		t.Fatalf("ESS %.1f out of range", res.ESS)
	}
	if tol := 5*se + 1e-3; math.Abs(res.LogZ-logZ) > tol {
		t.Errorf("log Ẑ = %.4f, want %.4f ± %.4f", res.LogZ, logZ, tol)
	}
	wm := res.WeightedMean()
	for j := range mean {
		if tol := 5 * math.Sqrt(cov[j][j]/res.ESS); math.Abs(wm[j]-mean[j]) > tol {
			t.Errorf("weighted mean[%d] = %.4f, want %.4f ± %.4f", j, wm[j], mean[j], tol)
		}
	}
	m, _ := Moments(res.Samples)
	for j := range mean {
		// Resampling adds its own noise on top of the weighted mean's: 5√(σ²(1/ESS + 1/n)).
		if tol := 5 * math.Sqrt(cov[j][j]*(1/res.ESS+1/float64(len(res.Samples)))); math.Abs(m[j]-mean[j]) > tol {
			t.Errorf("resampled mean[%d] = %.4f, want %.4f ± %.4f", j, m[j], mean[j], tol)
		}
	}
}

// checkChainMoments compares the mean and covariance of independent samples (the chains'
// final states) with the exact posterior: 5 standard errors of each estimator.
func checkChainMoments(t *testing.T, zs [][]float64, mean []float64, cov [][]float64) {
	t.Helper()
	n := float64(len(zs))
	m, c := Moments(zs)
	t.Logf("%d samples: mean %.4f (exact %.4f), cov %.4f (exact %.4f)", len(zs), m, mean, c, cov)
	for i := range mean {
		if tol := 5 * math.Sqrt(cov[i][i]/n); math.Abs(m[i]-mean[i]) > tol {
			t.Errorf("mean[%d] = %.4f, want %.4f ± %.4f", i, m[i], mean[i], tol)
		}
		for j := range mean {
			se := math.Sqrt((cov[i][i]*cov[j][j] + cov[i][j]*cov[i][j]) / n)
			if tol := 5 * se; math.Abs(c[i][j]-cov[i][j]) > tol {
				t.Errorf("cov[%d][%d] = %.4f, want %.4f ± %.4f", i, j, c[i][j], cov[i][j], tol)
			}
		}
	}
}

// TestMALALinearGaussian: 4096 MALA chains from the prior, 60 adapted burn-in steps and
// 40 more; the final states reproduce the exact posterior's mean and covariance, the
// acceptance after burn-in is near 0.574 and the cost is one gradient per chain and step.
func TestMALALinearGaussian(t *testing.T) {
	mean, cov, _ := exactLinear(t)
	ev := linearEvaluator(t, 4096)
	cfg := MCMCConfig{Chains: 4096, Iters: 100, Burn: 60, Seed: 5}
	start := time.Now()
	res, err := MALA(ev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v in %v: acceptance %.3f at η = %.4f", res.Cost, time.Since(start).Round(time.Millisecond), res.Accept, res.Step)
	checkChainMoments(t, res.Final(cfg.Chains), mean, cov)
	if math.Abs(res.Accept-0.574) > 0.05 {
		t.Errorf("acceptance %.3f after burn-in, want 0.574 ± 0.05", res.Accept)
	}
	if want := int64(cfg.Chains * (cfg.Iters + 1)); res.Cost.Forward != want || res.Cost.VJP != want {
		t.Errorf("cost %+v, want %d forward and VJP rows", res.Cost, want)
	}
	if len(res.History) != cfg.Iters-cfg.Burn || len(res.All()) != cfg.Chains*(cfg.Iters-cfg.Burn) {
		t.Errorf("history of %d transitions, want %d", len(res.History), cfg.Iters-cfg.Burn)
	}
}

// TestHMCLinearGaussian: 4096 HMC chains (5 leapfrog steps), 60 adapted burn-in
// transitions and 20 more reproduce the exact moments; acceptance near 0.65 (± 0.1: the
// acceptance of leapfrog on a Gaussian falls off a cliff at the stability limit, which
// a short burn-in with jittered steps approaches only on average).
func TestHMCLinearGaussian(t *testing.T) {
	mean, cov, _ := exactLinear(t)
	ev := linearEvaluator(t, 4096)
	cfg := MCMCConfig{Chains: 4096, Iters: 80, Burn: 60, Leapfrog: 5, Seed: 9}
	start := time.Now()
	res, err := HMC(ev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v in %v: acceptance %.3f at ε = %.4f", res.Cost, time.Since(start).Round(time.Millisecond), res.Accept, res.Step)
	checkChainMoments(t, res.Final(cfg.Chains), mean, cov)
	if math.Abs(res.Accept-0.65) > 0.1 {
		t.Errorf("acceptance %.3f after burn-in, want 0.65 ± 0.1", res.Accept)
	}
	if want := int64(cfg.Chains * (1 + cfg.Iters*cfg.Leapfrog)); res.Cost.Forward != want || res.Cost.VJP != want {
		t.Errorf("cost %+v, want %d forward and VJP rows", res.Cost, want)
	}
}

func TestSystematicResampleAndESS(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := []float64{0.1, 0, 0.5, 0.25, 0.15}
	counts := make([]int, len(w))
	const n = 1000
	for _, i := range SystematicResample(w, n, rng) {
		counts[i]++
	}
	for i, c := range counts {
		// Systematic resampling takes ⌊n w⌋ or ⌈n w⌉ copies of each.
		if f := float64(n) * w[i]; float64(c) < math.Floor(f) || float64(c) > math.Ceil(f) {
			t.Errorf("index %d drawn %d times, want %.0f", i, c, f)
		}
	}
	if e := ESS([]float64{3, 3, 3, 3}); math.Abs(e-4) > 1e-12 {
		t.Errorf("ESS of equal weights = %v, want 4", e)
	}
	if e := ESS([]float64{0, math.Inf(-1), math.NaN()}); math.Abs(e-1) > 1e-12 {
		t.Errorf("ESS of one finite weight = %v, want 1", e)
	}
	if got := train.LogMeanExp(finiteOnly([]float64{math.Log(2), math.NaN()})); math.Abs(got-0) > 1e-12 {
		t.Errorf("log mean weight with a NaN = %v, want log(2/2) = 0", got)
	}
}

// TestSamplerCost spells out the accounting of an osds run.
func TestSamplerCost(t *testing.T) {
	cfg := train.Config{Steps: 100, Batch: 300}
	if c := SamplerCost(cfg, 1000, 1000); c != (Cost{Forward: 1000*300 + 4*300}) {
		t.Errorf("plain TB: %+v", c)
	}
	cfg.BothWays, cfg.LS = true, train.LocalSearch{Every: 100, Steps: 200, Burn: 100, Eta: 0.01, Beta: 1}
	// 9 local-search calls (iterations 100..900) of 300 chains × (1 + 200) gradients.
	ls := int64(9 * 300 * 201)
	if c := SamplerCost(cfg, 1000, 300); c != (Cost{Forward: 300000 + ls + 300, VJP: ls}) {
		t.Errorf("TB + LS: %+v", c)
	}
	cfg = train.Config{Steps: 10, Batch: 50, Langevin: true}
	if c := SamplerCost(cfg, 20, 60); c != (Cost{Forward: 20*50*11 + 100*11, VJP: 20*50*10 + 100*10}) {
		t.Errorf("Langevin: %+v", c)
	}
	if MCMCIters(3000, 100, 1) != 14 || MCMCIters(3000, 100, 5) != 2 {
		t.Errorf("MCMCIters: %d and %d, want 14 and 2", MCMCIters(3000, 100, 1), MCMCIters(3000, 100, 5))
	}
}
