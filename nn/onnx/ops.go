package onnx

// opDef is one supported ONNX operator: its input count range and its builder.
type opDef struct {
	minIn, maxIn int
	build        func(c *nodeCtx) error
}

// registry maps op_type to its implementation. Every operator has a forward pass on the
// device and a vector-Jacobian product w.r.t. its inputs that may depend on the graph
// input; the shape operators (Shape, Gather, Cast, ConstantOfShape, Range-free shape
// arithmetic) run on the host at build time only.
var registry = map[string]opDef{}

func init() {
	reg := func(name string, minIn, maxIn int, f func(c *nodeCtx) error) {
		registry[name] = opDef{minIn, maxIn, f}
	}
	// Elementwise arithmetic with broadcasting (ops_elementwise.go).
	reg("Add", 2, 2, binaryOp(binAdd))
	reg("Sub", 2, 2, binaryOp(binSub))
	reg("Mul", 2, 2, binaryOp(binMul))
	reg("Div", 2, 2, binaryOp(binDiv))
	reg("Pow", 2, 2, binaryOp(binPow))
	// Elementwise functions (ops_elementwise.go).
	for _, u := range unaryOps {
		reg(u.name, 1, 1, unaryOp(u))
	}
	reg("LeakyRelu", 1, 1, leakyRelu)
	reg("Elu", 1, 1, elu)
	reg("Identity", 1, 1, identity)
	reg("Dropout", 1, 3, dropout)
	// Products (ops_linear.go).
	reg("Gemm", 2, 3, gemm)
	reg("MatMul", 2, 2, matMul)
	// Convolutions (ops_conv.go).
	reg("Conv", 2, 3, conv)
	reg("ConvTranspose", 2, 3, convTranspose)
	// Normalisation, softmax, reductions, pooling (ops_reduce.go, ops_pool.go).
	reg("BatchNormalization", 5, 5, batchNorm)
	reg("Softmax", 1, 1, softmaxOp(false))
	reg("LogSoftmax", 1, 1, softmaxOp(true))
	reg("ReduceMean", 1, 2, reduceOp(true))
	reg("ReduceSum", 1, 2, reduceOp(false))
	reg("GlobalAveragePool", 1, 1, globalAveragePool)
	reg("AveragePool", 1, 1, poolOp(false))
	reg("MaxPool", 1, 1, poolOp(true))
	// Shapes and data movement (ops_shape.go).
	reg("Reshape", 2, 2, reshape)
	reg("Flatten", 1, 1, flatten)
	reg("Squeeze", 1, 2, squeeze)
	reg("Unsqueeze", 1, 2, unsqueeze)
	reg("Transpose", 1, 1, transpose)
	reg("Concat", 1, 1<<20, concat)
	reg("Slice", 3, 5, slice)
	reg("Pad", 1, 4, pad)
	// Build-time values (ops_const.go).
	reg("Constant", 0, 0, constant)
	reg("ConstantOfShape", 1, 1, constantOfShape)
	reg("Shape", 1, 1, shapeOp)
	reg("Gather", 2, 2, gather)
	reg("Cast", 1, 1, cast)
}
