package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Fourier records the time features feat [T, 2H] of times t [T] with frequencies freq [H]
// and phases phase [H]: feat[k, j] = sin(f_j t_k + φ_j), feat[k, H+j] = cos(f_j t_k + φ_j).
func (l *Library) Fourier(feat, t, freq, phase *Tensor) (*Op, error) {
	h, steps := freq.Len(), t.Len()
	if phase.Len() != h || feat.Rows() != steps || feat.Cols() != 2*h {
		return nil, fmt.Errorf("kernels: fourier: t %v, freq %v, phase %v need feat [%d, %d], got %v", t.Shape, freq.Shape, phase.Shape, steps, 2*h, feat.Shape)
	}
	return l.build(opSpec{
		name: "fourier", file: "fourier.wgsl", entry: "main",
		buffers: []*gpu.Buffer{t.Buf, freq.Buf, phase.Buf, feat.Buf},
		params:  Params{steps, h},
		grid:    Grid1D(steps*h, 64),
	})
}

// FourierPhaseGrad records dphase[j] += Σ_k (dfeat[k, j] cos a_kj − dfeat[k, H+j] sin a_kj),
// the gradient of Fourier with respect to the phase.
func (l *Library) FourierPhaseGrad(dphase, dfeat, t, freq, phase *Tensor) (*Op, error) {
	h, steps := freq.Len(), t.Len()
	if phase.Len() != h || dphase.Len() != h || dfeat.Rows() != steps || dfeat.Cols() != 2*h {
		return nil, fmt.Errorf("kernels: fourier phase grad: t %v, freq %v need dfeat [%d, %d] and dphase [%d], got %v and %v", t.Shape, freq.Shape, steps, 2*h, h, dfeat.Shape, dphase.Shape)
	}
	return l.build(opSpec{
		name: "fourier phase grad", file: "fourier_grad.wgsl", entry: "main",
		buffers: []*gpu.Buffer{t.Buf, freq.Buf, phase.Buf, dfeat.Buf, dphase.Buf},
		params:  Params{steps, h},
		grid:    [3]uint32{uint32((h + 63) / 64), 1, 1},
	})
}

// RefFourier is the float64 reference of Fourier (feat is [T, 2H] row-major).
func RefFourier(t, freq, phase []float64) []float64 {
	h := len(freq)
	out := make([]float64, len(t)*2*h)
	for k, tk := range t {
		for j := range freq {
			a := freq[j]*tk + phase[j]
			out[k*2*h+j] = math.Sin(a)
			out[k*2*h+h+j] = math.Cos(a)
		}
	}
	return out
}

// RefFourierPhaseGrad is the float64 reference of FourierPhaseGrad (returns dphase + Σ).
func RefFourierPhaseGrad(dphase, dfeat, t, freq, phase []float64) []float64 {
	h := len(freq)
	out := append([]float64(nil), dphase...)
	for k, tk := range t {
		for j := range freq {
			a := freq[j]*tk + phase[j]
			out[j] += dfeat[k*2*h+j]*math.Cos(a) - dfeat[k*2*h+h+j]*math.Sin(a)
		}
	}
	return out
}

// Linspace returns n values evenly spaced from lo to hi inclusive (the harmonic
// frequencies of the time features: Linspace(0.1, 100, 64)).
func Linspace(lo, hi float64, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		if n == 1 {
			out[i] = float32(lo)
			continue
		}
		out[i] = float32(lo + (hi-lo)*float64(i)/float64(n-1))
	}
	return out
}
