package onnx

import (
	"osds/kernels"
)

// Shape and data-movement operators. Reshape, Flatten, Squeeze and Unsqueeze are views
// (no dispatch); Transpose, Slice, Concat and Pad are strided copies (kernels.CopyND),
// whose VJPs are the inverse copies.

// reshape follows ONNX: 0 copies the input's dimension (unless allowzero), −1 is inferred.
func reshape(c *nodeCtx) error {
	x := c.in(0)
	h, err := c.hostIn(1, "shape")
	if err != nil {
		return err
	}
	spec := h.ints()
	allowZero := c.attrInt("allowzero", 0) != 0
	out := make([]int, len(spec))
	infer, known := -1, 1
	for i, d := range spec {
		switch {
		case d == 0 && !allowZero:
			if i >= len(x.shape) {
				return c.errf("shape %v copies dimension %d of the input %v, which has none", spec, i, x.shape)
			}
			out[i] = x.shape[i]
		case d == -1:
			if infer >= 0 {
				return c.errf("shape %v has two −1 dimensions", spec)
			}
			infer = i
			continue
		case d < 1:
			return c.errf("shape %v has dimension %d", spec, d)
		default:
			out[i] = d
		}
		known *= out[i]
	}
	if infer >= 0 {
		if known == 0 || numel(x.shape)%known != 0 {
			return c.errf("cannot reshape %v to %v", x.shape, spec)
		}
		out[infer] = numel(x.shape) / known
	}
	return c.alias(x, out)
}

func flatten(c *nodeCtx) error {
	x := c.in(0)
	r := len(x.shape)
	ax := c.attrInt("axis", 1)
	if ax < -r || ax > r {
		return c.errf("axis %d is out of range for rank %d", ax, r)
	}
	if ax < 0 {
		ax += r
	}
	return c.alias(x, []int{numel(x.shape[:ax]), numel(x.shape[ax:])})
}

func squeeze(c *nodeCtx) error {
	x := c.in(0)
	axes, given, err := c.axesInput(1)
	if err != nil {
		return err
	}
	drop := make([]bool, len(x.shape))
	for _, a := range axes {
		ax, err := c.axis(a, len(x.shape))
		if err != nil {
			return err
		}
		if x.shape[ax] != 1 {
			return c.errf("cannot squeeze axis %d of %v (size %d)", a, x.shape, x.shape[ax])
		}
		drop[ax] = true
	}
	var out []int
	for d, s := range x.shape {
		if !(drop[d] || !given && s == 1) {
			out = append(out, s)
		}
	}
	return c.alias(x, out)
}

func unsqueeze(c *nodeCtx) error {
	x := c.in(0)
	axes, _, err := c.axesInput(1)
	if err != nil {
		return err
	}
	r := len(x.shape) + len(axes)
	ins := make([]bool, r)
	for _, a := range axes {
		ax, err := c.axis(a, r)
		if err != nil {
			return err
		}
		if ins[ax] {
			return c.errf("axis %d given twice", a)
		}
		ins[ax] = true
	}
	out := make([]int, 0, r)
	k := 0
	for d := 0; d < r; d++ {
		if ins[d] {
			out = append(out, 1)
		} else {
			out = append(out, x.shape[k])
			k++
		}
	}
	return c.alias(x, out)
}

// copyOp defines output 0 as a copy of x read through the layout src over the index space
// shape (contiguous output), with the VJP writing the gradient back through the same
// layout (after zeroing, when the copy does not read every element of x).
func (c *nodeCtx) copyOp(x *val, src kernels.Layout, shape []int, covers bool) error {
	if x.host != nil {
		d := kernels.RefCopyND(make([]float64, numel(shape)), kernels.Contiguous(devShape(shape)), x.host.data, src, devShape(shape), 1)
		c.newHost(&hostTensor{dtype: x.host.dtype, shape: shape, data: d})
		return nil
	}
	b := c.b
	out, err := c.newDev(0, shape)
	if err != nil {
		return err
	}
	idx := devShape(shape)
	if err := b.fwd(b.lib.CopyND(out.dev, kernels.Contiguous(idx), x.dev, src, idx, 1)); err != nil {
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
		if !covers {
			if err := b.bwd(b.lib.FillND(dx, 0)); err != nil {
				return err
			}
		}
		if err := b.bwd(b.lib.CopyND(dx, src, g, kernels.Contiguous(idx), idx, 1)); err != nil {
			return err
		}
		return b.accum(x, dx)
	})
	return nil
}

func transpose(c *nodeCtx) error {
	x := c.in(0)
	r := len(x.shape)
	perm := c.attrInts("perm", nil)
	if perm == nil {
		for d := r - 1; d >= 0; d-- {
			perm = append(perm, d)
		}
	}
	if len(perm) != r {
		return c.errf("perm %v for rank %d", perm, r)
	}
	if r == 0 {
		return c.alias(x, x.shape)
	}
	st := kernels.Contiguous(x.shape).Strides
	seen := make([]bool, r)
	shape, lst := make([]int, r), make([]int, r)
	for d, p := range perm {
		if p < 0 || p >= r || seen[p] {
			return c.errf("perm %v is not a permutation of 0..%d", perm, r-1)
		}
		seen[p] = true
		shape[d], lst[d] = x.shape[p], st[p]
	}
	return c.copyOp(x, kernels.Layout{Strides: lst}, shape, true)
}

// slice is ONNX Slice (opset ≥ 10: starts, ends, axes, steps as inputs), with its
// clamping of out-of-range starts and ends.
func slice(c *nodeCtx) error {
	x := c.in(0)
	r := len(x.shape)
	var hs [4]*hostTensor
	for i := range hs {
		h, err := c.hostIn(i+1, []string{"starts", "ends", "axes", "steps"}[i])
		if err != nil {
			return err
		}
		hs[i] = h
	}
	starts, ends := hs[0].ints(), hs[1].ints()
	if len(starts) != len(ends) {
		return c.errf("%d starts and %d ends", len(starts), len(ends))
	}
	axes := make([]int, len(starts))
	steps := make([]int, len(starts))
	for i := range axes {
		axes[i], steps[i] = i, 1
	}
	if hs[2] != nil {
		axes = hs[2].ints()
	}
	if hs[3] != nil {
		steps = hs[3].ints()
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return c.errf("%d starts, %d axes, %d steps", len(starts), len(axes), len(steps))
	}
	st := kernels.Contiguous(x.shape).Strides
	shape := append([]int(nil), x.shape...)
	lay := kernels.Layout{Strides: append([]int(nil), st...)}
	seen := make([]bool, r)
	for i, a := range axes {
		ax, err := c.axis(a, r)
		if err != nil {
			return err
		}
		if seen[ax] {
			return c.errf("axis %d sliced twice", a)
		}
		seen[ax] = true
		dim, s, e, step := x.shape[ax], starts[i], ends[i], steps[i]
		if step == 0 {
			return c.errf("step 0 on axis %d", a)
		}
		if s < 0 {
			s += dim
		}
		if e < 0 {
			e += dim
		}
		var n int
		if step > 0 {
			s, e = min(max(s, 0), dim), min(max(e, 0), dim)
			n = (e - s + step - 1) / step
		} else {
			s, e = min(max(s, 0), dim-1), min(max(e, -1), dim-1)
			n = (s - e - step - 1) / -step
		}
		if n < 1 {
			return c.errf("the slice of axis %d (%d:%d:%d of %d) is empty; empty tensors are not supported", a, starts[i], ends[i], step, dim)
		}
		shape[ax] = n
		lay.Offset += s * st[ax]
		lay.Strides[ax] = step * st[ax]
	}
	return c.copyOp(x, lay, shape, sameShape(shape, x.shape) && allPositive(steps))
}

func allPositive(xs []int) bool {
	for _, x := range xs {
		if x < 0 {
			return false
		}
	}
	return true
}

func concat(c *nodeCtx) error {
	if c.attr("axis") == nil {
		return c.errf("the axis attribute is required")
	}
	first := c.in(0)
	r := len(first.shape)
	ax, err := c.axis(c.attrInt("axis", 0), r)
	if err != nil {
		return err
	}
	if r == 0 {
		return c.errf("cannot concatenate scalars")
	}
	shape := append([]int(nil), first.shape...)
	shape[ax] = 0
	for i, v := range c.ins {
		if v == nil {
			return c.errf("input %d is absent", i)
		}
		if len(v.shape) != r {
			return c.errf("input %d has shape %v, input 0 %v", i, v.shape, first.shape)
		}
		for d := range v.shape {
			if d != ax && v.shape[d] != first.shape[d] {
				return c.errf("input %d has shape %v, input 0 %v (they may differ on axis %d only)", i, v.shape, first.shape, ax)
			}
		}
		shape[ax] += v.shape[ax]
	}
	if err := checkSize(shape); err != nil {
		return c.errf("%v", err)
	}
	ost := kernels.Contiguous(shape).Strides
	slab := func(off int) kernels.Layout { return kernels.Layout{Offset: off * ost[ax], Strides: ost} }
	if c.allHost() {
		data := make([]float64, numel(shape))
		off := 0
		for _, v := range c.ins {
			data = kernels.RefCopyND(data, slab(off), v.host.data, kernels.Contiguous(v.shape), v.shape, 1)
			off += v.shape[ax]
		}
		c.newHost(&hostTensor{dtype: first.host.dtype, shape: shape, data: data})
		return nil
	}
	b := c.b
	out, err := c.newDev(0, shape)
	if err != nil {
		return err
	}
	off := 0
	offs := make([]int, len(c.ins))
	devs := make([]*kernels.Tensor, len(c.ins))
	for i, v := range c.ins {
		if devs[i], err = b.device(v); err != nil {
			return err
		}
		offs[i] = off
		if err := b.fwd(b.lib.CopyND(out.dev, slab(off), devs[i], kernels.Contiguous(v.shape), v.shape, 1)); err != nil {
			return err
		}
		off += v.shape[ax]
	}
	ins := c.ins
	b.onBackward(func() error {
		g := b.gradOf(out)
		if g == nil {
			return nil
		}
		for i, v := range ins {
			if !v.active {
				continue
			}
			dx, err := b.alloc(out.name+".grad", v.shape)
			if err != nil {
				return err
			}
			if err := b.bwd(b.lib.CopyND(dx, kernels.Contiguous(v.shape), g, slab(offs[i]), v.shape, 1)); err != nil {
				return err
			}
			if err := b.accum(v, dx); err != nil {
				return err
			}
		}
		return nil
	})
	return nil
}

// pad is Pad in constant mode (pads as input from opset 11, as attribute before).
func pad(c *nodeCtx) error {
	x := c.in(0)
	if m := c.attrString("mode", "constant"); m != "constant" {
		return c.errf("mode %q is not supported (constant only)", m)
	}
	pads := c.attrInts("pads", nil)
	value := c.attrFloat("value", 0)
	if h, err := c.hostIn(1, "pads"); err != nil {
		return err
	} else if h != nil {
		pads = h.ints()
	}
	if h, err := c.hostIn(2, "constant_value"); err != nil {
		return err
	} else if h != nil && len(h.data) > 0 {
		value = h.data[0]
	}
	if c.in(3) != nil {
		return c.errf("the axes input is not supported")
	}
	r := len(x.shape)
	if len(pads) != 2*r {
		return c.errf("pads %v for rank %d", pads, r)
	}
	shape := make([]int, r)
	for d := range shape {
		if pads[d] < 0 || pads[d+r] < 0 {
			return c.errf("negative pads %v (cropping) are not supported", pads)
		}
		shape[d] = x.shape[d] + pads[d] + pads[d+r]
	}
	if err := checkSize(shape); err != nil {
		return c.errf("%v", err)
	}
	ost := kernels.Contiguous(shape).Strides
	dst := kernels.Layout{Strides: ost}
	for d := range shape {
		dst.Offset += pads[d] * ost[d]
	}
	if x.host != nil {
		data := make([]float64, numel(shape))
		for i := range data {
			data[i] = value
		}
		data = kernels.RefCopyND(data, dst, x.host.data, kernels.Contiguous(x.shape), x.shape, 1)
		c.newHost(&hostTensor{dtype: x.host.dtype, shape: shape, data: data})
		return nil
	}
	b := c.b
	out, err := c.newDev(0, shape)
	if err != nil {
		return err
	}
	if err := b.fwd(b.lib.FillND(out.dev, float32(value))); err != nil {
		return err
	}
	if err := b.fwd(b.lib.CopyND(out.dev, dst, x.dev, kernels.Contiguous(x.shape), x.shape, 1)); err != nil {
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
		if err := b.bwd(b.lib.CopyND(dx, kernels.Contiguous(x.shape), g, dst, x.shape, 1)); err != nil {
			return err
		}
		return b.accum(x, dx)
	})
	return nil
}
