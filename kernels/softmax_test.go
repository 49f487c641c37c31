package kernels

import (
	"fmt"
	"testing"
)

func TestSoftmax(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, g := range []SoftmaxGeom{{1, 1, 1}, {13, 10, 1}, {3, 7, 5}, {1, 257, 3}} {
			n := g.Outer * g.N * g.Inner
			xs := randn(rng, n, 3)
			for _, log := range []bool{false, true} {
				what := fmt.Sprintf("%s %+v", softmaxName("softmax", log), g)
				x := mustTensor(t, l, "x", xs, n)
				y := poisoned(t, l, "y", n)
				op, err := l.Softmax(y, x, g, log)
				ewRun(t, l, op, err)
				want := RefSoftmax(to64(xs), g, log)
				assertClose(t, what, readT(t, y), want, 1e-5)

				dys := randn(rng, n, 1)
				dy := mustTensor(t, l, "dy", dys, n)
				yt := mustTensor(t, l, "y ref", f32s(want), n)
				dx := poisoned(t, l, "dx", n)
				op, err = l.SoftmaxBackward(dx, dy, yt, g, log)
				ewRun(t, l, op, err)
				assertClose(t, what+" backward", readT(t, dx), RefSoftmaxBackward(to64(dys), want, g, log), 1e-5)
			}
		}
	})
}

func f32s(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}
