package train

import "osds/kernels"

// Reward is the recorded computation of log R(z) [B] (and, when asked, ∇log R(z) [B, d])
// for one batch tensor z: the ops to record, in order, and the release of what this call
// site owns.
//
// A reward may be a whole graph (a generative prior followed by a classifier and its
// backward pass), but a graph must not be built per call. The sampler asks for a reward
// once at the terminal state and, with the Langevin drift, once per SDE step (T = 100
// calls per trajectory graph), and again for local search, sampling and EUBO graphs; a
// prior-and-classifier graph per call would hold hundreds of copies of its activations.
// A large reward therefore owns ONE shared graph per batch size, with its own input and
// output tensors, and returns per call only tiny ops of its own: one copying this call's
// z into the shared input, and one reading the shared outputs into this call's logr and
// grad. Ops holds [copy in, shared ops…, copy out]. Sharing is safe because dispatches
// recorded into one command buffer (and successive submissions) execute in order, each
// seeing the writes of the ones before, so the T step rewards of one iteration reuse the
// shared buffers one after the other. Release frees only the call site's own ops; the
// shared graph belongs to the reward's owner, who frees it after every graph that records
// it.
type Reward struct {
	Ops     []*kernels.Op
	release func()
}

// NewReward returns a reward recording ops; release (may be nil) frees what the call site
// owns and must not free ops shared with other call sites.
func NewReward(ops []*kernels.Op, release func()) *Reward {
	return &Reward{Ops: ops, release: release}
}

// OpReward wraps one op owned by the call site (a single-kernel target such as the
// synthetic benchmarks): OpReward(l.LogReward(…)).
func OpReward(op *kernels.Op, err error) (*Reward, error) {
	if err != nil {
		return nil, err
	}
	return NewReward([]*kernels.Op{op}, op.Release), nil
}

// Release frees what the call site owns (once; later calls do nothing).
func (r *Reward) Release() {
	if r == nil || r.release == nil {
		return
	}
	r.release()
	r.release = nil
}

// RewardFunc builds the reward of a batch z [B, d]: ops writing log R(z) into logr [B]
// and, when grad is not nil, ∇log R(z) into grad [B, d] (the Langevin drift and local
// search need it). Graphs call it once per place that needs a reward and release the
// result with the graph.
type RewardFunc func(l *kernels.Library, logr, grad, z *kernels.Tensor) (*Reward, error)
