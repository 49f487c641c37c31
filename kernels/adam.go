package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// AdamConfig are the settings of the AdamW optimizer (Loshchilov & Hutter: weight decay
// decoupled from the gradient; WeightDecay = 0 is plain Adam).
type AdamConfig struct {
	// LR is the learning rate, Beta1 and Beta2 the moments' decay rates, Eps the
	// denominator's floor, WeightDecay the decoupled decay (p ← p − LR·WeightDecay·p).
	LR, Beta1, Beta2, Eps, WeightDecay float64
	// MaxGradNorm > 0 clips the global gradient norm: g ← g·min(1, max/(‖g‖+1e-6)).
	// 0 turns clipping off (and skips the norm computation); +Inf computes ‖g‖ (in
	// Adam.Norm, for logging) without clipping.
	MaxGradNorm float64
}

// DefaultAdamConfig is lr 1e-3, β = (0.9, 0.999), eps 1e-8, no weight decay, no clipping.
func DefaultAdamConfig() AdamConfig {
	return AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

func (c AdamConfig) check() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !finite(c.LR) || c.LR < 0:
		return fmt.Errorf("learning rate %v (want a finite value ≥ 0)", c.LR)
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("β1 = %v (want 0 ≤ β1 < 1)", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("β2 = %v (want 0 ≤ β2 < 1)", c.Beta2)
	case !finite(c.Eps) || c.Eps <= 0:
		return fmt.Errorf("eps %v (want a finite value > 0)", c.Eps)
	case !finite(c.WeightDecay) || c.WeightDecay < 0:
		return fmt.Errorf("weight decay %v (want a finite value ≥ 0)", c.WeightDecay)
	case math.IsNaN(c.MaxGradNorm) || c.MaxGradNorm < 0:
		return fmt.Errorf("max gradient norm %v (want ≥ 0; 0 = no clipping)", c.MaxGradNorm)
	}
	return nil
}

// normMode is NormParams.mode: 0 no norm, 1 clip, 2 norm only.
func (c AdamConfig) normMode() int {
	switch {
	case c.MaxGradNorm == 0:
		return 0
	case math.IsInf(c.MaxGradNorm, 1):
		return 2
	}
	return 1
}

// adamPartials is the number of partial sums of squares for P gradients: about 4096
// gradients per workgroup, at most 256 (one per thread of the final op). It depends on P
// only, so the norm is the same on every run and every device.
func adamPartials(p int) int {
	return max(1, min(256, (p+4095)/4096))
}

// Adam is an AdamW optimizer bound to one flat parameter buffer and its gradient and
// moment buffers. Record Ops() once per iteration after the backward pass (and before
// the gradients are cleared); call SetStep before each submission.
type Adam struct {
	// Config holds the settings applied by the next SetStep (change LR there for a
	// schedule).
	Config AdamConfig
	// Norm holds (‖g‖₂, clipping factor) after the ops ran, when MaxGradNorm ≠ 0.
	Norm *Tensor
	p    int
	step int
	dev  *gpu.Device
	// partial and final compute the norm (nil without clipping); update is the AdamW step.
	partial, final, update *Op
	partials               *Tensor
}

// NewAdam builds the AdamW ops for params, grads, m and v, flat buffers of P elements
// each (any shape; all four distinct). m and v are the first and second moments and must
// start at zero (they are part of a checkpoint). The step counter starts at t = 1.
func (l *Library) NewAdam(params, grads, m, v *Tensor, cfg AdamConfig) (*Adam, error) {
	const name = "kernels: adam"
	ts := []*Tensor{params, grads, m, v}
	names := []string{"params", "grads", "m", "v"}
	for i, t := range ts {
		if t == nil {
			return nil, fmt.Errorf("%s: %s is nil", name, names[i])
		}
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := params.Len()
	for i, t := range ts {
		if t.Len() != p {
			return nil, fmt.Errorf("%s: params is %s (%d elements) but %s is %s (%d elements)", name, sdeShape(params), p, names[i], sdeShape(t), t.Len())
		}
		for j := 0; j < i; j++ {
			if ts[j].Buf.Shares(t.Buf) {
				return nil, fmt.Errorf("%s: %s and %s are the same tensor %q", name, names[j], names[i], t.Label())
			}
		}
		if err := philoxCheckBinding(l, name, names[i], t); err != nil {
			return nil, err
		}
	}
	if p > math.MaxUint32-2*256*256 {
		return nil, fmt.Errorf("%s: %d parameters (want < 2^32 - 2^17)", name, p)
	}
	a := &Adam{Config: cfg, p: p, step: 1, dev: l.dev}
	fail := func(err error) (*Adam, error) {
		a.Release()
		return nil, err
	}
	var err error
	if a.Norm, err = FromSlice(l.dev, "adam norm", []float32{0, 1}, 2); err != nil {
		return fail(err)
	}
	mode := cfg.normMode()
	if mode != 0 {
		g := adamPartials(p)
		if a.partials, err = NewTensor(l.dev, "adam partial sums", g); err != nil {
			return fail(err)
		}
		np := a.normParams()
		if a.partial, err = l.build(opSpec{
			name: "adam sumsq partial", file: "adam.wgsl", entry: "adam_sumsq_partial",
			buffers: []*gpu.Buffer{grads.Buf, a.partials.Buf},
			params:  np,
			grid:    [3]uint32{uint32(g), 1, 1},
		}); err != nil {
			return fail(err)
		}
		if a.final, err = l.build(opSpec{
			name: "adam sumsq final", file: "adam.wgsl", entry: "adam_sumsq_final",
			buffers: []*gpu.Buffer{a.partials.Buf, a.Norm.Buf},
			params:  np,
			grid:    [3]uint32{1, 1, 1},
		}); err != nil {
			return fail(err)
		}
	}
	if a.update, err = l.build(opSpec{
		name: "adam update", file: "adam.wgsl", entry: "adam_update",
		buffers: []*gpu.Buffer{params.Buf, grads.Buf, m.Buf, v.Buf, a.Norm.Buf},
		params:  a.params(),
		grid:    Grid1D(p, 256),
	}); err != nil {
		return fail(err)
	}
	return a, nil
}

// normParams is the norm ops' uniform block (NormParams in shaders/adam.wgsl).
func (a *Adam) normParams() Params {
	mode, maxNorm := a.Config.normMode(), float32(0)
	if mode == 1 {
		maxNorm = float32(a.Config.MaxGradNorm)
	}
	return Params{a.p, adamPartials(a.p), mode, maxNorm}
}

// params derives the update's uniform block (AdamParams in shaders/adam.wgsl) in float64.
func (a *Adam) params() Params {
	c, t := a.Config, float64(a.step)
	clip := 0
	if c.normMode() == 1 {
		clip = 1
	}
	bc1 := 1 - math.Pow(c.Beta1, t)
	bc2 := 1 - math.Pow(c.Beta2, t)
	return Params{
		a.p, clip,
		float32(c.Beta1), float32(c.Beta2), float32(1 - c.Beta1), float32(1 - c.Beta2), float32(c.Eps),
		float32(c.LR * c.WeightDecay), float32(c.LR / bc1), float32(1 / math.Sqrt(bc2)),
	}
}

// Ops are the dispatches of one optimizer step, in order: with clipping (or norm only)
// the partial sums, the norm, then the update; otherwise only the update.
func (a *Adam) Ops() []*Op {
	if a.partial != nil {
		return []*Op{a.partial, a.final, a.update}
	}
	return []*Op{a.update}
}

// Step is the step number t the next submission uses for bias correction.
func (a *Adam) Step() int { return a.step }

// SetStep sets the step number t ≥ 1 (bias correction 1−β^t) and applies a.Config for
// the next submission. Whether a norm is computed is fixed when the optimizer is built
// (it decides which ops exist): MaxGradNorm may change between positive values and +Inf,
// but switching it to or from 0 is an error.
func (a *Adam) SetStep(t int) error {
	if t < 1 {
		return fmt.Errorf("kernels: adam: step %d (want ≥ 1)", t)
	}
	if err := a.Config.check(); err != nil {
		return fmt.Errorf("kernels: adam: %w", err)
	}
	if (a.Config.normMode() == 0) != (a.partial == nil) {
		return fmt.Errorf("kernels: adam: gradient clipping was fixed when the optimizer was built (max norm now %v)", a.Config.MaxGradNorm)
	}
	if a.partial != nil {
		for _, op := range []*Op{a.partial, a.final} {
			if err := op.SetParams(a.dev, a.normParams()); err != nil {
				return err
			}
		}
	}
	a.step = t
	return a.update.SetParams(a.dev, a.params())
}

// Release frees the optimizer's ops and its small buffers (not params, grads, m, v).
func (a *Adam) Release() {
	if a == nil {
		return
	}
	a.partial.Release()
	a.final.Release()
	a.update.Release()
	a.partials.Release()
	a.Norm.Release()
}

// RefAdam is the float64 reference of one AdamW step t ≥ 1 in place:
//
//	g ← g·min(1, c/(‖g‖₂ + 1e-6))   when cfg.MaxGradNorm = c is finite and > 0
//	m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//	p ← p − lr·wd·p − lr/(1−β1^t) · m / (sqrt(v/(1−β2^t)) + eps)
//
// (grads is not modified). It returns ‖g‖₂ of the unclipped gradient.
func RefAdam(params, grads, m, v []float64, cfg AdamConfig, t int) float64 {
	var ss float64
	for _, g := range grads {
		ss += g * g
	}
	norm := math.Sqrt(ss)
	scale := 1.0
	if cfg.normMode() == 1 {
		scale = math.Min(1, cfg.MaxGradNorm/(norm+1e-6))
	}
	bc1 := 1 - math.Pow(cfg.Beta1, float64(t))
	bc2 := 1 - math.Pow(cfg.Beta2, float64(t))
	for i := range params {
		g := grads[i] * scale
		m[i] = cfg.Beta1*m[i] + (1-cfg.Beta1)*g
		v[i] = cfg.Beta2*v[i] + (1-cfg.Beta2)*g*g
		params[i] -= cfg.LR*cfg.WeightDecay*params[i] + cfg.LR/bc1*m[i]/(math.Sqrt(v[i]/bc2)+cfg.Eps)
	}
	return norm
}
