package kernels

import (
	"math"
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
		got, want := readT(t, table), RefSumRowsInto(to64(tab), to64(dys), s.c, s.row)
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
