// Package posterior builds posterior targets in the noise space of a generative prior
// x = f(z), z ~ N(0, I_d), under a constraint r(x, y):
//
//	log R(z)  = log N(z; 0, I_d) + log r(f(z), y)
//	∇log R(z) = −z + J_f(z)ᵀ ∇_x log r(f(z), y)
//
// Samples of R/Z pushed through f are samples of the data-space posterior
// p(x | y) ∝ p(x) r(x, y). A Reward turns a prior and a Constraint into the train
// package's RewardFunc; the vector–Jacobian product J_fᵀ·v is the generator's backward
// pass with the input gradient (no parameter gradients).
package posterior

import (
	"fmt"
	"math"

	"osds/kernels"
	"osds/nn"
	"osds/priors"
)

// Constraint is log r(x) on the rows x [B, D] of a prior's output.
type Constraint interface {
	// Check reports whether the constraint applies to rows of width D, naming what it
	// expects when it does not.
	Check(width int) error
	// Build records the constraint for rows x [B, D] (x stays the caller's).
	Build(l *kernels.Library, x *kernels.Tensor) (*Pass, error)
}

// Pass is a constraint recorded for one batch x [B, D]: the Value ops write LogR [B] =
// log r(x); the Grad ops, recorded after the Value ops, write DX [B, D] = ∇_x log r(x).
type Pass struct {
	LogR, DX    *kernels.Tensor
	Value, Grad []*kernels.Op
	release     []func()
}

// own adds a release to the pass.
func (p *Pass) own(f func()) { p.release = append(p.release, f) }

// Release frees what the pass built (not x).
func (p *Pass) Release() {
	if p == nil {
		return
	}
	for i := len(p.release) - 1; i >= 0; i-- {
		p.release[i]()
	}
	p.release = nil
}

// ---------------------------------------------------------------------------------------

// Class is the classifier constraint r(x) = p_cls(Label | x)^Beta:
//
//	log r(x) = β·log softmax(logits(x))_y = −β·xent(logits(x), y)
//	∇_x log r = J_logitsᵀ · (−β)(softmax − onehot_y)
//
// The gradient is SoftmaxCrossEntropy's dlogits at scale −β followed by the
// classifier's backward pass with the input gradient.
type Class struct {
	Classifier *priors.Classifier
	Label      int
	Beta       float64
}

// Check wants images of the classifier's side, a label among its classes and β > 0.
func (c Class) Check(width int) error {
	if c.Classifier == nil {
		return fmt.Errorf("posterior: class constraint without a classifier")
	}
	a := c.Classifier.Arch
	if c.Label < 0 || c.Label >= a.Classes {
		return fmt.Errorf("posterior: class %d is out of range: the classifier has classes 0..%d", c.Label, a.Classes-1)
	}
	if !(c.Beta > 0) || math.IsInf(c.Beta, 0) {
		return fmt.Errorf("posterior: class constraint β = %v (want a positive finite value)", c.Beta)
	}
	if width != a.Side*a.Side {
		return fmt.Errorf("posterior: the classifier reads %d×%d grayscale images (%d values) but the prior makes rows of %d", a.Side, a.Side, a.Side*a.Side, width)
	}
	return nil
}

// Build records the classifier's forward and backward passes on x.
func (c Class) Build(l *kernels.Library, x *kernels.Tensor) (*Pass, error) {
	if err := c.Check(x.Cols()); err != nil {
		return nil, err
	}
	d, B := l.Device(), x.Rows()
	p := &Pass{}
	fail := func(err error) (*Pass, error) {
		p.Release()
		return nil, fmt.Errorf("posterior: class constraint: %w", err)
	}
	net, err := c.Classifier.Logits().Build(l, x, nn.NetOptions{Backward: true, InputGrad: true})
	if err != nil {
		return fail(err)
	}
	p.own(net.Release)
	idx := make([]uint32, B)
	for i := range idx {
		idx[i] = uint32(c.Label)
	}
	labels, err := kernels.IndexFromSlice(d, "class constraint labels", idx, c.Classifier.Arch.Classes)
	if err != nil {
		return fail(err)
	}
	p.own(labels.Release)
	loss, err := kernels.NewTensor(d, "class constraint xent", B)
	if err != nil {
		return fail(err)
	}
	p.own(loss.Release)
	if p.LogR, err = kernels.NewTensor(d, "class constraint log r", B); err != nil {
		return fail(err)
	}
	p.own(p.LogR.Release)
	beta := float32(c.Beta)
	// dlogits = −β(softmax − onehot) = ∂(−β·xent)/∂logits, straight into the net's DY.
	xent, err := l.SoftmaxCrossEntropy(loss, net.DY, net.Y, labels, -beta)
	if err != nil {
		return fail(err)
	}
	p.own(xent.Release)
	scale, err := l.Scale(p.LogR, loss, -beta)
	if err != nil {
		return fail(err)
	}
	p.own(scale.Release)
	p.DX = net.DX
	p.Value = append(append([]*kernels.Op(nil), net.Forward...), xent, scale)
	p.Grad = append([]*kernels.Op(nil), net.Backward...)
	return p, nil
}

// ---------------------------------------------------------------------------------------

// GaussianObservation is a noisy observation y of the coordinates of x where Mask is 1
// (inpainting, partial observation):
//
//	log r(x) = Σ_i m_i log N(y_i; x_i, σ²),   ∇_x log r = −m ⊙ (x − y)/σ²
type GaussianObservation struct {
	Y, Mask []float32
	Sigma   float64
}

// Check wants Y and Mask of the row width, σ > 0 and at least one observed coordinate.
func (o GaussianObservation) Check(width int) error {
	if len(o.Y) != width || len(o.Mask) != width {
		return fmt.Errorf("posterior: observation of %d values with a mask of %d, but the prior makes rows of %d", len(o.Y), len(o.Mask), width)
	}
	if !(o.Sigma > 0) || math.IsInf(o.Sigma, 0) {
		return fmt.Errorf("posterior: observation noise σ = %v (want a positive finite value)", o.Sigma)
	}
	observed := 0
	for i, m := range o.Mask {
		if math.IsNaN(float64(m)) || m < 0 || math.IsInf(float64(m), 0) {
			return fmt.Errorf("posterior: mask value %v at %d (want weights ≥ 0, 1 observed and 0 free)", m, i)
		}
		if math.IsNaN(float64(o.Y[i])) || math.IsInf(float64(o.Y[i]), 0) {
			return fmt.Errorf("posterior: observed value %v at %d", o.Y[i], i)
		}
		if m > 0 {
			observed++
		}
	}
	if observed == 0 {
		return fmt.Errorf("posterior: the mask observes no coordinate")
	}
	return nil
}

// Build records the observation kernel (log r and ∇_x log r in one dispatch).
func (o GaussianObservation) Build(l *kernels.Library, x *kernels.Tensor) (*Pass, error) {
	if err := o.Check(x.Cols()); err != nil {
		return nil, err
	}
	d, B, D := l.Device(), x.Rows(), x.Cols()
	p := &Pass{}
	fail := func(err error) (*Pass, error) {
		p.Release()
		return nil, fmt.Errorf("posterior: observation constraint: %w", err)
	}
	y, err := kernels.FromSlice(d, "observation", o.Y, D)
	if err != nil {
		return fail(err)
	}
	p.own(y.Release)
	m, err := kernels.FromSlice(d, "observation mask", o.Mask, D)
	if err != nil {
		return fail(err)
	}
	p.own(m.Release)
	if p.LogR, err = kernels.NewTensor(d, "observation log r", B); err != nil {
		return fail(err)
	}
	p.own(p.LogR.Release)
	if p.DX, err = kernels.NewTensor(d, "observation dx", B, D); err != nil {
		return fail(err)
	}
	p.own(p.DX.Release)
	op, err := l.GaussianObservation(p.LogR, p.DX, x, y, m, o.Sigma)
	if err != nil {
		return fail(err)
	}
	p.own(op.Release)
	p.Value = []*kernels.Op{op}
	return p, nil
}

var (
	_ Constraint = Class{}
	_ Constraint = GaussianObservation{}
)
