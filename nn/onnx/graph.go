package onnx

import (
	"fmt"

	"osds/kernels"
)

// BuildOptions selects what Model.Build records.
type BuildOptions struct {
	// Output names the graph output whose vector-Jacobian product Backward computes; ""
	// is the first output. Every output is computed by the forward pass either way.
	Output string
	// Backward records the vector-Jacobian product w.r.t. the graph input: after the
	// Backward ops, InputGrad = J(x)ᵀ·Cotangent, J the Jacobian of the selected output.
	Backward bool
	// Input, when not nil, is bound as the graph input instead of a tensor Build allocates
	// (any shape of the input's size, e.g. the sampler's z [B, d]); the caller keeps it.
	Input *kernels.Tensor
}

// Output is one graph output as built.
type Output struct {
	Name   string
	Shape  []int
	Tensor *kernels.Tensor
}

// Graph is a model built for one batch size: the forward ops (read Input, write every
// output) and, when built with Backward, the VJP ops (read Cotangent and the forward
// activations, write InputGrad). Record the ops into a kernels.Recorder with other work,
// or use Run and VJP.
type Graph struct {
	// Batch is the batch size the graph was built for.
	Batch int
	// Input is the graph input, InputShape its shape (the batch axis filled in).
	Input      *kernels.Tensor
	InputShape []int
	// Output is the selected output (BuildOptions.Output), OutputShape its shape.
	Output      *kernels.Tensor
	OutputShape []int
	// Outputs are all outputs in file order (one of them is Output).
	Outputs []Output
	// Cotangent is ∂L/∂Output, written by the caller before the Backward ops; nil without
	// Backward.
	Cotangent *kernels.Tensor
	// InputGrad receives ∂L/∂Input = Jᵀ·Cotangent; nil without Backward.
	InputGrad *kernels.Tensor
	// Forward and Backward are the ops to record, in order.
	Forward, Backward []*kernels.Op

	lib   *kernels.Library
	owned []*kernels.Tensor
}

// Run writes x into Input, runs the forward pass and returns the selected output.
func (g *Graph) Run(x []float32) ([]float32, error) {
	if err := g.Input.Write(x); err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	if err := g.lib.Run(g.Forward...); err != nil {
		return nil, err
	}
	return g.Output.Read()
}

// VJP runs the forward pass at x and the backward pass with the cotangent dy, in one
// submission, and returns the output and Jᵀ·dy. The graph must be built with Backward.
func (g *Graph) VJP(x, dy []float32) (y, dx []float32, err error) {
	if g.Cotangent == nil {
		return nil, nil, fmt.Errorf("onnx: VJP of a graph built without Backward")
	}
	if err := g.Input.Write(x); err != nil {
		return nil, nil, fmt.Errorf("onnx: %w", err)
	}
	if err := g.Cotangent.Write(dy); err != nil {
		return nil, nil, fmt.Errorf("onnx: cotangent: %w", err)
	}
	if err := g.lib.Run(append(append([]*kernels.Op(nil), g.Forward...), g.Backward...)...); err != nil {
		return nil, nil, err
	}
	if y, err = g.Output.Read(); err != nil {
		return nil, nil, err
	}
	if dx, err = g.InputGrad.Read(); err != nil {
		return nil, nil, err
	}
	return y, dx, nil
}

// Release frees the ops and every tensor the graph allocated (not a BuildOptions.Input).
func (g *Graph) Release() {
	if g == nil {
		return
	}
	for _, op := range g.Forward {
		op.Release()
	}
	for _, op := range g.Backward {
		op.Release()
	}
	for _, t := range g.owned {
		t.Release()
	}
	g.Forward, g.Backward, g.owned = nil, nil, nil
}
