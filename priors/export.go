package priors

import (
	"encoding/json"
	"fmt"

	"osds/nn"
	"osds/nn/onnx"
)

// Export of osds's own models as ONNX (opset 17, default domain only), for PyTorch and
// onnxruntime users and for osds's importer (nn/onnx). Each graph is the same
// computation as the native forward pass, written so that osds's importer runs the same
// kernels on the same operands in the same order: a re-imported prior gives bit-identical
// samples (priors/export_test.go checks every shipped model; the one exception, a flow
// whose Clamp is not a power of two, is a rounding of the native coupling kernel that no
// ONNX operator reproduces, see docs/onnx.md). Where the natural ONNX form would reduce
// in another order, the graph spells the native order out:
//
//   - nn.Linear (x·W + b, W [in, out]) is Gemm with B = W, transB = 0 and C = b: the
//     importer's fused-bias matmul, as native.
//   - nn.Conv2D sums over its im2col columns in (kh, kw, c) order (NHWC); ONNX Conv, as
//     the importer runs it, sums in (c, kh, kw) order. The two agree when InC = 1 or the
//     kernel is 1×1, and then the layer is a plain Conv; otherwise it is written as
//     Pad, one strided Slice per kernel tap, a Concat along the channels in (kh, kw, c)
//     order and a 1×1 Conv: the same columns, the same reduction.
//   - nn.ConvTranspose2D is a plain ConvTranspose: its matmul reduces over the input
//     channels either way and both col2im kernels add the taps in ascending (kh, kw)
//     order, the bias last.
//   - Activations are separate Relu/Sigmoid nodes (native Sequentials run them as
//     separate dispatches too; a ReLU fused into a matmul's epilogue, as in the flow's
//     coupling networks, is the same max(x, 0) of the same float).
//
// Tensors are NCHW at the graph's boundary: a generator's output is [batch, 1, H, W]
// (the prior's NHWC rows are the same memory for one channel), a classifier's input
// [batch, 1, Side, Side].

// ExportONNX writes m (a VAE decoder, GAN generator, flow in its generative direction
// z → x, or a classifier x → log-probabilities) to path as an ONNX model, atomically.
func ExportONNX(m Model, path string) error {
	data, err := MarshalONNX(m, nil)
	if err != nil {
		return err
	}
	if err := nn.WriteFileAtomic(path, data); err != nil {
		return fmt.Errorf("priors: exporting %s: %w", path, err)
	}
	return nil
}

// MarshalONNX returns m as an ONNX model (see ExportONNX), reading its weights from the
// device. meta is added to the model's metadata_props (beside osds.kind and osds.arch).
//
//	vae, gan   z [batch, Latent] → x [batch, 1, H, W], pixels in (0, 1)
//	flow       z [batch, H·W] → x [batch, 1, H, W], pixels in [0, 1]
//	classifier x [batch, 1, Side, Side] → log_probs [batch, Classes] (LogSoftmax) and
//	           logits [batch, Classes]
//
// Models that are not osds's own (an imported ONNX prior) and flows whose checkerboard
// masks cannot be written as strided slices (an odd height or width) are refused.
func MarshalONNX(m Model, meta map[string]string) ([]byte, error) {
	arch, err := json.Marshal(m.Architecture())
	if err != nil {
		return nil, fmt.Errorf("priors: exporting a %s: %w", m.Kind(), err)
	}
	e := &onnxExport{w: onnx.NewWriter("osds-" + m.Kind())}
	e.w.Metadata = map[string]string{MetaKind: m.Kind(), MetaArch: string(arch)}
	for k, v := range meta {
		e.w.Metadata[k] = v
	}
	switch v := m.(type) {
	case *VAE:
		err = e.vae(v)
	case *GAN:
		err = e.gan(v)
	case *Flow:
		err = e.flow(v)
	case *Classifier:
		err = e.classifier(v)
	default:
		if m.Kind() == "onnx" {
			return nil, fmt.Errorf("priors: this prior was imported from an ONNX file; use that file (exporting it again is not supported)")
		}
		return nil, fmt.Errorf("priors: exporting a %s model (%T) to ONNX is not supported (vae, gan, flow and classifier are)", m.Kind(), m)
	}
	if err != nil {
		return nil, fmt.Errorf("priors: exporting a %s to ONNX: %w", m.Kind(), err)
	}
	return e.w.Bytes()
}

// onnxExport writes one model's graph.
type onnxExport struct {
	w      *onnx.Writer
	consts int
}

// ints adds an int64 constant (a shape, axes, pads, slice bounds) under a fresh name.
func (e *onnxExport) ints(vs ...int64) string {
	e.consts++
	return e.w.Int64(fmt.Sprintf("const.%d", e.consts), vs...)
}

// scalar adds a float32 scalar constant called name.
func (e *onnxExport) scalar(name string, v float32) string {
	return e.w.Float32(name, nil, []float32{v})
}

// reshape is x viewed with shape (−1: the batch axis, inferred).
func (e *onnxExport) reshape(x, out string, shape ...int64) string {
	return e.w.Node("Reshape", out, []string{x, e.ints(shape...)})
}

// slice is x[starts:ends:steps] along axes.
func (e *onnxExport) slice(x, out string, starts, ends, axes, steps []int64) string {
	in := []string{x, e.ints(starts...), e.ints(ends...), e.ints(axes...)}
	if steps != nil {
		in = append(in, e.ints(steps...))
	}
	return e.w.Node("Slice", out, in)
}

func (e *onnxExport) concat(out string, axis int64, parts ...string) string {
	return e.w.Node("Concat", out, parts, onnx.IntAttr("axis", axis))
}

// read returns a parameter's values from the device.
func read(p *nn.Param) ([]float32, error) {
	v, err := p.Value.Read()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p.Name, err)
	}
	return v, nil
}

// linear writes y = x·W + b as Gemm(x, W, b) with W [in, out] (transB = 0): the same
// fused-bias matmul as nn.Linear's forward.
func (e *onnxExport) linear(x, out string, m *nn.Linear) (string, error) {
	w, err := read(m.W)
	if err != nil {
		return "", err
	}
	b, err := read(m.B)
	if err != nil {
		return "", err
	}
	wn := e.w.Float32(m.W.Name, []int{m.In, m.Out}, w)
	bn := e.w.Float32(m.B.Name, []int{m.Out}, b)
	return e.w.Node("Gemm", out, []string{x, wn, bn}), nil
}

// convTranspose writes the layer on an NCHW input as ConvTranspose, its weight permuted
// from nn's [InC, (kh, kw, OutC)] to ONNX's [InC, OutC, KH, KW].
func (e *onnxExport) convTranspose(x, out string, m *nn.ConvTranspose2D) (string, error) {
	g := m.Geom
	w, err := read(m.W)
	if err != nil {
		return "", err
	}
	b, err := read(m.B)
	if err != nil {
		return "", err
	}
	ow := make([]float32, len(w))
	for ic := 0; ic < g.InC; ic++ {
		for kh := 0; kh < g.KH; kh++ {
			for kw := 0; kw < g.KW; kw++ {
				for oc := 0; oc < g.OutC; oc++ {
					ow[((ic*g.OutC+oc)*g.KH+kh)*g.KW+kw] = w[ic*g.KH*g.KW*g.OutC+(kh*g.KW+kw)*g.OutC+oc]
				}
			}
		}
	}
	wn := e.w.Float32(m.W.Name, []int{g.InC, g.OutC, g.KH, g.KW}, ow)
	bn := e.w.Float32(m.B.Name, []int{g.OutC}, b)
	s, p := int64(g.Stride), int64(g.Pad)
	attrs := []onnx.Attr{
		onnx.IntsAttr("kernel_shape", int64(g.KH), int64(g.KW)),
		onnx.IntsAttr("strides", s, s),
		onnx.IntsAttr("pads", p, p, p, p),
	}
	if g.OutPad > 0 {
		attrs = append(attrs, onnx.IntsAttr("output_padding", int64(g.OutPad), int64(g.OutPad)))
	}
	return e.w.Node("ConvTranspose", out, []string{x, wn, bn}, attrs...), nil
}

// conv writes the layer on an NCHW input x [B, InC, InH, InW]. With one input channel or
// a 1×1 kernel, ONNX Conv's (c, kh, kw) reduction order is nn.Conv2D's (kh, kw, c), and
// the layer is a plain Conv. Otherwise the native im2col is spelled out: Pad, one strided
// Slice per tap (kh, kw) → [B, InC, OutH, OutW], Concat along the channels → [B,
// KH·KW·InC, OutH, OutW] with channel (kh·KW + kw)·InC + c (the native column), and a
// 1×1 Conv whose weight is the native W [KH·KW·InC, OutC] transposed.
func (e *onnxExport) conv(x, out string, m *nn.Conv2D) (string, error) {
	g := m.Geom
	w, err := read(m.W)
	if err != nil {
		return "", err
	}
	b, err := read(m.B)
	if err != nil {
		return "", err
	}
	k := g.KH * g.KW * g.InC
	bn := e.w.Float32(m.B.Name, []int{g.OutC}, b)
	if g.InC == 1 || g.KH*g.KW == 1 {
		ow := make([]float32, len(w))
		for o := 0; o < g.OutC; o++ {
			for c := 0; c < g.InC; c++ {
				for kh := 0; kh < g.KH; kh++ {
					for kw := 0; kw < g.KW; kw++ {
						ow[((o*g.InC+c)*g.KH+kh)*g.KW+kw] = w[((kh*g.KW+kw)*g.InC+c)*g.OutC+o]
					}
				}
			}
		}
		wn := e.w.Float32(m.W.Name, []int{g.OutC, g.InC, g.KH, g.KW}, ow)
		s, p := int64(g.Stride), int64(g.Pad)
		return e.w.Node("Conv", out, []string{x, wn, bn},
			onnx.IntsAttr("kernel_shape", int64(g.KH), int64(g.KW)),
			onnx.IntsAttr("strides", s, s),
			onnx.IntsAttr("pads", p, p, p, p)), nil
	}
	ow := make([]float32, len(w)) // [OutC, K, 1, 1]: the transpose of the native [K, OutC]
	for r := 0; r < k; r++ {
		for o := 0; o < g.OutC; o++ {
			ow[o*k+r] = w[r*g.OutC+o]
		}
	}
	wn := e.w.Float32(m.W.Name, []int{g.OutC, k, 1, 1}, ow)
	padded := x
	if g.Pad > 0 {
		p := int64(g.Pad)
		padded = e.w.Node("Pad", out+".padded", []string{x, e.ints(0, 0, p, p, 0, 0, p, p)}, onnx.StringAttr("mode", "constant"))
	}
	oh, owd, s := int64(g.OutH()), int64(g.OutW()), int64(g.Stride)
	var taps []string
	for kh := int64(0); kh < int64(g.KH); kh++ {
		for kw := int64(0); kw < int64(g.KW); kw++ {
			taps = append(taps, e.slice(padded, fmt.Sprintf("%s.tap%d_%d", out, kh, kw),
				[]int64{kh, kw}, []int64{kh + (oh-1)*s + 1, kw + (owd-1)*s + 1}, []int64{2, 3}, []int64{s, s}))
		}
	}
	cols := e.concat(out+".cols", 1, taps...)
	return e.w.Node("Conv", out, []string{cols, wn, bn}, onnx.IntsAttr("kernel_shape", 1, 1)), nil
}

// imageOut reshapes the generator's rows x [B, D] to the output [B, 1, H, W] (or keeps
// [B, D] when the prior's image does not tile D) and declares it.
func (e *onnxExport) imageOut(x string, d, h, w, c int) {
	if h*w*c == d && c == 1 {
		e.w.Output(e.reshape(x, "x", -1, 1, int64(h), int64(w)), onnx.Batch, 1, h, w)
		return
	}
	e.w.Output(e.w.Node("Identity", "x", []string{x}), onnx.Batch, d)
}

func (e *onnxExport) vae(v *VAE) error {
	e.w.DocString = "osds VAE decoder f(z) = sigmoid(logits(z)): z [batch, latent] ~ N(0, I) → x [batch, 1, H, W] in (0, 1)"
	z := e.w.Input("z", onnx.Batch, v.Arch.Latent)
	h, w, c := v.Image()
	if v.Arch.DecoderChannels > 0 {
		x, err := e.upsampler(z, "dec", v.DecFC1, v.DecUp1, v.DecUp2)
		if err != nil {
			return err
		}
		e.imageOut(e.w.Node("Sigmoid", "dec.sigmoid", []string{x}), v.Arch.Pixels, h, w, c)
		return nil
	}
	x, err := e.linear(z, "dec.fc1", v.DecFC1)
	if err != nil {
		return err
	}
	x = e.w.Node("Relu", "dec.relu", []string{x})
	if x, err = e.linear(x, "dec.fc2", v.DecFC2); err != nil {
		return err
	}
	e.imageOut(e.w.Node("Sigmoid", "dec.sigmoid", []string{x}), v.Arch.Pixels, h, w, c)
	return nil
}

func (e *onnxExport) gan(g *GAN) error {
	e.w.DocString = "osds GAN generator: z [batch, latent] ~ N(0, I) → x [batch, 1, 28, 28] in (0, 1)"
	z := e.w.Input("z", onnx.Batch, g.Arch.Latent)
	x, err := e.upsampler(z, "gen", g.FC, g.Up1, g.Up2)
	if err != nil {
		return err
	}
	h, w, c := g.Image()
	e.imageOut(e.w.Node("Sigmoid", "gen.sigmoid", []string{x}), h*w*c, h, w, c)
	return nil
}

// upsampler is the DCGAN-style stack shared by the GAN and the convolutional VAE decoder:
// ReLU(Linear) as NHWC 7×7×C, transposed to NCHW, ReLU(ConvTranspose), ConvTranspose →
// logits [B, OutC, 28, 28].
func (e *onnxExport) upsampler(z, prefix string, fc *nn.Linear, up1, up2 *nn.ConvTranspose2D) (string, error) {
	g1 := up1.Geom
	x, err := e.linear(z, prefix+".fc", fc)
	if err != nil {
		return "", err
	}
	x = e.w.Node("Relu", prefix+".fc.relu", []string{x})
	x = e.reshape(x, prefix+".fc.nhwc", -1, int64(g1.InH), int64(g1.InW), int64(g1.InC))
	x = e.w.Node("Transpose", prefix+".fc.nchw", []string{x}, onnx.IntsAttr("perm", 0, 3, 1, 2))
	if x, err = e.convTranspose(x, prefix+".up1", up1); err != nil {
		return "", err
	}
	x = e.w.Node("Relu", prefix+".up1.relu", []string{x})
	return e.convTranspose(x, prefix+".up2", up2)
}

func (e *onnxExport) classifier(c *Classifier) error {
	a := c.Arch
	e.w.DocString = "osds classifier: x [batch, 1, side, side] (pixels in [0, 1]) → log_probs [batch, classes] (LogSoftmax of the logits) and logits"
	x := e.w.Input("x", onnx.Batch, 1, a.Side, a.Side)
	h, err := e.conv(x, "cls.conv1", c.Conv1)
	if err != nil {
		return err
	}
	h = e.w.Node("Relu", "cls.relu1", []string{h})
	if h, err = e.conv(h, "cls.conv2", c.Conv2); err != nil {
		return err
	}
	h = e.w.Node("Relu", "cls.relu2", []string{h})
	// fc1 reads the NHWC rows of conv2's output.
	g2 := c.Conv2.Geom
	h = e.w.Node("Transpose", "cls.conv2.nhwc", []string{h}, onnx.IntsAttr("perm", 0, 2, 3, 1))
	h = e.reshape(h, "cls.flat", -1, int64(g2.OutLen()))
	if h, err = e.linear(h, "cls.fc1", c.FC1); err != nil {
		return err
	}
	h = e.w.Node("Relu", "cls.relu3", []string{h})
	logits, err := e.linear(h, "logits", c.FC2)
	if err != nil {
		return err
	}
	lp := e.w.Node("LogSoftmax", "log_probs", []string{logits}, onnx.IntAttr("axis", 1))
	e.w.Output(lp, onnx.Batch, a.Classes)
	e.w.Output(logits, onnx.Batch, a.Classes)
	return nil
}

// flow writes the generative direction f(z) = out(c_0⁻¹(…c_{K−1}⁻¹(z))): per coupling the
// conditioning pixels A and the transformed pixels B as strided slices of the image (in
// the ascending pixel order of FlowArch.Partition), the coupling MLP, and
//
//	s = a·tanh(ŝ/a),   y[B] = (x[B] − t)·exp(−s)
//
// as Div, Tanh, Mul, Sub, Neg, Exp, Mul (the operations, operands and order of
// flow.wgsl's inverse coupling), then the output transform clamp((sigmoid(y) − α)/(1 −
// 2α), 0, 1) with the clamp as Relu(v) − Relu(v − 1) (exact for v < 2; v ≤ (1 −
// α)/(1 − 2α) here).
func (e *onnxExport) flow(f *Flow) error {
	a := f.Arch
	H, W, D := int64(a.Height), int64(a.Width), int64(a.D())
	// Both mask families start with a checkerboard coupling.
	if a.Height%2 != 0 || a.Width%2 != 0 {
		return fmt.Errorf("flow on %d×%d images: checkerboard masks are exported as stride-2 slices, which needs an even height and width", a.Height, a.Width)
	}
	e.w.DocString = "osds RealNVP flow, generative direction: z [batch, H·W] ~ N(0, I) → x [batch, 1, H, W] in [0, 1]"
	y := e.w.Input("z", onnx.Batch, a.D())
	clamp := e.scalar("flow.clamp", float32(a.Clamp))
	for c := a.Couplings - 1; c >= 0; c-- {
		p := fmt.Sprintf("flow.c%d", c)
		mode := c % 2
		if a.Masks == "checkerboard+halves" {
			mode = c % 4
		}
		var xa, xb string
		var bShape []int64
		var assemble func(yb string) string
		if mode < 2 {
			// Pixel (r, col) = (2i + u, 2j + v) of [B, H/2, 2, W/2, 2]; (r + col) % 2 = (u + v) % 2,
			// so A is {u + v ≡ mode}: (u, v) = (0, mode) and (1, 1 − mode), ordered by (i, u, j).
			x5 := e.reshape(y, p+".grid", -1, H/2, 2, W/2, 2)
			piece := func(u, v int64) string {
				return e.slice(x5, fmt.Sprintf("%s.s%d%d", p, u, v), []int64{u, v}, []int64{u + 1, v + 1}, []int64{2, 4}, nil)
			}
			m := int64(mode)
			a0, a1 := piece(0, m), piece(1, 1-m)
			b0, b1 := piece(0, 1-m), piece(1, m)
			xa = e.reshape(e.concat(p+".a", 2, a0, a1), p+".xa", -1, int64(f.couplings[c].NA))
			xb = e.concat(p+".xb", 2, b0, b1)
			bShape = []int64{-1, H / 2, 2, W / 2, 1}
			assemble = func(yb string) string {
				n0 := e.slice(yb, p+".yb0", []int64{0}, []int64{1}, []int64{2}, nil)
				n1 := e.slice(yb, p+".yb1", []int64{1}, []int64{2}, []int64{2}, nil)
				// Row parity u = 0 holds A at v = mode, B at v = 1 − mode; u = 1 the other way.
				row0, row1 := []string{a0, n0}, []string{n1, a1}
				if mode == 1 {
					row0, row1 = []string{n0, a0}, []string{a1, n1}
				}
				r0, r1 := e.concat(p+".row0", 4, row0...), e.concat(p+".row1", 4, row1...)
				return e.reshape(e.concat(p+".grid.out", 2, r0, r1), p, -1, D)
			}
		} else {
			// Halves: A is the left (mode 2) or right (mode 3) columns.
			x3 := e.reshape(y, p+".rows", -1, H, W)
			left := e.slice(x3, p+".left", []int64{0}, []int64{W / 2}, []int64{2}, nil)
			right := e.slice(x3, p+".right", []int64{W / 2}, []int64{W}, []int64{2}, nil)
			av, bv, bw := left, right, W-W/2
			if mode == 3 {
				av, bv, bw = right, left, W/2
			}
			xa = e.reshape(av, p+".xa", -1, int64(f.couplings[c].NA))
			xb = bv
			bShape = []int64{-1, H, bw}
			assemble = func(yb string) string {
				parts := []string{av, yb} // A left, B right
				if mode == 3 {
					parts = []string{yb, av}
				}
				return e.reshape(e.concat(p+".rows.out", 2, parts...), p, -1, D)
			}
		}
		// The coupling network: ReLU hidden layers, an affine last layer → h [B, 2·NB].
		h := xa
		net := f.Nets[c]
		for i, l := range net {
			var err error
			if h, err = e.linear(h, fmt.Sprintf("%s.fc%d", p, i+1), l); err != nil {
				return err
			}
			if i+1 < len(net) {
				h = e.w.Node("Relu", fmt.Sprintf("%s.fc%d.relu", p, i+1), []string{h})
			}
		}
		nb := int64(f.couplings[c].NB())
		sh := e.reshape(e.slice(h, p+".shat.flat", []int64{0}, []int64{nb}, []int64{1}, nil), p+".shat", bShape...)
		t := e.reshape(e.slice(h, p+".t.flat", []int64{nb}, []int64{2 * nb}, []int64{1}, nil), p+".t", bShape...)
		th := e.w.Node("Tanh", p+".tanh", []string{e.w.Node("Div", p+".shat.scaled", []string{sh, clamp})})
		s := e.w.Node("Mul", p+".s", []string{clamp, th})
		scale := e.w.Node("Exp", p+".exp", []string{e.w.Node("Neg", p+".neg_s", []string{s})})
		yb := e.w.Node("Mul", p+".yb", []string{e.w.Node("Sub", p+".centred", []string{xb, t}), scale})
		y = assemble(yb)
	}
	alpha := float32(a.Alpha)
	span := float32(1) - float32(2*alpha) // flow.wgsl's 1 − 2α in float32
	sg := e.w.Node("Sigmoid", "flow.out.sigmoid", []string{y})
	v := e.w.Node("Div", "flow.out.scaled", []string{e.w.Node("Sub", "flow.out.shifted", []string{sg, e.scalar("flow.alpha", alpha)}), e.scalar("flow.span", span)})
	low := e.w.Node("Relu", "flow.out.low", []string{v})
	high := e.w.Node("Relu", "flow.out.high", []string{e.w.Node("Sub", "flow.out.over", []string{v, e.scalar("flow.one", 1)})})
	x := e.w.Node("Sub", "flow.out", []string{low, high})
	e.imageOut(x, a.D(), a.Height, a.Width, 1)
	return nil
}
