package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// The writer: a small builder for ONNX models in the standard (ai.onnx) domain, encoded
// with protowire. Field numbers are those of onnx.proto, the same as the reader's in
// proto.go. Repeated integers are written unpacked, as onnx.proto (proto2, no
// [packed = true]) declares them and as the onnx package's own serializer writes them;
// protobuf readers accept both forms. Weights go into raw_data (little-endian), as
// torch.onnx.export writes them.

// Versions of the models a Writer produces: IR version 8 (ONNX 1.10 and later; onnxruntime
// 1.10+ read it) and opset 17 of the default domain.
const (
	WriteIRVersion = 8
	WriteOpset     = 17
)

// Batch, as a dimension of a Writer's graph input or output, is the dynamic batch axis:
// it is written as the symbolic dimension "batch" (what torch.onnx.export writes for
// dynamic_axes={name: {0: "batch"}}).
const Batch = -1

// Writer assembles one ONNX graph: initializers (weights and the integer tensors of shape
// arithmetic), nodes, and the graph input and outputs; Bytes encodes the ModelProto.
// Every value name is defined once (input, initializer or node output) before it is read;
// the first violation is kept and returned by Err and Bytes, so a sequence of calls needs
// one check at the end.
type Writer struct {
	// GraphName is GraphProto.name; DocString is ModelProto.doc_string.
	GraphName, DocString string
	// ProducerVersion is ModelProto.producer_version (producer_name is "osds").
	ProducerVersion string
	// Metadata becomes ModelProto.metadata_props (written in key order).
	Metadata map[string]string

	nodes, inits, inputs, outputs [][]byte
	defined                       map[string]bool
	nodeNames                     map[string]bool
	outNames                      []string
	err                           error
}

// NewWriter returns an empty graph called graphName.
func NewWriter(graphName string) *Writer {
	return &Writer{GraphName: graphName, defined: map[string]bool{}, nodeNames: map[string]bool{}}
}

// Attr is one node attribute; make it with IntAttr, IntsAttr, FloatAttr, FloatsAttr or
// StringAttr.
type Attr struct {
	name   string
	typ    int64
	i      int64
	f      float32
	s      string
	ints   []int64
	floats []float32
}

// IntAttr is an INT attribute.
func IntAttr(name string, v int64) Attr { return Attr{name: name, typ: attrInt, i: v} }

// IntsAttr is an INTS attribute.
func IntsAttr(name string, vs ...int64) Attr {
	return Attr{name: name, typ: attrInts, ints: append([]int64(nil), vs...)}
}

// FloatAttr is a FLOAT attribute.
func FloatAttr(name string, v float32) Attr { return Attr{name: name, typ: attrFloat, f: v} }

// FloatsAttr is a FLOATS attribute.
func FloatsAttr(name string, vs ...float32) Attr {
	return Attr{name: name, typ: attrFloats, floats: append([]float32(nil), vs...)}
}

// StringAttr is a STRING attribute.
func StringAttr(name, v string) Attr { return Attr{name: name, typ: attrString, s: v} }

// Err returns the first error of the calls so far.
func (w *Writer) Err() error { return w.err }

func (w *Writer) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("onnx: writing graph %q: "+format, append([]any{w.GraphName}, args...)...)
	}
}

// define records a new value name; a repeated or empty name is an error (ONNX graphs are
// in single static assignment form).
func (w *Writer) define(name, what string) bool {
	switch {
	case name == "":
		w.fail("%s has an empty name", what)
		return false
	case w.defined[name]:
		w.fail("%s %q: the name is already defined", what, name)
		return false
	}
	w.defined[name] = true
	return true
}

// Input declares the graph input: float32 of shape (a dimension Batch is the dynamic
// batch axis).
func (w *Writer) Input(name string, shape ...int) string {
	if w.define(name, "input") {
		w.inputs = append(w.inputs, valueInfoBytes(name, dtFloat, shape))
	}
	return name
}

// Output declares a graph output, a value defined by then, float32 of shape (Batch for the
// dynamic batch axis; the shape is informative, readers recompute it).
func (w *Writer) Output(name string, shape ...int) {
	if !w.defined[name] {
		w.fail("output %q is not a value of the graph", name)
		return
	}
	w.outputs = append(w.outputs, valueInfoBytes(name, dtFloat, shape))
	w.outNames = append(w.outNames, name)
}

// Float32 adds a float32 initializer (a weight) of shape, data row-major; shape [] is a
// scalar. It returns name.
func (w *Writer) Float32(name string, shape []int, data []float32) string {
	if n := numel(shape); n != len(data) {
		w.fail("initializer %q: %d values for shape %v (%d elements)", name, len(data), shape, n)
		return name
	}
	if !w.define(name, "initializer") {
		return name
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	w.inits = append(w.inits, tensorBytes(name, dtFloat, shape, raw))
	return name
}

// Int64 adds a 1-D int64 initializer (shapes, pads, axes, slice bounds) and returns name.
func (w *Writer) Int64(name string, values ...int64) string {
	if !w.define(name, "initializer") {
		return name
	}
	raw := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	w.inits = append(w.inits, tensorBytes(name, dtInt64, []int{len(values)}, raw))
	return name
}

// Node adds a node of the default domain computing the value out from inputs ("" for an
// omitted optional input) and returns out. The node is named out + "/" + op (unique,
// since out is).
func (w *Writer) Node(op, out string, inputs []string, attrs ...Attr) string {
	for _, in := range inputs {
		if in != "" && !w.defined[in] {
			w.fail("node %s of %q reads %q, which is not defined before it", op, out, in)
			return out
		}
	}
	name := out + "/" + op
	if !w.define(out, op+" output") {
		return out
	}
	if w.nodeNames[name] {
		w.fail("node name %q is used twice", name)
		return out
	}
	w.nodeNames[name] = true
	var b []byte
	for _, in := range inputs {
		b = appendString(b, 1, in)
	}
	b = appendString(b, 2, out)
	b = appendString(b, 3, name)
	b = appendString(b, 4, op)
	seen := map[string]bool{}
	for _, a := range attrs {
		if a.name == "" || seen[a.name] {
			w.fail("node %q: attribute name %q is empty or repeated", name, a.name)
			return out
		}
		seen[a.name] = true
		b = appendMessage(b, 5, attrBytes(a))
	}
	w.nodes = append(w.nodes, b)
	return out
}

// Bytes encodes the model: ir_version WriteIRVersion, producer "osds", the graph, opset
// WriteOpset of the default domain, the metadata. The graph needs one input and at least
// one output.
func (w *Writer) Bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	if len(w.inputs) != 1 || len(w.outputs) == 0 {
		return nil, fmt.Errorf("onnx: writing graph %q: %d inputs and %d outputs (want one input and at least one output)", w.GraphName, len(w.inputs), len(w.outputs))
	}
	var g []byte
	for _, n := range w.nodes {
		g = appendMessage(g, 1, n)
	}
	g = appendString(g, 2, w.GraphName)
	for _, t := range w.inits {
		g = appendMessage(g, 5, t)
	}
	for _, v := range w.inputs {
		g = appendMessage(g, 11, v)
	}
	for _, v := range w.outputs {
		g = appendMessage(g, 12, v)
	}
	var m []byte
	m = appendVarint(m, 1, WriteIRVersion)
	m = appendString(m, 2, "osds")
	if w.ProducerVersion != "" {
		m = appendString(m, 3, w.ProducerVersion)
	}
	if w.DocString != "" {
		m = appendString(m, 6, w.DocString)
	}
	m = appendMessage(m, 7, g)
	// OperatorSetIdProto: domain "" is the default (ai.onnx) domain.
	m = appendMessage(m, 8, appendVarint(appendString(nil, 1, ""), 2, WriteOpset))
	keys := make([]string, 0, len(w.Metadata))
	for k := range w.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m = appendMessage(m, 14, appendString(appendString(nil, 1, k), 2, w.Metadata[k]))
	}
	return m, nil
}

func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// tensorBytes is a TensorProto with raw_data.
func tensorBytes(name string, dtype int64, shape []int, raw []byte) []byte {
	var b []byte
	for _, d := range shape {
		b = appendVarint(b, 1, int64(d))
	}
	b = appendVarint(b, 2, dtype)
	b = appendString(b, 8, name)
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	return protowire.AppendBytes(b, raw)
}

// valueInfoBytes is a ValueInfoProto of a tensor type with a shape; Batch dimensions are
// the symbolic "batch".
func valueInfoBytes(name string, elem int64, shape []int) []byte {
	var sh []byte
	for _, d := range shape {
		var dim []byte
		if d == Batch {
			dim = appendString(dim, 2, "batch")
		} else {
			dim = appendVarint(dim, 1, int64(d))
		}
		sh = appendMessage(sh, 1, dim)
	}
	// TypeProto.Tensor: elem_type 1, shape 2 (always present: an empty shape is a scalar).
	tt := appendVarint(nil, 1, elem)
	tt = appendMessage(tt, 2, sh)
	b := appendString(nil, 1, name)
	return appendMessage(b, 2, appendMessage(nil, 1, tt))
}

// attrBytes is an AttributeProto: name, the value field of its type, and type.
func attrBytes(a Attr) []byte {
	b := appendString(nil, 1, a.name)
	switch a.typ {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendVarint(b, 3, a.i)
	case attrString:
		b = appendString(b, 4, a.s)
	case attrFloats:
		for _, f := range a.floats {
			b = protowire.AppendTag(b, 7, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	case attrInts:
		for _, v := range a.ints {
			b = appendVarint(b, 8, v)
		}
	}
	return appendVarint(b, 20, a.typ)
}
