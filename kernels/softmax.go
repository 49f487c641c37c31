package kernels

import (
	"fmt"
	"math"
)

// SoftmaxGeom views an array as [Outer, N, Inner]: the softmax runs along the axis of
// length N, Inner the product of the sizes after it, Outer of those before.
type SoftmaxGeom struct {
	Outer, N, Inner int
}

func (g SoftmaxGeom) len() int { return g.Outer * g.N * g.Inner }

func (g SoftmaxGeom) check(name string, ts ...*Tensor) error {
	if g.Outer < 1 || g.N < 1 || g.Inner < 1 {
		return fmt.Errorf("kernels: %s: geometry %+v has a size < 1", name, g)
	}
	for _, t := range ts {
		if t != nil && t.Len() != g.len() {
			return fmt.Errorf("kernels: %s: tensor %q has %d elements, geometry %+v has %d", name, t.Label(), t.Len(), g, g.len())
		}
	}
	return nil
}

// Softmax returns the op y = softmax(x) (log-softmax when log) along the N axis of g
// (shaders/softmax.wgsl), stable: the line's maximum is subtracted first.
func (l *Library) Softmax(y, x *Tensor, g SoftmaxGeom, log bool) (*Op, error) {
	name := softmaxName("softmax", log)
	if err := l.ewCheck(name, []string{"y", "x"}, []*Tensor{y, x}, 1); err != nil {
		return nil, err
	}
	if err := g.check(name, y, x); err != nil {
		return nil, err
	}
	return l.softmaxBuild(name, "softmax_fwd", []*Tensor{x, y}, g, log)
}

// SoftmaxBackward returns the op dx = Jᵀ·dy of Softmax, y its forward output:
// dx = y ⊙ (dy − Σ dy⊙y) for softmax, dx = dy − exp(y)·Σ dy for log-softmax.
func (l *Library) SoftmaxBackward(dx, dy, y *Tensor, g SoftmaxGeom, log bool) (*Op, error) {
	name := softmaxName("softmax backward", log)
	if err := l.ewCheck(name, []string{"dx", "dy", "y"}, []*Tensor{dx, dy, y}, 1); err != nil {
		return nil, err
	}
	if err := g.check(name, dx, dy, y); err != nil {
		return nil, err
	}
	return l.softmaxBuild(name, "softmax_bwd", []*Tensor{dy, y, dx}, g, log)
}

func softmaxName(s string, log bool) string {
	if log {
		return "log" + s
	}
	return s
}

func (l *Library) softmaxBuild(name, entry string, ts []*Tensor, g SoftmaxGeom, log bool) (*Op, error) {
	wg := l.ewWorkgroupSize()
	lines := g.Outer * g.Inner
	spec := opSpec{
		name: name, file: "softmax.wgsl", entry: entry,
		consts: map[string]float64{"LOG": overrideBool(log), "wg": float64(wg)},
		params: Params{lines, g.N, g.Inner},
		grid:   l.ewGrid(lines, 3*g.N, wg),
	}
	for _, t := range ts {
		spec.buffers = append(spec.buffers, t.Buf)
	}
	return l.build(spec)
}

// RefSoftmax is the float64 reference of Softmax.
func RefSoftmax(x []float64, g SoftmaxGeom, log bool) []float64 {
	y := make([]float64, len(x))
	for o := 0; o < g.Outer; o++ {
		for j := 0; j < g.Inner; j++ {
			at := func(k int) int { return (o*g.N+k)*g.Inner + j }
			m := math.Inf(-1)
			for k := 0; k < g.N; k++ {
				m = math.Max(m, x[at(k)])
			}
			s := 0.0
			for k := 0; k < g.N; k++ {
				s += math.Exp(x[at(k)] - m)
			}
			for k := 0; k < g.N; k++ {
				if log {
					y[at(k)] = x[at(k)] - m - math.Log(s)
				} else {
					y[at(k)] = math.Exp(x[at(k)]-m) / s
				}
			}
		}
	}
	return y
}

// RefSoftmaxBackward is the float64 reference of SoftmaxBackward.
func RefSoftmaxBackward(dy, y []float64, g SoftmaxGeom, log bool) []float64 {
	dx := make([]float64, len(y))
	for o := 0; o < g.Outer; o++ {
		for j := 0; j < g.Inner; j++ {
			at := func(k int) int { return (o*g.N+k)*g.Inner + j }
			s := 0.0
			for k := 0; k < g.N; k++ {
				if log {
					s += dy[at(k)]
				} else {
					s += dy[at(k)] * y[at(k)]
				}
			}
			for k := 0; k < g.N; k++ {
				if log {
					dx[at(k)] = dy[at(k)] - math.Exp(y[at(k)])*s
				} else {
					dx[at(k)] = y[at(k)] * (dy[at(k)] - s)
				}
			}
		}
	}
	return dx
}
