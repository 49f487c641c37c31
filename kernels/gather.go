package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// IndexTensor is a 1-D array of u32 row indices on one device, for Gather, Scatter and
// RandIndex. It is its own type, not a Tensor, so an index array can never be passed
// where float32 data is expected (and vice versa).
//
// Limit is the exclusive upper bound of the values the tensor may hold: Write rejects
// any index ≥ Limit on the host, RandIndex draws below it, and Gather/Scatter require
// Limit ≤ the number of rows they index, so indices written from Go are valid by
// construction. Indices produced by other GPU kernels cannot be checked on the host; the
// kernels still never read or write out of bounds (see Gather, Scatter).
type IndexTensor struct {
	Buf   *gpu.Buffer
	Limit int
	// Unique makes Write also reject repeated indices (wanted for Scatter, whose result
	// is undefined on duplicates).
	Unique bool
	n      int
	dev    *gpu.Device
}

// NewIndexTensor allocates n indices (uninitialised) whose values must stay below limit.
func NewIndexTensor(d *gpu.Device, label string, n, limit int) (*IndexTensor, error) {
	if n < 1 || n > math.MaxUint32 {
		return nil, fmt.Errorf("kernels: index tensor %q: length %d (want 1..2^32-1)", label, n)
	}
	if limit < 1 || limit > math.MaxUint32 {
		return nil, fmt.Errorf("kernels: index tensor %q: limit %d (want 1..2^32-1)", label, limit)
	}
	b, err := d.CreateBuffer(label, uint64(4*n), gpu.StorageUsage)
	if err != nil {
		return nil, err
	}
	return &IndexTensor{Buf: b, Limit: limit, n: n, dev: d}, nil
}

// IndexFromSlice allocates an index tensor holding idx (every value < limit).
func IndexFromSlice(d *gpu.Device, label string, idx []uint32, limit int) (*IndexTensor, error) {
	x, err := NewIndexTensor(d, label, len(idx), limit)
	if err != nil {
		return nil, err
	}
	if err := x.Write(idx); err != nil {
		x.Release()
		return nil, err
	}
	return x, nil
}

// Len is the number of indices.
func (x *IndexTensor) Len() int { return x.n }

// Label is the tensor's name.
func (x *IndexTensor) Label() string { return x.Buf.Label() }

// Write copies idx (exactly Len values, each < Limit, distinct when Unique) to the device.
func (x *IndexTensor) Write(idx []uint32) error {
	if len(idx) != x.n {
		return fmt.Errorf("kernels: writing %d indices into index tensor %q of length %d", len(idx), x.Label(), x.n)
	}
	if err := CheckIndices(idx, x.Limit, x.Unique); err != nil {
		return fmt.Errorf("kernels: index tensor %q: %w", x.Label(), err)
	}
	return x.dev.Queue().WriteUint32(x.Buf, 0, idx)
}

// Read copies the indices back to the host (waiting for submitted work).
func (x *IndexTensor) Read() ([]uint32, error) { return x.Buf.ReadUint32(0, x.n) }

// Release frees the buffer.
func (x *IndexTensor) Release() {
	if x != nil {
		x.Buf.Release()
	}
}

// CheckIndices returns an error naming the first index ≥ limit, or with unique the first
// repeated index.
func CheckIndices(idx []uint32, limit int, unique bool) error {
	var seen map[uint32]int
	if unique {
		seen = make(map[uint32]int, len(idx))
	}
	for i, v := range idx {
		if int(v) >= limit {
			return fmt.Errorf("index %d is %d, out of range [0, %d)", i, v, limit)
		}
		if unique {
			if j, ok := seen[v]; ok {
				return fmt.Errorf("indices %d and %d are both %d (must be distinct)", j, i, v)
			}
			seen[v] = i
		}
	}
	return nil
}

// Gather copies rows of src into dst: dst[i, :] = src[idx[i], :] for i < n, with src
// [N, d], idx [n], dst [n, d] (tensors of any rank are viewed as Rows × Cols). idx.Limit
// must be ≤ N. An index ≥ N that reached the device some other way (a GPU kernel) fills
// its row of dst with NaN instead of reading out of bounds, so it cannot pass unnoticed.
func (l *Library) Gather(dst, src *Tensor, idx *IndexTensor) (*Op, error) {
	return l.gatherScatter("gather", dst, src, idx)
}

// Scatter writes rows of src into dst: dst[idx[i], :] = src[i, :] for i < n, with src
// [n, d], idx [n], dst [N, d]; other rows of dst keep their values. idx.Limit must be ≤ N.
// Indices must be distinct (set idx.Unique so Write checks it): with a repeated index
// each element of that row comes from one of the writers, which one is undefined (not
// even the same one for every column). An index ≥ N that reached the device some other
// way is skipped.
func (l *Library) Scatter(dst, src *Tensor, idx *IndexTensor) (*Op, error) {
	return l.gatherScatter("scatter", dst, src, idx)
}

func (l *Library) gatherScatter(entry string, dst, src *Tensor, idx *IndexTensor) (*Op, error) {
	name := "kernels: " + entry
	if dst == nil || src == nil || idx == nil {
		return nil, fmt.Errorf("%s: nil argument", name)
	}
	// big is the indexed table [N, d], small the [n, d] side.
	big, small, bigName, smallName := src, dst, "src", "dst"
	if entry == "scatter" {
		big, small, bigName, smallName = dst, src, "dst", "src"
	}
	d := big.Cols()
	if small.Cols() != d {
		return nil, fmt.Errorf("%s: %s is %s but %s is %s (row lengths differ)", name, smallName, sdeShape(small), bigName, sdeShape(big))
	}
	if small.Rows() != idx.Len() {
		return nil, fmt.Errorf("%s: %s has %d rows (shape %s) but idx has %d indices", name, smallName, small.Rows(), sdeShape(small), idx.Len())
	}
	if idx.Limit > big.Rows() {
		return nil, fmt.Errorf("%s: idx %q allows indices up to %d but %s has %d rows (shape %s)", name, idx.Label(), idx.Limit-1, bigName, big.Rows(), sdeShape(big))
	}
	if dst.Buf.Shares(src.Buf) {
		return nil, fmt.Errorf("%s: dst and src are the same buffer %q", name, dst.Label())
	}
	if big.Len() > math.MaxUint32 {
		return nil, fmt.Errorf("%s: %s is %s, over 2^32-1 elements", name, bigName, sdeShape(big))
	}
	for _, t := range []*Tensor{src, dst} {
		if err := philoxCheckBinding(l, name, "tensor "+t.Label(), t); err != nil {
			return nil, err
		}
	}
	return l.build(opSpec{
		name:    entry,
		file:    "gather.wgsl",
		entry:   entry,
		buffers: []*gpu.Buffer{src.Buf, idx.Buf, dst.Buf},
		params:  Params{small.Rows(), d, big.Rows(), uint32(0x7FC00000)},
		grid:    Grid1D(small.Len(), 256),
	})
}

// RefGather is the reference of Gather: dst[i, :] = src[idx[i], :], a row of NaN where
// idx[i] ≥ N, for src [N, d] row-major.
func RefGather(src []float64, d int, idx []uint32) []float64 {
	n, rows := len(idx), len(src)/d
	dst := make([]float64, n*d)
	for i, r := range idx {
		for j := 0; j < d; j++ {
			if int(r) < rows {
				dst[i*d+j] = src[int(r)*d+j]
			} else {
				dst[i*d+j] = math.NaN()
			}
		}
	}
	return dst
}

// RefScatter is the reference of Scatter on distinct indices: dst[idx[i], :] = src[i, :]
// in place, for dst [N, d] row-major; indices ≥ N are skipped.
func RefScatter(dst []float64, d int, src []float64, idx []uint32) {
	rows := len(dst) / d
	for i, r := range idx {
		if int(r) >= rows {
			continue
		}
		copy(dst[int(r)*d:int(r)*d+d], src[i*d:i*d+d])
	}
}
