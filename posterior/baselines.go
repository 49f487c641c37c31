package posterior

// Baselines: posterior samplers in z-space that spend a fixed budget of f evaluations
// (importance sampling from the prior, MALA, HMC), and the same accounting applied to a
// trained osds sampler (SamplerCost), so that methods compare at equal cost.
//
// Accounting. One f evaluation is one row through the generator's forward pass,
// x = f(z). A gradient ∇log R(z) = −z + J_f(z)ᵀ∇_x log r also needs a vector–Jacobian
// product J_fᵀv: the generator's backward pass for the input gradient only (no parameter
// gradients), one transposed matmul per layer, which costs about one forward pass. Costs
// count forward rows and VJP rows separately (Cost); their sum with the VJP weighted by
// VJPCost = 1 is the budget in f evaluations, so a gradient costs 2. The constraint's own
// work (the classifier's forward and backward) rides along with every row and is not
// counted separately. The baselines' Evaluator runs exactly the rows asked for; an osds
// sampler is charged for the whole batches it runs. Rows evaluated for metrics after
// sampling (log r of the output, f(z) for the images) are not charged to any method.

import (
	"fmt"
	"math"
	"math/rand/v2"

	"osds/kernels"
	"osds/train"
)

// VJPCost is the weight of one vector–Jacobian product J_fᵀv in f evaluations (see the
// accounting above).
const VJPCost = 1.0

// Cost is the generator work of a method: Forward rows of f(z) and VJP rows of J_f(z)ᵀv.
type Cost struct {
	Forward int64 `json:"forward"`
	VJP     int64 `json:"vjp"`
}

// Evals is the cost in f evaluations: Forward + VJPCost·VJP.
func (c Cost) Evals() float64 { return float64(c.Forward) + VJPCost*float64(c.VJP) }

// Add returns c + o.
func (c Cost) Add(o Cost) Cost { return Cost{c.Forward + o.Forward, c.VJP + o.VJP} }

func (c Cost) String() string {
	return fmt.Sprintf("%.0f f evaluations (%d forward + %d VJP)", c.Evals(), c.Forward, c.VJP)
}

// SamplerCost is the generator work of an osds sampler trained for iters iterations with
// cfg and then sampled n times (Trainer.Sample, in whole batches of cfg.Batch):
//
//   - every iteration (forward or, with BothWays, replay) evaluates log R at the Batch
//     terminal states: Batch forward rows;
//   - with the Langevin drift every one of the Steps steps also asks for ∇log R:
//     Steps·Batch forward and VJP rows;
//   - local search (cfg.LS, iterations 0 < it < iters with it % Every = 0) evaluates
//     ∇log R at Batch buffer states and then at Steps proposals per chain;
//   - sampling draws ⌈n/Batch⌉ whole batches of trajectories, each with its terminal
//     log R (which is also the push-forward x = f(z)) and, with Langevin, Steps gradients.
func SamplerCost(cfg train.Config, iters, n int) Cost {
	B, T := int64(cfg.Batch), int64(cfg.Steps)
	perTraj := Cost{Forward: 1}
	if cfg.Langevin {
		perTraj = Cost{Forward: 1 + T, VJP: T}
	}
	var c Cost
	it := int64(iters)
	c.Forward += it * B * perTraj.Forward
	c.VJP += it * B * perTraj.VJP
	if cfg.BothWays && cfg.LS.Every > 0 && iters > 1 {
		calls := int64((iters - 1) / cfg.LS.Every)
		rows := calls * B * int64(cfg.LS.Steps+1)
		c.Forward += rows
		c.VJP += rows
	}
	if n > 0 {
		rows := int64((n+cfg.Batch-1)/cfg.Batch) * B
		c.Forward += rows * perTraj.Forward
		c.VJP += rows * perTraj.VJP
	}
	return c
}

// ---------------------------------------------------------------------------------------

// Evaluator evaluates log R(z) and ∇log R(z) of host batches on the device, in chunks of
// at most a fixed number of rows, and counts the generator work (Cost). A request of
// fewer rows runs on a graph of exactly that many (built on first use and kept), so that
// e.g. 200 MCMC chains do not pay for a padded batch of 1000.
type Evaluator struct {
	lib        *kernels.Library
	reward     train.RewardFunc
	dim, batch int
	sites      map[int]*evalSite
	// Cost is the work done so far (rows asked for).
	Cost Cost
	// Progress, when set, is called after every batch with Cost so far; an error it
	// returns ends the evaluation (and the baseline running it) with that error: how a
	// command shows progress and stops on a signal.
	Progress func(Cost) error
}

// evalSite is the reward recorded for one batch size.
type evalSite struct {
	z, logr, grad   *kernels.Tensor
	value, withGrad *train.Reward
	buf             []float32
}

func (s *evalSite) release() {
	s.value.Release()
	s.withGrad.Release()
	for _, t := range []*kernels.Tensor{s.z, s.logr, s.grad} {
		if t != nil {
			t.Release()
		}
	}
}

// NewEvaluator prepares evaluations of reward on rows of dimension dim, at most batch
// rows per GPU batch.
func NewEvaluator(l *kernels.Library, reward train.RewardFunc, dim, batch int) (*Evaluator, error) {
	if dim < 1 || batch < 1 {
		return nil, fmt.Errorf("posterior: evaluator of dimension %d and batch %d", dim, batch)
	}
	return &Evaluator{lib: l, reward: reward, dim: dim, batch: batch, sites: map[int]*evalSite{}}, nil
}

// site returns the reward call site for B rows, building it on first use.
func (e *Evaluator) site(B int) (*evalSite, error) {
	if s, ok := e.sites[B]; ok {
		return s, nil
	}
	l, dev := e.lib, e.lib.Device()
	s := &evalSite{buf: make([]float32, B*e.dim)}
	fail := func(err error) (*evalSite, error) {
		s.release()
		return nil, fmt.Errorf("posterior: evaluator for %d rows: %w", B, err)
	}
	var err error
	if s.z, err = kernels.NewTensor(dev, "evaluator z", B, e.dim); err != nil {
		return fail(err)
	}
	if s.logr, err = kernels.NewTensor(dev, "evaluator log R", B); err != nil {
		return fail(err)
	}
	if s.grad, err = kernels.NewTensor(dev, "evaluator grad", B, e.dim); err != nil {
		return fail(err)
	}
	if s.value, err = e.reward(l, s.logr, nil, s.z); err != nil {
		return fail(err)
	}
	if s.withGrad, err = e.reward(l, s.logr, s.grad, s.z); err != nil {
		return fail(err)
	}
	e.sites[B] = s
	return s, nil
}

// Dim is the dimension of z.
func (e *Evaluator) Dim() int { return e.dim }

// Release frees the evaluator's tensors and call sites (not the reward's shared graphs).
func (e *Evaluator) Release() {
	if e == nil {
		return
	}
	for _, s := range e.sites {
		s.release()
	}
	e.sites = map[int]*evalSite{}
}

// LogR returns log R(z) of every row (forward rows only).
func (e *Evaluator) LogR(zs [][]float64) ([]float64, error) {
	lr, _, err := e.eval(zs, false)
	return lr, err
}

// LogRGrad returns log R(z) and ∇log R(z) of every row (forward and VJP rows).
func (e *Evaluator) LogRGrad(zs [][]float64) ([]float64, [][]float64, error) {
	return e.eval(zs, true)
}

func (e *Evaluator) eval(zs [][]float64, wantGrad bool) ([]float64, [][]float64, error) {
	d := e.dim
	out := make([]float64, 0, len(zs))
	var grads [][]float64
	if wantGrad {
		grads = make([][]float64, 0, len(zs))
	}
	for start := 0; start < len(zs); start += e.batch {
		rows := min(e.batch, len(zs)-start)
		s, err := e.site(rows)
		if err != nil {
			return nil, nil, err
		}
		for b := 0; b < rows; b++ {
			z := zs[start+b]
			if len(z) != d {
				return nil, nil, fmt.Errorf("posterior: evaluator: row %d has %d coordinates, want %d", start+b, len(z), d)
			}
			for j, v := range z {
				s.buf[b*d+j] = float32(v)
			}
		}
		if err := s.z.Write(s.buf); err != nil {
			return nil, nil, err
		}
		rw := s.value
		if wantGrad {
			rw = s.withGrad
		}
		if err := e.lib.Run(rw.Ops...); err != nil {
			return nil, nil, err
		}
		lr, err := s.logr.Read()
		if err != nil {
			return nil, nil, err
		}
		for b := 0; b < rows; b++ {
			out = append(out, float64(lr[b]))
		}
		e.Cost.Forward += int64(rows)
		if wantGrad {
			g, err := s.grad.Read()
			if err != nil {
				return nil, nil, err
			}
			for b := 0; b < rows; b++ {
				row := make([]float64, d)
				for j := range row {
					row[j] = float64(g[b*d+j])
				}
				grads = append(grads, row)
			}
			e.Cost.VJP += int64(rows)
		}
		if e.Progress != nil {
			if err := e.Progress(e.Cost); err != nil {
				return nil, nil, err
			}
		}
	}
	return out, grads, nil
}

// LogNormal is log N(z; 0, I).
func LogNormal(z []float64) float64 {
	s := 0.0
	for _, v := range z {
		s += v * v
	}
	return -0.5*s - 0.5*float64(len(z))*math.Log(2*math.Pi)
}

// ---------------------------------------------------------------------------------------

// ISResult is a self-normalised importance sample from the prior proposal N(0, I):
// weights w_i ∝ R(z_i)/N(z_i; 0, I) = r(f(z_i), y).
type ISResult struct {
	Z    [][]float64 // the proposals
	LogW []float64   // log w_i = log R(z_i) − log N(z_i; 0, I) = log r(f(z_i))
	// ESS = (Σw)²/Σw², LogZ = logmeanexp(log w) (an unbiased Ẑ, so log Ẑ is a lower bound
	// in expectation).
	ESS, LogZ float64
	// Samples are the output: n draws by systematic resampling from the weighted set.
	Samples [][]float64
	Cost    Cost
}

// Weights returns the self-normalised weights w_i / Σw.
func (r *ISResult) Weights() []float64 { return NormalisedWeights(r.LogW) }

// WeightedMean is Σ w_i z_i / Σ w_i.
func (r *ISResult) WeightedMean() []float64 {
	w := r.Weights()
	m := make([]float64, len(r.Z[0]))
	for i, z := range r.Z {
		for j, v := range z {
			m[j] += w[i] * v
		}
	}
	return m
}

// NormalisedWeights is exp(logW) scaled to sum to 1 (computed relative to the largest
// finite log weight, so no exponential overflows); NaN log weights get weight 0, and all
// weights are 0 when none is finite.
func NormalisedWeights(logW []float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range logW {
		if !math.IsNaN(v) {
			mx = math.Max(mx, v)
		}
	}
	w := make([]float64, len(logW))
	s := 0.0
	for i, v := range logW {
		if !math.IsNaN(v) && !math.IsInf(mx, -1) {
			w[i] = math.Exp(v - mx)
		}
		s += w[i]
	}
	if s > 0 {
		for i := range w {
			w[i] /= s
		}
	}
	return w
}

// ESS is the effective sample size (Σw)²/Σw² of log weights.
func ESS(logW []float64) float64 {
	w := NormalisedWeights(logW)
	s2 := 0.0
	for _, v := range w {
		s2 += v * v
	}
	if s2 == 0 {
		return 0
	}
	return 1 / s2
}

// SystematicResample draws n indices from normalised weights w with one uniform u:
// index i is taken once for every point (u + k)/n, k = 0..n−1, in [c_{i−1}, c_i) of the
// cumulative weights (lower variance than multinomial resampling).
func SystematicResample(w []float64, n int, rng *rand.Rand) []int {
	out := make([]int, 0, n)
	u := rng.Float64()
	c, i := w[0], 0
	for k := 0; k < n; k++ {
		p := (u + float64(k)) / float64(n)
		for p >= c && i < len(w)-1 {
			i++
			c += w[i]
		}
		out = append(out, i)
	}
	return out
}

// ImportanceSample draws budget proposals z ~ N(0, I) (seeded), evaluates log R on each
// (budget forward rows), and resamples n output samples (n ≤ 0: none) systematically.
// The proposals are kept (budget·d float64s).
func ImportanceSample(ev *Evaluator, budget, n int, seed uint64) (*ISResult, error) {
	if budget < 1 {
		return nil, fmt.Errorf("posterior: importance sampling with a budget of %d", budget)
	}
	rng := rand.New(rand.NewPCG(seed, 0x15))
	d := ev.Dim()
	start := ev.Cost
	res := &ISResult{Z: make([][]float64, 0, budget), LogW: make([]float64, 0, budget)}
	const chunk = 8192
	for done := 0; done < budget; done += chunk {
		zs := make([][]float64, min(chunk, budget-done))
		for i := range zs {
			zs[i] = make([]float64, d)
			for j := range zs[i] {
				zs[i][j] = rng.NormFloat64()
			}
		}
		lr, err := ev.LogR(zs)
		if err != nil {
			return nil, err
		}
		for i, z := range zs {
			res.Z = append(res.Z, z)
			res.LogW = append(res.LogW, lr[i]-LogNormal(z))
		}
	}
	res.Cost = Cost{ev.Cost.Forward - start.Forward, ev.Cost.VJP - start.VJP}
	res.ESS = ESS(res.LogW)
	res.LogZ = train.LogMeanExp(finiteOnly(res.LogW))
	if n > 0 {
		for _, i := range SystematicResample(res.Weights(), n, rng) {
			res.Samples = append(res.Samples, res.Z[i])
		}
	}
	return res, nil
}

// finiteOnly maps NaN log weights (a non-finite reward) to −Inf: weight 0.
func finiteOnly(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		if math.IsNaN(x) {
			x = math.Inf(-1)
		}
		out[i] = x
	}
	return out
}

// ---------------------------------------------------------------------------------------

// MCMCConfig configures MALA and HMC on Chains independent chains started from the prior
// N(0, I). Each chain runs Iters transitions; during the first Burn the step size is
// adapted, after Burn it is frozen (the chain is then a valid MCMC kernel) and the states
// are recorded. MALA proposes z' = z + η∇log R(z) + √(2η)ξ; HMC runs Leapfrog steps of size
// ε with unit mass. The step size starts at Step and moves in log space towards the target
// acceptance rate (MALA 0.574, HMC 0.65 by default) by a decaying Robbins–Monro update
// on the mean acceptance of each transition over the chains (adapter). HMC jitters each
// chain's ε by ±20% per transition.
type MCMCConfig struct {
	Chains, Iters, Burn int
	Leapfrog            int     // HMC only (default 10)
	Step                float64 // initial η (MALA) or ε (HMC); default 0.05 and 0.1
	Accept              float64 // target acceptance (default 0.574 MALA, 0.65 HMC)
	Gain                float64 // adaptation gain (default 0.5)
	Seed                uint64
}

func (c MCMCConfig) withDefaults(hmc bool) (MCMCConfig, error) {
	if c.Leapfrog == 0 {
		c.Leapfrog = 10
	}
	if c.Step == 0 {
		c.Step = map[bool]float64{false: 0.05, true: 0.1}[hmc]
	}
	if c.Accept == 0 {
		c.Accept = map[bool]float64{false: 0.574, true: 0.65}[hmc]
	}
	if c.Gain == 0 {
		c.Gain = 0.5
	}
	if c.Chains < 1 || c.Iters < 1 || c.Burn < 0 || c.Burn >= c.Iters || c.Leapfrog < 1 || !(c.Step > 0) || !(c.Accept > 0 && c.Accept < 1) || !(c.Gain > 0) {
		return c, fmt.Errorf("posterior: MCMC %+v: want chains ≥ 1, 0 ≤ burn-in < iterations, leapfrog ≥ 1, step > 0, acceptance in (0, 1), gain > 0", c)
	}
	return c, nil
}

// MCMCIters is the number of transitions per chain that a budget of f evaluations buys:
// one gradient per chain to start, then one per MALA transition or Leapfrog per HMC
// transition (a gradient costs 1 + VJPCost evaluations).
func MCMCIters(budget float64, chains, leapfrog int) int {
	perGrad := 1 + VJPCost
	grads := int(budget/(perGrad*float64(chains))) - 1
	return grads / leapfrog
}

// ChainResult is the output of MALA or HMC.
type ChainResult struct {
	// History[k] are the chains' states after transition Burn+k (k = 0..Iters−Burn−1);
	// LogR[k] their log R.
	History [][][]float64
	LogR    [][]float64
	// Accept is the mean acceptance rate after burn-in; Step the frozen step size.
	Accept, Step float64
	Cost         Cost
}

// Final returns n samples: the chains' last states, then (if n > Chains) the states
// gap transitions earlier, and so on, with gap chosen to spread the draws over the
// recorded history.
func (r *ChainResult) Final(n int) [][]float64 {
	K := len(r.History)
	C := len(r.History[K-1])
	rounds := (n + C - 1) / C
	gap := max(1, K/max(rounds, 1))
	var out [][]float64
	for k := K - 1; k >= 0 && len(out) < n; k -= gap {
		for _, z := range r.History[k] {
			if len(out) == n {
				break
			}
			out = append(out, z)
		}
	}
	return out
}

// All returns every recorded state (Iters−Burn per chain).
func (r *ChainResult) All() [][]float64 {
	var out [][]float64
	for _, h := range r.History {
		out = append(out, h...)
	}
	return out
}

// adapter tunes a step size during burn-in: Robbins–Monro in log space with a decaying
// gain, log s ← log s + Gain/√(1 + k/10)·(acceptance − target), and the frozen value is
// the geometric mean of the steps of the second half of burn-in (the averaged iterate
// does not end on one noisy update).
type adapter struct {
	cfg      MCMCConfig
	log, sum float64
	k, n     int
}

func newAdapter(cfg MCMCConfig) *adapter { return &adapter{cfg: cfg, log: math.Log(cfg.Step)} }

// step is the current step size.
func (a *adapter) step() float64 { return math.Exp(a.log) }

// update takes the acceptance rate of transition it (< Burn) at the current step.
func (a *adapter) update(it int, rate float64) {
	if it >= a.cfg.Burn/2 {
		a.sum += a.log
		a.n++
	}
	a.log += a.cfg.Gain / math.Sqrt(1+float64(a.k)/10) * (rate - a.cfg.Accept)
	a.k++
}

// frozen is the step after burn-in.
func (a *adapter) frozen() float64 {
	if a.n == 0 {
		return a.step()
	}
	return math.Exp(a.sum / float64(a.n))
}

// prior draws C starting states from N(0, I).
func priorStates(rng *rand.Rand, c, d int) [][]float64 {
	zs := make([][]float64, c)
	for i := range zs {
		zs[i] = make([]float64, d)
		for j := range zs[i] {
			zs[i][j] = rng.NormFloat64()
		}
	}
	return zs
}

// accepted is the Metropolis test log u < log α; a NaN log α rejects.
func accepted(rng *rand.Rand, logAlpha float64) bool {
	return math.Log(rng.Float64()) < logAlpha
}

// MALA runs Metropolis-adjusted Langevin chains on R (see MCMCConfig).
func MALA(ev *Evaluator, cfg MCMCConfig) (*ChainResult, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x3a1a))
	d, C := ev.Dim(), cfg.Chains
	start := ev.Cost
	z := priorStates(rng, C, d)
	lr, g, err := ev.LogRGrad(z)
	if err != nil {
		return nil, err
	}
	ad := newAdapter(cfg)
	eta := cfg.Step
	res := &ChainResult{}
	acc := 0
	for it := 0; it < cfg.Iters; it++ {
		if it < cfg.Burn {
			eta = ad.step()
		} else if it == cfg.Burn {
			eta = ad.frozen()
		}
		zp := make([][]float64, C)
		s := math.Sqrt(2 * eta)
		for c := range zp {
			zp[c] = make([]float64, d)
			for j := range zp[c] {
				zp[c][j] = z[c][j] + eta*g[c][j] + s*rng.NormFloat64()
			}
		}
		lrp, gp, err := ev.LogRGrad(zp)
		if err != nil {
			return nil, err
		}
		n := 0
		for c := 0; c < C; c++ {
			fwd, bwd := 0.0, 0.0
			for j := 0; j < d; j++ {
				a := zp[c][j] - z[c][j] - eta*g[c][j]
				b := z[c][j] - zp[c][j] - eta*gp[c][j]
				fwd += a * a
				bwd += b * b
			}
			logAlpha := lrp[c] - lr[c] + (fwd-bwd)/(4*eta)
			if accepted(rng, logAlpha) {
				z[c], g[c], lr[c] = zp[c], gp[c], lrp[c]
				n++
			}
		}
		if it < cfg.Burn {
			ad.update(it, float64(n)/float64(C))
			continue
		}
		acc += n
		res.record(z, lr)
	}
	res.Accept = float64(acc) / float64(C*(cfg.Iters-cfg.Burn))
	res.Step = eta
	res.Cost = Cost{ev.Cost.Forward - start.Forward, ev.Cost.VJP - start.VJP}
	return res, nil
}

// record appends copies of the chains' states (rows are replaced, never mutated, so a
// shallow copy of the slice suffices).
func (r *ChainResult) record(z [][]float64, lr []float64) {
	r.History = append(r.History, append([][]float64(nil), z...))
	r.LogR = append(r.LogR, append([]float64(nil), lr...))
}

// HMC runs Hamiltonian Monte Carlo chains on R with unit mass (see MCMCConfig): each
// transition draws p ~ N(0, I), runs Leapfrog steps
//
//	p ← p + ε/2 ∇log R(z);  z ← z + ε p;  p ← p + ε/2 ∇log R(z)
//
// (the gradient at the end of one step is reused at the start of the next), and accepts
// with probability min(1, exp(H₀ − H₁)), H = −log R(z) + |p|²/2.
func HMC(ev *Evaluator, cfg MCMCConfig) (*ChainResult, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x4c3c))
	d, C := ev.Dim(), cfg.Chains
	start := ev.Cost
	z := priorStates(rng, C, d)
	lr, g, err := ev.LogRGrad(z)
	if err != nil {
		return nil, err
	}
	ad := newAdapter(cfg)
	eps := cfg.Step
	res := &ChainResult{}
	acc := 0
	for it := 0; it < cfg.Iters; it++ {
		if it < cfg.Burn {
			eps = ad.step()
		} else if it == cfg.Burn {
			eps = ad.frozen()
		}
		// Each chain's step is jittered by ±20% per transition (Neal 2011): it keeps a
		// fixed step from resonating with the trajectory's period and smooths the mean
		// acceptance that the adaptation follows.
		e := make([]float64, C)
		for c := range e {
			e[c] = eps * (0.8 + 0.4*rng.Float64())
		}
		p := make([][]float64, C)
		q := make([][]float64, C)
		gq := make([][]float64, C)
		h0 := make([]float64, C)
		for c := range p {
			p[c], q[c] = make([]float64, d), append([]float64(nil), z[c]...)
			gq[c] = g[c]
			k := 0.0
			for j := range p[c] {
				p[c][j] = rng.NormFloat64()
				k += p[c][j] * p[c][j]
			}
			h0[c] = -lr[c] + k/2
		}
		var lq []float64
		for l := 0; l < cfg.Leapfrog; l++ {
			for c := range q {
				for j := range q[c] {
					p[c][j] += e[c] / 2 * gq[c][j]
					q[c][j] += e[c] * p[c][j]
				}
			}
			if lq, gq, err = ev.LogRGrad(q); err != nil {
				return nil, err
			}
			for c := range q {
				for j := range q[c] {
					p[c][j] += e[c] / 2 * gq[c][j]
				}
			}
		}
		n := 0
		for c := 0; c < C; c++ {
			k := 0.0
			for _, v := range p[c] {
				k += v * v
			}
			h1 := -lq[c] + k/2
			if accepted(rng, h0[c]-h1) {
				z[c], g[c], lr[c] = q[c], gq[c], lq[c]
				n++
			}
		}
		if it < cfg.Burn {
			ad.update(it, float64(n)/float64(C))
			continue
		}
		acc += n
		res.record(z, lr)
	}
	res.Accept = float64(acc) / float64(C*(cfg.Iters-cfg.Burn))
	res.Step = eps
	res.Cost = Cost{ev.Cost.Forward - start.Forward, ev.Cost.VJP - start.VJP}
	return res, nil
}

// Moments returns the mean and the unbiased covariance of rows zs.
func Moments(zs [][]float64) (mean []float64, cov [][]float64) {
	n, d := float64(len(zs)), len(zs[0])
	mean = make([]float64, d)
	for _, z := range zs {
		for j, v := range z {
			mean[j] += v / n
		}
	}
	cov = make([][]float64, d)
	for i := range cov {
		cov[i] = make([]float64, d)
	}
	for _, z := range zs {
		for i := 0; i < d; i++ {
			for j := 0; j < d; j++ {
				cov[i][j] += (z[i] - mean[i]) * (z[j] - mean[j]) / (n - 1)
			}
		}
	}
	return mean, cov
}
