package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Reduction selects what RowReduce computes over each row; the values match the `op`
// override of shaders/reduce.wgsl.
type Reduction uint32

// The row reductions.
const (
	ReduceSum        Reduction = iota // Σ_j x_j
	ReduceMean                        // Σ_j x_j / cols
	ReduceMax                         // max_j x_j
	ReduceLogSumExp                   // log Σ_j exp(x_j), computed as m + log Σ_j exp(x_j − m), m = max_j x_j
	ReduceSumSquares                  // Σ_j x_j²
)

var reductionNames = []string{"sum", "mean", "max", "logsumexp", "sumsq"}

// String returns the reduction's name, e.g. "logsumexp".
func (r Reduction) String() string {
	if int(r) < len(reductionNames) {
		return reductionNames[r]
	}
	return fmt.Sprintf("reduction(%d)", uint32(r))
}

// Plans. reduce_thread (one invocation per row, no barriers) and reduce_wg (one
// workgroup per row, two barriers) are chosen by adapter kind and shape:
//
//   - GPUs: reduce_thread for rows of up to 16 elements, where a workgroup per row would
//     idle most of its invocations; above, reduce_wg with 256 invocations, whose
//     neighbouring invocations read neighbouring elements (coalesced), which
//     reduce_thread's row-strided reads are not.
//   - CPU adapters (lavapipe): a workgroup is a task, and a barrier switches every SIMD
//     chunk of it, so reduce_wg cost 3.5 µs per row at 256 invocations (16384×65: 54 ms
//     vs 0.6 ms for reduce_thread). reduce_thread wins whenever there are enough rows to
//     give every worker thread a 64-row workgroup, or the rows are short; only a few long
//     rows go to reduce_wg, with 16 invocations (two SIMD chunks), which spreads each row
//     over the SIMD lanes and the threads (3×100003: 0.25 vs 0.31 ms; the machine was
//     shared and timings varied up to 2× between identical runs).
const (
	reduceGPUThreadMaxCols = 16
	reduceCPUThreadMaxCols = 1024
	reduceThreadWorkgroup  = 64 // WG_THREAD of shaders/reduce.wgsl
)

// reducePlan returns the entry point, overrides and grid that reduce rows rows of cols.
func (l *Library) reducePlan(r Reduction, rows, cols int) (entry string, consts map[string]float64, grid [3]uint32) {
	consts = map[string]float64{"op": float64(r)}
	thread, wg, fan := cols <= reduceGPUThreadMaxCols, 256, 16
	if l.ewTarget() == ewCPU {
		thread = cols <= reduceCPUThreadMaxCols || rows >= reduceThreadWorkgroup*ewCPUThreads()
		wg, fan = 16, 16
	}
	if thread {
		return "reduce_thread", consts, l.ewGrid(rows, cols, reduceThreadWorkgroup)
	}
	consts["wg"], consts["fan"] = float64(wg), float64(fan)
	return "reduce_wg", consts, Grid1D(rows, 1)
}

// RowReduce returns the op out[r] = reduce_j x[r, j] over the last dimension of x, viewed
// as a rows×cols matrix (Tensor.Rows, Tensor.Cols); out holds rows values in any shape.
//
// Results are bit-reproducible from run to run: each row is reduced in a fixed order and
// fixed merge tree, without atomics. Short rows get one invocation each, long rows one
// workgroup each; where "long" starts depends on the adapter (see reducePlan).
func (l *Library) RowReduce(out, x *Tensor, r Reduction) (*Op, error) {
	if int(r) >= len(reductionNames) {
		return nil, fmt.Errorf("kernels: row reduce: unknown reduction %d (want one of sum, mean, max, logsumexp, sumsq)", uint32(r))
	}
	name := "row reduce " + r.String()
	if x == nil || out == nil {
		return nil, fmt.Errorf("kernels: %s: nil tensor (x %v, out %v)", name, x != nil, out != nil)
	}
	rows, cols := x.Rows(), x.Cols()
	if out.Len() != rows {
		return nil, fmt.Errorf("kernels: %s: x is %s (%d rows of %d) but out is %s (%d elements; want %d)", name, ewShape(x.Shape), rows, cols, ewShape(out.Shape), out.Len(), rows)
	}
	if out.Buf.Shares(x.Buf) {
		return nil, fmt.Errorf("kernels: %s: out is the same tensor as x (%q)", name, x.Label())
	}
	if err := l.ewCheckBindable(name, "x", x); err != nil {
		return nil, err
	}
	return l.reduceOp(name, out.Buf, x.Buf, r, rows, cols, x.Len())
}

// reduceOp builds one dispatch of reduce.wgsl: row i of rows reduces the elements
// [i*cols, min(i*cols + cols, n)) of x into out[i].
func (l *Library) reduceOp(name string, out, x *gpu.Buffer, r Reduction, rows, cols, n int) (*Op, error) {
	entry, consts, grid := l.reducePlan(r, rows, cols)
	return l.build(opSpec{
		name:    name,
		file:    "reduce.wgsl",
		entry:   entry,
		consts:  consts,
		buffers: []*gpu.Buffer{x, out},
		params:  Params{rows, cols, n},
		grid:    grid,
	})
}

// ReduceOps is a fixed sequence of dispatches that together compute one result, with the
// scratch buffer that carries values from one to the next. Record all of Ops in order
// (rec.Record(s.Ops...)); Release frees the ops and the scratch.
type ReduceOps struct {
	Ops     []*Op
	scratch *Tensor
}

// Release frees the ops and their scratch buffer.
func (s *ReduceOps) Release() {
	if s == nil {
		return
	}
	for _, op := range s.Ops {
		op.Release()
	}
	s.Ops = nil
	s.scratch.Release()
	s.scratch = nil
}

// sumSquaresChunk is the number of elements of each partial sum of SumSquares, until
// there would be more than sumSquaresMaxChunks of them.
const (
	sumSquaresChunk     = 4096
	sumSquaresMaxChunks = 1024
)

// SumSquares returns the ops out[0] = Σ_i x_i² over every element of x, e.g. the squared
// global gradient norm. Up to 4096 elements it is one dispatch; beyond, a first dispatch
// reduces fixed chunks of x into partial sums (a RowReduce of x as chunks×chunk, the last
// chunk short), whose count and boundaries depend only on x.Len(), and a second sums the
// partials — so the result is bit-reproducible from run to run, with no atomics.
func (l *Library) SumSquares(out, x *Tensor) (*ReduceOps, error) {
	if x == nil || out == nil {
		return nil, fmt.Errorf("kernels: sum of squares: nil tensor (x %v, out %v)", x != nil, out != nil)
	}
	if out.Len() != 1 {
		return nil, fmt.Errorf("kernels: sum of squares: out is %s (%d elements; want 1)", ewShape(out.Shape), out.Len())
	}
	if out.Buf.Shares(x.Buf) {
		return nil, fmt.Errorf("kernels: sum of squares: out is the same tensor as x (%q)", x.Label())
	}
	if err := l.ewCheckBindable("sum of squares", "x", x); err != nil {
		return nil, err
	}
	n := x.Len()
	chunks, chunk := sumSquaresPlan(n)
	if chunks == 1 {
		op, err := l.reduceOp("sum of squares", out.Buf, x.Buf, ReduceSumSquares, 1, n, n)
		if err != nil {
			return nil, err
		}
		return &ReduceOps{Ops: []*Op{op}}, nil
	}
	partial, err := NewTensor(l.dev, "sum of squares partials", chunks)
	if err != nil {
		return nil, err
	}
	s := &ReduceOps{scratch: partial}
	first, err := l.reduceOp("sum of squares (chunks)", partial.Buf, x.Buf, ReduceSumSquares, chunks, chunk, n)
	if err != nil {
		s.Release()
		return nil, err
	}
	s.Ops = append(s.Ops, first)
	second, err := l.reduceOp("sum of squares (total)", out.Buf, partial.Buf, ReduceSum, 1, chunks, chunks)
	if err != nil {
		s.Release()
		return nil, err
	}
	s.Ops = append(s.Ops, second)
	return s, nil
}

// sumSquaresPlan splits n elements into chunks of chunk elements (the last one shorter).
func sumSquaresPlan(n int) (chunks, chunk int) {
	chunks = (n + sumSquaresChunk - 1) / sumSquaresChunk
	if chunks > sumSquaresMaxChunks {
		chunks = sumSquaresMaxChunks
	}
	chunk = (n + chunks - 1) / chunks
	// Rounding chunk up can leave the last chunks empty; drop them.
	chunks = (n + chunk - 1) / chunk
	return chunks, chunk
}

// ---------------------------------------------------------------------------------------
// float64 references

// RefRowReduce is the reference of RowReduce for x holding rows×cols values row-major:
//
//	sum:       out_r = Σ_j x_rj
//	mean:      out_r = Σ_j x_rj / cols
//	max:       out_r = max_j x_rj
//	logsumexp: out_r = m_r + log Σ_j exp(x_rj − m_r),  m_r = max_j x_rj
//	sumsq:     out_r = Σ_j x_rj²
func RefRowReduce(r Reduction, x []float64, rows, cols int) []float64 {
	out := make([]float64, rows)
	for i := range out {
		row := x[i*cols : (i+1)*cols]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range row {
			switch r {
			case ReduceLogSumExp:
				s += math.Exp(v - m)
			case ReduceSumSquares:
				s += v * v
			default:
				s += v
			}
		}
		switch r {
		case ReduceMean:
			out[i] = s / float64(cols)
		case ReduceMax:
			out[i] = m
		case ReduceLogSumExp:
			out[i] = m + math.Log(s)
		default:
			out[i] = s
		}
	}
	return out
}

// RefSumSquares is the reference of SumSquares: Σ_i x_i².
func RefSumSquares(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return s
}
