package kernels

import "testing"

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
		// Column sums of B normal values: error relative to sqrt(B)·max|dy| is ~B·eps.
		assertClose(t, "sum rows into", readT(t, table), RefSumRowsInto(to64(tab), to64(dys), s.c, s.row), 1e-4)
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
