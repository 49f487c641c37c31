package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// flowSizes are the awkward (rows, D, NA) of the coupling tests: the smallest coupling,
// odd widths with uneven halves, and MNIST's 784 columns over more rows than a GPU
// workgroup count or CPU chunk divides evenly.
var flowSizes = [][3]int{{1, 2, 1}, {5, 7, 3}, {13, 31, 17}, {37, 784, 392}}

// flowCoupling returns a random partition of d columns with na conditioning ones, on the
// device and on the host.
func flowCoupling(t *testing.T, l *Library, rng *rand.Rand, d, na int, clamp float64) (Coupling, RefCoupling) {
	t.Helper()
	perm := rng.Perm(d)
	idx := make([]uint32, d)
	for i, p := range perm {
		idx[i] = uint32(p)
	}
	x, err := NewIndexTensor(l.Device(), "perm", d, d)
	if err != nil {
		t.Fatal(err)
	}
	x.Unique = true
	t.Cleanup(x.Release)
	if err := x.Write(idx); err != nil {
		t.Fatal(err)
	}
	return Coupling{Perm: x, NA: na, Clamp: float32(clamp)}, RefCoupling{Perm: perm, NA: na, Clamp: clamp}
}

// flowRun builds and runs one op.
func flowRun(t *testing.T, l *Library, op *Op, err error) {
	t.Helper()
	ewRun(t, l, op, err)
}

func TestCouplingForward(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sz := range flowSizes {
			rows, d, na := sz[0], sz[1], sz[2]
			for _, inverse := range []bool{false, true} {
				for _, withLD := range []bool{false, true} {
					what := fmt.Sprintf("%s %d×%d na %d logdet %v", flowDirection(inverse), rows, d, na, withLD)
					c, rc := flowCoupling(t, l, rng, d, na, 1.5)
					nb := d - na
					ins := randn(rng, rows*d, 1.5)
					// ŝ of scale 2 reaches the saturated part of the soft clamp.
					hs := randn(rng, rows*2*nb, 2)
					in := mustTensor(t, l, "in", ins, rows, d)
					h := mustTensor(t, l, "h", hs, rows, 2*nb)
					out := poisoned(t, l, "out", rows, d)
					var ld *Tensor
					var ld0 []float32
					if withLD {
						ld0 = randn(rng, rows, 3)
						ld = mustTensor(t, l, "logdet", ld0, rows)
					}
					op, err := l.CouplingForward(out, ld, in, h, c, inverse)
					flowRun(t, l, op, err)
					var ld064 []float64
					if withLD {
						ld064 = to64(ld0)
					}
					wantOut, wantLD := RefCouplingForward(to64(ins), to64(hs), ld064, rc, inverse)
					assertClose(t, what+" out", readT(t, out), wantOut, 1e-4)
					if withLD {
						assertClose(t, what+" logdet", readT(t, ld), wantLD, 1e-4)
					}
				}
			}
		}
	})
}

func TestCouplingBackward(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sz := range flowSizes {
			rows, d, na := sz[0], sz[1], sz[2]
			for _, inverse := range []bool{false, true} {
				what := fmt.Sprintf("%s %d×%d na %d", flowDirection(inverse), rows, d, na)
				c, rc := flowCoupling(t, l, rng, d, na, 2)
				nb := d - na
				ins, hs, douts := randn(rng, rows*d, 1.5), randn(rng, rows*2*nb, 2), randn(rng, rows*d, 1)
				ldgrad := rng.NormFloat64()
				in := mustTensor(t, l, "in", ins, rows, d)
				h := mustTensor(t, l, "h", hs, rows, 2*nb)
				dout := mustTensor(t, l, "dout", douts, rows, d)
				din, dh := poisoned(t, l, "din", rows, d), poisoned(t, l, "dh", rows, 2*nb)
				op, err := l.CouplingBackward(din, dh, dout, in, h, c, inverse, float32(ldgrad))
				flowRun(t, l, op, err)
				wantDin, wantDh := RefCouplingBackward(to64(douts), to64(ins), to64(hs), rc, inverse, float64(float32(ldgrad)))
				assertClose(t, what+" din", readT(t, din), wantDin, 1e-4)
				assertClose(t, what+" dh", readT(t, dh), wantDh, 1e-4)
			}
		}
	})
}

// TestRefCouplingBackward checks the backward reference against central differences of
// the forward reference, for L = Σ w⊙out + g·Σ logdet with in and h independent (the
// network's path is CouplingScatterAdd's business).
func TestRefCouplingBackward(t *testing.T) {
	rng := testRNG(t)
	const rows, d, na = 3, 7, 4
	perm := rng.Perm(d)
	rc := RefCoupling{Perm: perm, NA: na, Clamp: 1.3}
	for _, inverse := range []bool{false, true} {
		in, h := to64(randn(rng, rows*d, 1)), to64(randn(rng, rows*2*(d-na), 1.5))
		w := to64(randn(rng, rows*d, 1))
		g := rng.NormFloat64()
		L := func(in, h []float64) float64 {
			out, ld := RefCouplingForward(in, h, nil, rc, inverse)
			s := 0.0
			for i := range out {
				s += w[i] * out[i]
			}
			for _, v := range ld {
				s += g * v
			}
			return s
		}
		din, dh := RefCouplingBackward(w, in, h, rc, inverse, g)
		check := func(what string, x, grad []float64) {
			for i := range x {
				x0 := x[i]
				const eps = 1e-6
				x[i] = x0 + eps
				lp := L(in, h)
				x[i] = x0 - eps
				lm := L(in, h)
				x[i] = x0
				if fd := (lp - lm) / (2 * eps); math.Abs(fd-grad[i]) > 1e-6*math.Max(1, math.Abs(fd)) {
					t.Fatalf("%s %s[%d]: reference %v, central difference %v", flowDirection(inverse), what, i, grad[i], fd)
				}
			}
		}
		check("din", in, din)
		check("dh", h, dh)
	}
}

func TestCouplingRoundTrip(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	const rows, d, na = 9, 784, 392
	c, _ := flowCoupling(t, l, rng, d, na, 2)
	ys, hs := randn(rng, rows*d, 2), randn(rng, rows*2*(d-na), 3)
	ld0 := randn(rng, rows, 1)
	y := mustTensor(t, l, "y", ys, rows, d)
	h := mustTensor(t, l, "h", hs, rows, 2*(d-na))
	ld := mustTensor(t, l, "logdet", ld0, rows)
	z, back := poisoned(t, l, "z", rows, d), poisoned(t, l, "back", rows, d)
	fwd, err := l.CouplingForward(z, ld, y, h, c, false)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Release()
	inv, err := l.CouplingForward(back, ld, z, h, c, true)
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Release()
	if err := l.Run(fwd, inv); err != nil {
		t.Fatal(err)
	}
	// The inverse undoes the forward; the log-determinants cancel.
	assertClose(t, "inverse(forward(y))", readT(t, back), to64(ys), 1e-5)
	assertClose(t, "logdet after both", readT(t, ld), to64(ld0), 1e-4)
}

func TestCouplingGatherScatter(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sz := range flowSizes {
			rows, d, na := sz[0], sz[1], sz[2]
			what := fmt.Sprintf("%d×%d na %d", rows, d, na)
			c, rc := flowCoupling(t, l, rng, d, na, 1)
			ys, dxas := randn(rng, rows*d, 1), randn(rng, rows*na, 1)
			y := mustTensor(t, l, "y", ys, rows, d)
			xa := poisoned(t, l, "xa", rows, na)
			op, err := l.CouplingGather(xa, y, c)
			flowRun(t, l, op, err)
			assertClose(t, what+" gather", readT(t, xa), RefCouplingGather(to64(ys), rc), 0)
			dxa := mustTensor(t, l, "dxa", dxas, rows, na)
			op, err = l.CouplingScatterAdd(y, dxa, c)
			flowRun(t, l, op, err)
			assertClose(t, what+" scatter add", readT(t, y), RefCouplingScatterAdd(to64(ys), to64(dxas), rc), 1e-6)
		}
	})
}

// flowPixels returns n 8-bit pixel values k/255 with about a third 0 and a tenth 1 (as
// in MNIST's background and strokes).
func flowPixels(rng *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		switch r := rng.IntN(10); {
		case r < 3:
		case r == 3:
			out[i] = 1
		default:
			out[i] = float32(rng.IntN(256)) / 255
		}
	}
	return out
}

func TestDequantLogit(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, shape := range [][2]int{{1, 1}, {3, 7}, {29, 784}} {
			for _, alpha := range []float64{0.05, 1e-6} {
				rows, d := shape[0], shape[1]
				what := fmt.Sprintf("%d×%d α %g", rows, d, alpha)
				pxs := flowPixels(rng, rows*d)
				us := make([]float32, rows*d)
				for i := range us {
					us[i] = float32(rng.Float64())
				}
				pix, u := mustTensor(t, l, "pix", pxs, rows, d), mustTensor(t, l, "u", us, rows, d)
				y, ld := poisoned(t, l, "y", rows, d), poisoned(t, l, "logdet", rows)
				op, err := l.DequantLogit(y, ld, pix, u, float32(alpha))
				flowRun(t, l, op, err)
				wantY, wantLD := RefDequantLogit(to64(pxs), to64(us), d, float64(float32(alpha)))
				assertClose(t, what+" y", readT(t, y), wantY, 1e-4)
				assertClose(t, what+" logdet", readT(t, ld), wantLD, 1e-4)
			}
		}
	})
}

func TestGaussianNLL(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, shape := range [][2]int{{1, 1}, {3, 7}, {29, 784}} {
			rows, d := shape[0], shape[1]
			what := fmt.Sprintf("%d×%d", rows, d)
			zs, lds := randn(rng, rows*d, 1.3), randn(rng, rows, 50)
			scale := float32(1 / float64(rows))
			z, ld := mustTensor(t, l, "z", zs, rows, d), mustTensor(t, l, "logdet", lds, rows)
			nll, dz := poisoned(t, l, "nll", rows), poisoned(t, l, "dz", rows, d)
			op, err := l.GaussianNLL(nll, dz, z, ld, scale)
			flowRun(t, l, op, err)
			wantNLL, wantDz := RefGaussianNLL(to64(zs), to64(lds), d, float64(scale))
			assertClose(t, what+" nll", readT(t, nll), wantNLL, 1e-4)
			got, want := lossDivide(readT(t, dz), wantDz, float64(scale))
			assertClose(t, what+" dz", got, want, 1e-5)
			nll2 := poisoned(t, l, "nll only", rows)
			op, err = l.GaussianNLL(nll2, nil, z, ld, scale)
			flowRun(t, l, op, err)
			assertClose(t, what+" nll (forward only)", readT(t, nll2), wantNLL, 1e-4)
		}
	})
}

func TestLogitOutput(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, shape := range [][]int{{1}, {7}, {13, 7}, {33, 784}} {
			n := ewNumel(shape)
			const alpha = 0.05
			// Scale 4 puts a good share of values past logit(α) = ±2.94, where the map clamps.
			ys, dps := randn(rng, n, 4), randn(rng, n, 1)
			ys[0] = 200 // sigmoid must not overflow
			y, dp := mustTensor(t, l, "y", ys, shape...), mustTensor(t, l, "dp", dps, shape...)
			p, dy := poisoned(t, l, "p", shape...), poisoned(t, l, "dy", shape...)
			op, err := l.LogitOutput(p, y, alpha)
			flowRun(t, l, op, err)
			op, err = l.LogitOutputBackward(dy, dp, y, alpha)
			flowRun(t, l, op, err)
			a := float64(float32(alpha))
			assertClose(t, ewShape(shape)+" p", readT(t, p), RefLogitOutput(to64(ys), a), 1e-5)
			assertClose(t, ewShape(shape)+" dy", readT(t, dy), RefLogitOutputBackward(to64(dps), to64(ys), a), 1e-4)
		}
	})
}

// TestLogitOutputInvertsDequant: for y from DequantLogit, LogitOutput gives back the
// dequantised x, and (k + u)/256 within one bin of the pixel.
func TestLogitOutputInvertsDequant(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	for _, alpha := range []float32{0.05, 1e-6} {
		flowInvertsDequant(t, l, rng, alpha)
	}
}

func flowInvertsDequant(t *testing.T, l *Library, rng *rand.Rand, alpha float32) {
	const rows, d = 4, 50
	pxs := flowPixels(rng, rows*d)
	us := make([]float32, rows*d)
	for i := range us {
		us[i] = float32(rng.Float64())
	}
	pix, u := mustTensor(t, l, "pix", pxs, rows, d), mustTensor(t, l, "u", us, rows, d)
	y, ld, p := poisoned(t, l, "y", rows, d), poisoned(t, l, "logdet", rows), poisoned(t, l, "p", rows, d)
	op, err := l.DequantLogit(y, ld, pix, u, alpha)
	flowRun(t, l, op, err)
	op, err = l.LogitOutput(p, y, alpha)
	flowRun(t, l, op, err)
	want := make([]float64, rows*d)
	for i := range want {
		want[i] = (math.Round(255*float64(pxs[i])) + float64(us[i])) / 256
	}
	assertClose(t, fmt.Sprintf("α %g: sigmoid output of the logit input", alpha), readT(t, p), want, 1e-5)
}

func TestFlowKernelErrors(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	c, _ := flowCoupling(t, l, rng, 6, 3, 2)
	x := poisoned(t, l, "x", 4, 6)
	h := poisoned(t, l, "h", 4, 6)
	hBad := poisoned(t, l, "h", 4, 5)
	ld := poisoned(t, l, "ld", 4)
	notPerm, err := NewIndexTensor(l.Device(), "not unique", 6, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer notPerm.Release()
	cases := []struct {
		want string
		err  func() error
	}{
		{"h is 4×5", func() error {
			_, err := l.CouplingForward(poisoned(t, l, "o", 4, 6), ld, x, hBad, c, false)
			return err
		}},
		{"same tensor", func() error { _, err := l.CouplingForward(x, ld, x, h, c, false); return err }},
		{"want a permutation", func() error {
			_, err := l.CouplingGather(poisoned(t, l, "xa", 4, 3), x, Coupling{Perm: notPerm, NA: 3, Clamp: 1})
			return err
		}},
		{"conditions on 6 of 6", func() error {
			_, err := l.CouplingGather(poisoned(t, l, "xa", 4, 3), x, Coupling{Perm: c.Perm, NA: 6, Clamp: 1})
			return err
		}},
		{"clamp 0", func() error {
			_, err := l.CouplingGather(poisoned(t, l, "xa", 4, 3), x, Coupling{Perm: c.Perm, NA: 3})
			return err
		}},
		{"alpha 0.5", func() error { _, err := l.LogitOutput(poisoned(t, l, "p", 4, 6), x, 0.5); return err }},
		{"logdet is 3", func() error {
			_, err := l.GaussianNLL(poisoned(t, l, "n", 4), nil, x, poisoned(t, l, "ld3", 3), 1)
			return err
		}},
	}
	for _, tc := range cases {
		err := tc.err()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, err)
		}
	}
}
