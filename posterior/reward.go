package posterior

import (
	"fmt"

	"osds/kernels"
	"osds/nn"
	"osds/priors"
	"osds/train"
)

// Reward is the posterior target log R(z) = log N(z; 0, I) + log r(f(z)) of a prior f and
// a constraint r, as a train.RewardFunc (Func).
//
// Memory: the prior and the constraint are recorded ONCE per batch size (a shared graph:
// input z, generator forward, constraint, and for gradients the constraint's and the
// generator's backward passes). Every call of Func adds only two small ops of its own:
// a copy of its z into the shared input, and PosteriorCombine, which reads its z and the
// shared outputs and writes its logr (and grad). With the Langevin drift the sampler
// calls Func once per SDE step; the T calls of a trajectory graph all record the same
// shared ops, which is safe because dispatches run in order within a command buffer
// (see train.Reward). The shared graphs live until Release, which must come after every
// trainer and graph built from Func has been released.
//
// An amortised reward (NewCondReward) has a Conditional family instead of one
// constraint: CondFunc gives the reward of a batch with per-row conditions, and the
// shared graphs are keyed by the batch's conditions (a training batch, its replay and
// local-search batches share one; sampling one condition builds another).
type Reward struct {
	lib        *kernels.Library
	prior      priors.Prior
	constraint Constraint
	family     Conditional
	dim, width int
	shared     map[string]*sharedGraph
}

// sharedGraph is the recorded prior-and-constraint computation for one batch size.
type sharedGraph struct {
	z           *kernels.Tensor // [B, d], the generator's input
	gen         *nn.Net         // z → x, with the input gradient J_fᵀ·DY into DX
	pass        *Pass           // the constraint on gen.Y
	toDY        *kernels.Op     // pass.DX → gen.DY
	value, grad []*kernels.Op
}

func (s *sharedGraph) release() {
	s.toDY.Release()
	s.pass.Release()
	if s.gen != nil {
		s.gen.Release()
	}
	s.z.Release()
}

// NewReward checks that the constraint applies to the prior's output and returns the
// reward. Graphs are built on first use, per batch size.
func NewReward(l *kernels.Library, prior priors.Prior, c Constraint) (*Reward, error) {
	if prior == nil || c == nil {
		return nil, fmt.Errorf("posterior: reward needs a prior and a constraint")
	}
	d := prior.LatentDim()
	D, err := prior.Generator().OutWidth(d)
	if err != nil {
		return nil, fmt.Errorf("posterior: prior %s: %w", prior.Kind(), err)
	}
	if err := c.Check(D); err != nil {
		return nil, err
	}
	return &Reward{lib: l, prior: prior, constraint: c, dim: d, width: D, shared: map[string]*sharedGraph{}}, nil
}

// NewCondReward is NewReward for a family of constraints (an amortised sampler's
// target): use CondFunc (or CondConstraintFunc).
func NewCondReward(l *kernels.Library, prior priors.Prior, f Conditional) (*Reward, error) {
	if prior == nil || f == nil {
		return nil, fmt.Errorf("posterior: reward needs a prior and a constraint family")
	}
	if f.Conditions() < 1 {
		return nil, fmt.Errorf("posterior: the constraint family has no conditions")
	}
	d := prior.LatentDim()
	D, err := prior.Generator().OutWidth(d)
	if err != nil {
		return nil, fmt.Errorf("posterior: prior %s: %w", prior.Kind(), err)
	}
	if err := f.Check(D); err != nil {
		return nil, err
	}
	return &Reward{lib: l, prior: prior, family: f, dim: d, width: D, shared: map[string]*sharedGraph{}}, nil
}

// Conditions is the number of conditions of an amortised reward (0: unconditional).
func (r *Reward) Conditions() int {
	if r.family == nil {
		return 0
	}
	return r.family.Conditions()
}

// Dim is the dimension d of z (the sampler's dimension).
func (r *Reward) Dim() int { return r.dim }

// Prior is the prior f.
func (r *Reward) Prior() priors.Prior { return r.prior }

// sharedFor returns the shared graph of batch size B (and, amortised, of the rows'
// conditions labels), building it on first use.
func (r *Reward) sharedFor(B int, labels []int) (*sharedGraph, error) {
	key := fmt.Sprint(B, labels)
	if s, ok := r.shared[key]; ok {
		return s, nil
	}
	c := r.constraint
	if r.family != nil {
		if len(labels) != B {
			return nil, fmt.Errorf("posterior: amortised reward: %d conditions for a batch of %d", len(labels), B)
		}
		c = r.family.For(labels)
	}
	dev := r.lib.Device()
	s := &sharedGraph{}
	fail := func(err error) (*sharedGraph, error) {
		s.release()
		return nil, fmt.Errorf("posterior: reward graph for batch %d: %w", B, err)
	}
	var err error
	if s.z, err = kernels.NewTensor(dev, "posterior z", B, r.dim); err != nil {
		return nil, err
	}
	if s.gen, err = r.prior.Generator().Build(r.lib, s.z, nn.NetOptions{Backward: true, InputGrad: true}); err != nil {
		return fail(err)
	}
	if s.pass, err = c.Build(r.lib, s.gen.Y); err != nil {
		return fail(err)
	}
	if s.toDY, err = r.lib.Scale(s.gen.DY, s.pass.DX, 1); err != nil {
		return fail(err)
	}
	s.value = append(append([]*kernels.Op(nil), s.gen.Forward...), s.pass.Value...)
	s.grad = append(append(append([]*kernels.Op(nil), s.pass.Grad...), s.toDY), s.gen.Backward...)
	r.shared[key] = s
	return s, nil
}

// Func is the train.RewardFunc of the posterior: for z [B, d] it records
// [copy z in, generator, constraint, (backward passes when grad is wanted), combine].
func (r *Reward) Func() train.RewardFunc {
	if r.family != nil {
		return failingReward("posterior: the reward is amortised over conditions: use CondFunc")
	}
	return r.fn(nil, true)
}

// ConstraintFunc is Func without the prior term: log r(f(z)) and ∇_z log r(f(z)) =
// J_fᵀ∇_x log r, the reward of relative TB, whose prior is a pretrained sampler of
// N(0, I) instead of the density log N(z; 0, I).
func (r *Reward) ConstraintFunc() train.RewardFunc {
	if r.family != nil {
		return failingReward("posterior: the reward is amortised over conditions: use CondConstraintFunc")
	}
	return r.fn(nil, false)
}

// CondFunc is the amortised Func: the reward of a batch whose row b has condition
// labels[b].
func (r *Reward) CondFunc() train.CondRewardFunc {
	return func(labels []int) train.RewardFunc {
		if r.family == nil {
			return failingReward("posterior: the reward is not amortised: use Func")
		}
		return r.fn(labels, true)
	}
}

// CondConstraintFunc is the amortised ConstraintFunc (relative TB of an amortised
// sampler).
func (r *Reward) CondConstraintFunc() train.CondRewardFunc {
	return func(labels []int) train.RewardFunc {
		if r.family == nil {
			return failingReward("posterior: the reward is not amortised: use ConstraintFunc")
		}
		return r.fn(labels, false)
	}
}

func failingReward(msg string) train.RewardFunc {
	return func(*kernels.Library, *kernels.Tensor, *kernels.Tensor, *kernels.Tensor) (*train.Reward, error) {
		return nil, fmt.Errorf("%s", msg)
	}
}

func (r *Reward) fn(labels []int, withPrior bool) train.RewardFunc {
	labels = append([]int(nil), labels...)
	return func(l *kernels.Library, logr, grad, z *kernels.Tensor) (*train.Reward, error) {
		if l.Device() != r.lib.Device() {
			return nil, fmt.Errorf("posterior: reward asked for on another device")
		}
		if z.Cols() != r.dim {
			return nil, fmt.Errorf("posterior: z is %v but the prior's latent dimension is %d", z.Shape, r.dim)
		}
		s, err := r.sharedFor(z.Rows(), labels)
		if err != nil {
			return nil, err
		}
		in, err := l.Scale(s.z, z, 1)
		if err != nil {
			return nil, err
		}
		ops := append([]*kernels.Op{in}, s.value...)
		var jt *kernels.Tensor
		if grad != nil {
			jt = s.gen.DX
			ops = append(ops, s.grad...)
		}
		var own []*kernels.Op
		release := func() {
			in.Release()
			for _, o := range own {
				o.Release()
			}
		}
		if withPrior {
			out, err := l.PosteriorCombine(logr, grad, z, s.pass.LogR, jt)
			if err != nil {
				release()
				return nil, err
			}
			own = append(own, out)
		} else {
			// log r and J_fᵀ∇_x log r copied out of the shared graph.
			out, err := l.Scale(logr, s.pass.LogR, 1)
			if err != nil {
				release()
				return nil, err
			}
			own = append(own, out)
			if grad != nil {
				g, err := l.Scale(grad, jt, 1)
				if err != nil {
					release()
					return nil, err
				}
				own = append(own, g)
			}
		}
		ops = append(ops, own...)
		return train.NewReward(ops, release), nil
	}
}

// Release frees the shared graphs (not the prior or the constraint's models). Release
// every trainer and graph that uses the reward first.
func (r *Reward) Release() {
	for _, s := range r.shared {
		s.release()
	}
	r.shared = map[string]*sharedGraph{}
}
