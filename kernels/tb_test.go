package kernels

import (
	"math"
	"testing"
)

func TestTBLossMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, obj := range []Objective{TB, VarGrad} {
		for _, b := range []int{1, 7, 300, 1037} {
			pf, pb, lr := randn(rng, b, 5), randn(rng, b, 5), randn(rng, b, 5)
			lz := randn(rng, 1, 2)
			tpf, tpb, tlr := mustTensor(t, l, "logpf", pf, b), mustTensor(t, l, "logpb", pb, b), mustTensor(t, l, "logr", lr, b)
			tlz := mustTensor(t, l, "logz", lz, 1)
			coef, stats := poisoned(t, l, "coef", b), poisoned(t, l, "stats", 4)
			op, err := l.TBLoss(coef, stats, tpf, tpb, tlr, tlz, obj)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Run(op); err != nil {
				t.Fatal(err)
			}
			wantC, wantS := RefTBLoss(to64(pf), to64(pb), to64(lr), float64(lz[0]), obj)
			// Residuals are sums of three O(5) values: f32 rounding ~1e-6 relative.
			assertClose(t, obj.String()+" coef", readT(t, coef), wantC, 1e-5)
			assertClose(t, obj.String()+" stats", readT(t, stats), wantS[:], 1e-5)
			op.Release()
		}
	}
}

func TestTBCoefficientsAreLossGradients(t *testing.T) {
	// coef_b must be ∂L/∂log p_F(τ_b) and stats[1] = ∂L/∂log Z: central differences of
	// the reference loss.
	rng := testRNG(t)
	for _, obj := range []Objective{TB, VarGrad} {
		pf, pb, lr := to64(randn(rng, 9, 3)), to64(randn(rng, 9, 3)), to64(randn(rng, 9, 3))
		lz := 0.7
		coef, st := RefTBLoss(pf, pb, lr, lz, obj)
		loss := func(pf []float64, lz float64) float64 { _, s := RefTBLoss(pf, pb, lr, lz, obj); return s[0] }
		for i := range pf {
			p1, p2 := append([]float64(nil), pf...), append([]float64(nil), pf...)
			p1[i] += 1e-6
			p2[i] -= 1e-6
			fd := (loss(p1, lz) - loss(p2, lz)) / 2e-6
			if math.Abs(fd-coef[i]) > 1e-6 {
				t.Fatalf("%v: coef %d = %v, finite difference %v", obj, i, coef[i], fd)
			}
		}
		fd := (loss(pf, lz+1e-6) - loss(pf, lz-1e-6)) / 2e-6
		if math.Abs(fd-st[1]) > 1e-6 {
			t.Fatalf("%v: ∂L/∂log Z = %v, finite difference %v", obj, st[1], fd)
		}
	}
}

func TestTBDriftGrad(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct{ b, d int }{{1, 1}, {7, 13}, {300, 32}} {
		z0, z1, u, c := randn(rng, s.b*s.d, 1), randn(rng, s.b*s.d, 1), randn(rng, s.b*s.d, 3), randn(rng, s.b, 1)
		// Drifts at the bound ±DriftClip pass no gradient; just inside they do.
		for i := 0; i < len(u); i += 3 {
			u[i] = float32([]float64{DriftClip, -DriftClip, 0.999 * DriftClip, -0.999 * DriftClip}[(i/3)%4])
		}
		du := poisoned(t, l, "du", s.b, s.d)
		op, err := l.TBDriftGrad(du, mustTensor(t, l, "z0", z0, s.b, s.d), mustTensor(t, l, "z1", z1, s.b, s.d),
			mustTensor(t, l, "u", u, s.b, s.d), mustTensor(t, l, "coef", c, s.b), 0.01, 5)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(op); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "drift grad", readT(t, du), RefTBDriftGrad(to64(z0), to64(z1), to64(u), to64(c), s.d, 0.01, 5), 1e-5)
		op.Release()
	}
	x := poisoned(t, l, "x", 3, 2)
	y := poisoned(t, l, "y", 3, 3)
	c := poisoned(t, l, "c", 3)
	if _, err := l.TBDriftGrad(x, x, y, x, c, 0.01, 1); err == nil {
		t.Fatal("shape mismatch accepted")
	}
	if _, err := l.TBDriftGrad(x, x, x, x, c, 0, 1); err == nil {
		t.Fatal("dt = 0 accepted")
	}
}
