package kernels

import (
	"fmt"
	"testing"
)

var poolGeoms = []PoolGeom{
	{N: 6, H: 7, W: 9, OH: 3, OW: 4, KH: 3, KW: 2, SH: 2, SW: 2, PadT: 1, PadL: 0, PadB: 0, PadR: 0, DH: 1, DW: 1},
	{N: 2, H: 5, W: 5, OH: 3, OW: 3, KH: 2, KW: 2, SH: 2, SW: 2, PadT: 0, PadL: 0, PadB: 1, PadR: 1, DH: 1, DW: 1}, // ceil mode
	{N: 3, H: 8, W: 6, OH: 3, OW: 4, KH: 3, KW: 2, SH: 2, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 2, DW: 2},
	{N: 1, H: 1, W: 13, OH: 1, OW: 5, KH: 1, KW: 3, SH: 1, SW: 3, PadT: 0, PadL: 1, PadB: 0, PadR: 1, DH: 1, DW: 1},
}

func TestPool(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, g := range poolGeoms {
			in, out := g.N*g.H*g.W, g.N*g.OH*g.OW
			xs := randn(rng, in, 1)
			x := mustTensor(t, l, "x", xs, in)
			dys := randn(rng, out, 1)
			dy := mustTensor(t, l, "dy", dys, out)

			y, idx := poisoned(t, l, "y", out), poisoned(t, l, "idx", out)
			op, err := l.MaxPool(y, idx, x, g)
			ewRun(t, l, op, err)
			wantY, wantIdx := RefMaxPool(to64(xs), g)
			assertClose(t, fmt.Sprintf("max pool %+v", g), readT(t, y), wantY, 0)
			dx := poisoned(t, l, "dx", in)
			op, err = l.MaxPoolBackward(dx, dy, idx, g)
			ewRun(t, l, op, err)
			assertClose(t, fmt.Sprintf("max pool backward %+v", g), readT(t, dx), RefMaxPoolBackward(to64(dys), wantIdx, g), 1e-6)

			for _, pad := range []bool{false, true} {
				g.CountPad = pad
				y := poisoned(t, l, "y", out)
				op, err := l.AvgPool(y, x, g)
				ewRun(t, l, op, err)
				assertClose(t, fmt.Sprintf("avg pool %+v", g), readT(t, y), RefAvgPool(to64(xs), g), 1e-5)
				dx := poisoned(t, l, "dx", in)
				op, err = l.AvgPoolBackward(dx, dy, g)
				ewRun(t, l, op, err)
				assertClose(t, fmt.Sprintf("avg pool backward %+v", g), readT(t, dx), RefAvgPoolBackward(to64(dys), g), 1e-5)
			}
		}
	})
}
