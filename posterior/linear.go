package posterior

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"osds/gpu"
	"osds/nn"
	"osds/priors"
)

// Linear is the linear-Gaussian prior x = f(z) = A z + b with A [D×d] and b [D]: with a
// Gaussian observation its posterior is Gaussian and known in closed form
// (LinearGaussianPosterior), which makes it the analytic test of the posterior machinery.
// Its generator is one nn.Linear layer (weight Aᵀ, bias b). It is not a model kind of
// package priors (no weight files).
type Linear struct {
	A     [][]float64
	B     []float64
	layer *nn.Linear
}

// LinearArch is Linear's Architecture: the latent and output sizes.
type LinearArch struct{ Latent, Out int }

// NewLinear uploads A (D rows of d) and b (D) to the device.
func NewLinear(dev *gpu.Device, a [][]float64, b []float64) (*Linear, error) {
	D := len(a)
	if D == 0 || len(a[0]) == 0 || len(b) != D {
		return nil, fmt.Errorf("posterior: linear prior needs A of D×d and b of D (got %d rows and b of %d)", D, len(b))
	}
	d := len(a[0])
	w := make([]float32, d*D) // W = Aᵀ, [d, D] row-major
	for j, row := range a {
		if len(row) != d {
			return nil, fmt.Errorf("posterior: linear prior: row %d of A has %d entries, want %d", j, len(row), d)
		}
		for i, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("posterior: linear prior: A[%d][%d] = %v", j, i, v)
			}
			w[i*D+j] = float32(v)
		}
	}
	bias := make([]float32, D)
	for j, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("posterior: linear prior: b[%d] = %v", j, v)
		}
		bias[j] = float32(v)
	}
	layer, err := nn.NewLinear(dev, "linear", d, D, rand.New(rand.NewPCG(0, 0)), true)
	if err != nil {
		return nil, err
	}
	if err := layer.W.Value.Write(w); err != nil {
		layer.Release()
		return nil, err
	}
	if err := layer.B.Value.Write(bias); err != nil {
		layer.Release()
		return nil, err
	}
	p := &Linear{A: make([][]float64, D), B: append([]float64(nil), b...), layer: layer}
	for j := range a {
		p.A[j] = append([]float64(nil), a[j]...)
	}
	return p, nil
}

// Kind is "linear".
func (p *Linear) Kind() string { return "linear" }

// Architecture is the LinearArch.
func (p *Linear) Architecture() any { return LinearArch{Latent: len(p.A[0]), Out: len(p.A)} }

// Params are the layer's weight (Aᵀ) and bias (b).
func (p *Linear) Params() []*nn.Param { return p.layer.Params() }

// Release frees the layer.
func (p *Linear) Release() { p.layer.Release() }

// LatentDim is d.
func (p *Linear) LatentDim() int { return len(p.A[0]) }

// Image is one row of D values: (1, D, 1).
func (p *Linear) Image() (h, w, c int) { return 1, len(p.A), 1 }

// Generator is the single linear layer.
func (p *Linear) Generator() *nn.Sequential {
	return &nn.Sequential{Layers: []*nn.Named{{Name: "linear", Layer: p.layer}}}
}

var _ priors.Prior = (*Linear)(nil)

// LinearGaussianPosterior returns the exact posterior of z under the prior N(0, I_d), the
// map x = A z + b and the observation o (its mask selecting rows M of A):
//
//	precision P = I + A_Mᵀ A_M / σ²,   mean μ = P⁻¹ A_Mᵀ (y_M − b_M) / σ²,   cov = P⁻¹
//	log Z = log ∫ N(z; 0, I) Π_{i∈M} N(y_i; (A z + b)_i, σ²) dz = log N(y_M; b_M, σ² I + A_M A_Mᵀ)
//
// Mask values are used as weights (1 observed, 0 not): the precision of coordinate i is
// m_i/σ², which for 0/1 masks is the formula above. log Z then includes the weighted
// normalisers (exactly log N for 0/1 masks).
func LinearGaussianPosterior(a [][]float64, b []float64, o GaussianObservation) (mean []float64, cov [][]float64, logZ float64, err error) {
	D := len(a)
	if D == 0 || len(b) != D {
		return nil, nil, 0, fmt.Errorf("posterior: linear posterior: A has %d rows, b %d", D, len(b))
	}
	if err := o.Check(D); err != nil {
		return nil, nil, 0, err
	}
	d := len(a[0])
	s2 := o.Sigma * o.Sigma
	prec := mat.NewSymDense(d, nil)
	rhs := make([]float64, d)
	for i := 0; i < d; i++ {
		prec.SetSym(i, i, 1)
	}
	for j := 0; j < D; j++ {
		m := float64(o.Mask[j])
		if m == 0 {
			continue
		}
		for i := 0; i < d; i++ {
			rhs[i] += m * a[j][i] * (float64(o.Y[j]) - b[j]) / s2
			for k := i; k < d; k++ {
				prec.SetSym(i, k, prec.At(i, k)+m*a[j][i]*a[j][k]/s2)
			}
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(prec) {
		return nil, nil, 0, fmt.Errorf("posterior: linear posterior: precision is not positive definite")
	}
	var c mat.SymDense
	if err := ch.InverseTo(&c); err != nil {
		return nil, nil, 0, err
	}
	mean = make([]float64, d)
	cov = make([][]float64, d)
	for i := 0; i < d; i++ {
		cov[i] = make([]float64, d)
		for k := 0; k < d; k++ {
			cov[i][k] = c.At(i, k)
			mean[i] += c.At(i, k) * rhs[k]
		}
	}
	// log Z by completing the square: with r_j = y_j − b_j,
	//   log Z = Σ_j m_j(−½ log 2πσ²) − ½ Σ_j m_j r_j²/σ² + ½ μᵀPμ − ½ log det P.
	logZ = -0.5 * ch.LogDet()
	for j := 0; j < D; j++ {
		m := float64(o.Mask[j])
		r := float64(o.Y[j]) - b[j]
		logZ += m * (-0.5*math.Log(2*math.Pi*s2) - 0.5*r*r/s2)
	}
	for i := 0; i < d; i++ {
		logZ += 0.5 * mean[i] * rhs[i] // μᵀPμ = μᵀ rhs
	}
	return mean, cov, logZ, nil
}
