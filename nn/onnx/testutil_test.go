package onnx

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"osds/gpu"
	"osds/kernels"
)

// testLib opens the default adapter and a kernel library. No adapter is a failure with
// the message that says how to get one, never a skip.
func testLib(t testing.TB) *kernels.Library {
	t.Helper()
	d, err := gpu.NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`; on machines without a GPU it installs Mesa lavapipe): %v", err)
	}
	l := kernels.NewLibrary(d)
	t.Cleanup(func() {
		l.Release()
		d.Release()
	})
	return l
}

// fixture is one NAME.json written by testdata/make_fixtures.py.
type fixture struct {
	Model  string  `json:"model"`
	Torch  string  `json:"torch"`
	Opset  int     `json:"opset"`
	Input  array   `json:"input"`
	Output []array `json:"outputs"`
	VJP    struct {
		Output    string    `json:"output"`
		Cotangent []float64 `json:"cotangent"`
		Grad      []float64 `json:"grad"`
	} `json:"vjp"`
}

type array struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

func loadFixture(t *testing.T, name string) (*fixture, *Model) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatalf("%v (the fixtures are committed; `make onnx-fixtures` rebuilds them)", err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	m, err := Load(filepath.Join("testdata", f.Model))
	if err != nil {
		t.Fatal(err)
	}
	return &f, m
}

func f32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

// assertClose checks got against want: |got − want| ≤ tol·max(1, |want|) for every
// element (the project's relative error, with an absolute floor near 0). NaN fails.
func assertClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i := range got {
		g := float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, g, want[i])
		}
		if e := math.Abs(g-want[i]) / math.Max(1, math.Abs(want[i])); e > worst {
			worst, at = e, i
		}
	}
	if worst > tol {
		t.Fatalf("%s: element %d: got %v, want %v (relative error %.3g > %.3g)", what, at, got[at], want[at], worst, tol)
	}
	t.Logf("%s: %d values, worst relative error %.3g", what, len(got), worst)
}
