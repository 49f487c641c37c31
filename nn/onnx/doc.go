// Package onnx imports PyTorch models exported with torch.onnx.export (opsets 13–17 are
// tested; 11–18 are read) and builds them on the engine's kernels: a batched forward pass
// and the vector-Jacobian product w.r.t. the graph input, for generators z → x used as
// priors and for classifiers or reward models x → r used as constraints (Langevin drifts,
// MALA and gradients of a reward need the VJP).
//
// Usage:
//
//	m, err := onnx.Load("generator.onnx")      // parse, read weights, check every op
//	g, err := m.Build(lib, 64, onnx.BuildOptions{Backward: true})
//	defer g.Release()
//	rec.Record(g.Forward...)                   // reads g.Input, writes g.Outputs
//	rec.Record(g.Backward...)                  // reads g.Cotangent, writes g.InputGrad
//
// or g.Run(x) and g.VJP(x, dy) for one-off evaluations.
//
// # Model
//
// The graph is walked once at Build, with every shape static (the batch size fills the
// input's dynamic batch axis). Values known at build time — initializers, Constants and
// the shape arithmetic the exporter writes around Reshape (Shape, Gather, Unsqueeze,
// Concat, Cast) — are folded on the host. Every other node records its dispatches on
// float32 NCHW tensors: products and convolutions on kernels.Matmul (with im2col/col2im
// for Conv and ConvTranspose), activations on kernels.Activate, the rest on the strided,
// elementwise, softmax and pooling kernels of package kernels. Reshape-like ops are
// views (no dispatch). The backward pass runs the nodes' VJPs in reverse, accumulating
// the gradient of a value used several times; weights get no gradient (they are
// constants of the imported model).
//
// Errors name the file, the node, the operator and the opset. docs/onnx.md has the export
// call, the supported operators and the limits.
package onnx
