package main

import (
	"bytes"
	"image/png"
	"math"

	"osds/kernels"
	"osds/nn"
	"osds/posterior"
	"osds/priors"
	"osds/viewer"
)

// samplesView is how a window shows a batch of terminal states z [B, d]: for a posterior
// in a prior's noise space, the images f(z), decoded on the GPU into a buffer the window
// draws from (no readback); for a synthetic target, the density of z's first two
// coordinates.
type samplesView struct {
	l      *kernels.Library
	prior  priors.Prior // nil: the density view
	extent [4]float32   // density view: the plotted region [x0, x1, y0, y1] at zoom 1
	cols   int          // image grid columns; 0 picks a square grid

	z   *kernels.Tensor
	dec *posterior.Decoder
}

// newSamplesView picks the view of a trainer's target: images when setup (the posterior
// of a prior) is given, else the density over the target's extent. An amortised sampler
// of classes conditions (row b has condition b mod classes) shows one class per column.
func newSamplesView(l *kernels.Library, setup *posterior.Setup, target string, classes int) *samplesView {
	v := &samplesView{l: l, cols: classes}
	if setup != nil {
		v.prior = setup.Prior
		return v
	}
	var ok bool
	if v.extent, ok = viewExtents[target]; !ok {
		v.extent = [4]float32{-5, 5, -5, 5}
	}
	return v
}

// images reports whether the view decodes images (and so has no zoom).
func (v *samplesView) images() bool { return v.prior != nil }

// defaultShown is how many of a batch of B samples to show at first: a 10×10 grid of
// images (small enough to see each one), or every point of a density.
func (v *samplesView) defaultShown(B int) int {
	if v.images() {
		return min(B, 100)
	}
	return B
}

// bind makes z the batch shown, rebuilding the decoder when z is a new tensor.
func (v *samplesView) bind(z *kernels.Tensor) error {
	if z == v.z {
		return nil
	}
	v.release()
	v.z = z
	if !v.images() {
		return nil
	}
	var err error
	v.dec, err = posterior.NewDecoder(v.l, v.prior, z)
	return err
}

// update decodes the current z; call it whenever z has changed, before drawing.
func (v *samplesView) update() error {
	if v.dec == nil {
		return nil
	}
	return v.l.Run(v.dec.Ops()...)
}

// gridCols is the number of grid columns for n images.
func (v *samplesView) gridCols(n int) int {
	if v.cols > 0 && n >= v.cols {
		return v.cols
	}
	return int(math.Ceil(math.Sqrt(float64(n))))
}

// show points the window at the first n samples of the bound batch.
func (v *samplesView) show(w *viewer.Window, n int, linear bool, zoom float32) error {
	n = min(n, v.z.Rows())
	if !v.images() {
		e := v.extent
		for i := range e {
			e[i] /= zoom
		}
		return w.Show(v.z.Buf, viewer.Grid{N: n, W: v.z.Cols(), Density: true, Extent: e, Radius: 2.5, Linear: linear})
	}
	cols := v.gridCols(n)
	return w.Show(v.dec.Images().Buf, viewer.Grid{N: n, H: v.dec.H, W: v.dec.W, C: v.dec.C, Cols: cols, Rows: (n + cols - 1) / cols, Linear: linear})
}

// savePNG writes what the window shows as a PNG: the image grid at the images' own
// resolution (2-pixel borders), or the density rasterised at the window's plot size
// (fallback × fallback before the first frame).
func (v *samplesView) savePNG(path string, w *viewer.Window, fallback int) error {
	g := w.Grid() // the samples shown: the first g.N rows
	if v.images() {
		xs, err := v.dec.Images().Read()
		if err != nil {
			return err
		}
		D := v.dec.H * v.dec.W * v.dec.C
		return priors.WriteGridPNG(path, xs[:g.N*D], g.N, v.dec.H, v.dec.W, v.dec.C, g.Cols)
	}
	pts, err := v.z.Read()
	if err != nil {
		return err
	}
	pw, ph := w.PlotSize()
	if pw < 1 || ph < 1 { // nothing drawn yet, or minimised
		pw, ph = fallback, fallback
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, viewer.DensityImage(pts[:g.N*g.W], g.W, g, pw, ph)); err != nil {
		return err
	}
	return nn.WriteFileAtomic(path, buf.Bytes())
}

// release frees the decoder (the samples themselves belong to the trainer or graph).
func (v *samplesView) release() {
	if v == nil {
		return
	}
	if v.dec != nil {
		v.dec.Release()
		v.dec = nil
	}
	v.z = nil
}
