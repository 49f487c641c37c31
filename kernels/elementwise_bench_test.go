package kernels

import (
	"fmt"
	"testing"
)

// The benchmarks record b.N dispatches of one op into one command buffer, submit once
// and wait (ewTimeOps), and report memory throughput in GB/s.

func ewBench(b *testing.B, l *Library, bytes float64, op *Op, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	defer op.Release()
	// ewTimeOps does its own untimed warm-up run.
	b.ResetTimer()
	sec, err := ewTimeOps(l, b.N, op)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(bytes/sec/1e9, "GB/s")
	b.ReportMetric(sec*1e6, "µs/dispatch")
}

func BenchmarkAdd(b *testing.B) {
	l := testLib(b)
	for _, n := range []int{1 << 12, 1 << 16, 1 << 20, 1 << 24} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			ts, err := ewBenchTensors(l, "add", 3, n)
			if err != nil {
				b.Fatal(err)
			}
			defer ewRelease(ts)
			op, err := l.Add(ts[2], ts[0], ts[1])
			ewBench(b, l, ElementwiseBytes(n), op, err)
		})
	}
}

func BenchmarkAxpy(b *testing.B) {
	l := testLib(b)
	for _, n := range []int{1 << 16, 1 << 20} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			ts, err := ewBenchTensors(l, "axpy", 2, n)
			if err != nil {
				b.Fatal(err)
			}
			defer ewRelease(ts)
			op, err := l.Axpy(ts[1], ts[0], 1e-6)
			ewBench(b, l, 12*float64(n), op, err)
		})
	}
}

func BenchmarkActivate(b *testing.B) {
	l := testLib(b)
	const n = 1 << 20
	for _, a := range []Activation{ReLU, GELU} {
		b.Run(a.String(), func(b *testing.B) {
			ts, err := ewBenchTensors(l, "activate", 3, n)
			if err != nil {
				b.Fatal(err)
			}
			defer ewRelease(ts)
			b.Run("forward", func(b *testing.B) {
				op, err := l.Activate(ts[1], ts[0], a)
				ewBench(b, l, 8*n, op, err)
			})
			b.Run("backward", func(b *testing.B) {
				op, err := l.ActivateBackward(ts[2], ts[1], ts[0], a)
				ewBench(b, l, 12*n, op, err)
			})
		})
	}
}

func BenchmarkRowReduce(b *testing.B) {
	l := testLib(b)
	shapes := [][2]int{{70000, 3}, {16384, 32}, {16384, 64}, {16384, 65}, {4096, 256}, {256, 4096}, {3, 100003}}
	for _, r := range []Reduction{ReduceSum, ReduceLogSumExp} {
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			b.Run(fmt.Sprintf("%s/%dx%d", r, rows, cols), func(b *testing.B) {
				ts, err := ewBenchTensors(l, "row reduce", 1, rows, cols)
				if err != nil {
					b.Fatal(err)
				}
				defer ewRelease(ts)
				out, err := NewTensor(l.Device(), "row reduce out", rows)
				if err != nil {
					b.Fatal(err)
				}
				defer out.Release()
				op, err := l.RowReduce(out, ts[0], r)
				ewBench(b, l, RowReduceBytes(rows, cols), op, err)
			})
		}
	}
}

func BenchmarkSumSquares(b *testing.B) {
	l := testLib(b)
	for _, n := range []int{1 << 13, 1 << 20, 1 << 24} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			ts, err := ewBenchTensors(l, "sum of squares", 1, n)
			if err != nil {
				b.Fatal(err)
			}
			defer ewRelease(ts)
			out, err := NewTensor(l.Device(), "sum of squares out", 1)
			if err != nil {
				b.Fatal(err)
			}
			defer out.Release()
			s, err := l.SumSquares(out, ts[0])
			if err != nil {
				b.Fatal(err)
			}
			defer s.Release()
			b.ResetTimer()
			sec, err := ewTimeOps(l, b.N, s.Ops...)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(4*float64(n)/sec/1e9, "GB/s")
			b.ReportMetric(sec*1e6, "µs/op")
		})
	}
}
