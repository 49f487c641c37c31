package kernels

import (
	"fmt"

	"osds/gpu"
)

// AddRow records out[b, :] = x[b, :] + table[row, :] for x, out [B, C] and table [T, C].
func (l *Library) AddRow(out, x, table *Tensor, row int) (*Op, error) {
	if x.Cols() != table.Cols() || !sameShape(out.Shape, x.Shape) {
		return nil, fmt.Errorf("kernels: add row: x %v, table %v and out %v must share the column count (and x, out their shape)", x.Shape, table.Shape, out.Shape)
	}
	if row < 0 || row >= table.Rows() {
		return nil, fmt.Errorf("kernels: add row: row %d outside a table of %d rows", row, table.Rows())
	}
	return l.build(opSpec{
		name: "add row", file: "rows.wgsl", entry: "add_row",
		buffers: []*gpu.Buffer{x.Buf, table.Buf, out.Buf},
		params:  Params{x.Rows(), x.Cols(), row},
		grid:    Grid1D(x.Len(), 256),
	})
}

// Segments lays out a stack of per-step rows for the column sums: the stack is cut into
// segments of Stride rows; segment s's first Rows rows are summed (the rest is padding)
// into table row First + s·Step.
type Segments struct{ Stride, Rows, First, Step int }

// count checks the layout against a stack dy [S·Stride, C] and a table [T, C] and
// returns the number of segments S.
func (g Segments) count(name string, dy, table *Tensor) (int, error) {
	if g.Rows < 1 || g.Stride < g.Rows || g.Step < 1 || g.First < 0 {
		return 0, fmt.Errorf("kernels: %s: segments %+v (want 1 ≤ Rows ≤ Stride, Step ≥ 1, First ≥ 0)", name, g)
	}
	if dy.Rows()%g.Stride != 0 {
		return 0, fmt.Errorf("kernels: %s: dy %v is not a stack of segments of %d rows", name, dy.Shape, g.Stride)
	}
	n := dy.Rows() / g.Stride
	if last := g.First + (n-1)*g.Step; last >= table.Rows() {
		return 0, fmt.Errorf("kernels: %s: %d segments reach row %d of a table of %d rows", name, n, last, table.Rows())
	}
	return n, nil
}

// SumRowsInto records table[row, :] += Σ_b dy[b, :] for dy [B, C] and table [T, C]:
// the gradient of AddRow with respect to the table.
func (l *Library) SumRowsInto(table *Tensor, row int, dy *Tensor) (*Op, error) {
	return l.SumSegmentsInto(table, Segments{Stride: dy.Rows(), Rows: dy.Rows(), First: row, Step: 1}, dy)
}

// SumSegmentsInto records table[First + s·Step, :] += Σ_{b < Rows} dy[s·Stride + b, :]
// for every segment s of the stack dy [S·Stride, C]: the table gradient of S AddRows
// whose output gradients are the segments, in one dispatch.
func (l *Library) SumSegmentsInto(table *Tensor, seg Segments, dy *Tensor) (*Op, error) {
	const name = "sum rows into"
	if dy.Cols() != table.Cols() {
		return nil, fmt.Errorf("kernels: %s: dy %v and table %v differ in columns", name, dy.Shape, table.Shape)
	}
	n, err := seg.count(name, dy, table)
	if err != nil {
		return nil, err
	}
	if dy.Buf.Shares(table.Buf) {
		return nil, fmt.Errorf("kernels: %s: dy and table must be distinct buffers", name)
	}
	return l.build(opSpec{
		name: name, file: "rows_grad.wgsl", entry: "main",
		buffers: []*gpu.Buffer{dy.Buf, table.Buf},
		params:  Params{seg.Rows, dy.Cols(), seg.First, n, seg.Stride, seg.Step},
		grid:    [3]uint32{uint32((dy.Cols() + 63) / 64), uint32(n), 1},
	})
}

// RefAddRow is the float64 reference of AddRow: out[b][c] = x[b][c] + table[row][c]
// (row-major slices, C columns).
func RefAddRow(x, table []float64, cols, row int) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] + table[row*cols+i%cols]
	}
	return out
}

// RefSumSegmentsInto is the float64 reference of SumSegmentsInto:
// table[First + s·Step][c] += Σ_{b < Rows} dy[s·Stride + b][c].
func RefSumSegmentsInto(table, dy []float64, cols int, seg Segments) []float64 {
	out := append([]float64(nil), table...)
	for s := 0; s < len(dy)/cols/seg.Stride; s++ {
		for b := 0; b < seg.Rows; b++ {
			for c := 0; c < cols; c++ {
				out[(seg.First+s*seg.Step)*cols+c] += dy[(s*seg.Stride+b)*cols+c]
			}
		}
	}
	return out
}
