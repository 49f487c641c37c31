package kernels

import (
	"fmt"
	"math"
	"sort"

	"osds/gpu"
)

// RankWeight is k of rank-prioritised replay: row of rank r among N has weight
// ∝ 1/(k·N + r) (Sendera et al. 2024 hard-code k = 0.01).
const RankWeight = 0.01

// RankSampler draws rows of a scored table with probability decreasing in their rank:
// the rows [0, filled) of score (log R of the replay buffer's states) are sorted by
// descending score on the GPU (bitonic sort of the next power of two P ≥ N rows), and
// each of the n draws picks rank ⌊s⌋ with s = c·((1 + 1/k)^u − 1), c = k·filled, u
// uniform: the inverse CDF of the density ∝ 1/(c + s), so P(r) ∝ log(1 + 1/(c + r)),
// within a factor 1 + 1/(2c) of 1/(c + r). out[i] is the row of the drawn rank (NaN
// scores rank last; ties go to the lower row). shaders/rank.wgsl has the kernels.
//
// Only the filled rows are sorted: the sort covers the next power of two P ≥ filled
// (the first P of the bitonic network's stages leave rows [0, P) sorted in the final
// direction), so a replay buffer that is still filling is cheap to rank.
//
// Cost: 1 + log₂P·(log₂P + 1)/2 dispatches of P/2 compare-swaps each (210 passes once
// the published 600,000-row buffer is full) plus one draw. The order stays valid until
// the scores change, so callers sort only then (SortOps) and draw from the same order
// every time (DrawOps).
type RankSampler struct {
	draw        *Op
	sorts       map[int]*rankSort // by P, built when Set first needs them
	cur         int               // P of the filled rows last Set
	keys, order *gpu.Buffer
	bufs        []*gpu.Buffer
	rows, pow2  int
	n           int
	k           float64
	key         [2]uint32
	lib         *Library
}

// rankSort is the init and the bitonic passes that sort rows [0, P).
type rankSort struct {
	init   *Op
	passes []*Op
}

// nextPow2 is the smallest power of two ≥ max(n, 2).
func nextPow2(n int) int {
	p := 2
	for p < n {
		p *= 2
	}
	return p
}

// NewRankSampler builds the sort and draw ops for out.Len() draws from the rows of
// score (a vector of N scores; out.Limit must be ≥ N). seed keys the draws; Set picks
// the filled rows and the stream before each submission.
func (l *Library) NewRankSampler(out *IndexTensor, score *Tensor, k float64, seed uint64) (*RankSampler, error) {
	const name = "kernels: rank sampler"
	if out == nil || score == nil {
		return nil, fmt.Errorf("%s: nil argument", name)
	}
	rows := score.Len()
	if out.Limit < rows {
		return nil, fmt.Errorf("%s: index tensor %q has bound %d, below the %d scored rows", name, out.Label(), out.Limit, rows)
	}
	if !(k > 0) || math.IsInf(k, 0) {
		return nil, fmt.Errorf("%s: k = %v (want a positive weight offset, e.g. %v)", name, k, RankWeight)
	}
	if err := checkRandLen(name, out.Len()); err != nil {
		return nil, err
	}
	pow2 := nextPow2(rows)
	if pow2 > math.MaxInt32 {
		return nil, fmt.Errorf("%s: %d rows are too many to sort", name, rows)
	}
	d := l.Device()
	s := &RankSampler{rows: rows, pow2: pow2, n: out.Len(), k: k, key: philoxKey(seed), lib: l, sorts: map[int]*rankSort{}}
	var err error
	if s.keys, err = d.CreateBuffer("rank keys", uint64(4*pow2), gpu.StorageUsage); err != nil {
		return nil, err
	}
	if s.order, err = d.CreateBuffer("rank order", uint64(4*pow2), gpu.StorageUsage); err != nil {
		s.Release()
		return nil, err
	}
	s.bufs = []*gpu.Buffer{score.Buf, s.keys, s.order, out.Buf}
	if s.draw, err = l.build(opSpec{name: "rank_draw", file: "rank.wgsl", entry: "rank_draw", buffers: s.bufs,
		params: s.params(rows, pow2, 0, 0, 0), grid: Grid1D((s.n+3)/4, 64)}); err != nil {
		s.Release()
		return nil, err
	}
	return s, nil
}

// sortFor returns the ops that sort rows [0, p), building them on first use.
func (s *RankSampler) sortFor(p int) (*rankSort, error) {
	if rs := s.sorts[p]; rs != nil {
		return rs, nil
	}
	rs := &rankSort{}
	var err error
	if rs.init, err = s.lib.build(opSpec{name: "rank_init", file: "rank.wgsl", entry: "rank_init", buffers: s.bufs,
		params: s.params(p, p, 0, 0, 0), grid: Grid1D(p, 64)}); err != nil {
		return nil, err
	}
	for kk := 2; kk <= p; kk *= 2 {
		for j := kk / 2; j >= 1; j /= 2 {
			op, err := s.lib.build(opSpec{name: fmt.Sprintf("rank_sort_pass %d/%d", kk, j), file: "rank.wgsl", entry: "rank_sort_pass", buffers: s.bufs,
				params: s.params(p, p, kk, j, 0), grid: Grid1D(p/2, 64)})
			if err != nil {
				rs.release()
				return nil, err
			}
			rs.passes = append(rs.passes, op)
		}
	}
	s.sorts[p] = rs
	return rs, nil
}

func (rs *rankSort) release() {
	rs.init.Release()
	for _, op := range rs.passes {
		op.Release()
	}
}

// params is the uniform block of rank.wgsl for filled rows, a sort over rows [0, p),
// bitonic pass (k, j) and draw stream.
func (s *RankSampler) params(filled, p, k, j int, stream uint32) Params {
	c := s.k * float64(filled)
	return Params{filled, p, k, j, s.n, s.key[0], s.key[1], stream, uint32(0), float32(c), float32(math.Log2(1 + 1/s.k))}
}

// Set selects the rows [0, filled) to draw from and the Philox stream of the draws
// (e.g. the iteration), for the next submission that records Ops.
func (s *RankSampler) Set(filled int, stream uint32) error {
	if filled < 1 || filled > s.rows {
		return fmt.Errorf("kernels: rank sampler: %d filled rows of %d", filled, s.rows)
	}
	p := nextPow2(filled)
	rs, err := s.sortFor(p)
	if err != nil {
		return err
	}
	if err := rs.init.SetParams(s.lib.Device(), s.params(filled, p, 0, 0, stream)); err != nil {
		return err
	}
	s.cur = p
	return s.draw.SetParams(s.lib.Device(), s.params(filled, p, 0, 0, stream))
}

// Ops are the sort and the draw, in order.
func (s *RankSampler) Ops() []*Op { return append(s.SortOps(), s.draw) }

// SortOps rank the filled rows (as last Set) by their current scores.
func (s *RankSampler) SortOps() []*Op {
	rs := s.sorts[s.cur]
	if rs == nil {
		panic("kernels: rank sampler: SortOps before Set")
	}
	return append([]*Op{rs.init}, rs.passes...)
}

// DrawOps draw from the order the last sort left (the scores and filled rows must not
// have changed since).
func (s *RankSampler) DrawOps() []*Op { return []*Op{s.draw} }

// Order reads the sorted rows of the last sort: element r is the row of rank r, for the
// next power of two ≥ filled ranks (rows ≥ filled last).
func (s *RankSampler) Order() ([]uint32, error) { return s.order.ReadUint32(0, s.cur) }

// Release frees the ops and the sort's scratch.
func (s *RankSampler) Release() {
	if s == nil {
		return
	}
	s.draw.Release()
	for _, rs := range s.sorts {
		rs.release()
	}
	s.sorts = nil
	s.keys.Release()
	s.order.Release()
}

// RefRankOrder is the float64 reference of the sort: the rows [0, filled) of score by
// descending score, ties by ascending row, NaN last.
func RefRankOrder(score []float32, filled int) []uint32 {
	order := make([]uint32, filled)
	for i := range order {
		order[i] = uint32(i)
	}
	key := func(i uint32) float64 {
		v := float64(score[i])
		if math.IsNaN(v) {
			return math.Inf(-1)
		}
		return v
	}
	sort.SliceStable(order, func(a, b int) bool { return key(order[a]) > key(order[b]) })
	return order
}

// RefRankDraws returns the ranks (not rows) the draw picks for n draws from filled rows
// with weight offset k, for (seed, stream): draw i uses the uniform of lane i mod 4 of
// Philox4x32((i/4, 0, stream, 0), seed). Computed in float64, so a rank can differ from
// the GPU's float32 result by one where s falls within rounding of an integer.
func RefRankDraws(n, filled int, k float64, seed uint64, stream uint32) []int {
	u := RefRandUniform(n, seed, stream, 0)
	out := make([]int, n)
	for i, ui := range u {
		s := k * float64(filled) * (math.Pow(1+1/k, float64(ui)) - 1)
		out[i] = min(int(math.Max(s, 0)), filled-1)
	}
	return out
}

// RankProbabilities is the distribution of the drawn rank: P(r) ∝ log(1 + 1/(c + r)),
// c = k·filled, r < filled.
func RankProbabilities(filled int, k float64) []float64 {
	c := k * float64(filled)
	p := make([]float64, filled)
	total := math.Log1p(float64(filled) / c)
	for r := range p {
		p[r] = math.Log1p(1/(c+float64(r))) / total
	}
	return p
}
