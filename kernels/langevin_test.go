package kernels

import (
	"math"
	"strings"
	"testing"
)

func TestLangevinDrift(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct{ b, d, steps, k int }{{1, 1, 1, 0}, {7, 13, 5, 3}, {300, 32, 100, 99}} {
		nnv, g := randn(rng, s.b*s.d, 1), randn(rng, s.b*s.d, 80)
		g[0] = float32(math.NaN())         // outside the support: counts as 0
		for i := 1; i < len(nnv); i += 5 { // beyond the drift bound: clipped
			nnv[i] *= 3 * DriftClip
		}
		sc := randn(rng, s.steps, 1)
		u := poisoned(t, l, "u", s.b, s.d)
		fw, err := l.LangevinDrift(u, mustTensor(t, l, "nn", nnv, s.b, s.d), mustTensor(t, l, "g", g, s.b, s.d), mustTensor(t, l, "scale", sc, s.steps), s.k, 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(fw); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "langevin drift", readT(t, u), RefLangevinDrift(to64(nnv), to64(g), float64(sc[s.k]), 100), 1e-5)
		fw.Release()
	}
}

// TestLangevinScaleGrad sums stacks of awkward sizes into every (or every other) entry of
// dscale. The padding rows hold huge values, so a kernel that summed them would be off by
// orders of magnitude; some gradients are NaN (count as 0) or beyond the clip.
func TestLangevinScaleGrad(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, c := range []struct {
		d, steps int
		seg      Segments
		segs     int
		wide     bool // du is [rows, 2d] (a learned-variance output): only its first d columns count
	}{
		{1, 1, Segments{Stride: 1, Rows: 1, First: 0, Step: 1}, 1, false},
		{13, 5, Segments{Stride: 7, Rows: 7, First: 3, Step: 1}, 1, false},         // one step, no padding
		{3, 9, Segments{Stride: 11, Rows: 7, First: 1, Step: 2}, 4, false},         // odd steps
		{32, 100, Segments{Stride: 320, Rows: 300, First: 0, Step: 1}, 100, false}, // the trainer's layout
		{3, 9, Segments{Stride: 11, Rows: 7, First: 1, Step: 2}, 4, true},
		{2, 100, Segments{Stride: 304, Rows: 300, First: 0, Step: 1}, 100, true},
	} {
		rows := c.segs * c.seg.Stride
		dw := c.d
		if c.wide {
			dw = 2 * c.d
		}
		du, g := randn(rng, rows*dw, 1), randn(rng, rows*c.d, 80)
		for r := 0; r < rows; r++ {
			for i := 0; i < dw; i++ {
				if r%c.seg.Stride >= c.seg.Rows || i >= c.d {
					du[r*dw+i] = 1e30 // padding rows and the log-variance head's columns
				}
			}
			if r%c.seg.Stride >= c.seg.Rows {
				for i := 0; i < c.d; i++ {
					g[r*c.d+i] = 1
				}
			}
		}
		g[0] = float32(math.NaN())
		ds0 := randn(rng, c.steps, 1)
		ds := mustTensor(t, l, "dscale", ds0, c.steps, 1)
		op, err := l.LangevinScaleGrad(ds, c.seg, mustTensor(t, l, "du", du, rows, dw), mustTensor(t, l, "g", g, rows, c.d), 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(op); err != nil {
			t.Fatal(err)
		}
		want := RefLangevinScaleGrad(to64(ds0), to64(du), to64(g), c.d, dw, c.seg, 100)
		// Each entry is a sum of Rows·d terms of size up to 100·|du|: the tolerance is
		// relative to the sum of the terms' magnitudes.
		abs := RefLangevinScaleGrad(make([]float64, c.steps), absAll(to64(du)), absAll(to64(g)), c.d, dw, c.seg, 100)
		got := readT(t, ds)
		for k := range got {
			if d := math.Abs(float64(got[k]) - want[k]); !(d <= 1e-6*(abs[k]+math.Abs(want[k])+1)) {
				t.Fatalf("%+v: dscale[%d] = %v, want %v", c.seg, k, got[k], want[k])
			}
		}
		op.Release()
	}

	ds := poisoned(t, l, "dscale", 4, 1)
	du, g := poisoned(t, l, "du", 12, 2), poisoned(t, l, "g", 12, 2)
	for _, bad := range []struct {
		seg  Segments
		g    *Tensor
		want string
	}{
		{Segments{Stride: 3, Rows: 3, First: 2, Step: 1}, g, "reach row 5"}, // 4 segments past T = 4
		{Segments{Stride: 5, Rows: 3, First: 0, Step: 1}, g, "not a stack"}, // 12 rows are not 5-row segments
		{Segments{Stride: 3, Rows: 3, First: 0, Step: 1}, poisoned(t, l, "g", 12, 3), "d′ ≥ d"},
		{Segments{Stride: 3, Rows: 3, First: 0, Step: 1}, poisoned(t, l, "g", 6, 2), "d′ ≥ d"},
	} {
		if _, err := l.LangevinScaleGrad(ds, bad.seg, du, bad.g, 100); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v with g %v: error %v, want one containing %q", bad.seg, bad.g.Shape, err, bad.want)
		}
	}
}
