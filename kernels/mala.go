package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// PhiloxDomainMALA and PhiloxDomainMALAAccept are the Philox domain words of the MALA
// proposal noise and acceptance uniforms (see rng.go).
const (
	PhiloxDomainMALA       uint32 = 3
	PhiloxDomainMALAAccept uint32 = 4
)

// MALAParams configure one MALA step: step size η, reward exponent β (target R^β), and
// the noise counters.
type MALAParams struct {
	Step   int
	Stream uint32
	Seed   uint64
	Eta    float64
	Beta   float64
}

func (p MALAParams) params(m, d int) (Params, error) {
	if !(p.Eta > 0) || math.IsInf(p.Eta, 0) || !(p.Beta > 0) || math.IsInf(p.Beta, 0) {
		return nil, fmt.Errorf("kernels: mala: step size η = %v and β = %v must be positive and finite", p.Eta, p.Beta)
	}
	if p.Step < 0 {
		return nil, fmt.Errorf("kernels: mala: step %d", p.Step)
	}
	return Params{m, d, p.Step, p.Stream, uint32(p.Seed), uint32(p.Seed >> 32), (d + 3) / 4, float32(p.Eta), float32(p.Beta)}, nil
}

// MALAStep is one recorded MALA step on M chains of dimension d: propose, evaluate the
// target at the proposal (the caller's reward op, which must write lrp and gp from xp),
// accept or reject.
type MALAStep struct {
	propose, accept *Op
	M, D            int
	P               MALAParams
	dev             *gpu.Device
}

// NewMALAStep builds the propose and accept ops. x, g, xp, gp are [M, d]; lr, lrp, acc
// are [M] (acc counts acceptances per chain).
func (l *Library) NewMALAStep(x, g, lr, xp, gp, lrp, acc *Tensor, p MALAParams) (*MALAStep, error) {
	m, d := x.Rows(), x.Cols()
	for _, t := range []*Tensor{g, xp, gp} {
		if !sameShape(t.Shape, x.Shape) {
			return nil, fmt.Errorf("kernels: mala: %q is %v, want %v like x", t.Label(), t.Shape, x.Shape)
		}
	}
	for _, t := range []*Tensor{lr, lrp, acc} {
		if t.Len() != m {
			return nil, fmt.Errorf("kernels: mala: %q has %d elements for %d chains", t.Label(), t.Len(), m)
		}
	}
	ps, err := p.params(m, d)
	if err != nil {
		return nil, err
	}
	s := &MALAStep{M: m, D: d, P: p, dev: l.dev}
	if s.propose, err = l.build(opSpec{name: "mala propose", file: "mala.wgsl", entry: "propose",
		buffers: []*gpu.Buffer{x.Buf, g.Buf, xp.Buf}, params: ps, grid: Grid1D(m, 64)}); err != nil {
		return nil, err
	}
	if s.accept, err = l.build(opSpec{name: "mala accept", file: "mala_accept.wgsl", entry: "main",
		buffers: []*gpu.Buffer{x.Buf, g.Buf, lr.Buf, xp.Buf, gp.Buf, lrp.Buf, acc.Buf}, params: ps, grid: Grid1D(m, 64)}); err != nil {
		s.propose.Release()
		return nil, err
	}
	return s, nil
}

// Propose and Accept are the step's two ops; record Propose, the reward op on the
// proposal, then Accept.
func (s *MALAStep) Propose() *Op { return s.propose }

// Accept is the Metropolis–Hastings op.
func (s *MALAStep) Accept() *Op { return s.accept }

// Update rewrites the step's parameters (step counter, stream, η).
func (s *MALAStep) Update(p MALAParams) error {
	ps, err := p.params(s.M, s.D)
	if err != nil {
		return err
	}
	if err := s.propose.SetParams(s.dev, ps); err != nil {
		return err
	}
	if err := s.accept.SetParams(s.dev, ps); err != nil {
		return err
	}
	s.P = p
	return nil
}

// Release frees both ops.
func (s *MALAStep) Release() {
	s.propose.Release()
	s.accept.Release()
}

// RefMALAPropose is the float64 reference of the proposal: xp = x + η g + sqrt(2η) ξ.
func RefMALAPropose(x, g []float64, m, d int, p MALAParams) []float64 {
	nb := (d + 3) / 4
	key := [2]uint32{uint32(p.Seed), uint32(p.Seed >> 32)}
	out := make([]float64, len(x))
	for b := 0; b < m; b++ {
		for q := 0; q < nb; q++ {
			xi := PhiloxNormal4(Philox4x32([4]uint32{uint32(b*nb + q), uint32(p.Step), p.Stream, PhiloxDomainMALA}, key))
			for l := 0; l < 4 && 4*q+l < d; l++ {
				i := b*d + 4*q + l
				out[i] = x[i] + p.Eta*g[i] + math.Sqrt(2*p.Eta)*xi[l]
			}
		}
	}
	return out
}

// RefMALAAccept is the float64 reference of the acceptance: it returns which chains
// accept (then x, g, lr take the proposal's values).
func RefMALAAccept(x, g, lr, xp, gp, lrp []float64, m, d int, p MALAParams) []bool {
	key := [2]uint32{uint32(p.Seed), uint32(p.Seed >> 32)}
	out := make([]bool, m)
	for b := 0; b < m; b++ {
		fwd, bwd := 0.0, 0.0
		for j := 0; j < d; j++ {
			i := b*d + j
			a := xp[i] - x[i] - p.Eta*g[i]
			c := x[i] - xp[i] - p.Eta*gp[i]
			fwd += a * a
			bwd += c * c
		}
		logAlpha := p.Beta*(lrp[b]-lr[b]) + (fwd-bwd)/(4*p.Eta)
		u := float64(PhiloxUniform(Philox4x32([4]uint32{uint32(b), uint32(p.Step), p.Stream, PhiloxDomainMALAAccept}, key)[0]))
		out[b] = math.Log(u) < logAlpha
	}
	return out
}
