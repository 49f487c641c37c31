package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"osds/nn"
	"osds/train"
)

// The published protocol (reference notes §6 and §8; Sendera et al.): every method trains
// 25,000 iterations (10,000 with the Langevin drift), batch 300, T = 100, the target's σ²,
// width 64, over 5 seeds, and is evaluated on 2000 on-policy samples (W2 against 2000 exact
// samples). `osds protocol` runs that table cell by cell, resumably: a session with a time
// limit stops inside a cell with a checkpoint, and the next call continues it
// bit-identically, so the table can be filled over several sessions or on a lent GPU.

// publishedStat is a published mean ± std over 5 runs.
type publishedStat struct{ Mean, Std float64 }

// publishedCell is one target's published Δ log Ẑ, Δ log Ẑ^RW and W2 for one method.
type publishedCell struct{ Delta, DeltaRW, W2 publishedStat }

// protocolMethod is one row of the published table: the `osds train` flags that make it,
// its iteration count and the published numbers per target.
type protocolMethod struct {
	Slug, Name string
	Args       []string
	Iters      int
	Published  map[string]publishedCell
}

func pub(d, ds, rw, rws, w, ws float64) publishedCell {
	return publishedCell{publishedStat{d, ds}, publishedStat{rw, rws}, publishedStat{w, ws}}
}

// protocolTargets are the synthetic targets of the published table, in its order.
var protocolTargets = []string{"gmm25", "funnel", "manywell"}

// protocolMethods are the rows of the published table that osds implements (reference
// notes §8, Table 1). Exploration is 0.2, or 0.1 with local search; local search draws
// buffer states by rank (k = 0.01) and runs K = 200 MALA steps (100 burn-in) every 100
// iterations: the train defaults.
var protocolMethods = []protocolMethod{
	{"tb", "TB", nil, 25000, map[string]publishedCell{
		"gmm25": pub(1.176, 0.109, 1.071, 0.112, 4.83, 0.45), "funnel": pub(0.690, 0.018, 0.239, 0.192, 22.4, 4.0), "manywell": pub(4.01, 0.04, 2.67, 0.02, 6.14, 0.02)}},
	{"tb-expl", "TB + Expl.", []string{"--explore", "0.2"}, 25000, map[string]publishedCell{
		"gmm25": pub(0.560, 0.302, 0.422, 0.320, 3.61, 1.41), "funnel": pub(0.749, 0.015, 0.226, 0.138, 21.3, 4.0), "manywell": pub(4.01, 0.05, 2.68, 0.06, 6.15, 0.02)}},
	{"vargrad-expl", "VarGrad + Expl.", []string{"--objective", "vargrad", "--explore", "0.2"}, 25000, map[string]publishedCell{
		"gmm25": pub(0.615, 0.241, 0.487, 0.250, 3.89, 0.85), "funnel": pub(0.642, 0.010, 0.250, 0.112, 22.1, 4.0), "manywell": pub(4.01, 0.05, 2.69, 0.06, 6.15, 0.02)}},
	{"tb-expl-ls", "TB + Expl. + LS", []string{"--explore", "0.1", "--local-search", "--replay", "rank"}, 25000, map[string]publishedCell{
		"gmm25": pub(0.171, 0.013, 0.004, 0.011, 1.25, 0.18), "funnel": pub(0.653, 0.025, 0.285, 0.099, 21.9, 4.0), "manywell": pub(4.57, 2.13, 0.19, 0.29, 5.66, 0.05)}},
	{"tb-expl-lp", "TB + Expl. + LP", []string{"--explore", "0.2", "--langevin"}, 10000, map[string]publishedCell{
		"gmm25": pub(0.206, 0.018, 0.011, 0.010, 1.29, 0.07), "funnel": pub(0.666, 0.615, 0.051, 0.616, 22.3, 3.9), "manywell": pub(7.46, 1.74, 1.06, 1.11, 5.73, 0.31)}},
	{"tb-expl-lp-ls", "TB + Expl. + LP + LS", []string{"--explore", "0.1", "--langevin", "--local-search", "--replay", "rank"}, 10000, map[string]publishedCell{
		"gmm25": pub(0.190, 0.013, 0.007, 0.011, 1.31, 0.07), "funnel": pub(0.768, 0.052, 0.264, 0.063, 21.8, 3.9), "manywell": pub(4.68, 0.49, 0.07, 0.17, 5.33, 0.03)}},
	{"vargrad-expl-lp-ls", "VarGrad + Expl. + LP + LS", []string{"--objective", "vargrad", "--explore", "0.1", "--langevin", "--local-search", "--replay", "rank"}, 10000, map[string]publishedCell{
		"gmm25": pub(0.207, 0.016, 0.015, 0.015, 1.13, 0.13), "funnel": pub(0.920, 0.118, 0.256, 0.037, 21.2, 4.0), "manywell": pub(4.11, 0.45, 0.02, 0.21, 5.30, 0.02)}},
}

// protocolCell is one (target, method, seed) run of the protocol.
type protocolCell struct {
	Target string
	Method protocolMethod
	Seed   int
	Iters  int // the goal: the method's published count, or --iters
}

// name is the cell as --cell takes it: TARGET/METHOD/seedK, its folder under OUT.
func (c protocolCell) name() string {
	return c.Target + "/" + c.Method.Slug + "/seed" + strconv.Itoa(c.Seed)
}

func (c protocolCell) dir(root string) string {
	return filepath.Join(root, filepath.FromSlash(c.name()))
}

func (c protocolCell) String() string {
	return fmt.Sprintf("%s / %s / seed %d", c.Target, c.Method.Name, c.Seed)
}

// cellEval is a finished cell's evaluation as written to its eval.json.
type cellEval struct {
	Target string `json:"target"`
	Method string `json:"method"`
	Seed   int    `json:"seed"`
	syntheticEval
}

func runProtocol(args []string) error {
	fs := pflag.NewFlagSet("protocol", pflag.ContinueOnError)
	out := fs.String("out", "results/protocol", "folder of the runs: OUT/TARGET/METHOD/seedK/{checkpoint.safetensors,metrics.jsonl,eval.json}, and OUT/table.md (the default is the repository's record: git keeps its eval.json files and table.md, and ignores the rest)")
	targets := fs.String("targets", strings.Join(protocolTargets, ","), "comma-separated targets")
	methods := fs.String("methods", "all", "comma-separated method slugs, or all: "+methodSlugs())
	seeds := fs.Int("seeds", 5, "seeds 1..N per method and target")
	iters := fs.Int("iters", 0, "iterations per run (0: the published 25,000, or 10,000 with the Langevin drift); a smaller value makes a quick, not comparable, table")
	timeLimit := fs.Duration("time-limit", 0, "stop after this much wall time (e.g. 2h) with every run checkpointed; the next call continues (0: run the whole table)")
	tableOnly := fs.Bool("table", false, "only print the table of the runs evaluated so far")
	samples := fs.Int("samples", 2000, "on-policy samples (and exact samples for W2) per evaluation")
	jobs := fs.Int("jobs", 1, "runs trained at once, each in its own osds process (log: its folder's protocol.log); on a CPU adapter each gets LP_NUM_THREADS = cores/jobs unless that is set: on lavapipe with 2 cores, 2 jobs train about 1.5× the runs per hour of 1; on a GPU processes do not add up, keep 1")
	only := fs.String("cell", "", "run only this run, named as its folder under OUT: TARGET/METHOD/seedK (replaces --targets, --methods and --seeds; the table of OUT is not rewritten)")
	sl := addSlurmFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := sl.validate(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var cells []protocolCell
	var err error
	if *only != "" {
		cells, err = parseCell(*only, *iters)
	} else {
		cells, err = protocolCells(*targets, *methods, *seeds, *iters)
	}
	if err != nil {
		return err
	}
	if *timeLimit < 0 || *samples < 2 || *jobs < 1 {
		return fmt.Errorf("--time-limit must be ≥ 0, --samples ≥ 2 and --jobs ≥ 1")
	}
	if sl.slurm {
		return runSlurm(sl, cells, *out, *samples, *iters, tableCommand(fs))
	}
	if !*tableOnly {
		deadline := time.Time{}
		if *timeLimit > 0 {
			deadline = time.Now().Add(*timeLimit)
		}
		var done int
		if *jobs > 1 {
			done, err = runCellsInWorkers(cells, *out, deadline, *samples, *iters, *jobs)
		} else {
			done, err = runCells(cells, *out, deadline, *samples)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "protocol: %d of %d runs finished and evaluated\n", done, len(cells))
	}
	table, err := protocolTable(cells, *out)
	if err != nil {
		return err
	}
	fmt.Print(table)
	if *only != "" {
		return nil // one run's table; OUT/table.md stays the whole table's
	}
	// The runs the table lacks, and why, on stderr: table.md holds only what was measured.
	fmt.Fprint(os.Stderr, formatMissing(missingCells(cells, *out, *samples), len(cells)))
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	return nn.WriteFileAtomic(filepath.Join(*out, "table.md"), []byte(table))
}

// parseCell is the one run named TARGET/METHOD/seedK, as its folder under OUT.
func parseCell(name string, iters int) ([]protocolCell, error) {
	parts := strings.Split(name, "/")
	bad := func(why string) error {
		return fmt.Errorf("--cell %q: %s (want TARGET/METHOD/seedK, e.g. funnel/tb-expl-lp/seed2)", name, why)
	}
	if len(parts) != 3 || strings.Contains(name, ",") || parts[1] == "all" {
		return nil, bad("not one target, one method and one seed")
	}
	seed, err := strconv.Atoi(strings.TrimPrefix(parts[2], "seed"))
	if !strings.HasPrefix(parts[2], "seed") || err != nil || seed < 1 {
		return nil, bad(fmt.Sprintf("%q is not seedK with K ≥ 1", parts[2]))
	}
	cells, err := protocolCells(parts[0], parts[1], seed, iters)
	if err != nil {
		return nil, bad(err.Error())
	}
	return cells[len(cells)-1:], nil // seeds 1..K: the last is seed K
}

// finished reports whether c's folder holds its evaluation at the table's iteration count
// and sample count, and returns it.
func finished(c protocolCell, root string, samples int) (cellEval, bool) {
	ev, err := readCellEval(c.dir(root))
	return ev, err == nil && ev.Iter == c.Iters && ev.Samples == samples
}

// runCellsInWorkers trains the unfinished cells `jobs` at a time, each in a child
// `osds protocol --cell` process whose output goes to the cell's protocol.log. Processes
// rather than goroutines, because lavapipe's thread count (LP_NUM_THREADS) is fixed per
// process: one dispatch of a small kernel keeps few threads busy, so on a CPU adapter two
// single-threaded processes do more work than one with two threads (BENCHMARKS.md). No
// cell starts after the deadline; running ones get the time left as their --time-limit.
// The first failure stops new cells from starting, and is returned with its log's tail.
func runCellsInWorkers(cells []protocolCell, root string, deadline time.Time, samples, iters, jobs int) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("--jobs: finding this program to run its workers: %w", err)
	}
	env := os.Environ()
	if os.Getenv("LP_NUM_THREADS") == "" {
		env = append(env, "LP_NUM_THREADS="+strconv.Itoa(max(1, runtime.NumCPU()/jobs)))
	}
	var (
		mu   sync.Mutex
		done int
		errs []error
		wg   sync.WaitGroup
	)
	type job struct {
		c    protocolCell
		what string
	}
	next := make(chan job)
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				c := j.c
				ok, err := runCellProcess(self, env, c, j.what, root, deadline, samples, iters)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if ok {
					done++
				}
				mu.Unlock()
			}
		}()
	}
	for k, c := range cells {
		if _, ok := finished(c, root, samples); ok {
			mu.Lock()
			done++
			mu.Unlock()
			continue
		}
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed || (!deadline.IsZero() && time.Until(deadline) <= 0) {
			break
		}
		next <- job{c, fmt.Sprintf("run %d of %d, %s", k+1, len(cells), c)}
	}
	close(next)
	wg.Wait()
	return done, errors.Join(errs...)
}

// runCellProcess runs `osds protocol --cell` for c in a child process, its output
// appended to the cell's protocol.log, and reports the evaluation when the run finished
// (ok: it did).
func runCellProcess(self string, env []string, c protocolCell, what, root string, deadline time.Time, samples, iters int) (ok bool, err error) {
	dir := c.dir(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	logPath := filepath.Join(dir, "protocol.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	args := []string{"protocol", "--out", root, "--cell", c.name(), "--samples", strconv.Itoa(samples)}
	if iters > 0 {
		args = append(args, "--iters", strconv.Itoa(iters))
	}
	if !deadline.IsZero() {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		args = append(args, "--time-limit", left.String())
	}
	fmt.Fprintf(os.Stderr, "protocol: %s: in a worker process (log: %s)\n", what, logPath)
	cmd := exec.Command(self, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("%s: starting a worker: %w", c, err)
	}
	// A signal to this process is passed on to the worker, which checkpoints and exits.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var runErr error
	for waiting, forwarded := true, false; waiting; {
		select {
		case runErr = <-exited:
			waiting = false
		case <-time.After(200 * time.Millisecond):
			if s := sigs.signal(); s != nil && !forwarded {
				cmd.Process.Signal(s)
				forwarded = true
			}
		}
	}
	if err := sigs.err(); err != nil {
		return false, fmt.Errorf("%s: %w (the worker kept its checkpoint; the next call continues)", c, err)
	}
	if runErr != nil {
		return false, fmt.Errorf("%s: worker failed (%v); the end of %s:\n%s", c, runErr, logPath, logTail(logPath, 15))
	}
	ev, ok := finished(c, root, samples)
	if ok {
		fmt.Fprintf(os.Stderr, "protocol: %s: Δ %.4f, Δ^RW %.4f, W2 %.4f, EUBO %.4f\n", c, ev.Delta, ev.DeltaRW, ev.W2, ev.EUBO)
	} else {
		fmt.Fprintf(os.Stderr, "protocol: %s: stopped by the time limit with a checkpoint\n", c)
	}
	return ok, nil
}

// logTail is the last n lines of a log file, progress lines redrawn with \r included.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r", "\n"), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func methodSlugs() string {
	var s []string
	for _, m := range protocolMethods {
		s = append(s, m.Slug)
	}
	return strings.Join(s, ", ")
}

// protocolCells lists the runs of the selected targets, methods and seeds, in the order
// they are trained: seed-major, so that a partial table has every cell's first seed first.
func protocolCells(targets, methods string, seeds, iters int) ([]protocolCell, error) {
	if seeds < 1 || iters < 0 {
		return nil, fmt.Errorf("--seeds %d and --iters %d: want ≥ 1 seed and ≥ 0 iterations", seeds, iters)
	}
	var ts []string
	for _, t := range strings.Split(targets, ",") {
		t = strings.TrimSpace(t)
		ok := false
		for _, k := range protocolTargets {
			ok = ok || k == t
		}
		if !ok {
			return nil, fmt.Errorf("--targets: unknown target %q (want some of %s)", t, strings.Join(protocolTargets, ", "))
		}
		ts = append(ts, t)
	}
	var ms []protocolMethod
	if strings.TrimSpace(methods) == "all" {
		ms = protocolMethods
	} else {
		for _, slug := range strings.Split(methods, ",") {
			slug = strings.TrimSpace(slug)
			found := false
			for _, m := range protocolMethods {
				if m.Slug == slug {
					ms, found = append(ms, m), true
				}
			}
			if !found {
				return nil, fmt.Errorf("--methods: unknown method %q (want all, or some of %s)", slug, methodSlugs())
			}
		}
	}
	var cells []protocolCell
	for seed := 1; seed <= seeds; seed++ {
		for _, t := range ts {
			for _, m := range ms {
				n := m.Iters
				if iters > 0 {
					n = iters
				}
				cells = append(cells, protocolCell{Target: t, Method: m, Seed: seed, Iters: n})
			}
		}
	}
	return cells, nil
}

// runCells trains (or resumes) and evaluates each cell in turn until all are done or the
// deadline (zero: none) passes. It returns how many cells are finished and evaluated.
func runCells(cells []protocolCell, root string, deadline time.Time, samples int) (int, error) {
	done := 0
	for k, c := range cells {
		dir := c.dir(root)
		ckpt := filepath.Join(dir, "checkpoint.safetensors")
		if _, ok := finished(c, root, samples); ok {
			done++
			continue
		}
		iter := 0
		if _, err := os.Stat(ckpt); err == nil {
			ck, err := train.LoadCheckpoint(ckpt)
			if err != nil {
				return done, fmt.Errorf("%s: %w (remove %s to start this run again)", c, err, dir)
			}
			iter = ck.Iter
			if ck.Target != c.Target || ck.Cfg.Seed != uint64(c.Seed) {
				return done, fmt.Errorf("%s: %s holds a run of %q with seed %d (remove it, or use another --out)", c, ckpt, ck.Target, ck.Cfg.Seed)
			}
		}
		if iter > c.Iters {
			return done, fmt.Errorf("%s: %s is at iteration %d, past this table's %d (use another --out)", c, ckpt, iter, c.Iters)
		}
		if iter < c.Iters {
			left := time.Duration(0)
			if !deadline.IsZero() {
				if left = time.Until(deadline); left <= 0 {
					return done, nil
				}
			}
			args := []string{"--out", dir, "--iters", strconv.Itoa(c.Iters - iter)}
			if iter > 0 {
				fmt.Fprintf(os.Stderr, "protocol: run %d of %d, %s: resuming at iteration %d of %d\n", k+1, len(cells), c, iter, c.Iters)
				args = append(args, "--resume", ckpt)
			} else {
				fmt.Fprintf(os.Stderr, "protocol: run %d of %d, %s: %d iterations\n", k+1, len(cells), c, c.Iters)
				// --force: the cell's folder is the protocol's own; what a run that never
				// reached its first checkpoint left there is replaced.
				args = append(append(args, "--force", "--target", c.Target, "--seed", strconv.Itoa(c.Seed)), c.Method.Args...)
			}
			if left > 0 {
				args = append(args, "--time-limit", left.String())
			}
			if err := runTrain(args); err != nil {
				return done, fmt.Errorf("%s: %w", c, err)
			}
			ck, err := train.LoadCheckpoint(ckpt)
			if err != nil {
				return done, fmt.Errorf("%s: %w", c, err)
			}
			if ck.Iter < c.Iters {
				return done, nil // the time limit stopped it
			}
		}
		ev, err := evalCheckpoint(ckpt, samples)
		if err != nil {
			return done, fmt.Errorf("%s: evaluating: %w", c, err)
		}
		rec := cellEval{Target: c.Target, Method: c.Method.Slug, Seed: c.Seed, syntheticEval: ev}
		js, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return done, err
		}
		if err := nn.WriteFileAtomic(filepath.Join(dir, "eval.json"), append(js, '\n')); err != nil {
			return done, err
		}
		fmt.Fprintf(os.Stderr, "protocol: %s: Δ %.4f, Δ^RW %.4f, W2 %.4f, EUBO %.4f\n", c, ev.Delta, ev.DeltaRW, ev.W2, ev.EUBO)
		done++
	}
	return done, nil
}

// evalCheckpoint evaluates a synthetic-target checkpoint as `osds eval` does (the same
// sample stream and exact-sample seed 1).
func evalCheckpoint(path string, samples int) (syntheticEval, error) {
	ck, err := train.LoadCheckpoint(path)
	if err != nil {
		return syntheticEval{}, err
	}
	tg, err := train.NewTarget(ck.Target)
	if err != nil {
		return syntheticEval{}, err
	}
	cs, err := openCheckpoint(ck)
	if err != nil {
		return syntheticEval{}, err
	}
	defer cs.Close()
	s, err := cs.tr.Sample(samples, evalStream)
	if err != nil {
		return syntheticEval{}, err
	}
	return evalSynthetic(cs.tr, tg, s, samples, 1)
}

func readCellEval(dir string) (cellEval, error) {
	var ev cellEval
	b, err := os.ReadFile(filepath.Join(dir, "eval.json"))
	if err != nil {
		return ev, err
	}
	return ev, json.Unmarshal(b, &ev)
}

// formatMeanStd is "mean ± std" over xs, or the value alone for one seed, which has no
// spread to show.
func formatMeanStd(xs []float64) string {
	m, s := meanStd(xs)
	if len(xs) == 1 {
		return fmt.Sprintf("%.3f", m)
	}
	return fmt.Sprintf("%.3f ± %.3f", m, s)
}

// protocolTable is the Markdown table of the evaluated cells: per target and method, the
// mean ± std over the seeds evaluated so far, next to the published mean ± std. A metric
// passes when |mean| ≤ |published mean| + 2·published std (the issue's "within the
// published mean ± 2 std or better"; Δ's are signed, so better means closer to 0).
func protocolTable(cells []protocolCell, root string) (string, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "| target | method | iterations | seeds | Δ log Ẑ | Δ log Ẑ^RW | W2 | EUBO − log Z | published Δ | published Δ^RW | published W2 |\n")
	fmt.Fprintf(&sb, "|---|---|---:|---:|---|---|---|---|---|---|---|\n")
	type key struct{ t, m string }
	seen := map[key]bool{}
	for _, c := range cells {
		k := key{c.Target, c.Method.Slug}
		if seen[k] {
			continue
		}
		seen[k] = true
		var d, rw, w2, eubo []float64
		for _, o := range cells {
			if o.Target != c.Target || o.Method.Slug != c.Method.Slug {
				continue
			}
			ev, err := readCellEval(o.dir(root))
			if errors.Is(err, os.ErrNotExist) || (err == nil && ev.Iter != o.Iters) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("%s: %w", o, err)
			}
			d, rw, w2, eubo = append(d, ev.Delta), append(rw, ev.DeltaRW), append(w2, ev.W2), append(eubo, ev.EUBO-ev.LogZ)
		}
		p := c.Method.Published[c.Target]
		cell := func(xs []float64, ps publishedStat) string {
			if len(xs) == 0 {
				return "–"
			}
			m, _ := meanStd(xs)
			mark := "✗"
			if math.Abs(m) <= math.Abs(ps.Mean)+2*ps.Std {
				mark = "✓"
			}
			return formatMeanStd(xs) + " " + mark
		}
		eu := "–"
		if len(eubo) > 0 {
			eu = formatMeanStd(eubo)
		}
		fmt.Fprintf(&sb, "| %s | %s | %d | %d | %s | %s | %s | %s | %.3f ± %.3f | %.3f ± %.3f | %.2f ± %.2f |\n",
			c.Target, c.Method.Name, c.Iters, len(d), cell(d, p.Delta), cell(rw, p.DeltaRW), cell(w2, p.W2), eu,
			p.Delta.Mean, p.Delta.Std, p.DeltaRW.Mean, p.DeltaRW.Std, p.W2.Mean, p.W2.Std)
	}
	return sb.String(), nil
}

// meanStd is the mean and the sample standard deviation (0 for one value).
func meanStd(xs []float64) (float64, float64) {
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	if len(xs) < 2 {
		return m, 0
	}
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return m, math.Sqrt(v / float64(len(xs)-1))
}
