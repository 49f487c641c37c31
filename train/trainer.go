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

	// Replay (Cfg.BothWays): backward-trajectory graph, buffer of terminal states, and the
	// ops that draw a batch of buffer rows into the backward graph's Z[T].
	back     *Graph
	buffer   *kernels.Tensor
	idx      *kernels.IndexTensor
	draw     *kernels.Op
	gather   *kernels.Op
	inserted int // terminal states pushed into the buffer so far
	ls       *localSearch
	opts     []*kernels.Adam
	moment   []*kernels.Tensor
	iter     int

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
	net, err := NewNetwork(l.Device(), dim, cfg.Width, cfg.Harmonics, rng, cfg.Langevin)
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
	if t.Cfg.BothWays {
		if err := t.initReplay(); err != nil {
			return err
		}
		if t.Cfg.LS.Every > 0 {
			if err := t.initLocalSearch(); err != nil {
				return err
			}
		}
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

// initReplay builds the replay buffer and the backward-trajectory training graph.
func (t *Trainer) initReplay() error {
	l, d, B := t.Lib, t.Net.Dim, t.Cfg.Batch
	var err error
	if t.back, err = NewBackwardGraph(l, t.Net, t.Cfg, B, t.reward, true); err != nil {
		return err
	}
	// The buffer holds whole batches: capacity rounded down to a multiple of the batch.
	rows := t.Cfg.Buffer / B * B
	if t.buffer, err = kernels.NewTensor(l.Device(), "replay buffer", rows, d); err != nil {
		return err
	}
	if t.idx, err = kernels.NewIndexTensor(l.Device(), "replay draw", B, rows); err != nil {
		return err
	}
	if t.draw, err = l.RandIndex(t.idx, rows, t.Cfg.Seed^0xb0ff, 0); err != nil {
		return err
	}
	t.gather, err = l.Gather(t.back.Z[t.Cfg.Steps], t.buffer, t.idx)
	return err
}

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
	if t.ls != nil && it > 0 && it%t.Cfg.LS.Every == 0 && t.inserted >= t.Cfg.Batch {
		if err := t.runLocalSearch(); err != nil {
			return st, false, fmt.Errorf("train: local search at iteration %d: %w", it, err)
		}
	}
	g := t.graph
	replay := t.Cfg.BothWays && it%2 == 1 && t.inserted >= t.Cfg.Batch
	if replay {
		g = t.back
		filled := min(t.inserted, t.buffer.Rows())
		if err := t.draw.SetParams(t.Lib.Device(), kernels.RandIndexParams(t.Cfg.Batch, filled, t.Cfg.Seed^0xb0ff, uint32(it), 0)); err != nil {
			return st, false, err
		}
	}
	if err := g.SetNoise(uint32(it), t.explore(it)); err != nil {
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
	if replay {
		r.Record(t.draw, t.gather)
	}
	g.RecordForward(r)
	g.RecordBackward(r)
	for _, a := range t.opts {
		r.Record(a.Ops()...)
	}
	enc := r.Encoder()
	if t.Cfg.BothWays && !replay {
		// FIFO: this batch's terminal states overwrite the oldest batch in the buffer.
		t.pushToBuffer(r, g.Z[t.Cfg.Steps])
	}
	// Loss statistics and the learned log Z of this iteration, for the host to read later.
	enc.CopyBufferToBuffer(g.Stats.Buf, 0, t.ring[slot], 0, 16)
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
	if t.back != nil {
		t.back.Release()
	}
	t.ls.release()
	t.draw.Release()
	t.gather.Release()
	t.buffer.Release()
	if t.idx != nil {
		t.idx.Buf.Release()
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

// EUBO estimates the evidence upper bound from exact samples xs of the target, one
// backward (Brownian-bridge) trajectory each:
//
//	EUBO = mean_i [ log R(x_i) + log p_B(τ_i|x_i) − log p_F(τ_i) ] ≥ log Z
//
// The gap EUBO − log Z measures the modes the sampler misses (the ELBO cannot see them).
func (t *Trainer) EUBO(xs [][]float64, stream uint32) (float64, error) {
	cfg := t.Cfg
	cfg.Seed ^= 0xe0b0
	g, err := NewBackwardGraph(t.Lib, t.Net, cfg, cfg.Batch, t.reward, false)
	if err != nil {
		return 0, err
	}
	defer g.Release()
	d := t.Net.Dim
	sum := 0.0
	for start, chunk := 0, uint32(0); start < len(xs); start, chunk = start+cfg.Batch, chunk+1 {
		n := min(cfg.Batch, len(xs)-start)
		zs := make([]float32, cfg.Batch*d)
		for b := 0; b < cfg.Batch; b++ {
			x := xs[start+min(b, n-1)] // the last chunk is padded with repeats, not counted
			if len(x) != d {
				return 0, fmt.Errorf("train: EUBO: sample %d has %d coordinates, want %d", start+b, len(x), d)
			}
			for j := range x {
				zs[b*d+j] = float32(x[j])
			}
		}
		if err := g.Z[cfg.Steps].Write(zs); err != nil {
			return 0, err
		}
		if err := g.SetNoise(stream<<16|chunk, 0); err != nil {
			return 0, err
		}
		r, err := t.Lib.NewRecorder("eubo")
		if err != nil {
			return 0, err
		}
		g.RecordForward(r)
		if err := r.Submit(); err != nil {
			return 0, err
		}
		pf, err := g.LogPF.Read()
		if err != nil {
			return 0, err
		}
		pb, _ := g.LogPB.Read()
		lr, _ := g.LogR.Read()
		for b := 0; b < n; b++ {
			sum += float64(lr[b]) + float64(pb[b]) - float64(pf[b])
		}
	}
	return sum / float64(len(xs)), nil
}
