package kernels

import (
	"fmt"
	"testing"
	"time"
)

// matmulBenchShapes: two square sizes, and the trainer's drift MLP layer (batch 300,
// width 64) in its three forms — forward Y = X·W, weight gradient Xᵀ·dY, input gradient
// dY·Wᵀ.
var matmulBenchShapes = []struct {
	m, n, k int
	opts    MatmulOptions
}{
	{256, 256, 256, MatmulOptions{}},
	{1024, 1024, 1024, MatmulOptions{}},
	{300, 64, 64, MatmulOptions{}},
	{64, 64, 300, MatmulOptions{TransA: true}},
	{300, 64, 64, MatmulOptions{TransB: true}},
}

func matmulBenchName(m, n, k int, opts MatmulOptions) string {
	return fmt.Sprintf("%s/%dx%dx%d", matmulTag(opts), m, n, k)
}

// BenchmarkMatmul reports GFLOP/s of back-to-back dispatches (at most 64 per submission),
// timed by TimeOps.
func BenchmarkMatmul(b *testing.B) {
	l := testLib(b)
	for _, s := range matmulBenchShapes {
		b.Run(matmulBenchName(s.m, s.n, s.k, s.opts), func(b *testing.B) {
			mt, err := newMatmulTimer(l, s.m, s.n, s.k, s.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer mt.release()
			b.ResetTimer()
			total := 0.0
			for done := 0; done < b.N; {
				reps := min(b.N-done, 64)
				sec, err := TimeOps(l, reps, mt.op)
				if err != nil {
					b.Fatal(err)
				}
				total += sec * float64(reps)
				done += reps
			}
			b.ReportMetric(MatmulFLOPs(s.m, s.n, s.k)*float64(b.N)/total/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGonumSgemm is the CPU yardstick: gonum blas32.Gemm on the same shapes and forms.
func BenchmarkGonumSgemm(b *testing.B) {
	for _, s := range matmulBenchShapes {
		b.Run(matmulBenchName(s.m, s.n, s.k, s.opts), func(b *testing.B) {
			gemm := newGonumSgemm(s.m, s.n, s.k, s.opts.TransA, s.opts.TransB)
			gemm()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				gemm()
			}
			b.ReportMetric(MatmulFLOPs(s.m, s.n, s.k)*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
		})
	}
}
