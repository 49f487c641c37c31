package kernels

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Gather and Scatter against their references on awkward shapes, with repeated indices
// for Gather and a random permutation prefix (distinct indices) for Scatter.
func TestGatherScatterMatchReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	cases := []struct{ rows, n, d int }{
		{1, 1, 1},
		{13, 7, 13},
		{1000, 129, 3},
		{4099, 4097, 65},
		{70001, 1024, 1}, // many rows, d = 1
	}
	for _, c := range cases {
		what := fmt.Sprintf("N=%d n=%d d=%d", c.rows, c.n, c.d)
		table := randn(rng, c.rows*c.d, 1)
		src := mustTensor(t, l, "table", table, c.rows, c.d)

		idx := make([]uint32, c.n)
		for i := range idx {
			idx[i] = uint32(rng.IntN(c.rows))
		}
		ix, err := IndexFromSlice(l.Device(), "idx", idx, c.rows)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ix.Release)
		dst := poisoned(t, l, "batch", c.n, c.d)
		op, err := l.Gather(dst, src, ix)
		rngRunOp(t, l, op, err)
		assertClose(t, "gather "+what, readT(t, dst), RefGather(to64(table), c.d, idx), 0)

		// Scatter: distinct rows (a prefix of a permutation), into a table with values.
		m := min(c.n, c.rows)
		perm := rng.Perm(c.rows)[:m]
		sidx := make([]uint32, m)
		for i, v := range perm {
			sidx[i] = uint32(v)
		}
		six, err := NewIndexTensor(l.Device(), "sidx", m, c.rows)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(six.Release)
		six.Unique = true
		if err := six.Write(sidx); err != nil {
			t.Fatal(err)
		}
		rowsIn := randn(rng, m*c.d, 1)
		in := mustTensor(t, l, "rows", rowsIn, m, c.d)
		before := randn(rng, c.rows*c.d, 1)
		tab := mustTensor(t, l, "table2", before, c.rows, c.d)
		op, err = l.Scatter(tab, in, six)
		rngRunOp(t, l, op, err)
		want := to64(before)
		RefScatter(want, c.d, to64(rowsIn), sidx)
		assertClose(t, "scatter "+what, readT(t, tab), want, 0)
	}
}

// Indices that reach the device without the host check (written raw, as a GPU kernel
// would) never cause out-of-bounds access: Gather writes NaN rows, Scatter skips them.
func TestGatherScatterBadDeviceIndices(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	const rows, d = 5, 3
	table := randn(rng, rows*d, 1)
	src := mustTensor(t, l, "table", table, rows, d)
	ix, err := NewIndexTensor(l.Device(), "idx", 3, rows)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Release()
	raw := []uint32{4, 5, math.MaxUint32}
	if err := l.Device().Queue().WriteUint32(ix.Buf, 0, raw); err != nil {
		t.Fatal(err)
	}
	dst := poisoned(t, l, "dst", 3, d)
	if err := dst.Fill(1); err != nil {
		t.Fatal(err)
	}
	op, err := l.Gather(dst, src, ix)
	rngRunOp(t, l, op, err)
	got := readT(t, dst)
	for j := 0; j < d; j++ {
		if got[j] != table[4*d+j] {
			t.Errorf("gather row 0 col %d = %v, want %v", j, got[j], table[4*d+j])
		}
		for _, r := range []int{1, 2} {
			if !math.IsNaN(float64(got[r*d+j])) {
				t.Errorf("gather row %d (bad index %d) col %d = %v, want NaN", r, raw[r], j, got[r*d+j])
			}
		}
	}
	rowsIn := randn(rng, 3*d, 1)
	in := mustTensor(t, l, "rows", rowsIn, 3, d)
	before := randn(rng, rows*d, 1)
	tab := mustTensor(t, l, "tab", before, rows, d)
	op, err = l.Scatter(tab, in, ix)
	rngRunOp(t, l, op, err)
	want := to64(before)
	RefScatter(want, d, to64(rowsIn), raw)
	assertClose(t, "scatter with bad indices", readT(t, tab), want, 0)
}

func TestGatherErrors(t *testing.T) {
	l := testLib(t)
	src := mustTensor(t, l, "src", make([]float32, 12), 4, 3)
	dst := mustTensor(t, l, "dst", make([]float32, 6), 2, 3)
	dst4 := mustTensor(t, l, "dst4", make([]float32, 8), 2, 4)
	ix, err := IndexFromSlice(l.Device(), "idx", []uint32{0, 3}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Release()
	ix3, err := IndexFromSlice(l.Device(), "idx3", []uint32{0, 1, 2}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ix3.Release()
	wide, err := IndexFromSlice(l.Device(), "wide", []uint32{0, 9}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer wide.Release()
	small, err := IndexFromSlice(l.Device(), "small", []uint32{1, 0}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Release()
	cases := []struct {
		what string
		err  func() error
		want string
	}{
		{"row length", func() error { _, err := l.Gather(dst4, src, ix); return err }, "gather: dst is 2×4 but src is 4×3 (row lengths differ)"},
		{"index count", func() error { _, err := l.Gather(dst, src, ix3); return err }, "dst has 2 rows (shape 2×3) but idx has 3 indices"},
		{"bound above rows", func() error { _, err := l.Gather(dst, src, wide); return err }, "allows indices up to 9 but src has 4 rows"},
		{"scatter bound", func() error { _, err := l.Scatter(src, dst, wide); return err }, "scatter: idx \"wide\" allows indices up to 9 but dst has 4 rows"},
		{"same buffer", func() error { _, err := l.Gather(dst, dst, small); return err }, "dst and src are the same buffer \"dst\""},
		{"out of range write", func() error { return ix.Write([]uint32{1, 4}) }, "index 1 is 4, out of range [0, 4)"},
		{"length write", func() error { return ix.Write([]uint32{1}) }, "writing 1 indices into index tensor \"idx\" of length 2"},
		{"duplicate write", func() error { ix.Unique = true; defer func() { ix.Unique = false }(); return ix.Write([]uint32{2, 2}) }, "indices 0 and 1 are both 2"},
	}
	for _, c := range cases {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.what, err, c.want)
		}
	}
}
