package onnx

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad inputs: each fails with an error that says what is wrong, and nothing panics.

func fixtureBytes(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustFail checks that err is an error containing every fragment.
func mustFail(t *testing.T, what string, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("%s: error %q does not mention %q", what, err, f)
		}
	}
	t.Logf("%s: %v", what, err)
}

// simpleGraph is y = Relu(x) for an input with the given dims.
func simpleGraph(op string, inputs [][]byte, nodeInputs []string) []byte {
	return testGraph{
		inputs:  inputs,
		outputs: [][]byte{encValueInfo("y", "batch", 4)},
		nodes:   [][]byte{encNode(op, "layer1/"+op+"_3", nodeInputs, []string{"y"})},
	}.encode()
}

func TestTruncatedFile(t *testing.T) {
	data := fixtureBytes(t, "mlp_decoder")
	_, err := Load(writeTemp(t, "cut.onnx", data[:len(data)/2]))
	mustFail(t, "half a file", err, "cut.onnx", "truncated")
	_, err = Load(writeTemp(t, "empty.onnx", nil))
	mustFail(t, "empty file", err, "empty")
}

func TestNotONNX(t *testing.T) {
	for name, data := range map[string][]byte{
		"text.onnx": []byte("hello, this is not a model\n"),
		"json.onnx": []byte(`{"model": "x"}`),
		"png.onnx":  {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'},
	} {
		_, err := Load(writeTemp(t, name, data))
		mustFail(t, name, err, name, "ONNX")
	}
	_, err := Load(filepath.Join(t.TempDir(), "absent.onnx"))
	mustFail(t, "absent file", err, "absent.onnx")
}

func TestUnsupportedOp(t *testing.T) {
	model := encModel(17, simpleGraph("Hardmax", [][]byte{encValueInfo("x", "batch", 4)}, []string{"x"}))
	_, err := Parse(model)
	mustFail(t, "Hardmax", err, "operator Hardmax", `node "layer1/Hardmax_3"`, "opset 17", "supported operators:")
	// Another domain.
	g := testGraph{
		inputs:  [][]byte{encValueInfo("x", "batch", 4)},
		outputs: [][]byte{encValueInfo("y", "batch", 4)},
		nodes:   [][]byte{pbString(encNode("FusedGemm", "fg", []string{"x"}, []string{"y"}), 7, "com.microsoft")},
	}
	_, err = Parse(encModel(17, g.encode()))
	mustFail(t, "other domain", err, "FusedGemm", "com.microsoft")
	// An opset outside the supported range.
	_, err = Parse(encModel(9, simpleGraph("Relu", [][]byte{encValueInfo("x", "batch", 4)}, []string{"x"})))
	mustFail(t, "opset 9", err, "opset 9", "opset_version")
}

func TestWrongInputCount(t *testing.T) {
	two := [][]byte{encValueInfo("x", "batch", 4), encValueInfo("label", "batch", 4)}
	_, err := Parse(encModel(17, simpleGraph("Relu", two, []string{"x"})))
	mustFail(t, "two graph inputs", err, "2 inputs", "x", "label", "exactly one")
	_, err = Parse(encModel(17, testGraph{outputs: [][]byte{encValueInfo("y", 4)}}.encode()))
	mustFail(t, "no graph input", err, "0 inputs")
	// A node with the wrong number of inputs.
	one := [][]byte{encValueInfo("x", "batch", 4)}
	_, err = Parse(encModel(17, simpleGraph("Add", one, []string{"x"})))
	mustFail(t, "Add with one input", err, `node "layer1/Add_3"`, "Add", "1 inputs, want 2")
	_, err = Parse(encModel(17, simpleGraph("Relu", one, []string{"x", "x"})))
	mustFail(t, "Relu with two inputs", err, "Relu", "2 inputs, want 1")
}

func TestDynamicShapes(t *testing.T) {
	_, err := Parse(encModel(17, simpleGraph("Relu", [][]byte{encValueInfo("x", "batch", "width")}, []string{"x"})))
	mustFail(t, "symbolic width", err, `"x"`, "dimension 1 is dynamic (width)", "batch axis")
	noShape := pbBytes(pbString(nil, 1, "x"), 2, pbBytes(nil, 1, pbVarint(nil, 1, dtFloat)))
	_, err = Parse(encModel(17, simpleGraph("Relu", [][]byte{noShape}, []string{"x"})))
	mustFail(t, "no shape at all", err, `"x"`, "no static shape")
	// A static batch builds only for itself.
	m, err := Parse(encModel(17, simpleGraph("Relu", [][]byte{encValueInfo("x", 3, 4)}, []string{"x"})))
	if err != nil {
		t.Fatal(err)
	}
	l := testLib(t)
	_, err = m.Build(l, 5, BuildOptions{})
	mustFail(t, "static batch", err, "static batch of 3", "asked for 5", "dynamic_axes")
	_, err = m.Build(l, 3, BuildOptions{Output: "nope"})
	mustFail(t, "unknown output", err, `no output "nope"`)
	// A value the graph never defines.
	g := testGraph{inputs: [][]byte{encValueInfo("x", "batch", 4)}, outputs: [][]byte{encValueInfo("y", "batch", 4)},
		nodes: [][]byte{encNode("Relu", "r", []string{"ghost"}, []string{"y"})}}
	m, err = Parse(encModel(17, g.encode()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Build(l, 2, BuildOptions{})
	mustFail(t, "undefined input", err, `node "r"`, `"ghost"`)
	// A reshape whose target shape is computed from the data at run time.
	g = testGraph{inputs: [][]byte{encValueInfo("x", "batch", 4)}, outputs: [][]byte{encValueInfo("y", "batch", 4)},
		nodes: [][]byte{encNode("Reshape", "rs", []string{"x", "x"}, []string{"y"})}}
	m, _ = Parse(encModel(17, g.encode()))
	_, err = m.Build(l, 2, BuildOptions{})
	mustFail(t, "run-time shape", err, `node "rs"`, "Reshape", "constant at build time")
}

func TestExternalData(t *testing.T) {
	f, _ := loadFixture(t, "mlp_decoder")
	model, blob := externalize(fixtureBytes(t, "mlp_decoder"), "mlp_decoder.weights")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mlp_decoder.onnx"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	// Missing.
	_, err := Load(filepath.Join(dir, "mlp_decoder.onnx"))
	mustFail(t, "missing external data", err, "external data", "mlp_decoder.weights")
	_, err = Parse(model)
	mustFail(t, "external data from memory", err, "external data", "Load")
	// Short.
	if err := os.WriteFile(filepath.Join(dir, "mlp_decoder.weights"), blob[:len(blob)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(filepath.Join(dir, "mlp_decoder.onnx"))
	mustFail(t, "short external data", err, "mlp_decoder.weights", "fewer than")
	// Present: the model matches PyTorch as with its weights inside.
	if err := os.WriteFile(filepath.Join(dir, "mlp_decoder.weights"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(filepath.Join(dir, "mlp_decoder.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(model) > len(fixtureBytes(t, "mlp_decoder"))/2 {
		t.Fatalf("the rewritten model is %d bytes: the weights did not move out", len(model))
	}
	checkFixture(t, testLib(t), f, m, f.Input.Shape[0], nil)
	// A location outside the model's folder is refused.
	evil, _ := externalize(fixtureBytes(t, "mlp_decoder"), "../../etc/passwd")
	_, err = Load(writeTemp(t, "evil.onnx", evil))
	mustFail(t, "escaping location", err, "inside the model's folder")
}

// TestCorruptNeverPanics parses many prefixes of each fixture and byte-flipped copies,
// and builds those that parse: errors are fine, panics are not.
func TestCorruptNeverPanics(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) { corruptNeverPanics(t, name, 150) })
	}
}

func corruptNeverPanics(t *testing.T, name string, flips int) {
	l := testLib(t)
	data := fixtureBytes(t, name)
	rng := rand.New(rand.NewPCG(1, uint64(len(data))))
	try := func(what string, b []byte) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: panic: %v", what, r)
			}
		}()
		m, err := Parse(b)
		if err != nil {
			return
		}
		if g, err := m.Build(l, 2, BuildOptions{Backward: true}); err == nil {
			g.Release()
		}
		// Dawn destroys released objects at the next submission: without one, thousands
		// of builds exhaust it.
		if err := l.Run(); err != nil {
			t.Fatalf("%s: the device failed after a bad model: %v", what, err)
		}
	}
	for n := 0; n < len(data); n += 1 + n/40 {
		try("prefix", data[:n])
	}
	for i := 0; i < flips; i++ {
		b := append([]byte(nil), data...)
		for k := 0; k < 1+rng.IntN(4); k++ {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		try("flipped", b)
	}
}
