package posterior

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"osds/kernels"
	"osds/nn/onnx"
)

// onnxFixture is the part of nn/onnx's PyTorch fixtures these tests read.
type onnxFixture struct {
	Input struct {
		Shape []int
		Data  []float64
	}
	VJP struct {
		Cotangent []float64
		Grad      []float64
	}
}

func readONNXFixture(t *testing.T, name string) (string, onnxFixture) {
	t.Helper()
	dir := filepath.Join("..", "nn", "onnx", "testdata")
	raw, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f onnxFixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name+".onnx"), f
}

// TestONNXRewardConstraint: the scalar reward model (PyTorch fixture, a 2-channel 6×5
// image) as onnx:FILE,beta=B on NHWC rows: log r = β·r(x) and ∇ log r = β·∇r against
// PyTorch's VJP (linear in the per-row cotangent, so β/cot_b times PyTorch's row b).
func TestONNXRewardConstraint(t *testing.T) {
	l := testLibrary(t)
	path, f := readONNXFixture(t, "reward")
	spec, err := ParseSpec("onnx:" + path + ",beta=2.5")
	if err != nil {
		t.Fatal(err)
	}
	in := f.Input.Shape // [B, C, H, W]
	B, C, H, W := in[0], in[1], in[2], in[3]
	c, err := NewONNXConstraint(spec, H, W, C)
	if err != nil {
		t.Fatal(err)
	}
	D := C * H * W
	x := nhwc(f.Input.Data, B, C, H, W)
	logr, grad := runConstraint(t, l, c, x, B, D)
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.Build(l, B, onnx.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	r, err := g.Run(toF32(f.Input.Data))
	if err != nil {
		t.Fatal(err)
	}
	wantGrad := nhwc(f.VJP.Grad, B, C, H, W)
	for b := 0; b < B; b++ {
		if want := 2.5 * float64(r[b]); math.Abs(float64(logr[b])-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Fatalf("row %d: log r %v, want %v", b, logr[b], want)
		}
		for i := 0; i < D; i++ {
			want := 2.5 / f.VJP.Cotangent[b] * float64(wantGrad[b*D+i])
			if got := float64(grad[b*D+i]); math.Abs(got-want) > 1e-4*math.Max(1, math.Abs(want)) {
				t.Fatalf("row %d, element %d: ∇ log r %v, want %v", b, i, got, want)
			}
		}
	}
}

// TestONNXClassConstraint: the classifier fixture's log-probability output at a label as
// the constraint, against the importer's own VJP with the cotangent β·e_L.
func TestONNXClassConstraint(t *testing.T) {
	l := testLibrary(t)
	path, f := readONNXFixture(t, "classifier")
	spec, err := ParseSpec("onnx:" + path + ",label=3,beta=2,output=logp")
	if err != nil {
		t.Fatal(err)
	}
	in := f.Input.Shape
	B, D := in[0], in[1]*in[2]*in[3]
	c, err := NewONNXConstraint(spec, in[2], in[3], in[1])
	if err != nil {
		t.Fatal(err)
	}
	logr, grad := runConstraint(t, l, c, toF32(f.Input.Data), B, D)
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.Build(l, B, onnx.BuildOptions{Backward: true, Output: "logp"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	cot := make([]float32, B*10)
	for b := 0; b < B; b++ {
		cot[b*10+3] = 2
	}
	y, dx, err := g.VJP(toF32(f.Input.Data), cot)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < B; b++ {
		if got, want := logr[b], 2*y[b*10+3]; math.Abs(float64(got-want)) > 1e-5 {
			t.Fatalf("row %d: log r %v, want %v", b, got, want)
		}
	}
	for i := range dx {
		if math.Abs(float64(grad[i]-dx[i])) > 1e-5*math.Max(1, math.Abs(float64(dx[i]))) {
			t.Fatalf("∇ log r element %d: %v, want %v", i, grad[i], dx[i])
		}
	}
}

// TestONNXSpecs: the onnx: spec round-trips through String, and bad ones are refused
// with what was expected.
func TestONNXSpecs(t *testing.T) {
	for _, s := range []string{"onnx:m.onnx,beta=1", "onnx:m.onnx,label=3,beta=2", "onnx:m.onnx,label=0,beta=0.5,output=logp"} {
		sp, err := ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		if sp.String() != s {
			t.Fatalf("%s → %s", s, sp.String())
		}
	}
	for s, want := range map[string]string{
		"onnx:":                  "onnx:FILE.onnx",
		"onnx:m.onnx,label=-1":   "label=-1 (want an output column ≥ 0)",
		"onnx:m.onnx,beta=0":     "beta=0 (want a positive number)",
		"onnx:m.onnx,classes=10": `unknown option "classes" for onnx`,
	} {
		if _, err := ParseSpec(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", s, err, want)
		}
	}
	path, _ := readONNXFixture(t, "classifier")
	sp, _ := ParseSpec("onnx:" + path)
	if _, err := NewONNXConstraint(sp, 12, 12, 1); err == nil || !strings.Contains(err.Error(), "give the class") {
		t.Errorf("a 10-class model without label=: %v", err)
	}
	sp, _ = ParseSpec("onnx:" + path + ",label=10")
	if _, err := NewONNXConstraint(sp, 12, 12, 1); err == nil || !strings.Contains(err.Error(), "classes 0..9") {
		t.Errorf("label=10 of 10 classes: %v", err)
	}
	sp, _ = ParseSpec("onnx:" + path + ",label=1")
	c, err := NewONNXConstraint(sp, 12, 12, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(784); err == nil || !strings.Contains(err.Error(), "144 values per row") {
		t.Errorf("28×28 rows into a 12×12 classifier: %v", err)
	}
}

// runConstraint builds c on rows x [B, D] and returns log r and ∇ log r.
func runConstraint(t *testing.T, l *kernels.Library, c Constraint, x []float32, B, D int) (logr, grad []float32) {
	t.Helper()
	xt, err := kernels.NewTensor(l.Device(), "x", B, D)
	if err != nil {
		t.Fatal(err)
	}
	defer xt.Release()
	if err := xt.Write(x); err != nil {
		t.Fatal(err)
	}
	p, err := c.Build(l, xt)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if err := p.LogR.Poison(); err != nil {
		t.Fatal(err)
	}
	if err := p.DX.Poison(); err != nil {
		t.Fatal(err)
	}
	if err := l.Run(append(append([]*kernels.Op(nil), p.Value...), p.Grad...)...); err != nil {
		t.Fatal(err)
	}
	if logr, err = p.LogR.Read(); err != nil {
		t.Fatal(err)
	}
	if grad, err = p.DX.Read(); err != nil {
		t.Fatal(err)
	}
	return logr, grad
}

func nhwc(x []float64, B, C, H, W int) []float32 {
	out := make([]float32, len(x))
	for b := 0; b < B; b++ {
		for c := 0; c < C; c++ {
			for h := 0; h < H; h++ {
				for w := 0; w < W; w++ {
					out[((b*H+h)*W+w)*C+c] = float32(x[((b*C+c)*H+h)*W+w])
				}
			}
		}
	}
	return out
}

func toF32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// TestONNXJudge: an imported PyTorch classifier (examples/onnx) as the independent judge
// of osds compare: on the real test images of class 3 its accuracy is the share its
// argmax gives 3, which for a 98.8 %-accurate classifier must be well above 0.9.
func TestONNXJudge(t *testing.T) {
	l := testLibrary(t)
	spec, err := ParseSpec("class:3")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(l, "mnist-vae", spec)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	j, err := NewJudge(l, s, filepath.Join("..", "examples", "onnx", "mnist-cnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Release()
	if r := j.Real(); r.N < 900 || r.Accuracy < 0.95 {
		t.Fatalf("the imported judge on %d real 3s: accuracy %.3f, want ≥ 0.95", r.N, r.Accuracy)
	} else {
		t.Logf("imported judge: %.4f of %d real 3s", r.Accuracy, r.N)
	}
	if _, err := NewJudge(l, s, filepath.Join("..", "nn", "onnx", "testdata", "classifier.onnx")); err == nil || !strings.Contains(err.Error(), "144 values") {
		t.Fatalf("a 12×12 judge for 28×28 images: %v", err)
	}
}
