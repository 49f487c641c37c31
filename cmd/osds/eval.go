package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"

	"github.com/spf13/pflag"

	"osds/kernels"
	"osds/posterior"
	"osds/train"
)

func runEval(args []string) error {
	fs := pflag.NewFlagSet("eval", pflag.ContinueOnError)
	ckptFlag := fs.String("checkpoint", "", "the checkpoint to evaluate (or give it as the argument; default: the newest run's)")
	n := fs.Int("samples", 2000, "on-policy trajectories (and ground-truth samples for W2); amortised samplers: spread over the conditions in turn")
	seed := fs.Uint64("seed", 1, "seed of the ground-truth samples")
	asJSON := fs.Bool("json", false, "print the metrics as one JSON object instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 2 {
		return fmt.Errorf("--samples %d: want at least 2", *n)
	}
	path, err := checkpointArg(fs, *ckptFlag)
	if err != nil {
		return err
	}
	ck, err := train.LoadCheckpoint(path)
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
	s, err := tr.Sample(*n, evalStream)
	if err != nil {
		return err
	}
	// With --json the tables go nowhere; the JSON object is the output.
	out := io.Writer(os.Stdout)
	if *asJSON {
		out = io.Discard
	}
	if cs.setup != nil {
		// A posterior: log Z is unknown and there are no exact samples; the constraint's
		// own score of the pushed-forward samples stands in for W2.
		est := train.EstimateLogZ(s.LogW, math.NaN())
		fmt.Fprintf(out, "target        posterior of %s, %d iterations, %s\n", cs.setup.Describe(), ck.Iter, ck.Cfg.Objective)
		if ck.Cfg.Classes > 0 {
			fmt.Fprintf(out, "amortised     %d conditions, one sampler\n", ck.Cfg.Classes)
		}
		if ck.Cfg.Objective == kernels.RTB {
			fmt.Fprintf(out, "relative TB   from the prior sampler %s (log Ẑ is of prior sampler × r)\n", ck.Meta["rtb.from"])
		}
		fmt.Fprintf(out, "samples       %d\n", *n)
		fmt.Fprintf(out, "log Ẑ (ELBO)  %.4f\n", est.ELBO)
		fmt.Fprintf(out, "log Ẑ^RW      %.4f\n", est.IW)
		if ck.Cfg.Classes > 0 {
			// Per condition: log Ẑ over that condition's samples, and TB's learned log Z.
			var logZ []float32
			if ck.Cfg.Objective != kernels.VarGrad {
				if logZ, err = tr.Net.LogZ.Value.Read(); err != nil {
					return err
				}
			}
			for y := 0; y < ck.Cfg.Classes; y++ {
				var w []float64
				for i, lab := range s.Labels {
					if lab == y {
						w = append(w, s.LogW[i])
					}
				}
				if len(w) == 0 {
					continue
				}
				e := train.EstimateLogZ(w, math.NaN())
				line := fmt.Sprintf("  %-11s log Ẑ %.4f, log Ẑ^RW %.4f (%d samples)", cs.setup.Family.Describe(y), e.ELBO, e.IW, len(w))
				if logZ != nil {
					line += fmt.Sprintf(", learned log Z %.4f", logZ[y])
				}
				fmt.Fprintln(out, line)
			}
		}
		score, err := scorePosterior(cs.l, cs.setup, s)
		if err != nil {
			return err
		}
		if *asJSON {
			rec := map[string]any{"checkpoint": path, "target": ck.Target, "prior": ck.Meta[posterior.MetaPrior], "constraint": ck.Meta[posterior.MetaConstraint],
				"iter": ck.Iter, "samples": *n, "elbo": est.ELBO, "iw": est.IW}
			for k, v := range score {
				rec[k] = v
			}
			return printJSON(rec)
		}
		for _, k := range sortedKeys(score) {
			fmt.Fprintf(out, "%-13s %.4f\n", k, score[k])
		}
		return nil
	}
	r, err := evalSynthetic(tr, tg, s, *n, *seed)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(map[string]any{"checkpoint": path, "target": tg.Name(), "dim": tg.Dim(), "objective": ck.Cfg.Objective.String(), "metrics": r})
	}
	fmt.Fprintf(out, "target        %s (d=%d), %d iterations, %s\n", tg.Name(), tg.Dim(), ck.Iter, ck.Cfg.Objective)
	fmt.Fprintf(out, "samples       %d\n", *n)
	// A user's WGSL target may lack LOG_Z (then there are no gaps to report) and always
	// lacks an exact sampler (then no W2 and no EUBO): say so instead of printing NaN.
	if math.IsNaN(r.LogZ) {
		fmt.Fprintf(out, "log Z (true)  unknown (the target declares no LOG_Z)\n")
		fmt.Fprintf(out, "log Ẑ (ELBO)  %.4f\n", r.ELBO)
		fmt.Fprintf(out, "log Ẑ^RW      %.4f\n", r.IW)
	} else {
		fmt.Fprintf(out, "log Z (true)  %.4f\n", r.LogZ)
		fmt.Fprintf(out, "log Ẑ (ELBO)  %.4f   Δ    = %.4f\n", r.ELBO, r.Delta)
		fmt.Fprintf(out, "log Ẑ^RW      %.4f   Δ^RW = %.4f\n", r.IW, r.DeltaRW)
	}
	if !train.HasExactSamples(tg) {
		fmt.Fprintf(out, "EUBO          unavailable: it needs exact samples, and the target has no exact sampler\n")
		fmt.Fprintf(out, "W2            unavailable: it needs exact samples, and the target has no exact sampler\n")
		return nil
	}
	if math.IsNaN(r.LogZ) {
		fmt.Fprintf(out, "EUBO          %.4f\n", r.EUBO)
	} else {
		fmt.Fprintf(out, "EUBO          %.4f   EUBO − log Z = %.4f\n", r.EUBO, r.EUBO-r.LogZ)
	}
	fmt.Fprintf(out, "W2            %.4f\n", r.W2)
	return nil
}

// printJSON writes v to stdout as indented JSON; NaN and ±Inf (which JSON lacks) become
// null.
func printJSON(v any) error {
	raw, err := json.MarshalIndent(finiteJSON(v), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", raw)
	return err
}

// finiteJSON replaces non-finite floats by nil in maps of the metric values.
func finiteJSON(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = finiteJSON(e)
		}
		return out
	case syntheticEval:
		m := map[string]any{"iter": x.Iter, "samples": x.Samples, "log_z": x.LogZ, "elbo": x.ELBO, "iw": x.IW, "delta": x.Delta, "delta_rw": x.DeltaRW, "eubo": x.EUBO, "w2": x.W2}
		return finiteJSON(m)
	}
	return v
}

// evalStream is the noise stream of the on-policy samples `osds eval` and `osds
// protocol` measure, so that both report the same numbers for a checkpoint.
const evalStream = 0xe7a1

// syntheticEval is the metric table of a sampler of a synthetic target (known log Z and
// exact samples), as `osds eval` prints it and `osds protocol` records it.
type syntheticEval struct {
	Iter    int     `json:"iter"`
	Samples int     `json:"samples"`
	LogZ    float64 `json:"log_z"`
	ELBO    float64 `json:"elbo"`
	IW      float64 `json:"iw"`
	Delta   float64 `json:"delta"`
	DeltaRW float64 `json:"delta_rw"`
	EUBO    float64 `json:"eubo"`
	W2      float64 `json:"w2"`
}

// evalSynthetic measures on-policy samples s of tr against target tg: the ELBO and
// importance-weighted log Ẑ and their gaps to the true log Z, the EUBO and W2 against n
// exact samples drawn with seed. What the target cannot give is NaN: the gaps without a
// known log Z, the EUBO and W2 without an exact sampler (a user's WGSL target).
func evalSynthetic(tr *train.Trainer, tg train.Target, s *train.Samples, n int, seed uint64) (syntheticEval, error) {
	logZ, ok := tg.LogZ()
	if !ok {
		logZ = math.NaN()
	}
	est := train.EstimateLogZ(s.LogW, logZ)
	if !train.HasExactSamples(tg) {
		return syntheticEval{Iter: tr.Iter(), Samples: n, LogZ: logZ, ELBO: est.ELBO, IW: est.IW,
			Delta: est.Delta, DeltaRW: est.DelRW, EUBO: math.NaN(), W2: math.NaN()}, nil
	}
	truth := tg.Sample(rand.New(rand.NewPCG(seed, 99)), n)
	w2, err := train.W2(s.Z, truth)
	if err != nil {
		return syntheticEval{}, err
	}
	eubo, err := tr.EUBO(truth, 0xe0b0)
	if err != nil {
		return syntheticEval{}, err
	}
	return syntheticEval{Iter: tr.Iter(), Samples: n, LogZ: logZ, ELBO: est.ELBO, IW: est.IW,
		Delta: est.Delta, DeltaRW: est.DelRW, EUBO: eubo, W2: w2}, nil
}
