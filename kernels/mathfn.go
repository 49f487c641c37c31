package kernels

import (
	"fmt"
	"math"
)

// MathFn selects an elementwise function of shaders/mathfn.wgsl: the functions of imported
// graphs beyond the Activations (ReLU, sigmoid, tanh and softplus run on Activate), and
// ELU and LeakyReLU with their slope α as a parameter. The values match FN there.
type MathFn uint32

// The functions. Erf is computed in WGSL (a series below 0.5, Numerical Recipes' erfc
// fit above: relative error about 1e-7); Elu is x for x > 0 else α(eˣ − 1); LeakyRelu
// is x for x ≥ 0 else αx.
const (
	MathNeg MathFn = iota
	MathExp
	MathLog
	MathSqrt
	MathReciprocal
	MathAbs
	MathErf
	MathElu
	MathLeakyRelu
)

var mathNames = []string{"neg", "exp", "log", "sqrt", "reciprocal", "abs", "erf", "elu", "leakyrelu"}

func (f MathFn) String() string {
	if int(f) < len(mathNames) {
		return mathNames[f]
	}
	return fmt.Sprintf("mathfn(%d)", uint32(f))
}

// Math returns the op y = f(x) elementwise, with α the parameter of Elu and LeakyRelu.
func (l *Library) Math(y, x *Tensor, f MathFn, alpha float32) (*Op, error) {
	name := "math " + f.String()
	if err := mathCheck(name, f, alpha); err != nil {
		return nil, err
	}
	if err := l.ewCheck(name, []string{"y", "x"}, []*Tensor{y, x}, 1); err != nil {
		return nil, err
	}
	return l.mathBuild(name, "math_fwd", f, []*Tensor{x, y}, alpha)
}

// MathBackward returns the op dx = dy ⊙ f'(x), x the forward input of Math.
func (l *Library) MathBackward(dx, dy, x *Tensor, f MathFn, alpha float32) (*Op, error) {
	name := "math backward " + f.String()
	if err := mathCheck(name, f, alpha); err != nil {
		return nil, err
	}
	if err := l.ewCheck(name, []string{"dx", "dy", "x"}, []*Tensor{dx, dy, x}, 1); err != nil {
		return nil, err
	}
	return l.mathBuild(name, "math_bwd", f, []*Tensor{dy, x, dx}, alpha)
}

func mathCheck(name string, f MathFn, alpha float32) error {
	if int(f) >= len(mathNames) {
		return fmt.Errorf("kernels: %s: unknown function (want one of %v)", name, mathNames)
	}
	return ewFinite(name, "alpha", alpha)
}

func (l *Library) mathBuild(name, entry string, f MathFn, ts []*Tensor, alpha float32) (*Op, error) {
	wg := l.ewWorkgroupSize()
	n := ts[0].Len()
	spec := opSpec{
		name: name, file: "mathfn.wgsl", entry: entry,
		consts: map[string]float64{"FN": float64(f), "wg": float64(wg)},
		params: Params{n, alpha},
		grid:   l.ewGrid(n, 1, wg),
	}
	for _, t := range ts {
		spec.buffers = append(spec.buffers, t.Buf)
	}
	return l.build(spec)
}

// RefMath is the float64 reference of Math: f(x) with parameter α.
func RefMath(f MathFn, x, alpha float64) float64 {
	switch f {
	case MathNeg:
		return -x
	case MathExp:
		return math.Exp(x)
	case MathLog:
		return math.Log(x)
	case MathSqrt:
		return math.Sqrt(x)
	case MathReciprocal:
		return 1 / x
	case MathAbs:
		return math.Abs(x)
	case MathErf:
		return math.Erf(x)
	case MathElu:
		if x > 0 {
			return x
		}
		return alpha * (math.Exp(x) - 1)
	}
	if x >= 0 {
		return x
	}
	return alpha * x
}

// RefMathGrad is the float64 reference of f'(x) in MathBackward.
func RefMathGrad(f MathFn, x, alpha float64) float64 {
	switch f {
	case MathNeg:
		return -1
	case MathExp:
		return math.Exp(x)
	case MathLog:
		return 1 / x
	case MathSqrt:
		return 0.5 / math.Sqrt(x)
	case MathReciprocal:
		return -1 / (x * x)
	case MathAbs:
		if x < 0 {
			return -1
		}
		if x > 0 {
			return 1
		}
		return 0
	case MathErf:
		return 2 / math.Sqrt(math.Pi) * math.Exp(-x*x)
	case MathElu:
		if x > 0 {
			return 1
		}
		return alpha * math.Exp(x)
	}
	if x > 0 {
		return 1
	}
	return alpha
}
