package kernels

import (
	"fmt"
	"math"
)

// Activation selects an elementwise nonlinearity; the values match act_fwd/act_bwd in
// shaders/activations.wgsl.
type Activation uint32

// The activations. LeakyReLU has slope LeakySlope for x ≤ 0; GELU is the tanh form
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); Clip is clamp(x, ±DriftClip), the bound on
// the sampler network's output (its derivative is 1 inside, 0 at or beyond the bound).
const (
	Identity Activation = iota
	ReLU
	LeakyReLU
	SiLU
	GELU
	Tanh
	Sigmoid
	Softplus
	Clip
)

// DriftClip bounds every component of the sampler's drift, clip(NN₁ + NN₂·clip(∇log R,
// ±100), ±1e4) (Sendera et al. 2024, Eq. 17): a guard against runaway outputs that a
// healthy run never reaches. CLIP_BOUND in activations.wgsl and DRIFT_CLIP in langevin.wgsl
// and tb_drift_grad.wgsl hold the same value.
const DriftClip = 1e4

// LeakySlope is LeakyReLU's slope for negative inputs.
const LeakySlope = 0.01

var activationNames = []string{"identity", "relu", "leakyrelu", "silu", "gelu", "tanh", "sigmoid", "softplus", "clip"}

func (a Activation) String() string {
	if int(a) < len(activationNames) {
		return activationNames[a]
	}
	return fmt.Sprintf("activation(%d)", uint32(a))
}

func (a Activation) valid() error {
	if int(a) >= len(activationNames) {
		return fmt.Errorf("kernels: unknown activation %d", uint32(a))
	}
	return nil
}

// Tolerance is the relative error the tests allow for a kernel applying a: GELU and
// softplus go through f32 transcendentals whose error dominates (1e-3), the rest 1e-4.
func (a Activation) Tolerance() float64 {
	if a == GELU || a == Softplus || a == SiLU || a == Sigmoid || a == Tanh {
		return 1e-3
	}
	return 1e-4
}

func sigmoid64(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// RefActivate is the float64 reference of act_fwd: f(x).
func RefActivate(a Activation, x float64) float64 {
	switch a {
	case ReLU:
		return math.Max(x, 0)
	case LeakyReLU:
		if x > 0 {
			return x
		}
		return LeakySlope * x
	case SiLU:
		return x * sigmoid64(x)
	case GELU:
		u := math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x)
		return 0.5 * x * (1 + math.Tanh(u))
	case Tanh:
		return math.Tanh(x)
	case Sigmoid:
		return sigmoid64(x)
	case Softplus:
		return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
	case Clip:
		return math.Max(-DriftClip, math.Min(x, DriftClip))
	}
	return x
}

// RefActivateGrad is the float64 reference of act_bwd: f'(x) at the pre-activation x.
func RefActivateGrad(a Activation, x float64) float64 {
	switch a {
	case ReLU:
		if x > 0 {
			return 1
		}
		return 0
	case LeakyReLU:
		if x > 0 {
			return 1
		}
		return LeakySlope
	case SiLU:
		s := sigmoid64(x)
		return s * (1 + x*(1-s))
	case GELU:
		c := math.Sqrt(2 / math.Pi)
		u := c * (x + 0.044715*x*x*x)
		th := math.Tanh(u)
		return 0.5*(1+th) + 0.5*x*(1-th*th)*c*(1+3*0.044715*x*x)
	case Tanh:
		th := math.Tanh(x)
		return 1 - th*th
	case Sigmoid:
		s := sigmoid64(x)
		return s * (1 - s)
	case Softplus:
		return sigmoid64(x)
	case Clip:
		if math.Abs(x) < DriftClip {
			return 1
		}
		return 0
	}
	return 1
}
