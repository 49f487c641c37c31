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

// SumRowsInto records table[row, :] += Σ_b dy[b, :] for dy [B, C] and table [T, C]:
// the gradient of AddRow with respect to the table.
func (l *Library) SumRowsInto(table *Tensor, row int, dy *Tensor) (*Op, error) {
	if dy.Cols() != table.Cols() {
		return nil, fmt.Errorf("kernels: sum rows into: dy %v and table %v differ in columns", dy.Shape, table.Shape)
	}
	if row < 0 || row >= table.Rows() {
		return nil, fmt.Errorf("kernels: sum rows into: row %d outside a table of %d rows", row, table.Rows())
	}
	return l.build(opSpec{
		name: "sum rows into", file: "rows_grad.wgsl", entry: "main",
		buffers: []*gpu.Buffer{dy.Buf, table.Buf},
		params:  Params{dy.Rows(), dy.Cols(), row},
		grid:    [3]uint32{uint32((dy.Cols() + 63) / 64), 1, 1},
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

// RefSumRowsInto is the float64 reference of SumRowsInto: table[row][c] += Σ_b dy[b][c].
func RefSumRowsInto(table, dy []float64, cols, row int) []float64 {
	out := append([]float64(nil), table...)
	for i, v := range dy {
		out[row*cols+i%cols] += v
	}
	return out
}
