package priors

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"osds/kernels"
	"osds/nn"
)

// TestONNXPrior loads nn/onnx's DCGAN-style PyTorch fixture as a prior: the latent size
// from its input, the image shape found by building the graph once (the file leaves the
// output's spatial axes symbolic), and f(z) through Generator() against PyTorch's output
// for the fixture's z, with the VJP of the generator against PyTorch's.
func TestONNXPrior(t *testing.T) {
	l := testLib(t)
	path := filepath.Join("..", "nn", "onnx", "testdata", "generator.onnx")
	raw, err := os.ReadFile(strings.TrimSuffix(path, ".onnx") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Input struct {
			Shape []int
			Data  []float64
		}
		Outputs []struct{ Data []float64 }
		VJP     struct{ Cotangent, Grad []float64 }
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	m, md, err := LoadNamedOrFile(l.Device(), path+",data=mnist")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := m.(Prior)
	if !ok {
		t.Fatalf("%T is not a Prior", m)
	}
	if md[MetaDataset] != "mnist" || m.Kind() != "onnx" {
		t.Fatalf("metadata %v, kind %s", md, m.Kind())
	}
	if h, w, c := p.Image(); p.LatentDim() != 12 || h != 28 || w != 28 || c != 1 {
		t.Fatalf("latent %d, image %d×%d×%d; want 12 and 28×28×1", p.LatentDim(), h, w, c)
	}
	B := f.Input.Shape[0]
	z, err := kernels.NewTensor(l.Device(), "z", B, 12)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Release()
	if err := z.Write(f32s(f.Input.Data)); err != nil {
		t.Fatal(err)
	}
	net, err := p.Generator().Build(l, z, nn.NetOptions{Backward: true, InputGrad: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	if err := net.DY.Write(f32s(f.VJP.Cotangent)); err != nil {
		t.Fatal(err)
	}
	if err := l.Run(append(append([]*kernels.Op(nil), net.Forward...), net.Backward...)...); err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]struct {
		got  *kernels.Tensor
		want []float64
	}{"f(z)": {net.Y, f.Outputs[0].Data}, "VJP": {net.DX, f.VJP.Grad}} {
		got, err := c.got.Read()
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.want {
			if d := math.Abs(float64(got[i]) - c.want[i]); d > 1e-4*math.Max(1, math.Abs(c.want[i])) {
				t.Fatalf("%s element %d: %v, want PyTorch's %v", what, i, got[i], c.want[i])
			}
		}
	}
}

// TestONNXPriorRefs: the options of PATH.onnx refs, and what is refused.
func TestONNXPriorRefs(t *testing.T) {
	r, err := ParseONNXRef("g.onnx,latent=32,shape=3x64x48,data=celeba,output=x")
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != "g.onnx" || r.Latent != 32 || r.Shape[0] != 3 || r.Shape[1] != 64 || r.Shape[2] != 48 || r.Dataset != "celeba" || r.Output != "x" {
		t.Fatalf("%+v", r)
	}
	if r.String() != "g.onnx,latent=32,shape=3x64x48,data=celeba,output=x" {
		t.Fatal(r.String())
	}
	if !IsONNXRef("a/b.ONNX,latent=3") || IsONNXRef("mnist-vae") || IsONNXRef("w.safetensors") {
		t.Fatal("IsONNXRef")
	}
	for ref, want := range map[string]string{
		"g.onnx,latent=0":     "latent=0 (want a positive integer)",
		"g.onnx,shape=28x28":  "shape=28x28 (want CxHxW",
		"g.onnx,shape=1x0x28": "positive integers",
		"g.onnx,colour=rgb":   `unknown option "colour"`,
		"g.onnx,latent":       "is not KEY=VALUE",
		"/nonexistent/g.onnx": "no such file",
		filepath.Join("..", "nn", "onnx", "testdata", "generator.onnx") + ",latent=13": "latent=13, but the model's input",
	} {
		l := testLib(t)
		if _, _, err := LoadNamedOrFile(l.Device(), ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", ref, err, want)
		}
	}
}

func f32s(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}
