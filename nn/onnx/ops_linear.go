package onnx

import (
	"osds/kernels"
)

// Products on the engine's Matmul: Gemm (nn.Linear) and MatMul.

// scaledHost returns α·h as a new build-time value (Gemm's alpha and beta are folded into
// its constant operands).
func scaledHost(v *val, alpha float64) *val {
	if alpha == 1 {
		return v
	}
	d := make([]float64, len(v.host.data))
	for i, x := range v.host.data {
		d[i] = alpha * x
	}
	return &val{name: v.name + ".scaled", shape: v.shape, host: &hostTensor{dtype: v.host.dtype, shape: v.shape, data: d}}
}

// gemm is Y = α·op(A)·op(B) + β·C, op(X) = X or Xᵀ (transA, transB); C broadcasts to Y.
func gemm(c *nodeCtx) error {
	a, bm, cv := c.in(0), c.in(1), c.in(2)
	ta, tb := c.attrInt("transA", 0) != 0, c.attrInt("transB", 0) != 0
	alpha, beta := c.attrFloat("alpha", 1), c.attrFloat("beta", 1)
	if len(a.shape) != 2 || len(bm.shape) != 2 {
		return c.errf("A is %v and B is %v; Gemm needs two matrices", a.shape, bm.shape)
	}
	m, k := a.shape[0], a.shape[1]
	if ta {
		m, k = k, m
	}
	kb, n := bm.shape[0], bm.shape[1]
	if tb {
		kb, n = n, kb
	}
	if k != kb {
		return c.errf("op(A) is %d×%d but op(B) is %d×%d", m, k, kb, n)
	}
	switch {
	case alpha == 1:
	case bm.host != nil:
		bm = scaledHost(bm, alpha)
	case a.host != nil:
		a = scaledHost(a, alpha)
	default:
		return c.errf("alpha = %v with both operands computed at run time is not supported", alpha)
	}
	if cv != nil && beta != 1 {
		if cv.host == nil {
			return c.errf("beta = %v with C computed at run time is not supported", beta)
		}
		cv = scaledHost(cv, beta)
	}
	if beta == 0 {
		cv = nil
	}
	return c.product(a, bm, cv, m, n, ta, tb, []int{m, n})
}

// product records Y = op(A)·op(B) (+ C) with A, B viewed as matrices (M×K or K×M, K×N or
// N×K), Y [M, N] viewed with the shape outShape, and its VJP for the active operands.
// A C of N elements is the product's fused bias; any other C is a broadcast Add.
func (c *nodeCtx) product(a, bm, cv *val, m, n int, ta, tb bool, outShape []int) error {
	b := c.b
	devA, err := b.device(a)
	if err != nil {
		return err
	}
	devB, err := b.device(bm)
	if err != nil {
		return err
	}
	ra, ca := matDims(a.shape, ta, m)
	rb, cb := matDims(bm.shape, !tb, n)
	matA, err := devA.Reshaped(ra, ca)
	if err != nil {
		return err
	}
	matB, err := devB.Reshaped(rb, cb)
	if err != nil {
		return err
	}
	bias := cv != nil && numel(cv.shape) == n && len(cv.shape) <= 2 && (len(cv.shape) < 2 || cv.shape[0] == 1) && !cv.active
	label := c.outName(0)
	if cv != nil && !bias {
		label += ".product"
	}
	t, err := b.alloc(label, []int{m, n})
	if err != nil {
		return err
	}
	opts := kernels.MatmulOptions{TransA: ta, TransB: tb}
	if bias {
		if opts.Bias, err = b.device(cv); err != nil {
			return err
		}
	}
	if err := b.fwd(b.lib.Matmul(t, matA, matB, opts)); err != nil {
		return err
	}
	prod := &val{shape: []int{m, n}, dev: t, active: a.active || bm.active}
	// The product's VJP is registered before the bias Add's and the view's, so that it
	// runs after them (backward steps run in reverse).
	b.onBackward(func() error {
		g := b.gradOf(prod)
		if g == nil {
			return nil
		}
		g, err := g.Reshaped(m, n)
		if err != nil {
			return err
		}
		if a.active {
			// d op(A) = dY·op(B)ᵀ; dA is its transpose when transA.
			dA, err := b.alloc(label+".dA", a.shape)
			if err != nil {
				return err
			}
			mat, _ := dA.Reshaped(ra, ca)
			var o kernels.MatmulOptions
			x, y := g, matB
			if !ta {
				o = kernels.MatmulOptions{TransB: !tb}
			} else {
				x, y = matB, g
				o = kernels.MatmulOptions{TransA: tb, TransB: true}
			}
			if err := b.bwd(b.lib.Matmul(mat, x, y, o)); err != nil {
				return err
			}
			if err := b.accum(a, dA); err != nil {
				return err
			}
		}
		if bm.active {
			// d op(B) = op(A)ᵀ·dY; dB is its transpose when transB.
			dB, err := b.alloc(label+".dB", bm.shape)
			if err != nil {
				return err
			}
			mat, _ := dB.Reshaped(rb, cb)
			var o kernels.MatmulOptions
			x, y := matA, g
			if !tb {
				o = kernels.MatmulOptions{TransA: !ta}
			} else {
				x, y = g, matA
				o = kernels.MatmulOptions{TransA: true, TransB: ta}
			}
			if err := b.bwd(b.lib.Matmul(mat, x, y, o)); err != nil {
				return err
			}
			if err := b.accum(bm, dB); err != nil {
				return err
			}
		}
		return nil
	})
	out := prod
	if cv != nil && !bias {
		if out, err = c.binary(binAdd, prod, cv, c.outName(0)); err != nil {
			return err
		}
	}
	if !sameShape(outShape, out.shape) {
		v, err := view(out.dev, outShape)
		if err != nil {
			return err
		}
		res := &val{shape: outShape, dev: v, active: out.active}
		inner := out
		b.onBackward(func() error { return b.accum(inner, b.gradOf(res)) })
		out = res
	}
	c.set(0, out)
	return nil
}

// matDims returns the matrix view (rows, cols) of an operand whose untransposed form has
// `outer` as its first dimension (transposed: its last).
func matDims(shape []int, trans bool, outer int) (int, int) {
	total := numel(shape)
	if trans {
		return total / outer, outer
	}
	return outer, total / outer
}

// matMul is NumPy's matmul for a left operand of any rank against a matrix (or vector):
// A [..., M, K] · B [K, N] is one product of A as a [(…)·M, K] matrix. A batched right
// operand is not supported.
func matMul(c *nodeCtx) error {
	a, bm := c.in(0), c.in(1)
	if len(a.shape) == 0 || len(bm.shape) == 0 {
		return c.errf("MatMul of a scalar (shapes %v, %v)", a.shape, bm.shape)
	}
	if len(bm.shape) > 2 {
		return c.errf("the right operand is %v: batched MatMul (rank > 2 on the right) is not supported", bm.shape)
	}
	k := a.shape[len(a.shape)-1]
	kb, n := bm.shape[0], 1
	if len(bm.shape) == 2 {
		n = bm.shape[1]
	}
	if k != kb {
		return c.errf("A is %v and B is %v: inner dimensions %d and %d differ", a.shape, bm.shape, k, kb)
	}
	rows := numel(a.shape) / k
	out := append([]int(nil), a.shape[:len(a.shape)-1]...)
	if len(bm.shape) == 2 {
		out = append(out, n)
	}
	if a.host != nil && bm.host != nil {
		d := kernels.RefMatmul(a.host.data, rows, k, bm.host.data, k, n, false, false, nil, nil, kernels.Identity)
		c.newHost(&hostTensor{dtype: a.host.dtype, shape: out, data: d})
		return nil
	}
	return c.product(a, bm, nil, rows, n, false, false, out)
}
