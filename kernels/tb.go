package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Objective selects the trajectory loss.
type Objective uint32

// The objectives of shaders/tb_loss.wgsl.
const (
	TB      Objective = 0 // trajectory balance with a learned log Z
	VarGrad Objective = 1 // log-variance: log Z replaced by the batch mean
	// RTB is relative trajectory balance (package train): TB's loss with a learned log Z
	// where log p_B is replaced by a frozen prior sampler's log p_F; its loss kernel runs
	// in TB mode.
	RTB Objective = 2
)

func (o Objective) String() string {
	switch o {
	case VarGrad:
		return "vargrad"
	case RTB:
		return "rtb"
	}
	return "tb"
}

// TBLoss records the loss over a batch of trajectories: coef [B] receives ∂L/∂log p_F(τ_b)
// and stats [4] the loss, ∂L/∂log Z, mean Δ and mean Δ² (see shaders/tb_loss.wgsl).
func (l *Library) TBLoss(coef, stats, logpf, logpb, logr, logz *Tensor, obj Objective) (*Op, error) {
	b := logpf.Len()
	if logpb.Len() != b || logr.Len() != b || coef.Len() != b {
		return nil, fmt.Errorf("kernels: tb loss: log p_F %v, log p_B %v, log R %v and coef %v must all have B = %d elements", logpf.Shape, logpb.Shape, logr.Shape, coef.Shape, b)
	}
	if logz.Len() != 1 || stats.Len() != 4 {
		return nil, fmt.Errorf("kernels: tb loss: log Z must have 1 element (has %d) and stats 4 (has %d)", logz.Len(), stats.Len())
	}
	if obj != TB && obj != VarGrad {
		return nil, fmt.Errorf("kernels: tb loss: unknown objective %d", obj)
	}
	return l.build(opSpec{
		name: "tb loss", file: "tb_loss.wgsl", entry: "main",
		buffers: []*gpu.Buffer{logpf.Buf, logpb.Buf, logr.Buf, logz.Buf, coef.Buf, stats.Buf},
		params:  Params{b, uint32(obj)},
		grid:    [3]uint32{1, 1, 1},
	})
}

// RefTBLoss is the float64 reference of TBLoss; it returns coef and the four stats.
func RefTBLoss(logpf, logpb, logr []float64, logz float64, obj Objective) ([]float64, [4]float64) {
	n := float64(len(logpf))
	delta := make([]float64, len(logpf))
	mean := 0.0
	for i := range delta {
		delta[i] = logpf[i] - logpb[i] - logr[i]
		mean += delta[i] / n
	}
	offset := logz
	if obj == VarGrad {
		offset = -mean
	}
	coef := make([]float64, len(delta))
	var st [4]float64
	for i, d := range delta {
		r := offset + d
		coef[i] = r / n
		st[0] += 0.5 * r * r / n
		st[1] += r / n
		st[3] += d * d / n
	}
	if obj == VarGrad {
		st[1] = 0
	}
	st[2] = mean
	return coef, st
}

// TBDriftGrad records du = coef_b (z1 − z0 − u·dt)/σ², the loss gradient with respect to
// one step's drift (all of z0, z1, u, du [B, d]; coef [B]).
func (l *Library) TBDriftGrad(du, z0, z1, u, coef *Tensor, dt, sigma2 float64) (*Op, error) {
	return l.TBDriftGradStack(du, z0, z1, u, coef, z0.Rows(), dt, sigma2)
}

// TBDriftGradStack is TBDriftGrad over stacks of steps: z0, z1, u and du are [S·stride, d]
// (step s's row b at row s·stride + b) and coef [B], B ≤ stride; row s·stride + b gets
// coef_b (z1 − z0 − u·dt)/σ², and the padding rows (b ≥ B) get 0. One dispatch forms the
// drift gradients of every step.
//
// With learned variance u and du are [S·stride, 2d] (the output rows [u, h]; the entry
// learned_variance of tb_drift_grad.wgsl) and du gets the gradients of both heads
// (RefTBDriftGradLV).
func (l *Library) TBDriftGradStack(du, z0, z1, u, coef *Tensor, stride int, dt, sigma2 float64) (*Op, error) {
	lv := len(u.Shape) == 2 && len(z0.Shape) == 2 && u.Shape[0] == z0.Shape[0] && u.Shape[1] == 2*z0.Shape[1]
	if !sameShape(z1.Shape, z0.Shape) {
		return nil, fmt.Errorf("kernels: tb drift grad: %q is %v, want %v like z0", z1.Label(), z1.Shape, z0.Shape)
	}
	for _, x := range []*Tensor{u, du} {
		if !sameShape(x.Shape, u.Shape) || !lv && !sameShape(x.Shape, z0.Shape) {
			return nil, fmt.Errorf("kernels: tb drift grad: %q is %v, want %v like z0 (or [rows, 2d] for both u and du, learned variance)", x.Label(), x.Shape, z0.Shape)
		}
	}
	if stride < coef.Len() || coef.Len() < 1 || z0.Rows()%stride != 0 {
		return nil, fmt.Errorf("kernels: tb drift grad: coef has %d elements for stacks of %d rows with a stride of %d (want 1 ≤ elements ≤ stride, rows a multiple of the stride)", coef.Len(), z0.Rows(), stride)
	}
	if !(dt > 0) || !(sigma2 > 0) || math.IsInf(dt, 0) || math.IsInf(sigma2, 0) {
		return nil, fmt.Errorf("kernels: tb drift grad: dt = %v and σ² = %v must be positive and finite", dt, sigma2)
	}
	entry := "main"
	if lv {
		entry = "learned_variance"
	}
	return l.build(opSpec{
		name: "tb drift grad", file: "tb_drift_grad.wgsl", entry: entry,
		buffers: []*gpu.Buffer{z0.Buf, z1.Buf, u.Buf, coef.Buf, du.Buf},
		params:  Params{coef.Len(), z0.Cols(), float32(dt), float32(sigma2), stride, z0.Rows()},
		grid:    Grid1D(du.Len(), 256),
	})
}

// RefTBDriftGradLV is the float64 reference of TBDriftGradStack with learned variance
// for stride = B: z0, z1 are [B·S, d], uh and the result [B·S, 2d], coef [B]
// (row i has coef[i mod B]).
func RefTBDriftGradLV(z0, z1, uh, coef []float64, dim int, dt, sigma2 float64) []float64 {
	out := make([]float64, len(uh))
	B := len(coef)
	for row := 0; row < len(z0)/dim; row++ {
		c := coef[row%B]
		for j := 0; j < dim; j++ {
			u, h := uh[row*2*dim+j], uh[row*2*dim+dim+j]
			th := math.Tanh(h)
			v := sigma2 * dt * math.Exp(4*th)
			e := z1[row*dim+j] - z0[row*dim+j] - u*dt
			if math.Abs(u) < DriftClip {
				out[row*2*dim+j] = c * e * dt / v
			}
			if math.Abs(h) < DriftClip {
				out[row*2*dim+dim+j] = c * (0.5*e*e/v - 0.5) * 4 * (1 - th*th)
			}
		}
	}
	return out
}

// RefTBDriftGrad is the float64 reference of TBDriftGrad.
func RefTBDriftGrad(z0, z1, u, coef []float64, dim int, dt, sigma2 float64) []float64 {
	out := make([]float64, len(z0))
	for i := range out {
		if math.Abs(u[i]) < DriftClip { // the clipped drift passes no gradient
			out[i] = coef[i/dim] * (z1[i] - z0[i] - u[i]*dt) / sigma2
		}
	}
	return out
}
