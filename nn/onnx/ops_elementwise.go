package onnx

import (
	"math"

	"osds/kernels"
)

// Elementwise operators: binary arithmetic with NumPy broadcasting, the elementwise
// functions, and the identities (Identity, inference Dropout).

const (
	binAdd = kernels.BinaryAdd
	binSub = kernels.BinarySub
	binMul = kernels.BinaryMul
	binDiv = kernels.BinaryDiv
	binPow = kernels.BinaryPow
)

func binaryOp(op kernels.BinaryOp) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		v, err := c.binary(op, c.in(0), c.in(1), c.outName(0))
		if err != nil {
			return err
		}
		c.set(0, v)
		return nil
	}
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isIntType(t int64) bool { return !isFloatType(t) }

// binary returns op(a, b) broadcast, folded on the host when both are known, and
// registers its gradient: ∂op/∂a·dz summed over a's broadcast axes (likewise b). Add and
// Sub pass the gradient through without a dispatch when the operand is not broadcast.
func (c *nodeCtx) binary(op kernels.BinaryOp, a, b *val, label string) (*val, error) {
	shape, err := kernels.BroadcastShapes(a.shape, b.shape)
	if err != nil {
		return nil, c.errf("%v", err)
	}
	idx := devShape(shape)
	al, err := kernels.BroadcastLayout(a.shape, idx)
	if err != nil {
		return nil, err
	}
	bl, err := kernels.BroadcastLayout(b.shape, idx)
	if err != nil {
		return nil, err
	}
	if a.host != nil && b.host != nil {
		data := kernels.RefBinaryND(op, a.host.data, al, b.host.data, bl, idx)
		if op == binDiv && isIntType(a.host.dtype) && isIntType(b.host.dtype) {
			for i, v := range data {
				data[i] = math.Trunc(v) // integer division of shape arithmetic
			}
		}
		return &val{shape: shape, host: &hostTensor{dtype: a.host.dtype, shape: shape, data: data}}, nil
	}
	lb := c.b
	ta, err := lb.device(a)
	if err != nil {
		return nil, err
	}
	tb, err := lb.device(b)
	if err != nil {
		return nil, err
	}
	t, err := lb.alloc(label, shape)
	if err != nil {
		return nil, err
	}
	out := &val{shape: shape, dev: t, active: a.active || b.active}
	if sameShape(a.shape, shape) && sameShape(b.shape, shape) && (op == binAdd || op == binMul) {
		// The engine's own elementwise kernels (vectorised, no index arithmetic).
		va, _ := view(ta, shape)
		vb, _ := view(tb, shape)
		f := lb.lib.Add
		if op == binMul {
			f = lb.lib.Mul
		}
		err = lb.fwd(f(t, va, vb))
	} else {
		err = lb.fwd(lb.lib.BinaryND(t, op, ta, al, tb, bl, idx))
	}
	if err != nil {
		return nil, err
	}
	lb.onBackward(func() error {
		g := lb.gradOf(out)
		if g == nil {
			return nil
		}
		for k, v := range []*val{a, b} {
			if !v.active {
				continue
			}
			if sameShape(v.shape, shape) && (op == binAdd || op == binSub && k == 0) {
				if err := lb.accum(v, g); err != nil {
					return err
				}
				continue
			}
			full, err := lb.alloc(label+".grad", shape)
			if err != nil {
				return err
			}
			if err := lb.bwd(lb.lib.BinaryNDGrad(full, op, k, g, ta, al, tb, bl, idx)); err != nil {
				return err
			}
			r, err := c.reduceTo(full, shape, v.shape, label)
			if err != nil {
				return err
			}
			if err := lb.accum(v, r); err != nil {
				return err
			}
		}
		return nil
	})
	return out, nil
}

// reduceTo sums t (of shape from) over the axes along which target was broadcast to from:
// the gradient of a broadcast operand.
func (c *nodeCtx) reduceTo(t *kernels.Tensor, from, target []int, label string) (*kernels.Tensor, error) {
	if sameShape(from, target) {
		return t, nil
	}
	st := kernels.Contiguous(from).Strides
	var keep, keepSt, red, redSt []int
	for d, s := range from {
		j := d - (len(from) - len(target))
		if j >= 0 && target[j] == s {
			keep, keepSt = append(keep, s), append(keepSt, st[d])
		} else {
			red, redSt = append(red, s), append(redSt, st[d])
		}
	}
	if len(keep) == 0 {
		keep, keepSt = []int{1}, []int{0}
	}
	out, err := c.b.alloc(label+".grad.sum", target)
	if err != nil {
		return nil, err
	}
	return out, c.b.bwd(c.b.lib.ReduceND(out, t, kernels.Layout{Strides: keepSt}, keep, red, redSt, 1))
}

// unaryDef is an elementwise function: an engine Activation, or a MathFn of mathfn.wgsl.
type unaryDef struct {
	name  string
	isAct bool
	act   kernels.Activation
	fn    kernels.MathFn
}

var unaryOps = []unaryDef{
	{name: "Relu", isAct: true, act: kernels.ReLU},
	{name: "Sigmoid", isAct: true, act: kernels.Sigmoid},
	{name: "Tanh", isAct: true, act: kernels.Tanh},
	{name: "Softplus", isAct: true, act: kernels.Softplus},
	{name: "Neg", fn: kernels.MathNeg},
	{name: "Exp", fn: kernels.MathExp},
	{name: "Log", fn: kernels.MathLog},
	{name: "Sqrt", fn: kernels.MathSqrt},
	{name: "Reciprocal", fn: kernels.MathReciprocal},
	{name: "Abs", fn: kernels.MathAbs},
	{name: "Erf", fn: kernels.MathErf},
}

func unaryOp(u unaryDef) func(c *nodeCtx) error {
	return func(c *nodeCtx) error { return c.unary(u, 0) }
}

func leakyRelu(c *nodeCtx) error {
	alpha := c.attrFloat("alpha", 0.01)
	if float32(alpha) == float32(kernels.LeakySlope) {
		return c.unary(unaryDef{name: "LeakyRelu", isAct: true, act: kernels.LeakyReLU}, 0)
	}
	return c.unary(unaryDef{name: "LeakyRelu", fn: kernels.MathLeakyRelu}, alpha)
}

func elu(c *nodeCtx) error {
	return c.unary(unaryDef{name: "Elu", fn: kernels.MathElu}, c.attrFloat("alpha", 1))
}

// unary applies u elementwise (folded on the host for known inputs) and registers
// dx = dy ⊙ f'(x).
func (c *nodeCtx) unary(u unaryDef, alpha float64) error {
	x := c.in(0)
	f := func(v float64) float64 {
		if u.isAct {
			return kernels.RefActivate(u.act, v)
		}
		return kernels.RefMath(u.fn, v, alpha)
	}
	if x.host != nil {
		c.newHost(&hostTensor{dtype: x.host.dtype, shape: x.shape, data: kernels.RefUnary(f, x.host.data)})
		return nil
	}
	b := c.b
	tx, err := b.device(x)
	if err != nil {
		return err
	}
	out, err := c.newDev(0, x.shape)
	if err != nil {
		return err
	}
	if u.isAct {
		err = b.fwd(b.lib.Activate(out.dev, tx, u.act))
	} else {
		err = b.fwd(b.lib.Math(out.dev, tx, u.fn, float32(alpha)))
	}
	if err != nil {
		return err
	}
	b.onBackward(func() error {
		g := b.gradOf(out)
		if g == nil || !x.active {
			return nil
		}
		dx, err := b.alloc(out.name+".grad", x.shape)
		if err != nil {
			return err
		}
		if u.isAct {
			err = b.bwd(b.lib.ActivateBackward(dx, g, tx, u.act))
		} else {
			err = b.bwd(b.lib.MathBackward(dx, g, tx, u.fn, float32(alpha)))
		}
		if err != nil {
			return err
		}
		return b.accum(x, dx)
	})
	return nil
}

// alias defines output 0 as x seen with another shape (no copy) and passes the gradient
// straight back: Identity, Reshape, Flatten, Squeeze, Unsqueeze.
func (c *nodeCtx) alias(x *val, shape []int) error {
	if numel(shape) != numel(x.shape) {
		return c.errf("cannot view %v (%d elements) as %v (%d elements)", x.shape, numel(x.shape), shape, numel(shape))
	}
	if x.host != nil {
		c.newHost(&hostTensor{dtype: x.host.dtype, shape: shape, data: x.host.data})
		return nil
	}
	t, err := view(x.dev, shape)
	if err != nil {
		return err
	}
	out := &val{shape: append([]int(nil), shape...), dev: t, active: x.active}
	c.set(0, out)
	b := c.b
	b.onBackward(func() error { return b.accum(x, b.gradOf(out)) })
	return nil
}

func identity(c *nodeCtx) error { return c.alias(c.in(0), c.in(0).shape) }

// dropout is the identity of inference; the mask output and training mode are refused.
func dropout(c *nodeCtx) error {
	if err := c.onlyFirstOutput(); err != nil {
		return err
	}
	if tm := c.in(2); tm != nil {
		if tm.host == nil || len(tm.host.data) != 1 || tm.host.data[0] != 0 {
			return c.errf("training_mode must be a constant false (osds runs models for inference)")
		}
	}
	return c.alias(c.in(0), c.in(0).shape)
}
