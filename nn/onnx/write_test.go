package onnx

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestWriterRoundTrip writes a small graph (Gemm, Relu, a scalar Mul, a Reshape with a
// dynamic batch), reads it back and runs it on an odd batch against a host computation.
func TestWriterRoundTrip(t *testing.T) {
	l := testLib(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const in, out, batch = 5, 6, 7
	w := make([]float32, in*out)
	bias := make([]float32, out)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	for i := range bias {
		bias[i] = float32(rng.NormFloat64())
	}
	wr := NewWriter("round-trip")
	wr.DocString = "a test graph"
	wr.Metadata = map[string]string{"osds.kind": "test", "a": "b"}
	x := wr.Input("x", Batch, in)
	h := wr.Node("Gemm", "h", []string{x, wr.Float32("w", []int{in, out}, w), wr.Float32("b", []int{out}, bias)})
	h = wr.Node("Relu", "h.relu", []string{h})
	h = wr.Node("Mul", "h.scaled", []string{h, wr.Float32("two", nil, []float32{2})})
	y := wr.Node("Reshape", "y", []string{h, wr.Int64("shape", -1, 2, 3)})
	wr.Output(y, Batch, 2, 3)
	data, err := wr.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Opset != WriteOpset || m.Producer != "osds" || m.Input.String() != "x [batch, 5]" || len(m.Outputs) != 1 || m.Outputs[0].String() != "y [batch, 2, 3]" {
		t.Fatalf("read back: opset %d, producer %q, input %v, outputs %v", m.Opset, m.Producer, m.Input, m.Outputs)
	}
	p, err := parseModel(data)
	if err != nil {
		t.Fatal(err)
	}
	if p.irVersion != WriteIRVersion {
		t.Errorf("ir_version %d, want %d", p.irVersion, WriteIRVersion)
	}
	meta := map[string]string{}
	if err := walk(data, "ModelProto", func(f field) error {
		if f.num != 14 {
			return nil
		}
		var k, v string
		err := walk(f.bytes, "metadata_props", func(e field) error {
			switch e.num {
			case 1:
				k = string(e.bytes)
			case 2:
				v = string(e.bytes)
			}
			return nil
		})
		meta[k] = v
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(meta) != 2 || meta["osds.kind"] != "test" || meta["a"] != "b" {
		t.Errorf("metadata_props read back as %v", meta)
	}
	g, err := m.Build(l, batch, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	xs := make([]float32, batch*in)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	got, err := g.Run(xs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != batch*out || len(g.OutputShape) != 3 || g.OutputShape[0] != batch {
		t.Fatalf("output shape %v, %d values", g.OutputShape, len(got))
	}
	for r := 0; r < batch; r++ {
		for j := 0; j < out; j++ {
			s := float64(bias[j])
			for k := 0; k < in; k++ {
				s += float64(xs[r*in+k]) * float64(w[k*out+j])
			}
			want := 2 * math.Max(s, 0)
			if d := math.Abs(float64(got[r*out+j]) - want); d > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("y[%d, %d] = %v, want %v", r, j, got[r*out+j], want)
			}
		}
	}
}

// TestWriterErrors checks that misuse is reported by Bytes, naming the value.
func TestWriterErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(w *Writer)
		want  string
	}{
		{"undefined input", func(w *Writer) {
			x := w.Input("x", Batch, 2)
			w.Output(w.Node("Add", "y", []string{x, "nope"}), Batch, 2)
		}, `reads "nope"`},
		{"duplicate name", func(w *Writer) {
			w.Input("x", Batch, 2)
			w.Float32("x", []int{2}, []float32{1, 2})
		}, `"x": the name is already defined`},
		{"undefined output", func(w *Writer) {
			w.Input("x", Batch, 2)
			w.Output("y", Batch, 2)
		}, `output "y" is not a value`},
		{"short data", func(w *Writer) {
			w.Input("x", Batch, 2)
			w.Float32("w", []int{2, 3}, []float32{1})
		}, `1 values for shape [2 3]`},
		{"no input", func(w *Writer) {
			w.Output(w.Float32("c", nil, []float32{1}), Batch)
		}, "0 inputs"},
		{"repeated attribute", func(w *Writer) {
			x := w.Input("x", Batch, 2)
			w.Output(w.Node("Relu", "y", []string{x}, IntAttr("a", 1), IntAttr("a", 2)), Batch, 2)
		}, `attribute name "a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWriter("bad")
			c.build(w)
			_, err := w.Bytes()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}
