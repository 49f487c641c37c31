package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osds/gpu"
	"osds/kernels"
	"osds/posterior"
	"osds/priors"
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

// openTrainView opens the live window on the trainer's terminal states.
func openTrainView(d *gpu.Device, tr *train.Trainer, target string) (*viewer.Window, error) {
	w, err := viewer.Open(d, d.Adapter(), "osds "+target, 480, 480+viewer.StatusHeight(480))
	if err != nil {
		return nil, err
	}
	z := tr.Terminal()
	extent, ok := viewExtents[target]
	if !ok {
		extent = [4]float32{-4, 4, -4, 4} // a prior's noise space: z ~ N(0, I) a priori
	}
	if err := w.Show(z.Buf, viewer.Grid{N: z.Rows(), W: z.Cols(), Density: true, Extent: extent, Radius: 2.5}); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func runTrain(args []string) error {
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	target := fs.String("target", "gmm25", "target density: gmm25, funnel or manywell")
	priorRef := fs.String("prior", "", "train a posterior sampler in the noise space of this prior: a shipped name (mnist-vae) or a .safetensors file (needs --constraint; excludes --target)")
	constraint := fs.String("constraint", "", "the posterior's constraint: class:LABEL[,beta=1][,classifier=NAME|FILE] or inpaint:MASK.png[,sigma=0.1][,image=N] (MASK: white = observed)")
	iters := fs.Int("iters", 25000, "training iterations")
	steps := fs.Int("steps", 100, "SDE steps T")
	batch := fs.Int("batch", 300, "trajectories per iteration")
	width := fs.Int("width", 64, "hidden width")
	sigma2 := fs.Float64("sigma2", 0, "diffusion coefficient σ² (0: the target's benchmark value; 1 for posteriors)")
	objective := fs.String("objective", "tb", "loss: tb (learned log Z) or vargrad")
	explore := fs.Float64("explore", 0, "exploration std e, decayed linearly to 0")
	exploreIters := fs.Int("explore-iters", 5000, "iterations over which exploration decays")
	bothWays := fs.Bool("both-ways", false, "alternate forward batches with backward trajectories from a replay buffer of their terminal states")
	bufferSize := fs.Int("buffer", 600000, "replay buffer capacity (states) for --both-ways")
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
	out := fs.String("out", "runs/latest", "folder for checkpoints and metrics")
	every := fs.Int("checkpoint-every", 1000, "write a checkpoint every this many iterations")
	evalEvery := fs.Int("eval-every", 0, "evaluate log Ẑ on 2000 samples every this many iterations (0: only at the end)")
	resume := fs.String("resume", "", "continue from this checkpoint (its configuration wins)")
	view := fs.Bool("view", false, "show the samples live in a window while training (closing it does not stop training)")
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
		var err error
		if tg, err = train.NewTarget(*target); err != nil {
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
	if *localSearch {
		cfg.LS = train.LocalSearch{Every: *lsEvery, Steps: *lsSteps, Burn: *lsBurn, Eta: *lsEta, Beta: *lsBeta}
	}
	if *sigma2 != 0 {
		cfg.Sigma2 = *sigma2
	}
	switch *objective {
	case "tb":
		cfg.Objective = kernels.TB
	case "vargrad":
		cfg.Objective = kernels.VarGrad
	default:
		return fmt.Errorf("--objective %q: want tb or vargrad", *objective)
	}
	if *iters < 0 || *every < 1 {
		return fmt.Errorf("--iters must be ≥ 0 and --checkpoint-every ≥ 1")
	}
	if ck != nil {
		if tg != nil && ck.Target != tg.Name() {
			return fmt.Errorf("--resume %s was trained on %q, not --target %q", *resume, ck.Target, tg.Name())
		}
		cfg = ck.Cfg
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	d, err := gpu.NewDevice()
	if err != nil {
		return err
	}
	defer d.Release()
	l := kernels.NewLibrary(d)
	defer l.Release()
	// What the run trains on: name, dimension, reward, true log Z (NaN when unknown) and
	// the checkpoint metadata that rebuilds the reward.
	name, dim, logZ := "", 0, math.NaN()
	var reward train.RewardFunc
	var meta map[string]string
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
		name, dim, reward = posterior.TargetName, setup.Reward.Dim(), setup.Reward.Func()
	} else {
		name, dim, reward = tg.Name(), tg.Dim(), train.TargetReward(tg.Name())
		if z, ok := tg.LogZ(); ok {
			logZ = z
		}
	}
	tr, err := train.NewTrainer(l, dim, cfg, reward)
	if err != nil {
		return err
	}
	defer tr.Release()
	if ck != nil {
		if err := tr.Restore(ck); err != nil {
			return err
		}
	}
	var win *viewer.Window
	if *view {
		if win, err = openTrainView(d, tr, name); err != nil {
			return err
		}
		defer func() {
			if win != nil {
				win.Close()
			}
		}()
	}
	metrics, err := os.OpenFile(filepath.Join(*out, "metrics.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer metrics.Close()
	ckpt := filepath.Join(*out, "checkpoint.safetensors")

	// Ctrl-C stops after the current iteration and keeps a checkpoint.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	defer signal.Stop(stop)

	what := name
	if setup != nil {
		what = "the posterior of " + setup.Describe()
	}
	fmt.Fprintf(os.Stderr, "training %s (d=%d) on %s: %d iterations, batch %d, T=%d, σ²=%g, %s\n",
		what, dim, d.AdapterInfo().Device, *iters, cfg.Batch, cfg.Steps, cfg.Sigma2, cfg.Objective)
	start := time.Now()
	first := tr.Iter()
	end := first + *iters
	// The progress line is redrawn in place on a terminal at most 4 times a second; in a
	// log file it is a new line every 10 seconds.
	tty := isTerminal(os.Stderr)
	var lastShown time.Time
	report := func(st train.Stats) error {
		elapsed := time.Since(start).Seconds()
		done := st.Iter + 1 - first
		rate := float64(done) / elapsed
		if interval := map[bool]time.Duration{true: 250 * time.Millisecond, false: 10 * time.Second}[tty]; time.Since(lastShown) >= interval || st.Iter+1 == end {
			lastShown = time.Now()
			eta := time.Duration(float64(end-st.Iter-1)/rate) * time.Second
			line := fmt.Sprintf("iter %6d/%d  loss %9.4f  log Z %9.4f  ELBO %9.4f  %6.1f it/s  ETA %-10v", st.Iter+1, end, st.Loss, st.LogZ, -st.MeanDelta, rate, eta.Round(time.Second))
			if tty {
				fmt.Fprintf(os.Stderr, "\r%s", line)
			} else {
				fmt.Fprintln(os.Stderr, line)
			}
		}
		return json.NewEncoder(metrics).Encode(map[string]any{"iter": st.Iter, "loss": st.Loss, "log_z": st.LogZ, "elbo_batch": -st.MeanDelta, "time": elapsed})
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
			score, err := scorePosterior(l, setup, s.Z)
			if err != nil {
				return err
			}
			for _, k := range sortedKeys(score) {
				fmt.Fprintf(os.Stderr, ", %s %.4f", k, score[k])
				rec[k] = score[k]
			}
		}
		fmt.Fprintln(os.Stderr)
		return json.NewEncoder(metrics).Encode(rec)
	}
	var runErr error
	var lastFrame time.Time
loop:
	for tr.Iter() < end {
		select {
		case <-stop:
			runErr = errors.New("interrupted")
			break loop
		default:
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
			if err := tr.SaveWith(ckpt, name, meta); err != nil {
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
	if runErr != nil {
		// A NaN stops here; the checkpoint on disk is the last good one.
		fmt.Fprintf(os.Stderr, "\n")
		if strings.Contains(runErr.Error(), "NaN") || strings.Contains(runErr.Error(), "Inf") {
			return fmt.Errorf("%w (last good checkpoint: %s)", runErr, ckpt)
		}
		if runErr.Error() != "interrupted" {
			return runErr
		}
	}
	sts, err := tr.Flush()
	if err != nil {
		return fmt.Errorf("%w (last good checkpoint: %s)", err, ckpt)
	}
	for _, st := range sts {
		if err := report(st); err != nil {
			return err
		}
	}
	if err := tr.SaveWith(ckpt, name, meta); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\ncheckpoint: %s\n", ckpt)
	if runErr != nil {
		return runErr
	}
	return evaluate()
}

func runEval(args []string) error {
	fs := pflag.NewFlagSet("eval", pflag.ContinueOnError)
	ckptPath := fs.String("checkpoint", "runs/latest/checkpoint.safetensors", "checkpoint to evaluate")
	n := fs.Int("samples", 2000, "on-policy trajectories (and ground-truth samples for W2)")
	seed := fs.Uint64("seed", 1, "seed of the ground-truth samples")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 2 {
		return fmt.Errorf("--samples %d: want at least 2", *n)
	}
	ck, err := train.LoadCheckpoint(*ckptPath)
	if err != nil {
		return err
	}
	var tg train.Target
	if ck.Target != posterior.TargetName {
		if tg, err = train.NewTarget(ck.Target); err != nil {
			return err
		}
	}
	cs, err := openCheckpoint(ck)
	if err != nil {
		return err
	}
	defer cs.Close()
	tr := cs.tr
	s, err := tr.Sample(*n, 0xe7a1)
	if err != nil {
		return err
	}
	if cs.setup != nil {
		// A posterior: log Z is unknown and there are no exact samples; the constraint's
		// own score of the pushed-forward samples stands in for W2.
		est := train.EstimateLogZ(s.LogW, math.NaN())
		fmt.Printf("target        posterior of %s, %d iterations, %s\n", cs.setup.Describe(), ck.Iter, ck.Cfg.Objective)
		fmt.Printf("samples       %d\n", *n)
		fmt.Printf("log Ẑ (ELBO)  %.4f\n", est.ELBO)
		fmt.Printf("log Ẑ^RW      %.4f\n", est.IW)
		score, err := scorePosterior(cs.l, cs.setup, s.Z)
		if err != nil {
			return err
		}
		for _, k := range sortedKeys(score) {
			fmt.Printf("%-13s %.4f\n", k, score[k])
		}
		return nil
	}
	logZ, _ := tg.LogZ()
	est := train.EstimateLogZ(s.LogW, logZ)
	truth := tg.Sample(rand.New(rand.NewPCG(*seed, 99)), *n)
	w2, err := train.W2(s.Z, truth)
	if err != nil {
		return err
	}
	eubo, err := tr.EUBO(truth, 0xe0b0)
	if err != nil {
		return err
	}
	fmt.Printf("target        %s (d=%d), %d iterations, %s\n", tg.Name(), tg.Dim(), ck.Iter, ck.Cfg.Objective)
	fmt.Printf("samples       %d\n", *n)
	fmt.Printf("log Z (true)  %.4f\n", logZ)
	fmt.Printf("log Ẑ (ELBO)  %.4f   Δ    = %.4f\n", est.ELBO, est.Delta)
	fmt.Printf("log Ẑ^RW      %.4f   Δ^RW = %.4f\n", est.IW, est.DelRW)
	fmt.Printf("EUBO          %.4f   EUBO − log Z = %.4f\n", eubo, eubo-logZ)
	fmt.Printf("W2            %.4f\n", w2)
	return nil
}

// runSample draws from a trained posterior sampler and writes x = f(z) as a PNG grid.
func runSample(args []string) error {
	fs := pflag.NewFlagSet("sample", pflag.ContinueOnError)
	n := fs.Int("n", 64, "number of samples")
	cols := fs.Int("cols", 8, "grid columns")
	seed := fs.Uint32("seed", 1, "noise stream of the sampler")
	out := fs.String("out", "samples.png", "PNG grid to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: osds sample CHECKPOINT [--n 64] [--out samples.png]")
	}
	if *n < 1 || *cols < 1 {
		return fmt.Errorf("--n %d and --cols %d must be ≥ 1", *n, *cols)
	}
	ck, err := train.LoadCheckpoint(fs.Arg(0))
	if err != nil {
		return err
	}
	if ck.Target != posterior.TargetName {
		return fmt.Errorf("%s samples %q, not a posterior in a prior's noise space (use `osds view` or `osds eval`)", fs.Arg(0), ck.Target)
	}
	cs, err := openCheckpoint(ck)
	if err != nil {
		return err
	}
	defer cs.Close()
	s, err := cs.tr.Sample(*n, *seed)
	if err != nil {
		return err
	}
	xs, err := posterior.Decode(cs.l, cs.setup.Prior, s.Z)
	if err != nil {
		return err
	}
	h, w, c := cs.setup.Prior.Image()
	if err := priors.WriteGridPNG(*out, xs, *n, h, w, c, *cols); err != nil {
		return err
	}
	score, err := cs.setup.Score(cs.l, xs, *n)
	if err != nil {
		return err
	}
	var parts []string
	for _, k := range sortedKeys(score) {
		parts = append(parts, fmt.Sprintf("%s %.4f", k, score[k]))
	}
	fmt.Printf("wrote %s (%d samples of the posterior of %s; %s)\n", *out, *n, cs.setup.Describe(), strings.Join(parts, ", "))
	return nil
}

// scorePosterior pushes samples z through the prior and scores them against the
// constraint (posterior.Setup.Score).
func scorePosterior(l *kernels.Library, s *posterior.Setup, zs [][]float64) (map[string]float64, error) {
	xs, err := posterior.Decode(l, s.Prior, zs)
	if err != nil {
		return nil, err
	}
	return s.Score(l, xs, len(zs))
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
	d      *gpu.Device
	l      *kernels.Library
	tr     *train.Trainer
	reward train.RewardFunc
	setup  *posterior.Setup // nil for synthetic targets
}

func openCheckpoint(ck *train.Checkpoint) (*checkpointSession, error) {
	d, err := gpu.NewDevice()
	if err != nil {
		return nil, err
	}
	cs := &checkpointSession{d: d, l: kernels.NewLibrary(d)}
	cs.reward = train.TargetReward(ck.Target)
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
		cs.reward = cs.setup.Reward.Func()
	}
	if cs.tr, err = train.NewTrainer(cs.l, ck.Dim, ck.Cfg, cs.reward); err != nil {
		cs.Close()
		return nil, err
	}
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
	cs.l.Release()
	cs.d.Release()
}
