package onnx

import (
	"fmt"
	"testing"

	"osds/kernels"
	"osds/nn"
)

// TestLayerMatchesPyTorch runs each PyTorch fixture as an nn.Layer, the way a prior's
// Generator or a constraint uses it: rows in osds's NHWC layout in, rows out, and the
// VJP through LayerIO.DY/DX. The reward model reads a 2-channel 6×5 image, so its rows
// are the NHWC transpose of PyTorch's NCHW input and its input gradient comes back
// transposed the same way: this checks the layer's layout exchange against PyTorch.
func TestLayerMatchesPyTorch(t *testing.T) {
	l := testLib(t)
	for _, name := range []string{"generator", "mlp_decoder", "classifier", "reward"} {
		t.Run(name, func(t *testing.T) {
			f, m := loadFixture(t, name)
			y, err := NewLayer(m, f.VJP.Output, shapeOf(f, f.VJP.Output)[1:])
			if err != nil {
				t.Fatal(err)
			}
			in := f.Input.Shape
			B := in[0]
			x64, grad64 := f.Input.Data, f.VJP.Grad
			if len(in) == 4 && in[1] > 1 {
				y.InImage = &[3]int{in[2], in[3], in[1]}
				x64, grad64 = toNHWC(x64, in), toNHWC(grad64, in)
			}
			K, err := y.OutWidth(y.InWidth())
			if err != nil {
				t.Fatal(err)
			}
			x := tensor(t, l, "x", f32(x64), B, y.InWidth())
			out := poisonedT(t, l, "y", B, K)
			dy := tensor(t, l, "dy", f32(f.VJP.Cotangent), B, K)
			dx := poisonedT(t, l, "dx", B, y.InWidth())
			pass, err := y.Build(l, nn.LayerIO{X: x, Y: out, DY: dy, DX: dx})
			if err != nil {
				t.Fatal(err)
			}
			defer pass.Release()
			if err := l.Run(append(append([]*kernels.Op(nil), pass.Forward...), pass.Backward...)...); err != nil {
				t.Fatal(err)
			}
			assertClose(t, "output", read(t, out), outputOf(f, f.VJP.Output), 1e-4)
			assertClose(t, "input gradient", read(t, dx), grad64, 1e-4)
		})
	}
}

// TestLayerOutputToNHWC: an NCHW image output becomes NHWC rows (OutImage), checked on
// an Identity graph against the transpose done on the host.
func TestLayerOutputToNHWC(t *testing.T) {
	l := testLib(t)
	const B, C, H, W = 3, 3, 4, 5
	g := testGraph{
		nodes:   [][]byte{encNode("Identity", "id", []string{"x"}, []string{"y"})},
		inputs:  [][]byte{encValueInfo("x", "batch", C, H, W)},
		outputs: [][]byte{encValueInfo("y", "batch", C, H, W)},
	}
	m, err := Parse(encModel(17, g.encode()))
	if err != nil {
		t.Fatal(err)
	}
	y, err := NewLayer(m, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	y.OutImage = &[3]int{H, W, C}
	xs := make([]float64, B*C*H*W)
	for i := range xs {
		xs[i] = float64(i) + 0.5
	}
	x := tensor(t, l, "x", f32(xs), B, C*H*W)
	out := poisonedT(t, l, "y", B, C*H*W)
	dy := tensor(t, l, "dy", f32(toNHWC(xs, []int{B, C, H, W})), B, C*H*W)
	dx := poisonedT(t, l, "dx", B, C*H*W)
	pass, err := y.Build(l, nn.LayerIO{X: x, Y: out, DY: dy, DX: dx})
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Release()
	if err := l.Run(append(append([]*kernels.Op(nil), pass.Forward...), pass.Backward...)...); err != nil {
		t.Fatal(err)
	}
	assertClose(t, "NHWC rows", read(t, out), toNHWC(xs, []int{B, C, H, W}), 0)
	// The VJP of a transpose is the inverse transpose: dx = NCHW(dy) = xs.
	assertClose(t, "input gradient", read(t, dx), xs, 0)
}

// TestLayerErrors: widths that do not match the model are refused with the model's name.
func TestLayerErrors(t *testing.T) {
	_, m := loadFixture(t, "generator")
	y, err := NewLayer(m, "", []int{1, 28, 28})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := y.OutWidth(13); err == nil {
		t.Fatal("a row of 13 values was accepted by a generator of 12 inputs")
	}
	if _, err := NewLayer(m, "nosuch", nil); err == nil {
		t.Fatal("an unknown output was accepted")
	}
}

// toNHWC transposes a [B, C, H, W] array to [B, H, W, C].
func toNHWC(x []float64, shape []int) []float64 {
	B, C, H, W := shape[0], shape[1], shape[2], shape[3]
	out := make([]float64, len(x))
	for b := 0; b < B; b++ {
		for c := 0; c < C; c++ {
			for h := 0; h < H; h++ {
				for w := 0; w < W; w++ {
					out[((b*H+h)*W+w)*C+c] = x[((b*C+c)*H+h)*W+w]
				}
			}
		}
	}
	return out
}

func outputOf(f *fixture, name string) []float64 {
	for _, o := range f.Output {
		if o.Name == name || name == "" {
			return o.Data
		}
	}
	panic(fmt.Sprintf("fixture %s has no output %q", f.Model, name))
}

func shapeOf(f *fixture, name string) []int {
	for _, o := range f.Output {
		if o.Name == name || name == "" {
			return o.Shape
		}
	}
	panic(fmt.Sprintf("fixture %s has no output %q", f.Model, name))
}

func tensor(t *testing.T, l *kernels.Library, label string, data []float32, shape ...int) *kernels.Tensor {
	t.Helper()
	x, err := kernels.NewTensor(l.Device(), label, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Release)
	if err := x.Write(data); err != nil {
		t.Fatal(err)
	}
	return x
}

func poisonedT(t *testing.T, l *kernels.Library, label string, shape ...int) *kernels.Tensor {
	t.Helper()
	x, err := kernels.NewTensor(l.Device(), label, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Release)
	if err := x.Poison(); err != nil {
		t.Fatal(err)
	}
	return x
}

func read(t *testing.T, x *kernels.Tensor) []float32 {
	t.Helper()
	v, err := x.Read()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
