package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// PatchGeom is the geometry of im2col/col2im over NCHW images (shaders/patches.wgsl):
// ONNX Conv and ConvTranspose, whose strides, paddings and dilations may differ per axis.
// The image is [Batch, C, H, W]; position (ph, pw) < (PH, PW) with kernel offset (kh, kw)
// reads pixel (ph·SH − PadT + kh·DH, pw·SW − PadL + kw·DW), zero outside the image. The
// columns are [Batch·PH·PW, C·KH·KW]: row (b·PH + ph)·PW + pw, column (c·KH + kh)·KW + kw.
//
// For a convolution the image is its input and the positions its output pixels, so that
// cols·Wᵀ with the ONNX weight W [OutC, C·KH·KW] is the output [Batch·PH·PW, OutC]; for a
// transposed convolution the image is its output and the positions its input pixels:
// X [Batch·PH·PW, InC] times W [InC, C·KH·KW] gives the columns that col2im sums.
// (ConvGeom and conv.wgsl are the NHWC layout of the engine's own layers.)
type PatchGeom struct {
	Batch, C, H, W int
	PH, PW         int
	KH, KW         int
	SH, SW         int
	PadT, PadL     int
	DH, DW         int
}

// ColsShape is the shape of the columns, [Batch·PH·PW, C·KH·KW].
func (g PatchGeom) ColsShape() [2]int { return [2]int{g.Batch * g.PH * g.PW, g.C * g.KH * g.KW} }

// ImageLen is the number of elements of the image, Batch·C·H·W.
func (g PatchGeom) ImageLen() int { return g.Batch * g.C * g.H * g.W }

// Check reports a geometry with a size below 1, a negative padding, or arrays beyond
// 32-bit indexing.
func (g PatchGeom) Check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"Batch", g.Batch}, {"C", g.C}, {"H", g.H}, {"W", g.W}, {"PH", g.PH}, {"PW", g.PW}, {"KH", g.KH}, {"KW", g.KW}, {"SH", g.SH}, {"SW", g.SW}, {"DH", g.DH}, {"DW", g.DW}} {
		if f.v < 1 {
			return fmt.Errorf("kernels: patch geometry %+v: %s is %d (want ≥ 1)", g, f.name, f.v)
		}
	}
	if g.PadT < 0 || g.PadL < 0 {
		return fmt.Errorf("kernels: patch geometry %+v: negative padding", g)
	}
	cs := g.ColsShape()
	if float64(cs[0])*float64(cs[1]) > math.MaxUint32 || float64(g.ImageLen()) > math.MaxUint32 {
		return fmt.Errorf("kernels: patch geometry %+v: arrays exceed 32-bit indexing", g)
	}
	return nil
}

func (g PatchGeom) params(n int) Params {
	return Params{n, g.Batch, g.C, g.H, g.W, g.PH, g.PW, g.KH, g.KW, g.SH, g.SW, g.PadT, g.PadL, g.DH, g.DW}
}

// Im2ColNCHW returns the op writing the columns of the NCHW image img for g.
func (l *Library) Im2ColNCHW(cols, img *Tensor, g PatchGeom) (*Op, error) {
	const name = "im2col nchw"
	if err := l.patchCheck(name, g, cols, img); err != nil {
		return nil, err
	}
	return l.patchBuild(name, "im2col_nchw", false, []*gpu.Buffer{img.Buf, cols.Buf}, g, cols.Len(), 1)
}

// Col2ImNCHW returns the op overwriting the NCHW image img with the sums of the columns
// that read each pixel, plus bias [C] (or nil): the adjoint of Im2ColNCHW, a
// convolution's input gradient and a transposed convolution's forward pass.
func (l *Library) Col2ImNCHW(img, cols, bias *Tensor, g PatchGeom) (*Op, error) {
	const name = "col2im nchw"
	if err := l.patchCheck(name, g, cols, img); err != nil {
		return nil, err
	}
	biasBuf := cols.Buf // bound but not read without a bias
	if bias != nil {
		if bias.Len() != g.C {
			return nil, fmt.Errorf("kernels: %s: bias %q has %d elements, the image %d channels", name, bias.Label(), bias.Len(), g.C)
		}
		if bias.Buf.Shares(img.Buf) {
			return nil, fmt.Errorf("kernels: %s: the image and the bias are the same buffer %q", name, img.Label())
		}
		biasBuf = bias.Buf
	}
	return l.patchBuild(name, "col2im_nchw", bias != nil, []*gpu.Buffer{cols.Buf, biasBuf, img.Buf}, g, img.Len(), g.KH*g.KW)
}

func (l *Library) patchCheck(name string, g PatchGeom, cols, img *Tensor) error {
	if cols == nil || img == nil {
		return fmt.Errorf("kernels: %s: nil tensor (cols %v, image %v)", name, cols != nil, img != nil)
	}
	if err := g.Check(); err != nil {
		return fmt.Errorf("kernels: %s: %w", name, err)
	}
	cs := g.ColsShape()
	if cols.Len() != cs[0]*cs[1] {
		return fmt.Errorf("kernels: %s: cols %q is %s, want %d×%d for %+v", name, cols.Label(), ewShape(cols.Shape), cs[0], cs[1], g)
	}
	if img.Len() != g.ImageLen() {
		return fmt.Errorf("kernels: %s: image %q is %s, want %d×%d×%d×%d", name, img.Label(), ewShape(img.Shape), g.Batch, g.C, g.H, g.W)
	}
	if cols.Buf.Shares(img.Buf) {
		return fmt.Errorf("kernels: %s: cols and image are the same buffer %q", name, img.Label())
	}
	for _, t := range []*Tensor{cols, img} {
		if err := l.ewCheckBindable(name, t.Label(), t); err != nil {
			return err
		}
	}
	return nil
}

func (l *Library) patchBuild(name, entry string, bias bool, bufs []*gpu.Buffer, g PatchGeom, n, cost int) (*Op, error) {
	wg := l.ewWorkgroupSize()
	return l.build(opSpec{
		name: name, file: "patches.wgsl", entry: entry,
		consts:  map[string]float64{"HAS_BIAS": overrideBool(bias), "wg": float64(wg)},
		buffers: bufs,
		params:  g.params(n),
		grid:    l.ewGrid(n, cost, wg),
	})
}

// patchTaps calls f(image element, cols element) for every pair the geometry reads.
func patchTaps(g PatchGeom, f func(img, col int)) {
	ncols := g.C * g.KH * g.KW
	for b := 0; b < g.Batch; b++ {
		for ph := 0; ph < g.PH; ph++ {
			for pw := 0; pw < g.PW; pw++ {
				row := (b*g.PH+ph)*g.PW + pw
				for c := 0; c < g.C; c++ {
					for kh := 0; kh < g.KH; kh++ {
						ih := ph*g.SH - g.PadT + kh*g.DH
						for kw := 0; kw < g.KW; kw++ {
							iw := pw*g.SW - g.PadL + kw*g.DW
							if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
								continue
							}
							f(((b*g.C+c)*g.H+ih)*g.W+iw, row*ncols+(c*g.KH+kh)*g.KW+kw)
						}
					}
				}
			}
		}
	}
}

// RefIm2ColNCHW is the float64 reference of Im2ColNCHW.
func RefIm2ColNCHW(img []float64, g PatchGeom) []float64 {
	cs := g.ColsShape()
	cols := make([]float64, cs[0]*cs[1])
	patchTaps(g, func(i, c int) { cols[c] = img[i] })
	return cols
}

// RefCol2ImNCHW is the float64 reference of Col2ImNCHW (bias may be nil).
func RefCol2ImNCHW(cols, bias []float64, g PatchGeom) []float64 {
	img := make([]float64, g.ImageLen())
	patchTaps(g, func(i, c int) { img[i] += cols[c] })
	if bias != nil {
		for i := range img {
			img[i] += bias[(i/(g.H*g.W))%g.C]
		}
	}
	return img
}
