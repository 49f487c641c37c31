package kernels

import (
	"math"
	"testing"
)

// malaSetup builds M chains on the Gaussian target N(m, S), S = [[0.5, 0.2], [0.2, 0.3]].
type malaSetup struct {
	x, g, lr, xp, gp, lrp, acc *Tensor
	here, there                *Op // log R and ∇ at x and at xp
}

func newMALASetup(t *testing.T, l *Library, x0 []float32, m int) *malaSetup {
	t.Helper()
	const det = 0.5*0.3 - 0.2*0.2
	prec := []float32{0.3 / det, -0.2 / det, -0.2 / det, 0.5 / det}
	mean := mustTensor(t, l, "mean", []float32{1, -0.5}, 2)
	pt := mustTensor(t, l, "prec", prec, 2, 2)
	s := &malaSetup{
		x: mustTensor(t, l, "x", x0, m, 2), g: poisoned(t, l, "g", m, 2), lr: poisoned(t, l, "lr", m),
		xp: poisoned(t, l, "xp", m, 2), gp: poisoned(t, l, "gp", m, 2), lrp: poisoned(t, l, "lrp", m),
		acc: mustTensor(t, l, "acc", make([]float32, m), m),
	}
	var err error
	if s.here, err = l.GaussianLogReward(s.lr, s.g, s.x, mean, pt, 0); err != nil {
		t.Fatal(err)
	}
	if s.there, err = l.GaussianLogReward(s.lrp, s.gp, s.xp, mean, pt, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.here.Release(); s.there.Release() })
	return s
}

func TestMALAStepMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	const m = 1037
	x0 := randn(rng, m*2, 1.5)
	s := newMALASetup(t, l, x0, m)
	p := MALAParams{Step: 3, Stream: 9, Seed: rng.Uint64(), Eta: 0.2, Beta: 1}
	step, err := l.NewMALAStep(s.x, s.g, s.lr, s.xp, s.gp, s.lrp, s.acc, p)
	if err != nil {
		t.Fatal(err)
	}
	defer step.Release()
	if err := l.Run(s.here); err != nil {
		t.Fatal(err)
	}
	x, g, lr := to64(readT(t, s.x)), to64(readT(t, s.g)), to64(readT(t, s.lr))
	if err := l.Run(step.Propose(), s.there); err != nil {
		t.Fatal(err)
	}
	xp := readT(t, s.xp)
	assertClose(t, "mala proposal", xp, RefMALAPropose(x, g, m, 2, p), 1e-5)
	gp, lrp := to64(readT(t, s.gp)), to64(readT(t, s.lrp))
	if err := l.Run(step.Accept()); err != nil {
		t.Fatal(err)
	}
	want := RefMALAAccept(x, g, lr, to64(xp), gp, lrp, m, 2, p)
	acc, xNew := readT(t, s.acc), readT(t, s.x)
	agree, accepted := 0, 0
	for b := 0; b < m; b++ {
		got := acc[b] == 1
		if got == want[b] {
			agree++
		}
		if got {
			accepted++
			if xNew[2*b] != xp[2*b] {
				t.Fatalf("chain %d accepted but x did not move to the proposal", b)
			}
		} else if xNew[2*b] != float32(x[2*b]) {
			t.Fatalf("chain %d rejected but x changed", b)
		}
	}
	// f32 vs float64 can flip decisions only where log u ≈ log α: a handful at most.
	if m-agree > 3 {
		t.Fatalf("%d of %d accept decisions differ from the reference", m-agree, m)
	}
	if accepted == 0 || accepted == m {
		t.Fatalf("%d of %d accepted: the test exercises nothing", accepted, m)
	}
}

// TestMALAChainsSampleTheTarget runs 512 chains for 300 steps from N(0, I) and checks the
// final states' mean and covariance against N(m, S) (5 standard errors; fixed seed).
func TestMALAChainsSampleTheTarget(t *testing.T) {
	l := testLib(t)
	const m, steps = 512, 300
	x0 := make([]float32, 2*m)
	for i := range x0 {
		x0[i] = float32(math.Sin(float64(i)*12.9898) * 1.5) // spread, deterministic
	}
	s := newMALASetup(t, l, x0, m)
	step, err := l.NewMALAStep(s.x, s.g, s.lr, s.xp, s.gp, s.lrp, s.acc, MALAParams{Seed: 42, Eta: 0.1, Beta: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer step.Release()
	if err := l.Run(s.here); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < steps; k++ {
		if err := step.Update(MALAParams{Step: k, Seed: 42, Eta: 0.1, Beta: 1}); err != nil {
			t.Fatal(err)
		}
		if err := l.Run(step.Propose(), s.there, step.Accept()); err != nil {
			t.Fatal(err)
		}
	}
	x := readT(t, s.x)
	var mean [2]float64
	for b := 0; b < m; b++ {
		mean[0] += float64(x[2*b]) / m
		mean[1] += float64(x[2*b+1]) / m
	}
	var cov [2][2]float64
	for b := 0; b < m; b++ {
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				cov[i][j] += (float64(x[2*b+i]) - mean[i]) * (float64(x[2*b+j]) - mean[j]) / (m - 1)
			}
		}
	}
	S := [2][2]float64{{0.5, 0.2}, {0.2, 0.3}}
	mu := [2]float64{1, -0.5}
	for i := 0; i < 2; i++ {
		if se := math.Sqrt(S[i][i] / m); math.Abs(mean[i]-mu[i]) > 5*se {
			t.Errorf("mean[%d] = %.4f, want %.4f ± %.4f", i, mean[i], mu[i], 5*se)
		}
		for j := 0; j < 2; j++ {
			if se := math.Sqrt((S[i][i]*S[j][j] + S[i][j]*S[i][j]) / m); math.Abs(cov[i][j]-S[i][j]) > 5*se {
				t.Errorf("cov[%d][%d] = %.4f, want %.4f ± %.4f", i, j, cov[i][j], S[i][j], 5*se)
			}
		}
	}
	acc := readT(t, s.acc)
	total := 0.0
	for _, a := range acc {
		total += float64(a)
	}
	t.Logf("mean %.3f cov %.3f acceptance %.3f", mean, cov, total/(m*steps))
}

func TestMALARejectsBadParameters(t *testing.T) {
	l := testLib(t)
	x := poisoned(t, l, "x", 4, 2)
	v := poisoned(t, l, "v", 4)
	y := poisoned(t, l, "y", 4, 3)
	if _, err := l.NewMALAStep(x, y, v, x, x, v, v, MALAParams{Eta: 0.1, Beta: 1}); err == nil {
		t.Fatal("shape mismatch accepted")
	}
	if _, err := l.NewMALAStep(x, x, v, x, x, v, v, MALAParams{Eta: 0, Beta: 1}); err == nil {
		t.Fatal("η = 0 accepted")
	}
}
