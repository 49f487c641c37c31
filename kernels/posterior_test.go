package kernels

import (
	"strings"
	"testing"
)

func TestGaussianObservationMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	const B, D, sigma = 67, 37, 0.3 // 67 rows: two workgroups, the second partial
	xs, ys := randn(rng, B*D, 1), randn(rng, D, 1)
	mask := make([]float32, D)
	for i := range mask {
		if rng.IntN(3) > 0 {
			mask[i] = 1
		}
	}
	mask[0], mask[1] = 1, 0
	x := mustTensor(t, l, "x", xs, B, D)
	y := mustTensor(t, l, "y", ys, D)
	m := mustTensor(t, l, "mask", mask, D)
	wantLR, wantDX := RefGaussianObservation(to64(xs), to64(ys), to64(mask), sigma)
	for _, grad := range []bool{true, false} {
		logr := poisoned(t, l, "logr", B)
		var dx *Tensor
		if grad {
			dx = poisoned(t, l, "dx", B, D)
		}
		op, err := l.GaussianObservation(logr, dx, x, y, m, sigma)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(op); err != nil {
			t.Fatal(err)
		}
		op.Release()
		assertClose(t, "log r", readT(t, logr), wantLR, 1e-4)
		if grad {
			assertClose(t, "dx", readT(t, dx), wantDX, 1e-4)
		}
	}
}

func TestPosteriorCombineMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	const B, d = 70, 5
	zs, lrs, jts := randn(rng, B*d, 1.5), randn(rng, B, 10), randn(rng, B*d, 2)
	z := mustTensor(t, l, "z", zs, B, d)
	lr := mustTensor(t, l, "lr", lrs, B)
	jt := mustTensor(t, l, "jt", jts, B, d)
	for _, grad := range []bool{true, false} {
		logR := poisoned(t, l, "logR", B)
		var g, j *Tensor
		var jt64 []float64
		if grad {
			g, j, jt64 = poisoned(t, l, "grad", B, d), jt, to64(jts)
		}
		op, err := l.PosteriorCombine(logR, g, z, lr, j)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(op); err != nil {
			t.Fatal(err)
		}
		op.Release()
		wantR, wantG := RefPosteriorCombine(to64(zs), to64(lrs), jt64, d)
		assertClose(t, "log R", readT(t, logR), wantR, 1e-4)
		if grad {
			assertClose(t, "grad", readT(t, g), wantG, 1e-4)
		}
	}
}

func TestPosteriorOpsRejectBadArguments(t *testing.T) {
	l := testLib(t)
	x := poisoned(t, l, "x", 4, 6)
	y := poisoned(t, l, "y", 6)
	m := poisoned(t, l, "mask", 5)
	lr := poisoned(t, l, "logr", 4)
	z := poisoned(t, l, "z", 4, 3)
	cases := []struct {
		name string
		run  func() (*Op, error)
		want string
	}{
		{"mask size", func() (*Op, error) { return l.GaussianObservation(lr, nil, x, y, m, 1) }, "mask is 5 (5 elements; want 6)"},
		{"sigma", func() (*Op, error) { return l.GaussianObservation(lr, nil, x, y, y, 0) }, "σ = 0"},
		{"alias", func() (*Op, error) { return l.GaussianObservation(lr, x, x, y, y, 1) }, "same tensor"},
		{"half grad", func() (*Op, error) { return l.PosteriorCombine(lr, z, z, lr, nil) }, "both be given"},
		{"lr size", func() (*Op, error) { return l.PosteriorCombine(lr, nil, z, y, nil) }, "lr is 6 (6 elements; want 4)"},
	}
	for _, c := range cases {
		op, err := c.run()
		if err == nil {
			op.Release()
			t.Errorf("%s: no error", c.name)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q lacks %q", c.name, err, c.want)
		}
	}
}
