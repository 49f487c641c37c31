package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randLabels(rng *rand.Rand, n, g int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(rng.IntN(g))
	}
	return out
}

func mustIndex(t *testing.T, l *Library, label string, idx []uint32, limit int) *IndexTensor {
	t.Helper()
	x, err := IndexFromSlice(l.Device(), label, idx, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Release)
	return x
}

func TestAddRowCondAndSumRowsCond(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct {
		b, c, t, g, row int
		act             Activation
		pre             bool
	}{{1, 1, 1, 1, 0, Identity, false}, {7, 13, 5, 3, 4, GELU, true}, {300, 64, 100, 10, 37, GELU, true}, {1037, 65, 3, 17, 2, SiLU, false}} {
		xs, tab, emb, dys := randn(rng, s.b*s.c, 1), randn(rng, s.t*s.c, 1), randn(rng, s.g*s.c, 1), randn(rng, s.b*s.c, 1)
		labs := randLabels(rng, s.b, s.g)
		x := mustTensor(t, l, "x", xs, s.b, s.c)
		table := mustTensor(t, l, "table", tab, s.t, s.c)
		e := mustTensor(t, l, "emb", emb, s.g, s.c)
		dy := mustTensor(t, l, "dy", dys, s.b, s.c)
		lab := mustIndex(t, l, "labels", labs, s.g)
		out := poisoned(t, l, "out", s.b, s.c)
		var pre *Tensor
		if s.pre {
			pre = poisoned(t, l, "pre", s.b, s.c)
		}
		add, err := l.AddRowCond(out, pre, x, table, s.row, e, lab, s.act)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.SumRowsCond(table, s.row, e, lab, dy)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(add, sum); err != nil {
			t.Fatal(err)
		}
		h := RefAddRowCond(to64(xs), to64(tab), to64(emb), labs, s.c, s.row)
		if pre != nil {
			assertClose(t, "add row cond: pre", readT(t, pre), h, 1e-6)
		}
		want := make([]float64, len(h))
		for i, v := range h {
			want[i] = RefActivate(s.act, v)
		}
		assertClose(t, "add row cond: "+s.act.String(), readT(t, out), want, 1e-6)
		wantT, wantE := RefSumSegmentsCond(to64(tab), to64(emb), to64(dys), labs, s.c, Segments{Stride: s.b, Rows: s.b, First: s.row, Step: 1})
		// Column sums: rounding scales with Σ|terms| (see TestAddRowAndSumRowsInto).
		check := func(what string, got []float32, want, before []float64, rowOf func(i int) (bool, []int)) {
			for i := range got {
				in, bs := rowOf(i)
				if !in {
					if float64(got[i]) != before[i] {
						t.Fatalf("%s %v: element %d changed", what, s, i)
					}
					continue
				}
				scale := math.Abs(before[i])
				for _, b := range bs {
					scale += math.Abs(float64(dys[b*s.c+i%s.c]))
				}
				if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-6*scale+1e-7) {
					t.Fatalf("%s %v: element %d: got %v, want %v", what, s, i, got[i], want[i])
				}
			}
		}
		all := make([]int, s.b)
		for b := range all {
			all[b] = b
		}
		check("time table", readT(t, table), wantT, to64(tab), func(i int) (bool, []int) { return i/s.c == s.row, all })
		check("embedding", readT(t, e), wantE, to64(emb), func(i int) (bool, []int) {
			var bs []int
			for b, g := range labs {
				if int(g) == i/s.c {
					bs = append(bs, b)
				}
			}
			return true, bs
		})
		add.Release()
		sum.Release()
	}
	// Shape and label errors.
	x := poisoned(t, l, "x", 4, 3)
	tab := poisoned(t, l, "tab", 2, 3)
	e := poisoned(t, l, "e", 5, 3)
	if _, err := l.AddRowCond(x, nil, x, tab, 0, e, mustIndex(t, l, "few", []uint32{0, 1}, 5), Identity); err == nil {
		t.Fatal("2 labels for 4 rows accepted")
	}
	if _, err := l.AddRowCond(poisoned(t, l, "o", 4, 3), nil, x, tab, 0, e, mustIndex(t, l, "big", []uint32{0, 1, 2, 3}, 6), Identity); err == nil {
		t.Fatal("labels allowing 6 conditions for 5 embeddings accepted")
	}
	four := mustIndex(t, l, "four", []uint32{0, 1, 2, 3}, 5)
	o := poisoned(t, l, "o2", 4, 3)
	if _, err := l.AddRowCond(o, poisoned(t, l, "pre", 3, 4), x, tab, 0, e, four, GELU); err == nil {
		t.Fatal("pre of shape [3, 4] for x [4, 3] accepted")
	}
	if _, err := l.AddRowCond(o, x, x, tab, 0, e, four, GELU); err == nil {
		t.Fatal("pre aliasing x accepted")
	}
	if _, err := l.AddRowCond(o, nil, x, tab, 0, e, four, Activation(99)); err == nil {
		t.Fatal("unknown activation accepted")
	}
	if _, err := l.SumRowsCond(tab, 0, poisoned(t, l, "e4", 5, 4), mustIndex(t, l, "ok", []uint32{0, 1, 2, 3}, 5), x); err == nil {
		t.Fatal("column mismatch accepted")
	}
}

// TestSumSegmentsCond is TestSumSegmentsInto with conditions: the time rows as there,
// and every condition's embedding summed over its rows of every segment.
func TestSumSegmentsCond(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct {
		c, t, g, segs int
		seg           Segments
	}{
		{1, 1, 1, 1, Segments{Stride: 1, Rows: 1, First: 0, Step: 1}},
		{13, 9, 3, 4, Segments{Stride: 8, Rows: 7, First: 1, Step: 2}},
		{64, 100, 10, 50, Segments{Stride: 320, Rows: 300, First: 1, Step: 2}},
		{65, 7, 17, 3, Segments{Stride: 40, Rows: 37, First: 4, Step: 1}},
	} {
		tab, emb := randn(rng, s.t*s.c, 1), randn(rng, s.g*s.c, 1)
		dys := padSegments(rng, s.segs, s.seg.Stride, s.seg.Rows, s.c)
		labs := randLabels(rng, s.seg.Rows, s.g)
		table := mustTensor(t, l, "table", tab, s.t, s.c)
		e := mustTensor(t, l, "emb", emb, s.g, s.c)
		dy := mustTensor(t, l, "dy", dys, s.segs*s.seg.Stride, s.c)
		lab := mustIndex(t, l, "labels", labs, s.g)
		sum, err := l.SumSegmentsCond(table, s.seg, e, lab, dy)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(sum); err != nil {
			t.Fatal(err)
		}
		wantT, wantE := RefSumSegmentsCond(to64(tab), to64(emb), to64(dys), labs, s.c, s.seg)
		checkSegmentTable(t, fmt.Sprintf("sum segments cond %+v: time table", s), readT(t, table), tab, wantT, dys, s.c, s.segs, s.seg)
		got := readT(t, e)
		for i := range got {
			g := uint32(i / s.c)
			scale := segmentScale(dys, s.c, s.seg, s.segs, -1, i%s.c, func(b int) bool { return labs[b] == g })
			if d := math.Abs(float64(got[i]) - wantE[i]); !(d <= 1e-6*(scale+math.Abs(float64(emb[i])))+1e-7) {
				t.Fatalf("sum segments cond %+v: embedding element %d: got %v, want %v", s, i, got[i], wantE[i])
			}
		}
		sum.Release()
	}
	tab, e := poisoned(t, l, "tab", 4, 3), poisoned(t, l, "e", 5, 3)
	dy := poisoned(t, l, "dy", 12, 3)
	if _, err := l.SumSegmentsCond(tab, Segments{Stride: 4, Rows: 4, First: 0, Step: 1}, e, mustIndex(t, l, "twelve", make([]uint32, 12), 5), dy); err == nil {
		t.Fatal("12 labels for segments of 4 rows accepted")
	}
	if _, err := l.SumSegmentsCond(tab, Segments{Stride: 4, Rows: 4, First: 2, Step: 1}, e, mustIndex(t, l, "four", make([]uint32, 4), 5), dy); err == nil {
		t.Fatal("segments reaching row 4 of a 4-row table accepted")
	}
}

func TestCondTBLossMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, obj := range []Objective{TB, VarGrad} {
		for _, s := range []struct{ b, g int }{{1, 1}, {7, 3}, {300, 10}, {1037, 13}, {600, 256}} {
			pf, pb, lr := randn(rng, s.b, 5), randn(rng, s.b, 5), randn(rng, s.b, 5)
			lz := randn(rng, s.g, 2)
			labs := randLabels(rng, s.b, s.g)
			coef, dlz, stats := poisoned(t, l, "coef", s.b), poisoned(t, l, "dlogz", s.g), poisoned(t, l, "stats", 4)
			op, err := l.CondTBLoss(coef, dlz, stats, mustTensor(t, l, "logpf", pf, s.b), mustTensor(t, l, "ref", pb, s.b),
				mustTensor(t, l, "logr", lr, s.b), mustTensor(t, l, "logz", lz, s.g), mustIndex(t, l, "labels", labs, s.g), obj)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Run(op); err != nil {
				t.Fatal(err)
			}
			wc, wd, ws := RefCondTBLoss(to64(pf), to64(pb), to64(lr), to64(lz), labs, obj)
			assertClose(t, obj.String()+" coef", readT(t, coef), wc, 1e-5)
			assertClose(t, obj.String()+" dlogz", readT(t, dlz), wd, 1e-5)
			assertClose(t, obj.String()+" stats", readT(t, stats), ws[:], 1e-5)
			op.Release()
		}
	}
	// With one condition the conditional loss is the plain one.
	pf, pb, lr := to64(randn(rng, 50, 3)), to64(randn(rng, 50, 3)), to64(randn(rng, 50, 3))
	for _, obj := range []Objective{TB, VarGrad} {
		c1, d1, s1 := RefCondTBLoss(pf, pb, lr, []float64{0.3}, make([]uint32, 50), obj)
		c2, s2 := RefTBLoss(pf, pb, lr, 0.3, obj)
		for i := range c1 {
			if math.Abs(c1[i]-c2[i]) > 1e-12 {
				t.Fatalf("%v: coef %d: %v vs %v", obj, i, c1[i], c2[i])
			}
		}
		if math.Abs(s1[0]-s2[0]) > 1e-12 || math.Abs(d1[0]-s2[1]) > 1e-12 {
			t.Fatalf("%v: loss %v vs %v, ∂log Z %v vs %v", obj, s1[0], s2[0], d1[0], s2[1])
		}
	}
}

func TestCondTBCoefficientsAreLossGradients(t *testing.T) {
	rng := testRNG(t)
	for _, obj := range []Objective{TB, VarGrad} {
		pf, pb, lr := to64(randn(rng, 12, 3)), to64(randn(rng, 12, 3)), to64(randn(rng, 12, 3))
		lz := to64(randn(rng, 3, 1))
		labs := randLabels(rng, 12, 3)
		coef, dlz, _ := RefCondTBLoss(pf, pb, lr, lz, labs, obj)
		loss := func(pf, lz []float64) float64 { _, _, s := RefCondTBLoss(pf, pb, lr, lz, labs, obj); return s[0] }
		for i := range pf {
			p1, p2 := append([]float64(nil), pf...), append([]float64(nil), pf...)
			p1[i] += 1e-6
			p2[i] -= 1e-6
			if fd := (loss(p1, lz) - loss(p2, lz)) / 2e-6; math.Abs(fd-coef[i]) > 1e-6 {
				t.Fatalf("%v: coef %d = %v, finite difference %v", obj, i, coef[i], fd)
			}
		}
		for g := range lz {
			z1, z2 := append([]float64(nil), lz...), append([]float64(nil), lz...)
			z1[g] += 1e-6
			z2[g] -= 1e-6
			if fd := (loss(pf, z1) - loss(pf, z2)) / 2e-6; math.Abs(fd-dlz[g]) > 1e-6 {
				t.Fatalf("%v: ∂L/∂log Z[%d] = %v, finite difference %v", obj, g, dlz[g], fd)
			}
		}
	}
}
