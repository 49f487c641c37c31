package onnx

import (
	"sort"
	"strings"
	"testing"

	"osds/kernels"
)

// The PyTorch fixtures (testdata/make_fixtures.py): every output of the forward pass and
// the input gradient of one output for a random cotangent, against PyTorch in float64, at
// relative 1e-4; then the same model built for a smaller batch (the dynamic batch axis)
// must give the first rows of the same outputs.
var fixtureNames = []string{"mlp_decoder", "generator", "classifier", "reward"}

const fixtureTol = 1e-4

func TestFixtures(t *testing.T) {
	l := testLib(t)
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			f, m := loadFixture(t, name)
			t.Logf("%s: %s, opset %d, input %v, ops %s", name, m.Producer, m.Opset, m.Input, opsOf(m))
			checkFixture(t, l, f, m, f.Input.Shape[0], nil)
		})
	}
}

func TestFixturesSmallerBatch(t *testing.T) {
	l := testLib(t)
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			f, m := loadFixture(t, name)
			checkFixture(t, l, f, m, 2, nil)
		})
	}
}

// checkFixture builds m for batch rows of the fixture (its first rows), runs the forward
// pass and the VJP, and compares with PyTorch. A non-nil input tensor is bound as the
// graph input.
func checkFixture(t *testing.T, l *kernels.Library, f *fixture, m *Model, batch int, input *kernels.Tensor) {
	t.Helper()
	g, err := m.Build(l, batch, BuildOptions{Backward: true, Output: f.VJP.Output, Input: input})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	rows := func(xs []float64, full int) []float64 { return xs[:len(xs)/full*batch] }
	full := f.Input.Shape[0]
	x := f32(rows(f.Input.Data, full))
	for _, o := range g.Outputs {
		if err := o.Tensor.Poison(); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.InputGrad.Poison(); err != nil {
		t.Fatal(err)
	}
	y, dx, err := g.VJP(x, f32(rows(f.VJP.Cotangent, full)))
	if err != nil {
		t.Fatal(err)
	}
	_ = y
	for _, want := range f.Output {
		var got *Output
		for i := range g.Outputs {
			if g.Outputs[i].Name == want.Name {
				got = &g.Outputs[i]
			}
		}
		if got == nil {
			t.Fatalf("no output %q", want.Name)
		}
		shape := append([]int{batch}, want.Shape[1:]...)
		if !sameShape(got.Shape, shape) {
			t.Fatalf("output %s has shape %v, PyTorch %v", want.Name, got.Shape, shape)
		}
		vals, err := got.Tensor.Read()
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "output "+want.Name, vals, rows(want.Data, full), fixtureTol)
	}
	assertClose(t, "VJP of "+f.VJP.Output, dx, rows(f.VJP.Grad, full), fixtureTol)
}

// opsOf lists the model's operators with their counts, for the log.
func opsOf(m *Model) string {
	count := map[string]int{}
	for _, n := range m.graph.nodes {
		count[n.opType]++
	}
	var parts []string
	for k, v := range count {
		parts = append(parts, k+"×"+itoa(v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func itoa(v int) string {
	s := ""
	for {
		s = string(rune('0'+v%10)) + s
		v /= 10
		if v == 0 {
			return s
		}
	}
}

// TestBoundInput builds the generator on a tensor the caller owns (the sampler's z) and
// records the forward and backward ops into one recorder with other work.
func TestBoundInput(t *testing.T) {
	l := testLib(t)
	f, m := loadFixture(t, "generator")
	z, err := kernels.NewTensor(l.Device(), "sampler z", 3*12)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Release()
	checkFixture(t, l, f, m, 3, z)

	g, err := m.Build(l, 3, BuildOptions{Backward: true, Input: z})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if g.Input.Buf != z.Buf {
		t.Fatal("the graph input is not the bound tensor")
	}
	if err := z.Write(f32(f.Input.Data[:36])); err != nil {
		t.Fatal(err)
	}
	if err := g.Cotangent.Write(f32(f.VJP.Cotangent[:3*784])); err != nil {
		t.Fatal(err)
	}
	r, err := l.NewRecorder("onnx test")
	if err != nil {
		t.Fatal(err)
	}
	r.Record(g.Forward...)
	r.Record(g.Backward...)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	dx, err := g.InputGrad.Read()
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "recorded VJP", dx, f.VJP.Grad[:36], fixtureTol)
	t.Logf("generator at batch 3: %d forward and %d backward dispatches", len(g.Forward), len(g.Backward))
}
