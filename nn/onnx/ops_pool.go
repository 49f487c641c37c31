package onnx

import (
	"osds/kernels"
)

// poolOp is MaxPool (max) or AveragePool over 1-D or 2-D windows of NCHW input, with
// ceil_mode, count_include_pad (average) and dilations.
func poolOp(max bool) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		if err := c.onlyFirstOutput(); err != nil {
			return err
		}
		x := c.in(0)
		if c.attrInt("storage_order", 0) != 0 {
			return c.errf("storage_order = 1 is not supported")
		}
		if c.attr("kernel_shape") == nil {
			return c.errf("kernel_shape is required")
		}
		sp, err := c.windowGeom(x.shape, nil, true)
		if err != nil {
			return err
		}
		ceil := c.attrInt("ceil_mode", 0) != 0
		var o [2]int
		for a := 0; a < 2; a++ {
			span := sp.in[a] + sp.pb[a] + sp.pe[a] - (sp.k[a]-1)*sp.d[a] - 1
			if span < 0 {
				return c.errf("the window %v is larger than the padded input %v", c.attrInts("kernel_shape", nil), x.shape[2:])
			}
			if ceil {
				o[a] = (span+sp.s[a]-1)/sp.s[a] + 1
				// PyTorch (and onnxruntime) drop a last window that would start in the end
				// padding.
				if (o[a]-1)*sp.s[a] >= sp.in[a]+sp.pb[a] {
					o[a]--
				}
			} else {
				o[a] = span/sp.s[a] + 1
			}
		}
		shape := outShape(x.shape, x.shape[1], o)
		g := kernels.PoolGeom{N: x.shape[0] * x.shape[1], H: sp.in[0], W: sp.in[1], OH: o[0], OW: o[1], KH: sp.k[0], KW: sp.k[1],
			SH: sp.s[0], SW: sp.s[1], PadT: sp.pb[0], PadL: sp.pb[1], PadB: sp.pe[0], PadR: sp.pe[1], DH: sp.d[0], DW: sp.d[1],
			CountPad: c.attrInt("count_include_pad", 0) != 0}
		if err := g.Check(); err != nil {
			return err
		}
		b := c.b
		tx, err := b.device(x)
		if err != nil {
			return err
		}
		out, err := c.newDev(0, shape)
		if err != nil {
			return err
		}
		var idx *kernels.Tensor
		if max {
			if idx, err = b.alloc(out.name+".argmax", shape); err != nil {
				return err
			}
			err = b.fwd(b.lib.MaxPool(out.dev, idx, tx, g))
		} else {
			err = b.fwd(b.lib.AvgPool(out.dev, tx, g))
		}
		if err != nil {
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
			if max {
				err = b.bwd(b.lib.MaxPoolBackward(dx, gy, idx, g))
			} else {
				err = b.bwd(b.lib.AvgPoolBackward(dx, gy, g))
			}
			if err != nil {
				return err
			}
			return b.accum(x, dx)
		})
		return nil
	}
}
