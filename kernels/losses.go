package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Training losses of the generative priors and classifiers (shaders/losses.wgsl): each
// takes a batch of rows [B, D] (a tensor of any rank viewed as Rows × Cols), writes one
// loss value per row into a vector of B elements (any shape; reduce it with RowReduce or
// read it back) and, in the same dispatch, the gradient with respect to its input scaled
// by scale — the gradient of scale·Σ_b loss_b, so scale = 1/B gives the gradient of the
// batch mean. Gradients overwrite their tensor, they never accumulate. Outputs may not
// share a buffer with any other argument.
//
// Each row is reduced by one workgroup (GPUs: one row per workgroup; CPU adapters: a
// few workgroups per core, each looping over a block of rows) in a fixed order and
// merge tree, so the losses are bit-reproducible from run to run on one device.

// LossParams is the uniform parameter block of the loss ops, for op.SetParams to change
// scale between runs: LossParams(x.Rows(), x.Cols(), scale), with x the op's [B, D]
// input (logits, or mu for GaussianKL and Reparameterize).
func LossParams(rows, cols int, scale float32) Params {
	return Params{rows, cols, scale, uint32(0x7FC00000)}
}

// lossArg is one tensor argument of a loss op: the name its errors use, and whether
// the op writes it.
type lossArg struct {
	name string
	t    *Tensor
	out  bool
}

// lossCheck validates the tensor arguments of a loss op: none nil; every one of like
// has the shape of like[0] (the op's [B, D] input); no output shares a buffer with
// another argument (WebGPU rejects a buffer bound writable and read-only in one
// dispatch, and the ops overwrite); all bindable as one storage buffer.
func (l *Library) lossCheck(op string, like []lossArg, others ...lossArg) error {
	all := append(append([]lossArg(nil), like...), others...)
	for _, a := range all {
		if a.t == nil {
			return fmt.Errorf("kernels: %s: %s is nil", op, a.name)
		}
	}
	for _, a := range like[1:] {
		if !sameShape(a.t.Shape, like[0].t.Shape) {
			return fmt.Errorf("kernels: %s: %s is %s but %s is %s (shapes must match)", op, like[0].name, ewShape(like[0].t.Shape), a.name, ewShape(a.t.Shape))
		}
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if a.t.Buf.Shares(b.t.Buf) && (a.out || b.out) {
				return fmt.Errorf("kernels: %s: %s and %s are the same tensor (%q); an output needs a tensor of its own", op, a.name, b.name, a.t.Label())
			}
		}
	}
	for _, a := range all {
		if err := l.ewCheckBindable(op, a.name, a.t); err != nil {
			return err
		}
	}
	return nil
}

// lossCheckLoss checks that the per-row loss vector has one element per row of x.
func lossCheckLoss(op, name string, loss *Tensor, xname string, x *Tensor) error {
	if loss.Len() != x.Rows() {
		return fmt.Errorf("kernels: %s: %s is %s (%d rows of %d) but %s is %s (%d elements; want %d)", op, xname, ewShape(x.Shape), x.Rows(), x.Cols(), name, ewShape(loss.Shape), loss.Len(), x.Rows())
	}
	return nil
}

// Workgroup sizes of the row kernels on GPUs, by row length: enough lanes that each
// visits a handful of elements, few enough that lane 0's serial merge stays short.
func lossGPUWorkgroup(cols int) int {
	switch {
	case cols <= 1024:
		return 32
	case cols <= 4096:
		return 64
	case cols <= 16384:
		return 128
	}
	return 256
}

// lossRowPlan returns the workgroup size and grid of a row kernel over rows rows of cols:
// on GPUs one row per workgroup (Grid1D(rows, 1), folded past 65535 rows); on CPU
// adapters workgroups of one SIMD chunk (barriers are cheap there), a few per core, each
// looping over a contiguous block of rows.
func (l *Library) lossRowPlan(rows, cols int) (int, [3]uint32) {
	if l.ewTarget() == ewCPU {
		return l.ewWorkgroupSize(), l.ewGrid(rows, cols, 1)
	}
	return lossGPUWorkgroup(cols), Grid1D(rows, 1)
}

// lossBuild builds one row-kernel op of shaders/losses.wgsl for an input of rows × cols;
// extra holds the entry point's own overrides (nil for none).
func (l *Library) lossBuild(name, entry string, bufs []*gpu.Buffer, rows, cols int, scale float32, extra ...map[string]float64) (*Op, error) {
	wg, grid := l.lossRowPlan(rows, cols)
	consts := map[string]float64{"wg": float64(wg)}
	for _, m := range extra {
		for k, v := range m {
			consts[k] = v
		}
	}
	return l.build(opSpec{
		name:    name,
		file:    "losses.wgsl",
		entry:   entry,
		consts:  consts,
		buffers: bufs,
		params:  LossParams(rows, cols, scale),
		grid:    grid,
	})
}

// SoftmaxCrossEntropy returns the op computing, for logits x [B, D] and class labels
// y [B] (labels.Limit ≤ D),
//
//	loss_b = log Σ_d exp(x_bd) − x_{b,y_b}
//	       = (m_b − x_{b,y_b}) + log Σ_d exp(x_bd − m_b),  m_b = max_d x_bd
//	dlogits_bd = scale·(softmax(x_b)_d − [d = y_b]),  softmax(x_b)_d = exp(x_bd − m_b) / Σ_d' exp(x_bd' − m_b)
//
// loss has B elements and dlogits the shape of logits. The max subtraction keeps both
// finite for any finite logits. With dlogits nil the op computes only the loss
// (evaluation), without a gradient binding. A label ≥ D that reached the device some
// other way (a GPU kernel) makes its row's loss and gradient NaN.
func (l *Library) SoftmaxCrossEntropy(loss, dlogits, logits *Tensor, labels *IndexTensor, scale float32) (*Op, error) {
	return l.FlooredSoftmaxCrossEntropy(loss, dlogits, logits, labels, scale, 0)
}

// FlooredSoftmaxCrossEntropy is SoftmaxCrossEntropy through the hinge max(·, floor):
//
//	loss_b     = max(xent_b, floor)
//	dlogits_bd = scale·(softmax(x_b)_d − [d = y_b]) where xent_b ≥ floor, else 0
//
// (the gradient of the max; at the kink it takes xent's side). A cross entropy is never
// negative, so floor 0 is plain SoftmaxCrossEntropy. The classifier reward uses
// floor = −log τ: −β·loss = β·min(log p_y, log τ) stops rewarding confidence beyond τ.
func (l *Library) FlooredSoftmaxCrossEntropy(loss, dlogits, logits *Tensor, labels *IndexTensor, scale, floor float32) (*Op, error) {
	const name = "softmax cross entropy"
	if labels == nil {
		return nil, fmt.Errorf("kernels: %s: labels is nil", name)
	}
	like := []lossArg{{"logits", logits, false}}
	if dlogits != nil {
		like = append(like, lossArg{"dlogits", dlogits, true})
	}
	if err := l.lossCheck(name, like, lossArg{"loss", loss, true}); err != nil {
		return nil, err
	}
	if err := lossCheckLoss(name, "loss", loss, "logits", logits); err != nil {
		return nil, err
	}
	rows, cols := logits.Rows(), logits.Cols()
	if labels.Len() != rows {
		return nil, fmt.Errorf("kernels: %s: logits is %s (%d rows of %d) but labels %q has %d elements (want %d)", name, ewShape(logits.Shape), rows, cols, labels.Label(), labels.Len(), rows)
	}
	if labels.Limit > cols {
		return nil, fmt.Errorf("kernels: %s: labels %q allow classes up to %d but logits is %s (%d classes)", name, labels.Label(), labels.Limit-1, ewShape(logits.Shape), cols)
	}
	if err := ewFinite(name, "scale", scale); err != nil {
		return nil, err
	}
	if err := ewFinite(name, "floor", floor); err != nil {
		return nil, err
	}
	if floor < 0 {
		return nil, fmt.Errorf("kernels: %s: floor %v (want ≥ 0: a cross entropy is never negative, so a negative floor does nothing)", name, floor)
	}
	fl := map[string]float64{"loss_floor": float64(floor)}
	if dlogits == nil {
		return l.lossBuild(name+" (forward)", "xent_forward", []*gpu.Buffer{logits.Buf, labels.Buf, loss.Buf}, rows, cols, scale, fl)
	}
	return l.lossBuild(name, "xent", []*gpu.Buffer{logits.Buf, labels.Buf, loss.Buf, dlogits.Buf}, rows, cols, scale, fl)
}

// Argmax returns the op out_b = argmax_d x_bd over each row of x [B, D], the smallest
// such d on ties; a NaN counts as larger than every number (as in numpy and PyTorch), so
// the first NaN of a row wins. out has B elements and out.Limit ≥ D (every class index
// fits the tensor's bound).
func (l *Library) Argmax(out *IndexTensor, x *Tensor) (*Op, error) {
	const name = "argmax"
	if out == nil || x == nil {
		return nil, fmt.Errorf("kernels: %s: nil argument (out %v, x %v)", name, out != nil, x != nil)
	}
	rows, cols := x.Rows(), x.Cols()
	if out.Len() != rows {
		return nil, fmt.Errorf("kernels: %s: x is %s (%d rows of %d) but out %q has %d elements (want %d)", name, ewShape(x.Shape), rows, cols, out.Label(), out.Len(), rows)
	}
	if out.Limit < cols {
		return nil, fmt.Errorf("kernels: %s: out %q holds indices below %d but x is %s (indices up to %d)", name, out.Label(), out.Limit, ewShape(x.Shape), cols-1)
	}
	if err := l.ewCheckBindable(name, "x", x); err != nil {
		return nil, err
	}
	return l.lossBuild(name, "argmax", []*gpu.Buffer{x.Buf, out.Buf}, rows, cols, 0)
}

// BernoulliLogitsNLL returns the op computing, for logits x and targets t [B, D] (t in
// [0, 1], e.g. grayscale pixels; not required to be binary),
//
//	loss_b = Σ_d softplus(x_bd) − t_bd·x_bd
//	       = Σ_d max(x_bd, 0) − t_bd·x_bd + log1p(exp(−|x_bd|))     (= BCE(sigmoid(x), t))
//	dlogits_bd = scale·(sigmoid(x_bd) − t_bd)
//
// in the stable form on the second line (no overflow for any finite x). loss has B
// elements and dlogits the shape of logits. With dlogits nil the op computes only the
// loss.
func (l *Library) BernoulliLogitsNLL(loss, dlogits, logits, target *Tensor, scale float32) (*Op, error) {
	const name = "bernoulli logits nll"
	like := []lossArg{{"logits", logits, false}, {"target", target, false}}
	if dlogits != nil {
		like = append(like, lossArg{"dlogits", dlogits, true})
	}
	if err := l.lossCheck(name, like, lossArg{"loss", loss, true}); err != nil {
		return nil, err
	}
	if err := lossCheckLoss(name, "loss", loss, "logits", logits); err != nil {
		return nil, err
	}
	if err := ewFinite(name, "scale", scale); err != nil {
		return nil, err
	}
	rows, cols := logits.Rows(), logits.Cols()
	if dlogits == nil {
		return l.lossBuild(name+" (forward)", "bce_forward", []*gpu.Buffer{logits.Buf, target.Buf, loss.Buf}, rows, cols, scale)
	}
	return l.lossBuild(name, "bce", []*gpu.Buffer{logits.Buf, target.Buf, loss.Buf, dlogits.Buf}, rows, cols, scale)
}

// Reparameterize returns the op z = mu + exp(logvar/2)·eps, elementwise, for the
// Gaussian posterior N(mu, diag(exp(logvar))) of a VAE; mu, logvar, eps and z share one
// shape ([B, Z]), eps is standard normal (RandNormal). Its gradient is part of
// GaussianKL. logvar is not clamped: exp overflows to +inf past logvar ≈ 177.
func (l *Library) Reparameterize(z, mu, logvar, eps *Tensor) (*Op, error) {
	const name = "reparameterize"
	if err := l.lossCheck(name, []lossArg{{"mu", mu, false}, {"logvar", logvar, false}, {"eps", eps, false}, {"z", z, true}}); err != nil {
		return nil, err
	}
	wg := l.ewWorkgroupSize()
	return l.build(opSpec{
		name:    name,
		file:    "losses.wgsl",
		entry:   "reparameterize",
		consts:  map[string]float64{"wg": float64(wg)},
		buffers: []*gpu.Buffer{mu.Buf, logvar.Buf, eps.Buf, z.Buf},
		params:  LossParams(mu.Rows(), mu.Cols(), 0),
		grid:    l.ewGrid(mu.Len(), 1, wg),
	})
}

// GaussianKL returns the op computing the KL divergence of the posterior
// N(mu, diag(exp(logvar))) from the standard normal prior, per row of mu, logvar [B, Z],
// and the gradient of scale·Σ_b kl_b plus the reconstruction term through the
// reparameterization z = mu + exp(logvar/2)·eps (Reparameterize):
//
//	kl_b = ½ Σ_j mu_bj² + exp(logvar_bj) − 1 − logvar_bj
//	dmu = dz + scale·mu
//	dlogvar = dz·eps·exp(logvar/2)/2 + scale·½(exp(logvar) − 1)
//
// dz [B, Z] is the gradient of the (already scaled) reconstruction loss with respect to
// z, and eps the noise of the forward pass. dz and eps may both be nil: the KL alone
// (dz = 0), e.g. for a prior-matching term. dmu and dlogvar may both be nil: only kl
// is computed (evaluation; dz and eps, if given, are then unused). With scale = 0 the op
// is the plain backward of Reparameterize. kl has B elements.
//
// The math is exact, with no clamping of logvar: exp(logvar) overflows to +inf for
// logvar > 88.7, and so do kl and dlogvar. Keep the encoder's logvar in range upstream.
func (l *Library) GaussianKL(kl, dmu, dlogvar, mu, logvar, dz, eps *Tensor, scale float32) (*Op, error) {
	const name = "gaussian kl"
	if (dz == nil) != (eps == nil) {
		return nil, fmt.Errorf("kernels: %s: dz and eps must both be given or both be nil (dz %v, eps %v)", name, dz != nil, eps != nil)
	}
	if (dmu == nil) != (dlogvar == nil) {
		return nil, fmt.Errorf("kernels: %s: dmu and dlogvar must both be given or both be nil (dmu %v, dlogvar %v)", name, dmu != nil, dlogvar != nil)
	}
	grad := dmu != nil
	withDz := grad && dz != nil
	like := []lossArg{{"mu", mu, false}, {"logvar", logvar, false}}
	if grad {
		like = append(like, lossArg{"dmu", dmu, true}, lossArg{"dlogvar", dlogvar, true})
	}
	if withDz {
		like = append(like, lossArg{"dz", dz, false}, lossArg{"eps", eps, false})
	}
	if err := l.lossCheck(name, like, lossArg{"kl", kl, true}); err != nil {
		return nil, err
	}
	if err := lossCheckLoss(name, "kl", kl, "mu", mu); err != nil {
		return nil, err
	}
	if err := ewFinite(name, "scale", scale); err != nil {
		return nil, err
	}
	rows, cols := mu.Rows(), mu.Cols()
	switch {
	case withDz:
		return l.lossBuild(name, "gauss_kl", []*gpu.Buffer{mu.Buf, logvar.Buf, dz.Buf, eps.Buf, kl.Buf, dmu.Buf, dlogvar.Buf}, rows, cols, scale)
	case grad:
		return l.lossBuild(name+" (no dz)", "gauss_kl_prior", []*gpu.Buffer{mu.Buf, logvar.Buf, kl.Buf, dmu.Buf, dlogvar.Buf}, rows, cols, scale)
	}
	return l.lossBuild(name+" (forward)", "gauss_kl_forward", []*gpu.Buffer{mu.Buf, logvar.Buf, kl.Buf}, rows, cols, scale)
}

// ---------------------------------------------------------------------------------------
// float64 references

// RefSoftmaxCrossEntropy is the reference of SoftmaxCrossEntropy for logits holding
// rows×cols values row-major: loss_b = logsumexp(x_b) − x_{b,y_b} and dlogits =
// scale·(softmax(x_b) − onehot(y_b)).
func RefSoftmaxCrossEntropy(logits []float64, labels []uint32, cols int, scale float64) (loss, dlogits []float64) {
	return RefFlooredSoftmaxCrossEntropy(logits, labels, cols, scale, 0)
}

// RefFlooredSoftmaxCrossEntropy is the reference of FlooredSoftmaxCrossEntropy: the
// cross entropy of RefSoftmaxCrossEntropy floored at floor, with a zero gradient on the
// rows where the floor holds.
func RefFlooredSoftmaxCrossEntropy(logits []float64, labels []uint32, cols int, scale, floor float64) (loss, dlogits []float64) {
	rows := len(logits) / cols
	loss = make([]float64, rows)
	dlogits = make([]float64, len(logits))
	for b := 0; b < rows; b++ {
		row := logits[b*cols : (b+1)*cols]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(v - m)
		}
		y := int(labels[b])
		loss[b] = (m - row[y]) + math.Log(s)
		floored := loss[b] < floor
		if floored {
			loss[b] = floor
		}
		for d, v := range row {
			g := math.Exp(v-m) / s
			if d == y {
				g--
			}
			if floored {
				g = 0
			}
			dlogits[b*cols+d] = scale * g
		}
	}
	return loss, dlogits
}

// RefArgmax is the reference of Argmax: per row of cols values, the smallest index of
// the maximum, or of the first NaN.
func RefArgmax(x []float64, cols int) []uint32 {
	out := make([]uint32, len(x)/cols)
	for b := range out {
		best := 0
		for d := 1; d < cols; d++ {
			v, w := x[b*cols+d], x[b*cols+best]
			if math.IsNaN(w) {
				break
			}
			if math.IsNaN(v) || v > w {
				best = d
			}
		}
		out[b] = uint32(best)
	}
	return out
}

// RefBernoulliLogitsNLL is the reference of BernoulliLogitsNLL: loss_b = Σ_d
// max(x, 0) − t·x + log1p(exp(−|x|)) and dlogits = scale·(sigmoid(x) − t).
func RefBernoulliLogitsNLL(logits, target []float64, cols int, scale float64) (loss, dlogits []float64) {
	loss = make([]float64, len(logits)/cols)
	dlogits = make([]float64, len(logits))
	for i, x := range logits {
		t := target[i]
		loss[i/cols] += math.Max(x, 0) - t*x + math.Log1p(math.Exp(-math.Abs(x)))
		dlogits[i] = scale * (1/(1+math.Exp(-x)) - t)
	}
	return loss, dlogits
}

// RefReparameterize is the reference of Reparameterize: z = mu + exp(logvar/2)·eps.
func RefReparameterize(mu, logvar, eps []float64) []float64 {
	z := make([]float64, len(mu))
	for i := range z {
		z[i] = mu[i] + math.Exp(logvar[i]/2)*eps[i]
	}
	return z
}

// RefGaussianKL is the reference of GaussianKL for mu, logvar holding rows×cols values:
// kl_b = ½ Σ_j mu² + exp(logvar) − 1 − logvar, dmu = dz + scale·mu and dlogvar =
// dz·eps·exp(logvar/2)/2 + scale·½(exp(logvar) − 1). dz and eps may be nil (dz = 0).
func RefGaussianKL(mu, logvar, dz, eps []float64, cols int, scale float64) (kl, dmu, dlogvar []float64) {
	kl = make([]float64, len(mu)/cols)
	dmu = make([]float64, len(mu))
	dlogvar = make([]float64, len(mu))
	for i, m := range mu {
		lv := logvar[i]
		ev := math.Exp(lv)
		kl[i/cols] += 0.5 * (m*m + ev - 1 - lv)
		dmu[i] = scale * m
		dlogvar[i] = scale * 0.5 * (ev - 1)
		if dz != nil {
			dmu[i] += dz[i]
			dlogvar[i] += dz[i] * eps[i] * math.Exp(lv/2) / 2
		}
	}
	return kl, dmu, dlogvar
}
