package kernels

import (
	"fmt"
	"testing"
)

// patchGeoms are awkward geometries: unequal strides, paddings and dilations per axis,
// kernels larger than the stride and positions that read only padding.
var patchGeoms = []PatchGeom{
	{Batch: 2, C: 3, H: 7, W: 5, PH: 3, PW: 5, KH: 3, KW: 2, SH: 2, SW: 1, PadT: 1, PadL: 0, DH: 1, DW: 2},
	{Batch: 1, C: 1, H: 1, W: 9, PH: 1, PW: 4, KH: 1, KW: 3, SH: 1, SW: 3, PadT: 0, PadL: 2, DH: 1, DW: 1},
	{Batch: 3, C: 2, H: 11, W: 11, PH: 6, PW: 4, KH: 5, KW: 4, SH: 2, SW: 3, PadT: 2, PadL: 1, DH: 1, DW: 1},
}

func TestIm2ColNCHW(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, g := range patchGeoms {
			cs := g.ColsShape()
			xs := randn(rng, g.ImageLen(), 1)
			img := mustTensor(t, l, "img", xs, g.ImageLen())
			cols := poisoned(t, l, "cols", cs[0], cs[1])
			op, err := l.Im2ColNCHW(cols, img, g)
			ewRun(t, l, op, err)
			assertClose(t, fmt.Sprintf("im2col %+v", g), readT(t, cols), RefIm2ColNCHW(to64(xs), g), 0)

			cv, bv := randn(rng, cs[0]*cs[1], 1), randn(rng, g.C, 1)
			c := mustTensor(t, l, "cols in", cv, cs[0], cs[1])
			bias := mustTensor(t, l, "bias", bv, g.C)
			for _, b := range []*Tensor{nil, bias} {
				out := poisoned(t, l, "img out", g.ImageLen())
				op, err := l.Col2ImNCHW(out, c, b, g)
				ewRun(t, l, op, err)
				var bref []float64
				if b != nil {
					bref = to64(bv)
				}
				assertClose(t, fmt.Sprintf("col2im %+v bias %v", g, b != nil), readT(t, out), RefCol2ImNCHW(to64(cv), bref, g), 1e-5)
			}
		}
	})
}
