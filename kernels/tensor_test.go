package kernels

import (
	"strings"
	"testing"
)

// TestTensorSliceErrors checks that bad slices are refused with the reason, and that
// releasing a slice leaves its tensor readable.
func TestTensorSliceErrors(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	align := int(l.Device().Limits().MinStorageBufferOffsetAlignment) / 4
	xs := randn(rng, 4*align, 1)
	x := mustTensor(t, l, "x", xs, 4, align)
	if _, err := x.Slice("past", 3*align, 2, align); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("slice past the end: error %v, want one saying it lies outside", err)
	}
	if align > 1 {
		if _, err := x.Slice("odd", 1, 1, align); err == nil || !strings.Contains(err.Error(), "minStorageBufferOffsetAlignment") {
			t.Fatalf("misaligned slice: error %v, want one naming the alignment", err)
		}
	}
	v, err := x.Slice("row 2", 2*align, 1, align)
	if err != nil {
		t.Fatal(err)
	}
	got := readT(t, v)
	for i := range got {
		if got[i] != xs[2*align+i] {
			t.Fatalf("slice element %d = %v, want %v", i, got[i], xs[2*align+i])
		}
	}
	// Two slices of one tensor are one WebGPU buffer: a product writing one and reading
	// the other is refused like any aliasing.
	other, err := x.Slice("row 0", 0, 1, align)
	if err != nil {
		t.Fatal(err)
	}
	w := mustTensor(t, l, "W", randn(rng, align*align, 1), align, align)
	if _, err := l.Matmul(v, other, w, MatmulOptions{}); err == nil || !strings.Contains(err.Error(), "also an input") {
		t.Fatalf("matmul between two slices of one tensor: error %v, want one saying C is also an input", err)
	}
	v.Release()
	if all := readT(t, x); all[0] != xs[0] {
		t.Fatalf("after releasing a slice the tensor reads %v, want %v", all[0], xs[0])
	}
}
