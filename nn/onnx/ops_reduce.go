package onnx

import (
	"math"

	"osds/kernels"
)

// BatchNormalization (inference), Softmax/LogSoftmax, ReduceMean/ReduceSum and
// GlobalAveragePool.

// batchNorm folds inference batch normalisation into a per-channel affine map,
// y = x·a + c with a = scale/√(var + ε), c = B − mean·a, applied as two broadcast
// operations (whose VJPs give dx = dy·a).
func batchNorm(c *nodeCtx) error {
	if err := c.onlyFirstOutput(); err != nil {
		return err
	}
	if c.attrInt("training_mode", 0) != 0 {
		return c.errf("training_mode = 1: osds runs batch normalisation in inference mode (export the model in eval())")
	}
	x := c.in(0)
	if len(x.shape) < 2 {
		return c.errf("input %v has no channel axis", x.shape)
	}
	ch := x.shape[1]
	var ps [4]*hostTensor
	for i := range ps {
		h, err := c.hostIn(i+1, []string{"scale", "B", "input_mean", "input_var"}[i])
		if err != nil {
			return err
		}
		if len(h.data) != ch {
			return c.errf("input %d has %d values for %d channels", i+1, len(h.data), ch)
		}
		ps[i] = h
	}
	eps := c.attrFloat("epsilon", 1e-5)
	// Channel parameters shaped [C, 1, ..., 1] broadcast against [B, C, ...].
	shape := make([]int, len(x.shape)-1)
	for i := range shape {
		shape[i] = 1
	}
	shape[0] = ch
	a := &hostTensor{dtype: dtFloat, shape: shape, data: make([]float64, ch)}
	sh := &hostTensor{dtype: dtFloat, shape: shape, data: make([]float64, ch)}
	for i := 0; i < ch; i++ {
		a.data[i] = ps[0].data[i] / math.Sqrt(ps[3].data[i]+eps)
		sh.data[i] = ps[1].data[i] - ps[2].data[i]*a.data[i]
	}
	name := c.outName(0)
	scaled, err := c.binary(binMul, x, &val{name: name + ".bn.scale", shape: shape, host: a}, name+".bn")
	if err != nil {
		return err
	}
	y, err := c.binary(binAdd, scaled, &val{name: name + ".bn.shift", shape: shape, host: sh}, name)
	if err != nil {
		return err
	}
	c.set(0, y)
	return nil
}

// softmaxOp is Softmax (log: LogSoftmax). From opset 13 it runs along one axis (default
// −1); before, on the input coerced to 2-D at axis (default 1): all axes from axis on.
func softmaxOp(log bool) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		x := c.in(0)
		r := len(x.shape)
		def := -1
		if c.b.opset < 13 {
			def = 1
		}
		ax, err := c.axis(c.attrInt("axis", def), r)
		if err != nil {
			return err
		}
		g := kernels.SoftmaxGeom{Outer: numel(x.shape[:ax]), N: x.shape[ax], Inner: numel(x.shape[ax+1:])}
		if c.b.opset < 13 {
			g = kernels.SoftmaxGeom{Outer: numel(x.shape[:ax]), N: numel(x.shape[ax:]), Inner: 1}
		}
		if r == 0 {
			g = kernels.SoftmaxGeom{Outer: 1, N: 1, Inner: 1}
		}
		if x.host != nil {
			c.newHost(&hostTensor{dtype: dtFloat, shape: x.shape, data: kernels.RefSoftmax(x.host.data, g, log)})
			return nil
		}
		b := c.b
		out, err := c.newDev(0, x.shape)
		if err != nil {
			return err
		}
		if err := b.fwd(b.lib.Softmax(out.dev, x.dev, g, log)); err != nil {
			return err
		}
		b.onBackward(func() error {
			gy := b.gradOf(out)
			if gy == nil || !x.active {
				return nil
			}
			dx, err := b.alloc(out.name+".grad", x.shape)
			if err != nil {
				return err
			}
			if err := b.bwd(b.lib.SoftmaxBackward(dx, gy, out.dev, g, log)); err != nil {
				return err
			}
			return b.accum(x, dx)
		})
		return nil
	}
}

// reduceOp is ReduceMean (mean) or ReduceSum over axes (attribute, or input 1 from the
// opset that made it one), keepdims (default 1), noop_with_empty_axes (default 0).
func reduceOp(mean bool) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		x := c.in(0)
		axes, given, err := c.axesInput(1)
		if err != nil {
			return err
		}
		if given && len(axes) == 0 || !given {
			if c.attrInt("noop_with_empty_axes", 0) != 0 {
				return c.alias(x, x.shape)
			}
			axes = nil
			for i := range x.shape {
				axes = append(axes, i)
			}
		}
		return c.reduceAxes(x, axes, c.attrInt("keepdims", 1) != 0, mean)
	}
}

// globalAveragePool is the mean over every axis after the channel axis, kept.
func globalAveragePool(c *nodeCtx) error {
	x := c.in(0)
	if len(x.shape) < 3 {
		return c.errf("input %v has no spatial axes", x.shape)
	}
	var axes []int
	for i := 2; i < len(x.shape); i++ {
		axes = append(axes, i)
	}
	return c.reduceAxes(x, axes, true, true)
}

// reduceAxes sums (mean: averages) x over axes and registers the VJP, a broadcast copy of
// the output gradient (scaled by 1/count for the mean) back over the reduced axes.
func (c *nodeCtx) reduceAxes(x *val, axes []int, keepdims, mean bool) error {
	r := len(x.shape)
	red := make([]bool, r)
	for _, a := range axes {
		ax, err := c.axis(a, r)
		if err != nil {
			return err
		}
		red[ax] = true
	}
	st := kernels.Contiguous(x.shape).Strides
	var out, keep, keepSt, rshape, rst []int
	count := 1
	for d, s := range x.shape {
		if red[d] {
			rshape, rst = append(rshape, s), append(rst, st[d])
			count *= s
			if keepdims {
				out = append(out, 1)
			}
			continue
		}
		keep, keepSt = append(keep, s), append(keepSt, st[d])
		out = append(out, s)
	}
	if len(keep) == 0 {
		keep, keepSt = []int{1}, []int{0}
	}
	alpha := 1.0
	if mean {
		alpha = 1 / float64(count)
	}
	if x.host != nil {
		d := kernels.RefReduceND(x.host.data, kernels.Layout{Strides: keepSt}, keep, rshape, rst, alpha)
		c.newHost(&hostTensor{dtype: x.host.dtype, shape: out, data: d})
		return nil
	}
	b := c.b
	res, err := c.newDev(0, out)
	if err != nil {
		return err
	}
	if err := b.fwd(b.lib.ReduceND(res.dev, x.dev, kernels.Layout{Strides: keepSt}, keep, rshape, rst, float32(alpha))); err != nil {
		return err
	}
	b.onBackward(func() error {
		gy := b.gradOf(res)
		if gy == nil || !x.active {
			return nil
		}
		dx, err := b.alloc(res.name+".grad", x.shape)
		if err != nil {
			return err
		}
		// Broadcast the output gradient over x's index space: stride 0 on reduced axes.
		gst := make([]int, r)
		kst := kernels.Contiguous(keep).Strides
		k := 0
		for d := range x.shape {
			if !red[d] {
				gst[d] = kst[k]
				k++
			}
		}
		if err := b.bwd(b.lib.CopyND(dx, kernels.Contiguous(x.shape), gy, kernels.Layout{Strides: gst}, x.shape, float32(alpha))); err != nil {
			return err
		}
		return b.accum(x, dx)
	})
	return nil
}
