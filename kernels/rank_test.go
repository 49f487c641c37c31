package kernels

import (
	"fmt"
	"math"
	"testing"
)

// runRank sorts and draws once and returns the sorted order and the drawn rows.
func runRank(t *testing.T, l *Library, score []float32, filled, n int, seed uint64, stream uint32) (order, rows []uint32) {
	t.Helper()
	sc := mustTensor(t, l, "score", score, len(score))
	out, err := NewIndexTensor(l.Device(), "drawn", n, len(score))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	poison := make([]uint32, n)
	for i := range poison {
		poison[i] = math.MaxUint32
	}
	if err := l.Device().Queue().WriteUint32(out.Buf, 0, poison); err != nil {
		t.Fatal(err)
	}
	s, err := l.NewRankSampler(out, sc, RankWeight, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if err := s.Set(filled, stream); err != nil {
		t.Fatal(err)
	}
	if err := l.Run(s.Ops()...); err != nil {
		t.Fatal(err)
	}
	if order, err = s.Order(); err != nil {
		t.Fatal(err)
	}
	if rows, err = out.Read(); err != nil {
		t.Fatal(err)
	}
	return order, rows
}

// The sort against RefRankOrder on awkward sizes, with ties, NaN and −∞ scores and a
// partly filled table; the draws against RefRankDraws through the sorted order.
func TestRankSamplerMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, c := range []struct{ rows, filled, n int }{
		{1, 1, 3},
		{13, 13, 7},
		{1000, 617, 300},
		{70001, 40000, 1025},
	} {
		what := fmt.Sprintf("N=%d filled=%d n=%d", c.rows, c.filled, c.n)
		score := randn(rng, c.rows, 3)
		for i := range score {
			switch rng.IntN(20) {
			case 0:
				score[i] = float32(math.NaN())
			case 1:
				score[i] = float32(math.Inf(-1))
			case 2, 3:
				score[i] = float32(math.Round(float64(score[i]))) // ties
			}
		}
		seed, stream := rng.Uint64(), rng.Uint32()
		order, rows := runRank(t, l, score, c.filled, c.n, seed, stream)
		want := RefRankOrder(score, c.filled)
		for r, row := range want {
			if order[r] != row {
				t.Fatalf("%s: rank %d is row %d (score %v), want row %d (score %v)", what, r, order[r], score[order[r]], row, score[row])
			}
		}
		ranks := RefRankDraws(c.n, c.filled, RankWeight, seed, stream)
		off := 0
		for i, r := range ranks {
			if rows[i] == want[r] {
				continue
			}
			// float32 against float64: only a neighbouring rank, and rarely.
			if (r > 0 && rows[i] == want[r-1]) || (r+1 < c.filled && rows[i] == want[r+1]) {
				off++
				continue
			}
			t.Fatalf("%s: draw %d is row %d, want row %d (rank %d)", what, i, rows[i], want[r], r)
		}
		if off > c.n/100+1 {
			t.Fatalf("%s: %d of %d draws are a neighbouring rank", what, off, c.n)
		}
	}
}

// The drawn ranks follow P(r) ∝ log(1 + 1/(k·N + r)): a chi-square test of 200,000 draws
// over 64 rows (fixed seed), and the top-ranked row is drawn at the rate the weights say.
func TestRankSamplerDistribution(t *testing.T) {
	l := testLib(t)
	const filled, n = 64, 200000
	score := make([]float32, filled)
	for i := range score {
		score[i] = float32((i * 37) % filled) // a permutation: row 27·… has rank 0
	}
	order, rows := runRank(t, l, score, filled, n, 7, 3)
	rankOf := map[uint32]int{}
	for r, row := range order[:filled] {
		rankOf[row] = r
	}
	counts := make([]float64, filled)
	for _, row := range rows {
		r, ok := rankOf[row]
		if !ok {
			t.Fatalf("drew row %d, not among the %d filled", row, filled)
		}
		counts[r]++
	}
	p := RankProbabilities(filled, RankWeight)
	chi2 := 0.0
	for r := range counts {
		e := n * p[r]
		chi2 += (counts[r] - e) * (counts[r] - e) / e
	}
	// χ² with 63 degrees of freedom: mean 63, sd √126 ≈ 11.2; allow 6 sd.
	if df := float64(filled - 1); chi2 > df+6*math.Sqrt(2*df) {
		t.Fatalf("χ² = %.1f over %d ranks: the draws do not follow the rank weights (counts %v)", chi2, filled, counts[:8])
	}
	// With k·N = 0.64 the top rank carries most of the mass.
	if sd := math.Sqrt(n * p[0] * (1 - p[0])); math.Abs(counts[0]-n*p[0]) > 6*sd {
		t.Fatalf("rank 0 drawn %v times, want %.0f ± %.0f", counts[0], n*p[0], sd)
	}
	t.Logf("χ² = %.1f (63 df); rank 0: %.3f of draws (weight %.3f)", chi2, counts[0]/n, p[0])
}

func TestRankSamplerErrors(t *testing.T) {
	l := testLib(t)
	sc := mustTensor(t, l, "score", []float32{1, 2, 3}, 3)
	small, err := NewIndexTensor(l.Device(), "small", 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Release()
	if _, err := l.NewRankSampler(small, sc, RankWeight, 1); err == nil {
		t.Fatal("an index bound below the rows was accepted")
	}
	out, err := NewIndexTensor(l.Device(), "out", 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if _, err := l.NewRankSampler(out, sc, 0, 1); err == nil {
		t.Fatal("k = 0 was accepted")
	}
	s, err := l.NewRankSampler(out, sc, RankWeight, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for _, f := range []int{0, 4} {
		if err := s.Set(f, 0); err == nil {
			t.Fatalf("%d filled rows of 3 accepted", f)
		}
	}
}

// One sampler, as a filling replay buffer uses it: the filled count grows across powers of
// two (and shrinks once) and the scores change between sorts. Each sort covers only the
// next power of two ≥ filled and must rank those rows as the reference does.
func TestRankSamplerSortsTheFilledPrefix(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	const rows = 5000
	sc := mustTensor(t, l, "score", make([]float32, rows), rows)
	out, err := NewIndexTensor(l.Device(), "drawn", 64, rows)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	s, err := l.NewRankSampler(out, sc, RankWeight, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for _, filled := range []int{1, 3, 700, 5000, 129, 1024, 1025} {
		score := randn(rng, rows, 2)
		score[rng.IntN(rows)] = float32(math.NaN())
		if err := sc.Write(score); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(filled, uint32(filled)); err != nil {
			t.Fatal(err)
		}
		if err := l.Run(s.Ops()...); err != nil {
			t.Fatal(err)
		}
		order, err := s.Order()
		if err != nil {
			t.Fatal(err)
		}
		if p := nextPow2(filled); len(order) != p {
			t.Fatalf("filled %d: the order has %d ranks, want the %d sorted", filled, len(order), p)
		}
		for r, row := range RefRankOrder(score, filled) {
			if order[r] != row {
				t.Fatalf("filled %d: rank %d is row %d, want row %d", filled, r, order[r], row)
			}
		}
		drawn, err := out.Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range drawn {
			if int(row) >= filled {
				t.Fatalf("filled %d: drew row %d", filled, row)
			}
		}
	}
}
