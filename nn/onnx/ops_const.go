package onnx

import (
	"math"
)

// Operators of build-time values: Constant, and the shape arithmetic torch.onnx.export
// writes around Reshape when the batch axis is dynamic (Shape → Gather → Unsqueeze →
// Concat → Reshape). They run on the host while the graph is built; Gather and Cast are
// supported only there.

func constant(c *nodeCtx) error {
	for _, a := range c.n.attrs {
		switch a.name {
		case "value":
			if a.t == nil {
				return c.errf("attribute value holds no tensor")
			}
			h, err := decodeTensor(a.t, "", "Constant value")
			if err != nil {
				return c.errf("%v", err)
			}
			c.newHost(h)
		case "value_float":
			c.newHost(&hostTensor{dtype: dtFloat, data: []float64{float64(a.f)}})
		case "value_int":
			c.newHost(&hostTensor{dtype: dtInt64, data: []float64{float64(a.i)}})
		case "value_floats":
			d := make([]float64, len(a.floats))
			for i, f := range a.floats {
				d[i] = float64(f)
			}
			c.newHost(&hostTensor{dtype: dtFloat, shape: []int{len(d)}, data: d})
		case "value_ints":
			d := make([]float64, len(a.ints))
			for i, v := range a.ints {
				d[i] = float64(v)
			}
			c.newHost(&hostTensor{dtype: dtInt64, shape: []int{len(d)}, data: d})
		default:
			return c.errf("attribute %q is not supported (value, value_float(s), value_int(s) are)", a.name)
		}
		return nil
	}
	return c.errf("no value attribute")
}

func constantOfShape(c *nodeCtx) error {
	h, err := c.hostIn(0, "shape")
	if err != nil {
		return err
	}
	shape := h.ints()
	if err := checkSize(shape); err != nil {
		return c.errf("%v", err)
	}
	out := &hostTensor{dtype: dtFloat, shape: shape, data: make([]float64, numel(shape))}
	if a := c.attr("value"); a != nil && a.t != nil {
		v, err := decodeTensor(a.t, "", "ConstantOfShape value")
		if err != nil {
			return c.errf("%v", err)
		}
		if len(v.data) != 1 {
			return c.errf("value has %d elements, want 1", len(v.data))
		}
		out.dtype = v.dtype
		for i := range out.data {
			out.data[i] = v.data[0]
		}
	}
	c.newHost(out)
	return nil
}

// shapeOp is Shape, with the start and end attributes of opset 15.
func shapeOp(c *nodeCtx) error {
	x := c.in(0)
	r := len(x.shape)
	start, end := c.attrInt("start", 0), c.attrInt("end", r)
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start, end = min(max(start, 0), r), min(max(end, 0), r)
	d := []float64{}
	for _, s := range x.shape[start:max(start, end)] {
		d = append(d, float64(s))
	}
	c.newHost(&hostTensor{dtype: dtInt64, shape: []int{len(d)}, data: d})
	return nil
}

func gather(c *nodeCtx) error {
	data, idx := c.in(0), c.in(1)
	if data.host == nil || idx.host == nil {
		return c.errf("Gather of values computed at run time is not supported (only shape arithmetic on constants)")
	}
	r := len(data.shape)
	ax, err := c.axis(c.attrInt("axis", 0), r)
	if err != nil {
		return err
	}
	if r == 0 {
		return c.errf("Gather from a scalar")
	}
	outer, dim, inner := numel(data.shape[:ax]), data.shape[ax], numel(data.shape[ax+1:])
	shape := append(append(append([]int(nil), data.shape[:ax]...), idx.shape...), data.shape[ax+1:]...)
	if len(shape) > 0 {
		if err := checkSize(shape); err != nil {
			return c.errf("%v", err)
		}
	}
	ids := idx.host.ints()
	out := make([]float64, 0, numel(shape))
	for o := 0; o < outer; o++ {
		for _, k := range ids {
			if k < 0 {
				k += dim
			}
			if k < 0 || k >= dim {
				return c.errf("index %d out of range for axis of size %d", k, dim)
			}
			out = append(out, data.host.data[(o*dim+k)*inner:(o*dim+k+1)*inner]...)
		}
	}
	c.newHost(&hostTensor{dtype: data.host.dtype, shape: shape, data: out})
	return nil
}

func cast(c *nodeCtx) error {
	x := c.in(0)
	to := int64(c.attrInt("to", 0))
	if x.host == nil {
		if to == dtFloat {
			return c.alias(x, x.shape)
		}
		return c.errf("Cast of a run-time value to %s is not supported (float32 only)", dtypeName(to))
	}
	if dtypeSize(to) == 0 {
		return c.errf("Cast to %s is not supported", dtypeName(to))
	}
	d := make([]float64, len(x.host.data))
	for i, v := range x.host.data {
		switch {
		case to == dtBool:
			if v != 0 {
				d[i] = 1
			}
		case isFloatType(to):
			d[i] = v
			if to == dtFloat {
				d[i] = float64(float32(v))
			}
		default:
			d[i] = math.Trunc(v)
		}
	}
	c.newHost(&hostTensor{dtype: to, shape: x.shape, data: d})
	return nil
}
