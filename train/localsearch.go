package train

import (
	"fmt"
	"math"

	"osds/kernels"
)

// localSearch holds the MALA chains of local search (Cfg.LS), their ops, and the buffer
// of their states (D_LS) that replay trains on once it holds a batch.
type localSearch struct {
	x, g, lr, xp, gp, lrp, acc *kernels.Tensor
	start                      *bufferDraw // starting states from the forward buffer into x
	buf                        *replayBuffer
	replay                     *bufferDraw // a replay batch from buf into the backward graph
	here, there                *Reward     // log R and ∇log R at the states and at the proposals
	step                       *kernels.MALAStep
	eta                        float64
	calls                      int
}

func (t *Trainer) initLocalSearch() error {
	l, d, m := t.Lib, t.Net.Dim, t.Cfg.Batch
	ls := &localSearch{eta: t.Cfg.LS.Eta}
	t.ls = ls
	mk := func(label string, shape ...int) (*kernels.Tensor, error) {
		return kernels.NewTensor(l.Device(), label, shape...)
	}
	var err error
	for _, p := range []struct {
		dst   **kernels.Tensor
		name  string
		shape []int
	}{{&ls.x, "ls x", []int{m, d}}, {&ls.g, "ls grad", []int{m, d}}, {&ls.lr, "ls logr", []int{m}},
		{&ls.xp, "ls proposal", []int{m, d}}, {&ls.gp, "ls proposal grad", []int{m, d}}, {&ls.lrp, "ls proposal logr", []int{m}},
		{&ls.acc, "ls accepted", []int{m}}} {
		if *p.dst, err = mk(p.name, p.shape...); err != nil {
			return err
		}
	}
	// Chains start from forward-buffer states drawn in blocks (see Trainer.block): chain b
	// keeps the condition of training row b, the conditions its reward is built for. The
	// chains' states enter D_LS in the same row order.
	if ls.start, err = newBufferDraw(l, t.buffer, ls.x, t.Cfg.Rank, t.Cfg.Seed^0x15); err != nil {
		return err
	}
	if ls.buf, err = newReplayBuffer(l, "local-search buffer", t.buffer.rows(), d, t.block); err != nil {
		return err
	}
	if ls.replay, err = newBufferDraw(l, ls.buf, t.back.Z[t.Cfg.Steps], t.Cfg.Rank, t.Cfg.Seed^0x1b5); err != nil {
		return err
	}
	reward := t.rewardFor(t.labels)
	if ls.here, err = reward(l, ls.lr, ls.g, ls.x); err != nil {
		return err
	}
	if ls.there, err = reward(l, ls.lrp, ls.gp, ls.xp); err != nil {
		return err
	}
	ls.step, err = l.NewMALAStep(ls.x, ls.g, ls.lr, ls.xp, ls.gp, ls.lrp, ls.acc, kernels.MALAParams{Seed: t.Cfg.Seed ^ 0x1a1a, Eta: ls.eta, Beta: t.Cfg.LS.Beta})
	return err
}

// runLocalSearch draws Batch states from the forward buffer (uniformly or by rank), runs
// the MALA chains and, after burn-in, pushes their states after every step into D_LS (a
// rejected proposal repeats its chain's state, as an MCMC sample should; the published
// code keeps accepted proposals only). It waits on the GPU every 5 steps to adapt η from
// the acceptance rate, which is why it runs only every LS.Every iterations.
func (t *Trainer) runLocalSearch() error {
	ls, cfg := t.ls, t.Cfg.LS
	if err := ls.start.set(t.Lib, uint32(ls.calls)); err != nil {
		return err
	}
	r, err := t.Lib.NewRecorder("local search start")
	if err != nil {
		return err
	}
	ls.start.record(r)
	r.Record(ls.here.Ops...)
	r.Encoder().ClearBuffer(ls.acc.Buf, 0, uint64(4*ls.acc.Len()))
	if err := r.Submit(); err != nil {
		return err
	}
	prevAcc := 0.0
	const adaptEvery = 5
	for k := 0; k < cfg.Steps; k += adaptEvery {
		r, err := t.Lib.NewRecorder("local search")
		if err != nil {
			return err
		}
		for s := k; s < min(k+adaptEvery, cfg.Steps); s++ {
			// One op set per step: each step's parameters differ, and a uniform write
			// holds for a whole submission, so steps go one submission each.
			if err := ls.step.Update(kernels.MALAParams{Step: s, Stream: uint32(ls.calls), Seed: t.Cfg.Seed ^ 0x1a1a, Eta: ls.eta, Beta: cfg.Beta}); err != nil {
				return err
			}
			r.Record(ls.step.Propose())
			r.Record(ls.there.Ops...)
			r.Record(ls.step.Accept())
			if err := r.Submit(); err != nil {
				return err
			}
			if r, err = t.Lib.NewRecorder("local search"); err != nil {
				return err
			}
			if s >= cfg.Burn {
				ls.buf.push(r, ls.x, ls.lr)
			}
		}
		if err := r.Submit(); err != nil {
			return err
		}
		acc, err := ls.acc.Read()
		if err != nil {
			return err
		}
		total := 0.0
		for _, a := range acc {
			total += float64(a)
		}
		rate := (total - prevAcc) / float64(len(acc)*adaptEvery)
		prevAcc = total
		if rate > 0.574 {
			ls.eta *= 1.01
		} else {
			ls.eta *= 0.99
		}
		if math.IsNaN(ls.eta) || ls.eta <= 0 {
			return fmt.Errorf("train: local search step size became %v", ls.eta)
		}
	}
	ls.calls++
	return nil
}

func (ls *localSearch) release() {
	if ls == nil {
		return
	}
	for _, x := range []*kernels.Tensor{ls.x, ls.g, ls.lr, ls.xp, ls.gp, ls.lrp, ls.acc} {
		x.Release()
	}
	ls.start.release()
	ls.replay.release()
	ls.buf.release()
	ls.here.Release()
	ls.there.Release()
	if ls.step != nil {
		ls.step.Release()
	}
}
