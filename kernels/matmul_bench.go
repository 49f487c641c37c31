package kernels

import (
	"fmt"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Timing of Matmul for `osds bench` and the Go benchmarks, next to the CPU yardstick the
// project measures it against: gonum's blas32.Gemm in the same process.

// MatmulFLOPs is the arithmetic of one m×n×k product: a multiply and an add per term.
// Divide by MeasureMatmul's seconds for FLOP/s.
func MatmulFLOPs(m, n, k int) float64 { return 2 * float64(m) * float64(n) * float64(k) }

// MeasureMatmul returns the mean seconds per product of reps back-to-back m×n×k Matmul
// dispatches (op(A) m×k, op(B) k×n) recorded into one compute pass and submitted once,
// timed with GPU timestamps where the adapter has them (see TimeOps). opts selects the form,
// activation and accumulation; opts.Bias must be nil, since MeasureMatmul allocates its own
// random operands (a bias is one add per element of C, nothing to measure).
func MeasureMatmul(l *Library, m, n, k, reps int, opts MatmulOptions) (seconds float64, err error) {
	if opts.Bias != nil {
		return 0, fmt.Errorf("kernels: MeasureMatmul: opts.Bias must be nil (the operands are allocated here)")
	}
	mt, err := newMatmulTimer(l, m, n, k, opts)
	if err != nil {
		return 0, err
	}
	defer mt.release()
	return TimeOps(l, reps, mt.op)
}

// MeasureGonumSgemm returns the mean seconds per product of reps m×n×k gonum blas32.Gemm
// calls C = A·B on random float32 operands, after one untimed call. gonum parallelises
// over GOMAXPROCS.
func MeasureGonumSgemm(m, n, k, reps int) float64 {
	gemm := newGonumSgemm(m, n, k, false, false)
	gemm()
	start := time.Now()
	for i := 0; i < reps; i++ {
		gemm()
	}
	return time.Since(start).Seconds() / float64(reps)
}

// matmulTimer holds random operands and a built Matmul op of one shape.
type matmulTimer struct {
	a, b, c *Tensor
	op      *Op
}

func newMatmulTimer(l *Library, m, n, k int, opts MatmulOptions) (*matmulTimer, error) {
	if m < 1 || n < 1 || k < 1 {
		return nil, fmt.Errorf("kernels: timing matmul %d×%d×%d: sizes must be ≥ 1", m, n, k)
	}
	rng := rand.New(rand.NewPCG(uint64(m), uint64(n*k)))
	aShape, bShape := []int{m, k}, []int{k, n}
	if opts.TransA {
		aShape = []int{k, m}
	}
	if opts.TransB {
		bShape = []int{n, k}
	}
	mt := &matmulTimer{}
	var err error
	if mt.a, err = FromSlice(l.dev, "bench A", matmulRandom(rng, m*k), aShape...); err != nil {
		return nil, err
	}
	if mt.b, err = FromSlice(l.dev, "bench B", matmulRandom(rng, k*n), bShape...); err != nil {
		mt.release()
		return nil, err
	}
	// Accumulating runs add reps products of unit-variance terms: far from overflow.
	if mt.c, err = FromSlice(l.dev, "bench C", make([]float32, m*n), m, n); err != nil {
		mt.release()
		return nil, err
	}
	if mt.op, err = l.Matmul(mt.c, mt.a, mt.b, opts); err != nil {
		mt.release()
		return nil, err
	}
	return mt, nil
}

func (mt *matmulTimer) release() {
	mt.op.Release()
	mt.a.Release()
	mt.b.Release()
	mt.c.Release()
}

// newGonumSgemm returns a closure computing C = op(A)·op(B) with gonum on random operands.
// The data must not be zero: gonum skips zero terms.
func newGonumSgemm(m, n, k int, transA, transB bool) func() {
	rng := rand.New(rand.NewPCG(uint64(m), uint64(n*k)))
	a := blas32.General{Rows: m, Cols: k, Stride: k, Data: matmulRandom(rng, m*k)}
	ta := blas.NoTrans
	if transA {
		a = blas32.General{Rows: k, Cols: m, Stride: m, Data: a.Data}
		ta = blas.Trans
	}
	b := blas32.General{Rows: k, Cols: n, Stride: n, Data: matmulRandom(rng, k*n)}
	tb := blas.NoTrans
	if transB {
		b = blas32.General{Rows: n, Cols: k, Stride: k, Data: b.Data}
		tb = blas.Trans
	}
	c := blas32.General{Rows: m, Cols: n, Stride: n, Data: make([]float32, m*n)}
	return func() { blas32.Gemm(ta, tb, 1, a, b, 0, c) }
}

// matmulRandom returns n standard normal values.
func matmulRandom(rng *rand.Rand, n int) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	return xs
}
