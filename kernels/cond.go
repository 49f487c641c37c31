package kernels

import (
	"fmt"

	"osds/gpu"
)

// Kernels of amortised (conditional) samplers, whose batch mixes conditions y_b: the
// condition embedding added to the network's input sum (shaders/cond_rows.wgsl), its
// gradient (shaders/cond_rows_grad.wgsl), and trajectory balance / VarGrad per
// condition (shaders/cond_loss.wgsl).

// nanBits is a quiet NaN for shaders that write NaN on bad indices (WGSL has no NaN
// constant).
const nanBits = uint32(0x7FC00000)

// MaxConditions is the most conditions the conditional loss handles.
const MaxConditions = 256

func condLabels(name string, labels *IndexTensor, rows, groups int) error {
	if labels == nil {
		return fmt.Errorf("kernels: %s: labels are nil", name)
	}
	if labels.Len() != rows {
		return fmt.Errorf("kernels: %s: %d labels for %d rows", name, labels.Len(), rows)
	}
	if labels.Limit > groups {
		return fmt.Errorf("kernels: %s: labels %q allow values up to %d but there are %d conditions", name, labels.Label(), labels.Limit-1, groups)
	}
	return nil
}

// AddRowCond records out[b, :] = act(h[b, :]), h[b, :] = x[b, :] + table[row, :] +
// emb[labels[b], :] for x, out [B, C], table [T, C], emb [G, C] and labels [B] (Limit ≤
// G): AddRow plus a learned row per condition, and the activation after it. pre, when not
// nil, also receives h (the backward pass needs it for act's derivative).
func (l *Library) AddRowCond(out, pre, x, table *Tensor, row int, emb *Tensor, labels *IndexTensor, act Activation) (*Op, error) {
	const name = "add row cond"
	if out == nil || x == nil || table == nil || emb == nil {
		return nil, fmt.Errorf("kernels: %s: nil tensor", name)
	}
	if x.Cols() != table.Cols() || x.Cols() != emb.Cols() || !sameShape(out.Shape, x.Shape) {
		return nil, fmt.Errorf("kernels: %s: x %v, table %v, emb %v and out %v must share the column count (and x, out their shape)", name, x.Shape, table.Shape, emb.Shape, out.Shape)
	}
	if row < 0 || row >= table.Rows() {
		return nil, fmt.Errorf("kernels: %s: row %d outside a table of %d rows", name, row, table.Rows())
	}
	if err := act.valid(); err != nil {
		return nil, fmt.Errorf("kernels: %s: %w", name, err)
	}
	if err := condLabels(name, labels, x.Rows(), emb.Rows()); err != nil {
		return nil, err
	}
	if out.Buf.Shares(x.Buf) || out.Buf.Shares(table.Buf) || out.Buf.Shares(emb.Buf) {
		return nil, fmt.Errorf("kernels: %s: out %q shares a buffer with an input", name, out.Label())
	}
	preBuf, err := l.unusedBuffer()
	if err != nil {
		return nil, err
	}
	if pre != nil {
		if !sameShape(pre.Shape, x.Shape) {
			return nil, fmt.Errorf("kernels: %s: pre %v must have x's shape %v", name, pre.Shape, x.Shape)
		}
		for _, t := range []*Tensor{out, x, table, emb} {
			if pre.Buf.Shares(t.Buf) {
				return nil, fmt.Errorf("kernels: %s: pre %q shares a buffer with %q", name, pre.Label(), t.Label())
			}
		}
		preBuf = pre.Buf
	}
	return l.build(opSpec{
		name: name, file: "cond_rows.wgsl", entry: "main",
		consts:  map[string]float64{"ACT": float64(act), "SAVE_PRE": overrideBool(pre != nil)},
		buffers: []*gpu.Buffer{x.Buf, table.Buf, emb.Buf, labels.Buf, out.Buf, preBuf},
		params:  Params{x.Rows(), x.Cols(), row, emb.Rows(), nanBits},
		grid:    Grid1D(x.Len(), 256),
	})
}

// SumRowsCond records the gradient of AddRowCond with respect to its tables:
// table[row, :] += Σ_b dy[b, :] and emb[g, :] += Σ_{b: labels[b] = g} dy[b, :].
func (l *Library) SumRowsCond(table *Tensor, row int, emb *Tensor, labels *IndexTensor, dy *Tensor) (*Op, error) {
	if dy == nil {
		return nil, fmt.Errorf("kernels: sum rows cond: nil tensor")
	}
	return l.SumSegmentsCond(table, Segments{Stride: dy.Rows(), Rows: dy.Rows(), First: row, Step: 1}, emb, labels, dy)
}

// SumSegmentsCond is SumRowsCond over every segment s of the stack dy [S·Stride, C], row
// b of each segment having condition labels[b]: table[First + s·Step, :] +=
// Σ_{b < Rows} dy[s·Stride + b, :] and emb[g, :] += Σ_s Σ_{b < Rows: labels[b] = g}
// dy[s·Stride + b, :], in one dispatch.
func (l *Library) SumSegmentsCond(table *Tensor, seg Segments, emb *Tensor, labels *IndexTensor, dy *Tensor) (*Op, error) {
	const name = "sum rows cond"
	if table == nil || emb == nil || dy == nil {
		return nil, fmt.Errorf("kernels: %s: nil tensor", name)
	}
	if dy.Cols() != table.Cols() || dy.Cols() != emb.Cols() {
		return nil, fmt.Errorf("kernels: %s: dy %v, table %v and emb %v differ in columns", name, dy.Shape, table.Shape, emb.Shape)
	}
	n, err := seg.count(name, dy, table)
	if err != nil {
		return nil, err
	}
	if err := condLabels(name, labels, seg.Rows, emb.Rows()); err != nil {
		return nil, err
	}
	if table.Buf.Shares(emb.Buf) || dy.Buf.Shares(table.Buf) || dy.Buf.Shares(emb.Buf) {
		return nil, fmt.Errorf("kernels: %s: dy, table and emb must be distinct buffers", name)
	}
	return l.build(opSpec{
		name: name, file: "cond_rows_grad.wgsl", entry: "main",
		buffers: []*gpu.Buffer{dy.Buf, table.Buf, emb.Buf, labels.Buf},
		params:  Params{seg.Rows, dy.Cols(), seg.First, emb.Rows(), n, seg.Stride, seg.Step},
		grid:    [3]uint32{uint32((dy.Cols() + 63) / 64), uint32(emb.Rows() + n), 1},
	})
}

// CondTBLoss records TB (one learned log Z per condition, logz [G]) or VarGrad (log Z
// replaced by the batch mean over the rows of the same condition) for a batch whose row b
// has condition labels[b]: coef [B] receives ∂L/∂log p_F(τ_b), dlogz [G] ∂L/∂log Z and
// stats [4] the loss, the mean learned log Z (TB; 0 for VarGrad), mean Δ and mean Δ²
// (see shaders/cond_loss.wgsl). ref is log p_B, or the frozen prior's log p_F for
// relative TB (obj TB).
func (l *Library) CondTBLoss(coef, dlogz, stats, logpf, ref, logr, logz *Tensor, labels *IndexTensor, obj Objective) (*Op, error) {
	const name = "cond tb loss"
	for _, t := range []*Tensor{coef, dlogz, stats, logpf, ref, logr, logz} {
		if t == nil {
			return nil, fmt.Errorf("kernels: %s: nil tensor", name)
		}
	}
	b, g := logpf.Len(), logz.Len()
	if ref.Len() != b || logr.Len() != b || coef.Len() != b {
		return nil, fmt.Errorf("kernels: %s: log p_F %v, ref %v, log R %v and coef %v must all have B = %d elements", name, logpf.Shape, ref.Shape, logr.Shape, coef.Shape, b)
	}
	if g > MaxConditions || dlogz.Len() != g || stats.Len() != 4 {
		return nil, fmt.Errorf("kernels: %s: log Z has %d conditions (at most %d), ∂log Z %d elements (want %d) and stats %d (want 4)", name, g, MaxConditions, dlogz.Len(), g, stats.Len())
	}
	if err := condLabels(name, labels, b, g); err != nil {
		return nil, err
	}
	if obj != TB && obj != VarGrad {
		return nil, fmt.Errorf("kernels: %s: objective %v (want tb or vargrad)", name, obj)
	}
	return l.build(opSpec{
		name: name, file: "cond_loss.wgsl", entry: "main",
		buffers: []*gpu.Buffer{logpf.Buf, ref.Buf, logr.Buf, logz.Buf, labels.Buf, coef.Buf, dlogz.Buf, stats.Buf},
		params:  Params{b, g, uint32(obj), nanBits},
		grid:    [3]uint32{1, 1, 1},
	})
}

// RefAddRowCond is the float64 reference of AddRowCond's sum h (row-major, C columns);
// out is RefActivate of each element.
func RefAddRowCond(x, table, emb []float64, labels []uint32, cols, row int) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		c := i % cols
		out[i] = x[i] + table[row*cols+c] + emb[int(labels[i/cols])*cols+c]
	}
	return out
}

// RefSumSegmentsCond is the float64 reference of SumSegmentsCond: the updated table
// and emb.
func RefSumSegmentsCond(table, emb, dy []float64, labels []uint32, cols int, seg Segments) ([]float64, []float64) {
	t := append([]float64(nil), table...)
	e := append([]float64(nil), emb...)
	for s := 0; s < len(dy)/cols/seg.Stride; s++ {
		for b := 0; b < seg.Rows; b++ {
			for c := 0; c < cols; c++ {
				v := dy[(s*seg.Stride+b)*cols+c]
				t[(seg.First+s*seg.Step)*cols+c] += v
				e[int(labels[b])*cols+c] += v
			}
		}
	}
	return t, e
}

// RefCondTBLoss is the float64 reference of CondTBLoss: coef, dlogz and the four stats.
func RefCondTBLoss(logpf, ref, logr, logz []float64, labels []uint32, obj Objective) ([]float64, []float64, [4]float64) {
	n, g := len(logpf), len(logz)
	delta := make([]float64, n)
	off := make([]float64, g)
	sum, cnt := make([]float64, g), make([]float64, g)
	var st [4]float64
	for b := range delta {
		delta[b] = logpf[b] - ref[b] - logr[b]
		sum[labels[b]] += delta[b]
		cnt[labels[b]]++
		st[2] += delta[b] / float64(n)
		st[3] += delta[b] * delta[b] / float64(n)
	}
	for k := range off {
		if obj == TB {
			off[k] = logz[k]
			st[1] += logz[k] / float64(g)
		} else if cnt[k] > 0 {
			off[k] = -sum[k] / cnt[k]
		}
	}
	coef, dlogz := make([]float64, n), make([]float64, g)
	for b, d := range delta {
		r := off[labels[b]] + d
		coef[b] = r / float64(n)
		st[0] += 0.5 * r * r / float64(n)
		if obj == TB {
			dlogz[labels[b]] += r / float64(n)
		}
	}
	return coef, dlogz, st
}
