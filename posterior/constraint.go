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

// Class is the classifier constraint r(x) = min(p_cls(Label | x), τ)^Beta, with the
// cap τ = Cap in (0, 1] (0 means 1, no cap):
//
//	log r(x) = β·min(log softmax(logits(x))_y, log τ) = −β·max(xent(logits(x), y), −log τ)
//	∇_x log r = J_logitsᵀ · (−β)(softmax − onehot_y) where p_y < τ, else 0
//
// The gradient is FlooredSoftmaxCrossEntropy's dlogits at scale −β and floor −log τ,
// followed by the classifier's backward pass with the input gradient. Why a cap: with
// τ = 1 the reward keeps growing with the classifier's confidence, so a large β (needed
// for accuracy) also pulls samples toward the most prototypical images. With τ < 1 and a
// large β, r(x) is flat (τ^β) once p_y ≥ τ and falls steeply below: the posterior is the
// prior restricted, softly, to the images the classifier calls y with confidence ≥ τ.
//
// With Labels set, row b has its own label Labels[b] (Label is ignored, and Build wants
// exactly len(Labels) rows): the reward of a batch of an amortised sampler
// (ClassFamily.For).
type Class struct {
	Classifier *priors.Classifier
	Label      int
	Beta       float64
	Cap        float64
	Labels     []int
}

// floor is the cross-entropy floor −log τ of the cap τ (0 for no cap).
func (c Class) floor() float64 {
	if c.Cap == 0 || c.Cap == 1 {
		return 0
	}
	return -math.Log(c.Cap)
}

// Check wants images of the classifier's side, labels among its classes and β > 0.
func (c Class) Check(width int) error {
	if c.Classifier == nil {
		return fmt.Errorf("posterior: class constraint without a classifier")
	}
	a := c.Classifier.Arch
	labels := c.Labels
	if labels == nil {
		labels = []int{c.Label}
	}
	for _, y := range labels {
		if y < 0 || y >= a.Classes {
			return fmt.Errorf("posterior: class %d is out of range: the classifier has classes 0..%d", y, a.Classes-1)
		}
	}
	if !(c.Beta > 0) || math.IsInf(c.Beta, 0) {
		return fmt.Errorf("posterior: class constraint β = %v (want a positive finite value)", c.Beta)
	}
	if !(c.Cap >= 0 && c.Cap <= 1) {
		return fmt.Errorf("posterior: class constraint cap τ = %v (want a probability in (0, 1], or 0 for no cap)", c.Cap)
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
	if c.Labels != nil && len(c.Labels) != B {
		return fail(fmt.Errorf("%d per-row labels for a batch of %d", len(c.Labels), B))
	}
	idx := make([]uint32, B)
	for i := range idx {
		idx[i] = uint32(c.Label)
		if c.Labels != nil {
			idx[i] = uint32(c.Labels[i])
		}
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
	// dlogits = −β(softmax − onehot) = ∂(−β·xent)/∂logits (0 on the floor), straight into
	// the net's DY.
	xent, err := l.FlooredSoftmaxCrossEntropy(loss, net.DY, net.Y, labels, -beta, float32(c.floor()))
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

// ---------------------------------------------------------------------------------------

// Conditional is a family of constraints r(x, y) indexed by a condition y ∈ {0, …,
// Conditions()−1}, for amortised samplers: one network learns the posteriors of every
// y, and each batch row b carries its own condition y_b.
type Conditional interface {
	// Conditions is the number of conditions.
	Conditions() int
	// Check reports whether the family applies to rows of width D.
	Check(width int) error
	// For is the constraint of a batch whose row b has condition labels[b].
	For(labels []int) Constraint
	// Describe names condition y (e.g. "class 3").
	Describe(y int) string
}

// ClassFamily is the amortised classifier constraint: condition y is the class y, r(x, y)
// = min(p_cls(y | x), Cap)^Beta as in Class, over all the classifier's classes (spec
// class:all).
type ClassFamily struct {
	Classifier *priors.Classifier
	Beta, Cap  float64
}

// Conditions is the classifier's number of classes.
func (c ClassFamily) Conditions() int {
	if c.Classifier == nil {
		return 0
	}
	return c.Classifier.Arch.Classes
}

// Check is Class's check (any label).
func (c ClassFamily) Check(width int) error {
	return Class{Classifier: c.Classifier, Beta: c.Beta, Cap: c.Cap}.Check(width)
}

// For is the Class constraint with per-row labels.
func (c ClassFamily) For(labels []int) Constraint {
	return Class{Classifier: c.Classifier, Beta: c.Beta, Cap: c.Cap, Labels: append([]int(nil), labels...)}
}

// Describe is "class y".
func (c ClassFamily) Describe(y int) string { return fmt.Sprintf("class %d", y) }

// ObservationFamily is a family of Gaussian observations of the same coordinates (one
// Mask, one Sigma) whose observed values depend on the condition: condition y observes
// Y[y]. With a linear prior each condition's posterior is known exactly
// (LinearGaussianPosterior of Observation(y)), the analytic test of amortised samplers.
type ObservationFamily struct {
	Y     [][]float32
	Mask  []float32
	Sigma float64
}

// Observation is condition y's GaussianObservation.
func (o ObservationFamily) Observation(y int) GaussianObservation {
	return GaussianObservation{Y: o.Y[y], Mask: o.Mask, Sigma: o.Sigma}
}

// Conditions is len(Y).
func (o ObservationFamily) Conditions() int { return len(o.Y) }

// Check checks every condition's observation.
func (o ObservationFamily) Check(width int) error {
	if len(o.Y) == 0 {
		return fmt.Errorf("posterior: observation family without observations")
	}
	for y := range o.Y {
		if err := o.Observation(y).Check(width); err != nil {
			return fmt.Errorf("condition %d: %w", y, err)
		}
	}
	return nil
}

// For is the observation of per-row values.
func (o ObservationFamily) For(labels []int) Constraint {
	return rowObservation{f: o, labels: append([]int(nil), labels...)}
}

// Describe is "observation y".
func (o ObservationFamily) Describe(y int) string { return fmt.Sprintf("observation %d", y) }

// rowObservation is an ObservationFamily for a batch with per-row conditions: with the
// per-row values Y_b, log r(x_b) = Σ_i m_i log N(0; x_bi − Y_bi, σ²), which is the shared-y
// observation kernel on x − Y with y = 0.
type rowObservation struct {
	f      ObservationFamily
	labels []int
}

func (o rowObservation) Check(width int) error {
	if err := o.f.Check(width); err != nil {
		return err
	}
	for _, y := range o.labels {
		if y < 0 || y >= o.f.Conditions() {
			return fmt.Errorf("posterior: condition %d is out of range: the family has conditions 0..%d", y, o.f.Conditions()-1)
		}
	}
	return nil
}

func (o rowObservation) Build(l *kernels.Library, x *kernels.Tensor) (*Pass, error) {
	if err := o.Check(x.Cols()); err != nil {
		return nil, err
	}
	d, B, D := l.Device(), x.Rows(), x.Cols()
	if len(o.labels) != B {
		return nil, fmt.Errorf("posterior: observation family: %d per-row conditions for a batch of %d", len(o.labels), B)
	}
	p := &Pass{}
	fail := func(err error) (*Pass, error) {
		p.Release()
		return nil, fmt.Errorf("posterior: observation family: %w", err)
	}
	negY := make([]float32, B*D)
	for b, y := range o.labels {
		for i, v := range o.f.Y[y] {
			negY[b*D+i] = -v
		}
	}
	upload := func(label string, data []float32, shape ...int) (*kernels.Tensor, error) {
		v, err := kernels.FromSlice(d, label, data, shape...)
		if err == nil {
			p.own(v.Release)
		}
		return v, err
	}
	ny, err := upload("observations (negated, per row)", negY, B, D)
	if err != nil {
		return fail(err)
	}
	zero, err := upload("observation zero", make([]float32, D), D)
	if err != nil {
		return fail(err)
	}
	mask, err := upload("observation mask", o.f.Mask, D)
	if err != nil {
		return fail(err)
	}
	shifted, err := kernels.NewTensor(d, "observation residual", B, D)
	if err != nil {
		return fail(err)
	}
	p.own(shifted.Release)
	if p.LogR, err = kernels.NewTensor(d, "observation log r", B); err != nil {
		return fail(err)
	}
	p.own(p.LogR.Release)
	if p.DX, err = kernels.NewTensor(d, "observation dx", B, D); err != nil {
		return fail(err)
	}
	p.own(p.DX.Release)
	sub, err := l.Add(shifted, x, ny)
	if err != nil {
		return fail(err)
	}
	p.own(sub.Release)
	obs, err := l.GaussianObservation(p.LogR, p.DX, shifted, zero, mask, o.f.Sigma)
	if err != nil {
		return fail(err)
	}
	p.own(obs.Release)
	p.Value = []*kernels.Op{sub, obs}
	return p, nil
}

var (
	_ Constraint  = Class{}
	_ Constraint  = GaussianObservation{}
	_ Constraint  = rowObservation{}
	_ Conditional = ClassFamily{}
	_ Conditional = ObservationFamily{}
)
