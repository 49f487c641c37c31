package train

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// Trainer trains a Network with one queue submission per iteration: forward trajectories,
// loss, backward and Adam are recorded into one command buffer. Scalars come back through
// a ring of map-read buffers a few iterations late, so the host never waits on the GPU
// in the loop.
type Trainer struct {
	Cfg    Config
	Lib    *kernels.Library
	Net    *Network
	graph  *Graph
	reward RewardFunc
	opts   []*kernels.Adam
	moment []*kernels.Tensor
	iter   int

	ring    []*gpu.Buffer
	pending []*gpu.MapRequest
	pendIt  []int
}

// Stats are the scalars of one iteration.
type Stats struct {
	Iter      int
	Loss      float64
	LogZ      float64 // the learned log Z (TB)
	MeanDelta float64 // mean of log p_F − log p_B − log R: −ELBO of the behaviour batch
}

// ringSize is how many iterations the host's view of the scalars may lag.
const ringSize = 4

// NewTrainer builds the network and the training graph for reward.
func NewTrainer(l *kernels.Library, dim int, cfg Config, reward RewardFunc) (*Trainer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x05d5))
	net, err := NewNetwork(l.Device(), dim, cfg.Width, cfg.Harmonics, rng)
	if err != nil {
		return nil, err
	}
	t := &Trainer{Cfg: cfg, Lib: l, Net: net, reward: reward}
	if err := t.init(); err != nil {
		t.Release()
		return nil, err
	}
	return t, nil
}

func (t *Trainer) init() error {
	l, d := t.Lib, t.Lib.Device()
	var err error
	if t.graph, err = NewGraph(l, t.Net, t.Cfg, t.Cfg.Batch, t.reward, true); err != nil {
		return err
	}
	add := func(p *nn.Param, lr float64) error {
		m, err := kernels.NewTensor(d, p.Name+".adam_m", p.Len())
		if err != nil {
			return err
		}
		v, err := kernels.NewTensor(d, p.Name+".adam_v", p.Len())
		if err != nil {
			m.Release()
			return err
		}
		t.moment = append(t.moment, m, v)
		if err := m.Fill(0); err != nil {
			return err
		}
		if err := v.Fill(0); err != nil {
			return err
		}
		cfg := kernels.DefaultAdamConfig()
		cfg.LR = lr
		a, err := l.NewAdam(p.Value, p.Grad, m, v, cfg)
		if err != nil {
			return err
		}
		t.opts = append(t.opts, a)
		return nil
	}
	for _, p := range t.Net.Params() {
		if err := add(p, t.Cfg.LR); err != nil {
			return err
		}
	}
	if t.Cfg.Objective == kernels.TB {
		if err := add(t.Net.LogZ, t.Cfg.LRLogZ); err != nil {
			return err
		}
	}
	for i := 0; i < ringSize; i++ {
		b, err := d.CreateBuffer(fmt.Sprintf("stats ring %d", i), 32, gpu.UsageMapRead|gpu.UsageCopyDst)
		if err != nil {
			return err
		}
		t.ring = append(t.ring, b)
	}
	t.pending = make([]*gpu.MapRequest, ringSize)
	t.pendIt = make([]int, ringSize)
	return nil
}

// Terminal is the device tensor [Batch, d] that holds the latest training batch's
// terminal states z_T (the viewer draws it without a readback).
func (t *Trainer) Terminal() *kernels.Tensor { return t.graph.Z[t.Cfg.Steps] }

// Iter is the number of iterations run so far.
func (t *Trainer) Iter() int { return t.iter }

// explore is the exploration std of iteration it: e·max(0, 1 − it/ExploreIters).
func (t *Trainer) explore(it int) float64 {
	if t.Cfg.Explore == 0 || t.Cfg.ExploreIters <= 0 {
		return 0
	}
	return t.Cfg.Explore * math.Max(0, 1-float64(it)/float64(t.Cfg.ExploreIters))
}

// Step runs one iteration and returns the scalars of an earlier one when they have
// arrived (ok = false while the ring fills). A NaN or Inf loss is an error naming the
// iteration.
func (t *Trainer) Step() (st Stats, ok bool, err error) {
	it := t.iter
	if err := t.graph.SetNoise(uint32(it), t.explore(it)); err != nil {
		return st, false, err
	}
	for _, a := range t.opts {
		if err := a.SetStep(it + 1); err != nil {
			return st, false, err
		}
	}
	slot := it % ringSize
	// Before the slot is reused its previous scalars must be collected.
	if t.pending[slot] != nil {
		st, err = t.collect(slot)
		if err != nil {
			return st, false, err
		}
		ok = true
	}
	r, err := t.Lib.NewRecorder(fmt.Sprintf("iteration %d", it))
	if err != nil {
		return st, ok, err
	}
	t.graph.RecordForward(r)
	t.graph.RecordBackward(r)
	for _, a := range t.opts {
		r.Record(a.Ops()...)
	}
	enc := r.Encoder()
	// Loss statistics and the learned log Z of this iteration, for the host to read later.
	enc.CopyBufferToBuffer(t.graph.Stats.Buf, 0, t.ring[slot], 0, 16)
	enc.CopyBufferToBuffer(t.Net.LogZ.Value.Buf, 0, t.ring[slot], 16, 4)
	if err := r.Submit(); err != nil {
		return st, ok, fmt.Errorf("train: iteration %d: %w", it, err)
	}
	if t.pending[slot], err = t.ring[slot].MapReadAsync(0, 32); err != nil {
		return st, ok, err
	}
	t.pendIt[slot] = it
	t.iter++
	return st, ok, nil
}

// collect reads the scalars waiting in a ring slot.
func (t *Trainer) collect(slot int) (Stats, error) {
	raw, err := t.pending[slot].Bytes()
	t.pending[slot] = nil
	if err != nil {
		return Stats{}, err
	}
	f := func(i int) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))) }
	st := Stats{Iter: t.pendIt[slot], Loss: f(0), MeanDelta: f(2), LogZ: f(4)}
	for _, v := range []struct {
		name string
		x    float64
	}{{"loss", st.Loss}, {"log Z", st.LogZ}, {"mean log-weight", st.MeanDelta}} {
		if math.IsNaN(v.x) || math.IsInf(v.x, 0) {
			return st, fmt.Errorf("train: iteration %d: %s is %v; stopping (the last good checkpoint is kept)", st.Iter, v.name, v.x)
		}
	}
	return st, nil
}

// Flush waits for the scalars of every submitted iteration and returns them in order.
func (t *Trainer) Flush() ([]Stats, error) {
	var out []Stats
	for i := 0; i < ringSize; i++ {
		slot := (t.iter + i) % ringSize
		if t.pending[slot] == nil {
			continue
		}
		st, err := t.collect(slot)
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Release frees everything the trainer built.
func (t *Trainer) Release() {
	t.Flush()
	if t.graph != nil {
		t.graph.Release()
	}
	for _, a := range t.opts {
		a.Release()
	}
	for _, m := range t.moment {
		m.Release()
	}
	for _, b := range t.ring {
		b.Release()
	}
	t.Net.Release()
}

// Samples are on-policy trajectories' terminal states with their log weights
// log w = log R(z) + log p_B(τ|z) − log p_F(τ).
type Samples struct {
	Z    [][]float64
	LogW []float64
}

// Sample draws n on-policy trajectories (no exploration) in batches of the training
// batch size and returns their terminal states and log weights.
func (t *Trainer) Sample(n int, stream uint32) (*Samples, error) {
	cfg := t.Cfg
	cfg.Seed ^= 0x5a5a_5a5a_5a5a // evaluation noise independent of the training noise
	g, err := NewGraph(t.Lib, t.Net, cfg, cfg.Batch, t.reward, false)
	if err != nil {
		return nil, err
	}
	defer g.Release()
	out := &Samples{}
	d := t.Net.Dim
	for chunk := uint32(0); len(out.LogW) < n; chunk++ {
		if err := g.SetNoise(stream<<16|chunk, 0); err != nil {
			return nil, err
		}
		r, err := t.Lib.NewRecorder("sample")
		if err != nil {
			return nil, err
		}
		g.RecordForward(r)
		if err := r.Submit(); err != nil {
			return nil, err
		}
		z, err := g.Z[cfg.Steps].Read()
		if err != nil {
			return nil, err
		}
		pf, _ := g.LogPF.Read()
		pb, _ := g.LogPB.Read()
		lr, err := g.LogR.Read()
		if err != nil {
			return nil, err
		}
		for b := 0; b < cfg.Batch && len(out.LogW) < n; b++ {
			row := make([]float64, d)
			for j := range row {
				row[j] = float64(z[b*d+j])
			}
			out.Z = append(out.Z, row)
			out.LogW = append(out.LogW, float64(lr[b])+float64(pb[b])-float64(pf[b]))
		}
	}
	return out, nil
}
