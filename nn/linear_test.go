package nn

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"osds/gpu"
	"osds/kernels"
)

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

// refMLP is the float64 forward of Linear → act → Linear with the given parameters,
// returning L = Σ c ⊙ y for the finite differences.
func refMLP(x []float64, b, in, hid, out int, w1, b1, w2, b2 []float64, act kernels.Activation, c []float64) float64 {
	loss := 0.0
	for r := 0; r < b; r++ {
		h := make([]float64, hid)
		for j := range h {
			s := b1[j]
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w1[i*hid+j]
			}
			h[j] = kernels.RefActivate(act, s)
		}
		for j := 0; j < out; j++ {
			s := b2[j]
			for i := 0; i < hid; i++ {
				s += h[i] * w2[i*out+j]
			}
			loss += c[r*out+j] * s
		}
	}
	return loss
}

// TestTwoLayerGradientsMatchFiniteDifferences runs Linear → GELU/SiLU/tanh → Linear
// forward and backward on the GPU and compares every parameter and input gradient with
// central differences of the float64 forward: once with the activation and its derivative
// as ops of their own, once fused into the products (ForwardKeep, InputGradThrough).
func TestTwoLayerGradientsMatchFiniteDifferences(t *testing.T) {
	l := testLib(t)
	d := l.Device()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	// mode 0: activation and derivative as ops of their own; 1: fused, weight gradients
	// by ParamGrads; 2: fused, by BackwardThrough.
	for i, act := range []kernels.Activation{kernels.GELU, kernels.SiLU, kernels.Tanh, kernels.LeakyReLU, kernels.GELU, kernels.SiLU, kernels.GELU} {
		mode := min(2, max(0, i-3))
		fused := mode > 0
		const b, in, hid, out = 11, 5, 7, 3
		l1, err := NewLinear(d, "l1", in, hid, rng, false)
		if err != nil {
			t.Fatal(err)
		}
		l2, err := NewLinear(d, "l2", hid, out, rng, false)
		if err != nil {
			t.Fatal(err)
		}
		xs := NormalInit(rng, b*in)
		cs := NormalInit(rng, b*out)
		x, _ := kernels.FromSlice(d, "x", xs, b, in)
		dy, _ := kernels.FromSlice(d, "dy", cs, b, out)
		pre, _ := kernels.NewTensor(d, "pre", b, hid)
		h, _ := kernels.NewTensor(d, "h", b, hid)
		y, _ := kernels.NewTensor(d, "y", b, out)
		dh, _ := kernels.NewTensor(d, "dh", b, hid)
		dpre, _ := kernels.NewTensor(d, "dpre", b, hid)
		dx, _ := kernels.NewTensor(d, "dx", b, in)
		ones, _ := Ones(d, b)
		var ops []*kernels.Op
		must := func(op *kernels.Op, err error) {
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, op)
		}
		if fused {
			must(l1.ForwardKeep(l, h, pre, x, act))
		} else {
			must(l1.Forward(l, pre, x, kernels.Identity))
			must(l.Activate(h, pre, act))
		}
		must(l2.Forward(l, y, h, kernels.Identity))
		if mode == 2 {
			b2, err := l2.BackwardThrough(l, dpre, dy, h, pre, ones, act)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, b2...)
		} else if fused {
			// The trainer's split: weight gradients apart, the input gradient through act.
			b2, err := l2.ParamGrads(l, dy, h)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, b2...)
			must(l2.InputGradThrough(l, dpre, dy, pre, act))
		} else {
			b2, err := l2.Backward(l, dh, dy, h, ones)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, b2...)
			must(l.ActivateBackward(dpre, dh, pre, act))
		}
		b1, err := l1.Backward(l, dx, dpre, x, ones)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, b1...)
		if err := l.Run(ops...); err != nil {
			t.Fatal(err)
		}
		read := func(x *kernels.Tensor) []float64 {
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
		w1, bb1, w2, bb2 := read(l1.W.Value), read(l1.B.Value), read(l2.W.Value), read(l2.B.Value)
		x64, c64 := read(x), read(dy)
		f := func() float64 { return refMLP(x64, b, in, hid, out, w1, bb1, w2, bb2, act, c64) }
		check := func(name string, vals []float64, got []float64) {
			for i := range vals {
				old := vals[i]
				step := 1e-6 * math.Max(1, math.Abs(old))
				vals[i] = old + step
				fp := f()
				vals[i] = old - step
				fm := f()
				vals[i] = old
				fd := (fp - fm) / (2 * step)
				// f32 forward/backward against a float64 oracle: 1e-3 relative, with an
				// absolute floor for gradients near zero.
				if math.Abs(fd-got[i]) > 1e-3*math.Max(1, math.Abs(fd)) {
					t.Fatalf("%v (mode %d): ∂L/∂%s[%d]: GPU %v, finite difference %v", act, mode, name, i, got[i], fd)
				}
			}
		}
		check("W1", w1, read(l1.W.Grad))
		check("b1", bb1, read(l1.B.Grad))
		check("W2", w2, read(l2.W.Grad))
		check("b2", bb2, read(l2.B.Grad))
		check("x", x64, read(dx))
		for _, op := range ops {
			op.Release()
		}
		for _, x := range []*kernels.Tensor{x, dy, pre, h, y, dh, dpre, dx, ones} {
			x.Release()
		}
		l1.Release()
		l2.Release()
	}
}
