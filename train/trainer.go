package train

import (
	"encoding/binary"
	"fmt"
	"math"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// Trainer trains a Network with one queue submission per iteration: forward trajectories,
// loss, backward and Adam are recorded into one command buffer. Scalars come back through
// a ring of map-read buffers a few iterations late, so the host never waits on the GPU
// in the loop.
type Trainer struct {
	Cfg Config
	Lib *kernels.Library
	Net *Network
	// Dispatches is the number of compute dispatches of the last iteration, all of them
	// in one submission (the throughput notes in BENCHMARKS.md count them).
	Dispatches int
	// Progress, when set, is called after each batch of a long phase (phase "sampling"
	// or "EUBO") with the trajectories done and the total. An error it returns ends the
	// phase with that error: how a command shows an ETA and stops on a signal.
	Progress func(phase string, done, total int) error
	graph    *Graph
	opt      Options
	// labels are the conditions of the rows of every training batch (amortised
	// samplers: row b has condition b mod Classes; nil otherwise).
	labels []int

	// Replay (Cfg.BothWays): the backward-trajectory graph, the buffer of forward terminal
	// states (D_buffer) and the draw of a batch from it into the backward graph's Z[T].
	// block is the replay unit in rows: 1, or Classes for an amortised sampler, whose
	// buffer holds whole batches in their row order (buffer row r has condition r mod
	// Classes), drawn in blocks of Classes consecutive rows so that every drawn row keeps
	// the condition of the row it fills.
	back   *Graph
	buffer *replayBuffer
	replay *bufferDraw
	block  int
	ls     *localSearch
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
	LogZ      float64 // the learned log Z (TB, RTB; amortised: the mean over conditions)
	MeanDelta float64 // mean of log p_F − log p_B − log R: −ELBO of the behaviour batch
}

// ringSize is how many iterations the host's view of the scalars may lag.
const ringSize = 4

// NewTrainer builds the network and the training graph for reward (an unconditional
// sampler trained with TB or VarGrad).
func NewTrainer(l *kernels.Library, dim int, cfg Config, reward RewardFunc) (*Trainer, error) {
	return NewTrainerWith(l, dim, cfg, Options{Reward: reward})
}

// CondRewardFunc gives the reward of a batch whose row b has condition labels[b] (an
// amortised sampler's target family: e.g. a classifier's p(y_b | f(z))^β per row).
// Graphs ask for it once with their rows' conditions and use the RewardFunc it returns
// for every call site; a reward may build one shared graph per distinct labels slice.
type CondRewardFunc func(labels []int) RewardFunc

// Unconditional turns a reward that does not depend on the condition into a
// CondRewardFunc (tests, or conditions that only the network sees).
func Unconditional(r RewardFunc) CondRewardFunc { return func([]int) RewardFunc { return r } }

// Options are what a trainer needs besides its configuration.
type Options struct {
	// Reward is the target of an unconditional sampler (Cfg.Classes = 0); CondReward
	// the target family of an amortised one (Cfg.Classes > 0). Exactly one is set.
	Reward     RewardFunc
	CondReward CondRewardFunc
	// Prior is the frozen prior sampler of relative TB (Cfg.Objective = RTB): an
	// unconditional network without the Langevin drift, trained with the same Steps
	// and Sigma2. The trainer's network starts as a copy of it (the shared
	// parameters; an amortised network's condition embedding keeps its own init) and
	// the reward must be the constraint alone, log r(x): the target is
	// p^prior(x)·r(x), and the loss
	//
	//	L = (log Z + log p_F(τ) − log p_F^prior(τ) − log r(x))²
	//
	// is trajectory balance with log p_F^prior in place of log p_B + log p(x). The
	// trainer saves the prior's parameters in its checkpoints (Checkpoint.RTBPrior)
	// but does not release it: release it after the trainer.
	Prior *Network
}

// NewTrainerWith builds a trainer from options (amortised samplers, relative TB).
func NewTrainerWith(l *kernels.Library, dim int, cfg Config, o Options) (*Trainer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if (cfg.Classes > 0) != (o.CondReward != nil) || (o.Reward != nil) == (o.CondReward != nil) {
		return nil, fmt.Errorf("train: an unconditional sampler needs Options.Reward and an amortised one (Classes > 0) Options.CondReward; the configuration has %d conditions", cfg.Classes)
	}
	if (cfg.Objective == kernels.RTB) != (o.Prior != nil) {
		return nil, fmt.Errorf("train: relative TB needs a prior sampler, and only relative TB uses one (objective %v, prior given: %v)", cfg.Objective, o.Prior != nil)
	}
	net, err := NewNetworkFor(l.Device(), dim, cfg)
	if err != nil {
		return nil, err
	}
	t := &Trainer{Cfg: cfg, Lib: l, Net: net, opt: o, labels: TrainingLabels(cfg.Batch, cfg.Classes)}
	if o.Prior != nil {
		if err := net.CopyFrom(o.Prior); err != nil {
			net.Release()
			return nil, fmt.Errorf("train: relative TB starts from the prior sampler: %w", err)
		}
	}
	if err := t.init(); err != nil {
		t.Release()
		return nil, err
	}
	return t, nil
}

// rewardFor is the reward of a batch with the given row conditions.
func (t *Trainer) rewardFor(labels []int) RewardFunc {
	if t.opt.CondReward != nil {
		return t.opt.CondReward(labels)
	}
	return t.opt.Reward
}

// graphOptions are the options of the trainer's graphs of batch rows with labels.
func (t *Trainer) graphOptions(train, backward bool, labels []int) GraphOptions {
	return GraphOptions{Train: train, Backward: backward, Labels: labels, Prior: t.opt.Prior}
}

// Prior is the frozen prior sampler of relative TB (nil otherwise).
func (t *Trainer) Prior() *Network { return t.opt.Prior }

// Labels are the conditions of the training batch's rows (nil: unconditional).
func (t *Trainer) Labels() []int { return t.labels }

func (t *Trainer) init() error {
	l, d := t.Lib, t.Lib.Device()
	var err error
	if t.graph, err = NewGraphWith(l, t.Net, t.Cfg, t.Cfg.Batch, t.rewardFor(t.labels), t.graphOptions(true, false, t.labels)); err != nil {
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
	if t.Cfg.learnsLogZ() {
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

// IterationPath says how the training iterations run: "fused", or "op by op" and why.
func (t *Trainer) IterationPath() string {
	if t.graph.Fused() {
		return "fused"
	}
	return "op by op: " + t.graph.FusedReason()
}

// Terminal is the device tensor [Batch, d] that holds the latest training batch's
// terminal states z_T (the viewer draws it without a readback).
func (t *Trainer) Terminal() *kernels.Tensor { return t.graph.Z[t.Cfg.Steps] }

// initReplay builds the replay buffer and the backward-trajectory training graph.
func (t *Trainer) initReplay() error {
	l, d, B := t.Lib, t.Net.Dim, t.Cfg.Batch
	var err error
	if t.back, err = NewGraphWith(l, t.Net, t.Cfg, B, t.rewardFor(t.labels), t.graphOptions(true, true, t.labels)); err != nil {
		return err
	}
	// The buffer holds whole batches: capacity rounded down to a multiple of the batch.
	t.block = max(1, t.Cfg.Classes)
	if t.buffer, err = newReplayBuffer(l, "replay buffer", t.Cfg.Buffer/B*B, d, t.block); err != nil {
		return err
	}
	t.replay, err = newBufferDraw(l, t.buffer, t.back.Z[t.Cfg.Steps], t.Cfg.Rank, t.Cfg.Seed^0xb0ff)
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
	if t.ls != nil && it > 0 && it%t.Cfg.LS.Every == 0 && t.buffer.inserted >= t.Cfg.Batch {
		if err := t.runLocalSearch(); err != nil {
			return st, false, fmt.Errorf("train: local search at iteration %d: %w", it, err)
		}
	}
	g := t.graph
	replay := t.Cfg.BothWays && it%2 == 1 && t.buffer.inserted >= t.Cfg.Batch
	// Replay trains on local search's states once it has made some (as in the published
	// runs), else on the forward samples.
	draw := t.replay
	if replay && t.ls != nil && t.ls.buf.inserted >= t.Cfg.Batch {
		draw = t.ls.replay
	}
	if replay {
		g = t.back
		if err := draw.set(t.Lib, uint32(it)); err != nil {
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
		draw.record(r)
	}
	g.RecordForward(r)
	g.RecordBackward(r)
	for _, a := range t.opts {
		r.Record(a.Ops()...)
	}
	t.Dispatches = r.Dispatches()
	enc := r.Encoder()
	if t.Cfg.BothWays && !replay {
		// FIFO: this batch's terminal states overwrite the oldest batch in the buffer.
		t.buffer.push(r, g.Z[t.Cfg.Steps], g.LogR)
	}
	// Loss statistics and the learned log Z of this iteration, for the host to read later
	// (amortised: the mean over the conditions, which the loss writes into stats[1]).
	enc.CopyBufferToBuffer(g.Stats.Buf, 0, t.ring[slot], 0, 16)
	if t.Net.Classes > 0 {
		enc.CopyBufferToBuffer(g.Stats.Buf, 4, t.ring[slot], 16, 4)
	} else {
		enc.CopyBufferToBuffer(t.Net.LogZ.Value.Buf, 0, t.ring[slot], 16, 4)
	}
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
			return st, fmt.Errorf("train: iteration %d: %s is %v: %s; stopping", st.Iter, v.name, v.x, t.nonFiniteSource())
		}
	}
	return st, nil
}

// nonFiniteSource says where a non-finite loss came from, read from the latest batch:
// the reward (log R of some terminal states), the drift network's parameters (training
// diverged), or neither found (the trajectories themselves).
func (t *Trainer) nonFiniteSource() string {
	count := func(x *kernels.Tensor) (bad, n int, first float32) {
		v, err := x.Read()
		if err != nil {
			return 0, 0, 0
		}
		for _, f := range v {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				if bad == 0 {
					first = f
				}
				bad++
			}
		}
		return bad, len(v), first
	}
	for _, g := range []*Graph{t.graph, t.back} {
		if g == nil {
			continue
		}
		if bad, n, first := count(g.LogR); bad > 0 {
			return fmt.Sprintf("the reward returned %v for %d of %d terminal states of the latest batch (for a WGSL constraint: its log_reward)", first, bad, n)
		}
	}
	for _, p := range t.Net.Params() {
		if bad, n, first := count(p.Value); bad > 0 {
			return fmt.Sprintf("the drift network diverged: %d of %d values of %s are %v (try a smaller --lr)", bad, n, p.Name, first)
		}
	}
	return "log R and the parameters are finite: the trajectories overflowed (try a smaller --lr or --sigma2)"
}

// Flush waits for the scalars of every submitted iteration and returns them in order.
func (t *Trainer) Flush() ([]Stats, error) {
	if len(t.pending) == 0 {
		return nil, nil // released before the stats ring was built (a failed NewTrainer)
	}
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
	t.replay.release()
	t.buffer.release()
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
// log w = log R(z) + log p_B(τ|z) − log p_F(τ) (relative TB: log r(z) + log p_F^prior(τ)
// − log p_F(τ), the weight against the target p^prior·r) and, for an amortised sampler,
// each sample's condition.
type Samples struct {
	Z      [][]float64
	LogW   []float64
	Labels []int
}

// Sample draws n on-policy trajectories (no exploration) in batches of the training
// batch size and returns their terminal states and log weights. An amortised sampler
// draws the conditions in turn (sample i has condition i mod Classes).
func (t *Trainer) Sample(n int, stream uint32) (*Samples, error) {
	if t.Net.Classes > 0 {
		labels := make([]int, n)
		for i := range labels {
			labels[i] = i % t.Net.Classes
		}
		return t.SampleConditions(labels, stream)
	}
	return t.sample(nil, n, stream)
}

// SampleConditions draws one on-policy trajectory per entry of labels from an amortised
// sampler, sample i conditioned on labels[i]: batches of up to the training batch size,
// one SDE pass each (a graph per distinct batch of conditions).
func (t *Trainer) SampleConditions(labels []int, stream uint32) (*Samples, error) {
	if t.Net.Classes == 0 {
		return nil, fmt.Errorf("train: the sampler is not amortised: it has no conditions to sample")
	}
	for i, y := range labels {
		if y < 0 || y >= t.Net.Classes {
			return nil, fmt.Errorf("train: condition %d (sample %d) is out of range: the sampler has conditions 0..%d", y, i, t.Net.Classes-1)
		}
	}
	return t.sample(labels, len(labels), stream)
}

func (t *Trainer) sample(labels []int, n int, stream uint32) (*Samples, error) {
	if n < 1 {
		return nil, fmt.Errorf("train: sampling %d trajectories", n)
	}
	cfg := t.Cfg
	cfg.Seed ^= 0x5a5a_5a5a_5a5a // evaluation noise independent of the training noise
	B := min(cfg.Batch, n)
	if labels == nil {
		// Unconditional: the training batch size, as always (reproducible streams).
		B = cfg.Batch
	}
	graphs := map[string]*Graph{}
	defer func() {
		for _, g := range graphs {
			g.Release()
		}
	}()
	out := &Samples{}
	d := t.Net.Dim
	for chunk, start := uint32(0), 0; start < n; chunk, start = chunk+1, start+B {
		rows := min(B, n-start)
		var lab []int
		if labels != nil {
			// The last chunk is padded with its own conditions repeated; padding is dropped.
			lab = make([]int, B)
			for b := range lab {
				lab[b] = labels[start+b%rows]
			}
		}
		key := fmt.Sprint(lab)
		g, ok := graphs[key]
		if !ok {
			var err error
			if g, err = NewGraphWith(t.Lib, t.Net, cfg, B, t.rewardFor(lab), t.graphOptions(false, false, lab)); err != nil {
				return nil, err
			}
			graphs[key] = g
		}
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
		ref, _ := g.LogRef.Read()
		lr, err := g.LogR.Read()
		if err != nil {
			return nil, err
		}
		for b := 0; b < rows; b++ {
			row := make([]float64, d)
			for j := range row {
				row[j] = float64(z[b*d+j])
			}
			out.Z = append(out.Z, row)
			out.LogW = append(out.LogW, float64(lr[b])+float64(ref[b])-float64(pf[b]))
			if lab != nil {
				out.Labels = append(out.Labels, lab[b])
			}
		}
		if err := t.progress("sampling", start+rows, n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// progress reports a long phase's advance to Progress, when set.
func (t *Trainer) progress(phase string, done, total int) error {
	if t.Progress == nil {
		return nil
	}
	return t.Progress(phase, done, total)
}

// EUBO estimates the evidence upper bound from exact samples xs of the target, one
// backward (Brownian-bridge) trajectory each:
//
//	EUBO = mean_i [ log R(x_i) + log p_B(τ_i|x_i) − log p_F(τ_i) ] ≥ log Z
//
// The gap EUBO − log Z measures the modes the sampler misses (the ELBO cannot see them).
func (t *Trainer) EUBO(xs [][]float64, stream uint32) (float64, error) {
	if t.Net.Classes > 0 {
		return 0, fmt.Errorf("train: EUBO of an amortised sampler is not implemented (it needs each sample's condition)")
	}
	cfg := t.Cfg
	cfg.Seed ^= 0xe0b0
	g, err := NewGraphWith(t.Lib, t.Net, cfg, cfg.Batch, t.opt.Reward, t.graphOptions(false, true, nil))
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
		pb, _ := g.LogRef.Read()
		lr, _ := g.LogR.Read()
		for b := 0; b < n; b++ {
			sum += float64(lr[b]) + float64(pb[b]) - float64(pf[b])
		}
		if err := t.progress("EUBO", start+n, len(xs)); err != nil {
			return 0, err
		}
	}
	return sum / float64(len(xs)), nil
}
