package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLogMeanExp(t *testing.T) {
	v := []float64{1000, 1000 + math.Log(3)}
	if got, want := LogMeanExp(v), 1000+math.Log(2); math.Abs(got-want) > 1e-12 {
		t.Fatalf("LogMeanExp = %v, want %v", got, want)
	}
	if got := LogMeanExp([]float64{math.Inf(-1), math.Inf(-1)}); !math.IsInf(got, -1) {
		t.Fatalf("all -Inf: %v", got)
	}
}

func TestAssignmentMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 50; trial++ {
		n := 1 + rng.IntN(7)
		c := make([][]float64, n)
		for i := range c {
			c[i] = make([]float64, n)
			for j := range c[i] {
				c[i][j] = rng.Float64() * 10
			}
		}
		p := assignment(c)
		got := 0.0
		for i, j := range p {
			got += c[i][j]
		}
		best := math.Inf(1)
		permute(n, func(q []int) {
			s := 0.0
			for i, j := range q {
				s += c[i][j]
			}
			best = math.Min(best, s)
		})
		if math.Abs(got-best) > 1e-9 {
			t.Fatalf("n=%d: assignment cost %v, optimum %v", n, got, best)
		}
	}
}

func permute(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(p)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			rec(k + 1)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0)
}

func TestW2OfTranslatedSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	xs := GMM25{}.Sample(rng, 300)
	ys := make([][]float64, len(xs))
	for i, x := range xs {
		ys[len(xs)-1-i] = []float64{x[0] + 0.3, x[1] - 0.4} // shuffled order too
	}
	w, err := W2(xs, ys)
	if err != nil {
		t.Fatal(err)
	}
	// Translating a distribution by c moves it exactly |c| in W2.
	if math.Abs(w-0.5) > 1e-9 {
		t.Fatalf("W2 of a translate by |c| = 0.5: got %v", w)
	}
	if _, err := W2(xs, ys[:10]); err == nil {
		t.Fatal("unequal sizes accepted")
	}
}
