package nn

import (
	"fmt"

	"osds/kernels"
)

// absorb moves a conv plan's ops and scratch into the pass (which then owns them).
func (p *Pass) absorb(plan *ConvPlan, backward bool) {
	if backward {
		p.Backward = append(p.Backward, plan.Ops...)
	} else {
		p.Forward = append(p.Forward, plan.Ops...)
	}
	p.scratch = append(p.scratch, plan.scratch...)
	plan.Ops, plan.scratch = nil, nil
}

// convOutWidth checks an input row against a geometry and returns the output row width.
func convOutWidth(kind string, g kernels.ConvGeom, in int) (int, error) {
	if in != g.InLen() {
		return 0, fmt.Errorf("%s %s expects rows of %d (%d×%d×%d), got %d", kind, g, g.InLen(), g.InH, g.InW, g.InC, in)
	}
	return g.OutLen(), nil
}

// convStage is what Conv2D and ConvTranspose2D share as Sequential layers.
type convStage interface {
	Forward(l *kernels.Library, y, x *kernels.Tensor, act kernels.Activation) (*ConvPlan, error)
	Backward(l *kernels.Library, dx, dy, x, ones *kernels.Tensor) (*ConvPlan, error)
	BackwardData(l *kernels.Library, dx, dy *kernels.Tensor) (*ConvPlan, error)
}

// buildConv records a convolution layer: forward y = conv(x) (no activation; add an Act
// layer), and the backward that io asks for.
func buildConv(m convStage, l *kernels.Library, io LayerIO) (*Pass, error) {
	p := &Pass{}
	plan, err := m.Forward(l, io.Y, io.X, kernels.Identity)
	if err != nil {
		return nil, err
	}
	p.absorb(plan, false)
	if io.DY == nil {
		return p, nil
	}
	switch {
	case io.ParamGrads:
		plan, err = m.Backward(l, io.DX, io.DY, io.X, nil)
	case io.DX != nil:
		plan, err = m.BackwardData(l, io.DX, io.DY)
	default:
		return p, nil
	}
	if err != nil {
		p.Release()
		return nil, err
	}
	p.absorb(plan, true)
	return p, nil
}

// OutWidth checks the input row (InH·InW·InC) and returns OutH·OutW·OutC.
func (m *Conv2D) OutWidth(in int) (int, error) { return convOutWidth("conv2d", m.Geom, in) }

// Build records the layer in a Sequential (see Layer).
func (m *Conv2D) Build(l *kernels.Library, io LayerIO) (*Pass, error) { return buildConv(m, l, io) }

// OutWidth checks the input row (InH·InW·InC) and returns OutH·OutW·OutC.
func (m *ConvTranspose2D) OutWidth(in int) (int, error) {
	return convOutWidth("conv_transpose2d", m.Geom, in)
}

// Build records the layer in a Sequential (see Layer).
func (m *ConvTranspose2D) Build(l *kernels.Library, io LayerIO) (*Pass, error) {
	return buildConv(m, l, io)
}

var (
	_ Layer = (*Conv2D)(nil)
	_ Layer = (*ConvTranspose2D)(nil)
	_ Layer = (*Linear)(nil)
	_ Layer = Act{}
)
