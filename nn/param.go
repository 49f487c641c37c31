package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"osds/gpu"
	"osds/kernels"
)

// Param is a trainable tensor with its gradient (same shape, accumulated by backward ops).
type Param struct {
	Name  string
	Value *kernels.Tensor
	Grad  *kernels.Tensor
}

// NewParam allocates a parameter initialised with init (len = product of shape) and a
// zeroed gradient.
func NewParam(d *gpu.Device, name string, init []float32, shape ...int) (*Param, error) {
	v, err := kernels.FromSlice(d, name, init, shape...)
	if err != nil {
		return nil, err
	}
	g, err := kernels.NewTensor(d, name+".grad", shape...)
	if err != nil {
		v.Release()
		return nil, err
	}
	if err := g.Fill(0); err != nil {
		v.Release()
		g.Release()
		return nil, err
	}
	return &Param{Name: name, Value: v, Grad: g}, nil
}

// Release frees value and gradient.
func (p *Param) Release() {
	p.Value.Release()
	p.Grad.Release()
}

// Len is the number of scalars.
func (p *Param) Len() int { return p.Value.Len() }

// UniformInit returns n values uniform in [-bound, bound].
func UniformInit(rng *rand.Rand, n int, bound float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return out
}

// NormalInit returns n standard normal values.
func NormalInit(rng *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}

// ZeroGrads records zeroing of every gradient (buffer clears, outside compute passes).
func ZeroGrads(r *kernels.Recorder, ps []*Param) {
	enc := r.Encoder()
	for _, p := range ps {
		enc.ClearBuffer(p.Grad.Buf, 0, uint64(4*p.Len()))
	}
}

// Snapshot reads every parameter back to the host, named, for checkpoints.
func Snapshot(ps []*Param) ([]NamedTensor, error) {
	out := make([]NamedTensor, 0, len(ps))
	for _, p := range ps {
		v, err := p.Value.Read()
		if err != nil {
			return nil, err
		}
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("nn: parameter %s element %d is %v", p.Name, i, x)
			}
		}
		out = append(out, NamedTensor{Name: p.Name, Shape: append([]int(nil), p.Value.Shape...), Data: v})
	}
	return out, nil
}

// Restore writes named tensors into parameters of the same names and shapes; every
// parameter must be present.
func Restore(ps []*Param, ts []NamedTensor) error {
	byName := map[string]NamedTensor{}
	for _, t := range ts {
		byName[t.Name] = t
	}
	for _, p := range ps {
		t, ok := byName[p.Name]
		if !ok {
			return fmt.Errorf("nn: checkpoint lacks parameter %q", p.Name)
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(p.Value.Shape) {
			return fmt.Errorf("nn: parameter %q has shape %v in the checkpoint, %v in the model", p.Name, t.Shape, p.Value.Shape)
		}
		if err := p.Value.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}
