package kernels

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// convTestGeoms are awkward geometries: odd sizes, channels 3 and 5, strides 1, 2 and 3
// (3 > kernel 2: pixels no position reads), padding 0 and 1, kernels 1×1, 3×3, 4×4 and
// 3×2, transposed with and without OutPad.
var convTestGeoms = []ConvGeom{
	{Batch: 2, InH: 7, InW: 5, InC: 3, OutC: 5, KH: 3, KW: 3, Stride: 1, Pad: 1},
	{Batch: 3, InH: 7, InW: 5, InC: 3, OutC: 4, KH: 3, KW: 3, Stride: 2, Pad: 0},
	{Batch: 2, InH: 7, InW: 5, InC: 5, OutC: 3, KH: 4, KW: 4, Stride: 2, Pad: 1},
	{Batch: 2, InH: 7, InW: 5, InC: 3, OutC: 5, KH: 1, KW: 1, Stride: 1, Pad: 0},
	{Batch: 2, InH: 6, InW: 7, InC: 3, OutC: 2, KH: 3, KW: 2, Stride: 2, Pad: 1},
	{Batch: 2, InH: 7, InW: 5, InC: 3, OutC: 2, KH: 2, KW: 2, Stride: 3, Pad: 0},
	{Batch: 2, InH: 4, InW: 3, InC: 5, OutC: 3, KH: 4, KW: 4, Stride: 2, Pad: 1, Transposed: true},
	{Batch: 3, InH: 4, InW: 3, InC: 3, OutC: 5, KH: 3, KW: 3, Stride: 2, Pad: 1, OutPad: 1, Transposed: true},
	{Batch: 2, InH: 3, InW: 5, InC: 5, OutC: 3, KH: 3, KW: 2, Stride: 1, Pad: 0, Transposed: true},
	{Batch: 2, InH: 5, InW: 3, InC: 3, OutC: 4, KH: 1, KW: 1, Stride: 1, Pad: 0, Transposed: true},
	{Batch: 2, InH: 3, InW: 4, InC: 3, OutC: 2, KH: 2, KW: 2, Stride: 3, Pad: 0, OutPad: 2, Transposed: true},
}

// TestConvGeomSizes checks OutH/OutW against sizes PyTorch gives for the same settings.
func TestConvGeomSizes(t *testing.T) {
	for _, c := range []struct {
		g      ConvGeom
		oh, ow int
	}{
		{ConvGeom{Batch: 1, InH: 28, InW: 28, InC: 1, OutC: 32, KH: 4, KW: 4, Stride: 2, Pad: 1}, 14, 14},
		{ConvGeom{Batch: 1, InH: 14, InW: 14, InC: 32, OutC: 64, KH: 3, KW: 3, Stride: 2, Pad: 1}, 7, 7},
		{ConvGeom{Batch: 1, InH: 7, InW: 5, InC: 3, OutC: 4, KH: 3, KW: 2, Stride: 2, Pad: 0}, 3, 2},
		{ConvGeom{Batch: 1, InH: 7, InW: 5, InC: 3, OutC: 4, KH: 1, KW: 1, Stride: 1, Pad: 0}, 7, 5},
		{ConvGeom{Batch: 1, InH: 14, InW: 14, InC: 32, OutC: 1, KH: 4, KW: 4, Stride: 2, Pad: 1, Transposed: true}, 28, 28},
		{ConvGeom{Batch: 1, InH: 7, InW: 7, InC: 64, OutC: 32, KH: 3, KW: 3, Stride: 2, Pad: 1, OutPad: 1, Transposed: true}, 14, 14},
		{ConvGeom{Batch: 1, InH: 3, InW: 5, InC: 2, OutC: 2, KH: 3, KW: 2, Stride: 1, Pad: 0, Transposed: true}, 5, 6},
	} {
		if err := c.g.Check(); err != nil {
			t.Fatal(err)
		}
		if c.g.OutH() != c.oh || c.g.OutW() != c.ow {
			t.Errorf("%v: output %d×%d, want %d×%d", c.g, c.g.OutH(), c.g.OutW(), c.oh, c.ow)
		}
	}
}

// TestConvGeomCheck: every invalid geometry is named with its problem.
func TestConvGeomCheck(t *testing.T) {
	ok := ConvGeom{Batch: 2, InH: 7, InW: 5, InC: 3, OutC: 4, KH: 3, KW: 3, Stride: 2, Pad: 1}
	for _, c := range []struct {
		edit func(*ConvGeom)
		want string
	}{
		{func(g *ConvGeom) { g.Batch = 0 }, "Batch is 0"},
		{func(g *ConvGeom) { g.InC = -1 }, "InC is -1"},
		{func(g *ConvGeom) { g.KW = 0 }, "KW is 0"},
		{func(g *ConvGeom) { g.Stride = 0 }, "Stride is 0"},
		{func(g *ConvGeom) { g.Pad = -1 }, "Pad is -1"},
		{func(g *ConvGeom) { g.OutPad = 1 }, "only to transposed"},
		{func(g *ConvGeom) { g.KH, g.Pad = 10, 1 }, "output is empty"},
		{func(g *ConvGeom) { g.Transposed, g.OutPad = true, 2 }, "OutPad 2 must be smaller than Stride 2"},
		{func(g *ConvGeom) { g.Transposed, g.InH, g.Stride, g.KH, g.Pad = true, 1, 1, 1, 1 }, "empty"},
		{func(g *ConvGeom) { g.Batch, g.InH, g.InW, g.InC, g.Stride = 1<<12, 1<<8, 1<<8, 1<<8, 1 }, "32-bit"},
	} {
		g := ok
		c.edit(&g)
		err := g.Check()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "conv geometry") {
			t.Errorf("%+v: error %v, want one containing %q", g, err, c.want)
		}
	}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestConvReferences checks the float64 oracles against each other on the CPU: the direct
// RefConv2D / RefConvTranspose2D against RefIm2Col·W and col2im(X·W), and the backward
// references against central differences of the forward ones (the forward is linear, so
// the differences are exact up to rounding).
func TestConvReferences(t *testing.T) {
	rng := testRNG(t)
	for _, g := range convTestGeoms {
		x := to64(randn(rng, g.Batch*g.InLen(), 1))
		ws := g.WeightShape()
		w := to64(randn(rng, ws[0]*ws[1], 1))
		b := to64(randn(rng, g.OutC, 1))
		var y, viaCols []float64
		cs := g.ColsShape()
		if g.Transposed {
			y = RefConvTranspose2D(x, w, b, g)
			cols := RefMatmul(x, g.Batch*g.InH*g.InW, g.InC, w, ws[0], ws[1], false, false, nil, nil, Identity)
			viaCols = RefCol2Im(cols, b, g, Identity)
		} else {
			y = RefConv2D(x, w, b, g)
			viaCols = RefMatmul(RefIm2Col(x, g), cs[0], cs[1], w, ws[0], ws[1], false, false, b, nil, Identity)
		}
		for i := range y {
			if math.Abs(y[i]-viaCols[i]) > 1e-12*math.Max(1, math.Abs(y[i])) {
				t.Fatalf("%v: element %d: direct %v, through the columns %v", g, i, y[i], viaCols[i])
			}
		}

		dy := to64(randn(rng, len(y), 1))
		var dx, dW, db []float64
		fwd := func() []float64 { return RefConv2D(x, w, b, g) }
		if g.Transposed {
			dx, dW, db = RefConvTranspose2DBackward(x, w, dy, g)
			fwd = func() []float64 { return RefConvTranspose2D(x, w, b, g) }
		} else {
			dx, dW, db = RefConv2DBackward(x, w, dy, g)
		}
		loss := func() float64 {
			s := 0.0
			for i, v := range fwd() {
				s += v * dy[i]
			}
			return s
		}
		for _, p := range []struct {
			name string
			v    []float64
			grad []float64
		}{{"x", x, dx}, {"W", w, dW}, {"b", b, db}} {
			for i := range p.v {
				old := p.v[i]
				p.v[i] = old + 0.5
				lp := loss()
				p.v[i] = old - 0.5
				lm := loss()
				p.v[i] = old
				if fd := lp - lm; math.Abs(fd-p.grad[i]) > 1e-9*math.Max(1, math.Abs(fd)) {
					t.Fatalf("%v: ∂L/∂%s[%d] = %v, finite difference %v", g, p.name, i, p.grad[i], fd)
				}
			}
		}
	}
}

// TestIm2Col and TestCol2Im run with the grids planned for GPUs and for CPU adapters.
func TestIm2Col(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	forEachEwTarget(t, func(t *testing.T) { testIm2Col(t, l, rng) })
}

func testIm2Col(t *testing.T, l *Library, rng *rand.Rand) {
	for _, g := range convTestGeoms {
		is, cs := g.ImageShape(), g.ColsShape()
		xs := randn(rng, is[0]*is[1], 1)
		x := mustTensor(t, l, "x", xs, is[0], is[1])
		cols := poisoned(t, l, "cols", cs[0], cs[1])
		op, err := l.Im2Col(cols, x, g)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(op); err != nil {
			t.Fatal(err)
		}
		op.Release()
		assertClose(t, "im2col "+g.String(), readT(t, cols), RefIm2Col(to64(xs), g), 1e-6)
	}
}

func TestCol2Im(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	forEachEwTarget(t, func(t *testing.T) { testCol2Im(t, l, rng) })
}

func testCol2Im(t *testing.T, l *Library, rng *rand.Rand) {
	for i, g := range convTestGeoms {
		is, cs := g.ImageShape(), g.ColsShape()
		_, _, c, _, _ := g.sides()
		cols64 := randn(rng, cs[0]*cs[1], 1)
		cols := mustTensor(t, l, "cols", cols64, cs[0], cs[1])
		for _, withBias := range []bool{false, true} {
			act := Identity
			var bias *Tensor
			var bias64 []float64
			if withBias {
				act = []Activation{Identity, LeakyReLU, SiLU}[i%3]
				bs := randn(rng, c, 1)
				bias, bias64 = mustTensor(t, l, "bias", bs, c), to64(bs)
			}
			x := poisoned(t, l, "x", is[0], is[1])
			op, err := l.Col2ImAct(x, cols, bias, g, act)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Run(op); err != nil {
				t.Fatal(err)
			}
			op.Release()
			assertClose(t, "col2im "+act.String()+" "+g.String(), readT(t, x), RefCol2Im(to64(cols64), bias64, g, act), act.Tolerance())
		}
	}
}

// TestCol2ImLargeGrid runs im2col and col2im on arrays above 65535·256 elements, where
// Grid1D folds the GPU plan's grid into two dimensions (forced here on any adapter).
func TestCol2ImLargeGrid(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	gpuPlan := ewGPU
	ewForceTarget = &gpuPlan
	defer func() { ewForceTarget = nil }()
	g := ConvGeom{Batch: 64, InH: 32, InW: 31, InC: 4, OutC: 2, KH: 8, KW: 8, Stride: 1, Pad: 4}
	is, cs := g.ImageShape(), g.ColsShape()
	if n := cs[0] * cs[1]; n <= 65535*256 {
		t.Fatalf("columns have %d elements: too few to fold the grid", n)
	}
	xs := randn(rng, is[0]*is[1], 1)
	x := mustTensor(t, l, "x", xs, is[0], is[1])
	cols := poisoned(t, l, "cols", cs[0], cs[1])
	back := poisoned(t, l, "back", is[0], is[1])
	im, err := l.Im2Col(cols, x, g)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Release()
	co, err := l.Col2Im(back, cols, nil, g)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Release()
	if err := l.Run(im, co); err != nil {
		t.Fatal(err)
	}
	want := RefIm2Col(to64(xs), g)
	assertClose(t, "im2col (folded grid)", readT(t, cols), want, 1e-6)
	assertClose(t, "col2im (folded grid)", readT(t, back), RefCol2Im(want, nil, g, Identity), 1e-4)
}

// TestConvShapeErrors: wrong shapes and geometries are errors naming the op and shapes.
func TestConvShapeErrors(t *testing.T) {
	l := testLib(t)
	g := ConvGeom{Batch: 2, InH: 7, InW: 5, InC: 3, OutC: 4, KH: 3, KW: 3, Stride: 2, Pad: 1} // 4×3 out
	x := poisoned(t, l, "x", 2, 105)
	cols := poisoned(t, l, "cols", 24, 27)
	bad := poisoned(t, l, "bad", 24, 26)
	bias := poisoned(t, l, "bias", 4)
	expect := func(what string, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("%s: error %q lacks %q", what, err, p)
			}
		}
	}
	if _, err := l.Im2Col(cols, x, g); err != nil {
		t.Fatal(err)
	}
	_, err := l.Im2Col(bad, x, g)
	expect("cols shape", err, "im2col", "24×26", "24×27")
	_, err = l.Im2Col(cols, bad, g)
	expect("image shape", err, "im2col", "24×26", "2×105")
	_, err = l.Col2Im(x, cols, bias, g)
	expect("bias length", err, "col2im", "bias", "3 channels")
	_, err = l.Col2Im(cols, cols, nil, ConvGeom{Batch: 24, InH: 1, InW: 1, InC: 27, OutC: 1, KH: 1, KW: 1, Stride: 1})
	expect("aliasing", err, "col2im", "same buffer")
	g2 := g
	g2.Stride = 0
	_, err = l.Im2Col(cols, x, g2)
	expect("geometry", err, "im2col", "Stride is 0")
	_, err = l.Col2ImAct(x, cols, nil, g, Activation(99))
	expect("activation", err, "col2im", "unknown activation 99")
	_, err = x.Reshaped(7, 31)
	expect("reshape", err, "2×105", "7×31")
}

// BenchmarkConv2D times an MNIST classifier's second convolution (batch 128,
// 14×14×32 → 7×7×64, 3×3, stride 2, pad 1) forward, im2col + matmul with bias, in
// back-to-back passes (at most 16 per submission) timed by TimeOps; the Matmul
// and im2col sub-benchmarks time the parts alone (GFLOP/s always of the whole forward).
func BenchmarkConv2D(b *testing.B) {
	l := testLib(b)
	g := ConvGeom{Batch: 128, InH: 14, InW: 14, InC: 32, OutC: 64, KH: 3, KW: 3, Stride: 2, Pad: 1}
	ct, err := newConvTimer(l, g)
	if err != nil {
		b.Fatal(err)
	}
	defer ct.release()
	for _, c := range []struct {
		name string
		ops  []*Op
	}{{"im2col+matmul", ct.ops}, {"matmul", ct.ops[1:]}, {"im2col", ct.ops[:1]}} {
		b.Run(c.name, func(b *testing.B) {
			total := 0.0
			for done := 0; done < b.N; {
				reps := min(b.N-done, 16)
				sec, err := TimeOps(l, reps, c.ops...)
				if err != nil {
					b.Fatal(err)
				}
				total += sec * float64(reps)
				done += reps
			}
			b.ReportMetric(ConvFLOPs(g)*float64(b.N)/total/1e9, "GFLOP/s")
		})
	}
}
