package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Target is an unnormalised density R(x) on R^d, known through log R and its gradient.
// The float64 methods here are the references the GPU kernels are tested against; a
// user's WGSL target (WGSLTarget) has no float64 form, and its LogR and GradLogR are NaN.
type Target interface {
	// Name is the target's command-line name ("gmm25", "funnel", "manywell",
	// "wgsl:/abs/path.wgsl"), which NewTarget takes back.
	Name() string
	// Dim is d.
	Dim() int
	// LogZ returns log ∫R(x)dx when it is known.
	LogZ() (float64, bool)
	// Sigma2 is the diffusion coefficient σ² the benchmarks use for this target.
	Sigma2() float64
	// LogR returns log R(x).
	LogR(x []float64) float64
	// GradLogR writes ∇log R(x) into g.
	GradLogR(x, g []float64)
	// Sample draws n exact samples of R/Z (ground truth), or returns nil for a target
	// without an exact sampler (see HasExactSamples).
	Sample(rng *rand.Rand, n int) [][]float64
}

// HasExactSamples reports whether t.Sample draws exact samples: every built-in target
// does; a target that says otherwise through a HasExactSamples method (WGSLTarget, known
// only through its log density) does not.
func HasExactSamples(t Target) bool {
	if s, ok := t.(interface{ HasExactSamples() bool }); ok {
		return s.HasExactSamples()
	}
	return true
}

// NewTarget returns the target with the given name: gmm25, funnel, manywell, or a user's
// energy in WGSL, wgsl:FILE.wgsl[,step=H] (NewWGSLTarget).
func NewTarget(name string) (Target, error) {
	if spec, ok := isWGSLTarget(name); ok {
		t, err := NewWGSLTarget(spec)
		if err != nil {
			return nil, err // not a Target holding a nil *WGSLTarget
		}
		return t, nil
	}
	switch strings.ToLower(name) {
	case "gmm25", "25gmm":
		return GMM25{}, nil
	case "funnel":
		return Funnel{}, nil
	case "manywell":
		return Manywell{}, nil
	}
	return nil, fmt.Errorf("train: unknown target %q (want gmm25, funnel or manywell), or your own energy in WGSL: %s", name, wgslTargetUsage)
}

const log2Pi = 1.8378770664093453 // log(2π)

// ---------------------------------------------------------------------------------------

// GMM25 is the equal-weight mixture of 25 Gaussians with means on {-10,-5,0,5,10}² and
// covariance 0.3·I (d = 2). It is normalised: log Z = 0.
//
//	log R(x) = logsumexp_k [ -log 25 + log N(x; μ_k, 0.3·I) ]
type GMM25 struct{}

// GMM25Var is the variance of each GMM25 component.
const GMM25Var = 0.3

// GMM25Means lists the component means, row-major over the grid.
func GMM25Means() [][2]float64 {
	var out [][2]float64
	for _, a := range []float64{-10, -5, 0, 5, 10} {
		for _, b := range []float64{-10, -5, 0, 5, 10} {
			out = append(out, [2]float64{a, b})
		}
	}
	return out
}

func (GMM25) Name() string               { return "gmm25" }
func (GMM25) Dim() int                   { return 2 }
func (GMM25) LogZ() (float64, bool)      { return 0, true }
func (GMM25) Sigma2() float64            { return 5 }
func (g GMM25) LogR(x []float64) float64 { lr, _ := g.logRAndResp(x, nil); return lr }

// logRAndResp returns log R(x) and, when resp is non-nil, fills it with the component
// responsibilities (the posterior weights used by the gradient).
func (GMM25) logRAndResp(x []float64, resp []float64) (float64, []float64) {
	ms := GMM25Means()
	logs := make([]float64, len(ms))
	m := math.Inf(-1)
	for k, mu := range ms {
		dx, dy := x[0]-mu[0], x[1]-mu[1]
		logs[k] = -math.Log(25) - log2Pi - math.Log(GMM25Var) - (dx*dx+dy*dy)/(2*GMM25Var)
		m = math.Max(m, logs[k])
	}
	s := 0.0
	for _, l := range logs {
		s += math.Exp(l - m)
	}
	lse := m + math.Log(s)
	if resp != nil {
		for k, l := range logs {
			resp[k] = math.Exp(l - lse)
		}
	}
	return lse, resp
}

// GradLogR: ∇log R(x) = Σ_k r_k(x) (μ_k − x)/0.3 with responsibilities r_k.
func (g GMM25) GradLogR(x, grad []float64) {
	resp := make([]float64, 25)
	g.logRAndResp(x, resp)
	grad[0], grad[1] = 0, 0
	for k, mu := range GMM25Means() {
		grad[0] += resp[k] * (mu[0] - x[0]) / GMM25Var
		grad[1] += resp[k] * (mu[1] - x[1]) / GMM25Var
	}
}

// Sample picks a component uniformly, then draws from it.
func (GMM25) Sample(rng *rand.Rand, n int) [][]float64 {
	ms := GMM25Means()
	out := make([][]float64, n)
	s := math.Sqrt(GMM25Var)
	for i := range out {
		mu := ms[rng.IntN(len(ms))]
		out[i] = []float64{mu[0] + s*rng.NormFloat64(), mu[1] + s*rng.NormFloat64()}
	}
	return out
}

// ---------------------------------------------------------------------------------------

// Funnel is Neal's funnel in d = 10 with x₀ variance 9 ("hard funnel"):
//
//	x₀ ~ N(0, 9),  x_i | x₀ ~ N(0, e^{x₀}) for i = 1..9,   log Z = 0.
//
//	log R(x) = log N(x₀; 0, 9) + Σ_{i≥1} [ −½ log 2π − x₀/2 − ½ x_i² e^{−x₀} ]
type Funnel struct{}

func (Funnel) Name() string          { return "funnel" }
func (Funnel) Dim() int              { return 10 }
func (Funnel) LogZ() (float64, bool) { return 0, true }
func (Funnel) Sigma2() float64       { return 1 }

func (Funnel) LogR(x []float64) float64 {
	lr := -0.5*log2Pi - 0.5*math.Log(9) - x[0]*x[0]/18
	e := math.Exp(-x[0])
	for _, xi := range x[1:] {
		lr += -0.5*log2Pi - 0.5*x[0] - 0.5*xi*xi*e
	}
	return lr
}

// GradLogR: ∂/∂x₀ = −x₀/9 − (d−1)/2 + ½ Σ x_i² e^{−x₀};  ∂/∂x_i = −x_i e^{−x₀}.
func (Funnel) GradLogR(x, g []float64) {
	e := math.Exp(-x[0])
	g[0] = -x[0]/9 - 0.5*float64(len(x)-1)
	for i := 1; i < len(x); i++ {
		g[0] += 0.5 * x[i] * x[i] * e
		g[i] = -x[i] * e
	}
}

// Sample draws ancestrally: x₀ first, then the rest given x₀.
func (Funnel) Sample(rng *rand.Rand, n int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		x := make([]float64, 10)
		x[0] = 3 * rng.NormFloat64()
		s := math.Exp(x[0] / 2)
		for j := 1; j < 10; j++ {
			x[j] = s * rng.NormFloat64()
		}
		out[i] = x
	}
	return out
}

// ---------------------------------------------------------------------------------------

// Manywell is the product of 16 tilted double wells on the pairs (x_{2k}, x_{2k+1}),
// d = 32, with 2^16 modes:
//
//	log R(x) = Σ_k [ −a⁴ + 6a² + ½a − ½b² ],   (a, b) = (x_{2k}, x_{2k+1})
//	log Z = 16·(log Z_a + ½ log 2π),  Z_a = ∫exp(−a⁴ + 6a² + ½a) da = 11784.50927
type Manywell struct{}

// ManywellZa is ∫exp(−a⁴+6a²+a/2)da (quadrature; the test recomputes it).
const ManywellZa = 11784.50927

func (Manywell) Name() string { return "manywell" }
func (Manywell) Dim() int     { return 32 }
func (Manywell) LogZ() (float64, bool) {
	return 16 * (math.Log(ManywellZa) + 0.5*log2Pi), true
}
func (Manywell) Sigma2() float64 { return 1 }

func (Manywell) LogR(x []float64) float64 {
	lr := 0.0
	for k := 0; k+1 < len(x); k += 2 {
		a, b := x[k], x[k+1]
		lr += -a*a*a*a + 6*a*a + 0.5*a - 0.5*b*b
	}
	return lr
}

// GradLogR: ∂/∂a = −4a³ + 12a + ½;  ∂/∂b = −b.
func (Manywell) GradLogR(x, g []float64) {
	for k := 0; k+1 < len(x); k += 2 {
		a, b := x[k], x[k+1]
		g[k] = -4*a*a*a + 12*a + 0.5
		g[k+1] = -b
	}
}

// manywellA is the unnormalised density of one well coordinate.
func manywellA(a float64) float64 { return math.Exp(-a*a*a*a + 6*a*a + 0.5*a) }

// Sample draws each a by rejection from the proposal 0.2·N(−1.7, 0.5²) + 0.8·N(1.7, 0.5²)
// with envelope 3·Z_a (which bounds the ratio everywhere), and each b from N(0, 1).
func (Manywell) Sample(rng *rand.Rand, n int) [][]float64 {
	q := func(a float64) float64 {
		n1 := math.Exp(-(a+1.7)*(a+1.7)/(2*0.25)) / math.Sqrt(2*math.Pi*0.25)
		n2 := math.Exp(-(a-1.7)*(a-1.7)/(2*0.25)) / math.Sqrt(2*math.Pi*0.25)
		return 0.2*n1 + 0.8*n2
	}
	k := 3 * ManywellZa
	drawA := func() float64 {
		for {
			a := 1.7 + 0.5*rng.NormFloat64()
			if rng.Float64() < 0.2 {
				a = -1.7 + 0.5*rng.NormFloat64()
			}
			if rng.Float64()*k*q(a) < manywellA(a) {
				return a
			}
		}
	}
	out := make([][]float64, n)
	for i := range out {
		x := make([]float64, 32)
		for j := 0; j < 32; j += 2 {
			x[j] = drawA()
			x[j+1] = rng.NormFloat64()
		}
		out[i] = x
	}
	return out
}
