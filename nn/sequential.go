package nn

import (
	"errors"
	"fmt"

	"osds/kernels"
)

// Layer is one stage of a Sequential network. Tensors between layers are [B, width]
// (one row per example; images are NHWC rows), so a layer only has to say how wide its
// output row is and how to record its forward and backward dispatches.
type Layer interface {
	// Params lists the trainable parameters (none for an activation).
	Params() []*Param
	// OutWidth returns the output row width for an input row width, or an error naming
	// the width the layer expects.
	OutWidth(in int) (int, error)
	// Build records the layer for the tensors of io (fixed batch). Scratch tensors it
	// allocates are returned in the Pass and freed with it.
	Build(l *kernels.Library, io LayerIO) (*Pass, error)
}

// LayerIO names the tensors one layer reads and writes.
type LayerIO struct {
	// X is the input [B, in]; Y the output [B, out], written by Forward.
	X, Y *kernels.Tensor
	// DY is ∂L/∂Y. Nil means forward only: no Backward ops.
	DY *kernels.Tensor
	// DX receives ∂L/∂X (overwritten). Nil skips the input gradient (first layer).
	DX *kernels.Tensor
	// ParamGrads makes Backward accumulate the parameter gradients. Off for a
	// vector–Jacobian product through a frozen model.
	ParamGrads bool
}

// Pass is a recorded-ready forward and backward of a layer or a network, with the
// scratch it owns.
type Pass struct {
	Forward, Backward []*kernels.Op
	scratch           []*kernels.Tensor
	children          []*Pass
	onRelease         []func()
}

// Own hands tensors to the pass, to be freed with it (a layer's scratch).
func (p *Pass) Own(ts ...*kernels.Tensor) { p.scratch = append(p.scratch, ts...) }

// OnRelease adds f to what Release does (a layer that wraps an object with its own
// Release, such as an imported ONNX graph).
func (p *Pass) OnRelease(f func()) { p.onRelease = append(p.onRelease, f) }

// Release frees the ops and the scratch tensors.
func (p *Pass) Release() {
	if p == nil {
		return
	}
	for _, op := range p.Forward {
		op.Release()
	}
	for _, op := range p.Backward {
		op.Release()
	}
	for _, t := range p.scratch {
		t.Release()
	}
	for _, c := range p.children {
		c.Release()
	}
	for _, f := range p.onRelease {
		f()
	}
	p.Forward, p.Backward, p.scratch, p.children, p.onRelease = nil, nil, nil, nil, nil
}

// Sequential applies its layers in order: y = L_n(…L_1(x)).
type Sequential struct {
	Layers []*Named
}

// Named is a layer with the name its parameters carry (e.g. "dec.fc1").
type Named struct {
	Name string
	Layer
}

// Params lists every layer's parameters in order.
func (s *Sequential) Params() []*Param {
	var ps []*Param
	for _, n := range s.Layers {
		ps = append(ps, n.Params()...)
	}
	return ps
}

// OutWidth chains the layers' widths.
func (s *Sequential) OutWidth(in int) (int, error) {
	w := in
	for _, n := range s.Layers {
		var err error
		if w, err = n.OutWidth(w); err != nil {
			return 0, fmt.Errorf("nn: layer %s: %w", n.Name, err)
		}
	}
	return w, nil
}

// Net is a Sequential built for one batch: Forward reads X and writes Y; Backward reads
// DY (written by the caller's loss) and writes DX (when requested) and, when built with
// ParamGrads, accumulates the parameter gradients.
type Net struct {
	X, Y, DY, DX *kernels.Tensor
	*Pass
}

// NetOptions selects what Build records beyond the forward pass.
type NetOptions struct {
	// Backward records the backward ops (allocating DY and the intermediate gradients).
	Backward bool
	// InputGrad allocates DX and computes ∂L/∂X (needs Backward).
	InputGrad bool
	// ParamGrads accumulates the parameter gradients (needs Backward).
	ParamGrads bool
}

// Build allocates the activations (and gradients) for input x [B, in] and records every
// layer. The returned Net owns everything except x.
func (s *Sequential) Build(l *kernels.Library, x *kernels.Tensor, o NetOptions) (*Net, error) {
	if len(s.Layers) == 0 {
		return nil, errors.New("nn: sequential: no layers")
	}
	if (o.InputGrad || o.ParamGrads) && !o.Backward {
		return nil, errors.New("nn: sequential: InputGrad and ParamGrads need Backward")
	}
	if len(x.Shape) != 2 {
		return nil, fmt.Errorf("nn: sequential: input %q is %v, want [batch, width]", x.Label(), x.Shape)
	}
	d := l.Device()
	batch := x.Rows()
	net := &Net{X: x, Pass: &Pass{}}
	fail := func(err error) (*Net, error) {
		net.Release()
		return nil, err
	}
	// acts[i] is the input of layer i; grads[i] its gradient.
	acts := []*kernels.Tensor{x}
	grads := []*kernels.Tensor{nil}
	w := x.Cols()
	for i, n := range s.Layers {
		out, err := n.OutWidth(w)
		if err != nil {
			return fail(fmt.Errorf("nn: layer %s: %w", n.Name, err))
		}
		y, err := kernels.NewTensor(d, n.Name+".out", batch, out)
		if err != nil {
			return fail(err)
		}
		net.scratch = append(net.scratch, y)
		acts = append(acts, y)
		var g *kernels.Tensor
		if o.Backward {
			if g, err = kernels.NewTensor(d, n.Name+".out.grad", batch, out); err != nil {
				return fail(err)
			}
			net.scratch = append(net.scratch, g)
		}
		grads = append(grads, g)
		if i == 0 && o.InputGrad {
			if grads[0], err = kernels.NewTensor(d, n.Name+".in.grad", batch, w); err != nil {
				return fail(err)
			}
			net.scratch = append(net.scratch, grads[0])
		}
		w = out
	}
	net.Y, net.DY, net.DX = acts[len(acts)-1], grads[len(grads)-1], grads[0]
	passes := make([]*Pass, len(s.Layers))
	for i, n := range s.Layers {
		io := LayerIO{X: acts[i], Y: acts[i+1], ParamGrads: o.ParamGrads}
		if o.Backward {
			io.DY, io.DX = grads[i+1], grads[i]
		}
		p, err := n.Build(l, io)
		if err != nil {
			return fail(fmt.Errorf("nn: layer %s: %w", n.Name, err))
		}
		passes[i] = p
		net.children = append(net.children, p)
	}
	for _, p := range passes {
		net.Forward = append(net.Forward, p.Forward...)
	}
	for i := len(passes) - 1; i >= 0; i-- {
		net.Backward = append(net.Backward, passes[i].Backward...)
	}
	// The net's lists now own the ops; the children keep only their scratch.
	for _, c := range net.children {
		c.Forward, c.Backward = nil, nil
	}
	return net, nil
}

// Act is an elementwise activation layer y = act(x); its backward is dx = act'(x)·dy.
type Act struct{ Fn kernels.Activation }

// Params is empty: an activation has no parameters.
func (a Act) Params() []*Param { return nil }

// OutWidth is the input width.
func (a Act) OutWidth(in int) (int, error) { return in, nil }

// Build records y = act(x) and, with DY and DX, dx = act'(x)·dy.
func (a Act) Build(l *kernels.Library, io LayerIO) (*Pass, error) {
	p := &Pass{}
	op, err := l.Activate(io.Y, io.X, a.Fn)
	if err != nil {
		return nil, err
	}
	p.Forward = append(p.Forward, op)
	if io.DY != nil && io.DX != nil {
		if op, err = l.ActivateBackward(io.DX, io.DY, io.X, a.Fn); err != nil {
			p.Release()
			return nil, err
		}
		p.Backward = append(p.Backward, op)
	}
	return p, nil
}

// OutWidth checks the input width and returns Out.
func (m *Linear) OutWidth(in int) (int, error) {
	if in != m.In {
		return 0, fmt.Errorf("linear %d→%d got rows of width %d", m.In, m.Out, in)
	}
	return m.Out, nil
}

// Build records y = x·W + b and, with DY, the backward: parameter gradients when
// io.ParamGrads, dx = dy·Wᵀ when io.DX is set.
func (m *Linear) Build(l *kernels.Library, io LayerIO) (*Pass, error) {
	p := &Pass{}
	op, err := m.Forward(l, io.Y, io.X, kernels.Identity)
	if err != nil {
		return nil, err
	}
	p.Forward = append(p.Forward, op)
	if io.DY == nil {
		return p, nil
	}
	fail := func(err error) (*Pass, error) {
		p.Release()
		return nil, err
	}
	if io.ParamGrads {
		ones, err := Ones(l.Device(), io.DY.Rows())
		if err != nil {
			return fail(err)
		}
		p.scratch = append(p.scratch, ones)
		ops, err := m.Backward(l, io.DX, io.DY, io.X, ones)
		if err != nil {
			return fail(err)
		}
		p.Backward = append(p.Backward, ops...)
	} else if io.DX != nil {
		op, err := l.Matmul(io.DX, io.DY, m.W.Value, kernels.MatmulOptions{TransB: true})
		if err != nil {
			return fail(err)
		}
		p.Backward = append(p.Backward, op)
	}
	return p, nil
}
