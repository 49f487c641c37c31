package kernels

import (
	"fmt"
	"testing"
)

// Benchmarks of the RNG, SDE-step, Adam and gather kernels: each times b.N back-to-back
// dispatches recorded into one command buffer (TimeOps, through the Measure* functions)
// and reports throughput.

func rngReportRate(b *testing.B, sec, bytes float64, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(bytes/sec/1e9, "GB/s")
	b.ReportMetric(sec*1e6, "µs/op")
}

func BenchmarkRandUniform(b *testing.B) {
	l := testLib(b)
	for _, n := range []int{1 << 16, 1 << 20} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			sec, bytes, err := MeasureRand(l, false, n, b.N)
			rngReportRate(b, sec, bytes, err)
			b.ReportMetric(bytes/4/sec/1e9, "Gsamples/s")
		})
	}
}

func BenchmarkRandNormal(b *testing.B) {
	l := testLib(b)
	for _, n := range []int{1 << 16, 1 << 20} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			sec, bytes, err := MeasureRand(l, true, n, b.N)
			rngReportRate(b, sec, bytes, err)
			b.ReportMetric(bytes/4/sec/1e9, "Gsamples/s")
		})
	}
}

func BenchmarkSDEStep(b *testing.B) {
	l := testLib(b)
	for _, s := range []struct{ b, d int }{{256, 2}, {256, 64}, {64, 1024}, {1024, 512}} {
		b.Run(fmt.Sprintf("B=%d,d=%d", s.b, s.d), func(b *testing.B) {
			// b.N trajectories of 10 steps; the rate is per step.
			sec, bytes, err := MeasureSDEStep(l, s.b, s.d, 10, b.N)
			rngReportRate(b, sec, bytes, err)
		})
	}
}

func BenchmarkAdam(b *testing.B) {
	l := testLib(b)
	for _, p := range []int{1 << 16, 1 << 20} {
		for _, clip := range []bool{false, true} {
			b.Run(fmt.Sprintf("P=%d,clip=%v", p, clip), func(b *testing.B) {
				sec, bytes, err := MeasureAdam(l, p, clip, b.N)
				rngReportRate(b, sec, bytes, err)
			})
		}
	}
}

func BenchmarkGather(b *testing.B) {
	l := testLib(b)
	for _, s := range []struct{ rows, n, d int }{{100000, 256, 2}, {100000, 4096, 64}} {
		b.Run(fmt.Sprintf("N=%d,n=%d,d=%d", s.rows, s.n, s.d), func(b *testing.B) {
			sec, bytes, err := MeasureGather(l, false, s.rows, s.n, s.d, b.N)
			rngReportRate(b, sec, bytes, err)
		})
	}
}

func BenchmarkScatter(b *testing.B) {
	l := testLib(b)
	for _, s := range []struct{ rows, n, d int }{{100000, 4096, 64}} {
		b.Run(fmt.Sprintf("N=%d,n=%d,d=%d", s.rows, s.n, s.d), func(b *testing.B) {
			sec, bytes, err := MeasureGather(l, true, s.rows, s.n, s.d, b.N)
			rngReportRate(b, sec, bytes, err)
		})
	}
}
