package kernels

import (
	"fmt"
	"math"
	"testing"
)

// TestTBDriftGradLearnedVariance checks the learned-variance entry of the drift gradient
// against RefTBDriftGradLV on awkward stacks (padding rows included, which must get 0),
// with a few outputs pushed past the clip bound, and the reference itself against central
// differences of Σ_b coef_b·log p_F(τ_b) in float64.
func TestTBDriftGradLearnedVariance(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, c := range []struct{ B, stride, S, d int }{{1, 1, 1, 1}, {7, 9, 3, 3}, {301, 304, 2, 2}, {5, 5, 4, 5}} {
		t.Run(fmt.Sprintf("B%d_stride%d_S%d_d%d", c.B, c.stride, c.S, c.d), func(t *testing.T) {
			rows := c.S * c.stride
			dt, sigma2 := 1/float64(20+rng.IntN(80)), 0.5+2*rng.Float64()
			z0, z1 := to64(randn(rng, rows*c.d, 1)), to64(randn(rng, rows*c.d, 1))
			uh := to64(randn(rng, rows*2*c.d, 1))
			uh[0] = 2e4 // a clipped drift: no gradient through it
			if len(uh) > 3 {
				uh[2*c.d-1] = -3e4 // a clipped log-variance head
			}
			coef := to64(randn(rng, c.B, 1))
			du := poisoned(t, l, "du", rows, 2*c.d)
			op, err := l.TBDriftGradStack(du, mustTensor(t, l, "z0", f32(z0), rows, c.d), mustTensor(t, l, "z1", f32(z1), rows, c.d),
				mustTensor(t, l, "uh", f32(uh), rows, 2*c.d), mustTensor(t, l, "coef", f32(coef), c.B), c.stride, dt, sigma2)
			if err != nil {
				t.Fatal(err)
			}
			defer op.Release()
			if err := l.Run(op); err != nil {
				t.Fatal(err)
			}
			// The reference works on stride = B: gather the real rows, expect 0 elsewhere.
			want := make([]float64, rows*2*c.d)
			for s := 0; s < c.S; s++ {
				lo, hi := s*c.stride, s*c.stride+c.B
				part := RefTBDriftGradLV(z0[lo*c.d:hi*c.d], z1[lo*c.d:hi*c.d], uh[lo*2*c.d:hi*2*c.d], coef, c.d, dt, sigma2)
				copy(want[lo*2*c.d:], part)
			}
			// The log-variance gradient is a difference, c·(e²/(2v) − ½)·4(1 − tanh²h): where
			// e²/v ≈ 1 it cancels, so its error is measured against the size of its terms
			// (what f32 rounding of e²/v scales with), not against the small result.
			got := readT(t, du)
			for s := 0; s < c.S; s++ {
				for b := 0; b < c.B; b++ {
					row := s*c.stride + b
					for j := 0; j < 2*c.d; j++ {
						i := row*2*c.d + j
						scale := math.Abs(want[i])
						if j >= c.d {
							jd := j - c.d
							th := math.Tanh(uh[row*2*c.d+c.d+jd])
							v := sigma2 * dt * math.Exp(4*th)
							e := z1[row*c.d+jd] - z0[row*c.d+jd] - uh[row*2*c.d+jd]*dt
							scale = math.Abs(coef[b]) * (e*e/(2*v) + 0.5) * 4 * (1 - th*th)
						}
						if d := math.Abs(float64(got[i]) - want[i]); d > 1e-5*math.Max(1, scale) {
							t.Fatalf("du element %d: got %v, want %v (error %.3g, terms of size %.3g)", i, got[i], want[i], d, scale)
						}
					}
				}
				// Padding rows get 0.
				for b := c.B; b < c.stride; b++ {
					for j := 0; j < 2*c.d; j++ {
						if g := got[(s*c.stride+b)*2*c.d+j]; g != 0 {
							t.Fatalf("padding row %d of step %d: %v, want 0", b, s, g)
						}
					}
				}
			}
		})
	}
	// The reference against finite differences of coef·log p_F.
	const d = 3
	dt, sigma2 := 0.05, 1.3
	z0, z1 := to64(randn(rng, d, 1)), to64(randn(rng, d, 1))
	uh := to64(randn(rng, 2*d, 1))
	coef := []float64{0.7}
	logpf := func(x []float64) float64 {
		s := 0.0
		for j := 0; j < d; j++ {
			v := sigma2 * dt * math.Exp(4*math.Tanh(x[d+j]))
			e := z1[j] - z0[j] - x[j]*dt
			s += -e*e/(2*v) - 0.5*math.Log(2*math.Pi*v)
		}
		return coef[0] * s
	}
	got := RefTBDriftGradLV(z0, z1, uh, coef, d, dt, sigma2)
	for i := range uh {
		const h = 1e-6
		up, dn := append([]float64(nil), uh...), append([]float64(nil), uh...)
		up[i] += h
		dn[i] -= h
		fd := (logpf(up) - logpf(dn)) / (2 * h)
		if math.Abs(fd-got[i]) > 1e-5*math.Max(1, math.Abs(fd)) {
			t.Fatalf("∂/∂out[%d]: reference %v, finite differences %v", i, got[i], fd)
		}
	}
}
