package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestAddRowAndSumRowsInto(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct{ b, c, t, row int }{{1, 1, 1, 0}, {7, 13, 5, 4}, {300, 64, 100, 37}, {70001, 3, 2, 1}} {
		xs, tab, dys := randn(rng, s.b*s.c, 1), randn(rng, s.t*s.c, 1), randn(rng, s.b*s.c, 1)
		x := mustTensor(t, l, "x", xs, s.b, s.c)
		table := mustTensor(t, l, "table", tab, s.t, s.c)
		dy := mustTensor(t, l, "dy", dys, s.b, s.c)
		out := poisoned(t, l, "out", s.b, s.c)
		add, err := l.AddRow(out, x, table, s.row)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.SumRowsInto(table, s.row, dy)
		if err != nil {
			t.Fatal(err)
		}
		// One submission: the add reads the table before the sum updates it.
		if err := l.Run(add, sum); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "add row", readT(t, out), RefAddRow(to64(xs), to64(tab), s.c, s.row), 1e-6)
		// A column sum's rounding error scales with Σ|terms|, not with the (possibly small)
		// result: compare against 1e-6·Σ|terms| (a missing or doubled row is off by ~|dy|).
		got, want := readT(t, table), RefSumSegmentsInto(to64(tab), to64(dys), s.c, Segments{Stride: s.b, Rows: s.b, First: s.row, Step: 1})
		for c := 0; c < s.c; c++ {
			i := s.row*s.c + c
			scale := math.Abs(float64(tab[i]))
			for b := 0; b < s.b; b++ {
				scale += math.Abs(float64(dys[b*s.c+c]))
			}
			if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-6*scale) {
				t.Fatalf("sum rows into %v: column %d: got %v, want %v (error %.3g > %.3g)", s, c, got[i], want[i], d, 1e-6*scale)
			}
		}
		for i := range got {
			if i/s.c != s.row && got[i] != tab[i] {
				t.Fatalf("sum rows into %v: element %d outside row %d changed", s, i, s.row)
			}
		}
		add.Release()
		sum.Release()
	}
}

// padSegments returns a stack of segs segments of stride rows and C columns whose first
// rows rows are random and whose padding rows are NaN: a sum that reads padding is NaN.
func padSegments(rng *rand.Rand, segs, stride, rows, cols int) []float32 {
	dys := randn(rng, segs*stride*cols, 1)
	for i := range dys {
		if (i/cols)%stride >= rows {
			dys[i] = float32(math.NaN())
		}
	}
	return dys
}

// segmentScale is Σ|terms| of output element (row, c) of a segment sum (the reference's
// rounding scale, see TestAddRowAndSumRowsInto), or −1 if no segment reaches the row.
func segmentScale(dys []float32, cols int, seg Segments, segs, row, c int, keep func(b int) bool) float64 {
	scale := -1.0
	for s := 0; s < segs; s++ {
		if seg.First+s*seg.Step != row && keep == nil {
			continue
		}
		if scale < 0 {
			scale = 0
		}
		for b := 0; b < seg.Rows; b++ {
			if keep == nil || keep(b) {
				scale += math.Abs(float64(dys[(s*seg.Stride+b)*cols+c]))
			}
		}
	}
	return scale
}

// checkSegmentTable compares a table after a segment sum with the reference: each row a
// segment reaches within 1e-6·Σ|terms| (see TestAddRowAndSumRowsInto), every other row
// bit for bit unchanged from before.
func checkSegmentTable(t *testing.T, what string, got, before []float32, want []float64, dys []float32, cols, segs int, seg Segments) {
	t.Helper()
	for i := range got {
		scale := segmentScale(dys, cols, seg, segs, i/cols, i%cols, nil)
		if scale < 0 {
			if got[i] != before[i] {
				t.Fatalf("%s: element %d of a row no segment reaches changed", what, i)
			}
			continue
		}
		scale += math.Abs(float64(before[i]))
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-6*scale) {
			t.Fatalf("%s: element %d: got %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestSumSegmentsInto sums stacks of segments with NaN padding into every other or every
// row of a table: each reached row must match the reference, the others stay untouched.
func TestSumSegmentsInto(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, s := range []struct {
		c, t, segs int
		seg        Segments
	}{
		{1, 1, 1, Segments{Stride: 1, Rows: 1, First: 0, Step: 1}},
		{13, 9, 4, Segments{Stride: 8, Rows: 7, First: 1, Step: 2}},
		{64, 100, 50, Segments{Stride: 320, Rows: 300, First: 0, Step: 2}},
		{65, 7, 3, Segments{Stride: 5, Rows: 5, First: 4, Step: 1}},
	} {
		tab := randn(rng, s.t*s.c, 1)
		dys := padSegments(rng, s.segs, s.seg.Stride, s.seg.Rows, s.c)
		table := mustTensor(t, l, "table", tab, s.t, s.c)
		dy := mustTensor(t, l, "dy", dys, s.segs*s.seg.Stride, s.c)
		sum, err := l.SumSegmentsInto(table, s.seg, dy)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(sum); err != nil {
			t.Fatal(err)
		}
		checkSegmentTable(t, fmt.Sprintf("sum segments %+v", s), readT(t, table), tab,
			RefSumSegmentsInto(to64(tab), to64(dys), s.c, s.seg), dys, s.c, s.segs, s.seg)
		sum.Release()
	}
	table := poisoned(t, l, "table", 4, 3)
	dy := poisoned(t, l, "dy", 12, 3)
	for _, bad := range []Segments{
		{Stride: 5, Rows: 5, First: 0, Step: 1}, // 12 rows are not segments of 5
		{Stride: 4, Rows: 5, First: 0, Step: 1}, // more rows than the stride
		{Stride: 4, Rows: 4, First: 0, Step: 0}, // segments onto one row
		{Stride: 4, Rows: 4, First: 1, Step: 2}, // rows 1, 3, 5 of 4
	} {
		if _, err := l.SumSegmentsInto(table, bad, dy); err == nil {
			t.Fatalf("segments %+v of a [12, 3] stack into a [4, 3] table accepted", bad)
		}
	}
	if _, err := l.SumSegmentsInto(dy, Segments{Stride: 4, Rows: 4, First: 0, Step: 1}, dy); err == nil {
		t.Fatal("dy summed into itself accepted")
	}
}

func TestRowOpsRejectBadShapes(t *testing.T) {
	l := testLib(t)
	x := poisoned(t, l, "x", 4, 3)
	table := poisoned(t, l, "table", 2, 5)
	if _, err := l.AddRow(x, x, table, 0); err == nil {
		t.Fatal("column mismatch accepted")
	}
	table3 := poisoned(t, l, "table3", 2, 3)
	if _, err := l.AddRow(x, x, table3, 2); err == nil {
		t.Fatal("row out of range accepted")
	}
	if _, err := l.SumRowsInto(table, 0, x); err == nil {
		t.Fatal("column mismatch accepted")
	}
}
