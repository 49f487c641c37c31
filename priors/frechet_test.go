package priors

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestFrechetDistanceClosedForms checks FD against closed forms: 0 between a set and
// itself; Σ(μ₁−μ₂)² + Σ(√a − √b)² for diagonal covariances; and invariance under a
// common rotation for full covariances.
func TestFrechetDistanceClosedForms(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const n, dim = 4000, 6
	feats := make([]float32, n*dim)
	for i := range feats {
		feats[i] = float32(rng.NormFloat64()*(1+float64(i%dim)) + 0.5)
	}
	m, err := FeatureMoments(feats, n, dim)
	if err != nil {
		t.Fatal(err)
	}
	self, err := FrechetDistance(m, m)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(self) > 1e-8 {
		t.Fatalf("FD of a set with itself = %g, want 0", self)
	}
	// Diagonal covariances: FD = Σ(μ₁−μ₂)² + Σ(√a−√b)².
	a := Moments{Mean: []float64{0, 1, 2}, Cov: mat.NewSymDense(3, []float64{4, 0, 0, 0, 1, 0, 0, 0, 9})}
	b := Moments{Mean: []float64{1, 1, 0}, Cov: mat.NewSymDense(3, []float64{1, 0, 0, 0, 1, 0, 0, 0, 1})}
	want := 1.0 + 4 + (2-1)*(2-1) + 0 + (3-1)*(3-1)
	got, err := FrechetDistance(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-9 {
		t.Fatalf("diagonal FD = %v, want %v", got, want)
	}
	// Rotating both covariances by the same orthogonal Q leaves FD unchanged.
	theta := rng.Float64() * math.Pi
	q := mat.NewDense(3, 3, []float64{math.Cos(theta), -math.Sin(theta), 0, math.Sin(theta), math.Cos(theta), 0, 0, 0, 1})
	rot := func(c *mat.SymDense) *mat.SymDense {
		var r mat.Dense
		r.Mul(q, c)
		r.Mul(&r, q.T())
		s := mat.NewSymDense(3, nil)
		for i := 0; i < 3; i++ {
			for j := i; j < 3; j++ {
				s.SetSym(i, j, (r.At(i, j)+r.At(j, i))/2)
			}
		}
		return s
	}
	rotMean := func(v []float64) []float64 {
		var out mat.VecDense
		out.MulVec(q, mat.NewVecDense(3, append([]float64(nil), v...)))
		return []float64{out.AtVec(0), out.AtVec(1), out.AtVec(2)}
	}
	gotRot, err := FrechetDistance(Moments{Mean: rotMean(a.Mean), Cov: rot(a.Cov)}, Moments{Mean: rotMean(b.Mean), Cov: rot(b.Cov)})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(gotRot-want) > 1e-8 {
		t.Fatalf("rotated FD = %v, want %v", gotRot, want)
	}
	if _, err := FeatureMoments(feats[:5], 1, 5); err == nil {
		t.Fatal("moments of one row: want an error")
	}
}
