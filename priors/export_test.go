package priors

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"osds/kernels"
	"osds/nn"
	"osds/nn/onnx"
)

// exportBatch is an awkward batch: not a multiple of any tile or workgroup.
const exportBatch = 37

// TestExportONNXBitIdentical exports every shipped prior and classifier, reads the file
// back with osds's importer, and runs both on the same fresh random inputs: the
// re-imported graph must give bit-identical outputs (the export emits the native
// kernels' operand order; see priors/export.go). It also checks the importer's VJP of
// the re-imported graph against the native one (those reduce in other orders).
func TestExportONNXBitIdentical(t *testing.T) {
	l := testLib(t)
	for i, name := range []string{"mnist-vae", "fashion-vae", "mnist-gan", "mnist-flow", "mnist-classifier", "fashion-classifier"} {
		t.Run(name, func(t *testing.T) {
			m, _, err := LoadShipped(l.Device(), name)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			checkExport(t, l, m, uint64(100+i), 0)
		})
	}
}

// TestExportONNXRandomModels covers what the shipped models do not: the convolutional
// VAE decoder, flows with either mask on non-square images, a classifier of odd sizes,
// with random weights everywhere (a fresh flow's last layers are zero, which would hide
// the coupling). A flow whose Clamp a is not a power of two is the one case that is not
// bit-identical: flow.wgsl's elementwise inverse coupling (what the native generator
// runs) divides ŝ by a inexactly on lavapipe, while the importer's Div (and the
// native coupling_ld kernel) round the quotient correctly; see docs/onnx.md.
func TestExportONNXRandomModels(t *testing.T) {
	l := testLib(t)
	rng := rand.New(rand.NewPCG(5, 6))
	t.Run("conv-vae", func(t *testing.T) {
		v, err := NewVAE(l.Device(), VAEArch{Pixels: 784, Hidden: 50, Latent: 7, DecoderChannels: 6}, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Release()
		checkExport(t, l, v, 7, 0)
	})
	flows := []struct {
		name string
		arch FlowArch
		tol  float64
	}{
		{"checkerboard-flow", FlowArch{Height: 6, Width: 8, Couplings: 3, Hidden: 11, HiddenLayers: 2, Masks: "checkerboard", Clamp: 2, Alpha: 0.01}, 0},
		{"halves-flow", FlowArch{Height: 4, Width: 6, Couplings: 5, Hidden: 9, HiddenLayers: 1, Masks: "checkerboard+halves", Clamp: 0.5, Alpha: 1e-6}, 0},
		// Measured on lavapipe: max |Δ| 1.4e-6 on pixels in [0, 1] (8e-6 with a = 3).
		{"clamp-1.5-flow", FlowArch{Height: 4, Width: 6, Couplings: 4, Hidden: 9, HiddenLayers: 1, Masks: "checkerboard+halves", Clamp: 1.5, Alpha: 1e-6}, 1e-5},
	}
	for i, c := range flows {
		t.Run(c.name, func(t *testing.T) {
			f, err := NewFlow(l.Device(), c.arch, uint64(4+i))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Release()
			randomise(t, f.Params(), rng, 0.7)
			checkExport(t, l, f, uint64(8+i), c.tol)
		})
	}
	t.Run("odd-classifier", func(t *testing.T) {
		c, err := NewClassifier(l.Device(), ClassifierArch{Side: 11, C1: 3, C2: 5, Hidden: 7, Classes: 4}, 6)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		checkExport(t, l, c, 10, 0)
	})
}

// TestExportONNXRefuses checks the clear refusals: a checkerboard flow on an odd image.
func TestExportONNXRefuses(t *testing.T) {
	l := testLib(t)
	f, err := NewFlow(l.Device(), FlowArch{Height: 5, Width: 4, Couplings: 2, Hidden: 4, HiddenLayers: 1, Masks: "checkerboard", Clamp: 2, Alpha: 1e-6}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	_, err = MarshalONNX(f, nil)
	if err == nil || !strings.Contains(err.Error(), "even height and width") {
		t.Fatalf("exporting a checkerboard flow on 5×4 images: got %v, want a refusal naming the even height and width", err)
	}
}

func randomise(t *testing.T, ps []*nn.Param, rng *rand.Rand, bound float64) {
	t.Helper()
	for _, p := range ps {
		if err := p.Value.Write(nn.UniformInit(rng, p.Len(), bound)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkExport exports m, re-imports it, and compares the forward outputs on exportBatch
// rows bit for bit (tol 0) or within tol of the largest component, and the input VJPs
// within 1e-4 of the largest component.
func checkExport(t *testing.T, l *kernels.Library, m Model, seed uint64, tol float64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := ExportONNX(m, path); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	om, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if om.Opset != onnx.WriteOpset || !strings.HasPrefix(om.Producer, "osds") {
		t.Errorf("re-imported model: opset %d, producer %q (want %d, osds)", om.Opset, om.Producer, onnx.WriteOpset)
	}
	g, err := om.Build(l, exportBatch, onnx.BuildOptions{Backward: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	t.Logf("%s: %d bytes, %s → %v, %d forward ops (native prior %s)", m.Kind(), st.Size(), om.Input, g.OutputShape, len(g.Forward), m.Kind())

	rng := rand.New(rand.NewPCG(seed, 77))
	var seq *nn.Sequential
	var in []float32
	switch v := m.(type) {
	case Prior:
		seq = v.Generator()
		in = make([]float32, exportBatch*v.LatentDim())
		for i := range in {
			in[i] = float32(rng.NormFloat64())
		}
	case *Classifier:
		seq = v.Logits()
		in = make([]float32, exportBatch*v.Arch.Side*v.Arch.Side)
		for i := range in {
			in[i] = float32(rng.Float64())
		}
	default:
		t.Fatalf("no native forward for %T", m)
	}
	x, err := kernels.FromSlice(l.Device(), "export test input", in, exportBatch, len(in)/exportBatch)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	net, err := seq.Build(l, x, nn.NetOptions{Backward: true, InputGrad: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	if err := l.Run(net.Forward...); err != nil {
		t.Fatal(err)
	}
	native, err := net.Y.Read()
	if err != nil {
		t.Fatal(err)
	}
	// The outputs to compare: a prior's samples; a classifier's logits and their
	// log-softmax, by the kernel the importer's LogSoftmax runs.
	want := map[string][]float32{}
	if c, ok := m.(*Classifier); ok {
		lp, err := kernels.NewTensor(l.Device(), "native log-probs", exportBatch, c.Arch.Classes)
		if err != nil {
			t.Fatal(err)
		}
		defer lp.Release()
		op, err := l.Softmax(lp, net.Y, kernels.SoftmaxGeom{Outer: exportBatch, N: c.Arch.Classes, Inner: 1}, true)
		if err != nil {
			t.Fatal(err)
		}
		defer op.Release()
		if err := l.Run(op); err != nil {
			t.Fatal(err)
		}
		if want["log_probs"], err = lp.Read(); err != nil {
			t.Fatal(err)
		}
		want["logits"] = native
	} else {
		want["x"] = native
	}

	dy := make([]float32, g.Output.Len())
	for i := range dy {
		dy[i] = float32(rng.NormFloat64())
	}
	if _, gotDX, err := g.VJP(in, dy); err != nil {
		t.Fatal(err)
	} else {
		for _, o := range g.Outputs {
			got, err := o.Tensor.Read()
			if err != nil {
				t.Fatal(err)
			}
			w, ok := want[o.Name]
			if !ok {
				t.Errorf("unexpected output %q", o.Name)
				continue
			}
			delete(want, o.Name)
			if tol == 0 {
				compareBits(t, o.Name, got, w)
			} else {
				compareClose(t, o.Name, got, w, tol)
			}
		}
		for name := range want {
			t.Errorf("output %q missing from the re-imported model", name)
		}
		// The native VJP of the selected output (a classifier's: log_probs, whose
		// cotangent through the log-softmax is dy − softmax·Σdy).
		nativeDY := dy
		if c, ok := m.(*Classifier); ok {
			nativeDY = logSoftmaxVJP(t, l, net.Y, dy, c.Arch.Classes)
		}
		if err := net.DY.Write(nativeDY); err != nil {
			t.Fatal(err)
		}
		if err := l.Run(append(append([]*kernels.Op(nil), net.Forward...), net.Backward...)...); err != nil {
			t.Fatal(err)
		}
		wantDX, err := net.DX.Read()
		if err != nil {
			t.Fatal(err)
		}
		compareClose(t, "input VJP", gotDX, wantDX, 1e-4)
	}
}

// logSoftmaxVJP maps a cotangent of log_softmax(logits) to one of the logits on the host:
// dℓ = dy − softmax(ℓ)·Σ_j dy_j, per row.
func logSoftmaxVJP(t *testing.T, l *kernels.Library, logits *kernels.Tensor, dy []float32, classes int) []float32 {
	t.Helper()
	v, err := logits.Read()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(dy))
	for r := 0; r*classes < len(v); r++ {
		row, g := v[r*classes:(r+1)*classes], dy[r*classes:(r+1)*classes]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = math.Max(mx, float64(x))
		}
		var z, sg float64
		for j, x := range row {
			z += math.Exp(float64(x) - mx)
			sg += float64(g[j])
		}
		for j, x := range row {
			out[r*classes+j] = float32(float64(g[j]) - math.Exp(float64(x)-mx)/z*sg)
		}
	}
	return out
}

// compareBits requires got and want to be the same float32 bit patterns.
func compareBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	diff, first, maxAbs := 0, -1, 0.0
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if first < 0 {
				first = i
			}
			diff++
			maxAbs = math.Max(maxAbs, math.Abs(float64(got[i])-float64(want[i])))
		}
	}
	if diff > 0 {
		t.Errorf("%s: %d of %d values differ from the native forward (first at %d: %v, native %v; max |Δ| %.3g)", what, diff, len(got), first, got[first], want[first], maxAbs)
		return
	}
	t.Logf("%s: %d values bit-identical to the native forward", what, len(got))
}

// compareClose requires max|got − want| ≤ tol·max|want|.
func compareClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	scale, worst, at := 0.0, 0.0, 0
	for i := range want {
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if !(worst <= tol*scale) {
		t.Errorf("%s: max |Δ| %.3g at %d (%v against native %v), above %g of the largest component %.3g", what, worst, at, got[at], want[at], tol, scale)
		return
	}
	t.Logf("%s: max |Δ| %.3g (%.2g of the largest component)", what, worst, worst/math.Max(scale, 1e-30))
}
