package nn

import (
	"fmt"

	"osds/kernels"
)

// Optimizer runs AdamW on a list of parameters, one kernels.Adam per parameter with its
// own moment buffers (m, v start at zero). Record Ops() after the backward pass of each
// step and call SetStep before submitting it.
type Optimizer struct {
	params []*Param
	adams  []*kernels.Adam
	m, v   []*kernels.Tensor
}

// NewOptimizer builds the AdamW ops for ps with the same settings for all of them.
func NewOptimizer(l *kernels.Library, ps []*Param, cfg kernels.AdamConfig) (*Optimizer, error) {
	o := &Optimizer{params: ps}
	d := l.Device()
	for _, p := range ps {
		m, err := kernels.NewTensor(d, p.Name+".adam_m", p.Len())
		if err != nil {
			o.Release()
			return nil, err
		}
		o.m = append(o.m, m)
		v, err := kernels.NewTensor(d, p.Name+".adam_v", p.Len())
		if err != nil {
			o.Release()
			return nil, err
		}
		o.v = append(o.v, v)
		if err := m.Fill(0); err != nil {
			o.Release()
			return nil, err
		}
		if err := v.Fill(0); err != nil {
			o.Release()
			return nil, err
		}
		a, err := l.NewAdam(p.Value, p.Grad, m, v, cfg)
		if err != nil {
			o.Release()
			return nil, fmt.Errorf("nn: optimizer for %s: %w", p.Name, err)
		}
		o.adams = append(o.adams, a)
	}
	return o, nil
}

// Ops lists the update ops of every parameter.
func (o *Optimizer) Ops() []*kernels.Op {
	var ops []*kernels.Op
	for _, a := range o.adams {
		ops = append(ops, a.Ops()...)
	}
	return ops
}

// SetStep sets the step counter t (≥ 1, for bias correction) and the learning rate of
// the next submission.
func (o *Optimizer) SetStep(t int, lr float64) error {
	for _, a := range o.adams {
		a.Config.LR = lr
		if err := a.SetStep(t); err != nil {
			return err
		}
	}
	return nil
}

// State returns the moment buffers named "<param>.adam_m" and "<param>.adam_v", for a
// checkpoint (restore them with Restore).
func (o *Optimizer) State() []*Param {
	var out []*Param
	for i, p := range o.params {
		out = append(out, &Param{Name: p.Name + ".adam_m", Value: o.m[i]}, &Param{Name: p.Name + ".adam_v", Value: o.v[i]})
	}
	return out
}

// Release frees the optimizer's ops and moments (not the parameters).
func (o *Optimizer) Release() {
	for _, a := range o.adams {
		a.Release()
	}
	for _, t := range o.m {
		t.Release()
	}
	for _, t := range o.v {
		t.Release()
	}
	o.adams, o.m, o.v = nil, nil, nil
}
