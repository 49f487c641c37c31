package priors

import (
	"fmt"
	"math/rand/v2"

	"osds/gpu"
	"osds/kernels"
)

// Batches serves a dataset as GPU minibatches: images X [B, H·W] (pixels in [0, 1]) and
// labels Y. Training order is a fresh permutation every epoch from a seeded generator;
// with Shuffle off the batches walk the dataset in order (evaluation).
type Batches struct {
	X     *kernels.Tensor
	Y     *kernels.IndexTensor
	ds    *Dataset
	rng   *rand.Rand
	order []int
	pos   int
	epoch int
	// host staging, reused every batch
	px  []float32
	lab []uint32
}

// NewBatches allocates the batch tensors. shuffle = false requires batch to divide the
// dataset size, so that an evaluation sees every example exactly once.
func NewBatches(d *gpu.Device, ds *Dataset, batch int, shuffle bool, seed uint64) (*Batches, error) {
	if batch < 1 || batch > ds.N {
		return nil, fmt.Errorf("priors: batch size %d for %s with %d examples (want 1…%d)", batch, ds.Name, ds.N, ds.N)
	}
	if !shuffle && ds.N%batch != 0 {
		return nil, fmt.Errorf("priors: evaluation batch %d does not divide the %d examples of %s", batch, ds.N, ds.Name)
	}
	pixels := ds.Height * ds.Wd
	x, err := kernels.NewTensor(d, ds.Name+" images", batch, pixels)
	if err != nil {
		return nil, err
	}
	y, err := kernels.NewIndexTensor(d, ds.Name+" labels", batch, 10)
	if err != nil {
		x.Release()
		return nil, err
	}
	b := &Batches{X: x, Y: y, ds: ds, order: make([]int, ds.N), px: make([]float32, batch*pixels), lab: make([]uint32, batch)}
	for i := range b.order {
		b.order[i] = i
	}
	if shuffle {
		b.rng = rand.New(rand.NewPCG(seed, 0xba7c4e5))
		b.rng.Shuffle(len(b.order), func(i, j int) { b.order[i], b.order[j] = b.order[j], b.order[i] })
	}
	return b, nil
}

// Size is the batch size.
func (b *Batches) Size() int { return len(b.lab) }

// Epoch is the number of completed passes over the data.
func (b *Batches) Epoch() int { return b.epoch }

// Next uploads the next batch (queue writes are ordered with the submissions around
// them). A batch never straddles epochs: the tail that does not fill a batch is left to
// the next permutation.
func (b *Batches) Next() error {
	n := len(b.lab)
	if b.pos+n > len(b.order) {
		b.pos = 0
		b.epoch++
		if b.rng != nil {
			b.rng.Shuffle(len(b.order), func(i, j int) { b.order[i], b.order[j] = b.order[j], b.order[i] })
		}
	}
	pixels := b.ds.Height * b.ds.Wd
	for i := 0; i < n; i++ {
		k := b.order[b.pos+i]
		copy(b.px[i*pixels:(i+1)*pixels], b.ds.Images[k*pixels:(k+1)*pixels])
		b.lab[i] = uint32(b.ds.Labels[k])
	}
	b.pos += n
	if b.pos == len(b.order) && b.rng == nil {
		b.pos, b.epoch = 0, b.epoch+1
	}
	if err := b.X.Write(b.px); err != nil {
		return err
	}
	return b.Y.Write(b.lab)
}

// Labels returns the host copy of the current batch's labels.
func (b *Batches) Labels() []uint32 { return b.lab }

// Release frees the batch tensors.
func (b *Batches) Release() {
	b.X.Release()
	b.Y.Release()
}
