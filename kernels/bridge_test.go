package kernels

import (
	"math"
	"testing"
)

func TestBridgeStepMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct{ b, d, k, steps int }{{1, 1, 3, 10}, {7, 13, 5, 6}, {300, 2, 0, 100}, {1037, 32, 99, 100}} {
		zn, lp0 := randn(rng, s.b*s.d, 2), randn(rng, s.b, 3)
		p := BridgeParams{Step: s.k, Steps: s.steps, Sigma2: 5, Seed: rng.Uint64(), Stream: uint32(rng.IntN(1000))}
		z := poisoned(t, l, "z", s.b, s.d)
		lp := mustTensor(t, l, "logpb", lp0, s.b)
		op, err := l.BridgeStep(z, mustTensor(t, l, "znext", zn, s.b, s.d), lp, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(op.Op); err != nil {
			t.Fatal(err)
		}
		wantLP := to64(lp0)
		wantZ := RefBridgeStep(to64(zn), RefBridgeNoise(s.b, s.d, p), s.b, s.d, p, wantLP)
		assertClose(t, "bridge z", readT(t, z), wantZ, 1e-5)
		assertClose(t, "bridge log p_B", readT(t, lp), wantLP, 1e-5*float64(s.d))
		op.Release()
	}
}

// TestBridgeTrajectoryLogDensity: for a backward trajectory from x, Σ_k log p_B plus
// log N(x; 0, σ²) equals the Brownian motion's log p_F with zero drift (the bridge is the
// exact time reversal of Brownian motion), checked through LogPF with u = 0.
func TestBridgeTrajectoryLogDensity(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	const b, d, steps, sigma2 = 257, 3, 12, 2.0
	x := randn(rng, b*d, 1.5)
	zs := make([]*Tensor, steps+1)
	for k := range zs {
		zs[k] = poisoned(t, l, "z", b, d)
	}
	if err := zs[steps].Write(x); err != nil {
		t.Fatal(err)
	}
	lpb, lpf := mustTensor(t, l, "logpb", make([]float32, b), b), mustTensor(t, l, "logpf", make([]float32, b), b)
	u := mustTensor(t, l, "u", make([]float32, b*d), b, d)
	var ops []*Op
	for k := steps - 1; k >= 0; k-- {
		op, err := l.BridgeStep(zs[k], zs[k+1], lpb, BridgeParams{Step: k, Steps: steps, Sigma2: sigma2, Seed: 11, Stream: 3})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op.Op)
	}
	for k := 0; k < steps; k++ {
		op, err := l.LogPF(lpf, zs[k], zs[k+1], u, 1.0/steps, sigma2)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	if err := l.Run(ops...); err != nil {
		t.Fatal(err)
	}
	pb, pf := readT(t, lpb), readT(t, lpf)
	for s := 0; s < b; s++ {
		logN := 0.0
		for j := 0; j < d; j++ {
			v := float64(x[s*d+j])
			logN += -0.5*v*v/sigma2 - 0.5*math.Log(2*math.Pi*sigma2)
		}
		if diff := float64(pf[s]) - float64(pb[s]) - logN; math.Abs(diff) > 2e-3*float64(steps) {
			t.Fatalf("sample %d: log p_F − log p_B = %v, log N(x; 0, σ²) = %v", s, float64(pf[s])-float64(pb[s]), logN)
		}
	}
	for _, op := range ops {
		op.Release()
	}
}
