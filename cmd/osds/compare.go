package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
	"osds/posterior"
	"osds/priors"
	"osds/train"
)

// compareMethod is one method of `osds compare`: an osds checkpoint or a baseline.
type compareMethod struct {
	Kind string // "osds", "osds-is", "is", "mala", "hmc"
	Path string // the checkpoint of "osds" and "osds-is"
	ck   *train.Checkpoint
}

// drawn is how many samples an osds method draws from its checkpoint: the n outputs, or
// the proposals that osds-is resamples to n.
func (m compareMethod) drawn(n, proposals int) int {
	if m.Kind == "osds-is" {
		return proposals
	}
	return n
}

// parseMethods parses --methods: a comma-separated list of osds:CHECKPOINT,
// osds-is:CHECKPOINT, is, mala, hmc.
func parseMethods(s string) ([]compareMethod, error) {
	var out []compareMethod
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		kind, path, _ := strings.Cut(part, ":")
		switch kind {
		case "osds", "osds-is":
			if path == "" {
				return nil, fmt.Errorf("--methods: %q names no checkpoint (want %s:CHECKPOINT)", part, kind)
			}
			out = append(out, compareMethod{Kind: kind, Path: path})
		case "is", "mala", "hmc":
			if path != "" {
				return nil, fmt.Errorf("--methods: %q: %s takes no argument", part, kind)
			}
			out = append(out, compareMethod{Kind: kind})
		default:
			return nil, fmt.Errorf("--methods: unknown method %q (want osds:CHECKPOINT, osds-is:CHECKPOINT, is, mala or hmc)", part)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--methods: no method")
	}
	return out, nil
}

// checkpointMatches reports whether an osds checkpoint samples the setup's posterior:
// the same prior and constraint, or (an amortised sampler) the family class:all with the
// same β and classifier.
func checkpointMatches(ck *train.Checkpoint, setup *posterior.Setup) error {
	md := setup.Metadata()
	want := md[posterior.MetaConstraint]
	got := ck.Meta[posterior.MetaConstraint]
	if cs, err := posterior.ParseSpec(got); err == nil && cs.Amortised() && setup.Spec.Kind == "class" {
		cs.Label = setup.Spec.Label
		got = cs.String()
	}
	if ck.Meta[posterior.MetaPrior] != md[posterior.MetaPrior] || got != want {
		return fmt.Errorf("it samples %s | %s, not %s", ck.Meta[posterior.MetaPrior], ck.Meta[posterior.MetaConstraint], setup.Describe())
	}
	if ck.Dim != setup.Reward.Dim() {
		return fmt.Errorf("it has dimension %d but the prior's latent dimension is %d", ck.Dim, setup.Reward.Dim())
	}
	return nil
}

// sampleCheckpoint restores an osds checkpoint (openCheckpoint: unconditional,
// amortised or relative-TB samplers) and draws n samples with their log weights; an
// amortised sampler is asked for spec's class.
func sampleCheckpoint(ck *train.Checkpoint, spec posterior.Spec, n int, stream uint32) (*train.Samples, error) {
	cs, err := openCheckpoint(ck)
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	if ck.Cfg.Classes == 0 {
		return cs.tr.Sample(n, stream)
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = spec.Label
	}
	return cs.tr.SampleConditions(labels, stream)
}

// describeConfig is a short label of an osds checkpoint's training: objective and extras.
func describeConfig(ck *train.Checkpoint) string {
	c := ck.Cfg
	parts := []string{map[kernels.Objective]string{kernels.TB: "TB", kernels.VarGrad: "VarGrad", kernels.RTB: "RTB"}[c.Objective]}
	if parts[0] == "" {
		parts[0] = fmt.Sprint(c.Objective)
	}
	if c.Explore > 0 {
		parts = append(parts, fmt.Sprintf("expl %g", c.Explore))
	}
	if c.LS.Every > 0 {
		parts = append(parts, "LS")
	} else if c.BothWays {
		parts = append(parts, "replay")
	}
	if c.Langevin {
		parts = append(parts, "Langevin")
	}
	if c.Classes > 0 {
		parts = append(parts, "amortised")
	}
	shape := ""
	if c.Steps != 100 || c.Batch != 300 {
		shape = fmt.Sprintf(", T=%d B=%d", c.Steps, c.Batch)
	}
	return fmt.Sprintf("osds %s, %d it%s", strings.Join(parts, "+"), ck.Iter, shape)
}

// compareResult is one method's row: its cost, time, metrics and method-specific values.
type compareResult struct {
	Method  string             `json:"method"`
	Spec    string             `json:"spec"`
	Cost    posterior.Cost     `json:"cost"`
	Evals   float64            `json:"f_evals"`
	Seconds float64            `json:"seconds"`
	Metrics map[string]float64 `json:"metrics"`
	Extra   map[string]float64 `json:"extra,omitempty"`
	Grid    string             `json:"grid,omitempty"`
}

// compareReport is the JSON that --json writes.
type compareReport struct {
	Prior        string             `json:"prior"`
	Constraint   string             `json:"constraint"`
	Budget       float64            `json:"budget_f_evals"`
	BudgetFrom   string             `json:"budget_from"`
	N            int                `json:"n"`
	Seed         uint64             `json:"seed"`
	Device       string             `json:"device"`
	Accounting   string             `json:"accounting"`
	Judge        string             `json:"independent_classifier"`
	FrechetLayer string             `json:"frechet_layer,omitempty"`
	Reference    map[string]float64 `json:"real_test_images,omitempty"`
	Methods      []compareResult    `json:"methods"`
	// TrainImages measures n real training images of the class like a method's samples:
	// what a perfect sampler of the data's class-conditional would score at this n.
	TrainImages map[string]float64 `json:"real_train_images,omitempty"`
	// TrainReconstructions measures a VAE prior's reconstructions dec(μ(x)) of those
	// images: the same data as this prior renders it, a reference for what a sampler of
	// the prior can hope to score.
	TrainReconstructions map[string]float64 `json:"vae_reconstructions_of_train_images,omitempty"`
}

const accountingNote = "one f evaluation = one row of the generator's forward pass; a VJP J_fᵀv (input gradient only) counts %g, so ∇log R costs %g; osds = training (terminal log R per trajectory, Langevin ∇log R per step, local-search gradients) + sampling n in whole batches; metric evaluations are not charged"

func runCompare(args []string) error {
	fs := pflag.NewFlagSet("compare", pflag.ContinueOnError)
	priorRef := fs.String("prior", "", "prior: a shipped name or a .safetensors file (default: the osds checkpoint's)")
	constraint := fs.String("constraint", "", "constraint spec, as for train (default: the osds checkpoint's)")
	methods := fs.String("methods", "is,mala,hmc", "comma-separated methods: osds:CHECKPOINT (the sampler's own samples), osds-is:CHECKPOINT (the sampler as an importance proposal: --proposals samples resampled to --n by their trajectory weights), is, mala, hmc")
	proposals := fs.Int("proposals", 0, "samples an osds-is method draws before resampling (0: 10·--n); charged to its budget")
	budget := fs.Float64("budget", 0, "f evaluations for each baseline (0: what the first osds checkpoint spent on training and sampling --n)")
	n := fs.Int("n", 1000, "output samples per method")
	chains := fs.Int("chains", 0, "MALA/HMC chains (0: --n; each chain's final state is a sample)")
	leapfrog := fs.Int("leapfrog", 5, "HMC leapfrog steps per transition")
	burn := fs.Float64("burn", 0.5, "share of MALA/HMC transitions spent on burn-in (step-size adaptation)")
	judge := fs.String("judge", "", "independent classifier for accuracy: a shipped name, a .safetensors file or an imported FILE.onnx whose output's argmax is the class (default <dataset>-classifier-indep)")
	seed := fs.Uint64("seed", 1, "seed of the baselines and of the osds sampling noise")
	evalBatch := fs.Int("eval-batch", 1000, "rows per GPU batch of the baselines' log R evaluations")
	jsonOut := fs.String("json", "", "write the results as JSON to this file ('-': print them on stdout instead of the table)")
	grids := fs.String("grids", "", "write a PNG grid of 64 samples per method into this folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *proposals == 0 {
		*proposals = 10 * *n
	}
	if *n < 2 || *proposals < *n || *chains < 0 || *leapfrog < 1 || !(*burn >= 0 && *burn < 1) || *budget < 0 || *evalBatch < 1 {
		return errors.New("want --n ≥ 2, --proposals ≥ --n, --chains ≥ 0, --leapfrog ≥ 1, 0 ≤ --burn < 1, --budget ≥ 0, --eval-batch ≥ 1")
	}
	ms, err := parseMethods(*methods)
	if err != nil {
		return err
	}
	// Every osds checkpoint must sample the same posterior; --prior/--constraint default
	// to the first one's.
	var first *compareMethod
	for i := range ms {
		m := &ms[i]
		if m.Kind != "osds" && m.Kind != "osds-is" {
			continue
		}
		if m.ck, err = train.LoadCheckpoint(m.Path); err != nil {
			return err
		}
		if m.ck.Target != posterior.TargetName {
			return fmt.Errorf("%s was trained on %q, not on a posterior", m.Path, m.ck.Target)
		}
		if first == nil {
			first = m
			if *priorRef == "" {
				*priorRef = m.ck.Meta[posterior.MetaPrior]
			}
			if *constraint == "" {
				*constraint = m.ck.Meta[posterior.MetaConstraint]
			}
		}
	}
	if *priorRef == "" || *constraint == "" {
		return errors.New("give --prior and --constraint (or an osds:CHECKPOINT method to take them from)")
	}
	spec, err := posterior.ParseSpec(*constraint)
	if err != nil {
		return fmt.Errorf("--constraint: %w", err)
	}
	if spec.Amortised() {
		return fmt.Errorf("--constraint %s is a family of constraints: give the class to compare on, e.g. --constraint class:7 (an amortised osds sampler is then asked for that class)", *constraint)
	}
	budgetFrom := "--budget"
	if *budget == 0 {
		if first == nil {
			return errors.New("--budget is needed when no osds:CHECKPOINT method gives one")
		}
		*budget = posterior.SamplerCost(first.ck.Cfg, first.ck.Iter, first.drawn(*n, *proposals)).Evals()
		budgetFrom = first.Path
	}
	if *chains == 0 {
		*chains = *n
	}
	if *grids != "" {
		if err := os.MkdirAll(*grids, 0o755); err != nil {
			return err
		}
	}

	d, err := gpu.NewDevice()
	if err != nil {
		return err
	}
	defer d.Release()
	l := kernels.NewLibrary(d)
	defer l.Release()
	setup, err := posterior.Open(l, *priorRef, spec)
	if err != nil {
		return err
	}
	defer setup.Release()
	for _, m := range ms {
		if m.ck == nil {
			continue
		}
		if err := checkpointMatches(m.ck, setup); err != nil {
			return fmt.Errorf("%s: %w", m.Path, err)
		}
	}
	j, err := posterior.NewJudge(l, setup, *judge)
	if err != nil {
		return err
	}
	defer j.Release()
	ev, err := posterior.NewEvaluator(l, setup.Reward.Func(), setup.Reward.Dim(), *evalBatch)
	if err != nil {
		return err
	}
	defer ev.Release()

	rep := compareReport{Prior: setup.PriorRef, Constraint: setup.Spec.String(), Budget: *budget, BudgetFrom: budgetFrom,
		N: *n, Seed: *seed, Device: d.AdapterInfo().Device, Judge: j.IndepRef,
		Accounting: fmt.Sprintf(accountingNote, posterior.VJPCost, 1+posterior.VJPCost)}
	if _, ok := setup.Constraint.(posterior.Class); ok {
		rep.FrechetLayer = posterior.FrechetLayer + " (" + j.FeaturesRef + ")"
		real := j.Real()
		rep.Reference = map[string]float64{"n": float64(real.N), "accuracy": real.Accuracy, "class_entropy": real.ClassEntropy, "diversity": real.Diversity}
	}
	fmt.Fprintf(os.Stderr, "comparing on the posterior of %s: budget %.0f f evaluations (from %s), %d samples per method\n", setup.Describe(), *budget, budgetFrom, *n)
	report := phaseProgress(sigs)
	for _, m := range ms {
		start := time.Now()
		// A baseline's progress is its f evaluations against the budget.
		phase := m.Kind
		base := ev.Cost.Evals()
		ev.Progress = func(c posterior.Cost) error {
			return report(phase+" f evaluations", int(c.Evals()-base), int(*budget))
		}
		var res compareResult
		var zs [][]float64
		var logW []float64
		switch m.Kind {
		case "osds", "osds-is":
			drawn := m.drawn(*n, *proposals)
			res.Method, res.Spec = describeConfig(m.ck), m.Kind+":"+m.Path
			s, err := sampleCheckpoint(m.ck, setup.Spec, drawn, uint32(*seed))
			if err != nil {
				return fmt.Errorf("%s: %w", m.Path, err)
			}
			zs, logW = s.Z, s.LogW
			res.Cost = posterior.SamplerCost(m.ck.Cfg, m.ck.Iter, drawn)
			res.Extra = map[string]float64{}
			if m.Kind == "osds-is" {
				// Sampling–importance–resampling with the trained sampler as the proposal:
				// the trajectory weights w = R·p_B/p_F make the resampled terminal states
				// exact as the proposals grow, whatever the sampler's remaining error (as
				// long as it covers the posterior). A relative-TB sampler's weights are
				// against its own target, the prior sampler's marginal × r.
				ess := posterior.ESS(s.LogW)
				if !(ess > 0) {
					return fmt.Errorf("%s: none of its %d proposals has a finite weight log R + log p_B − log p_F", m.Path, drawn)
				}
				zs = nil
				rng := rand.New(rand.NewPCG(*seed, 0x515))
				for _, i := range posterior.SystematicResample(posterior.NormalisedWeights(s.LogW), *n, rng) {
					zs = append(zs, s.Z[i])
				}
				res.Method += fmt.Sprintf(" + IS of %d", drawn)
				res.Extra["ess"], res.Extra["proposals"] = ess, float64(drawn)
			}
			if sec, ok := trainingSeconds(filepath.Join(filepath.Dir(m.Path), "metrics.jsonl")); ok {
				res.Extra["train_seconds"] = sec
			}
		case "is":
			res.Method, res.Spec = "IS (prior proposal)", "is"
			r, err := posterior.ImportanceSample(ev, int(*budget), *n, *seed)
			if err != nil {
				return err
			}
			zs, res.Cost = r.Samples, r.Cost
			res.Extra = map[string]float64{"ess": r.ESS, "log_z": r.LogZ, "proposals": float64(len(r.Z))}
		case "mala", "hmc":
			L := 1
			if m.Kind == "hmc" {
				L = *leapfrog
			}
			iters := posterior.MCMCIters(*budget, *chains, L)
			if iters < 2 {
				return fmt.Errorf("%s: a budget of %.0f f evaluations buys %d transitions of %d chains; give a larger --budget or fewer --chains", m.Kind, *budget, iters, *chains)
			}
			cfg := posterior.MCMCConfig{Chains: *chains, Iters: iters, Burn: int(*burn * float64(iters)), Leapfrog: L, Seed: *seed}
			var r *posterior.ChainResult
			if m.Kind == "mala" {
				res.Method, res.Spec = fmt.Sprintf("MALA (%d chains × %d)", cfg.Chains, iters), "mala"
				r, err = posterior.MALA(ev, cfg)
			} else {
				res.Method, res.Spec = fmt.Sprintf("HMC (%d chains × %d × L=%d)", cfg.Chains, iters, L), "hmc"
				r, err = posterior.HMC(ev, cfg)
			}
			if err != nil {
				return err
			}
			zs, res.Cost = r.Final(*n), r.Cost
			res.Extra = map[string]float64{"acceptance": r.Accept, "step": r.Step, "transitions": float64(iters), "burn_in": float64(cfg.Burn), "chains": float64(cfg.Chains)}
		}
		res.Seconds = time.Since(start).Seconds()
		res.Evals = res.Cost.Evals()
		met, xs, err := j.Measure(zs)
		if err != nil {
			return fmt.Errorf("%s: %w", res.Method, err)
		}
		if logW != nil {
			est := train.EstimateLogZ(logW, math.NaN())
			met.ELBO, met.IWLogZ = est.ELBO, est.IW
		}
		if res.Extra != nil && m.Kind == "is" {
			met.IWLogZ = res.Extra["log_z"] // IS's log Ẑ is the same estimator over prior proposals
		}
		res.Metrics = met.Map()
		if *grids != "" {
			res.Grid = filepath.Join(*grids, gridName(m)+".png")
			h, w, c := setup.Prior.Image()
			k := min(64, len(zs))
			if err := priors.WriteGridPNG(res.Grid, xs[:k*h*w*c], k, h, w, c, 8); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "%s: %s in %.1fs\n", res.Method, res.Cost, res.Seconds)
		rep.Methods = append(rep.Methods, res)
	}
	if _, ok := setup.Constraint.(posterior.Class); ok {
		tm, err := j.MeasureTrainImages(*n)
		if err != nil {
			return err
		}
		rep.TrainImages = tm.Map()
		rm, ok, err := j.MeasureTrainReconstructions(*n)
		if err != nil {
			return err
		}
		if ok {
			rep.TrainReconstructions = rm.Map()
		}
	}
	if *jsonOut == "-" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Printf("%s\n", data)
		return err
	}
	printCompare(os.Stdout, rep)
	if *jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := nn.WriteFileAtomic(*jsonOut, append(data, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// trainingSeconds reads the wall time of the last iteration a training run logged in its
// metrics.jsonl (the folder of the checkpoint; a resumed run restarts its clock, so the
// times of each run's last line are summed).
func trainingSeconds(path string) (float64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	total, last, prevIter := 0.0, 0.0, -1
	for _, line := range strings.Split(string(data), "\n") {
		var rec struct {
			Iter *int     `json:"iter"`
			Time *float64 `json:"time"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Iter == nil || rec.Time == nil {
			continue
		}
		if *rec.Time < last || *rec.Iter <= prevIter {
			total += last // a new run (resumed) starts its clock again
		}
		last, prevIter = *rec.Time, *rec.Iter
	}
	return total + last, last > 0
}

// gridName is a file name for a method's grid.
func gridName(m compareMethod) string {
	if m.Kind != "osds" && m.Kind != "osds-is" {
		return m.Kind
	}
	return m.Kind + "-" + strings.TrimSuffix(filepath.Base(filepath.Dir(m.Path)), string(filepath.Separator))
}

// compareColumns are the table's metric columns: JSON name and heading.
var compareColumns = []struct{ key, head string }{
	{"accuracy", "acc"}, {"class_entropy", "H(cls)"}, {"diversity", "div"}, {"diversity_ratio", "div/real"},
	{"frechet", "FD"}, {"observed_rmse", "RMSE obs"}, {"free_rmse", "RMSE free"}, {"mean_log_r", "mean log r"}, {"z_sq", "‖z‖²/d"},
	{"elbo", "ELBO"}, {"iw_log_z", "IW log Ẑ"},
}

// printCompare writes the comparison table: one row per method, the columns that apply.
func printCompare(w io.Writer, rep compareReport) {
	fmt.Fprintf(w, "posterior of %s | %s; budget %.0f f evaluations; %d samples per method\n", rep.Prior, rep.Constraint, rep.Budget, rep.N)
	if rep.Reference != nil {
		fmt.Fprintf(w, "real test images of the class (%.0f): acc %.4f, H(cls) %.4f, div %.4f; accuracy by %s; FD in %s\n",
			rep.Reference["n"], rep.Reference["accuracy"], rep.Reference["class_entropy"], rep.Reference["diversity"], rep.Judge, rep.FrechetLayer)
	}
	var cols []struct{ key, head string }
	for _, c := range compareColumns {
		for _, m := range rep.Methods {
			if _, ok := m.Metrics[c.key]; ok {
				cols = append(cols, c)
				break
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "method\tf evals\ttime (s)\t")
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", c.head)
	}
	fmt.Fprintln(tw, "extra\t")
	for _, m := range rep.Methods {
		fmt.Fprintf(tw, "%s\t%.3g\t%.1f\t", m.Method, m.Evals, m.Seconds)
		for _, c := range cols {
			if v, ok := m.Metrics[c.key]; ok {
				fmt.Fprintf(tw, "%.4g\t", v)
			} else {
				fmt.Fprint(tw, "–\t")
			}
		}
		var extra []string
		for _, k := range posterior.SortedKeys(m.Extra) {
			extra = append(extra, fmt.Sprintf("%s %.4g", k, m.Extra[k]))
		}
		fmt.Fprintf(tw, "%s\t\n", strings.Join(extra, ", "))
	}
	for _, ref := range []struct {
		name string
		m    map[string]float64
	}{{"real train images", rep.TrainImages}, {"VAE reconstructions of them", rep.TrainReconstructions}} {
		if ref.m == nil {
			continue
		}
		fmt.Fprintf(tw, "%s (%.0f)\t–\t–\t", ref.name, ref.m["n"])
		for _, c := range cols {
			if v, ok := ref.m[c.key]; ok {
				fmt.Fprintf(tw, "%.4g\t", v)
			} else {
				fmt.Fprint(tw, "–\t")
			}
		}
		fmt.Fprintln(tw, "reference\t")
	}
	tw.Flush()
}
