package onnx

import (
	"fmt"

	"osds/kernels"
	"osds/nn"
)

// Layer is an imported model as a frozen nn.Layer: rows of the graph input's size in,
// rows of one output out, its backward the vector-Jacobian product (no parameters, so
// LayerIO.ParamGrads is moot). It is how a PyTorch generator becomes a prior's
// Generator, or a classifier a constraint, without either knowing about ONNX.
//
// Images cross the boundary in osds's layout: a prior's rows are NHWC (H·W·C per row,
// channels innermost), an ONNX convolutional model's tensors NCHW. With InImage or
// OutImage set (C > 1) the layer transposes between the two with one strided copy;
// for C = 1 the layouts agree and the copy is a plain one.
type Layer struct {
	Model *Model
	// Output names the output the layer produces ("": the first).
	Output string
	// InImage and OutImage, when set, are the (H, W, C) of an NCHW image input or output
	// to be exchanged as NHWC rows.
	InImage, OutImage *[3]int
	// inWidth and outWidth are the row widths (every non-batch axis).
	inWidth, outWidth int
}

// NewLayer wraps output ("": the first) of m. outShape, when not nil, gives the output's
// non-batch shape where the file leaves axes symbolic; otherwise the file's shape must be
// static apart from the batch axis.
func NewLayer(m *Model, output string, outShape []int) (*Layer, error) {
	y := &Layer{Model: m, Output: output}
	var err error
	if y.inWidth, err = rowWidth(m.Input.Shape, "input "+m.Input.String()); err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", m.Name, err)
	}
	o, err := m.output(output)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", m.Name, err)
	}
	shape := o.Shape
	if outShape != nil {
		shape = append([]int{-1}, outShape...)
	}
	if y.outWidth, err = rowWidth(shape, "output "+o.String()); err != nil {
		return nil, fmt.Errorf("onnx: %s: %w (give the output's shape)", m.Name, err)
	}
	return y, nil
}

// output finds an output by name ("": the first).
func (m *Model) output(name string) (Value, error) {
	if name == "" {
		return m.Outputs[0], nil
	}
	var names []string
	for _, o := range m.Outputs {
		if o.Name == name {
			return o, nil
		}
		names = append(names, o.Name)
	}
	return Value{}, fmt.Errorf("no output %q (the outputs are %v)", name, names)
}

// rowWidth is the product of a shape's non-batch axes, which must be known.
func rowWidth(shape []int, what string) (int, error) {
	if len(shape) == 0 {
		return 1, nil
	}
	n := 1
	for i, s := range shape[1:] {
		if s < 0 {
			return 0, fmt.Errorf("%s: axis %d is symbolic; only the batch axis (0) may be", what, i+1)
		}
		n *= s
	}
	return n, nil
}

// InWidth is the width of the input rows.
func (y *Layer) InWidth() int { return y.inWidth }

// Params returns nil: an imported model is frozen.
func (y *Layer) Params() []*nn.Param { return nil }

// OutWidth returns the output row width for input rows of width in.
func (y *Layer) OutWidth(in int) (int, error) {
	if in != y.inWidth {
		return 0, fmt.Errorf("the ONNX model %s takes rows of %d values (%s), not %d", y.Model.Name, y.inWidth, y.Model.Input, in)
	}
	return y.outWidth, nil
}

// Build records the model for io: the graph reads io.X in place; its output is copied
// (or transposed) into io.Y, and with io.DY and io.DX the VJP runs from a copy of io.DY
// into io.DX.
func (y *Layer) Build(l *kernels.Library, io nn.LayerIO) (*nn.Pass, error) {
	B := io.X.Rows()
	backward := io.DY != nil && io.DX != nil
	p := &nn.Pass{}
	fail := func(err error) (*nn.Pass, error) {
		p.Release()
		return nil, fmt.Errorf("onnx: %s: %w", y.Model.Name, err)
	}
	input := io.X
	if y.InImage != nil && y.InImage[2] > 1 {
		// The graph reads NCHW: a transposed copy of the NHWC rows goes first.
		h, w, c := y.InImage[0], y.InImage[1], y.InImage[2]
		nchw, err := kernels.NewTensor(l.Device(), "onnx input (NCHW)", B, c*h*w)
		if err != nil {
			return fail(err)
		}
		p.Own(nchw)
		op, err := l.CopyND(nchw, kernels.Contiguous([]int{B, c, h, w}), io.X, nhwcLayout(h, w, c), []int{B, c, h, w}, 1)
		if err != nil {
			return fail(err)
		}
		p.Forward = append(p.Forward, op)
		input = nchw
	}
	g, err := y.Model.Build(l, B, BuildOptions{Output: y.Output, Backward: backward, Input: input})
	if err != nil {
		return fail(err)
	}
	p.OnRelease(g.Release)
	if n := numel(g.OutputShape); n != B*y.outWidth {
		return fail(fmt.Errorf("the output %v has %d values, not the %d×%d the layer was declared with", g.OutputShape, n, B, y.outWidth))
	}
	p.Forward = append(p.Forward, g.Forward...)
	toRows, fromRows, err := y.exchange(l, B, g)
	if err != nil {
		return fail(err)
	}
	out, err := toRows(io.Y, g.Output)
	if err != nil {
		return fail(err)
	}
	p.Forward = append(p.Forward, out)
	if !backward {
		return p, nil
	}
	in, err := fromRows(g.Cotangent, io.DY)
	if err != nil {
		return fail(err)
	}
	p.Backward = append(p.Backward, in)
	p.Backward = append(p.Backward, g.Backward...)
	if y.InImage != nil && y.InImage[2] > 1 {
		h, w, c := y.InImage[0], y.InImage[1], y.InImage[2]
		op, err := l.CopyND(io.DX, nhwcLayout(h, w, c), g.InputGrad, kernels.Contiguous([]int{B, c, h, w}), []int{B, c, h, w}, 1)
		if err != nil {
			return fail(err)
		}
		p.Backward = append(p.Backward, op)
	} else {
		op, err := l.CopyND(io.DX, kernels.Contiguous([]int{B * y.inWidth}), g.InputGrad, kernels.Contiguous([]int{B * y.inWidth}), []int{B * y.inWidth}, 1)
		if err != nil {
			return fail(err)
		}
		p.Backward = append(p.Backward, op)
	}
	return p, nil
}

// exchange returns the copies between the graph's output and osds rows: toRows(rows,
// out) writes the output into rows, fromRows(out, rows) the reverse (for the cotangent),
// transposing NCHW ↔ NHWC when OutImage has several channels.
func (y *Layer) exchange(l *kernels.Library, B int, g *Graph) (toRows, fromRows func(dst, src *kernels.Tensor) (*kernels.Op, error), err error) {
	if y.OutImage != nil && y.OutImage[2] > 1 {
		h, w, c := y.OutImage[0], y.OutImage[1], y.OutImage[2]
		if numel(g.OutputShape) != B*h*w*c {
			return nil, nil, fmt.Errorf("the output %v is not %d images of %d×%d×%d", g.OutputShape, B, h, w, c)
		}
		shape := []int{B, c, h, w}
		toRows = func(dst, src *kernels.Tensor) (*kernels.Op, error) {
			return l.CopyND(dst, nhwcLayout(h, w, c), src, kernels.Contiguous(shape), shape, 1)
		}
		fromRows = func(dst, src *kernels.Tensor) (*kernels.Op, error) {
			return l.CopyND(dst, kernels.Contiguous(shape), src, nhwcLayout(h, w, c), shape, 1)
		}
		return toRows, fromRows, nil
	}
	flat := []int{B * y.outWidth}
	plain := func(dst, src *kernels.Tensor) (*kernels.Op, error) {
		return l.CopyND(dst, kernels.Contiguous(flat), src, kernels.Contiguous(flat), flat, 1)
	}
	return plain, plain, nil
}

// nhwcLayout addresses NHWC rows by NCHW indices (b, c, h, w).
func nhwcLayout(h, w, c int) kernels.Layout {
	return kernels.Layout{Strides: []int{h * w * c, 1, w * c, c}}
}
