package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The default-domain opsets osds reads. The fixtures are exported at 13, 14 and 17; 11,
// 12 and 18 differ from them only where both forms are handled (axes as attributes or
// inputs, Softmax's 2-D coercion before 13).
const (
	MinOpset = 11
	MaxOpset = 18
)

// Model is a parsed ONNX model: its one graph input, its outputs and its weights, ready to
// be built on a kernels.Library for a batch size (Build).
type Model struct {
	// Name is the file's base name (or "model" for Parse), used in errors.
	Name string
	// Producer is producer_name and producer_version, e.g. "pytorch 1.13.1".
	Producer string
	// Opset is the version of the default ONNX domain the graph was exported at.
	Opset int
	// Input is the graph's one input (the noise z of a generator, the image x of a
	// classifier). Its Shape has -1 at the batch axis when that axis is dynamic.
	Input Value
	// Outputs are the graph's outputs, in file order; Shape as exported (-1 where symbolic
	// or absent from the file: Build computes the true shapes).
	Outputs []Value

	graph  *graphProto
	consts map[string]*hostTensor
}

// Value is a named graph input or output with its shape: Shape[i] is -1 where dimension i
// is symbolic, DimNames[i] the symbol ("batch") or "".
type Value struct {
	Name     string
	Shape    []int
	DimNames []string
}

func (v Value) String() string {
	parts := make([]string, len(v.Shape))
	for i, s := range v.Shape {
		parts[i] = fmt.Sprint(s)
		if s < 0 {
			parts[i] = "?"
			if v.DimNames[i] != "" {
				parts[i] = v.DimNames[i]
			}
		}
	}
	return fmt.Sprintf("%s [%s]", v.Name, strings.Join(parts, ", "))
}

// Load reads an ONNX model file (torch.onnx.export's output). Weights stored as external
// data are read from the files named in the model, relative to its folder. Every node is
// checked against the supported operators here, so an unsupported op fails at Load, with
// its name, the node and the opset.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	return parse(data, filepath.Base(path), filepath.Dir(path))
}

// Parse reads an ONNX model from memory. A model with external data needs Load.
func Parse(data []byte) (*Model, error) { return parse(data, "model", "") }

func parse(data []byte, name, dir string) (*Model, error) {
	fail := func(format string, args ...any) (*Model, error) {
		return nil, fmt.Errorf("onnx: %s: "+format, append([]any{name}, args...)...)
	}
	if len(data) == 0 {
		return fail("empty file")
	}
	p, err := parseModel(data)
	var we *wireError
	if errors.As(err, &we) {
		return fail("not a valid ONNX file (truncated, or not ONNX): %v", err)
	}
	if err != nil {
		return nil, err
	}
	if p.irVersion <= 0 || p.graph == nil || len(p.opsets) == 0 {
		return fail("not an ONNX model, or truncated: ir_version %d, graph present %v, %d opset imports", p.irVersion, p.graph != nil, len(p.opsets))
	}
	m := &Model{Name: name, Producer: strings.TrimSpace(p.producer + " " + p.producerVersion), graph: p.graph, consts: map[string]*hostTensor{}}
	for _, o := range p.opsets {
		if o.domain == "" || o.domain == "ai.onnx" {
			m.Opset = int(o.version)
		}
	}
	if m.Opset == 0 {
		return fail("no opset of the default ONNX domain is imported")
	}
	if m.Opset < MinOpset || m.Opset > MaxOpset {
		return fail("opset %d is not supported (osds reads opsets %d–%d; export with torch.onnx.export(..., opset_version=17))", m.Opset, MinOpset, MaxOpset)
	}
	g := p.graph
	if g.sparse > 0 {
		return fail("%d sparse initializers: not supported", g.sparse)
	}
	for i, t := range g.initializers {
		if t.name == "" {
			return fail("initializer %d has no name", i)
		}
		h, err := decodeTensor(t, dir, fmt.Sprintf("initializer %q", t.name))
		if err != nil {
			return fail("%v", err)
		}
		m.consts[t.name] = h
	}
	var inputs []valueInfo
	for _, in := range g.inputs {
		if _, ok := m.consts[in.name]; !ok { // before IR 4, initializers were also inputs
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.name
		}
		return fail("the graph has %d inputs %v; osds needs exactly one (the noise z of a generator, or the image x of a classifier or reward model)", len(inputs), names)
	}
	if m.Input, err = inputValue(inputs[0]); err != nil {
		return fail("%v", err)
	}
	if len(g.outputs) == 0 {
		return fail("the graph has no outputs")
	}
	for _, o := range g.outputs {
		m.Outputs = append(m.Outputs, outputValue(o))
	}
	if err := m.checkNodes(); err != nil {
		return fail("%v", err)
	}
	return m, nil
}

// inputValue checks the graph input: float32, a known rank, every dimension static except
// the first (the batch axis), which may be symbolic.
func inputValue(v valueInfo) (Value, error) {
	if v.elemType != dtFloat {
		return Value{}, fmt.Errorf("graph input %q has element type %s; osds feeds FLOAT (float32) inputs", v.name, dtypeName(v.elemType))
	}
	if !v.hasShape || len(v.dims) == 0 {
		return Value{}, fmt.Errorf("graph input %q has no static shape; export with a concrete example input (and dynamic_axes only for the batch axis)", v.name)
	}
	out := Value{Name: v.name, Shape: make([]int, len(v.dims)), DimNames: make([]string, len(v.dims))}
	for i, d := range v.dims {
		out.DimNames[i] = d.param
		switch {
		case d.known && d.value > 0:
			out.Shape[i] = int(d.value)
		case i == 0:
			out.Shape[i] = -1 // the batch axis, fixed by Build
		default:
			name := d.param
			if name == "" {
				name = "unknown"
			}
			return Value{}, fmt.Errorf("graph input %q: dimension %d is dynamic (%s); osds resolves only a dynamic batch axis (dimension 0): export with dynamic_axes={%q: {0: \"batch\"}} and nothing else dynamic", v.name, i, name, v.name)
		}
	}
	return out, nil
}

func outputValue(v valueInfo) Value {
	out := Value{Name: v.name, Shape: make([]int, len(v.dims)), DimNames: make([]string, len(v.dims))}
	for i, d := range v.dims {
		out.Shape[i], out.DimNames[i] = -1, d.param
		if d.known && d.value > 0 {
			out.Shape[i] = int(d.value)
		}
	}
	return out
}

// nodeDesc names a node in errors: its name, or its index and first output when unnamed.
func nodeDesc(n *nodeProto, i int) string {
	if n.name != "" {
		return fmt.Sprintf("node %q", n.name)
	}
	out := ""
	if len(n.outputs) > 0 {
		out = fmt.Sprintf(" (output %q)", n.outputs[0])
	}
	return fmt.Sprintf("node #%d%s", i, out)
}

// checkNodes rejects what Build could never run: operators of other domains or not
// supported, subgraphs, and wrong input counts.
func (m *Model) checkNodes() error {
	for i, n := range m.graph.nodes {
		desc := nodeDesc(n, i)
		if n.domain != "" && n.domain != "ai.onnx" {
			return fmt.Errorf("%s: operator %s of domain %q (opset %d) is not supported: osds implements the default ONNX domain only", desc, n.opType, n.domain, m.Opset)
		}
		def, ok := registry[n.opType]
		if !ok {
			return fmt.Errorf("%s: operator %s (opset %d) is not supported; supported operators: %s", desc, n.opType, m.Opset, strings.Join(SupportedOps(), ", "))
		}
		for _, a := range n.attrs {
			if a.graph {
				return fmt.Errorf("%s: operator %s (opset %d) with a subgraph attribute %q is not supported", desc, n.opType, m.Opset, a.name)
			}
		}
		// Optional inputs may be given as "" (absent); count up to the last present one.
		nin := len(n.inputs)
		for nin > 0 && n.inputs[nin-1] == "" {
			nin--
		}
		if nin < def.minIn || nin > def.maxIn {
			want := fmt.Sprint(def.minIn)
			if def.maxIn != def.minIn {
				want = fmt.Sprintf("%d to %d", def.minIn, def.maxIn)
			}
			return fmt.Errorf("%s: operator %s (opset %d) has %d inputs, want %s", desc, n.opType, m.Opset, nin, want)
		}
		if len(n.outputs) < 1 {
			return fmt.Errorf("%s: operator %s has no outputs", desc, n.opType)
		}
	}
	return nil
}

// SupportedOps lists the ONNX operators Build implements, sorted.
func SupportedOps() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
