package onnx

import (
	"errors"
	"fmt"
)

// nodeCtx is the node being built: its inputs, attributes and error context.
type nodeCtx struct {
	b    *builder
	n    *nodeProto
	desc string
	ins  []*val
}

// nodeError is an error already prefixed with the node; wrap leaves it alone.
type nodeError struct{ msg string }

func (e *nodeError) Error() string { return e.msg }

// errf returns an error naming the node, its operator and the opset.
func (c *nodeCtx) errf(format string, args ...any) error {
	return &nodeError{fmt.Sprintf("%s (op %s, opset %d): %s", c.desc, c.n.opType, c.b.opset, fmt.Sprintf(format, args...))}
}

func (c *nodeCtx) wrap(err error) error {
	var ne *nodeError
	if errors.As(err, &ne) {
		return err
	}
	return c.errf("%v", err)
}

// in returns input i, or nil when it is absent (optional inputs).
func (c *nodeCtx) in(i int) *val {
	if i < len(c.ins) {
		return c.ins[i]
	}
	return nil
}

// active reports whether any input depends on the graph input.
func (c *nodeCtx) active() bool {
	for _, v := range c.ins {
		if v != nil && v.active {
			return true
		}
	}
	return false
}

// allHost reports whether every present input is known at build time (the node folds).
func (c *nodeCtx) allHost() bool {
	for _, v := range c.ins {
		if v != nil && v.host == nil {
			return false
		}
	}
	return true
}

// hostIn returns input i's build-time value, or an error saying it must be constant
// (shape, axes and pads inputs; weights of ops that take no gradient through them).
func (c *nodeCtx) hostIn(i int, what string) (*hostTensor, error) {
	v := c.in(i)
	if v == nil {
		return nil, nil
	}
	if v.host == nil {
		return nil, c.errf("input %d (%s, %q) is computed at run time; osds needs it constant at build time", i, what, v.name)
	}
	return v.host, nil
}

// set defines output i.
func (c *nodeCtx) set(i int, v *val) {
	if i < len(c.n.outputs) && c.n.outputs[i] != "" {
		v.name = c.n.outputs[i]
		c.b.vals[v.name] = v
	}
}

// outName is the name of output i (for tensor labels).
func (c *nodeCtx) outName(i int) string {
	if i < len(c.n.outputs) {
		return c.n.outputs[i]
	}
	return c.desc
}

// onlyFirstOutput rejects nodes that use optional extra outputs osds does not compute.
func (c *nodeCtx) onlyFirstOutput() error {
	for i, o := range c.n.outputs[1:] {
		if o != "" {
			return c.errf("output %d (%q) is not supported (only the first output is computed)", i+1, o)
		}
	}
	return nil
}

// newHost defines output 0 as a build-time value.
func (c *nodeCtx) newHost(h *hostTensor) {
	c.set(0, &val{shape: h.shape, host: h})
}

// newDev allocates output i on the device with the given shape.
func (c *nodeCtx) newDev(i int, shape []int) (*val, error) {
	t, err := c.b.alloc(c.outName(i), shape)
	if err != nil {
		return nil, err
	}
	v := &val{shape: append([]int(nil), shape...), dev: t, active: c.active()}
	c.set(i, v)
	return v, nil
}

// attr returns the attribute named name, or nil.
func (c *nodeCtx) attr(name string) *attribute {
	for _, a := range c.n.attrs {
		if a.name == name {
			return a
		}
	}
	return nil
}

func (c *nodeCtx) attrInt(name string, def int) int {
	if a := c.attr(name); a != nil {
		return int(a.i)
	}
	return def
}

func (c *nodeCtx) attrFloat(name string, def float64) float64 {
	if a := c.attr(name); a != nil {
		return float64(a.f)
	}
	return def
}

func (c *nodeCtx) attrString(name, def string) string {
	if a := c.attr(name); a != nil {
		return string(a.s)
	}
	return def
}

// attrInts returns a list attribute, or def when absent.
func (c *nodeCtx) attrInts(name string, def []int) []int {
	a := c.attr(name)
	if a == nil {
		return def
	}
	out := make([]int, len(a.ints))
	for i, v := range a.ints {
		out[i] = int(v)
	}
	return out
}

// axis normalises a possibly negative axis for a rank.
func (c *nodeCtx) axis(ax, rank int) (int, error) {
	if ax < -rank || ax >= max(rank, 1) && !(rank == 0 && ax == 0) {
		return 0, c.errf("axis %d is out of range for rank %d", ax, rank)
	}
	if ax < 0 {
		ax += rank
	}
	return ax, nil
}

// axesInput returns the axes of Squeeze/Unsqueeze/Reduce*: the attribute before the
// opset that moved them to an input, the (constant) input from it on; nil if absent.
func (c *nodeCtx) axesInput(input int) ([]int, bool, error) {
	if a := c.attr("axes"); a != nil {
		return c.attrInts("axes", nil), true, nil
	}
	h, err := c.hostIn(input, "axes")
	if err != nil || h == nil {
		return nil, false, err
	}
	return h.ints(), true, nil
}
