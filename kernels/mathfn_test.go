package kernels

import (
	"math"
	"testing"
)

var mathFns = []MathFn{MathNeg, MathExp, MathLog, MathSqrt, MathReciprocal, MathAbs, MathErf, MathElu, MathLeakyRelu}

// mathInputs returns inputs in f's domain: positive for log, sqrt and the reciprocal,
// spread over both branches and both tails of erf otherwise.
func mathInputs(f MathFn, xs []float32) []float32 {
	out := append([]float32(nil), xs...)
	for i, x := range out {
		switch f {
		case MathLog, MathSqrt, MathReciprocal:
			out[i] = 0.2 + x*x
		case MathErf:
			out[i] = 2 * x
		}
	}
	return out
}

func TestMath(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, f := range mathFns {
			for _, shape := range ewShapes {
				n := ewNumel(shape)
				xs := mathInputs(f, randn(rng, n, 1.5))
				alpha := 0.3
				x := mustTensor(t, l, "x", xs, shape...)
				y := poisoned(t, l, "y", shape...)
				op, err := l.Math(y, x, f, float32(alpha))
				ewRun(t, l, op, err)
				want := RefUnary(func(v float64) float64 { return RefMath(f, v, alpha) }, to64(xs))
				assertClose(t, f.String()+" "+ewShape(shape), readT(t, y), want, 1e-5)

				dys := randn(rng, n, 1)
				dy := mustTensor(t, l, "dy", dys, shape...)
				dx := poisoned(t, l, "dx", shape...)
				op, err = l.MathBackward(dx, dy, x, f, float32(alpha))
				ewRun(t, l, op, err)
				wantd := make([]float64, n)
				for i := range wantd {
					wantd[i] = float64(dys[i]) * RefMathGrad(f, float64(xs[i]), alpha)
				}
				assertClose(t, f.String()+" backward "+ewShape(shape), readT(t, dx), wantd, 1e-5)
			}
		}
	})
}

// TestErfAccuracy checks erf at relative 1e-6 (no absolute floor) over [−6, 6], where
// GELU's exact form needs it, including the small arguments where 1 − erfc would cancel.
func TestErfAccuracy(t *testing.T) {
	l := testLib(t)
	var xs []float32
	for v := -6.0; v <= 6.0; v += 0.0137 {
		xs = append(xs, float32(v))
	}
	xs = append(xs, 1e-4, -3e-3, 0.4999, 0.5001)
	x := mustTensor(t, l, "x", xs, len(xs))
	y := poisoned(t, l, "y", len(xs))
	op, err := l.Math(y, x, MathErf, 0)
	ewRun(t, l, op, err)
	got := readT(t, y)
	for i, v := range xs {
		want := math.Erf(float64(v))
		if e := math.Abs(float64(got[i])-want) / math.Abs(want); e > 1e-6 && math.Abs(float64(got[i])-want) > 1e-7 {
			t.Fatalf("erf(%v) = %v, want %v (relative error %.3g)", v, got[i], want, e)
		}
	}
}
