package posterior

import (
	"fmt"
	"math"
	"testing"
	"time"

	"osds/kernels"
	"osds/train"
)

// linFamily observes the linear prior's coordinates 0, 2 and 3 (linObs's mask) with
// three different value vectors: three conditions with three known posteriors.
var linFamily = ObservationFamily{
	Y: [][]float32{
		{1.2, 0, 0.4, 1.5, 0},
		{-1.0, 0, 0.8, -0.6, 0},
		{0.3, 0, -1.5, 0.2, 0},
	},
	Mask:  []float32{1, 0, 1, 1, 0},
	Sigma: 1,
}

// runReward records one call site of f into a command buffer of its own.
func runReward(t *testing.T, l *kernels.Library, f train.RewardFunc, s *callSite) {
	t.Helper()
	rec, err := l.NewRecorder("reward test")
	if err != nil {
		t.Fatal(err)
	}
	rw, err := f(l, s.lr, s.grd, s.z)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Release()
	rec.Record(rw.Ops...)
	if err := rec.Submit(); err != nil {
		t.Fatal(err)
	}
}

// TestAmortisedRewardsMatchReference checks per-row conditions and the constraint-only
// rewards of relative TB against float64: the linear prior with the observation family
// (log R and log r with gradients), and the tiny VAE with the class family.
func TestAmortisedRewardsMatchReference(t *testing.T) {
	l := testLibrary(t)
	rng := testRNG(t)
	const d = 2
	prior, err := NewLinear(l.Device(), linA, linB)
	if err != nil {
		t.Fatal(err)
	}
	defer prior.Release()
	r, err := NewCondReward(l, prior, linFamily)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if r.Conditions() != 3 {
		t.Fatalf("%d conditions", r.Conditions())
	}
	const B = 23
	labels := make([]int, B)
	for i := range labels {
		labels[i] = rng.IntN(3)
	}
	for _, withPrior := range []bool{true, false} {
		f := r.CondFunc()(labels)
		if !withPrior {
			f = r.CondConstraintFunc()(labels)
		}
		s := newCallSite(t, l, rng, B, d, true)
		runReward(t, l, f, s)
		var wantLR, wantG []float64
		for b, z := range rows64(s.zs, d) {
			lr, g := linearLogR(linA, linB, linFamily.Observation(labels[b]), z)
			if !withPrior {
				// log r = log R − log N(z; 0, I), ∇log r = ∇log R + z.
				for i, v := range z {
					lr += 0.5*v*v + 0.5*log2Pi
					g[i] += v
				}
			}
			wantLR, wantG = append(wantLR, lr), append(wantG, g...)
		}
		what := fmt.Sprintf("prior term %v", withPrior)
		assertClose(t, "log R, "+what, read64(t, s.lr), wantLR, 1e-4)
		assertClose(t, "∇log R, "+what, read64(t, s.grd), wantG, 1e-4)
	}
	// One shared graph per batch of conditions: the two calls above share one.
	if len(r.shared) != 1 {
		t.Errorf("%d shared graphs for one batch of conditions", len(r.shared))
	}
	if _, err := r.Func()(l, nil, nil, nil); err == nil {
		t.Fatal("the unconditional reward of an amortised family worked")
	}
	if err := (ObservationFamily{Y: linFamily.Y, Mask: []float32{1}, Sigma: 1}).Check(5); err == nil {
		t.Fatal("a mask of the wrong width passed")
	}

	// The class family: row b is scored against its own class.
	v, c := tinyVAEClassifier(t, l)
	const beta, dv = 1.3, 3
	cr, err := NewCondReward(l, v, ClassFamily{Classifier: c, Beta: beta})
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Release()
	vl := make([]int, 11)
	for i := range vl {
		vl[i] = rng.IntN(c.Arch.Classes)
	}
	s := newCallSite(t, l, rng, len(vl), dv, false)
	runReward(t, l, cr.CondFunc()(vl), s)
	var want []float64
	for b, z := range rows64(s.zs, dv) {
		want = append(want, newVAEClassRef(t, v, c, vl[b], beta).logR(z))
	}
	assertClose(t, "class family log R", read64(t, s.lr), want, 1e-4)
	if _, err := NewCondReward(l, v, ClassFamily{Classifier: c, Beta: 0}); err == nil {
		t.Fatal("β = 0 accepted")
	}
}

// TestAmortisedSamplerLearnsEachLinearPosteriorTB trains ONE sampler over the three
// observation conditions of linFamily, forward and replay batches, with TB (a learned
// log Z per condition), and checks per condition the samples' mean and covariance
// against the exact posterior, log Ẑ^RW and the learned log Z against the exact log Z.
func TestAmortisedSamplerLearnsEachLinearPosteriorTB(t *testing.T) {
	testAmortisedLinear(t, kernels.TB)
}

// TestAmortisedSamplerLearnsEachLinearPosteriorVarGrad is the same with VarGrad
// (log Z[y] replaced by the batch mean of condition y's rows).
func TestAmortisedSamplerLearnsEachLinearPosteriorVarGrad(t *testing.T) {
	testAmortisedLinear(t, kernels.VarGrad)
}

func testAmortisedLinear(t *testing.T, obj kernels.Objective) {
	l := testLibrary(t)
	prior, err := NewLinear(l.Device(), linA, linB)
	if err != nil {
		t.Fatal(err)
	}
	defer prior.Release()
	r, err := NewCondReward(l, prior, linFamily)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	cfg := train.Config{Steps: 20, Sigma2: 1, Batch: 255, Width: 64, Harmonics: 64, Objective: obj,
		LR: 3e-3, LRLogZ: 0.1, Seed: 5, Classes: 3, BothWays: true, Buffer: 255 * 32}
	tr, err := train.NewTrainerWith(l, r.Dim(), cfg, train.Options{CondReward: r.CondFunc()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	start := time.Now()
	const iters = 300
	for i := 0; i < iters; i++ {
		if _, _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d iterations in %v", iters, time.Since(start).Round(time.Millisecond))
	logZs, err := tr.Net.LogZ.Value.Read()
	if err != nil {
		t.Fatal(err)
	}
	const n = 2048
	for y := 0; y < 3; y++ {
		mean, cov, logZ, err := LinearGaussianPosterior(linA, linB, linFamily.Observation(y))
		if err != nil {
			t.Fatal(err)
		}
		labels := make([]int, n)
		for i := range labels {
			labels[i] = y
		}
		s, err := tr.SampleConditions(labels, uint32(y+1))
		if err != nil {
			t.Fatal(err)
		}
		est := train.EstimateLogZ(s.LogW, logZ)
		t.Logf("condition %d: log Z %.4f, learned %.4f, ELBO %.4f, IW %.4f", y, logZ, logZs[y], est.ELBO, est.IW)
		checkMoments(t, s.Z, mean, cov)
		se := stdErr(s.LogW)
		if est.Delta < -5*se || est.Delta > 0.1 || math.Abs(est.DelRW) > 0.05 {
			t.Errorf("condition %d: Δ = %.4f, Δ^RW = %.4f: want Δ in [−5 se, 0.1] and |Δ^RW| ≤ 0.05", y, est.Delta, est.DelRW)
		}
		if obj == kernels.TB && math.Abs(float64(logZs[y])-logZ) > 0.1 {
			t.Errorf("condition %d: learned log Z = %.4f, want %.4f ± 0.1", y, logZs[y], logZ)
		}
	}
}

// TestRTBFromBrownianPriorIsTB: a zero-drift prior sampler's trajectory density is
// exactly N(z_T; 0, σ²I)·p_B(τ|z_T), so relative TB from it with the reward log r is TB
// with log R = log N(z; 0, I) + log r: from the same initial network and noise the two
// trainers must report the same losses, iteration by iteration.
func TestRTBFromBrownianPriorIsTB(t *testing.T) {
	l := testLibrary(t)
	prior, err := NewLinear(l.Device(), linA, linB)
	if err != nil {
		t.Fatal(err)
	}
	defer prior.Release()
	r, err := NewReward(l, prior, linObs)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	cfg := train.Config{Steps: 10, Sigma2: 1, Batch: 64, Width: 32, Harmonics: 16, Objective: kernels.TB,
		LR: 3e-3, LRLogZ: 0.1, Seed: 9, Explore: 0.3, ExploreIters: 100, BothWays: true, Buffer: 256}
	tb, err := train.NewTrainer(l, r.Dim(), cfg, r.Func())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Release()
	// The prior: the network TB starts from (same seed), last layer zero: drift 0.
	brown, err := train.NewNetworkFor(l.Device(), r.Dim(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer brown.Release()
	rcfg := cfg
	rcfg.Objective = kernels.RTB
	rtb, err := train.NewTrainerWith(l, r.Dim(), rcfg, train.Options{Reward: r.ConstraintFunc(), Prior: brown})
	if err != nil {
		t.Fatal(err)
	}
	defer rtb.Release()
	var a, b []train.Stats
	for i := 0; i < 12; i++ {
		for _, x := range []struct {
			tr  *train.Trainer
			out *[]train.Stats
		}{{tb, &a}, {rtb, &b}} {
			st, ok, err := x.tr.Step()
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				*x.out = append(*x.out, st)
			}
		}
	}
	for _, x := range []struct {
		tr  *train.Trainer
		out *[]train.Stats
	}{{tb, &a}, {rtb, &b}} {
		sts, err := x.tr.Flush()
		if err != nil {
			t.Fatal(err)
		}
		*x.out = append(*x.out, sts...)
	}
	if len(a) != 12 || len(b) != 12 {
		t.Fatalf("%d and %d iterations reported", len(a), len(b))
	}
	for i := range a {
		t.Logf("iteration %2d: TB loss %.6f, RTB loss %.6f; log Z %.5f / %.5f; mean Δ %.5f / %.5f", i, a[i].Loss, b[i].Loss, a[i].LogZ, b[i].LogZ, a[i].MeanDelta, b[i].MeanDelta)
		if math.Abs(a[i].Loss-b[i].Loss) > 1e-3*math.Max(1, a[i].Loss) || math.Abs(a[i].MeanDelta-b[i].MeanDelta) > 1e-3*math.Max(1, math.Abs(a[i].MeanDelta)) {
			t.Fatalf("iteration %d: TB and RTB from a Brownian prior differ: loss %.6f vs %.6f, mean Δ %.6f vs %.6f", i, a[i].Loss, b[i].Loss, a[i].MeanDelta, b[i].MeanDelta)
		}
	}
	if a[0].Loss < 0.1 {
		t.Fatalf("the first loss %.4f is too small for the comparison to mean anything", a[0].Loss)
	}
}

// TestRTBFineTunesPriorToLinearPosterior fine-tunes a prior sampler with relative TB
// towards prior × r and checks the result against the exact posterior. The prior
// sampler has the constant drift c (its last layer's bias): its marginal is exactly
// N(c, I) and its trajectory density N(z_T; c, I)·p_B(τ|z_T), so the target p^prior·r is
// the linear-Gaussian posterior of z = c + w, w ~ N(0, I), x = A w + (A c + b).
func TestRTBFineTunesPriorToLinearPosterior(t *testing.T) {
	l := testLibrary(t)
	lin, err := NewLinear(l.Device(), linA, linB)
	if err != nil {
		t.Fatal(err)
	}
	defer lin.Release()
	r, err := NewReward(l, lin, linObs)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	cfg := train.Config{Steps: 20, Sigma2: 1, Batch: 256, Width: 64, Harmonics: 64, Objective: kernels.RTB,
		LR: 3e-3, LRLogZ: 0.1, Seed: 11, BothWays: true, Buffer: 8192}
	pcfg := cfg
	pcfg.Objective, pcfg.Seed = kernels.TB, 3
	pnet, err := train.NewNetworkFor(l.Device(), 2, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pnet.Release()
	c := []float64{0.8, -0.6}
	if err := pnet.L3.B.Value.Write([]float32{float32(c[0]), float32(c[1])}); err != nil {
		t.Fatal(err)
	}
	shifted := make([]float64, len(linB))
	for j := range shifted {
		shifted[j] = linB[j] + linA[j][0]*c[0] + linA[j][1]*c[1]
	}
	meanW, cov, logZ, err := LinearGaussianPosterior(linA, shifted, linObs)
	if err != nil {
		t.Fatal(err)
	}
	mean := []float64{meanW[0] + c[0], meanW[1] + c[1]}
	tr, err := train.NewTrainerWith(l, 2, cfg, train.Options{Reward: r.ConstraintFunc(), Prior: pnet})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	// Before fine-tuning the sampler is the prior: mean c.
	s0, err := tr.Sample(1024, 9)
	if err != nil {
		t.Fatal(err)
	}
	m0 := []float64{0, 0}
	for _, z := range s0.Z {
		m0[0] += z[0] / 1024
		m0[1] += z[1] / 1024
	}
	if math.Hypot(m0[0]-c[0], m0[1]-c[1]) > 0.2 {
		t.Fatalf("the fine-tuned sampler does not start at the prior: mean %.3f, prior mean %.3f", m0, c)
	}
	start := time.Now()
	const iters = 250
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
	if sts, err := tr.Flush(); err != nil {
		t.Fatal(err)
	} else if len(sts) > 0 {
		last = sts[len(sts)-1]
	}
	t.Logf("%d iterations in %v; learned log Z %.4f (exact %.4f)", iters, time.Since(start).Round(time.Millisecond), last.LogZ, logZ)
	s, err := tr.Sample(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkMoments(t, s.Z, mean, cov)
	est := train.EstimateLogZ(s.LogW, logZ)
	se := stdErr(s.LogW)
	t.Logf("ELBO %.4f (Δ %.4f ± %.4f), IW %.4f (Δ^RW %.4f)", est.ELBO, est.Delta, se, est.IW, est.DelRW)
	if est.Delta < -5*se || est.Delta > 0.15 || math.Abs(est.DelRW) > 0.05 {
		t.Errorf("Δ = %.4f, Δ^RW = %.4f: want Δ in [−5 se, 0.15] and |Δ^RW| ≤ 0.05", est.Delta, est.DelRW)
	}
	if math.Abs(last.LogZ-logZ) > 0.1 {
		t.Errorf("learned log Z = %.4f, want %.4f ± 0.1", last.LogZ, logZ)
	}
	// The prior stayed frozen.
	bias, _ := pnet.L3.B.Value.Read()
	if float64(bias[0]) != float64(float32(c[0])) || float64(bias[1]) != float64(float32(c[1])) {
		t.Fatalf("the prior's drift changed to %v", bias)
	}
}
