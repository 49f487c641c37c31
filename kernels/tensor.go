package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Tensor is a float32 row-major array on one device.
type Tensor struct {
	Buf   *gpu.Buffer
	Shape []int
	dev   *gpu.Device
}

// NewTensor allocates an uninitialised tensor of the given shape (every dimension ≥ 1).
func NewTensor(d *gpu.Device, label string, shape ...int) (*Tensor, error) {
	n, err := numel(label, shape)
	if err != nil {
		return nil, err
	}
	b, err := d.CreateBuffer(label, uint64(4*n), gpu.StorageUsage)
	if err != nil {
		return nil, err
	}
	return &Tensor{Buf: b, Shape: append([]int(nil), shape...), dev: d}, nil
}

// FromSlice allocates a tensor of the given shape holding xs.
func FromSlice(d *gpu.Device, label string, xs []float32, shape ...int) (*Tensor, error) {
	t, err := NewTensor(d, label, shape...)
	if err != nil {
		return nil, err
	}
	if err := t.Write(xs); err != nil {
		t.Release()
		return nil, err
	}
	return t, nil
}

func numel(label string, shape []int) (int, error) {
	if len(shape) == 0 {
		return 0, fmt.Errorf("kernels: tensor %q: empty shape", label)
	}
	n := 1
	for _, s := range shape {
		if s < 1 {
			return 0, fmt.Errorf("kernels: tensor %q: shape %v has a dimension < 1", label, shape)
		}
		n *= s
	}
	return n, nil
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, s := range t.Shape {
		n *= s
	}
	return n
}

// Rows and Cols view the tensor as a matrix: the last dimension is Cols, the product of
// the others is Rows.
func (t *Tensor) Rows() int { return t.Len() / t.Cols() }

// Cols is the size of the last dimension.
func (t *Tensor) Cols() int { return t.Shape[len(t.Shape)-1] }

// Label is the tensor's name.
func (t *Tensor) Label() string { return t.Buf.Label() }

// Write copies xs (exactly Len values) into the tensor.
func (t *Tensor) Write(xs []float32) error {
	if len(xs) != t.Len() {
		return fmt.Errorf("kernels: writing %d values into tensor %q of shape %v (%d elements)", len(xs), t.Label(), t.Shape, t.Len())
	}
	return t.dev.Queue().WriteFloat32(t.Buf, 0, xs)
}

// Fill sets every element to v.
func (t *Tensor) Fill(v float32) error {
	xs := make([]float32, t.Len())
	for i := range xs {
		xs[i] = v
	}
	return t.Write(xs)
}

// Poison fills the tensor with NaN, so a kernel that skips an element cannot pass a test.
func (t *Tensor) Poison() error { return t.Fill(float32(math.NaN())) }

// Read copies the tensor back to the host (waiting for submitted work).
func (t *Tensor) Read() ([]float32, error) { return t.Buf.ReadFloat32(0, t.Len()) }

// Release frees the buffer.
func (t *Tensor) Release() {
	if t != nil {
		t.Buf.Release()
	}
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Reshaped returns a view of t with another shape of the same number of elements: a
// second Tensor sharing t's buffer, so writes through either show in both. The view owns
// nothing: release t, never the view. The convolutions use it to see NHWC
// activations [B, H·W·C] as the matrix [B·H·W, C] of their matmuls.
func (t *Tensor) Reshaped(shape ...int) (*Tensor, error) {
	n, err := numel(t.Label(), shape)
	if err != nil {
		return nil, err
	}
	if n != t.Len() {
		return nil, fmt.Errorf("kernels: reshaping tensor %q of shape %s (%d elements) to %s (%d elements)", t.Label(), ewShape(t.Shape), t.Len(), ewShape(shape), n)
	}
	return &Tensor{Buf: t.Buf, Shape: append([]int(nil), shape...), dev: t.dev}, nil
}

// Slice returns the view of t's elements offset..offset+n−1 (n the product of shape) as a
// tensor of that shape: every kernel bound to it reads and writes that range of t's buffer.
// offset·4 bytes must be a multiple of the adapter's minStorageBufferOffsetAlignment (256
// on most). The view owns nothing: release t, never the view. WebGPU tracks usage per
// buffer, so one dispatch must not bind two slices of a tensor when either is written.
// The trainer keeps each step's activations as slices of one tensor, so that a single
// product over all steps can form the weight gradients.
func (t *Tensor) Slice(label string, offset int, shape ...int) (*Tensor, error) {
	n, err := numel(label, shape)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset+n > t.Len() {
		return nil, fmt.Errorf("kernels: slice %q of tensor %q: elements %d..%d outside its %d", label, t.Label(), offset, offset+n, t.Len())
	}
	b, err := t.Buf.Slice(label, uint64(4*offset), uint64(4*n))
	if err != nil {
		return nil, err
	}
	return &Tensor{Buf: b, Shape: append([]int(nil), shape...), dev: t.dev}, nil
}
