package kernels

import (
	"fmt"
	"testing"
)

// ndCase is one strided index space: a transpose of an awkward 3-d array, a reversed
// strided slice, a broadcast of a row against a column, and a rank-8 space.
type ndCase struct {
	name  string
	shape []int
}

var ndSpaces = []ndCase{{"vector", []int{7}}, {"3d", []int{3, 5, 7}}, {"rank8", []int{2, 1, 3, 2, 1, 2, 3, 2}}}

// ndPermuted returns the layout reading a contiguous array of shape perm-permuted:
// index i of the result space reads element i[perm⁻¹] of the source (Transpose).
func ndPermuted(shape []int, perm []int) ([]int, Layout) {
	src := Contiguous(shape)
	out := make([]int, len(perm))
	st := make([]int, len(perm))
	for d, p := range perm {
		out[d], st[d] = shape[p], src.Strides[p]
	}
	return out, Layout{Strides: st}
}

func TestCopyND(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		// Transpose: the reversed axes of each space.
		for _, c := range ndSpaces {
			n := ewNumel(c.shape)
			perm := make([]int, len(c.shape))
			for i := range perm {
				perm[i] = len(perm) - 1 - i
			}
			out, sl := ndPermuted(c.shape, perm)
			xs := randn(rng, n, 1)
			src := mustTensor(t, l, "src", xs, n)
			dst := poisoned(t, l, "dst", n)
			op, err := l.CopyND(dst, Contiguous(out), src, sl, out, 1.5)
			ewRun(t, l, op, err)
			want := RefCopyND(make([]float64, n), Contiguous(out), to64(xs), sl, out, 1.5)
			assertClose(t, "transpose "+c.name, readT(t, dst), want, 1e-6)
		}
		// A reversed slice with step −2 of a 13×9 array's columns, written into the middle
		// columns of a larger array (the rest keeps its values: Concat / Slice gradient).
		xs := randn(rng, 13*9, 1)
		src := mustTensor(t, l, "src", xs, 13, 9)
		shape := []int{13, 4}
		sl := Layout{Offset: 8, Strides: []int{9, -2}}
		base := randn(rng, 13*11, 1)
		dst := mustTensor(t, l, "dst", base, 13, 11)
		dl := Layout{Offset: 3, Strides: []int{11, 1}}
		op, err := l.CopyND(dst, dl, src, sl, shape, 1)
		ewRun(t, l, op, err)
		assertClose(t, "slice into slab", readT(t, dst), RefCopyND(to64(base), dl, to64(xs), sl, shape, 1), 1e-6)
		// Fill.
		f := poisoned(t, l, "fill", 1031)
		op, err = l.FillND(f, -0.25)
		ewRun(t, l, op, err)
		want := make([]float64, 1031)
		for i := range want {
			want[i] = -0.25
		}
		assertClose(t, "fill", readT(t, f), want, 0)
	})
}

func TestBinaryND(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		pairs := [][2][]int{{{13, 7}, {13, 7}}, {{5, 1, 7}, {3, 1}}, {{1}, {2, 3, 5}}, {{2, 1, 3, 2, 1, 2, 3, 2}, {3, 1, 1, 2, 3, 1}}}
		for _, op := range []BinaryOp{BinaryAdd, BinarySub, BinaryMul, BinaryDiv, BinaryPow} {
			for _, pr := range pairs {
				as, bs := pr[0], pr[1]
				shape, err := BroadcastShapes(as, bs)
				if err != nil {
					t.Fatal(err)
				}
				al, _ := BroadcastLayout(as, shape)
				bl, _ := BroadcastLayout(bs, shape)
				na, nb, n := ewNumel(as), ewNumel(bs), ewNumel(shape)
				av, bv := randn(rng, na, 1), randn(rng, nb, 1)
				switch op {
				case BinaryDiv:
					for i := range bv {
						bv[i] = 0.5 + bv[i]*bv[i] // away from 0
					}
				case BinaryPow:
					for i := range av {
						av[i] = 0.3 + av[i]*av[i] // positive bases, real powers and logs
					}
				}
				a := mustTensor(t, l, "a", av, na)
				b := mustTensor(t, l, "b", bv, nb)
				z := poisoned(t, l, "z", n)
				o, err := l.BinaryND(z, op, a, al, b, bl, shape)
				ewRun(t, l, o, err)
				what := fmt.Sprintf("%v %v %v", op, as, bs)
				assertClose(t, what, readT(t, z), RefBinaryND(op, to64(av), al, to64(bv), bl, shape), 1e-5)
				dzv := randn(rng, n, 1)
				dz := mustTensor(t, l, "dz", dzv, n)
				for wrt := 0; wrt < 2; wrt++ {
					g := poisoned(t, l, "g", n)
					o, err := l.BinaryNDGrad(g, op, wrt, dz, a, al, b, bl, shape)
					ewRun(t, l, o, err)
					want := RefBinaryNDGrad(op, wrt, to64(dzv), to64(av), al, to64(bv), bl, shape)
					assertClose(t, fmt.Sprintf("%s grad %d", what, wrt), readT(t, g), want, 1e-4)
				}
			}
		}
	})
}

// TestPowNegativeBase checks PyTorch's sign rule for integer exponents of negative bases.
func TestPowNegativeBase(t *testing.T) {
	l := testLib(t)
	av := []float32{-2, -1.5, -3, 0, 2}
	bv := []float32{3, 2, 4, 3, 0.5}
	a := mustTensor(t, l, "a", av, 5)
	b := mustTensor(t, l, "b", bv, 5)
	z := poisoned(t, l, "z", 5)
	c := Contiguous([]int{5})
	op, err := l.BinaryND(z, BinaryPow, a, c, b, c, []int{5})
	ewRun(t, l, op, err)
	assertClose(t, "pow", readT(t, z), []float64{-8, 2.25, 81, 0, 1.4142135623730951}, 1e-6)
}

func TestReduceND(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		// A 4×5×7×3 array reduced over axes {1, 3}, over {0}, over all axes, and over none.
		in := []int{4, 5, 7, 3}
		c := Contiguous(in).Strides
		cases := []struct {
			keep, red []int
		}{{[]int{0, 2}, []int{1, 3}}, {[]int{1, 2, 3}, []int{0}}, {nil, []int{0, 1, 2, 3}}, {[]int{0, 1, 2, 3}, nil}}
		xs := randn(rng, ewNumel(in), 1)
		x := mustTensor(t, l, "x", xs, ewNumel(in))
		for _, cs := range cases {
			shape, st := []int{1}, []int{0}
			if len(cs.keep) > 0 {
				shape, st = nil, nil
				for _, d := range cs.keep {
					shape, st = append(shape, in[d]), append(st, c[d])
				}
			}
			var rshape, rst []int
			for _, d := range cs.red {
				rshape, rst = append(rshape, in[d]), append(rst, c[d])
			}
			y := poisoned(t, l, "y", ewNumel(shape))
			op, err := l.ReduceND(y, x, Layout{Strides: st}, shape, rshape, rst, 0.5)
			ewRun(t, l, op, err)
			want := RefReduceND(to64(xs), Layout{Strides: st}, shape, rshape, rst, 0.5)
			assertClose(t, fmt.Sprintf("reduce over %v", cs.red), readT(t, y), want, 1e-5)
		}
	})
}

func TestNDErrors(t *testing.T) {
	l := testLib(t)
	x := mustTensor(t, l, "x", make([]float32, 6), 6)
	y := mustTensor(t, l, "y", make([]float32, 6), 6)
	if _, err := l.CopyND(y, Contiguous([]int{2, 4}), x, Contiguous([]int{2, 4}), []int{2, 4}, 1); err == nil {
		t.Fatal("a layout beyond the tensor was accepted")
	}
	if _, err := l.CopyND(x, Contiguous([]int{6}), x, Contiguous([]int{6}), []int{6}, 1); err == nil {
		t.Fatal("copying a tensor onto itself was accepted")
	}
	if _, err := BroadcastShapes([]int{3, 2}, []int{4}); err == nil {
		t.Fatal("3×2 and 4 broadcast")
	}
	if _, err := l.BinaryNDGrad(y, BinaryMul, 2, x, x, Contiguous([]int{6}), x, Contiguous([]int{6}), []int{6}); err == nil {
		t.Fatal("wrt 2 was accepted")
	}
}
