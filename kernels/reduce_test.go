package kernels

import (
	"math"
	"strings"
	"testing"
)

var reduceAll = []Reduction{ReduceSum, ReduceMean, ReduceMax, ReduceLogSumExp, ReduceSumSquares}

// reduceShapes are awkward row shapes: single elements, rows just below and above the
// one-invocation-per-row limit (64), long rows with few of them (3 workgroups) and many
// short rows (more than 65535 workgroups' worth would not fit reduce_wg unfolded).
var reduceShapes = [][2]int{{1, 1}, {1, 7}, {13, 7}, {5, 64}, {9, 65}, {129, 257}, {3, 100003}, {70000, 3}, {70000, 67}}

// reduceScale is the magnitude each row's result is compared against: sums and means
// cancel, so their rounding error scales with Σ|x| (resp. Σ|x|/cols), not with the
// result; max, logsumexp and sums of squares (no cancellation) use the result itself.
// A floor of 1 keeps relative error meaningful near 0, as in assertClose.
func reduceScale(r Reduction, x []float64, rows, cols int) []float64 {
	scale := make([]float64, rows)
	for i := range scale {
		var abs float64
		for _, v := range x[i*cols : (i+1)*cols] {
			abs += math.Abs(v)
		}
		switch r {
		case ReduceSum:
			scale[i] = abs
		case ReduceMean:
			scale[i] = abs / float64(cols)
		}
	}
	return scale
}

// assertReduceClose checks |got − want| ≤ tol·max(1, |want|, scale) for every row.
func assertReduceClose(t *testing.T, what string, got []float32, want, scale []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i, g := range got {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
			t.Fatalf("%s: row %d is %v, want %v", what, i, g, want[i])
		}
		ref := math.Max(1, math.Max(math.Abs(want[i]), scale[i]))
		if e := math.Abs(float64(g)-want[i]) / ref; e > worst {
			worst, at = e, i
		}
	}
	if worst > tol {
		t.Fatalf("%s: row %d: got %v, want %v (error %.3g relative to %.3g > %.3g)", what, at, got[at], want[at], math.Max(1, math.Max(math.Abs(want[at]), scale[at])), worst, tol)
	}
}

func TestRowReduce(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range reduceShapes {
			rows, cols := sh[0], sh[1]
			// A per-row offset makes sums and maxima differ between rows, so a kernel that
			// mixes rows up cannot pass.
			xs := randn(rng, rows*cols, 2)
			for i := range xs {
				xs[i] += float32(i / cols % 5)
			}
			x := mustTensor(t, l, "x", xs, rows, cols)
			x64 := to64(xs)
			for _, r := range reduceAll {
				out := poisoned(t, l, "out", rows)
				op, err := l.RowReduce(out, x, r)
				ewRun(t, l, op, err)
				what := r.String() + " " + ewShape([]int{rows, cols})
				assertReduceClose(t, what, readT(t, out), RefRowReduce(r, x64, rows, cols), reduceScale(r, x64, rows, cols), 1e-4)
			}
		}
	})
}

// TestRowReduceLogSumExpLarge checks the max shift: exp(x) overflows f32 for x > 88.7.
func TestRowReduceLogSumExpLarge(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range [][2]int{{17, 5}, {4, 3001}} {
			rows, cols := sh[0], sh[1]
			xs := randn(rng, rows*cols, 30)
			for i := range xs {
				xs[i] += 200 * float32(i/cols%2*2-1) // rows alternate around +200 and -200
			}
			x := mustTensor(t, l, "x", xs, rows, cols)
			out := poisoned(t, l, "out", rows)
			op, err := l.RowReduce(out, x, ReduceLogSumExp)
			ewRun(t, l, op, err)
			x64 := to64(xs)
			what := "logsumexp large " + ewShape([]int{rows, cols})
			assertReduceClose(t, what, readT(t, out), RefRowReduce(ReduceLogSumExp, x64, rows, cols), make([]float64, rows), 1e-4)
		}
	})
}

// TestRowReduceDeterministic runs each reduction twice on fresh poisoned outputs and
// requires identical bits.
func TestRowReduceDeterministic(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range [][2]int{{3, 100003}, {70000, 3}, {129, 257}} {
			rows, cols := sh[0], sh[1]
			x := mustTensor(t, l, "x", randn(rng, rows*cols, 1), rows, cols)
			for _, r := range reduceAll {
				var first []float32
				for run := 0; run < 2; run++ {
					out := poisoned(t, l, "out", rows)
					op, err := l.RowReduce(out, x, r)
					ewRun(t, l, op, err)
					got := readT(t, out)
					if run == 0 {
						first = got
						continue
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
							t.Fatalf("%s %d×%d: row %d differs between runs: %v then %v", r, rows, cols, i, first[i], got[i])
						}
					}
				}
			}
		}
	})
}

func TestSumSquares(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		// 4096 is the largest single-dispatch size; 4097 the smallest two-dispatch one;
		// 9,000,001 needs the capped chunk count (1024 chunks of 8790, the last shorter).
		for _, n := range []int{1, 7, 91, 4096, 4097, 129 * 257, 3 * 100003, 9_000_001} {
			xs := randn(rng, n, 1.5)
			x := mustTensor(t, l, "x", xs, n)
			var first float32
			for run := 0; run < 2; run++ {
				out := poisoned(t, l, "out", 1)
				s, err := l.SumSquares(out, x)
				if err != nil {
					t.Fatal(err)
				}
				rec, err := l.NewRecorder("sum of squares")
				if err != nil {
					t.Fatal(err)
				}
				rec.Record(s.Ops...)
				if err := rec.Submit(); err != nil {
					t.Fatal(err)
				}
				got := readT(t, out)
				s.Release()
				if run == 0 {
					first = got[0]
					// No cancellation in a sum of squares: plain relative error.
					assertClose(t, "sum of squares n="+ewShape([]int{n}), got, []float64{RefSumSquares(to64(xs))}, 1e-4)
					continue
				}
				if math.Float32bits(got[0]) != math.Float32bits(first) {
					t.Fatalf("sum of squares n=%d differs between runs: %v then %v", n, first, got[0])
				}
			}
		}
	})
}

func TestSumSquaresPlan(t *testing.T) {
	for _, n := range []int{1, 4095, 4096, 4097, 1 << 20, 9_000_001, 33_554_431} {
		chunks, chunk := sumSquaresPlan(n)
		if chunks < 1 || chunks > sumSquaresMaxChunks || (chunks-1)*chunk >= n || chunks*chunk < n {
			t.Errorf("sumSquaresPlan(%d) = %d chunks of %d: does not cover n with non-empty chunks", n, chunks, chunk)
		}
	}
}

func TestReduceErrors(t *testing.T) {
	l := testLib(t)
	mk := func(shape ...int) *Tensor {
		x, err := NewTensor(l.Device(), "t"+ewShape(shape), shape...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Release)
		return x
	}
	x, out12, out13, one := mk(13, 7), mk(12), mk(13), mk(1)
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"rows", func() error { _, err := l.RowReduce(out12, x, ReduceSum); return err }, "row reduce sum: x is 13×7 (13 rows of 7) but out is 12 (12 elements; want 13)"},
		{"unknown", func() error { _, err := l.RowReduce(out13, x, Reduction(7)); return err }, "row reduce: unknown reduction 7"},
		{"alias", func() error { _, err := l.RowReduce(one, one, ReduceMax); return err }, "row reduce max: out is the same tensor as x"},
		{"sumsq out", func() error { _, err := l.SumSquares(out13, x); return err }, "sum of squares: out is 13 (13 elements; want 1)"},
		{"sumsq nil", func() error { _, err := l.SumSquares(one, nil); return err }, "sum of squares: nil tensor"},
	}
	for _, tc := range cases {
		err := tc.err()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not contain %q", tc.name, err, tc.want)
		}
	}
}
