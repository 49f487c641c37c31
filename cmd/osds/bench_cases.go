package main

import (
	"fmt"

	"osds/kernels"
)

// benchCases lists the kernel measurements of `osds bench`; quick keeps only small sizes.
func benchCases(l *kernels.Library, quick bool) []benchCase {
	var cs []benchCase
	pick := func(full, small []int) []int {
		if quick {
			return small
		}
		return full
	}
	// Matmul: square sizes, the trainer's layer shape (batch 300, width 64) and the three
	// forms a backward pass needs; gonum's blas32.Gemm on the CPU is the reference.
	type mm struct {
		m, n, k        int
		transA, transB bool
	}
	mms := []mm{{256, 256, 256, false, false}, {300, 64, 64, false, false}, {64, 64, 300, true, false}, {300, 64, 64, false, true}}
	if !quick {
		// The trainer's weight gradient over all T = 100 steps at once (K = T·rows, 320
		// rows per step for a batch of 300 on most adapters).
		mms = append(mms, mm{1024, 1024, 1024, false, false}, mm{1024, 1024, 1024, true, false}, mm{1024, 1024, 1024, false, true}, mm{64, 64, 32000, true, false})
	}
	// Every matmul kernel the adapter can run, the one Matmul picks first.
	for _, s := range mms {
		for _, kernel := range l.MatmulKernels() {
			cs = append(cs, matmulBenchCase(s.m, s.n, s.k, s.transA, s.transB, kernel))
		}
	}
	// Convolution forward (im2col + matmul with bias) at the shipped classifier's two
	// layers, batch 128; the CPU reference is gonum's Gemm of the same im2col matmul
	// (what a CPU im2col convolution costs at least).
	for _, g := range []kernels.ConvGeom{
		{Batch: 128, InH: 28, InW: 28, InC: 1, OutC: 32, KH: 3, KW: 3, Stride: 2, Pad: 1},
		{Batch: 128, InH: 14, InW: 14, InC: 32, OutC: 64, KH: 3, KW: 3, Stride: 2, Pad: 1},
	} {
		g := g
		cols := g.ColsShape()
		cs = append(cs, benchCase{
			kernel: "conv2d forward", shape: g.String(), unit: "GFLOP/s",
			run: func(l *kernels.Library) (float64, float64, error) {
				sec, err := kernels.MeasureConv2D(l, g, 20)
				return sec, kernels.ConvFLOPs(g), err
			},
			reference:     func() float64 { return kernels.MeasureGonumSgemm(cols[0], g.OutC, cols[1], 5) },
			referenceName: "gonum blas32.Gemm of the im2col matmul",
		})
	}
	for _, n := range pick([]int{1 << 16, 1 << 20, 1 << 24}, []int{1 << 16, 1 << 20}) {
		n := n
		cs = append(cs, benchCase{kernel: "elementwise add", shape: fmt.Sprintf("%d", n), unit: "GB/s",
			run: func(l *kernels.Library) (float64, float64, error) {
				sec, err := kernels.MeasureElementwise(l, n, 20)
				return sec, kernels.ElementwiseBytes(n), err
			}})
	}
	for _, s := range [][2]int{{300, 64}, {4096, 4096}, {70000, 3}} {
		s := s
		if quick && s[0] == 4096 {
			continue
		}
		cs = append(cs, benchCase{kernel: "row reduce sum", shape: fmt.Sprintf("%d×%d", s[0], s[1]), unit: "GB/s",
			run: func(l *kernels.Library) (float64, float64, error) {
				sec, err := kernels.MeasureRowReduce(l, s[0], s[1], 20)
				return sec, kernels.RowReduceBytes(s[0], s[1]), err
			}})
	}
	for _, normal := range []bool{false, true} {
		normal := normal
		name := "rng uniform"
		if normal {
			name = "rng normal"
		}
		n := 1 << 20
		cs = append(cs, benchCase{kernel: name, shape: fmt.Sprintf("%d", n), unit: "GB/s",
			run: func(l *kernels.Library) (float64, float64, error) { return kernels.MeasureRand(l, normal, n, 20) }})
	}
	for _, s := range [][2]int{{300, 2}, {300, 32}, {2000, 32}} {
		s := s
		cs = append(cs, benchCase{kernel: "sde step", shape: fmt.Sprintf("%d×%d", s[0], s[1]), unit: "GB/s",
			run: func(l *kernels.Library) (float64, float64, error) {
				return kernels.MeasureSDEStep(l, s[0], s[1], 100, 5)
			}})
	}
	for _, p := range pick([]int{40000, 1 << 20}, []int{40000}) {
		p := p
		cs = append(cs, benchCase{kernel: "adam", shape: fmt.Sprintf("%d", p), unit: "GB/s",
			run: func(l *kernels.Library) (float64, float64, error) { return kernels.MeasureAdam(l, p, false, 20) }})
		cs = append(cs, benchCase{kernel: "adam + norm clip", shape: fmt.Sprintf("%d", p), unit: "GB/s",
			run: func(l *kernels.Library) (float64, float64, error) { return kernels.MeasureAdam(l, p, true, 20) }})
	}
	cs = append(cs, benchCase{kernel: "gather rows", shape: "300 of 600000×32", unit: "GB/s",
		run: func(l *kernels.Library) (float64, float64, error) {
			return kernels.MeasureGather(l, false, 600000, 300, 32, 20)
		}})
	for _, rows := range pick([]int{30000, 600000}, []int{30000}) {
		rows := rows
		cs = append(cs, benchCase{kernel: "rank-prioritised draw (sort + draw)", shape: fmt.Sprintf("300 of %d", rows), unit: "GB/s",
			run: func(l *kernels.Library) (float64, float64, error) { return kernels.MeasureRank(l, rows, 300, 3) }})
	}
	return cs
}

// matmulBenchCase times one product shape with one Matmul kernel against gonum.
func matmulBenchCase(m, n, k int, transA, transB bool, kernel kernels.MatmulKernel) benchCase {
	opts := kernels.MatmulOptions{TransA: transA, TransB: transB, Kernel: kernel}
	reps := min(200, max(2, int(2e9/kernels.MatmulFLOPs(m, n, k))))
	return benchCase{
		kernel: fmt.Sprintf("matmul %s (%v)", kernels.MatmulForm(opts), kernel), shape: fmt.Sprintf("%d×%d×%d", m, n, k), unit: "GFLOP/s",
		run: func(l *kernels.Library) (float64, float64, error) {
			sec, err := kernels.MeasureMatmul(l, m, n, k, reps, opts)
			return sec, kernels.MatmulFLOPs(m, n, k), err
		},
		reference:     func() float64 { return kernels.MeasureGonumSgemm(m, n, k, max(1, reps/4)) },
		referenceName: "gonum blas32.Gemm",
	}
}
