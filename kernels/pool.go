package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// PoolGeom is the geometry of 2-D pooling over N planes of H×W pixels (shaders/pool.wgsl;
// an NCHW batch is N = B·C planes): output (oh, ow) < (OH, OW) pools the taps
// (kh, kw) < (KH, KW) at pixel (oh·SH − PadT + kh·DH, ow·SW − PadL + kw·DW). Taps outside
// the image are padding. PadB and PadR (bottom, right) only matter to the divisor of
// average pooling with CountPad, which counts the taps inside the padded image
// (PyTorch's count_include_pad); without CountPad it counts the taps inside the image.
// OH and OW are given (the caller applies floor or ceil mode).
type PoolGeom struct {
	N, H, W    int
	OH, OW     int
	KH, KW     int
	SH, SW     int
	PadT, PadL int
	PadB, PadR int
	DH, DW     int
	CountPad   bool
}

// Check reports a geometry with a size below 1, a negative padding, a window that starts
// beyond the padded image, or arrays beyond 32-bit indexing.
func (g PoolGeom) Check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"N", g.N}, {"H", g.H}, {"W", g.W}, {"OH", g.OH}, {"OW", g.OW}, {"KH", g.KH}, {"KW", g.KW}, {"SH", g.SH}, {"SW", g.SW}, {"DH", g.DH}, {"DW", g.DW}} {
		if f.v < 1 {
			return fmt.Errorf("kernels: pool geometry %+v: %s is %d (want ≥ 1)", g, f.name, f.v)
		}
	}
	if g.PadT < 0 || g.PadL < 0 || g.PadB < 0 || g.PadR < 0 {
		return fmt.Errorf("kernels: pool geometry %+v: negative padding", g)
	}
	if (g.OH-1)*g.SH-g.PadT >= g.H+g.PadB || (g.OW-1)*g.SW-g.PadL >= g.W+g.PadR {
		return fmt.Errorf("kernels: pool geometry %+v: the last window starts beyond the padded image", g)
	}
	if float64(g.N)*float64(g.H)*float64(g.W) > math.MaxUint32 || float64(g.N)*float64(g.OH)*float64(g.OW) > math.MaxUint32 {
		return fmt.Errorf("kernels: pool geometry %+v: arrays exceed 32-bit indexing", g)
	}
	return nil
}

func (g PoolGeom) params(n int) Params {
	return Params{n, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.PadT, g.PadL, g.PadB, g.PadR, g.DH, g.DW}
}

func (g PoolGeom) inLen() int  { return g.N * g.H * g.W }
func (g PoolGeom) outLen() int { return g.N * g.OH * g.OW }

// MaxPool returns the op y = max over each window of x, writing into idx (a tensor of
// y's length, used as u32) the in-plane index ih·W + iw of each maximum for
// MaxPoolBackward.
func (l *Library) MaxPool(y, idx, x *Tensor, g PoolGeom) (*Op, error) {
	const name = "max pool"
	if err := l.poolCheck(name, g, []string{"x", "y", "idx"}, []*Tensor{x, y, idx}, []int{g.inLen(), g.outLen(), g.outLen()}); err != nil {
		return nil, err
	}
	return l.poolBuild(name, "max_fwd", g, []*gpu.Buffer{x.Buf, y.Buf, idx.Buf}, y.Len(), g.KH*g.KW)
}

// MaxPoolBackward returns the op dx[pixel] = Σ dy over the windows whose maximum (idx
// of MaxPool) is that pixel.
func (l *Library) MaxPoolBackward(dx, dy, idx *Tensor, g PoolGeom) (*Op, error) {
	const name = "max pool backward"
	if err := l.poolCheck(name, g, []string{"dy", "idx", "dx"}, []*Tensor{dy, idx, dx}, []int{g.outLen(), g.outLen(), g.inLen()}); err != nil {
		return nil, err
	}
	return l.poolBuild(name, "max_bwd", g, []*gpu.Buffer{dy.Buf, idx.Buf, dx.Buf}, dx.Len(), g.KH*g.KW)
}

// AvgPool returns the op y = the mean of each window of x (divisor as PoolGeom says).
func (l *Library) AvgPool(y, x *Tensor, g PoolGeom) (*Op, error) {
	const name = "avg pool"
	if err := l.poolCheck(name, g, []string{"x", "y"}, []*Tensor{x, y}, []int{g.inLen(), g.outLen()}); err != nil {
		return nil, err
	}
	return l.poolBuild(name, "avg_fwd", g, []*gpu.Buffer{x.Buf, y.Buf}, y.Len(), g.KH*g.KW)
}

// AvgPoolBackward returns the op dx[pixel] = Σ dy[window]/count(window) over the windows
// that contain the pixel.
func (l *Library) AvgPoolBackward(dx, dy *Tensor, g PoolGeom) (*Op, error) {
	const name = "avg pool backward"
	if err := l.poolCheck(name, g, []string{"dy", "dx"}, []*Tensor{dy, dx}, []int{g.outLen(), g.inLen()}); err != nil {
		return nil, err
	}
	return l.poolBuild(name, "avg_bwd", g, []*gpu.Buffer{dy.Buf, dx.Buf}, dx.Len(), g.KH*g.KW)
}

func (l *Library) poolCheck(name string, g PoolGeom, names []string, ts []*Tensor, lens []int) error {
	if err := g.Check(); err != nil {
		return fmt.Errorf("kernels: %s: %w", name, err)
	}
	for i, t := range ts {
		if t == nil {
			return fmt.Errorf("kernels: %s: %s is nil", name, names[i])
		}
		if t.Len() != lens[i] {
			return fmt.Errorf("kernels: %s: %s %q has %d elements, want %d for %+v", name, names[i], t.Label(), t.Len(), lens[i], g)
		}
		if err := l.ewCheckBindable(name, names[i], t); err != nil {
			return err
		}
	}
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if ts[i].Buf.Shares(ts[j].Buf) {
				return fmt.Errorf("kernels: %s: %s and %s are the same buffer %q", name, names[i], names[j], ts[i].Label())
			}
		}
	}
	return nil
}

func (l *Library) poolBuild(name, entry string, g PoolGeom, bufs []*gpu.Buffer, n, cost int) (*Op, error) {
	wg := l.ewWorkgroupSize()
	return l.build(opSpec{
		name: name, file: "pool.wgsl", entry: entry,
		consts:  map[string]float64{"COUNT_PAD": overrideBool(g.CountPad), "wg": float64(wg)},
		buffers: bufs,
		params:  g.params(n),
		grid:    l.ewGrid(n, cost, wg),
	})
}

// poolWindows calls f(output element, input element) for every in-image tap.
func poolWindows(g PoolGeom, f func(o, i int)) {
	for p := 0; p < g.N; p++ {
		for oh := 0; oh < g.OH; oh++ {
			for ow := 0; ow < g.OW; ow++ {
				o := (p*g.OH+oh)*g.OW + ow
				for kh := 0; kh < g.KH; kh++ {
					ih := oh*g.SH - g.PadT + kh*g.DH
					for kw := 0; kw < g.KW; kw++ {
						iw := ow*g.SW - g.PadL + kw*g.DW
						if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
							f(o, (p*g.H+ih)*g.W+iw)
						}
					}
				}
			}
		}
	}
}

// RefPoolCount is the divisor of average pooling at output (oh, ow).
func RefPoolCount(g PoolGeom, oh, ow int) float64 {
	count := func(o, s, pad, k, d, n, padEnd int) int {
		c := 0
		for t := 0; t < k; t++ {
			i := o*s - pad + t*d
			if g.CountPad && i < n+padEnd || !g.CountPad && i >= 0 && i < n {
				c++
			}
		}
		return c
	}
	return float64(max(count(oh, g.SH, g.PadT, g.KH, g.DH, g.H, g.PadB)*count(ow, g.SW, g.PadL, g.KW, g.DW, g.W, g.PadR), 1))
}

// RefMaxPool is the float64 reference of MaxPool: the maxima and their in-plane indices.
func RefMaxPool(x []float64, g PoolGeom) ([]float64, []uint32) {
	y := make([]float64, g.outLen())
	idx := make([]uint32, g.outLen())
	for i := range idx {
		idx[i] = math.MaxUint32
	}
	poolWindows(g, func(o, i int) {
		if idx[o] == math.MaxUint32 || x[i] > y[o] {
			y[o], idx[o] = x[i], uint32(i%(g.H*g.W))
		}
	})
	return y, idx
}

// RefMaxPoolBackward is the float64 reference of MaxPoolBackward.
func RefMaxPoolBackward(dy []float64, idx []uint32, g PoolGeom) []float64 {
	dx := make([]float64, g.inLen())
	for o, k := range idx {
		if k != math.MaxUint32 {
			dx[(o/(g.OH*g.OW))*g.H*g.W+int(k)] += dy[o]
		}
	}
	return dx
}

// RefAvgPool is the float64 reference of AvgPool.
func RefAvgPool(x []float64, g PoolGeom) []float64 {
	y := make([]float64, g.outLen())
	poolWindows(g, func(o, i int) { y[o] += x[i] })
	for o := range y {
		y[o] /= RefPoolCount(g, (o/g.OW)%g.OH, o%g.OW)
	}
	return y
}

// RefAvgPoolBackward is the float64 reference of AvgPoolBackward.
func RefAvgPoolBackward(dy []float64, g PoolGeom) []float64 {
	dx := make([]float64, g.inLen())
	poolWindows(g, func(o, i int) { dx[i] += dy[o] / RefPoolCount(g, (o/g.OW)%g.OH, o%g.OW) })
	return dx
}
