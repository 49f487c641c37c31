package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"osds/gpu"
	"osds/kernels"
)

// Linear is an affine layer y = x·W + b with W [in, out] and b [out].
//
// Forward and derivative, side by side (x [B, in], dy = ∂L/∂y [B, out]):
//
//	y  = x·W + b
//	dW += xᵀ·dy          db += 1ᵀ·dy          dx = dy·Wᵀ
type Linear struct {
	In, Out int
	W, B    *Param
}

// NewLinear creates a layer initialised like PyTorch's nn.Linear (W and b uniform in
// ±1/√in), or all zeros with zero = true (the sampler's last layer, so that the initial
// drift is 0 and the initial sampler is plain Brownian motion).
func NewLinear(d *gpu.Device, name string, in, out int, rng *rand.Rand, zero bool) (*Linear, error) {
	if in < 1 || out < 1 {
		return nil, fmt.Errorf("nn: linear %s: sizes %d→%d must be positive", name, in, out)
	}
	bound := 1 / math.Sqrt(float64(in))
	w, b := UniformInit(rng, in*out, bound), UniformInit(rng, out, bound)
	if zero {
		w, b = make([]float32, in*out), make([]float32, out)
	}
	W, err := NewParam(d, name+".weight", w, in, out)
	if err != nil {
		return nil, err
	}
	B, err := NewParam(d, name+".bias", b, out)
	if err != nil {
		W.Release()
		return nil, err
	}
	return &Linear{In: in, Out: out, W: W, B: B}, nil
}

// Params lists W and b.
func (m *Linear) Params() []*Param { return []*Param{m.W, m.B} }

// Release frees the parameters.
func (m *Linear) Release() {
	m.W.Release()
	m.B.Release()
}

// Forward returns the op y = act(x·W + b); act is Identity when the pre-activation is
// needed for a backward pass (or see ForwardKeep).
func (m *Linear) Forward(l *kernels.Library, y, x *kernels.Tensor, act kernels.Activation) (*kernels.Op, error) {
	return l.Matmul(y, x, m.W.Value, kernels.MatmulOptions{Bias: m.B.Value, Act: act})
}

// ForwardKeep returns the op y = act(h) with h = x·W + b also written to pre, in one
// dispatch: the forward pass of a layer and its activation that keeps h for
// InputGradThrough.
func (m *Linear) ForwardKeep(l *kernels.Library, y, pre, x *kernels.Tensor, act kernels.Activation) (*kernels.Op, error) {
	return l.Matmul(y, x, m.W.Value, kernels.MatmulOptions{Bias: m.B.Value, Act: act, SavePre: pre})
}

// ForwardFolded returns the op y = act(x·W + bias[row]) with bias a [R, out] table that
// already holds b (e.g. b plus a per-step time embedding, so that one product does the
// layer, the addition and the activation); pre, when not nil, also receives the
// pre-activation. The gradient of b is still ParamGrads' column sum of dy.
func (m *Linear) ForwardFolded(l *kernels.Library, y, pre, x, bias *kernels.Tensor, row int, act kernels.Activation) (*kernels.Op, error) {
	return l.Matmul(y, x, m.W.Value, kernels.MatmulOptions{Bias: bias, BiasRow: row, Act: act, SavePre: pre})
}

// Backward returns the ops accumulating dW and db from x and dy and, when dx is not nil,
// computing dx = dy·Wᵀ. ones must be a [B, 1] tensor of ones (the column sums of db are
// the product 1ᵀ·dy).
func (m *Linear) Backward(l *kernels.Library, dx, dy, x, ones *kernels.Tensor) ([]*kernels.Op, error) {
	if ones.Rows() != dy.Rows() || ones.Cols() != 1 {
		return nil, fmt.Errorf("nn: linear backward: ones is %v, want [%d, 1]", ones.Shape, dy.Rows())
	}
	dW, err := l.Matmul(m.W.Grad, x, dy, kernels.MatmulOptions{TransA: true, Accumulate: true})
	if err != nil {
		return nil, err
	}
	db, err := l.Matmul(m.B.Grad, ones, dy, kernels.MatmulOptions{TransA: true, Accumulate: true})
	if err != nil {
		dW.Release()
		return nil, err
	}
	ops := []*kernels.Op{dW, db}
	if dx != nil {
		op, err := l.Matmul(dx, dy, m.W.Value, kernels.MatmulOptions{TransB: true})
		if err != nil {
			dW.Release()
			db.Release()
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// ParamGrads returns the ops accumulating dW += xᵀ·dy and db += Σ_rows dy: the weight
// and bias gradients alone, for many rows at once (the trainer passes every step's rows
// in one tensor). The bias gradient is a column sum rather than the product 1ᵀ·dy of
// Backward: with tens of thousands of rows that product's one output row leaves the
// matmul kernels' tiles mostly idle.
func (m *Linear) ParamGrads(l *kernels.Library, dy, x *kernels.Tensor) ([]*kernels.Op, error) {
	dW, err := l.Matmul(m.W.Grad, x, dy, kernels.MatmulOptions{TransA: true, Accumulate: true})
	if err != nil {
		return nil, err
	}
	db, err := l.SumRowsInto(m.B.Grad, 0, dy)
	if err != nil {
		dW.Release()
		return nil, err
	}
	return []*kernels.Op{dW, db}, nil
}

// InputGradThrough returns the op dpre = (dy·Wᵀ) ⊙ act′(pre): the input gradient alone,
// taken through the activation before the layer (x = act(pre)), for a caller that forms
// the weight gradients elsewhere (over many steps at once, with ParamGrads).
func (m *Linear) InputGradThrough(l *kernels.Library, dpre, dy, pre *kernels.Tensor, act kernels.Activation) (*kernels.Op, error) {
	return l.Matmul(dpre, dy, m.W.Value, kernels.MatmulOptions{TransB: true, DerivOf: pre, DerivAct: act})
}

// BackwardThrough is Backward for a layer whose input came out of an activation,
// x = act(pre): dW and db as in Backward, and the input gradient taken through the
// activation in the same dispatch, dpre = (dy·Wᵀ) ⊙ act′(pre) (InputGradThrough).
func (m *Linear) BackwardThrough(l *kernels.Library, dpre, dy, x, pre, ones *kernels.Tensor, act kernels.Activation) ([]*kernels.Op, error) {
	ops, err := m.Backward(l, nil, dy, x, ones)
	if err != nil {
		return nil, err
	}
	op, err := m.InputGradThrough(l, dpre, dy, pre, act)
	if err != nil {
		for _, o := range ops {
			o.Release()
		}
		return nil, err
	}
	return append(ops, op), nil
}

// Ones returns a [n, 1] tensor of ones (for bias gradients).
func Ones(d *gpu.Device, n int) (*kernels.Tensor, error) {
	t, err := kernels.NewTensor(d, "ones", n, 1)
	if err != nil {
		return nil, err
	}
	if err := t.Fill(1); err != nil {
		t.Release()
		return nil, err
	}
	return t, nil
}
