package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/pflag"

	"osds/gpu"
	"osds/kernels"
	"osds/posterior"
	"osds/train"
	"osds/viewer"
)

// frameInterval paces the live view: drawing competes with training for the adapter
// (on lavapipe, for the same cores), so frames come at most 5 times a second.
const frameInterval = 200 * time.Millisecond

// viewExtents are the plotted regions [x0, x1, y0, y1] of the first two coordinates.
var viewExtents = map[string][4]float32{
	"gmm25":    {-14, 14, -14, 14},
	"funnel":   {-10, 10, -10, 10},
	"manywell": {-3, 3, -3, 3},
}

// openTrainView opens the live window on the trainer's terminal states: the images f(z)
// of a posterior sampler (one class per column for an amortised one), or the density of
// a synthetic target's samples.
func openTrainView(d *gpu.Device, tr *train.Trainer, setup *posterior.Setup, target string) (*viewer.Window, *samplesView, error) {
	w, err := viewer.Open(d, d.Adapter(), "osds "+target, 480, 480+viewer.StatusHeight(480))
	if err != nil {
		return nil, nil, err
	}
	v := newSamplesView(tr.Lib, setup, target, tr.Cfg.Classes)
	z := tr.Terminal()
	if err := v.bind(z); err != nil {
		w.Close()
		return nil, nil, err
	}
	if err := v.show(w, v.defaultShown(z.Rows()), false, 1); err != nil {
		v.release()
		w.Close()
		return nil, nil, err
	}
	return w, v, nil
}

func runTrain(args []string) (err error) {
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	target := fs.String("target", "gmm25", "target density: gmm25, funnel or manywell")
	priorRef := fs.String("prior", "", "train a posterior sampler in the noise space of this prior: a shipped name (mnist-vae), a .safetensors file, or a PyTorch generator as FILE.onnx[,latent=N][,shape=CxHxW][,data=mnist][,output=NAME] (docs/onnx.md) (needs --constraint; excludes --target)")
	constraint := fs.String("constraint", "", "the posterior's constraint `SPEC`: class:LABEL[,beta=1][,cap=T][,classifier=NAME|FILE] (r = min(p_cls, T)^beta) or inpaint:MASK.png[,sigma=0.1][,image=N] (MASK: white = observed) or wgsl:FILE.wgsl[,step=H] (your fn log_reward(x: Sample) -> f32, see examples/constraints) or onnx:FILE.onnx[,label=L][,beta=B][,output=NAME] (a PyTorch classifier's log-probability of L, or a reward model's value); class:all trains ONE amortised sampler for every class (sample one with osds sample --class)")
	iters := fs.Int("iters", 25000, "training iterations")
	steps := fs.Int("steps", 100, "SDE steps T")
	batch := fs.Int("batch", 300, "trajectories per iteration")
	width := fs.Int("width", 64, "hidden width")
	sigma2 := fs.Float64("sigma2", 0, "diffusion coefficient σ² (0: the target's benchmark value; 1 for posteriors)")
	objective := fs.String("objective", "tb", "loss: tb (learned log Z; amortised: one per class) or vargrad (amortised: per-class batch means; the default for class:all); rtb with --rtb-from")
	rtbFrom := fs.String("rtb-from", "", "relative trajectory balance: fine-tune this sampler `CHECKPOINT` (an unconditional sampler of the prior's noise space, e.g. of N(0, I); or brownian: the untrained zero-drift sampler, whose samples are exactly N(0, σ²I)) towards prior-sampler × r for --prior/--constraint; T, σ², width and harmonics come from it")
	explore := fs.Float64("explore", 0, "exploration: extra noise of std e per step (absolute, not scaled by sqrt(dt), as in the published code), decayed linearly to 0")
	exploreIters := fs.Int("explore-iters", 5000, "iterations over which exploration decays")
	bothWays := fs.Bool("both-ways", false, "alternate forward batches with backward trajectories from a replay buffer of their terminal states")
	bufferSize := fs.Int("buffer", 600000, "replay buffer capacity (states) for --both-ways")
	replay := fs.String("replay", "uniform", "how replay and local search draw buffer states: uniform, or rank (weight ∝ 1/(0.01·N + rank by log R), as in the published local-search runs; unconditional samplers)")
	langevin := fs.Bool("langevin", false, "Langevin-parametrised drift u = NN₁(z,t) + NN₂(t)·clip(∇log R(z))")
	localSearch := fs.Bool("local-search", false, "MALA local search on replay-buffer states (implies --both-ways)")
	lsEvery := fs.Int("ls-every", 100, "iterations between local-search calls")
	lsSteps := fs.Int("ls-steps", 200, "MALA steps per local-search call")
	lsBurn := fs.Int("ls-burn", 100, "MALA burn-in steps before states enter the buffer")
	lsEta := fs.Float64("ls-eta", 0.01, "initial MALA step size (adapted towards acceptance 0.574)")
	lsBeta := fs.Float64("ls-beta", 1, "MALA target exponent: chains sample R^β")
	lr := fs.Float64("lr", 1e-3, "Adam learning rate of the drift network")
	lrLogZ := fs.Float64("lr-logz", 0.1, "Adam learning rate of log Z")
	seed := fs.Uint64("seed", 1, "random seed")
	out := fs.String("out", "", "folder for the checkpoint and metrics (default: a new folder runs/NAME-DATE-TIME; with --resume: the checkpoint's folder). A folder holding another run is refused without --force")
	force := fs.Bool("force", false, "start a new run in an --out folder that holds another run, replacing its checkpoint and metrics")
	every := fs.Int("checkpoint-every", 1000, "write a checkpoint every this many iterations")
	evalEvery := fs.Int("eval-every", 0, "evaluate log Ẑ on 2000 samples every this many iterations (0: only at the end)")
	resume := fs.String("resume", "", "continue from this checkpoint; --iters, --lr, --lr-logz and the run's housekeeping flags apply, the sampler's configuration cannot change")
	timeLimit := fs.Duration("time-limit", 0, "stop after this much wall time (e.g. 2h), with a checkpoint to --resume from (0: no limit)")
	view := fs.Bool("view", false, "show the samples live in a window while training (closing it does not stop training)")
	variance := fs.String("variance", "", "the policy's variance per step: fixed (σ²·dt) or learned (σ²·dt·e^{4·tanh h}, a second output head; represents posteriors sharper than σ²/T; fused iteration only). Default: learned for --prior runs, fixed for synthetic targets (the published protocol)")
	opByOp := fs.Bool("op-by-op", false, "run each iteration op by op (a dispatch per layer per step: the reference the fused iteration is tested against) instead of fused")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var ck *train.Checkpoint
	if *resume != "" {
		var err error
		if ck, err = train.LoadCheckpoint(*resume); err != nil {
			return err
		}
	}
	// A posterior target comes from --prior and --constraint, or from the checkpoint
	// resumed; a synthetic one from --target.
	post := *priorRef != "" || *constraint != "" || (ck != nil && ck.Target == posterior.TargetName)
	if post && fs.Changed("target") {
		return errors.New("--target and --prior/--constraint are mutually exclusive: a sampler learns either a synthetic target or a posterior in a prior's noise space")
	}
	var tg train.Target
	var spec posterior.Spec
	if post {
		if ck != nil && ck.Target != posterior.TargetName {
			return fmt.Errorf("--resume %s was trained on %q, not on a posterior", *resume, ck.Target)
		}
		if ck != nil && *priorRef == "" && *constraint == "" {
			*priorRef, *constraint = ck.Meta[posterior.MetaPrior], ck.Meta[posterior.MetaConstraint]
		}
		if *priorRef == "" || *constraint == "" {
			return errors.New("a posterior needs both --prior NAME|FILE and --constraint SPEC")
		}
		var err error
		if spec, err = posterior.ParseSpec(*constraint); err != nil {
			return fmt.Errorf("--constraint: %w", err)
		}
	} else {
		// Resumed without --target, the checkpoint's target is the one (its configuration
		// wins); a --target given explicitly must match it, checked below.
		name := *target
		if ck != nil && !fs.Changed("target") {
			name = ck.Target
		}
		var err error
		if tg, err = train.NewTarget(name); err != nil {
			return err
		}
	}
	cfg := train.DefaultConfigSigma2(1)
	if tg != nil {
		cfg = train.DefaultConfig(tg)
	}
	cfg.Steps, cfg.Batch, cfg.Width, cfg.LR, cfg.LRLogZ, cfg.Seed = *steps, *batch, *width, *lr, *lrLogZ, *seed
	cfg.Explore, cfg.ExploreIters = *explore, *exploreIters
	cfg.BothWays, cfg.Buffer = *bothWays || *localSearch, *bufferSize
	cfg.Langevin = *langevin
	switch *replay {
	case "uniform":
	case "rank":
		cfg.Rank = true
	default:
		return fmt.Errorf("--replay %q: want uniform or rank", *replay)
	}
	if *localSearch {
		cfg.LS = train.LocalSearch{Every: *lsEvery, Steps: *lsSteps, Burn: *lsBurn, Eta: *lsEta, Beta: *lsBeta}
	}
	switch *variance {
	case "":
		// Posteriors under an informative constraint are often sharper than σ²/T in some
		// directions, which a fixed variance cannot represent (issue #24).
		cfg.LearnedVariance = post && !*opByOp && *rtbFrom == ""
	case "learned":
		cfg.LearnedVariance = true
	case "fixed":
	default:
		return fmt.Errorf("--variance %q: want fixed or learned", *variance)
	}
	if *sigma2 != 0 {
		cfg.Sigma2 = *sigma2
	}
	switch *objective {
	case "tb":
		cfg.Objective = kernels.TB
	case "vargrad":
		cfg.Objective = kernels.VarGrad
	case "rtb":
		if *rtbFrom == "" {
			return errors.New("--objective rtb fine-tunes a prior sampler: give it with --rtb-from CHECKPOINT|brownian")
		}
	default:
		return fmt.Errorf("--objective %q: want tb or vargrad (or rtb with --rtb-from)", *objective)
	}
	if *rtbFrom != "" {
		switch {
		case !post:
			return errors.New("--rtb-from fine-tunes towards prior × r: it needs --prior and --constraint")
		case ck != nil:
			return errors.New("--resume continues the checkpoint's own run, whose relative-TB prior travels with it: drop --rtb-from")
		case *objective != "tb" && *objective != "rtb":
			return fmt.Errorf("--rtb-from trains relative TB, with a learned log Z: --objective %s does not apply", *objective)
		}
		cfg.Objective = kernels.RTB
	}
	var rtbPrior *train.Checkpoint
	if *rtbFrom != "" && !isBrownian(*rtbFrom) {
		var err error
		if rtbPrior, err = train.LoadCheckpoint(*rtbFrom); err != nil {
			return fmt.Errorf("--rtb-from: %w", err)
		}
		pc := rtbPrior.Cfg
		switch {
		case pc.Classes > 0:
			return fmt.Errorf("--rtb-from %s is an amortised sampler; the prior of relative TB is unconditional", *rtbFrom)
		case pc.LearnedVariance:
			return fmt.Errorf("--rtb-from %s has a learned variance, which relative TB does not support yet: train the prior sampler with --variance fixed", *rtbFrom)
		case pc.Langevin:
			return fmt.Errorf("--rtb-from %s uses the Langevin drift, which needs its own target's gradient; relative TB needs a prior sampler without it", *rtbFrom)
		}
		for _, f := range []struct {
			flag      string
			got, want float64
		}{{"steps", float64(*steps), float64(pc.Steps)}, {"sigma2", *sigma2, pc.Sigma2}, {"width", float64(*width), float64(pc.Width)}} {
			if fs.Changed(f.flag) && f.got != f.want {
				return fmt.Errorf("--%s %g: the prior sampler %s was trained with %g, and relative TB keeps its discretisation and network", f.flag, f.got, *rtbFrom, f.want)
			}
		}
		cfg.Steps, cfg.Sigma2, cfg.Width, cfg.Harmonics = pc.Steps, pc.Sigma2, pc.Width, pc.Harmonics
	}
	switch {
	case *iters < 0:
		return fmt.Errorf("--iters %d: want ≥ 0", *iters)
	case *every < 1:
		return fmt.Errorf("--checkpoint-every %d: want ≥ 1", *every)
	case *timeLimit < 0:
		return fmt.Errorf("--time-limit %v: want ≥ 0 (0: no limit)", *timeLimit)
	}
	if ck != nil {
		if tg != nil && ck.Target != tg.Name() {
			return fmt.Errorf("--resume %s was trained on %q, not --target %q", *resume, ck.Target, tg.Name())
		}
		var err error
		if cfg, err = resumedConfig(fs, cfg, ck.Cfg, *resume); err != nil {
			return err
		}
	}
	cfg.OpByOp = *opByOp // how the iterations run is this run's choice, not the checkpoint's
	if *batch < 1 || *steps < 1 || *width < 1 {
		return fmt.Errorf("--batch %d, --steps %d and --width %d must be ≥ 1", *batch, *steps, *width)
	}
	run, err := openRunFolder(*out, *resume, *force, runName(*target, *priorRef, *constraint, post), ck)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			run.removeIfEmpty() // a run that failed before writing anything leaves no folder
		}
	}()
	*out = run.dir
	d, err := gpu.NewDevice()
	if err != nil {
		return err
	}
	defer d.Release()
	if err := checkSizeLimits(d, cfg); err != nil {
		return err
	}
	l := kernels.NewLibrary(d)
	defer l.Release()
	if wt, ok := tg.(*train.WGSLTarget); ok {
		// Compile now, so a broken file is reported against its lines before any trainer
		// is built.
		if err := wt.Compile(l); err != nil {
			return err
		}
	}
	// What the run trains on: name, dimension, reward, true log Z (NaN when unknown) and
	// the checkpoint metadata that rebuilds the reward.
	name, dim, logZ := "", 0, math.NaN()
	meta := map[string]string{}
	var setup *posterior.Setup
	if post {
		if setup, err = posterior.Open(l, *priorRef, spec); err != nil {
			return err
		}
		defer setup.Release()
		meta = setup.Metadata()
		if ck != nil && (ck.Meta[posterior.MetaPrior] != meta[posterior.MetaPrior] || ck.Meta[posterior.MetaConstraint] != meta[posterior.MetaConstraint]) {
			return fmt.Errorf("--resume %s was trained on %s | %s, not %s | %s", *resume, ck.Meta[posterior.MetaPrior], ck.Meta[posterior.MetaConstraint], meta[posterior.MetaPrior], meta[posterior.MetaConstraint])
		}
		if ck == nil && setup.Conditions() > 0 {
			// One sampler for every class. VarGrad with per-class batch means is the
			// default: TB has to fit a log Z per condition (the diffusion-sampler
			// literature reports TB struggling with a conditional log Z).
			cfg.Classes = setup.Conditions()
			if !fs.Changed("objective") && cfg.Objective == kernels.TB {
				cfg.Objective = kernels.VarGrad
			}
		}
		if cfg.Classes != setup.Conditions() {
			return fmt.Errorf("the checkpoint's sampler has %d conditions but %s has %d", cfg.Classes, setup.Spec, setup.Conditions())
		}
		name, dim = posterior.TargetName, setup.Reward.Dim()
	} else {
		name, dim = tg.Name(), tg.Dim()
		if z, ok := tg.LogZ(); ok {
			logZ = z
		}
	}
	// Relative TB: the frozen prior sampler, from --rtb-from or from the checkpoint.
	var prior *train.Network
	switch {
	case ck != nil && cfg.Objective == kernels.RTB:
		prior, err = ck.RTBPrior(d)
		if from := ck.Meta["rtb.from"]; from != "" {
			meta["rtb.from"] = from
		}
	case rtbPrior != nil:
		prior, err = rtbPrior.Sampler(d)
		meta["rtb.from"] = absPath(*rtbFrom)
	case *rtbFrom != "":
		pcfg := cfg
		pcfg.Classes, pcfg.Langevin, pcfg.Objective = 0, false, kernels.TB
		prior, err = train.NewNetworkFor(d, dim, pcfg)
		meta["rtb.from"] = "brownian"
	}
	if err != nil {
		return err
	}
	if prior != nil {
		defer prior.Release()
		if prior.Dim != dim {
			return fmt.Errorf("--rtb-from %s samples dimension %d but the prior %s has latent dimension %d", *rtbFrom, prior.Dim, *priorRef, dim)
		}
	}
	tr, err := train.NewTrainerWith(l, dim, cfg, trainerOptions(setup, name, cfg, prior))
	if err != nil {
		return err
	}
	defer tr.Release()
	tr.Progress = phaseProgress(sigs)
	if ck != nil {
		if err := tr.Restore(ck); err != nil {
			return err
		}
	}
	var win *viewer.Window
	var shown *samplesView
	if *view {
		if win, shown, err = openTrainView(d, tr, setup, name); err != nil {
			return err
		}
		defer func() {
			shown.release()
			if win != nil {
				win.Close()
			}
		}()
	}
	metrics, err := run.openMetrics()
	if err != nil {
		return err
	}
	defer metrics.Close()
	ckpt := run.checkpoint()
	// saved is the checkpoint a failure can point to: the resumed one when it is in
	// this folder, then each one this run writes.
	saved := ""
	if ck != nil && sameFile(*resume, ckpt) {
		saved = ckpt
	}
	save := func() error {
		if err := tr.SaveWith(ckpt, name, meta); err != nil {
			return err
		}
		saved = ckpt
		return nil
	}

	what := name
	if setup != nil {
		what = "the posterior of " + setup.Describe()
		if cfg.Classes > 0 {
			what = fmt.Sprintf("one amortised sampler of the %d posteriors of %s", cfg.Classes, setup.Describe())
		}
	}
	if cfg.Objective == kernels.RTB {
		what += " by relative TB from the prior sampler " + meta["rtb.from"]
	}
	fmt.Fprintf(os.Stderr, "training %s (d=%d) on %s: %d iterations, batch %d, T=%d, σ²=%g, %s\niteration: %s\nrun folder: %s\n",
		what, dim, d.AdapterInfo().Device, *iters, cfg.Batch, cfg.Steps, cfg.Sigma2, cfg.Objective, tr.IterationPath(), run.dir)
	start := time.Now()
	first := tr.Iter()
	end := first + *iters
	// The progress line is redrawn in place on a terminal at most 4 times a second; in a
	// log file it is a new line every 10 seconds. The rate (and ETA) is measured from
	// the first reported iteration on: the first iterations compile the pipelines.
	tty := isTerminal(os.Stderr)
	var lastShown time.Time
	var steady rateMeter
	report := func(st train.Stats) error {
		elapsed := time.Since(start).Seconds()
		// The row is on disk (one write per row, no buffering) before it is shown, so a
		// kill -9 never loses a row that was printed.
		if err := json.NewEncoder(metrics).Encode(map[string]any{"iter": st.Iter, "loss": st.Loss, "log_z": st.LogZ, "elbo_batch": -st.MeanDelta, "time": elapsed}); err != nil {
			return fmt.Errorf("writing %s: %w", metrics.Name(), err)
		}
		rate, ok := steady.observe(st.Iter + 1)
		if interval := map[bool]time.Duration{true: 250 * time.Millisecond, false: 10 * time.Second}[tty]; time.Since(lastShown) >= interval || st.Iter+1 == end {
			lastShown = time.Now()
			speed := "    … it/s"
			if ok {
				speed = fmt.Sprintf("%6.1f it/s", rate)
			}
			line := fmt.Sprintf("iter %6d/%d  loss %9.4f  log Z %9.4f  ELBO %9.4f  %s  %-14s", st.Iter+1, end, st.Loss, st.LogZ, -st.MeanDelta, speed, eta(end-st.Iter-1, rate, ok))
			if tty {
				fmt.Fprintf(os.Stderr, "\r%s", line)
			} else {
				fmt.Fprintln(os.Stderr, line)
			}
		}
		return nil
	}
	evaluate := func() error {
		s, err := tr.Sample(2000, uint32(tr.Iter()))
		if err != nil {
			return err
		}
		est := train.EstimateLogZ(s.LogW, logZ)
		rec := map[string]any{"iter": tr.Iter(), "eval_elbo": est.ELBO, "eval_iw": est.IW}
		if math.IsNaN(logZ) {
			fmt.Fprintf(os.Stderr, "\neval at %d: log Ẑ %.4f, log Ẑ^RW %.4f", tr.Iter(), est.ELBO, est.IW)
		} else {
			fmt.Fprintf(os.Stderr, "\neval at %d: log Ẑ %.4f (Δ %.4f), log Ẑ^RW %.4f (Δ^RW %.4f)", tr.Iter(), est.ELBO, est.Delta, est.IW, est.DelRW)
			rec["delta"], rec["delta_rw"] = est.Delta, est.DelRW
		}
		if setup != nil {
			score, err := scorePosterior(l, setup, s)
			if err != nil {
				return err
			}
			for _, k := range sortedKeys(score) {
				fmt.Fprintf(os.Stderr, ", %s %.4f", k, score[k])
				rec[k] = score[k]
			}
		}
		fmt.Fprintln(os.Stderr)
		if w := varianceFloorWarning(cfg, s.Z); w != "" {
			fmt.Fprintln(os.Stderr, w)
		}
		if err := json.NewEncoder(metrics).Encode(rec); err != nil {
			return fmt.Errorf("writing %s: %w", metrics.Name(), err)
		}
		return nil
	}
	var runErr error
	var lastFrame time.Time
	timedOut := false
loop:
	for tr.Iter() < end {
		if err := sigs.err(); err != nil {
			runErr = err
			break loop
		}
		if *timeLimit > 0 && time.Since(start) >= *timeLimit {
			timedOut = true
			break
		}
		st, ok, err := tr.Step()
		if err != nil {
			runErr = err
			break
		}
		if ok {
			if err := report(st); err != nil {
				return err
			}
			if win != nil && time.Since(lastFrame) >= frameInterval {
				lastFrame = time.Now()
				line := fmt.Sprintf("%s iter %d  loss %.4f  log Z %.4f  ELBO %.4f  %.1f it/s", name, st.Iter+1, st.Loss, st.LogZ, -st.MeanDelta, float64(st.Iter+1-first)/time.Since(start).Seconds())
				win.SetTitle("osds " + line)
				win.SetStatus(line)
				if err := shown.update(); err != nil {
					return err
				}
				if err := win.Draw(); err != nil {
					return err
				}
				if win.ShouldClose() {
					win.Close()
					win = nil
				}
			}
		}
		if tr.Iter()%*every == 0 {
			// The scalars still in flight are written first, so that every row before
			// the checkpoint's iteration is on disk when it is (a kill -9 after the save
			// would otherwise lose up to the ring's lag of rows that --resume never redoes).
			sts, err := tr.Flush()
			if err != nil {
				runErr = err
				break
			}
			for _, st := range sts {
				if err := report(st); err != nil {
					return err
				}
			}
			if err := save(); err != nil {
				runErr = err
				break
			}
		}
		if *evalEvery > 0 && tr.Iter()%*evalEvery == 0 {
			if err := evaluate(); err != nil {
				return err
			}
		}
	}
	// lastGood names what a failure leaves: a diverged run's parameters are not saved.
	lastGood := func() string {
		if saved == "" {
			return fmt.Sprintf("no checkpoint was written (the first is due at iteration %d, --checkpoint-every %d)", (first / *every + 1)**every, *every)
		}
		return "last good checkpoint: " + saved
	}
	var sig *interrupted
	if runErr != nil && !errors.As(runErr, &sig) {
		// A NaN, a lost device or a GPU that stopped answering ends the run here.
		fmt.Fprintf(os.Stderr, "\n")
		return fmt.Errorf("%w (%s)", runErr, lastGood())
	}
	sts, err := tr.Flush()
	if err != nil {
		return fmt.Errorf("%w (%s)", err, lastGood())
	}
	for _, st := range sts {
		if err := report(st); err != nil {
			return err
		}
	}
	if err := save(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\n%d dispatches per iteration, in one submission\ncheckpoint: %s\n", tr.Dispatches, ckpt)
	if sig != nil {
		sig.note = fmt.Sprintf("checkpoint at iteration %d: %s (continue with --resume %s)", tr.Iter(), ckpt, ckpt)
		return sig
	}
	if timedOut {
		// Not an error: the run did what was asked and can go on where it stopped.
		fmt.Fprintf(os.Stderr, "time limit %v reached after iteration %d of %d; continue with --resume %s --iters %d\n", *timeLimit, tr.Iter(), end, ckpt, end-tr.Iter())
		return nil
	}
	return evaluate()
}

// varianceFloorWarning says when a fixed-variance sampler's samples sit at the floor of
// what it can represent: every step adds noise of variance σ²/T, the last one included,
// so no coordinate of a sample can vary less than σ²/T. A sample variance within 2× of
// that floor means the target is (probably) sharper there, and the sampler too broad.
// It returns "" when the variance is learned or well above the floor.
func varianceFloorWarning(cfg train.Config, zs [][]float64) string {
	if cfg.LearnedVariance || len(zs) < 2 {
		return ""
	}
	floor := cfg.Sigma2 / float64(cfg.Steps)
	d := len(zs[0])
	low, min := 0, math.Inf(1)
	for j := 0; j < d; j++ {
		var m, m2 float64
		for _, z := range zs {
			m += z[j]
		}
		m /= float64(len(zs))
		for _, z := range zs {
			m2 += (z[j] - m) * (z[j] - m)
		}
		v := m2 / float64(len(zs)-1)
		if v < 2*floor {
			low++
		}
		min = math.Min(min, v)
	}
	if low == 0 {
		return ""
	}
	return fmt.Sprintf("warning: %d of %d coordinates of the samples vary by less than 2·σ²/T = %.3g (smallest variance %.3g): with a fixed variance every step adds σ²/T of noise, so the sampler cannot be sharper than that and the posterior is probably sharper still; train with --variance learned (or a smaller --sigma2)", low, d, 2*floor, min)
}

// scorePosterior pushes samples z through the prior and scores them against the
// constraint (posterior.Setup.Score; amortised samplers against each sample's own
// condition, ScoreLabels).
func scorePosterior(l *kernels.Library, s *posterior.Setup, smp *train.Samples) (map[string]float64, error) {
	xs, err := posterior.Decode(l, s.Prior, smp.Z)
	if err != nil {
		return nil, err
	}
	if smp.Labels != nil {
		return s.ScoreLabels(l, xs, smp.Labels)
	}
	return s.Score(l, xs, len(smp.Z))
}

// trainerOptions are the trainer's reward (and relative-TB prior) for a posterior setup
// or, without one, the synthetic target name. Relative TB rewards the constraint alone:
// the prior sampler stands in for the prior density.
func trainerOptions(setup *posterior.Setup, target string, cfg train.Config, prior *train.Network) train.Options {
	o := train.Options{Prior: prior}
	rtb := cfg.Objective == kernels.RTB
	switch {
	case setup == nil:
		o.Reward = train.TargetReward(target)
	case setup.Conditions() > 0 && rtb:
		o.CondReward = setup.Reward.CondConstraintFunc()
	case setup.Conditions() > 0:
		o.CondReward = setup.Reward.CondFunc()
	case rtb:
		o.Reward = setup.Reward.ConstraintFunc()
	default:
		o.Reward = setup.Reward.Func()
	}
	return o
}

// rewardFor is the reward of a batch of rows with the given conditions (nil:
// unconditional).
func (o trainerOpts) rewardFor(labels []int) train.RewardFunc {
	if o.CondReward != nil {
		return o.CondReward(labels)
	}
	return o.Reward
}

type trainerOpts train.Options

// isBrownian reports whether --rtb-from names the untrained zero-drift prior sampler
// (the word brownian, when no file has that name).
func isBrownian(ref string) bool {
	if ref != "brownian" {
		return false
	}
	_, err := os.Stat(ref)
	return err != nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isTerminal reports whether f is a character device (a terminal, not a file or pipe).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// checkpointSession is a device, a kernel library and a trainer restored from a checkpoint
// (what `osds eval`, `osds sample` and `osds view` start from), with the reward it was
// trained on: a synthetic target, or a posterior rebuilt from the prior and constraint
// the checkpoint records.
type checkpointSession struct {
	d     *gpu.Device
	l     *kernels.Library
	tr    *train.Trainer
	opts  trainerOpts
	setup *posterior.Setup // nil for synthetic targets
	prior *train.Network   // relative TB's frozen prior (nil otherwise)
}

func openCheckpoint(ck *train.Checkpoint) (*checkpointSession, error) {
	d, err := gpu.NewDevice()
	if err != nil {
		return nil, err
	}
	cs := &checkpointSession{d: d, l: kernels.NewLibrary(d)}
	if ck.Cfg.Objective == kernels.RTB {
		if cs.prior, err = ck.RTBPrior(d); err != nil {
			cs.Close()
			return nil, err
		}
	}
	if ck.Target == posterior.TargetName {
		spec, err := posterior.ParseSpec(ck.Meta[posterior.MetaConstraint])
		if err != nil {
			cs.Close()
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		if cs.setup, err = posterior.Open(cs.l, ck.Meta[posterior.MetaPrior], spec); err != nil {
			cs.Close()
			return nil, fmt.Errorf("checkpoint: rebuilding its posterior: %w", err)
		}
		if cs.setup.Reward.Dim() != ck.Dim {
			cs.Close()
			return nil, fmt.Errorf("checkpoint has dimension %d but its prior %s has latent dimension %d", ck.Dim, cs.setup.PriorRef, cs.setup.Reward.Dim())
		}
		if cs.setup.Conditions() != ck.Cfg.Classes {
			cs.Close()
			return nil, fmt.Errorf("checkpoint's sampler has %d conditions but its constraint %s has %d", ck.Cfg.Classes, cs.setup.Spec, cs.setup.Conditions())
		}
	}
	cs.opts = trainerOpts(trainerOptions(cs.setup, ck.Target, ck.Cfg, cs.prior))
	if cs.tr, err = train.NewTrainerWith(cs.l, ck.Dim, ck.Cfg, train.Options(cs.opts)); err != nil {
		cs.Close()
		return nil, err
	}
	cs.tr.Progress = phaseProgress(sigs)
	if err := cs.tr.Restore(ck); err != nil {
		cs.Close()
		return nil, err
	}
	return cs, nil
}

// Close releases the trainer, the posterior's models, the library and the device.
func (cs *checkpointSession) Close() {
	if cs.tr != nil {
		cs.tr.Release()
	}
	if cs.setup != nil {
		cs.setup.Release()
	}
	if cs.prior != nil {
		cs.prior.Release()
	}
	cs.l.Release()
	cs.d.Release()
}
