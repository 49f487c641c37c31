package onnx

import (
	"fmt"

	"osds/kernels"
)

// The builder walks the graph once in its (topological) node order. Each node's op
// function computes its output shapes, folds it on the host when every input is known at
// build time (initializers, Constants, shape arithmetic), and otherwise records its forward
// dispatches and registers a backward step. The backward steps run in reverse order after
// the walk: each reads the gradients of its node's outputs (complete by then, since every
// consumer of a value comes after its producer) and adds contributions to the gradients of
// its inputs that depend on the graph input.

// val is one named value of the graph.
type val struct {
	name   string
	shape  []int           // logical shape; rank 0 for scalars
	host   *hostTensor     // known at build time, or nil
	dev    *kernels.Tensor // the device copy (float32), or nil while host-only
	active bool            // depends on the graph input
}

// grad is the accumulated gradient of a value; owned says it is a tensor the builder
// allocated for the sum (safe to accumulate into), not a view of another gradient.
type grad struct {
	t     *kernels.Tensor
	owned bool
}

type builder struct {
	lib      *kernels.Library
	m        *Model
	opset    int
	vals     map[string]*val
	g        *Graph
	backward bool
	steps    []func() error
	grads    map[*val]*grad
}

// devShape is the shape of a value's device tensor: kernels tensors have rank ≥ 1.
func devShape(shape []int) []int {
	if len(shape) == 0 {
		return []int{1}
	}
	return shape
}

// maxElements bounds every tensor the builder makes, on the host or the device: a
// corrupted shape must fail with an error, not exhaust memory.
const maxElements = 1 << 28

// checkSize rejects shapes with a dimension below 1 or more than maxElements elements.
func checkSize(shape []int) error {
	n := 1
	for _, s := range shape {
		if s < 1 {
			return fmt.Errorf("shape %v has a dimension < 1 (empty tensors are not supported)", shape)
		}
		if n *= s; n > maxElements {
			return fmt.Errorf("shape %v has more than %d elements", shape, maxElements)
		}
	}
	return nil
}

// alloc allocates a device tensor owned by the graph.
func (b *builder) alloc(label string, shape []int) (*kernels.Tensor, error) {
	if err := checkSize(shape); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", label, err)
	}
	t, err := kernels.NewTensor(b.lib.Device(), label, devShape(shape)...)
	if err != nil {
		return nil, err
	}
	b.g.owned = append(b.g.owned, t)
	return t, nil
}

// device returns v's device tensor, uploading a host value on first use.
func (b *builder) device(v *val) (*kernels.Tensor, error) {
	if v.dev != nil {
		return v.dev, nil
	}
	if v.host == nil {
		return nil, fmt.Errorf("value %q has neither host nor device data", v.name)
	}
	if len(v.host.data) == 0 {
		return nil, fmt.Errorf("value %q is empty (shape %v)", v.name, v.shape)
	}
	t, err := kernels.FromSlice(b.lib.Device(), v.name, v.host.float32s(), devShape(v.shape)...)
	if err != nil {
		return nil, err
	}
	b.g.owned = append(b.g.owned, t)
	v.dev = t
	return t, nil
}

// view returns t seen with another shape of the same size (no copy).
func view(t *kernels.Tensor, shape []int) (*kernels.Tensor, error) {
	return t.Reshaped(devShape(shape)...)
}

func (b *builder) fwd(op *kernels.Op, err error) error {
	if err != nil {
		return err
	}
	b.g.Forward = append(b.g.Forward, op)
	return nil
}

func (b *builder) bwd(op *kernels.Op, err error) error {
	if err != nil {
		return err
	}
	b.g.Backward = append(b.g.Backward, op)
	return nil
}

// onBackward registers a backward step (only when building the VJP).
func (b *builder) onBackward(f func() error) {
	if b.backward {
		b.steps = append(b.steps, f)
	}
}

// gradOf returns the accumulated gradient of v as a tensor of v's device shape, or nil
// when nothing flows into v from the selected output.
func (b *builder) gradOf(v *val) *kernels.Tensor {
	if g := b.grads[v]; g != nil {
		return g.t
	}
	return nil
}

// accum adds the contribution t (v's size) to v's gradient. The first contribution is
// kept as it is (often a view of another gradient: no copy); a second one goes into a
// fresh sum tensor, and later ones are added to that sum in place.
func (b *builder) accum(v *val, t *kernels.Tensor) error {
	if !v.active || t == nil {
		return nil
	}
	t, err := view(t, v.shape)
	if err != nil {
		return err
	}
	cur := b.grads[v]
	switch {
	case cur == nil:
		b.grads[v] = &grad{t: t}
		return nil
	case !cur.owned:
		sum, err := b.alloc(v.name+".grad", v.shape)
		if err != nil {
			return err
		}
		if err := b.bwd(b.lib.Add(sum, cur.t, t)); err != nil {
			return err
		}
		cur.t, cur.owned = sum, true
		return nil
	}
	return b.bwd(b.lib.Axpy(cur.t, t, 1))
}

// Build records the model's forward pass for a batch of batch inputs on lib and, with
// opts.Backward, the vector-Jacobian product of the selected output w.r.t. the input. The
// batch replaces the input's dynamic batch axis; a model exported with a static batch
// builds only for that batch.
func (m *Model) Build(lib *kernels.Library, batch int, opts BuildOptions) (*Graph, error) {
	g, err := m.build(lib, batch, opts)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", m.Name, err)
	}
	return g, nil
}

func (m *Model) build(lib *kernels.Library, batch int, opts BuildOptions) (*Graph, error) {
	if batch < 1 {
		return nil, fmt.Errorf("batch %d (want ≥ 1)", batch)
	}
	inShape := append([]int(nil), m.Input.Shape...)
	if inShape[0] < 0 {
		inShape[0] = batch
	} else if inShape[0] != batch {
		return nil, fmt.Errorf("the input %s has a static batch of %d, asked for %d (export with dynamic_axes={%q: {0: \"batch\"}})", m.Input, inShape[0], batch, m.Input.Name)
	}
	out := m.Outputs[0].Name
	if opts.Output != "" {
		out = ""
		for _, o := range m.Outputs {
			if o.Name == opts.Output {
				out = o.Name
			}
		}
		if out == "" {
			names := make([]string, len(m.Outputs))
			for i, o := range m.Outputs {
				names[i] = o.Name
			}
			return nil, fmt.Errorf("no output %q (outputs: %v)", opts.Output, names)
		}
	}
	g := &Graph{lib: lib, Batch: batch, InputShape: inShape}
	b := &builder{lib: lib, m: m, opset: m.Opset, vals: map[string]*val{}, g: g, backward: opts.Backward, grads: map[*val]*grad{}}
	fail := func(err error) (*Graph, error) {
		g.Release()
		return nil, err
	}
	// The graph input.
	in := opts.Input
	if in == nil {
		var err error
		if in, err = b.alloc(m.Input.Name, inShape); err != nil {
			return fail(err)
		}
	} else {
		v, err := view(in, inShape)
		if err != nil {
			return fail(fmt.Errorf("the input tensor %q: %w", in.Label(), err))
		}
		in = v
	}
	g.Input = in
	input := &val{name: m.Input.Name, shape: inShape, dev: in, active: true}
	b.vals[input.name] = input
	for name, h := range m.consts {
		if name != input.name {
			b.vals[name] = &val{name: name, shape: h.shape, host: h}
		}
	}
	for i, n := range m.graph.nodes {
		if err := b.node(n, i); err != nil {
			return fail(err)
		}
	}
	// The outputs.
	for _, o := range m.Outputs {
		v := b.vals[o.Name]
		if v == nil {
			return fail(fmt.Errorf("output %q is produced by no node", o.Name))
		}
		t, err := b.device(v)
		if err != nil {
			return fail(fmt.Errorf("output %q: %w", o.Name, err))
		}
		g.Outputs = append(g.Outputs, Output{Name: o.Name, Shape: append([]int(nil), v.shape...), Tensor: t})
		if o.Name == out {
			g.Output, g.OutputShape = t, append([]int(nil), v.shape...)
		}
	}
	if !opts.Backward {
		return g, nil
	}
	ov := b.vals[out]
	cot, err := b.alloc(out+".cotangent", ov.shape)
	if err != nil {
		return fail(err)
	}
	g.Cotangent = cot
	if ov.active {
		b.grads[ov] = &grad{t: cot}
	}
	for i := len(b.steps) - 1; i >= 0; i-- {
		if err := b.steps[i](); err != nil {
			return fail(fmt.Errorf("backward: %w", err))
		}
	}
	dx, err := b.alloc(input.name+".grad", inShape)
	if err != nil {
		return fail(err)
	}
	g.InputGrad = dx
	// The input gradient gets its own tensor: the accumulated one may be a view of an
	// intermediate gradient (or of the cotangent itself), which the next run overwrites.
	if gi := b.gradOf(input); gi != nil {
		err = b.bwd(b.lib.Scale(dx, gi, 1))
	} else {
		err = b.bwd(b.lib.FillND(dx, 0)) // the output does not depend on the input
	}
	if err != nil {
		return fail(err)
	}
	return g, nil
}

// node builds one node.
func (b *builder) node(n *nodeProto, i int) error {
	c := &nodeCtx{b: b, n: n, desc: nodeDesc(n, i)}
	for _, name := range n.inputs {
		if name == "" {
			c.ins = append(c.ins, nil)
			continue
		}
		v := b.vals[name]
		if v == nil {
			return c.errf("input %q is produced by no earlier node (the graph is not topologically sorted, or the name is wrong)", name)
		}
		c.ins = append(c.ins, v)
	}
	def := registry[n.opType]
	for k := 0; k < def.minIn; k++ {
		if c.in(k) == nil {
			return c.errf("input %d is required but absent", k)
		}
	}
	if err := def.build(c); err != nil {
		return c.wrap(err)
	}
	return nil
}
