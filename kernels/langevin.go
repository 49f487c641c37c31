package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// LangevinDrift records u = nn + scale[k]·clamp(g, ±clip) for one step k (nn, g, u [B, d];
// scale [T]): the Langevin-parametrised drift with g = ∇log R(z_k).
func (l *Library) LangevinDrift(u, nn, g, scale *Tensor, k int, clip float64) (*Op, error) {
	if !sameShape(nn.Shape, g.Shape) || !sameShape(nn.Shape, u.Shape) {
		return nil, fmt.Errorf("kernels: langevin drift: nn %v, g %v and u %v must match", nn.Shape, g.Shape, u.Shape)
	}
	if k < 0 || k >= scale.Len() || !(clip > 0) || math.IsInf(clip, 0) {
		return nil, fmt.Errorf("kernels: langevin drift: step %d of %d, clip %v (want a step in range and a positive finite clip)", k, scale.Len(), clip)
	}
	return l.build(opSpec{name: "langevin drift", file: "langevin.wgsl", entry: "main",
		buffers: []*gpu.Buffer{nn.Buf, g.Buf, scale.Buf, u.Buf},
		params:  Params{u.Len(), k, float32(clip)}, grid: Grid1D(u.Len(), 256)})
}

// LangevinScaleGrad records dscale[k] += Σ du ⊙ clamp(g, ±clip).
func (l *Library) LangevinScaleGrad(dscale, du, g *Tensor, k int, clip float64) (*Op, error) {
	if !sameShape(du.Shape, g.Shape) {
		return nil, fmt.Errorf("kernels: langevin scale grad: du %v and g %v must match", du.Shape, g.Shape)
	}
	if k < 0 || k >= dscale.Len() || !(clip > 0) {
		return nil, fmt.Errorf("kernels: langevin scale grad: step %d of %d, clip %v", k, dscale.Len(), clip)
	}
	return l.build(opSpec{name: "langevin scale grad", file: "langevin_grad.wgsl", entry: "main",
		buffers: []*gpu.Buffer{du.Buf, g.Buf, dscale.Buf},
		params:  Params{du.Len(), k, float32(clip)}, grid: [3]uint32{1, 1, 1}})
}

func clampNaN(x, c float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return math.Max(-c, math.Min(c, x))
}

// RefLangevinDrift is the float64 reference of LangevinDrift.
func RefLangevinDrift(nn, g []float64, scaleK, clip float64) []float64 {
	out := make([]float64, len(nn))
	for i := range nn {
		out[i] = math.Max(-DriftClip, math.Min(nn[i]+scaleK*clampNaN(g[i], clip), DriftClip))
	}
	return out
}

// RefLangevinScaleGrad is the float64 reference of LangevinScaleGrad's increment.
func RefLangevinScaleGrad(du, g []float64, clip float64) float64 {
	s := 0.0
	for i := range du {
		s += du[i] * clampNaN(g[i], clip)
	}
	return s
}
