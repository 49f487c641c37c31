package kernels

import (
	"math"
	"strings"
	"testing"
)

// ewShapes are the awkward shapes every elementwise kernel is tested on: a single
// element, a prime length, a small matrix and one spanning many workgroups, none a
// multiple of the 256-invocation workgroup.
var ewShapes = [][]int{{1}, {7}, {13, 7}, {129, 257}}

var ewActivations = []Activation{Identity, ReLU, LeakyReLU, SiLU, GELU, Tanh, Sigmoid, Softplus, Clip}

// ewScale is the spread of the test inputs for a: 3 reaches both tails of the saturating
// activations; Clip's inputs straddle its bound ±DriftClip.
func ewScale(a Activation) float64 {
	if a == Clip {
		return 1.2 * DriftClip
	}
	return 3
}

// forEachEwTarget runs f as a subtest twice: with grids planned for a GPU (one element
// or row per invocation, folded grids, 256-wide reduction workgroups) and for a CPU
// adapter (a few looping workgroups per core), whatever the adapter really is — so both
// plans are checked on lavapipe and on GPUs.
func forEachEwTarget(t *testing.T, f func(t *testing.T)) {
	for _, target := range []ewTarget{ewGPU, ewCPU} {
		name := map[ewTarget]string{ewGPU: "gpu-plan", ewCPU: "cpu-plan"}[target]
		t.Run(name, func(t *testing.T) {
			prev := ewForceTarget
			ewForceTarget = &target
			defer func() { ewForceTarget = prev }()
			f(t)
		})
	}
}

// ewRun runs op once, failing the test on error, and releases it at the end of the test.
func ewRun(t *testing.T, l *Library, op *Op, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Release)
	if err := l.Run(op); err != nil {
		t.Fatal(err)
	}
}

func TestActivate(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, a := range ewActivations {
			for _, shape := range ewShapes {
				n := ewNumel(shape)
				xs := randn(rng, n, ewScale(a))
				x := mustTensor(t, l, "x", xs, shape...)
				y := poisoned(t, l, "y", shape...)
				op, err := l.Activate(y, x, a)
				ewRun(t, l, op, err)
				want := RefUnary(func(v float64) float64 { return RefActivate(a, v) }, to64(xs))
				assertClose(t, a.String()+" "+ewShape(shape), readT(t, y), want, a.Tolerance())
			}
		}
	})
}

func TestActivateBackward(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, a := range ewActivations {
			for _, shape := range ewShapes {
				n := ewNumel(shape)
				xs, dys := randn(rng, n, ewScale(a)), randn(rng, n, 1)
				x := mustTensor(t, l, "x", xs, shape...)
				dy := mustTensor(t, l, "dy", dys, shape...)
				dx := poisoned(t, l, "dx", shape...)
				op, err := l.ActivateBackward(dx, dy, x, a)
				ewRun(t, l, op, err)
				want := RefActivateBackward(a, to64(dys), to64(xs))
				assertClose(t, a.String()+"' "+ewShape(shape), readT(t, dx), want, a.Tolerance())
			}
		}
	})
}

func TestAddMul(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, shape := range ewShapes {
			n := ewNumel(shape)
			xs, ys := randn(rng, n, 1), randn(rng, n, 2)
			x := mustTensor(t, l, "x", xs, shape...)
			y := mustTensor(t, l, "y", ys, shape...)

			z := poisoned(t, l, "z", shape...)
			op, err := l.Add(z, x, y)
			ewRun(t, l, op, err)
			assertClose(t, "add "+ewShape(shape), readT(t, z), RefAdd(to64(xs), to64(ys)), 1e-4)

			z = poisoned(t, l, "z", shape...)
			op, err = l.Mul(z, x, y)
			ewRun(t, l, op, err)
			assertClose(t, "mul "+ewShape(shape), readT(t, z), RefMul(to64(xs), to64(ys)), 1e-4)
		}
	})
}

func TestAxpyScaleClamp(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, shape := range ewShapes {
			n := ewNumel(shape)
			xs, ys := randn(rng, n, 1), randn(rng, n, 1)
			alpha := float32(rng.NormFloat64()*2 + 0.5)
			x := mustTensor(t, l, "x", xs, shape...)

			y := mustTensor(t, l, "y", ys, shape...)
			op, err := l.Axpy(y, x, alpha)
			ewRun(t, l, op, err)
			assertClose(t, "axpy "+ewShape(shape), readT(t, y), RefAxpy(float64(alpha), to64(xs), to64(ys)), 1e-4)

			// A second α through SetParams, accumulating onto the first result.
			before := readT(t, y)
			alpha2 := float32(rng.NormFloat64())
			if err := op.SetParams(l.Device(), ScaleParams(n, alpha2)); err != nil {
				t.Fatal(err)
			}
			if err := l.Run(op); err != nil {
				t.Fatal(err)
			}
			assertClose(t, "axpy (SetParams) "+ewShape(shape), readT(t, y), RefAxpy(float64(alpha2), to64(xs), to64(before)), 1e-4)

			y = poisoned(t, l, "y", shape...)
			op, err = l.Scale(y, x, alpha)
			ewRun(t, l, op, err)
			assertClose(t, "scale "+ewShape(shape), readT(t, y), RefScale(float64(alpha), to64(xs)), 1e-4)

			lo, hi := float32(-0.5+0.2*rng.Float64()), float32(0.3+0.2*rng.Float64())
			y = poisoned(t, l, "y", shape...)
			op, err = l.Clamp(y, x, lo, hi)
			ewRun(t, l, op, err)
			assertClose(t, "clamp "+ewShape(shape), readT(t, y), RefClamp(to64(xs), float64(lo), float64(hi)), 1e-4)

			// One-sided: no upper bound.
			y = poisoned(t, l, "y", shape...)
			op, err = l.Clamp(y, x, lo, float32(math.Inf(1)))
			ewRun(t, l, op, err)
			assertClose(t, "clamp [lo, ∞) "+ewShape(shape), readT(t, y), RefClamp(to64(xs), float64(lo), math.Inf(1)), 1e-4)
		}
	})
}

// TestScaleFoldedGrid runs one cheap op on more than 65535×256 elements, so the grid folds
// into two dimensions and the shader's linear workgroup index is exercised.
func TestScaleFoldedGrid(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	const n = 17_000_003 // > 65535·256 = 16,776,960; the last workgroup is partial
	gpuPlan := ewGPU
	ewForceTarget = &gpuPlan
	defer func() { ewForceTarget = nil }()
	if g := l.ewGrid(n, 1, ewWorkgroup); g[1] < 2 {
		t.Fatalf("ewGrid(%d, 1, %d) = %v: expected a folded grid", n, ewWorkgroup, g)
	}
	xs := randn(rng, n, 1)
	x := mustTensor(t, l, "x", xs, n)
	y := poisoned(t, l, "y", n)
	alpha := float32(1.5 + rng.Float64())
	op, err := l.Scale(y, x, alpha)
	ewRun(t, l, op, err)
	assertClose(t, "scale (folded grid)", readT(t, y), RefScale(float64(alpha), to64(xs)), 1e-4)
}

func TestElementwiseErrors(t *testing.T) {
	l := testLib(t)
	ones := func(shape ...int) *Tensor {
		x, err := NewTensor(l.Device(), "t"+ewShape(shape), shape...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Release)
		return x
	}
	a, b, c := ones(13, 7), ones(7, 13), ones(13, 7)
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"add shapes", func() error { _, err := l.Add(c, a, b); return err }, "add: z is 13×7 but y is 7×13"},
		{"mul shapes", func() error { _, err := l.Mul(b, a, c); return err }, "mul: z is 7×13 but x is 13×7"},
		{"activate shapes", func() error { _, err := l.Activate(b, a, GELU); return err }, "activate gelu: y is 7×13 but x is 13×7"},
		{"backward shapes", func() error { _, err := l.ActivateBackward(a, b, c, Tanh); return err }, "activate backward tanh: dx is 13×7 but dy is 7×13"},
		{"unknown activation", func() error { _, err := l.Activate(c, a, Activation(42)); return err }, "activate: unknown activation 42"},
		{"unknown activation backward", func() error { _, err := l.ActivateBackward(c, a, a, Activation(9)); return err }, "activate backward: unknown activation 9"},
		{"axpy shapes", func() error { _, err := l.Axpy(b, a, 2); return err }, "axpy: y is 7×13 but x is 13×7"},
		{"axpy alias", func() error { _, err := l.Axpy(a, a, 2); return err }, "axpy: output y is the same tensor as x"},
		{"add alias", func() error { _, err := l.Add(a, a, c); return err }, "add: output z is the same tensor as x"},
		{"scale NaN", func() error { _, err := l.Scale(c, a, float32(math.NaN())); return err }, "scale: alpha = NaN"},
		{"clamp bounds", func() error { _, err := l.Clamp(c, a, 1, -1); return err }, "clamp: bounds [1, -1] are not an interval"},
		{"nil", func() error { _, err := l.Add(c, nil, a); return err }, "add: x is nil"},
	}
	for _, tc := range cases {
		err := tc.err()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not contain %q", tc.name, err, tc.want)
		}
	}
}

func ewNumel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}
