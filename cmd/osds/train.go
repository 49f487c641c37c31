package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osds/gpu"
	"osds/kernels"
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
	w, err := viewer.Open(d, d.Adapter(), "osds "+target, 480, 480)
	if err != nil {
		return nil, err
	}
	z := tr.Terminal()
	if err := w.Show(z.Buf, viewer.Grid{N: z.Rows(), W: z.Cols(), Density: true, Extent: viewExtents[target], Radius: 2.5}); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func runTrain(args []string) error {
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	target := fs.String("target", "gmm25", "target density: gmm25, funnel or manywell")
	iters := fs.Int("iters", 25000, "training iterations")
	steps := fs.Int("steps", 100, "SDE steps T")
	batch := fs.Int("batch", 300, "trajectories per iteration")
	width := fs.Int("width", 64, "hidden width")
	sigma2 := fs.Float64("sigma2", 0, "diffusion coefficient σ² (0: the target's benchmark value)")
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
	tg, err := train.NewTarget(*target)
	if err != nil {
		return err
	}
	cfg := train.DefaultConfig(tg)
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
	var ck *train.Checkpoint
	if *resume != "" {
		if ck, err = train.LoadCheckpoint(*resume); err != nil {
			return err
		}
		if ck.Target != tg.Name() {
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
	tr, err := train.NewTrainer(l, tg.Dim(), cfg, train.TargetReward(tg.Name()))
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
		if win, err = openTrainView(d, tr, tg.Name()); err != nil {
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
	logZ, _ := tg.LogZ()

	// Ctrl-C stops after the current iteration and keeps a checkpoint.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	defer signal.Stop(stop)

	fmt.Fprintf(os.Stderr, "training %s (d=%d) on %s: %d iterations, batch %d, T=%d, σ²=%g, %s\n",
		tg.Name(), tg.Dim(), d.AdapterInfo().Device, *iters, cfg.Batch, cfg.Steps, cfg.Sigma2, cfg.Objective)
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
		fmt.Fprintf(os.Stderr, "\neval at %d: log Ẑ %.4f (Δ %.4f), log Ẑ^RW %.4f (Δ^RW %.4f)\n", tr.Iter(), est.ELBO, est.Delta, est.IW, est.DelRW)
		return json.NewEncoder(metrics).Encode(map[string]any{"iter": tr.Iter(), "eval_elbo": est.ELBO, "eval_iw": est.IW, "delta": est.Delta, "delta_rw": est.DelRW})
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
				win.SetTitle(fmt.Sprintf("osds %s — iter %d  loss %.4f  log Z %.4f  ELBO %.4f", tg.Name(), st.Iter+1, st.Loss, st.LogZ, -st.MeanDelta))
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
			if err := tr.Save(ckpt, tg.Name()); err != nil {
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
	if err := tr.Save(ckpt, tg.Name()); err != nil {
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
	tg, err := train.NewTarget(ck.Target)
	if err != nil {
		return err
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

// isTerminal reports whether f is a character device (a terminal, not a file or pipe).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// checkpointSession is a device, a kernel library and a trainer restored from a checkpoint
// (what `osds eval` and `osds view` start from).
type checkpointSession struct {
	d  *gpu.Device
	l  *kernels.Library
	tr *train.Trainer
}

func openCheckpoint(ck *train.Checkpoint) (*checkpointSession, error) {
	d, err := gpu.NewDevice()
	if err != nil {
		return nil, err
	}
	cs := &checkpointSession{d: d, l: kernels.NewLibrary(d)}
	if cs.tr, err = train.NewTrainer(cs.l, ck.Dim, ck.Cfg, train.TargetReward(ck.Target)); err != nil {
		cs.Close()
		return nil, err
	}
	if err := cs.tr.Restore(ck); err != nil {
		cs.Close()
		return nil, err
	}
	return cs, nil
}

// Close releases the trainer, the library and the device.
func (cs *checkpointSession) Close() {
	if cs.tr != nil {
		cs.tr.Release()
	}
	cs.l.Release()
	cs.d.Release()
}
