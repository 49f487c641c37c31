package onnx

import (
	"osds/kernels"
)

// Conv and ConvTranspose on NCHW tensors: im2col/col2im (kernels.Im2ColNCHW,
// Col2ImNCHW) around the engine's Matmul, with a strided copy between the matmul's
// [pixels, channels] rows and NCHW. 1-D convolutions ([B, C, L]) run as 2-D ones with
// H = 1. Only the VJP w.r.t. the data input is formed: weights and biases are constants.

// spatial is the per-axis geometry of a 2-D window op: (H, W) sizes, kernel, stride,
// dilation, and begin/end padding.
type spatial struct {
	in, k, s, d, pb, pe [2]int
}

// windowGeom reads kernel_shape (or the given kernel), strides, dilations, pads and
// auto_pad for an input of shape [B, C, spatial...] with 1 or 2 spatial axes.
func (c *nodeCtx) windowGeom(x []int, kernel []int, sameOK bool) (spatial, error) {
	var g spatial
	ns := len(x) - 2
	if ns != 1 && ns != 2 {
		return g, c.errf("input is %v: osds supports 1-D and 2-D windows (rank 3 or 4, NCHW)", x)
	}
	if k := c.attrInts("kernel_shape", nil); k != nil {
		kernel = k
	}
	if len(kernel) != ns {
		return g, c.errf("kernel_shape %v for %d spatial axes", kernel, ns)
	}
	strides := c.attrInts("strides", nil)
	dil := c.attrInts("dilations", nil)
	pads := c.attrInts("pads", nil)
	if strides != nil && len(strides) != ns || dil != nil && len(dil) != ns || pads != nil && len(pads) != 2*ns {
		return g, c.errf("strides %v, dilations %v, pads %v do not match %d spatial axes", strides, dil, pads, ns)
	}
	off := 2 - ns // a 1-D window is the W axis of a 2-D one with H = 1
	for i := 0; i < 2; i++ {
		g.in[i], g.k[i], g.s[i], g.d[i] = 1, 1, 1, 1
	}
	for i := 0; i < ns; i++ {
		a := i + off
		g.in[a], g.k[a] = x[2+i], kernel[i]
		if strides != nil {
			g.s[a] = strides[i]
		}
		if dil != nil {
			g.d[a] = dil[i]
		}
		if pads != nil {
			g.pb[a], g.pe[a] = pads[i], pads[i+ns]
		}
		if g.k[a] < 1 || g.s[a] < 1 || g.d[a] < 1 || g.pb[a] < 0 || g.pe[a] < 0 {
			return g, c.errf("kernel %v, strides %v, dilations %v, pads %v: each must be ≥ 1 (pads ≥ 0)", kernel, strides, dil, pads)
		}
	}
	switch ap := c.attrString("auto_pad", "NOTSET"); ap {
	case "NOTSET":
	case "VALID":
		g.pb, g.pe = [2]int{}, [2]int{}
	case "SAME_UPPER", "SAME_LOWER":
		if !sameOK {
			return g, c.errf("auto_pad %s is not supported here; export with explicit pads", ap)
		}
		for a := 0; a < 2; a++ {
			out := (g.in[a] + g.s[a] - 1) / g.s[a]
			total := max((out-1)*g.s[a]+(g.k[a]-1)*g.d[a]+1-g.in[a], 0)
			g.pb[a], g.pe[a] = total/2, total-total/2
			if ap == "SAME_LOWER" {
				g.pb[a], g.pe[a] = g.pe[a], g.pb[a]
			}
		}
	default:
		return g, c.errf("auto_pad %q is not supported", ap)
	}
	return g, nil
}

// outShape is [B, C, spatial...] with the spatial sizes of o (1 or 2 axes as x has).
func outShape(x []int, ch int, o [2]int) []int {
	if len(x) == 3 {
		return []int{x[0], ch, o[1]}
	}
	return []int{x[0], ch, o[0], o[1]}
}

// constWeights rejects weights that depend on the graph input (no gradient is formed
// for them) and returns their device tensors.
func (c *nodeCtx) constWeights(vs ...*val) ([]*kernels.Tensor, error) {
	out := make([]*kernels.Tensor, len(vs))
	for i, v := range vs {
		if v == nil {
			continue
		}
		if v.active {
			return nil, c.errf("input %d (%q) depends on the graph input; osds differentiates through the data input only", i+1, v.name)
		}
		t, err := c.b.device(v)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// permute3 returns the op copying src, contiguous over [a, b, p], to dst laid out as
// [a, p, b] (or the inverse with back): NCHW ↔ the matmul's [pixels, channels] rows.
func (c *nodeCtx) permute3(dst, src *kernels.Tensor, a, bdim, p int, back bool) (*kernels.Op, error) {
	shape := []int{a, bdim, p}
	rows := kernels.Layout{Strides: []int{p * bdim, 1, bdim}}
	if back {
		return c.b.lib.CopyND(dst, kernels.Contiguous(shape), src, rows, shape, 1)
	}
	return c.b.lib.CopyND(dst, rows, src, kernels.Contiguous(shape), shape, 1)
}

func conv(c *nodeCtx) error {
	x, w, bias := c.in(0), c.in(1), c.in(2)
	if c.attrInt("group", 1) != 1 {
		return c.errf("group = %d: grouped convolutions are not supported", c.attrInt("group", 1))
	}
	if len(w.shape) != len(x.shape) || len(x.shape) < 3 || w.shape[1] != x.shape[1] {
		return c.errf("input %v and weight %v: want [B, C, ...] and [OutC, C, ...] of one rank", x.shape, w.shape)
	}
	sp, err := c.windowGeom(x.shape, w.shape[2:], true)
	if err != nil {
		return err
	}
	var o [2]int
	for a := 0; a < 2; a++ {
		o[a] = (sp.in[a]+sp.pb[a]+sp.pe[a]-(sp.k[a]-1)*sp.d[a]-1)/sp.s[a] + 1
		if sp.in[a]+sp.pb[a]+sp.pe[a] < (sp.k[a]-1)*sp.d[a]+1 {
			return c.errf("the kernel %v (dilated) is larger than the padded input %v", w.shape[2:], x.shape[2:])
		}
	}
	oc, bsz, ic := w.shape[0], x.shape[0], x.shape[1]
	if bias != nil && numel(bias.shape) != oc {
		return c.errf("bias %v for %d output channels", bias.shape, oc)
	}
	ws, err := c.constWeights(w, bias)
	if err != nil {
		return err
	}
	g := kernels.PatchGeom{Batch: bsz, C: ic, H: sp.in[0], W: sp.in[1], PH: o[0], PW: o[1], KH: sp.k[0], KW: sp.k[1],
		SH: sp.s[0], SW: sp.s[1], PadT: sp.pb[0], PadL: sp.pb[1], DH: sp.d[0], DW: sp.d[1]}
	b := c.b
	tx, err := b.device(x)
	if err != nil {
		return err
	}
	cs := g.ColsShape()
	p := o[0] * o[1]
	wmat, err := ws[0].Reshaped(oc, cs[1])
	if err != nil {
		return err
	}
	cols, err := b.alloc(c.outName(0)+".cols", cs[:])
	if err != nil {
		return err
	}
	rows, err := b.alloc(c.outName(0)+".rows", []int{cs[0], oc})
	if err != nil {
		return err
	}
	out, err := c.newDev(0, outShape(x.shape, oc, o))
	if err != nil {
		return err
	}
	if err := b.fwd(b.lib.Im2ColNCHW(cols, tx, g)); err != nil {
		return err
	}
	if err := b.fwd(b.lib.Matmul(rows, cols, wmat, kernels.MatmulOptions{TransB: true, Bias: ws[1]})); err != nil {
		return err
	}
	if err := b.fwd(c.permute3(out.dev, rows, bsz, oc, p, true)); err != nil {
		return err
	}
	b.onBackward(func() error {
		gy := b.gradOf(out)
		if gy == nil || !x.active {
			return nil
		}
		grows, err := b.alloc(out.name+".rows.grad", []int{cs[0], oc})
		if err != nil {
			return err
		}
		gcols, err := b.alloc(out.name+".cols.grad", cs[:])
		if err != nil {
			return err
		}
		dx, err := b.alloc(out.name+".dx", x.shape)
		if err != nil {
			return err
		}
		if err := b.bwd(c.permute3(grows, gy, bsz, oc, p, false)); err != nil {
			return err
		}
		if err := b.bwd(b.lib.Matmul(gcols, grows, wmat, kernels.MatmulOptions{})); err != nil {
			return err
		}
		if err := b.bwd(b.lib.Col2ImNCHW(dx, gcols, nil, g)); err != nil {
			return err
		}
		return b.accum(x, dx)
	})
	return nil
}

func convTranspose(c *nodeCtx) error {
	x, w, bias := c.in(0), c.in(1), c.in(2)
	if c.attrInt("group", 1) != 1 {
		return c.errf("group = %d: grouped transposed convolutions are not supported", c.attrInt("group", 1))
	}
	if c.attr("output_shape") != nil {
		return c.errf("the output_shape attribute is not supported (torch.onnx.export writes pads and output_padding instead)")
	}
	if len(w.shape) != len(x.shape) || len(x.shape) < 3 || w.shape[0] != x.shape[1] {
		return c.errf("input %v and weight %v: want [B, InC, ...] and [InC, OutC, ...] of one rank", x.shape, w.shape)
	}
	sp, err := c.windowGeom(x.shape, w.shape[2:], false)
	if err != nil {
		return err
	}
	outPad := c.attrInts("output_padding", nil)
	var op [2]int
	if outPad != nil {
		if len(outPad) != len(x.shape)-2 {
			return c.errf("output_padding %v for %d spatial axes", outPad, len(x.shape)-2)
		}
		copy(op[2-len(outPad):], outPad)
	}
	var o [2]int
	for a := 0; a < 2; a++ {
		o[a] = sp.s[a]*(sp.in[a]-1) + op[a] + (sp.k[a]-1)*sp.d[a] + 1 - sp.pb[a] - sp.pe[a]
		if o[a] < 1 {
			return c.errf("the output would be empty (padding %v too large)", c.attrInts("pads", nil))
		}
	}
	ic, oc, bsz := x.shape[1], w.shape[1], x.shape[0]
	if bias != nil && numel(bias.shape) != oc {
		return c.errf("bias %v for %d output channels", bias.shape, oc)
	}
	ws, err := c.constWeights(w, bias)
	if err != nil {
		return err
	}
	// The image of the columns is the output; the positions are the input pixels.
	g := kernels.PatchGeom{Batch: bsz, C: oc, H: o[0], W: o[1], PH: sp.in[0], PW: sp.in[1], KH: sp.k[0], KW: sp.k[1],
		SH: sp.s[0], SW: sp.s[1], PadT: sp.pb[0], PadL: sp.pb[1], DH: sp.d[0], DW: sp.d[1]}
	b := c.b
	tx, err := b.device(x)
	if err != nil {
		return err
	}
	cs := g.ColsShape()
	p := sp.in[0] * sp.in[1]
	wmat, err := ws[0].Reshaped(ic, cs[1])
	if err != nil {
		return err
	}
	rows, err := b.alloc(c.outName(0)+".rows", []int{cs[0], ic})
	if err != nil {
		return err
	}
	cols, err := b.alloc(c.outName(0)+".cols", cs[:])
	if err != nil {
		return err
	}
	out, err := c.newDev(0, outShape(x.shape, oc, o))
	if err != nil {
		return err
	}
	if err := b.fwd(c.permute3(rows, tx, bsz, ic, p, false)); err != nil {
		return err
	}
	if err := b.fwd(b.lib.Matmul(cols, rows, wmat, kernels.MatmulOptions{})); err != nil {
		return err
	}
	if err := b.fwd(b.lib.Col2ImNCHW(out.dev, cols, ws[1], g)); err != nil {
		return err
	}
	b.onBackward(func() error {
		gy := b.gradOf(out)
		if gy == nil || !x.active {
			return nil
		}
		gcols, err := b.alloc(out.name+".cols.grad", cs[:])
		if err != nil {
			return err
		}
		grows, err := b.alloc(out.name+".rows.grad", []int{cs[0], ic})
		if err != nil {
			return err
		}
		dx, err := b.alloc(out.name+".dx", x.shape)
		if err != nil {
			return err
		}
		if err := b.bwd(b.lib.Im2ColNCHW(gcols, gy, g)); err != nil {
			return err
		}
		if err := b.bwd(b.lib.Matmul(grows, gcols, wmat, kernels.MatmulOptions{TransB: true})); err != nil {
			return err
		}
		if err := b.bwd(c.permute3(dx, grows, bsz, ic, p, true)); err != nil {
			return err
		}
		return b.accum(x, dx)
	})
	return nil
}
