package priors

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"osds/kernels"
	"osds/nn"
)

// GridPNG encodes n images of h×w×c (NHWC rows, values in [0, 1], clamped) as one PNG
// grid with cols columns and a 2-pixel gray border between tiles. c must be 1 or 3.
func GridPNG(images []float32, n, h, w, c, cols int) ([]byte, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("priors: grid of %d-channel images (want 1 or 3)", c)
	}
	if n < 1 || cols < 1 || len(images) != n*h*w*c {
		return nil, fmt.Errorf("priors: grid of %d images of %d×%d×%d needs %d values, got %d", n, h, w, c, n*h*w*c, len(images))
	}
	const border = 2
	rows := (n + cols - 1) / cols
	img := image.NewRGBA(image.Rect(0, 0, cols*(w+border)+border, rows*(h+border)+border))
	for i := range img.Pix {
		img.Pix[i] = 96
	}
	level := func(v float32) uint8 {
		if math.IsNaN(float64(v)) {
			return 0
		}
		return uint8(math.Round(255 * math.Min(1, math.Max(0, float64(v)))))
	}
	for k := 0; k < n; k++ {
		ox, oy := border+(k%cols)*(w+border), border+(k/cols)*(h+border)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				base := ((k*h+y)*w + x) * c
				r := level(images[base])
				g, b := r, r
				if c == 3 {
					g, b = level(images[base+1]), level(images[base+2])
				}
				img.Set(ox+x, oy+y, color.RGBA{r, g, b, 255})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteGridPNG writes GridPNG's image to path atomically.
func WriteGridPNG(path string, images []float32, n, h, w, c, cols int) error {
	data, err := GridPNG(images, n, h, w, c, cols)
	if err != nil {
		return err
	}
	return nn.WriteFileAtomic(path, data)
}

// sampleChunk bounds the rows of one pass in ForwardRows: a convolutional generator's
// im2col buffers grow with the rows (25,088 floats per image for the 64-channel first
// up-sampling), and WebGPU caps one storage binding at 128 MiB.
const sampleChunk = 500

// Sample draws n prior samples x = f(z), z ~ N(0, I) from Philox stream (seed, 0), and
// returns them as NHWC rows. The latents are drawn at once, so the samples do not depend
// on how the generator's passes are chunked.
func Sample(l *kernels.Library, p Prior, n int, seed uint64) ([]float32, error) {
	z, err := kernels.NewTensor(l.Device(), "prior z", n, p.LatentDim())
	if err != nil {
		return nil, err
	}
	defer z.Release()
	rnd, err := l.RandNormal(z, seed, 0)
	if err != nil {
		return nil, err
	}
	defer rnd.Release()
	if err := l.Run(rnd); err != nil {
		return nil, err
	}
	zs, err := z.Read()
	if err != nil {
		return nil, err
	}
	return ForwardRows(l, p.Generator(), zs, n)
}

// ForwardRows runs n host rows xs through the row-wise network net in passes of at
// most sampleChunk rows and returns the n output rows (for any nn.Sequential, e.g. an
// imported ONNX model as an onnx.Layer).
func ForwardRows(l *kernels.Library, net *nn.Sequential, xs []float32, n int) ([]float32, error) {
	if n < 1 || len(xs)%n != 0 {
		return nil, fmt.Errorf("priors: %d values are not %d rows", len(xs), n)
	}
	rows, cols := min(n, sampleChunk), len(xs)/n
	x, err := kernels.NewTensor(l.Device(), "chunk input", rows, cols)
	if err != nil {
		return nil, err
	}
	defer x.Release()
	built, err := net.Build(l, x, nn.NetOptions{})
	if err != nil {
		return nil, err
	}
	defer built.Release()
	dy := built.Y.Cols()
	out := make([]float32, 0, n*dy)
	buf := make([]float32, rows*cols)
	for first := 0; first < n; first += rows {
		k := min(rows, n-first)
		// A short last chunk keeps the previous rows in the rest of the input; the
		// network is row-wise, so their outputs are computed and dropped.
		copy(buf, xs[first*cols:(first+k)*cols])
		if err := x.Write(buf); err != nil {
			return nil, err
		}
		if err := l.Run(built.Forward...); err != nil {
			return nil, err
		}
		y, err := built.Y.Read()
		if err != nil {
			return nil, err
		}
		out = append(out, y[:k*dy]...)
	}
	return out, nil
}
