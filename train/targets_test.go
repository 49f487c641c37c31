package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// quad integrates f over [lo, hi] with the composite Simpson rule on n (even) panels.
func quad(f func(float64) float64, lo, hi float64, n int) float64 {
	h := (hi - lo) / float64(n)
	s := f(lo) + f(hi)
	for i := 1; i < n; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		s += w * f(lo+float64(i)*h)
	}
	return s * h / 3
}

func TestManywellPartitionFunction(t *testing.T) {
	za := quad(manywellA, -6, 6, 200000)
	if math.Abs(za-ManywellZa)/ManywellZa > 1e-8 {
		t.Fatalf("Z_a by quadrature %.6f, constant %.6f", za, ManywellZa)
	}
	logZ, _ := Manywell{}.LogZ()
	if math.Abs(logZ-164.6957) > 1e-4 {
		t.Fatalf("log Z %.6f, published 164.6957", logZ)
	}
	// The +a/2 tilt puts 0.844 of the mass in the right well.
	right := quad(manywellA, 0, 6, 100000) / za
	if math.Abs(right-0.844) > 1e-3 {
		t.Fatalf("right-well mass %.4f, want 0.844", right)
	}
}

func TestGMM25Normalised(t *testing.T) {
	g := GMM25{}
	// 2-D Simpson over [-14, 14]²: the mass outside is below 1e-30.
	inner := func(y float64) float64 {
		return quad(func(x float64) float64 { return math.Exp(g.LogR([]float64{x, y})) }, -14, 14, 1400)
	}
	z := quad(inner, -14, 14, 1400)
	if math.Abs(z-1) > 1e-6 {
		t.Fatalf("∫R = %.8f, want 1", z)
	}
}

func TestFunnelNormalisedAlongSlices(t *testing.T) {
	// For fixed x₀ the conditional factor integrates to 1 per coordinate; check the
	// x₀ marginal integrates to 1 and one conditional coordinate too.
	f := Funnel{}
	x := make([]float64, 10)
	z0 := quad(func(a float64) float64 {
		x[0] = a
		for i := 1; i < 10; i++ {
			x[i] = 0
		}
		// Remove the conditional densities at 0 to leave the x₀ marginal.
		cond := 9 * (-0.5*log2Pi - 0.5*a)
		return math.Exp(f.LogR(x) - cond)
	}, -40, 40, 20000)
	if math.Abs(z0-1) > 1e-8 {
		t.Fatalf("x₀ marginal integrates to %.10f", z0)
	}
}

func TestGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tg := range []Target{GMM25{}, Funnel{}, Manywell{}} {
		for trial := 0; trial < 20; trial++ {
			x := make([]float64, tg.Dim())
			for i := range x {
				x[i] = rng.NormFloat64() * 2
			}
			if tg.Name() == "funnel" {
				x[0] = rng.NormFloat64() // keep e^{-x₀} moderate
			}
			g := make([]float64, len(x))
			tg.GradLogR(x, g)
			for i := range x {
				h := 1e-5 * math.Max(1, math.Abs(x[i]))
				xp := append([]float64(nil), x...)
				xm := append([]float64(nil), x...)
				xp[i] += h
				xm[i] -= h
				fd := (tg.LogR(xp) - tg.LogR(xm)) / (2 * h)
				if math.Abs(fd-g[i]) > 1e-5*math.Max(1, math.Abs(fd)) {
					t.Fatalf("%s: ∂/∂x%d at %v: analytic %v, finite difference %v", tg.Name(), i, x, g[i], fd)
				}
			}
		}
	}
}

// TestGroundTruthSamplers checks sample moments against exact values, with tolerances of
// 5 standard errors of each estimator at n samples (fixed seed: cannot flake).
func TestGroundTruthSamplers(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const n = 40000
	se := func(variance float64) float64 { return 5 * math.Sqrt(variance/n) }

	// GMM25: mean 0, per-coordinate variance = var of the grid {-10..10} (50) + 0.3.
	xs := GMM25{}.Sample(rng, n)
	m, v := moments(xs, 0)
	if math.Abs(m) > se(50.3) || math.Abs(v-50.3) > 5*math.Sqrt(2*50.3*50.3/n)*1.5 {
		t.Fatalf("gmm25 x moments %.4f %.4f, want 0 and 50.3", m, v)
	}
	// Funnel: x₀ ~ N(0, 9); x₁ has variance E[e^{x₀}] = e^{4.5}. Check x₀ only (x₁'s
	// variance estimator has an enormous variance of its own).
	fs := Funnel{}.Sample(rng, n)
	m, v = moments(fs, 0)
	if math.Abs(m) > se(9) || math.Abs(v-9) > 5*math.Sqrt(2*81.0/n) {
		t.Fatalf("funnel x₀ moments %.4f %.4f, want 0 and 9", m, v)
	}
	// Manywell: each a has the quadrature mean; b is N(0,1).
	ws := Manywell{}.Sample(rng, n/8)
	za := quad(manywellA, -6, 6, 100000)
	meanA := quad(func(a float64) float64 { return a * manywellA(a) }, -6, 6, 100000) / za
	varA := quad(func(a float64) float64 { return (a - meanA) * (a - meanA) * manywellA(a) }, -6, 6, 100000) / za
	var sum float64
	cnt := 0
	for _, x := range ws {
		for k := 0; k < 32; k += 2 {
			sum += x[k]
			cnt++
		}
	}
	if got := sum / float64(cnt); math.Abs(got-meanA) > 5*math.Sqrt(varA/float64(cnt)) {
		t.Fatalf("manywell a mean %.4f, quadrature %.4f", got, meanA)
	}
}

func moments(xs [][]float64, k int) (mean, variance float64) {
	for _, x := range xs {
		mean += x[k]
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		variance += (x[k] - mean) * (x[k] - mean)
	}
	return mean, variance / float64(len(xs)-1)
}

func TestNewTargetRejectsUnknown(t *testing.T) {
	if _, err := NewTarget("lgcp"); err == nil {
		t.Fatal("unknown target accepted")
	}
	for _, n := range []string{"gmm25", "funnel", "manywell"} {
		if tg, err := NewTarget(n); err != nil || tg.Name() != n {
			t.Fatalf("NewTarget(%q) = %v, %v", n, tg, err)
		}
	}
}
