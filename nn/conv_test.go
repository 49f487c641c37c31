package nn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"osds/kernels"
)

// convTestRNG seeds from the clock and logs the seed.
func convTestRNG(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 7))
}

// convLayer is either layer kind behind one interface, for table-driven tests.
type convLayer interface {
	Forward(l *kernels.Library, y, x *kernels.Tensor, act kernels.Activation) (*ConvPlan, error)
	Backward(l *kernels.Library, dx, dy, x, ones *kernels.Tensor) (*ConvPlan, error)
	BackwardData(l *kernels.Library, dx, dy *kernels.Tensor) (*ConvPlan, error)
	Params() []*Param
	Release()
}

func newConvLayer(t *testing.T, l *kernels.Library, g kernels.ConvGeom, rng *rand.Rand) convLayer {
	t.Helper()
	var m convLayer
	var err error
	if g.Transposed {
		m, err = NewConvTranspose2D(l.Device(), "ct", g, rng)
	} else {
		m, err = NewConv2D(l.Device(), "c", g, rng)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	return m
}

func convTensor(t *testing.T, l *kernels.Library, label string, xs []float32, shape ...int) *kernels.Tensor {
	t.Helper()
	x, err := kernels.FromSlice(l.Device(), label, xs, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Release)
	return x
}

func convPoisoned(t *testing.T, l *kernels.Library, label string, shape ...int) *kernels.Tensor {
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

func convRead(t *testing.T, x *kernels.Tensor) []float64 {
	t.Helper()
	v, err := x.Read()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i := range v {
		out[i] = float64(v[i])
	}
	return out
}

func convRun(t *testing.T, l *kernels.Library, plans ...*ConvPlan) {
	t.Helper()
	var ops []*kernels.Op
	for _, p := range plans {
		ops = append(ops, p.Ops...)
	}
	if err := l.Run(ops...); err != nil {
		t.Fatal(err)
	}
}

func mustPlan(t *testing.T) func(*ConvPlan, error) *ConvPlan {
	return func(p *ConvPlan, err error) *ConvPlan {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Release)
		return p
	}
}

// convClose asserts |got − want| ≤ tol·max(1, |want|) elementwise; NaN fails.
func convClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("%s: element %d: got %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestConvLayersMatchReferences runs both layers' Forward (with an activation), Backward
// (twice: the parameter gradients accumulate) and BackwardData on awkward geometries and
// compares with the direct float64 references of kernels. Each plan's batch differs
// from Geom.Batch (plans take it from their tensors).
func TestConvLayersMatchReferences(t *testing.T) {
	l := testLib(t)
	rng := convTestRNG(t)
	must := mustPlan(t)
	for i, g := range []kernels.ConvGeom{
		{InH: 7, InW: 5, InC: 3, OutC: 5, KH: 3, KW: 3, Stride: 1, Pad: 1},
		{InH: 7, InW: 5, InC: 5, OutC: 3, KH: 4, KW: 4, Stride: 2, Pad: 1},
		{InH: 6, InW: 7, InC: 3, OutC: 2, KH: 3, KW: 2, Stride: 2, Pad: 0},
		{InH: 7, InW: 5, InC: 3, OutC: 5, KH: 1, KW: 1, Stride: 1, Pad: 0},
		{InH: 4, InW: 3, InC: 5, OutC: 3, KH: 4, KW: 4, Stride: 2, Pad: 1, Transposed: true},
		{InH: 4, InW: 3, InC: 3, OutC: 5, KH: 3, KW: 3, Stride: 2, Pad: 1, OutPad: 1, Transposed: true},
		{InH: 3, InW: 5, InC: 5, OutC: 3, KH: 3, KW: 2, Stride: 1, Pad: 0, Transposed: true},
		{InH: 5, InW: 3, InC: 3, OutC: 4, KH: 1, KW: 1, Stride: 1, Pad: 0, Transposed: true},
	} {
		g.Batch = 1
		m := newConvLayer(t, l, g, rng)
		g.Batch = 2 + i%2
		nIn, nOut := g.Batch*g.InLen(), g.Batch*g.OutLen()
		xs, dys := NormalInit(rng, nIn), NormalInit(rng, nOut)
		x := convTensor(t, l, "x", xs, g.Batch, g.InLen())
		dy := convTensor(t, l, "dy", dys, g.Batch, g.OutLen())
		y := convPoisoned(t, l, "y", g.Batch, g.OutLen())
		dx := convPoisoned(t, l, "dx", g.Batch, g.InLen())
		dx2 := convPoisoned(t, l, "dx2", g.Batch, g.InLen())
		act := []kernels.Activation{kernels.LeakyReLU, kernels.Identity, kernels.Tanh}[i%3]
		fwd := must(m.Forward(l, y, x, act))
		bwd := must(m.Backward(l, dx, dy, x, nil))
		convRun(t, l, fwd, bwd, bwd)

		ps := m.Params()
		x64, dy64, w64, b64 := convRead(t, x), convRead(t, dy), convRead(t, ps[0].Value), convRead(t, ps[1].Value)
		var want, wdx, wdW, wdb []float64
		if g.Transposed {
			want = kernels.RefConvTranspose2D(x64, w64, b64, g)
			wdx, wdW, wdb = kernels.RefConvTranspose2DBackward(x64, w64, dy64, g)
		} else {
			want = kernels.RefConv2D(x64, w64, b64, g)
			wdx, wdW, wdb = kernels.RefConv2DBackward(x64, w64, dy64, g)
		}
		for j := range want {
			want[j] = kernels.RefActivate(act, want[j])
		}
		name := g.String()
		convClose(t, name+": y", convRead(t, y), want, act.Tolerance())
		convClose(t, name+": dx", convRead(t, dx), wdx, 1e-4)
		twice := func(v []float64) []float64 {
			out := make([]float64, len(v))
			for j := range v {
				out[j] = 2 * v[j]
			}
			return out
		}
		convClose(t, name+": dW (accumulated twice)", convRead(t, ps[0].Grad), twice(wdW), 1e-4)
		convClose(t, name+": db (accumulated twice)", convRead(t, ps[1].Grad), twice(wdb), 1e-4)

		// BackwardData: the same dx, parameter gradients untouched.
		gW, gb := convRead(t, ps[0].Grad), convRead(t, ps[1].Grad)
		convRun(t, l, must(m.BackwardData(l, dx2, dy)))
		convClose(t, name+": dx (BackwardData)", convRead(t, dx2), wdx, 1e-4)
		convClose(t, name+": dW after BackwardData", convRead(t, ps[0].Grad), gW, 0)
		convClose(t, name+": db after BackwardData", convRead(t, ps[1].Grad), gb, 0)
	}
}

// refConvStack is the float64 loss Σ c ⊙ convT(act(conv(x; W1) + b1); W2) + b2.
func refConvStack(x []float64, g1, g2 kernels.ConvGeom, w1, b1, w2, b2 []float64, act kernels.Activation, c []float64) float64 {
	h := kernels.RefConv2D(x, w1, b1, g1)
	for i := range h {
		h[i] = kernels.RefActivate(act, h[i])
	}
	y := kernels.RefConvTranspose2D(h, w2, b2, g2)
	loss := 0.0
	for i := range y {
		loss += c[i] * y[i]
	}
	return loss
}

// TestConvStackGradientsMatchFiniteDifferences runs Conv2D → activation →
// ConvTranspose2D forward and backward on the GPU (the pre-activation kept for
// ActivateBackward, ones tensors passed in) and compares every parameter and input
// gradient with central differences of the float64 forward.
func TestConvStackGradientsMatchFiniteDifferences(t *testing.T) {
	l := testLib(t)
	d := l.Device()
	rng := convTestRNG(t)
	must := mustPlan(t)
	for _, act := range []kernels.Activation{kernels.GELU, kernels.LeakyReLU} {
		g1 := kernels.ConvGeom{Batch: 2, InH: 7, InW: 5, InC: 3, OutC: 4, KH: 3, KW: 3, Stride: 2, Pad: 1}            // → 4×3×4
		g2 := kernels.ConvGeom{Batch: 2, InH: 4, InW: 3, InC: 4, OutC: 2, KH: 3, KW: 2, Stride: 2, Pad: 1, OutPad: 1} // → 8×5×2
		c1, err := NewConv2D(d, "c1", g1, rng)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c1.Release)
		c2, err := NewConvTranspose2D(d, "c2", g2, rng)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c2.Release)
		g2 = c2.Geom
		if g1.OutLen() != g2.InLen() {
			t.Fatalf("stack mismatch: %v then %v", g1, g2)
		}
		x := convTensor(t, l, "x", NormalInit(rng, g1.Batch*g1.InLen()), g1.Batch, g1.InLen())
		dy := convTensor(t, l, "dy", NormalInit(rng, g2.Batch*g2.OutLen()), g2.Batch, g2.OutLen())
		pre := convPoisoned(t, l, "pre", g1.Batch, g1.OutLen())
		h := convPoisoned(t, l, "h", g1.Batch, g1.OutLen())
		y := convPoisoned(t, l, "y", g2.Batch, g2.OutLen())
		dh := convPoisoned(t, l, "dh", g1.Batch, g1.OutLen())
		dpre := convPoisoned(t, l, "dpre", g1.Batch, g1.OutLen())
		dx := convPoisoned(t, l, "dx", g1.Batch, g1.InLen())
		ones1, err := Ones(d, g1.Batch*g1.OutH()*g1.OutW())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ones1.Release)
		ones2, err := Ones(d, g2.Batch*g2.OutH()*g2.OutW())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ones2.Release)

		actF, err := l.Activate(h, pre, act)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(actF.Release)
		actB, err := l.ActivateBackward(dpre, dh, pre, act)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(actB.Release)
		f1 := must(c1.Forward(l, pre, x, kernels.Identity))
		f2 := must(c2.Forward(l, y, h, kernels.Identity))
		b2 := must(c2.Backward(l, dh, dy, h, ones2))
		b1 := must(c1.Backward(l, dx, dpre, x, ones1))
		var ops []*kernels.Op
		ops = append(ops, f1.Ops...)
		ops = append(ops, actF)
		ops = append(ops, f2.Ops...)
		ops = append(ops, b2.Ops...)
		ops = append(ops, actB)
		ops = append(ops, b1.Ops...)
		if err := l.Run(ops...); err != nil {
			t.Fatal(err)
		}

		w1, bb1, w2, bb2 := convRead(t, c1.W.Value), convRead(t, c1.B.Value), convRead(t, c2.W.Value), convRead(t, c2.B.Value)
		x64, c64 := convRead(t, x), convRead(t, dy)
		f := func() float64 { return refConvStack(x64, g1, g2, w1, bb1, w2, bb2, act, c64) }
		check := func(name string, vals []float64, got []float64) {
			t.Helper()
			for i := range vals {
				old := vals[i]
				step := 1e-6 * math.Max(1, math.Abs(old))
				vals[i] = old + step
				fp := f()
				vals[i] = old - step
				fm := f()
				vals[i] = old
				fd := (fp - fm) / (2 * step)
				if math.Abs(fd-got[i]) > 1e-3*math.Max(1, math.Abs(fd)) {
					t.Fatalf("%v: ∂L/∂%s[%d]: GPU %v, finite difference %v", act, name, i, got[i], fd)
				}
			}
		}
		check("W1", w1, convRead(t, c1.W.Grad))
		check("b1", bb1, convRead(t, c1.B.Grad))
		check("W2", w2, convRead(t, c2.W.Grad))
		check("b2", bb2, convRead(t, c2.B.Grad))
		check("x", x64, convRead(t, dx))
	}
}

// TestConvLayerErrors: bad geometries and mismatched tensors are errors that say what
// is wrong.
func TestConvLayerErrors(t *testing.T) {
	l := testLib(t)
	d := l.Device()
	rng := convTestRNG(t)
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
	g := kernels.ConvGeom{Batch: 2, InH: 7, InW: 5, InC: 3, OutC: 4, KH: 3, KW: 3, Stride: 2, Pad: 1} // → 4×3×4
	_, err := NewConv2D(d, "bad", kernels.ConvGeom{InH: 7, InW: 5, InC: 3, OutC: 4, KH: 9, KW: 3, Stride: 1}, rng)
	expect("empty output", err, "conv2d bad", "output is empty")
	tg := g
	tg.Transposed = true
	_, err = NewConv2D(d, "t", tg, rng)
	expect("transposed geometry", err, "NewConvTranspose2D")
	_, err = NewConvTranspose2D(d, "op", kernels.ConvGeom{InH: 3, InW: 3, InC: 2, OutC: 2, KH: 3, KW: 3, Stride: 2, OutPad: 2}, rng)
	expect("outpad", err, "conv-transpose2d op", "OutPad 2 must be smaller than Stride 2")

	m, err := NewConv2D(d, "c", g, rng)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	x := convPoisoned(t, l, "x", 2, 105)
	y := convPoisoned(t, l, "y", 2, 48)
	_, err = m.Forward(l, y, convPoisoned(t, l, "x4", 2, 7, 5, 3), kernels.Identity)
	expect("4-D x", err, "conv2d c forward", "[2 7 5 3]", "rows of 105")
	_, err = m.Forward(l, convPoisoned(t, l, "y47", 2, 47), x, kernels.Identity)
	expect("wrong y", err, "conv2d c forward", "[2 47]", "[2, 48]")
	_, err = m.Backward(l, nil, y, x, convPoisoned(t, l, "ones", 23, 1))
	expect("wrong ones", err, "conv2d c backward", "ones", "[24, 1]")
	_, err = m.Backward(l, convPoisoned(t, l, "dx3", 3, 105), y, x, nil)
	expect("wrong dx", err, "conv2d c backward", "dx", "[2, 105]")
	_, err = m.BackwardData(l, x, convPoisoned(t, l, "dy1", 1, 48))
	expect("batch mismatch", err, "backward-data", "dy", "[2, 48]")
	p, err := m.Forward(l, y, x, kernels.Identity)
	if err != nil {
		t.Fatal(err)
	}
	p.Release()
	p.Release() // idempotent
}
