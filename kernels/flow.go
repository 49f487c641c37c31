package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Kernels of an affine-coupling normalizing flow (shaders/flow.wgsl): the pieces of a
// RealNVP layer that are not matrix products — the column gather/scatter of a coupling's
// partition, the coupling itself (forward and inverse, with its log-determinant) and its
// backward — and the flow's input transform (dequantisation and logit), its standard
// normal negative log-likelihood and its output transform (sigmoid back to pixels).
// Tensors are [B, D] rows (any rank, viewed as Rows × Cols); outputs may not share a
// buffer with any other argument.

// Coupling is the partition of the D columns of one affine coupling: Perm holds the
// conditioning columns A = Perm[:NA] followed by the transformed columns B = Perm[NA:].
// Perm must be a permutation of [0, D): length D, Limit D and Unique (so that Write
// checked it). Clamp is a > 0 of the bounded log-scale s = a·tanh(ŝ/a).
//
// The coupling's network maps x[:, A] [B, NA] to h [B, 2·NB]: h[:, j] = ŝ_j and
// h[:, NB+j] = t_j belong to the column B_j = Perm[NA+j].
type Coupling struct {
	Perm  *IndexTensor
	NA    int
	Clamp float32
}

// D is the row width the coupling acts on.
func (c Coupling) D() int { return c.Perm.Len() }

// NB is the number of transformed columns, D − NA.
func (c Coupling) NB() int { return c.Perm.Len() - c.NA }

func (c Coupling) check(op string) error {
	if c.Perm == nil {
		return fmt.Errorf("kernels: %s: coupling has no permutation", op)
	}
	d := c.Perm.Len()
	if c.Perm.Limit != d || !c.Perm.Unique {
		return fmt.Errorf("kernels: %s: coupling permutation %q has %d entries, limit %d, unique %v (want a permutation: limit = length, unique)", op, c.Perm.Label(), d, c.Perm.Limit, c.Perm.Unique)
	}
	if c.NA < 1 || c.NA >= d {
		return fmt.Errorf("kernels: %s: coupling conditions on %d of %d columns (want 1..%d)", op, c.NA, d, d-1)
	}
	if !(c.Clamp > 0) || math.IsInf(float64(c.Clamp), 0) {
		return fmt.Errorf("kernels: %s: coupling clamp %v (want a finite value > 0)", op, c.Clamp)
	}
	return nil
}

// flowParams is the uniform block of shaders/flow.wgsl.
func flowParams(rows, d, na, nb int, clamp, ldgrad, alpha, scale float32) Params {
	return Params{rows, d, na, nb, clamp, ldgrad, alpha, scale, uint32(0x7FC00000)}
}

// flowArgs checks that no argument is nil, that every tensor in rowsLike has the rows
// of the first, and that outputs share no buffer with another argument; all bindable.
func (l *Library) flowArgs(op string, args ...lossArg) error {
	for _, a := range args {
		if a.t == nil {
			return fmt.Errorf("kernels: %s: %s is nil", op, a.name)
		}
	}
	for i, a := range args {
		for _, b := range args[i+1:] {
			if a.t.Buf.Shares(b.t.Buf) && (a.out || b.out) {
				return fmt.Errorf("kernels: %s: %s and %s are the same tensor (%q); an output needs a tensor of its own", op, a.name, b.name, a.t.Label())
			}
		}
		if err := l.ewCheckBindable(op, a.name, a.t); err != nil {
			return err
		}
	}
	return nil
}

// flowWant checks that t is rows × cols.
func flowWant(op, name string, t *Tensor, rows, cols int) error {
	if t.Rows() != rows || t.Cols() != cols {
		return fmt.Errorf("kernels: %s: %s is %s (%d rows of %d), want %d rows of %d", op, name, ewShape(t.Shape), t.Rows(), t.Cols(), rows, cols)
	}
	return nil
}

// flowWantVec checks that t has n elements (one per row).
func flowWantVec(op, name string, t *Tensor, n int) error {
	if t.Len() != n {
		return fmt.Errorf("kernels: %s: %s is %s (%d elements), want one per row (%d)", op, name, ewShape(t.Shape), t.Len(), n)
	}
	return nil
}

// flowRowOp builds a row kernel (one row per workgroup on GPUs) of flow.wgsl.
func (l *Library) flowRowOp(name, entry string, consts map[string]float64, bufs []*gpu.Buffer, ps Params, rows, cols int) (*Op, error) {
	wg, grid := l.lossRowPlan(rows, cols)
	all := map[string]float64{"wg": float64(wg)}
	for k, v := range consts {
		all[k] = v
	}
	return l.build(opSpec{name: name, file: "flow.wgsl", entry: entry, consts: all, buffers: bufs, params: ps, grid: grid})
}

// flowEwOp builds an elementwise kernel of flow.wgsl over items work items.
func (l *Library) flowEwOp(name, entry string, consts map[string]float64, bufs []*gpu.Buffer, ps Params, items int) (*Op, error) {
	wg := l.ewWorkgroupSize()
	all := map[string]float64{"wg": float64(wg)}
	for k, v := range consts {
		all[k] = v
	}
	return l.build(opSpec{name: name, file: "flow.wgsl", entry: entry, consts: all, buffers: bufs, params: ps, grid: l.ewGrid(items, 1, wg)})
}

func flowInverse(inverse bool) map[string]float64 {
	if inverse {
		return map[string]float64{"inverse": 1}
	}
	return map[string]float64{"inverse": 0}
}

func flowDirection(inverse bool) string {
	if inverse {
		return "inverse"
	}
	return "forward"
}

// CouplingGather returns the op xa[b, i] = y[b, A_i] (i < NA): the conditioning columns
// of y [B, D] that the coupling's network reads, xa [B, NA].
func (l *Library) CouplingGather(xa, y *Tensor, c Coupling) (*Op, error) {
	const name = "coupling gather"
	if err := c.check(name); err != nil {
		return nil, err
	}
	if err := l.flowArgs(name, lossArg{"xa", xa, true}, lossArg{"y", y, false}); err != nil {
		return nil, err
	}
	rows := y.Rows()
	if err := flowWant(name, "y", y, rows, c.D()); err != nil {
		return nil, err
	}
	if err := flowWant(name, "xa", xa, rows, c.NA); err != nil {
		return nil, err
	}
	return l.flowEwOp(name, "gather_cols", nil, []*gpu.Buffer{y.Buf, c.Perm.Buf, xa.Buf}, flowParams(rows, c.D(), c.NA, c.NB(), c.Clamp, 0, 0, 0), rows*c.NA)
}

// CouplingScatterAdd returns the op dy[b, A_i] += dxa[b, i] (i < NA): the network's input
// gradient dxa [B, NA] added into the coupling's input gradient dy [B, D] (after
// CouplingBackward wrote dy).
func (l *Library) CouplingScatterAdd(dy, dxa *Tensor, c Coupling) (*Op, error) {
	const name = "coupling scatter add"
	if err := c.check(name); err != nil {
		return nil, err
	}
	if err := l.flowArgs(name, lossArg{"dy", dy, true}, lossArg{"dxa", dxa, false}); err != nil {
		return nil, err
	}
	rows := dy.Rows()
	if err := flowWant(name, "dy", dy, rows, c.D()); err != nil {
		return nil, err
	}
	if err := flowWant(name, "dxa", dxa, rows, c.NA); err != nil {
		return nil, err
	}
	return l.flowEwOp(name, "scatter_add_cols", nil, []*gpu.Buffer{dxa.Buf, c.Perm.Buf, dy.Buf}, flowParams(rows, c.D(), c.NA, c.NB(), c.Clamp, 0, 0, 0), rows*c.NA)
}

// CouplingForward returns the op applying the affine coupling to in [B, D] with the
// network output h [B, 2·NB] (computed from in[:, A]), writing out [B, D]:
//
//	forward:  out[A] = in[A],  out[B_j] = in[B_j]·exp(s_j) + t_j,      logdet[b] += Σ_j s_j
//	inverse:  out[A] = in[A],  out[B_j] = (in[B_j] − t_j)·exp(−s_j),   logdet[b] −= Σ_j s_j
//
// with s_j = a·tanh(ŝ_j/a), ŝ_j = h[b, j], t_j = h[b, NB+j], a = c.Clamp. logdet [B]
// accumulates log|det ∂out/∂in| per row; nil skips it (an elementwise kernel then).
func (l *Library) CouplingForward(out, logdet, in, h *Tensor, c Coupling, inverse bool) (*Op, error) {
	name := "coupling " + flowDirection(inverse)
	if err := c.check(name); err != nil {
		return nil, err
	}
	args := []lossArg{{"out", out, true}, {"in", in, false}, {"h", h, false}}
	if logdet != nil {
		args = append(args, lossArg{"logdet", logdet, true})
	}
	if err := l.flowArgs(name, args...); err != nil {
		return nil, err
	}
	rows, d := in.Rows(), c.D()
	if err := flowWant(name, "in", in, rows, d); err != nil {
		return nil, err
	}
	if err := flowWant(name, "out", out, rows, d); err != nil {
		return nil, err
	}
	if err := flowWant(name, "h", h, rows, 2*c.NB()); err != nil {
		return nil, err
	}
	ps := flowParams(rows, d, c.NA, c.NB(), c.Clamp, 0, 0, 0)
	if logdet == nil {
		return l.flowEwOp(name, "coupling", flowInverse(inverse), []*gpu.Buffer{in.Buf, h.Buf, c.Perm.Buf, out.Buf}, ps, rows*d)
	}
	if err := flowWantVec(name, "logdet", logdet, rows); err != nil {
		return nil, err
	}
	return l.flowRowOp(name+" with logdet", "coupling_ld", flowInverse(inverse), []*gpu.Buffer{in.Buf, h.Buf, c.Perm.Buf, out.Buf, logdet.Buf}, ps, rows, d)
}

// CouplingBackward returns the op computing, from the upstream gradient dout = ∂L/∂out
// [B, D] of CouplingForward(out, logdet, in, h, c, inverse) and ldgrad = ∂L/∂logdet[b]
// (the same for every row; 0 when the log-determinant is not part of L), the gradients
// dh = ∂L/∂h [B, 2·NB] and the part of din = ∂L/∂in [B, D] that does not pass through
// the network (s' = 1 − tanh²(ŝ/a)):
//
//	forward:  din[B_j] = dout·e^s    dt_j = dout         dŝ_j = (dout·in[B_j]·e^s + ldgrad)·s'
//	inverse:  din[B_j] = dout·e^−s   dt_j = −dout·e^−s   dŝ_j = −(dout·out[B_j] + ldgrad)·s'
//	both:     din[A] = dout[A]
//
// (dout at column B_j). The network's input gradient dxa = ∂L/∂in[:, A] through h is
// then added by CouplingScatterAdd(din, dxa, c). Both outputs are overwritten.
func (l *Library) CouplingBackward(din, dh, dout, in, h *Tensor, c Coupling, inverse bool, ldgrad float32) (*Op, error) {
	name := "coupling backward " + flowDirection(inverse)
	if err := c.check(name); err != nil {
		return nil, err
	}
	if err := l.flowArgs(name, lossArg{"din", din, true}, lossArg{"dh", dh, true}, lossArg{"dout", dout, false}, lossArg{"in", in, false}, lossArg{"h", h, false}); err != nil {
		return nil, err
	}
	if err := ewFinite(name, "ldgrad", ldgrad); err != nil {
		return nil, err
	}
	rows, d := in.Rows(), c.D()
	for _, a := range []struct {
		n string
		t *Tensor
	}{{"in", in}, {"dout", dout}, {"din", din}} {
		if err := flowWant(name, a.n, a.t, rows, d); err != nil {
			return nil, err
		}
	}
	for _, a := range []struct {
		n string
		t *Tensor
	}{{"h", h}, {"dh", dh}} {
		if err := flowWant(name, a.n, a.t, rows, 2*c.NB()); err != nil {
			return nil, err
		}
	}
	return l.flowEwOp(name, "coupling_bwd", flowInverse(inverse), []*gpu.Buffer{in.Buf, h.Buf, c.Perm.Buf, dout.Buf, dh.Buf, din.Buf},
		flowParams(rows, d, c.NA, c.NB(), c.Clamp, ldgrad, 0, 0), rows*d)
}

// flowAlpha checks the logit transform's α.
func flowAlpha(op string, alpha float32) error {
	if !(alpha > 0 && alpha < 0.5) {
		return fmt.Errorf("kernels: %s: alpha %v (want 0 < α < 0.5)", op, alpha)
	}
	return nil
}

// DequantLogit returns the op mapping 8-bit images pix [B, D] (values k/255) with
// dequantisation noise u [B, D] (uniform in [0, 1)) to the flow's input space:
//
//	k = round(255·pix),  x = (k + u)/256,  q = α + (1 − 2α)·x,  y = log q − log(1 − q)
//	logdet[b] = Σ_d log((1 − 2α)/256) − log q − log(1 − q)        (overwritten)
//
// with 1 − q evaluated as α + (1 − 2α)·((256 − k) − u)/256, so that it keeps its digits
// where q is within a few ulp of 1 (α = 1e-6, white pixels).
// logdet [B] is log|det ∂y/∂(k + u)|: with it, −log p_Y(y) − logdet is the negative
// log-density of the dequantised image in pixel-level units, whose expectation over u
// bounds −log P(k) of the discrete image from above (divide by D·ln 2 for bits/dim).
func (l *Library) DequantLogit(y, logdet, pix, u *Tensor, alpha float32) (*Op, error) {
	const name = "dequantize logit"
	if err := flowAlpha(name, alpha); err != nil {
		return nil, err
	}
	if err := l.lossCheck(name, []lossArg{{"pix", pix, false}, {"u", u, false}, {"y", y, true}}, lossArg{"logdet", logdet, true}); err != nil {
		return nil, err
	}
	rows, d := pix.Rows(), pix.Cols()
	if err := flowWantVec(name, "logdet", logdet, rows); err != nil {
		return nil, err
	}
	return l.flowRowOp(name, "dequant_logit", nil, []*gpu.Buffer{pix.Buf, u.Buf, y.Buf, logdet.Buf}, flowParams(rows, d, 0, 0, 0, 0, alpha, 0), rows, d)
}

// GaussianNLL returns the op computing, for z [B, D] and the accumulated
// log-determinant logdet [B] of the map from the data to z,
//
//	nll[b] = ½ Σ_d z_bd² + (D/2)·log 2π − logdet[b]        dz = scale·z
//
// — the negative log-likelihood of a flow with a standard normal base, and the gradient
// of scale·Σ_b nll_b with respect to z (the gradient with respect to logdet[b] is
// −scale: pass ldgrad = −scale to CouplingBackward). dz nil computes nll only.
func (l *Library) GaussianNLL(nll, dz, z, logdet *Tensor, scale float32) (*Op, error) {
	const name = "gaussian nll"
	like := []lossArg{{"z", z, false}}
	if dz != nil {
		like = append(like, lossArg{"dz", dz, true})
	}
	if err := l.lossCheck(name, like, lossArg{"nll", nll, true}, lossArg{"logdet", logdet, false}); err != nil {
		return nil, err
	}
	if err := ewFinite(name, "scale", scale); err != nil {
		return nil, err
	}
	rows, d := z.Rows(), z.Cols()
	if err := flowWantVec(name, "nll", nll, rows); err != nil {
		return nil, err
	}
	if err := flowWantVec(name, "logdet", logdet, rows); err != nil {
		return nil, err
	}
	ps := flowParams(rows, d, 0, 0, 0, 0, 0, scale)
	if dz == nil {
		return l.flowRowOp(name+" (forward)", "gauss_nll_fwd", nil, []*gpu.Buffer{z.Buf, logdet.Buf, nll.Buf}, ps, rows, d)
	}
	return l.flowRowOp(name, "gauss_nll", nil, []*gpu.Buffer{z.Buf, logdet.Buf, nll.Buf, dz.Buf}, ps, rows, d)
}

// LogitOutput returns the op mapping the flow's data space back to pixels,
// p = clamp((sigmoid(y) − α)/(1 − 2α), 0, 1), elementwise (the inverse of DequantLogit's
// y = logit(α + (1 − 2α)·x), clamped to the pixel range).
func (l *Library) LogitOutput(p, y *Tensor, alpha float32) (*Op, error) {
	const name = "logit output"
	if err := flowAlpha(name, alpha); err != nil {
		return nil, err
	}
	if err := l.ewCheck(name, []string{"p", "y"}, []*Tensor{p, y}, 1); err != nil {
		return nil, err
	}
	return l.flowEwOp(name, "logit_out", nil, []*gpu.Buffer{y.Buf, p.Buf}, flowParams(y.Rows(), y.Cols(), 0, 0, 0, 0, alpha, 0), y.Len())
}

// LogitOutputBackward returns the op dy = dp·sigmoid'(y)/(1 − 2α) where LogitOutput is
// strictly inside (0, 1), and 0 where it clamps (the derivative of the clamped map; its
// one-sided derivatives differ only on the measure-zero boundary).
func (l *Library) LogitOutputBackward(dy, dp, y *Tensor, alpha float32) (*Op, error) {
	const name = "logit output backward"
	if err := flowAlpha(name, alpha); err != nil {
		return nil, err
	}
	if err := l.ewCheck(name, []string{"dy", "dp", "y"}, []*Tensor{dy, dp, y}, 1); err != nil {
		return nil, err
	}
	return l.flowEwOp(name, "logit_out_bwd", nil, []*gpu.Buffer{dp.Buf, y.Buf, dy.Buf}, flowParams(y.Rows(), y.Cols(), 0, 0, 0, 0, alpha, 0), y.Len())
}

// ---------------------------------------------------------------------------------------
// float64 references

// RefCoupling is a coupling's partition on the host: the conditioning columns A =
// Perm[:NA], the transformed columns B = Perm[NA:], the clamp a.
type RefCoupling struct {
	Perm  []int
	NA    int
	Clamp float64
}

func (c RefCoupling) nb() int { return len(c.Perm) - c.NA }

// refSoft returns s = a·tanh(ŝ/a) and ds/dŝ.
func refSoft(sh, a float64) (float64, float64) {
	th := math.Tanh(sh / a)
	return a * th, 1 - th*th
}

// RefCouplingGather is the reference of CouplingGather for y of rows×D values.
func RefCouplingGather(y []float64, c RefCoupling) []float64 {
	d := len(c.Perm)
	rows := len(y) / d
	out := make([]float64, rows*c.NA)
	for b := 0; b < rows; b++ {
		for i := 0; i < c.NA; i++ {
			out[b*c.NA+i] = y[b*d+c.Perm[i]]
		}
	}
	return out
}

// RefCouplingScatterAdd is the reference of CouplingScatterAdd: dy + dxa scattered to A.
func RefCouplingScatterAdd(dy, dxa []float64, c RefCoupling) []float64 {
	d := len(c.Perm)
	out := append([]float64(nil), dy...)
	for b := 0; b < len(dy)/d; b++ {
		for i := 0; i < c.NA; i++ {
			out[b*d+c.Perm[i]] += dxa[b*c.NA+i]
		}
	}
	return out
}

// RefCouplingForward is the reference of CouplingForward: out and logdet0 plus the
// per-row log-determinant (logdet0 nil: zeros).
func RefCouplingForward(in, h, logdet0 []float64, c RefCoupling, inverse bool) (out, logdet []float64) {
	d, nb := len(c.Perm), c.nb()
	rows := len(in) / d
	out = append([]float64(nil), in...)
	logdet = make([]float64, rows)
	if logdet0 != nil {
		copy(logdet, logdet0)
	}
	for b := 0; b < rows; b++ {
		for j := 0; j < nb; j++ {
			col := b*d + c.Perm[c.NA+j]
			s, _ := refSoft(h[b*2*nb+j], c.Clamp)
			t := h[b*2*nb+nb+j]
			if inverse {
				out[col] = (in[col] - t) * math.Exp(-s)
				logdet[b] -= s
			} else {
				out[col] = in[col]*math.Exp(s) + t
				logdet[b] += s
			}
		}
	}
	return out, logdet
}

// RefCouplingBackward is the reference of CouplingBackward: din (without the network's
// part) and dh.
func RefCouplingBackward(dout, in, h []float64, c RefCoupling, inverse bool, ldgrad float64) (din, dh []float64) {
	d, nb := len(c.Perm), c.nb()
	rows := len(in) / d
	din = append([]float64(nil), dout...)
	dh = make([]float64, rows*2*nb)
	for b := 0; b < rows; b++ {
		for j := 0; j < nb; j++ {
			col := b*d + c.Perm[c.NA+j]
			hs, ht := b*2*nb+j, b*2*nb+nb+j
			s, ds := refSoft(h[hs], c.Clamp)
			g := dout[col]
			if inverse {
				e := math.Exp(-s)
				o := (in[col] - h[ht]) * e
				din[col] = g * e
				dh[ht] = -g * e
				dh[hs] = -(g*o + ldgrad) * ds
			} else {
				e := math.Exp(s)
				din[col] = g * e
				dh[ht] = g
				dh[hs] = (g*in[col]*e + ldgrad) * ds
			}
		}
	}
	return din, dh
}

// RefDequantLogit is the reference of DequantLogit for rows of d values.
func RefDequantLogit(pix, u []float64, d int, alpha float64) (y, logdet []float64) {
	y = make([]float64, len(pix))
	logdet = make([]float64, len(pix)/d)
	ldc := math.Log((1 - 2*alpha) / 256)
	for i, p := range pix {
		k := math.RoundToEven(255 * p)
		q := alpha + (1-2*alpha)*(k+u[i])/256
		qc := alpha + (1-2*alpha)*((256-k)-u[i])/256 // 1 − q
		y[i] = math.Log(q) - math.Log(qc)
		logdet[i/d] += ldc - math.Log(q) - math.Log(qc)
	}
	return y, logdet
}

// RefGaussianNLL is the reference of GaussianNLL for rows of d values.
func RefGaussianNLL(z, logdet []float64, d int, scale float64) (nll, dz []float64) {
	nll = make([]float64, len(z)/d)
	dz = make([]float64, len(z))
	for i, v := range z {
		nll[i/d] += 0.5 * v * v
		dz[i] = scale * v
	}
	for b := range nll {
		nll[b] += 0.5*float64(d)*math.Log(2*math.Pi) - logdet[b]
	}
	return nll, dz
}

// RefLogitOutput is the reference of LogitOutput.
func RefLogitOutput(y []float64, alpha float64) []float64 {
	out := make([]float64, len(y))
	for i, v := range y {
		out[i] = math.Min(1, math.Max(0, (sigmoid64(v)-alpha)/(1-2*alpha)))
	}
	return out
}

// RefLogitOutputBackward is the reference of LogitOutputBackward.
func RefLogitOutputBackward(dp, y []float64, alpha float64) []float64 {
	out := make([]float64, len(y))
	for i, v := range y {
		s := sigmoid64(v)
		if p := (s - alpha) / (1 - 2*alpha); p > 0 && p < 1 {
			out[i] = dp[i] * s * (1 - s) / (1 - 2*alpha)
		}
	}
	return out
}
