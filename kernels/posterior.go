package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Posterior targets in the noise space of a prior x = f(z) (shaders/posterior.wgsl):
// a Gaussian observation of some coordinates of x, and the row-wise combination
// log R(z) = log N(z; 0, I) + log r(f(z)) with its gradient −z + J_fᵀ∇_x log r.
// One invocation per row; rows of any length.

const log2Pi = 1.8378770664093453 // log(2π)

// posteriorArgs checks the arguments of a posterior op: none nil, each with the element
// count it needs, no output sharing a buffer with another argument, all bindable.
func (l *Library) posteriorArgs(op string, args []lossArg, want []int) error {
	for i, a := range args {
		if a.t == nil {
			return fmt.Errorf("kernels: %s: %s is nil", op, a.name)
		}
		if a.t.Len() != want[i] {
			return fmt.Errorf("kernels: %s: %s is %s (%d elements; want %d)", op, a.name, ewShape(a.t.Shape), a.t.Len(), want[i])
		}
	}
	for i, a := range args {
		for _, b := range args[i+1:] {
			if a.t.Buf.Shares(b.t.Buf) && (a.out || b.out) {
				return fmt.Errorf("kernels: %s: %s and %s are the same tensor (%q); an output needs a tensor of its own", op, a.name, b.name, a.t.Label())
			}
		}
	}
	for _, a := range args {
		if err := l.ewCheckBindable(op, a.name, a.t); err != nil {
			return err
		}
	}
	return nil
}

// GaussianObservation returns the op computing, for rows x [B, D], an observation y [D]
// and a mask m [D] (1 for an observed coordinate, 0 for a free one; any weights work),
//
//	logr_b = Σ_i m_i log N(y_i; x_bi, σ²) = Σ_i m_i (−½ log 2πσ² − (x_bi − y_i)²/(2σ²))
//	dx_bi  = ∂logr_b/∂x_bi = −m_i (x_bi − y_i)/σ²
//
// logr has B elements; dx has the shape of x and may be nil (log r only).
func (l *Library) GaussianObservation(logr, dx, x, y, mask *Tensor, sigma float64) (*Op, error) {
	const name = "gaussian observation"
	if x == nil {
		return nil, fmt.Errorf("kernels: %s: x is nil", name)
	}
	if !(sigma > 0) || math.IsInf(sigma, 0) || float32(1/(sigma*sigma)) > math.MaxFloat32 {
		return nil, fmt.Errorf("kernels: %s: σ = %v (want a positive finite value whose 1/σ² fits f32)", name, sigma)
	}
	B, D := x.Rows(), x.Cols()
	args := []lossArg{{"x", x, false}, {"y", y, false}, {"mask", mask, false}, {"logr", logr, true}}
	want := []int{B * D, D, D, B}
	if dx != nil {
		args, want = append(args, lossArg{"dx", dx, true}), append(want, B*D)
	}
	if err := l.posteriorArgs(name, args, want); err != nil {
		return nil, err
	}
	ps := Params{B, D, float32(1 / (sigma * sigma)), float32(-0.5 * (log2Pi + 2*math.Log(sigma)))}
	bufs := []*gpu.Buffer{x.Buf, y.Buf, mask.Buf, logr.Buf}
	entry := "observe_value"
	if dx != nil {
		bufs, entry = append(bufs, dx.Buf), "observe"
	}
	return l.build(opSpec{name: name, file: "posterior.wgsl", entry: entry, buffers: bufs, params: ps, grid: Grid1D(B, 64)})
}

// PosteriorCombine returns the op combining a constraint's log r and its pull-back with
// the standard normal prior on z [B, d]:
//
//	logR_b = −½ ‖z_b‖² − (d/2) log 2π + lr_b       (lr [B] = log r(f(z_b)))
//	grad_b = −z_b + jt_b                            (jt [B, d] = J_f(z_b)ᵀ ∇_x log r)
//
// grad and jt are both given or both nil (log R only).
func (l *Library) PosteriorCombine(logR, grad, z, lr, jt *Tensor) (*Op, error) {
	const name = "posterior combine"
	if z == nil {
		return nil, fmt.Errorf("kernels: %s: z is nil", name)
	}
	if (grad == nil) != (jt == nil) {
		return nil, fmt.Errorf("kernels: %s: grad and jt must both be given or both be nil (grad %v, jt %v)", name, grad != nil, jt != nil)
	}
	B, d := z.Rows(), z.Cols()
	args := []lossArg{{"z", z, false}, {"lr", lr, false}}
	want := []int{B * d, B}
	if grad != nil {
		args, want = append(args, lossArg{"jt", jt, false}), append(want, B*d)
	}
	args, want = append(args, lossArg{"logR", logR, true}), append(want, B)
	if grad != nil {
		args, want = append(args, lossArg{"grad", grad, true}), append(want, B*d)
	}
	if err := l.posteriorArgs(name, args, want); err != nil {
		return nil, err
	}
	bufs := make([]*gpu.Buffer, len(args))
	for i, a := range args {
		bufs[i] = a.t.Buf
	}
	entry := "combine_value"
	if grad != nil {
		entry = "combine"
	}
	ps := Params{B, d, float32(0), float32(-0.5 * float64(d) * log2Pi)}
	return l.build(opSpec{name: name, file: "posterior.wgsl", entry: entry, buffers: bufs, params: ps, grid: Grid1D(B, 64)})
}

// RefGaussianObservation is the float64 reference of GaussianObservation for x holding
// rows of len(y) values.
func RefGaussianObservation(x, y, mask []float64, sigma float64) (logr, dx []float64) {
	D := len(y)
	logr = make([]float64, len(x)/D)
	dx = make([]float64, len(x))
	c := -0.5 * (log2Pi + 2*math.Log(sigma))
	for i, v := range x {
		r := v - y[i%D]
		logr[i/D] += mask[i%D] * (c - 0.5*r*r/(sigma*sigma))
		dx[i] = -mask[i%D] * r / (sigma * sigma)
	}
	return logr, dx
}

// RefPosteriorCombine is the float64 reference of PosteriorCombine for z holding rows
// of d values; jt may be nil (then grad is nil).
func RefPosteriorCombine(z, lr, jt []float64, d int) (logR, grad []float64) {
	logR = make([]float64, len(z)/d)
	for b := range logR {
		q := 0.0
		for _, v := range z[b*d : (b+1)*d] {
			q += v * v
		}
		logR[b] = -0.5*q - 0.5*float64(d)*log2Pi + lr[b]
	}
	if jt == nil {
		return logR, nil
	}
	grad = make([]float64, len(z))
	for i := range z {
		grad[i] = jt[i] - z[i]
	}
	return logR, grad
}
