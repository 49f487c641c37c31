package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// 2-D convolutions are im2col / col2im (shaders/conv.wgsl) around the existing Matmul.
//
// Layouts (fixed; the layers in nn and the priors depend on them):
//
//   - Activations are NHWC, a Tensor [B, H·W·C] (one row per image, channel fastest): an
//     MNIST batch [B, 784] is a 28×28×1 NHWC tensor.
//   - Conv2D weight [KH·KW·InC, OutC], row (kh·KW + kw)·InC + ic, so that the columns of
//     im2col times W is the convolution. Bias [OutC].
//     From PyTorch's Conv2d weight (OutC, InC, KH, KW): w.permute(2, 3, 1, 0).reshape(KH*KW*InC, OutC).
//   - ConvTranspose2D weight [InC, KH·KW·OutC], column (kh·KW + kw)·OutC + oc. Bias [OutC].
//     From PyTorch's ConvTranspose2d weight (InC, OutC, KH, KW): w.permute(0, 2, 3, 1).reshape(InC, KH*KW*OutC).
//
// The columns of a geometry pair an "image" with kernel "positions": position (oh, ow)
// with kernel offset (kh, kw) reads image pixel (oh·S − P + kh, ow·S − P + kw) (zero
// outside the image), and the columns are [B·PH·PW, KH·KW·C], row (b·PH + oh)·PW + ow,
// column (kh·KW + kw)·C + c. For a convolution the image is its input and the positions
// are its output pixels; for a transposed convolution the image is its output and the
// positions are its input pixels (a transposed convolution's forward pass is a
// convolution's backward-data pass with the geometry swapped). Hence, with W the weight
// and X, Y, dX, dY as matrices [pixels, channels] (Reshaped views of the NHWC tensors):
//
//	conv            forward   cols = im2col(x);  Y = cols·W + b
//	                backward  dW += colsᵀ·dY;  db += 1ᵀ·dY;  dx = col2im(dY·Wᵀ)
//	transposed conv forward   y = col2im(X·W) + b
//	                backward  dcols = im2col(dy);  dX = dcols·Wᵀ;  dW += Xᵀ·dcols;  db += 1ᵀ·dY

// ConvGeom is the geometry of one 2-D convolution (Transposed false) or transposed
// convolution (Transposed true) over a batch of NHWC images: input InH×InW×InC, output
// OutH()×OutW()×OutC, kernel KH×KW, the same stride and padding in both directions
// (PyTorch's stride, padding and, for transposed convolutions, output_padding; no
// dilation, no groups).
type ConvGeom struct {
	Batch         int
	InH, InW, InC int
	OutC          int
	KH, KW        int
	Stride        int
	Pad           int
	// OutPad adds rows and columns at the bottom and right of a transposed convolution's
	// output (PyTorch's output_padding; 0 ≤ OutPad < Stride), to reach an even size from
	// a stride-2 downsampling of it. Must be 0 for a convolution.
	OutPad int
	// Transposed selects the transposed convolution.
	Transposed bool
}

// OutH is the output height: ⌊(InH + 2·Pad − KH)/Stride⌋ + 1 for a convolution,
// (InH − 1)·Stride − 2·Pad + KH + OutPad for a transposed convolution.
func (g ConvGeom) OutH() int { return g.outSize(g.InH, g.KH) }

// OutW is the output width (the formula of OutH with InW and KW).
func (g ConvGeom) OutW() int { return g.outSize(g.InW, g.KW) }

func (g ConvGeom) outSize(n, k int) int {
	if g.Transposed {
		return (n-1)*g.Stride - 2*g.Pad + k + g.OutPad
	}
	if g.Stride < 1 || n+2*g.Pad < k {
		return 0
	}
	return (n+2*g.Pad-k)/g.Stride + 1
}

// InLen is the length of one input image, InH·InW·InC: x is [Batch, InLen()].
func (g ConvGeom) InLen() int { return g.InH * g.InW * g.InC }

// OutLen is the length of one output image, OutH·OutW·OutC: y is [Batch, OutLen()].
func (g ConvGeom) OutLen() int { return g.OutH() * g.OutW() * g.OutC }

// WeightShape is the shape of the weight: [KH·KW·InC, OutC] for a convolution,
// [InC, KH·KW·OutC] for a transposed convolution.
func (g ConvGeom) WeightShape() [2]int {
	if g.Transposed {
		return [2]int{g.InC, g.KH * g.KW * g.OutC}
	}
	return [2]int{g.KH * g.KW * g.InC, g.OutC}
}

// ColsShape is the shape of the columns of Im2Col and Col2Im: [Batch·OutH·OutW,
// KH·KW·InC] for a convolution, [Batch·InH·InW, KH·KW·OutC] for a transposed one.
func (g ConvGeom) ColsShape() [2]int {
	_, _, c, ph, pw := g.sides()
	return [2]int{g.Batch * ph * pw, g.KH * g.KW * c}
}

// ImageShape is the shape of the image side of Im2Col and Col2Im: x [Batch, InLen()] for
// a convolution, y [Batch, OutLen()] for a transposed one.
func (g ConvGeom) ImageShape() [2]int {
	h, w, c, _, _ := g.sides()
	return [2]int{g.Batch, h * w * c}
}

// sides returns the image (h, w, c) and the positions (ph, pw) of the columns.
func (g ConvGeom) sides() (h, w, c, ph, pw int) {
	if g.Transposed {
		return g.OutH(), g.OutW(), g.OutC, g.InH, g.InW
	}
	return g.InH, g.InW, g.InC, g.OutH(), g.OutW()
}

// String describes the geometry, e.g. "conv 7×5×3 → 4×3×5 (batch 2, kernel 3×2, stride 2, pad 1)".
func (g ConvGeom) String() string {
	kind, extra := "conv", ""
	if g.Transposed {
		kind, extra = "transposed conv", fmt.Sprintf(", outpad %d", g.OutPad)
	}
	return fmt.Sprintf("%s %d×%d×%d → %d×%d×%d (batch %d, kernel %d×%d, stride %d, pad %d%s)",
		kind, g.InH, g.InW, g.InC, g.OutH(), g.OutW(), g.OutC, g.Batch, g.KH, g.KW, g.Stride, g.Pad, extra)
}

// Check reports a geometry that describes no valid convolution: a size, kernel or stride
// below 1, a negative padding, an empty output, OutPad on a convolution or OutPad ≥
// Stride on a transposed one, or arrays too large for 32-bit indexing.
func (g ConvGeom) Check() error {
	if msg := g.problem(); msg != "" {
		return fmt.Errorf("kernels: conv geometry %v: %s", g, msg)
	}
	return nil
}

func (g ConvGeom) problem() string {
	for _, f := range []struct {
		name string
		v    int
	}{{"Batch", g.Batch}, {"InH", g.InH}, {"InW", g.InW}, {"InC", g.InC}, {"OutC", g.OutC}, {"KH", g.KH}, {"KW", g.KW}, {"Stride", g.Stride}} {
		if f.v < 1 {
			return fmt.Sprintf("%s is %d (want ≥ 1)", f.name, f.v)
		}
	}
	if g.Pad < 0 {
		return fmt.Sprintf("Pad is %d (want ≥ 0)", g.Pad)
	}
	if g.OutPad < 0 {
		return fmt.Sprintf("OutPad is %d (want ≥ 0)", g.OutPad)
	}
	if !g.Transposed && g.OutPad != 0 {
		return fmt.Sprintf("OutPad is %d but output padding applies only to transposed convolutions", g.OutPad)
	}
	if g.Transposed && g.OutPad >= g.Stride {
		return fmt.Sprintf("OutPad %d must be smaller than Stride %d", g.OutPad, g.Stride)
	}
	if !g.Transposed && (g.InH+2*g.Pad < g.KH || g.InW+2*g.Pad < g.KW) {
		return fmt.Sprintf("the %d×%d kernel is larger than the padded %d×%d input: the output is empty", g.KH, g.KW, g.InH+2*g.Pad, g.InW+2*g.Pad)
	}
	if g.OutH() < 1 || g.OutW() < 1 {
		return fmt.Sprintf("the output is %d×%d: empty (padding %d too large for the kernel and input)", g.OutH(), g.OutW(), g.Pad)
	}
	rows, cols := g.ColsShape()[0], g.ColsShape()[1]
	for _, n := range []float64{float64(g.Batch) * float64(g.InLen()), float64(g.Batch) * float64(g.OutLen()), float64(rows) * float64(cols)} {
		if n > math.MaxUint32 {
			return fmt.Sprintf("an array of %.0f elements (input, output or columns) exceeds 32-bit indexing", n)
		}
	}
	return ""
}

// Im2Col returns the op writing the columns of the image x for the geometry g (see
// ConvGeom.ColsShape): cols[(b, oh, ow), (kh, kw, c)] = x[b, oh·S − P + kh, ow·S − P + kw, c],
// 0 where that pixel lies in the padding. x is the input of a convolution or the output
// (gradient) of a transposed one: [Batch, H·W·C] as ConvGeom.ImageShape says.
func (l *Library) Im2Col(cols, x *Tensor, g ConvGeom) (*Op, error) {
	const name = "kernels: im2col"
	if cols == nil || x == nil {
		return nil, fmt.Errorf("%s: nil tensor (cols %v, x %v)", name, cols != nil, x != nil)
	}
	if err := l.convCheck(name, g, cols, x); err != nil {
		return nil, err
	}
	return l.convBuild("im2col", g, nil, []*gpu.Buffer{x.Buf, cols.Buf}, cols.Len(), 1)
}

// Col2Im returns the op overwriting the image x with the sums of the columns that read
// each of its pixels, plus bias (a vector of C elements, or nil):
//
//	x[b, ih, iw, c] = Σ cols[(b, oh, ow), (kh, kw, c)] + bias[c]   over oh·S − P + kh = ih, ow·S − P + kw = iw
//
// It is the adjoint of Im2Col: a convolution's input gradient from the columns' gradient,
// and a transposed convolution's forward pass. Each pixel sums its own terms in a fixed
// order (deterministic, no atomics). Shapes as for Im2Col.
func (l *Library) Col2Im(x, cols, bias *Tensor, g ConvGeom) (*Op, error) {
	return l.Col2ImAct(x, cols, bias, g, Identity)
}

// Col2ImAct is Col2Im followed by the activation act on every element of x (fused).
func (l *Library) Col2ImAct(x, cols, bias *Tensor, g ConvGeom, act Activation) (*Op, error) {
	const name = "kernels: col2im"
	if cols == nil || x == nil {
		return nil, fmt.Errorf("%s: nil tensor (x %v, cols %v)", name, x != nil, cols != nil)
	}
	if err := ewValidActivation("col2im", act); err != nil {
		return nil, err
	}
	if err := l.convCheck(name, g, cols, x); err != nil {
		return nil, err
	}
	_, _, c, _, _ := g.sides()
	biasBuf := cols.Buf // bound but not read without a bias
	if bias != nil {
		if bias.Len() != c {
			return nil, fmt.Errorf("%s: bias %q is %s but the image has %d channels (%v)", name, bias.Label(), ewShape(bias.Shape), c, g)
		}
		if bias.Buf.Shares(x.Buf) {
			return nil, fmt.Errorf("%s: x and the bias are the same tensor %q", name, x.Label())
		}
		biasBuf = bias.Buf
	}
	taps := ((g.KH + g.Stride - 1) / g.Stride) * ((g.KW + g.Stride - 1) / g.Stride) // terms per pixel
	consts := map[string]float64{"HAS_BIAS": overrideBool(bias != nil), "ACT": float64(act)}
	return l.convBuild("col2im", g, consts, []*gpu.Buffer{cols.Buf, biasBuf, x.Buf}, x.Len(), taps)
}

// convBuild builds an entry point of shaders/conv.wgsl for the geometry g (compiled into
// the pipeline as overrides) writing n elements of about cost work each, with the grid
// and workgroup size the elementwise kernels plan for the adapter.
func (l *Library) convBuild(entry string, g ConvGeom, consts map[string]float64, bufs []*gpu.Buffer, n, cost int) (*Op, error) {
	h, w, c, ph, pw := g.sides()
	wg := l.ewWorkgroupSize()
	all := map[string]float64{
		"H": float64(h), "W": float64(w), "C": float64(c), "PH": float64(ph), "PW": float64(pw),
		"KH": float64(g.KH), "KW": float64(g.KW), "S": float64(g.Stride), "P": float64(g.Pad),
		"wg": float64(wg),
	}
	for k, v := range consts {
		all[k] = v
	}
	return l.build(opSpec{
		name:    entry,
		file:    "conv.wgsl",
		entry:   entry,
		consts:  all,
		buffers: bufs,
		params:  Params{n},
		grid:    l.ewGrid(n, cost, wg),
	})
}

// convCheck validates the geometry and the shapes of the columns and the image.
func (l *Library) convCheck(name string, g ConvGeom, cols, x *Tensor) error {
	if msg := g.problem(); msg != "" {
		return fmt.Errorf("%s: geometry %v: %s", name, g, msg)
	}
	cs, is := g.ColsShape(), g.ImageShape()
	if cols.Rows() != cs[0] || cols.Cols() != cs[1] {
		return fmt.Errorf("%s: cols is %s but %v has columns %d×%d (image x is %s)", name, ewShape(cols.Shape), g, cs[0], cs[1], ewShape(x.Shape))
	}
	if x.Rows() != is[0] || x.Cols() != is[1] {
		return fmt.Errorf("%s: image x is %s but %v has NHWC images %d×%d (cols is %s)", name, ewShape(x.Shape), g, is[0], is[1], ewShape(cols.Shape))
	}
	if cols.Buf.Shares(x.Buf) {
		return fmt.Errorf("%s: cols and x are the same buffer %q", name, x.Label())
	}
	for _, t := range []*Tensor{cols, x} {
		if err := philoxCheckBinding(l, name, "tensor "+t.Label(), t); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// float64 references

// convMustCheck panics on an invalid geometry (the references' contract).
func convMustCheck(ref string, g ConvGeom) {
	if err := g.Check(); err != nil {
		panic(fmt.Sprintf("kernels: %s: %v", ref, err))
	}
}

func convMustLen(ref, what string, xs []float64, n int) {
	if len(xs) != n {
		panic(fmt.Sprintf("kernels: %s: %s has %d values, want %d", ref, what, len(xs), n))
	}
}

// RefIm2Col is the reference of Im2Col: the columns [ColsShape] of the image x
// [ImageShape], row-major.
func RefIm2Col(x []float64, g ConvGeom) []float64 {
	convMustCheck("RefIm2Col", g)
	h, w, c, ph, pw := g.sides()
	convMustLen("RefIm2Col", "x", x, g.Batch*h*w*c)
	kkc := g.KH * g.KW * c
	cols := make([]float64, g.Batch*ph*pw*kkc)
	for b := 0; b < g.Batch; b++ {
		for oh := 0; oh < ph; oh++ {
			for ow := 0; ow < pw; ow++ {
				row := (b*ph+oh)*pw + ow
				for kh := 0; kh < g.KH; kh++ {
					for kw := 0; kw < g.KW; kw++ {
						ih, iw := oh*g.Stride-g.Pad+kh, ow*g.Stride-g.Pad+kw
						if ih < 0 || ih >= h || iw < 0 || iw >= w {
							continue
						}
						for ch := 0; ch < c; ch++ {
							cols[row*kkc+(kh*g.KW+kw)*c+ch] = x[((b*h+ih)*w+iw)*c+ch]
						}
					}
				}
			}
		}
	}
	return cols
}

// RefCol2Im is the reference of Col2ImAct: the image [ImageShape] summing the columns
// cols [ColsShape] that read each pixel, plus bias (C values, or nil), through act.
func RefCol2Im(cols, bias []float64, g ConvGeom, act Activation) []float64 {
	convMustCheck("RefCol2Im", g)
	h, w, c, ph, pw := g.sides()
	kkc := g.KH * g.KW * c
	convMustLen("RefCol2Im", "cols", cols, g.Batch*ph*pw*kkc)
	x := make([]float64, g.Batch*h*w*c)
	for b := 0; b < g.Batch; b++ {
		for oh := 0; oh < ph; oh++ {
			for ow := 0; ow < pw; ow++ {
				row := (b*ph+oh)*pw + ow
				for kh := 0; kh < g.KH; kh++ {
					for kw := 0; kw < g.KW; kw++ {
						ih, iw := oh*g.Stride-g.Pad+kh, ow*g.Stride-g.Pad+kw
						if ih < 0 || ih >= h || iw < 0 || iw >= w {
							continue
						}
						for ch := 0; ch < c; ch++ {
							x[((b*h+ih)*w+iw)*c+ch] += cols[row*kkc+(kh*g.KW+kw)*c+ch]
						}
					}
				}
			}
		}
	}
	if bias != nil {
		convMustLen("RefCol2Im", "bias", bias, c)
	}
	for i := range x {
		if bias != nil {
			x[i] += bias[i%c]
		}
		x[i] = RefActivate(act, x[i])
	}
	return x
}

// convTaps calls f for every (input pixel, kernel offset, output pixel) triple of the
// convolution g (Transposed false) — output (oh, ow) reads input (oh·S − P + kh,
// ow·S − P + kw) — or of the transposed convolution g (Transposed true) — input (ih, iw)
// writes output (ih·S − P + kh, iw·S − P + kw); in, out are pixel indices b·H·W + y·W + x.
func convTaps(g ConvGeom, f func(in, k, out int)) {
	oh, ow := g.OutH(), g.OutW()
	for b := 0; b < g.Batch; b++ {
		if !g.Transposed {
			for y := 0; y < oh; y++ {
				for x := 0; x < ow; x++ {
					for kh := 0; kh < g.KH; kh++ {
						for kw := 0; kw < g.KW; kw++ {
							iy, ix := y*g.Stride-g.Pad+kh, x*g.Stride-g.Pad+kw
							if iy >= 0 && iy < g.InH && ix >= 0 && ix < g.InW {
								f((b*g.InH+iy)*g.InW+ix, kh*g.KW+kw, (b*oh+y)*ow+x)
							}
						}
					}
				}
			}
			continue
		}
		for y := 0; y < g.InH; y++ {
			for x := 0; x < g.InW; x++ {
				for kh := 0; kh < g.KH; kh++ {
					for kw := 0; kw < g.KW; kw++ {
						oy, ox := y*g.Stride-g.Pad+kh, x*g.Stride-g.Pad+kw
						if oy >= 0 && oy < oh && ox >= 0 && ox < ow {
							f((b*g.InH+y)*g.InW+x, kh*g.KW+kw, (b*oh+oy)*ow+ox)
						}
					}
				}
			}
		}
	}
}

// RefConv2D is the float64 reference of a convolution, written directly (not through
// im2col): x [Batch, InH·InW·InC] NHWC, w [KH·KW·InC, OutC], b [OutC] or nil; returns y
// [Batch, OutH·OutW·OutC] NHWC with
//
//	y[n, oh, ow, oc] = b[oc] + Σ_{kh, kw, ic} x[n, oh·S − P + kh, ow·S − P + kw, ic] · w[(kh·KW + kw)·InC + ic, oc].
//
// g.Transposed is ignored (taken as false). It panics on an invalid geometry or lengths.
func RefConv2D(x, w, b []float64, g ConvGeom) []float64 {
	g.Transposed = false
	return refConvForward("RefConv2D", x, w, b, g)
}

// RefConvTranspose2D is the float64 reference of a transposed convolution, written
// directly: x [Batch, InH·InW·InC] NHWC, w [InC, KH·KW·OutC], b [OutC] or nil; returns y
// [Batch, OutH·OutW·OutC] NHWC (OutH = (InH − 1)·S − 2P + KH + OutPad) with
//
//	y[n, ih·S − P + kh, iw·S − P + kw, oc] += x[n, ih, iw, ic] · w[ic, (kh·KW + kw)·OutC + oc]   (then + b[oc]),
//
// terms falling outside the output dropped. g.Transposed is ignored (taken as true).
func RefConvTranspose2D(x, w, b []float64, g ConvGeom) []float64 {
	g.Transposed = true
	return refConvForward("RefConvTranspose2D", x, w, b, g)
}

// convWIndex is the weight element of (input channel ic, kernel offset k, output channel oc).
func convWIndex(g ConvGeom, ic, k, oc int) int {
	if g.Transposed {
		return ic*g.KH*g.KW*g.OutC + k*g.OutC + oc
	}
	return (k*g.InC+ic)*g.OutC + oc
}

func refConvForward(ref string, x, w, b []float64, g ConvGeom) []float64 {
	convMustCheck(ref, g)
	convMustLen(ref, "x", x, g.Batch*g.InLen())
	ws := g.WeightShape()
	convMustLen(ref, "w", w, ws[0]*ws[1])
	if b != nil {
		convMustLen(ref, "b", b, g.OutC)
	}
	y := make([]float64, g.Batch*g.OutLen())
	convTaps(g, func(in, k, out int) {
		for ic := 0; ic < g.InC; ic++ {
			xv := x[in*g.InC+ic]
			for oc := 0; oc < g.OutC; oc++ {
				y[out*g.OutC+oc] += xv * w[convWIndex(g, ic, k, oc)]
			}
		}
	})
	if b != nil {
		for i := range y {
			y[i] += b[i%g.OutC]
		}
	}
	return y
}

// RefConv2DBackward is the float64 reference of a convolution's backward pass, written
// directly: given x, w (as for RefConv2D) and dy = ∂L/∂y [Batch, OutLen], it returns
// dx = ∂L/∂x, dW = ∂L/∂w and db = ∂L/∂b (fresh, not accumulated).
func RefConv2DBackward(x, w, dy []float64, g ConvGeom) (dx, dW, db []float64) {
	g.Transposed = false
	return refConvBackward("RefConv2DBackward", x, w, dy, g)
}

// RefConvTranspose2DBackward is the float64 reference of a transposed convolution's
// backward pass, written directly: given x, w (as for RefConvTranspose2D) and dy =
// ∂L/∂y [Batch, OutLen], it returns dx, dW and db.
func RefConvTranspose2DBackward(x, w, dy []float64, g ConvGeom) (dx, dW, db []float64) {
	g.Transposed = true
	return refConvBackward("RefConvTranspose2DBackward", x, w, dy, g)
}

func refConvBackward(ref string, x, w, dy []float64, g ConvGeom) (dx, dW, db []float64) {
	convMustCheck(ref, g)
	convMustLen(ref, "x", x, g.Batch*g.InLen())
	ws := g.WeightShape()
	convMustLen(ref, "w", w, ws[0]*ws[1])
	convMustLen(ref, "dy", dy, g.Batch*g.OutLen())
	dx, dW, db = make([]float64, len(x)), make([]float64, len(w)), make([]float64, g.OutC)
	convTaps(g, func(in, k, out int) {
		for ic := 0; ic < g.InC; ic++ {
			xv, s := x[in*g.InC+ic], 0.0
			for oc := 0; oc < g.OutC; oc++ {
				wi, d := convWIndex(g, ic, k, oc), dy[out*g.OutC+oc]
				s += d * w[wi]
				dW[wi] += xv * d
			}
			dx[in*g.InC+ic] += s
		}
	})
	for i, d := range dy {
		db[i%g.OutC] += d
	}
	return dx, dW, db
}
