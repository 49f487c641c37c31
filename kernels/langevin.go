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

// LangevinScaleGrad records, for every segment s of the stacks du [S·Stride, d′] and
// g [S·Stride, d] (see Segments; d′ ≥ d, the drift in du's first d columns: a
// learned-variance network's du is [du, dh]),
// dscale[First + s·Step] += Σ_{b < Rows} du[s·Stride + b, :d] ⊙ clamp(g[s·Stride + b, :], ±clip):
// the scale's gradient of S steps of LangevinDrift in one dispatch. One step k of [B, d]
// tensors is Segments{Stride: B, Rows: B, First: k, Step: 1}.
func (l *Library) LangevinScaleGrad(dscale *Tensor, seg Segments, du, g *Tensor, clip float64) (*Op, error) {
	const name = "langevin scale grad"
	if len(du.Shape) != 2 || len(g.Shape) != 2 || du.Shape[0] != g.Shape[0] || du.Shape[1] < g.Shape[1] {
		return nil, fmt.Errorf("kernels: %s: du %v and g %v must be [rows, d′] and [rows, d] stacks with d′ ≥ d", name, du.Shape, g.Shape)
	}
	if !(clip > 0) || math.IsInf(clip, 0) {
		return nil, fmt.Errorf("kernels: %s: clip %v (want a positive finite clip)", name, clip)
	}
	n, err := seg.count(name, g, dscale)
	if err != nil {
		return nil, err
	}
	if dscale.Buf.Shares(du.Buf) || dscale.Buf.Shares(g.Buf) {
		return nil, fmt.Errorf("kernels: %s: dscale must not share a buffer with du or g", name)
	}
	return l.build(opSpec{name: name, file: "langevin_grad.wgsl", entry: "main",
		buffers: []*gpu.Buffer{du.Buf, g.Buf, dscale.Buf},
		params:  Params{seg.Rows, g.Cols(), seg.First, n, seg.Stride, seg.Step, float32(clip), du.Cols()},
		grid:    [3]uint32{1, uint32(n), 1}})
}

// LangevinClip bounds each component of ∇log R in the Langevin drift (LangevinDrift's
// clip in the trainer, and the fused rollout's).
const LangevinClip = 100

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

// RefLangevinScaleGrad is the float64 reference of LangevinScaleGrad: dscale after
// dscale[First + s·Step] += Σ_{b < Rows, i < cols} du[·, i]·clamp(g[·, i], ±clip) over
// segment s's rows (du's rows duCols ≥ cols wide, g's cols).
func RefLangevinScaleGrad(dscale, du, g []float64, cols, duCols int, seg Segments, clip float64) []float64 {
	out := append([]float64(nil), dscale...)
	for s := 0; s < len(g)/cols/seg.Stride; s++ {
		for r := s * seg.Stride; r < s*seg.Stride+seg.Rows; r++ {
			for i := 0; i < cols; i++ {
				out[seg.First+s*seg.Step] += du[r*duCols+i] * clampNaN(g[r*cols+i], clip)
			}
		}
	}
	return out
}
