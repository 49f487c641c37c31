package posterior

import (
	"fmt"

	"osds/kernels"
	"osds/nn"
	"osds/priors"
)

// Decoder pushes a batch of noise vectors through a prior on the GPU, x = f(z), into a
// tensor of images that stays on the device: the live view draws the samples of a
// prior-space sampler from it without reading anything back.
type Decoder struct {
	net     *nn.Net
	H, W, C int // image shape: Images() rows are NHWC H×W×C values in [0, 1]
}

// NewDecoder records f on z [B, d] (d = the prior's latent dimension). z stays the
// caller's; its contents are read whenever Ops run.
func NewDecoder(l *kernels.Library, prior priors.Prior, z *kernels.Tensor) (*Decoder, error) {
	if len(z.Shape) != 2 || z.Cols() != prior.LatentDim() {
		return nil, fmt.Errorf("posterior: decoder input %q is %v, want [batch, %d] (the prior's latent dimension)", z.Label(), z.Shape, prior.LatentDim())
	}
	net, err := prior.Generator().Build(l, z, nn.NetOptions{})
	if err != nil {
		return nil, err
	}
	h, w, c := prior.Image()
	if net.Y.Cols() != h*w*c {
		net.Release()
		return nil, fmt.Errorf("posterior: the prior's generator makes rows of %d values, its images are %d×%d×%d", net.Y.Cols(), h, w, c)
	}
	return &Decoder{net: net, H: h, W: w, C: c}, nil
}

// Ops are the generator's forward dispatches: run (or record) them after z changes.
func (d *Decoder) Ops() []*kernels.Op { return d.net.Forward }

// Images is f(z): [B, H·W·C].
func (d *Decoder) Images() *kernels.Tensor { return d.net.Y }

// Release frees the decoder's activations (not z).
func (d *Decoder) Release() { d.net.Release() }

// Decode returns f(z) for the rows of zs as [len(zs), D] values (NHWC rows of the prior's
// images), in batches of up to 500.
func Decode(l *kernels.Library, prior priors.Prior, zs [][]float64) ([]float32, error) {
	d := prior.LatentDim()
	n := len(zs)
	if n == 0 {
		return nil, fmt.Errorf("posterior: decode: no samples")
	}
	batch := min(n, 500)
	z, err := kernels.NewTensor(l.Device(), "decode z", batch, d)
	if err != nil {
		return nil, err
	}
	defer z.Release()
	dec, err := NewDecoder(l, prior, z)
	if err != nil {
		return nil, err
	}
	defer dec.Release()
	D := dec.Images().Cols()
	out := make([]float32, 0, n*D)
	buf := make([]float32, batch*d)
	for start := 0; start < n; start += batch {
		rows := min(batch, n-start)
		clear(buf)
		for b := 0; b < rows; b++ {
			if len(zs[start+b]) != d {
				return nil, fmt.Errorf("posterior: decode: sample %d has %d coordinates, want %d", start+b, len(zs[start+b]), d)
			}
			for j, v := range zs[start+b] {
				buf[b*d+j] = float32(v)
			}
		}
		if err := z.Write(buf); err != nil {
			return nil, err
		}
		if err := l.Run(dec.Ops()...); err != nil {
			return nil, err
		}
		y, err := dec.Images().Read()
		if err != nil {
			return nil, err
		}
		out = append(out, y[:rows*D]...)
	}
	return out, nil
}
