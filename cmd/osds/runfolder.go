package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osds/gpu"
	"osds/nn"
	"osds/train"
)

// runsRoot is where runs go when --out is not given.
const runsRoot = "runs"

// runFolder is the folder of one training run: its checkpoint and its metrics.jsonl.
// One rule keeps runs from destroying each other: a new run never writes into a folder
// that holds another run's checkpoint or metrics, unless --force says to replace it; a
// resumed run continues its own folder's metrics, without the rows it will redo.
type runFolder struct {
	dir     string
	created bool // made by this run (removeIfEmpty may take it away again)
}

// removeIfEmpty removes the folder of a run that failed before writing anything: its
// empty metrics.jsonl, then the folder itself if nothing else is in it (os.Remove
// refuses a folder that is not empty, so nothing of another run can go).
func (r runFolder) removeIfEmpty() {
	if !r.created {
		return
	}
	if fi, err := os.Stat(r.metrics()); err == nil && fi.Size() == 0 {
		os.Remove(r.metrics())
	}
	os.Remove(r.dir)
}

func (r runFolder) checkpoint() string { return filepath.Join(r.dir, "checkpoint.safetensors") }
func (r runFolder) metrics() string    { return filepath.Join(r.dir, "metrics.jsonl") }

// openRunFolder picks and prepares the run's folder: out when given, else the resumed
// checkpoint's folder, else a new folder under runs/ named after the run and the time.
// ck is the resumed checkpoint (nil for a new run).
func openRunFolder(out, resume string, force bool, name string, ck *train.Checkpoint) (runFolder, error) {
	switch {
	case out != "":
	case resume != "":
		out = filepath.Dir(resume)
	default:
		stamp := time.Now().Format("20060102-150405")
		out = filepath.Join(runsRoot, name+"-"+stamp)
		for i := 2; exists(out); i++ {
			out = filepath.Join(runsRoot, fmt.Sprintf("%s-%s-%d", name, stamp, i))
		}
	}
	r := runFolder{dir: out}
	fi, statErr := os.Stat(out)
	if statErr == nil && !fi.IsDir() {
		return r, fmt.Errorf("--out %s is a file, not a folder", out)
	}
	r.created = errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return r, fmt.Errorf("--out %s: cannot create the run folder: %w", out, err)
	}
	continuing := ck != nil && sameFile(resume, r.checkpoint())
	held := exists(r.checkpoint()) || nonEmpty(r.metrics())
	switch {
	case continuing:
		return r, r.dropRowsFrom(ck.Iter)
	case held && !force:
		hint := "choose another --out, or replace it with --force"
		if exists(r.checkpoint()) {
			hint = fmt.Sprintf("continue it with --resume %s, %s", r.checkpoint(), hint)
		}
		return r, fmt.Errorf("--out %s already holds a run (%s): %s", out, strings.Join(present(r.checkpoint(), r.metrics()), ", "), hint)
	case held:
		for _, p := range []string{r.checkpoint(), r.metrics()} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return r, fmt.Errorf("--force: removing the old run's %s: %w", p, err)
			}
		}
	}
	return r, nil
}

// openMetrics opens metrics.jsonl for appending. Rows are written one write call each
// (no buffering), so every row printed is on disk.
func (r runFolder) openMetrics() (*os.File, error) {
	f, err := os.OpenFile(r.metrics(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run folder %s: %w", r.dir, err)
	}
	return f, nil
}

// dropRowsFrom rewrites metrics.jsonl (atomically) without the rows of iterations iter
// and later: a resumed run redoes them, and keeping both would duplicate them. An
// evaluation row is kept when it was taken at or before iteration iter.
func (r runFolder) dropRowsFrom(iter int) error {
	raw, err := os.ReadFile(r.metrics())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var kept bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		var row struct {
			Iter *int     `json:"iter"`
			Eval *float64 `json:"eval_elbo"`
		}
		if json.Unmarshal(line, &row) != nil || row.Iter == nil {
			continue // a row cut short by a kill: it was never complete
		}
		if *row.Iter < iter || (row.Eval != nil && *row.Iter <= iter) {
			kept.Write(line)
			kept.WriteByte('\n')
		}
	}
	if kept.Len() == len(raw) {
		return nil
	}
	return nn.WriteFileAtomic(r.metrics(), kept.Bytes())
}

// runName is the stem of a new run's folder: the target, or the prior and constraint.
func runName(target, prior, constraint string, post bool) string {
	name := target
	if len(target) > len(train.WGSLTargetPrefix) && strings.EqualFold(target[:len(train.WGSLTargetPrefix)], train.WGSLTargetPrefix) {
		// A WGSL target is named by its file (wgsl-ring), not by its whole path.
		base := filepath.Base(target[len(train.WGSLTargetPrefix):])
		base, _, _ = strings.Cut(base, ",")
		name = "wgsl-" + strings.TrimSuffix(base, filepath.Ext(base))
	}
	if post {
		base := strings.TrimSuffix(filepath.Base(prior), filepath.Ext(prior))
		c := constraint
		if i := strings.IndexAny(c, ",:"); i >= 0 && strings.HasPrefix(c, "class:") {
			c = "class" + strings.SplitN(c[i+1:], ",", 2)[0]
		} else if i := strings.Index(c, ":"); i >= 0 {
			c = c[:i]
		}
		name = base + "-" + c
	}
	name = regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(name, "")
	if len(name) > 40 {
		name = name[:40]
	}
	if name == "" {
		name = "run"
	}
	return name
}

// newestCheckpoint is the checkpoint of the most recent run under runs/, for the commands
// that take a checkpoint and were given none.
func newestCheckpoint() (string, error) {
	paths, _ := filepath.Glob(filepath.Join(runsRoot, "*", "checkpoint.safetensors"))
	if len(paths) == 0 {
		return "", fmt.Errorf("no checkpoint given and none under %s/: train one with `osds train`, or name a CHECKPOINT", runsRoot)
	}
	mod := func(p string) time.Time {
		fi, err := os.Stat(p)
		if err != nil {
			return time.Time{}
		}
		return fi.ModTime()
	}
	sort.Slice(paths, func(i, j int) bool { return mod(paths[i]).After(mod(paths[j])) })
	return paths[0], nil
}

// checkpointArg is the checkpoint a command works on, given the same ways to eval,
// sample and view: as the one positional argument, with --checkpoint, or not at all (the
// newest run's, said on stderr). Giving two different ones is an error.
func checkpointArg(fs *pflag.FlagSet, flag string) (string, error) {
	if fs.NArg() > 1 {
		return "", fmt.Errorf("unexpected arguments %q: give one CHECKPOINT", fs.Args()[1:])
	}
	pos := fs.Arg(0)
	switch {
	case pos != "" && fs.Changed("checkpoint") && pos != flag:
		return "", fmt.Errorf("two checkpoints given: %s and --checkpoint %s", pos, flag)
	case pos != "":
		return pos, nil
	case fs.Changed("checkpoint"):
		return flag, nil
	}
	p, err := newestCheckpoint()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "checkpoint: %s (the newest run; name one to choose)\n", p)
	return p, nil
}

// resumedConfig is the configuration of a resumed run: the checkpoint's, with what may
// change between calls (--lr, --lr-logz) taken from flags given explicitly. A flag that
// would change the sampler or its training distribution is refused, naming the
// checkpoint's value; one given with the checkpoint's own value is accepted.
func resumedConfig(fs *pflag.FlagSet, flags, saved train.Config, resume string) (train.Config, error) {
	fixed := []struct {
		flag string
		val  func(c train.Config) any
	}{
		{"steps", func(c train.Config) any { return c.Steps }},
		{"batch", func(c train.Config) any { return c.Batch }},
		{"width", func(c train.Config) any { return c.Width }},
		{"sigma2", func(c train.Config) any { return c.Sigma2 }},
		{"seed", func(c train.Config) any { return c.Seed }},
		{"objective", func(c train.Config) any { return c.Objective }},
		{"explore", func(c train.Config) any { return c.Explore }},
		{"explore-iters", func(c train.Config) any { return c.ExploreIters }},
		{"both-ways", func(c train.Config) any { return c.BothWays }},
		{"buffer", func(c train.Config) any { return c.Buffer }},
		{"replay", func(c train.Config) any { return c.Rank }},
		{"langevin", func(c train.Config) any { return c.Langevin }},
		{"local-search", func(c train.Config) any { return c.LS.Every > 0 }},
		{"ls-every", func(c train.Config) any { return c.LS.Every }},
		{"ls-steps", func(c train.Config) any { return c.LS.Steps }},
		{"ls-burn", func(c train.Config) any { return c.LS.Burn }},
		{"ls-eta", func(c train.Config) any { return c.LS.Eta }},
		{"ls-beta", func(c train.Config) any { return c.LS.Beta }},
		{"variance", func(c train.Config) any { return c.LearnedVariance }},
	}
	var refused []string
	for _, f := range fixed {
		if fs.Changed(f.flag) && fmt.Sprint(f.val(flags)) != fmt.Sprint(f.val(saved)) {
			refused = append(refused, fmt.Sprintf("--%s %s (the checkpoint has %v)", f.flag, fs.Lookup(f.flag).Value, f.val(saved)))
		}
	}
	if len(refused) > 0 {
		return saved, fmt.Errorf("--resume %s continues its sampler as it was configured; these cannot change: %s (start a new run to change them)", resume, strings.Join(refused, "; "))
	}
	cfg := saved
	var applied []string
	if fs.Changed("lr") && flags.LR != saved.LR {
		cfg.LR = flags.LR
		applied = append(applied, fmt.Sprintf("--lr %g (was %g)", flags.LR, saved.LR))
	}
	if fs.Changed("lr-logz") && flags.LRLogZ != saved.LRLogZ {
		cfg.LRLogZ = flags.LRLogZ
		applied = append(applied, fmt.Sprintf("--lr-logz %g (was %g)", flags.LRLogZ, saved.LRLogZ))
	}
	if len(applied) > 0 {
		fmt.Fprintf(os.Stderr, "resuming with %s\n", strings.Join(applied, ", "))
	}
	return cfg, nil
}

// checkSizeLimits refuses a batch or step count whose buffers exceed the adapter's
// limits, naming the flags and the limit instead of an internal GPU buffer. The largest
// buffer of an iteration is the fused path's saved activations: six stacks of T·rows
// rows of the hidden width (rows: the batch rounded up to the rollout's 8-row
// workgroups), bound as one storage buffer.
func checkSizeLimits(d *gpu.Device, cfg train.Config) error {
	if cfg.OpByOp {
		return nil // op by op: a buffer per step, far below the limit where the fused one is
	}
	lim := d.Limits()
	rows := uint64(cfg.Batch+7) / 8 * 8
	need := 6 * uint64(cfg.Steps) * rows * uint64(cfg.Width) * 4
	limit := min(lim.MaxStorageBufferBindingSize, lim.MaxBufferSize)
	if need > limit {
		maxProduct := limit / (6 * 4 * uint64(cfg.Width))
		return fmt.Errorf("--batch %d with --steps %d and --width %d needs a %d MiB activation buffer, over this adapter's storage-buffer limit of %d MiB (%s): keep batch × steps ≤ %d at this width",
			cfg.Batch, cfg.Steps, cfg.Width, need>>20, limit>>20, d.AdapterInfo().Device, maxProduct)
	}
	return nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func nonEmpty(p string) bool { fi, err := os.Stat(p); return err == nil && fi.Size() > 0 }

// present lists the paths that exist.
func present(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if exists(p) {
			out = append(out, filepath.Base(p))
		}
	}
	return out
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
