package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"osds/gpu"
	"osds/kernels"
)

// Convolution layers over NHWC activations: a batch of B images H×W×C is a tensor
// [B, H·W·C] (one row per image, channel fastest). The weights are laid out so that the
// convolution is a matmul on im2col columns (see kernels/conv.go, which also gives the
// mapping from PyTorch's weights):
//
//	Conv2D           W [KH·KW·InC, OutC]   (PyTorch Conv2d (OutC, InC, KH, KW): permute(2, 3, 1, 0))
//	ConvTranspose2D  W [InC, KH·KW·OutC]   (PyTorch ConvTranspose2d (InC, OutC, KH, KW): permute(0, 2, 3, 1))
//	                 b [OutC] for both
//
// A layer's passes need scratch tensors (the columns), so Forward, Backward and
// BackwardData each return a ConvPlan: the ops to record, in order, and the scratch they
// own, built once for one batch and recorded every iteration. The batch of a plan is
// the number of rows of its tensors (the layer's Geom.Batch is not used): one layer can
// have plans for several batch sizes, e.g. training and sampling.
//
// Forward and derivative, side by side (x the input, dy = ∂L/∂y):
//
//	Conv2D           y = conv(x; W) + b          dW += colsᵀ·dy   db += 1ᵀ·dy   dx = col2im(dy·Wᵀ)
//	ConvTranspose2D  y = col2im(x·W) + b         dW += xᵀ·im2col(dy)   db += 1ᵀ·dy   dx = im2col(dy)·Wᵀ
//
// where dy and x are viewed as matrices [pixels, channels]. Backward accumulates the
// parameter gradients (like Linear.Backward) and overwrites dx; BackwardData computes dx
// alone — the vector–Jacobian product through a frozen layer (a pretrained prior), which
// needs neither x nor the parameter gradients.
//
// A 1×1 kernel with stride 1 and no padding needs no columns: its plans are the matmuls
// on the activations themselves.

// ConvPlan is the ops of one pass of a convolution layer, built for one batch, with the
// scratch tensors they use. Record Ops in order (one compute pass is fine: dispatches see
// each other's writes); Release frees the ops and the scratch, not the layer or the
// tensors passed in.
type ConvPlan struct {
	Ops     []*kernels.Op
	scratch []*kernels.Tensor
}

// Release frees the plan's ops and scratch tensors.
func (p *ConvPlan) Release() {
	if p == nil {
		return
	}
	for _, op := range p.Ops {
		op.Release()
	}
	for _, t := range p.scratch {
		t.Release()
	}
	p.Ops, p.scratch = nil, nil
}

// add appends op, or on error releases the whole plan and returns the error.
func (p *ConvPlan) add(op *kernels.Op, err error) error {
	if err != nil {
		p.Release()
		return err
	}
	p.Ops = append(p.Ops, op)
	return nil
}

// newScratch allocates a plan-owned tensor; on error it releases the plan.
func (p *ConvPlan) newScratch(d *gpu.Device, label string, shape ...int) (*kernels.Tensor, error) {
	t, err := kernels.NewTensor(d, label, shape...)
	if err != nil {
		p.Release()
		return nil, err
	}
	p.scratch = append(p.scratch, t)
	return t, nil
}

// ones returns the given ones tensor after checking it is [n, 1], or a plan-owned one.
func (p *ConvPlan) ones(d *gpu.Device, what string, ones *kernels.Tensor, n int) (*kernels.Tensor, error) {
	if ones != nil {
		if ones.Rows() != n || ones.Cols() != 1 {
			p.Release()
			return nil, fmt.Errorf("%s: ones is %v, want [%d, 1] (batch × output pixels)", what, ones.Shape, n)
		}
		return ones, nil
	}
	t, err := Ones(d, n)
	if err != nil {
		p.Release()
		return nil, err
	}
	p.scratch = append(p.scratch, t)
	return t, nil
}

// view reshapes t (a caller's tensor or scratch), releasing the plan on error.
func (p *ConvPlan) view(t *kernels.Tensor, shape ...int) (*kernels.Tensor, error) {
	v, err := t.Reshaped(shape...)
	if err != nil {
		p.Release()
	}
	return v, err
}

// pointwise reports a geometry whose columns are the activations themselves.
func pointwise(g kernels.ConvGeom) bool {
	return g.KH == 1 && g.KW == 1 && g.Stride == 1 && g.Pad == 0 && g.OutPad == 0
}

// convParams creates W (shape ws) and b [outC] uniform in ±1/√fanIn.
func convParams(d *gpu.Device, name string, ws [2]int, outC, fanIn int, rng *rand.Rand) (*Param, *Param, error) {
	bound := 1 / math.Sqrt(float64(fanIn))
	W, err := NewParam(d, name+".weight", UniformInit(rng, ws[0]*ws[1], bound), ws[0], ws[1])
	if err != nil {
		return nil, nil, err
	}
	B, err := NewParam(d, name+".bias", UniformInit(rng, outC, bound), outC)
	if err != nil {
		W.Release()
		return nil, nil, err
	}
	return W, B, nil
}

// layerGeom checks the layer's geometry at construction; Batch 0 means "any".
func layerGeom(kind, name string, g kernels.ConvGeom) error {
	c := g
	if c.Batch == 0 {
		c.Batch = 1
	}
	if err := c.Check(); err != nil {
		return fmt.Errorf("nn: %s %s: %w", kind, name, err)
	}
	return nil
}

// planGeom returns the layer's geometry for a plan whose batch is the rows of t (the
// input or the output side, as inSide says), checking t's row length.
func planGeom(what string, g kernels.ConvGeom, t *kernels.Tensor, tname string, inSide bool) (kernels.ConvGeom, error) {
	if t == nil {
		return g, fmt.Errorf("%s: %s is nil", what, tname)
	}
	want := g.InLen()
	side := fmt.Sprintf("%d×%d×%d input images", g.InH, g.InW, g.InC)
	if !inSide {
		want = g.OutLen()
		side = fmt.Sprintf("%d×%d×%d output images", g.OutH(), g.OutW(), g.OutC)
	}
	if t.Cols() != want {
		return g, fmt.Errorf("%s: %s is %v but the layer takes %s, rows of %d", what, tname, t.Shape, side, want)
	}
	g.Batch = t.Rows()
	return g, nil
}

// checkRows checks that t is [g.Batch, n].
func checkRows(what, tname string, t *kernels.Tensor, g kernels.ConvGeom, n int, side string) error {
	if t == nil {
		return fmt.Errorf("%s: %s is nil", what, tname)
	}
	if t.Rows() != g.Batch || t.Cols() != n {
		return fmt.Errorf("%s: %s is %v, want [%d, %d] (batch × %s)", what, tname, t.Shape, g.Batch, n, side)
	}
	return nil
}

func outSide(g kernels.ConvGeom) string {
	return fmt.Sprintf("%d×%d×%d output", g.OutH(), g.OutW(), g.OutC)
}

func inSide(g kernels.ConvGeom) string {
	return fmt.Sprintf("%d×%d×%d input", g.InH, g.InW, g.InC)
}

// ---------------------------------------------------------------------------------------

// Conv2D is a 2-D convolution y = conv(x; W) + b over NHWC images (see the top of this
// file): x [B, InH·InW·InC], y [B, OutH·OutW·OutC], W [KH·KW·InC, OutC], b [OutC].
type Conv2D struct {
	Geom kernels.ConvGeom
	W, B *Param
}

// NewConv2D creates a convolution of geometry g (g.Transposed must be false; g.Batch may
// be 0 — plans take their batch from their tensors), initialised like PyTorch's Conv2d:
// W and b uniform in ±1/√(InC·KH·KW).
func NewConv2D(d *gpu.Device, name string, g kernels.ConvGeom, rng *rand.Rand) (*Conv2D, error) {
	if g.Transposed {
		return nil, fmt.Errorf("nn: conv2d %s: the geometry is transposed; use NewConvTranspose2D", name)
	}
	if err := layerGeom("conv2d", name, g); err != nil {
		return nil, err
	}
	W, B, err := convParams(d, name, g.WeightShape(), g.OutC, g.InC*g.KH*g.KW, rng)
	if err != nil {
		return nil, err
	}
	return &Conv2D{Geom: g, W: W, B: B}, nil
}

// Params lists W and b.
func (m *Conv2D) Params() []*Param { return []*Param{m.W, m.B} }

// Release frees the parameters (plans are released separately).
func (m *Conv2D) Release() {
	m.W.Release()
	m.B.Release()
}

func (m *Conv2D) name() string { return strings.TrimSuffix(m.W.Name, ".weight") }

// Forward returns the plan y = act(conv(x; W) + b) for x [B, InLen] and y [B, OutLen]
// (any B ≥ 1); act is Identity when the pre-activation is needed for a backward pass.
// Ops: im2col into a plan-owned columns tensor [B·OutH·OutW, KH·KW·InC], then one matmul
// with the bias and activation fused, writing y viewed as [B·OutH·OutW, OutC].
func (m *Conv2D) Forward(l *kernels.Library, y, x *kernels.Tensor, act kernels.Activation) (*ConvPlan, error) {
	what := fmt.Sprintf("nn: conv2d %s forward", m.name())
	g, err := planGeom(what, m.Geom, x, "x", true)
	if err != nil {
		return nil, err
	}
	if err := checkRows(what, "y", y, g, g.OutLen(), outSide(g)); err != nil {
		return nil, err
	}
	p := &ConvPlan{}
	cs := g.ColsShape()
	yv, err := p.view(y, cs[0], g.OutC)
	if err != nil {
		return nil, err
	}
	cols, err := m.cols(l, p, x, g)
	if err != nil {
		return nil, err
	}
	if err := p.add(l.Matmul(yv, cols, m.W.Value, kernels.MatmulOptions{Bias: m.B.Value, Act: act})); err != nil {
		return nil, err
	}
	return p, nil
}

// cols adds im2col(x) to p and returns the columns (x itself, viewed, for a pointwise
// geometry).
func (m *Conv2D) cols(l *kernels.Library, p *ConvPlan, x *kernels.Tensor, g kernels.ConvGeom) (*kernels.Tensor, error) {
	cs := g.ColsShape()
	if pointwise(g) {
		return p.view(x, cs[0], cs[1])
	}
	cols, err := p.newScratch(l.Device(), m.name()+".cols", cs[0], cs[1])
	if err != nil {
		return nil, err
	}
	if err := p.add(l.Im2Col(cols, x, g)); err != nil {
		return nil, err
	}
	return cols, nil
}

// Backward returns the plan accumulating dW += colsᵀ·dy and db += 1ᵀ·dy from the
// forward input x [B, InLen] and dy = ∂L/∂y [B, OutLen] and, when dx is not nil,
// overwriting dx [B, InLen] with ∂L/∂x. dy is the gradient of the pre-activation (apply
// ActivateBackward first when Forward had an activation). ones is a [B·OutH·OutW, 1]
// tensor of ones, or nil for a plan-owned one. The columns of x are recomputed (one
// im2col), and their scratch is reused for dy·Wᵀ.
func (m *Conv2D) Backward(l *kernels.Library, dx, dy, x, ones *kernels.Tensor) (*ConvPlan, error) {
	what := fmt.Sprintf("nn: conv2d %s backward", m.name())
	g, err := planGeom(what, m.Geom, x, "x", true)
	if err != nil {
		return nil, err
	}
	if err := checkRows(what, "dy", dy, g, g.OutLen(), outSide(g)); err != nil {
		return nil, err
	}
	if dx != nil {
		if err := checkRows(what, "dx", dx, g, g.InLen(), inSide(g)); err != nil {
			return nil, err
		}
	}
	p := &ConvPlan{}
	cs := g.ColsShape()
	dyv, err := p.view(dy, cs[0], g.OutC)
	if err != nil {
		return nil, err
	}
	if ones, err = p.ones(l.Device(), what, ones, cs[0]); err != nil {
		return nil, err
	}
	cols, err := m.cols(l, p, x, g)
	if err != nil {
		return nil, err
	}
	if err := p.add(l.Matmul(m.W.Grad, cols, dyv, kernels.MatmulOptions{TransA: true, Accumulate: true})); err != nil {
		return nil, err
	}
	if err := p.add(l.Matmul(m.B.Grad, ones, dyv, kernels.MatmulOptions{TransA: true, Accumulate: true})); err != nil {
		return nil, err
	}
	if dx == nil {
		return p, nil
	}
	if err := m.backwardData(l, p, dx, dyv, cols, g); err != nil {
		return nil, err
	}
	return p, nil
}

// BackwardData returns the plan overwriting dx [B, InLen] with ∂L/∂x = col2im(dy·Wᵀ) for
// dy [B, OutLen]: the vector–Jacobian product, leaving the parameter gradients alone.
func (m *Conv2D) BackwardData(l *kernels.Library, dx, dy *kernels.Tensor) (*ConvPlan, error) {
	what := fmt.Sprintf("nn: conv2d %s backward-data", m.name())
	g, err := planGeom(what, m.Geom, dx, "dx", true)
	if err != nil {
		return nil, err
	}
	if err := checkRows(what, "dy", dy, g, g.OutLen(), outSide(g)); err != nil {
		return nil, err
	}
	p := &ConvPlan{}
	dyv, err := p.view(dy, g.ColsShape()[0], g.OutC)
	if err != nil {
		return nil, err
	}
	if err := m.backwardData(l, p, dx, dyv, nil, g); err != nil {
		return nil, err
	}
	return p, nil
}

// backwardData adds dcols = dy·Wᵀ, dx = col2im(dcols) to p; dcols is the given scratch,
// or a new one when nil. A pointwise geometry writes dx = dy·Wᵀ directly (dcols unused).
func (m *Conv2D) backwardData(l *kernels.Library, p *ConvPlan, dx, dyv, dcols *kernels.Tensor, g kernels.ConvGeom) error {
	cs := g.ColsShape()
	if pointwise(g) {
		dxv, err := p.view(dx, cs[0], cs[1])
		if err != nil {
			return err
		}
		return p.add(l.Matmul(dxv, dyv, m.W.Value, kernels.MatmulOptions{TransB: true}))
	}
	if dcols == nil {
		var err error
		if dcols, err = p.newScratch(l.Device(), m.name()+".dcols", cs[0], cs[1]); err != nil {
			return err
		}
	}
	if err := p.add(l.Matmul(dcols, dyv, m.W.Value, kernels.MatmulOptions{TransB: true})); err != nil {
		return err
	}
	return p.add(l.Col2Im(dx, dcols, nil, g))
}

// ---------------------------------------------------------------------------------------

// ConvTranspose2D is a 2-D transposed convolution (PyTorch's ConvTranspose2d) over NHWC
// images: x [B, InH·InW·InC], y [B, OutH·OutW·OutC] with OutH = (InH − 1)·Stride −
// 2·Pad + KH + OutPad, W [InC, KH·KW·OutC], b [OutC]. Input pixel (ih, iw) adds
// x[ih, iw, :]·W[:, (kh, kw, :)] to output pixel (ih·S − P + kh, iw·S − P + kw).
type ConvTranspose2D struct {
	Geom kernels.ConvGeom
	W, B *Param
}

// NewConvTranspose2D creates a transposed convolution of geometry g (g.Transposed is set
// by the constructor; g.Batch may be 0), initialised like PyTorch's ConvTranspose2d: W
// and b uniform in ±1/√(OutC·KH·KW).
func NewConvTranspose2D(d *gpu.Device, name string, g kernels.ConvGeom, rng *rand.Rand) (*ConvTranspose2D, error) {
	g.Transposed = true
	if err := layerGeom("conv-transpose2d", name, g); err != nil {
		return nil, err
	}
	W, B, err := convParams(d, name, g.WeightShape(), g.OutC, g.OutC*g.KH*g.KW, rng)
	if err != nil {
		return nil, err
	}
	return &ConvTranspose2D{Geom: g, W: W, B: B}, nil
}

// Params lists W and b.
func (m *ConvTranspose2D) Params() []*Param { return []*Param{m.W, m.B} }

// Release frees the parameters (plans are released separately).
func (m *ConvTranspose2D) Release() {
	m.W.Release()
	m.B.Release()
}

func (m *ConvTranspose2D) name() string { return strings.TrimSuffix(m.W.Name, ".weight") }

// Forward returns the plan y = act(convT(x; W) + b) for x [B, InLen] and y [B, OutLen]
// (any B ≥ 1); act is Identity when the pre-activation is needed for a backward pass.
// Ops: cols = x·W into a plan-owned tensor [B·InH·InW, KH·KW·OutC] (x viewed as
// [B·InH·InW, InC]), then col2im into y with the bias and activation fused.
func (m *ConvTranspose2D) Forward(l *kernels.Library, y, x *kernels.Tensor, act kernels.Activation) (*ConvPlan, error) {
	what := fmt.Sprintf("nn: conv-transpose2d %s forward", m.name())
	g, err := planGeom(what, m.Geom, x, "x", true)
	if err != nil {
		return nil, err
	}
	if err := checkRows(what, "y", y, g, g.OutLen(), outSide(g)); err != nil {
		return nil, err
	}
	p := &ConvPlan{}
	cs := g.ColsShape()
	xv, err := p.view(x, cs[0], g.InC)
	if err != nil {
		return nil, err
	}
	if pointwise(g) {
		yv, err := p.view(y, cs[0], g.OutC)
		if err != nil {
			return nil, err
		}
		if err := p.add(l.Matmul(yv, xv, m.W.Value, kernels.MatmulOptions{Bias: m.B.Value, Act: act})); err != nil {
			return nil, err
		}
		return p, nil
	}
	cols, err := p.newScratch(l.Device(), m.name()+".cols", cs[0], cs[1])
	if err != nil {
		return nil, err
	}
	if err := p.add(l.Matmul(cols, xv, m.W.Value, kernels.MatmulOptions{})); err != nil {
		return nil, err
	}
	if err := p.add(l.Col2ImAct(y, cols, m.B.Value, g, act)); err != nil {
		return nil, err
	}
	return p, nil
}

// dcols adds im2col(dy) to p and returns it (dy itself, viewed, for a pointwise geometry).
func (m *ConvTranspose2D) dcols(l *kernels.Library, p *ConvPlan, dy *kernels.Tensor, g kernels.ConvGeom) (*kernels.Tensor, error) {
	cs := g.ColsShape()
	if pointwise(g) {
		return p.view(dy, cs[0], cs[1])
	}
	dcols, err := p.newScratch(l.Device(), m.name()+".dcols", cs[0], cs[1])
	if err != nil {
		return nil, err
	}
	if err := p.add(l.Im2Col(dcols, dy, g)); err != nil {
		return nil, err
	}
	return dcols, nil
}

// Backward returns the plan accumulating dW += xᵀ·im2col(dy) and db += 1ᵀ·dy from the
// forward input x [B, InLen] and dy = ∂L/∂y [B, OutLen] and, when dx is not nil,
// overwriting dx [B, InLen] with ∂L/∂x = im2col(dy)·Wᵀ. dy is the gradient of the
// pre-activation. ones is a [B·OutH·OutW, 1] tensor of ones (output pixels), or nil for
// a plan-owned one.
func (m *ConvTranspose2D) Backward(l *kernels.Library, dx, dy, x, ones *kernels.Tensor) (*ConvPlan, error) {
	what := fmt.Sprintf("nn: conv-transpose2d %s backward", m.name())
	g, err := planGeom(what, m.Geom, x, "x", true)
	if err != nil {
		return nil, err
	}
	if err := checkRows(what, "dy", dy, g, g.OutLen(), outSide(g)); err != nil {
		return nil, err
	}
	if dx != nil {
		if err := checkRows(what, "dx", dx, g, g.InLen(), inSide(g)); err != nil {
			return nil, err
		}
	}
	p := &ConvPlan{}
	cs := g.ColsShape()
	npix := g.Batch * g.OutH() * g.OutW()
	dyv, err := p.view(dy, npix, g.OutC)
	if err != nil {
		return nil, err
	}
	xv, err := p.view(x, cs[0], g.InC)
	if err != nil {
		return nil, err
	}
	if ones, err = p.ones(l.Device(), what, ones, npix); err != nil {
		return nil, err
	}
	dcols, err := m.dcols(l, p, dy, g)
	if err != nil {
		return nil, err
	}
	if err := p.add(l.Matmul(m.W.Grad, xv, dcols, kernels.MatmulOptions{TransA: true, Accumulate: true})); err != nil {
		return nil, err
	}
	if err := p.add(l.Matmul(m.B.Grad, ones, dyv, kernels.MatmulOptions{TransA: true, Accumulate: true})); err != nil {
		return nil, err
	}
	if dx != nil {
		if err := m.backwardData(l, p, dx, dcols, g); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// BackwardData returns the plan overwriting dx [B, InLen] with ∂L/∂x = im2col(dy)·Wᵀ for
// dy [B, OutLen]: the vector–Jacobian product, leaving the parameter gradients alone.
func (m *ConvTranspose2D) BackwardData(l *kernels.Library, dx, dy *kernels.Tensor) (*ConvPlan, error) {
	what := fmt.Sprintf("nn: conv-transpose2d %s backward-data", m.name())
	g, err := planGeom(what, m.Geom, dx, "dx", true)
	if err != nil {
		return nil, err
	}
	if err := checkRows(what, "dy", dy, g, g.OutLen(), outSide(g)); err != nil {
		return nil, err
	}
	p := &ConvPlan{}
	dcols, err := m.dcols(l, p, dy, g)
	if err != nil {
		return nil, err
	}
	if err := m.backwardData(l, p, dx, dcols, g); err != nil {
		return nil, err
	}
	return p, nil
}

// backwardData adds dx = dcols·Wᵀ (dx viewed as [B·InH·InW, InC]) to p.
func (m *ConvTranspose2D) backwardData(l *kernels.Library, p *ConvPlan, dx, dcols *kernels.Tensor, g kernels.ConvGeom) error {
	dxv, err := p.view(dx, g.ColsShape()[0], g.InC)
	if err != nil {
		return err
	}
	return p.add(l.Matmul(dxv, dcols, m.W.Value, kernels.MatmulOptions{TransB: true}))
}
