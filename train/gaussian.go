package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Gaussian is the analytic test target R(x) = Z·N(x; m, S): its log Z, mean and
// covariance are known exactly, so a trained sampler can be checked against them.
//
//	log R(x) = −½ (x − m)ᵀ S⁻¹ (x − m) + c,   c = log Z − ½ log det(2πS)
type Gaussian struct {
	Mean []float64
	Cov  *mat.SymDense
	Z    float64 // log Z

	prec *mat.SymDense
	chol mat.Cholesky
	c    float64
}

// NewGaussian validates the covariance (symmetric positive definite) and precomputes
// its inverse and Cholesky factor.
func NewGaussian(mean []float64, cov [][]float64, logZ float64) (*Gaussian, error) {
	d := len(mean)
	if len(cov) != d {
		return nil, fmt.Errorf("train: gaussian: covariance has %d rows for mean of length %d", len(cov), d)
	}
	s := mat.NewSymDense(d, nil)
	for i := range cov {
		if len(cov[i]) != d {
			return nil, fmt.Errorf("train: gaussian: covariance row %d has %d entries, want %d", i, len(cov[i]), d)
		}
		for j := range cov[i] {
			if math.Abs(cov[i][j]-cov[j][i]) > 1e-12 {
				return nil, fmt.Errorf("train: gaussian: covariance is not symmetric at (%d,%d)", i, j)
			}
			s.SetSym(i, j, cov[i][j])
		}
	}
	g := &Gaussian{Mean: append([]float64(nil), mean...), Cov: s, Z: logZ}
	if ok := g.chol.Factorize(s); !ok {
		return nil, fmt.Errorf("train: gaussian: covariance is not positive definite")
	}
	g.prec = mat.NewSymDense(d, nil)
	if err := g.chol.InverseTo(g.prec); err != nil {
		return nil, fmt.Errorf("train: gaussian: inverting the covariance: %w", err)
	}
	g.c = logZ - 0.5*(float64(d)*log2Pi+g.chol.LogDet())
	return g, nil
}

func (g *Gaussian) Name() string          { return "gaussian" }
func (g *Gaussian) Dim() int              { return len(g.Mean) }
func (g *Gaussian) LogZ() (float64, bool) { return g.Z, true }
func (g *Gaussian) Sigma2() float64       { return 1 }

// Offset is the constant c of log R (passed to the GPU kernel).
func (g *Gaussian) Offset() float64 { return g.c }

// Precision returns S⁻¹ row-major.
func (g *Gaussian) Precision() []float64 {
	d := g.Dim()
	out := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			out[i*d+j] = g.prec.At(i, j)
		}
	}
	return out
}

func (g *Gaussian) LogR(x []float64) float64 {
	d := g.Dim()
	q := 0.0
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			q += (x[i] - g.Mean[i]) * g.prec.At(i, j) * (x[j] - g.Mean[j])
		}
	}
	return -0.5*q + g.c
}

func (g *Gaussian) GradLogR(x, grad []float64) {
	d := g.Dim()
	for i := 0; i < d; i++ {
		grad[i] = 0
		for j := 0; j < d; j++ {
			grad[i] -= g.prec.At(i, j) * (x[j] - g.Mean[j])
		}
	}
}

// Sample draws m + L ε with S = L Lᵀ.
func (g *Gaussian) Sample(rng *rand.Rand, n int) [][]float64 {
	d := g.Dim()
	var l mat.TriDense
	g.chol.LTo(&l)
	out := make([][]float64, n)
	eps := make([]float64, d)
	for k := range out {
		for i := range eps {
			eps[i] = rng.NormFloat64()
		}
		x := make([]float64, d)
		for i := 0; i < d; i++ {
			x[i] = g.Mean[i]
			for j := 0; j <= i; j++ {
				x[i] += l.At(i, j) * eps[j]
			}
		}
		out[k] = x
	}
	return out
}
