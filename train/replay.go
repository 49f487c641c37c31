package train

import (
	"osds/kernels"
)

// replayBuffer is a FIFO of sampler states and their log R on the GPU, filled a batch at
// a time: the replay buffer of forward terminal states (D_buffer) and, with local search,
// the buffer of its chains' states (D_LS).
type replayBuffer struct {
	z, logR *kernels.Tensor // [rows, d] and [rows]
	// blocks views z as [rows/block, block·d]: draws take whole blocks (an amortised
	// sampler's block is one row of every condition, see Trainer.block).
	blocks   *kernels.Tensor
	block    int
	inserted int // states pushed so far
}

// newReplayBuffer allocates rows states of dimension d (rows a multiple of block).
func newReplayBuffer(l *kernels.Library, name string, rows, d, block int) (*replayBuffer, error) {
	b := &replayBuffer{block: block}
	var err error
	if b.z, err = kernels.NewTensor(l.Device(), name, rows, d); err != nil {
		return nil, err
	}
	if b.logR, err = kernels.NewTensor(l.Device(), name+" log R", rows); err != nil {
		b.release()
		return nil, err
	}
	if b.blocks, err = b.z.Reshaped(rows/block, block*d); err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

// rows is the capacity in states.
func (b *replayBuffer) rows() int { return b.z.Rows() }

// filled is the number of states that hold data.
func (b *replayBuffer) filled() int { return min(b.inserted, b.rows()) }

// push records copying a batch of states z [n, d] and their log R [n] over the oldest
// rows (n divides the capacity, so a batch never wraps).
func (b *replayBuffer) push(r *kernels.Recorder, z, logR *kernels.Tensor) {
	n, d := z.Rows(), z.Cols()
	row := uint64(b.inserted % b.rows())
	r.Encoder().CopyBufferToBuffer(z.Buf, 0, b.z.Buf, row*uint64(4*d), uint64(4*n*d))
	r.Encoder().CopyBufferToBuffer(logR.Buf, 0, b.logR.Buf, row*4, uint64(4*n))
	b.inserted += n
}

func (b *replayBuffer) release() {
	if b == nil {
		return
	}
	b.z.Release()
	b.logR.Release()
}

// bufferDraw copies states drawn from a replay buffer into a batch tensor: uniformly, or
// rank-prioritised by log R (kernels.RankSampler), in whole blocks.
type bufferDraw struct {
	buf     *replayBuffer
	idx     *kernels.IndexTensor
	uniform *kernels.Op
	rank    *kernels.RankSampler
	gather  *kernels.Op
	seed    uint64
	// sortedAt is the buffer's insertion count when its rows were last ranked (−1:
	// never): the sort runs only when the buffer changed since, which with local search
	// is once per local-search call (its buffer changes only then).
	sortedAt int
}

// newBufferDraw builds the draw of dst's rows (a multiple of the buffer's block) from buf.
func newBufferDraw(l *kernels.Library, buf *replayBuffer, dst *kernels.Tensor, rank bool, seed uint64) (*bufferDraw, error) {
	k, d := buf.block, dst.Cols()
	n := dst.Rows() / k
	dr := &bufferDraw{buf: buf, seed: seed, sortedAt: -1}
	var err error
	if dr.idx, err = kernels.NewIndexTensor(l.Device(), "buffer draw", n, buf.rows()/k); err != nil {
		return nil, err
	}
	if rank {
		dr.rank, err = l.NewRankSampler(dr.idx, buf.logR, kernels.RankWeight, seed)
	} else {
		dr.uniform, err = l.RandIndex(dr.idx, buf.rows()/k, seed, 0)
	}
	if err != nil {
		dr.release()
		return nil, err
	}
	view, err := dst.Reshaped(n, k*d)
	if err != nil {
		dr.release()
		return nil, err
	}
	if dr.gather, err = l.Gather(view, buf.blocks, dr.idx); err != nil {
		dr.release()
		return nil, err
	}
	return dr, nil
}

// set draws from the buffer's filled rows with Philox stream for the next submission.
func (dr *bufferDraw) set(l *kernels.Library, stream uint32) error {
	filled := dr.buf.filled()
	if dr.rank != nil {
		return dr.rank.Set(filled, stream)
	}
	k := dr.buf.block
	return dr.uniform.SetParams(l.Device(), kernels.RandIndexParams(dr.idx.Len(), filled/k, dr.seed, stream, 0))
}

// record records the draw (ranking the buffer first if it changed) and the copy into
// the batch.
func (dr *bufferDraw) record(r *kernels.Recorder) {
	if dr.rank != nil {
		if dr.sortedAt != dr.buf.inserted {
			r.Record(dr.rank.SortOps()...)
			dr.sortedAt = dr.buf.inserted
		}
		r.Record(dr.rank.DrawOps()...)
	} else {
		r.Record(dr.uniform)
	}
	r.Record(dr.gather)
}

func (dr *bufferDraw) release() {
	if dr == nil {
		return
	}
	dr.uniform.Release()
	dr.rank.Release()
	dr.gather.Release()
	if dr.idx != nil {
		dr.idx.Buf.Release()
	}
}
