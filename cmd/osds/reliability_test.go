package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"osds/nn"
	"osds/train"
)

// TestReliability is the table of docs/reliability.md, run: every bad input and fault a
// user can cause through the CLI, with the exit code and the message fragment the user
// must see. A case that runs longer than its deadline is a hang and fails. The document
// is generated from this table (OSDS_WRITE_RELIABILITY_DOC=1 rewrites it; otherwise the
// test fails when it is stale), so the two cannot drift apart.
//
// Placeholders in arguments: {CK} a small trained gmm25 checkpoint, {POST} a small
// posterior checkpoint (mnist-vae | class:3), {NAN} a checkpoint with a NaN weight,
// {TRUNC} a truncated one, {NOTCK} a safetensors file that is not a sampler checkpoint,
// {RUN} a folder holding a run, {FILE} a plain file, {DIR} a folder, {TMP} a fresh folder
// per case, {WGSL_NAN} a constraint whose log_reward is NaN, {WGSL_LOOP} one that never
// returns.
func TestReliability(t *testing.T) {
	h := newHarness(t)
	var failed []string
	for _, c := range reliabilityCases() {
		t.Run(c.id, func(t *testing.T) {
			out, code, elapsed := h.run(t, c)
			switch {
			case code == -1:
				t.Errorf("%s: hung (killed after %v)\n%s", c.what, c.deadline(), out)
			case code != c.code:
				t.Errorf("%s: exit code %d, want %d\n%s", c.what, code, c.code, out)
			case c.want != "" && !strings.Contains(out, c.want):
				t.Errorf("%s: output lacks %q\n%s", c.what, c.want, out)
			case strings.Contains(out, "panic:") || strings.Contains(out, "goroutine "):
				t.Errorf("%s: panicked\n%s", c.what, out)
			case strings.Contains(out, ".tmp-"):
				t.Errorf("%s: the message names a temporary file\n%s", c.what, out)
			}
			if c.check != nil && !t.Failed() {
				if err := c.check(h, out); err != nil {
					t.Errorf("%s: %v\n%s", c.what, err, out)
				}
			}
			if t.Failed() {
				failed = append(failed, c.id)
			}
			t.Logf("%s: exit %d in %v", c.what, code, elapsed.Round(time.Millisecond))
		})
	}
	doc := reliabilityDoc(reliabilityCases())
	path := filepath.Join("..", "..", "docs", "reliability.md")
	if os.Getenv("OSDS_WRITE_RELIABILITY_DOC") != "" {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if have, _ := os.ReadFile(path); string(have) != doc {
		t.Errorf("docs/reliability.md is not the table of this test: regenerate it with OSDS_WRITE_RELIABILITY_DOC=1 go test ./cmd/osds -run TestReliability")
	}
}

// reliabilityCase is one row of the table.
type reliabilityCase struct {
	id    string // short name, the subtest's
	class string // the kind of defect it guards against
	what  string // the case, as the document says it
	args  []string
	env   []string
	code  int    // expected exit code
	want  string // a fragment the output must contain
	// limit bounds the run (default 3 minutes): past it the case is a hang.
	limit time.Duration
	// signals, when set, are sent to the process after it printed `after` (each after a
	// pause), for the cases that interrupt a running command.
	after   string
	signals []syscall.Signal
	gap     time.Duration // between signals (default 200 ms)
	// check verifies what the run left behind (checkpoints, metrics rows).
	check func(h *harness, out string) error
	// rootOnly cases need root (mounting a tmpfs); elsewhere they say so and pass.
	rootOnly bool
}

func (c reliabilityCase) deadline() time.Duration {
	if c.limit > 0 {
		return c.limit
	}
	return 3 * time.Minute
}

// small is a training run of seconds: a short trajectory and a small batch.
var small = []string{"--steps", "5", "--batch", "16"}

func args(xs ...any) []string {
	var out []string
	for _, x := range xs {
		switch v := x.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	return out
}

func reliabilityCases() []reliabilityCase {
	post := []string{"--prior", "mnist-vae", "--constraint"}
	return []reliabilityCase{
		// 1. Hangs: a GPU that stops answering ends the process with an error.
		{id: "hang-wgsl-loop", class: "hang", what: "a WGSL constraint that never returns, OSDS_GPU_TIMEOUT=15s", args: args("train", post, "wgsl:{WGSL_LOOP}", small, "--iters", "2", "--out", "{TMP}/r"), env: []string{"OSDS_GPU_TIMEOUT=15s"}, code: 1, want: "no answer from the GPU after 15s", limit: 150 * time.Second},
		{id: "bad-timeout", class: "hang", what: "OSDS_GPU_TIMEOUT that does not parse", args: args("info"), env: []string{"OSDS_GPU_TIMEOUT=abc"}, code: 1, want: `OSDS_GPU_TIMEOUT="abc": want a positive Go duration`},
		{id: "zero-timeout", class: "hang", what: "OSDS_GPU_TIMEOUT=0", args: args("info"), env: []string{"OSDS_GPU_TIMEOUT=0"}, code: 1, want: "want a positive Go duration"},

		// 2. Signals: every terminating signal checkpoints and exits 128 + signal.
		{id: "sigterm-train", class: "signal", what: "SIGTERM during training", args: args("train", "--target", "gmm25", small, "--iters", "1000000", "--checkpoint-every", "1000000", "--out", "{TMP}/r"), after: "iteration: fused", signals: []syscall.Signal{syscall.SIGTERM}, code: 143, want: "interrupted by SIGTERM; checkpoint at iteration", check: checkInterruptedRun},
		{id: "sighup-train", class: "signal", what: "SIGHUP during training (a closed terminal or ssh session)", args: args("train", "--target", "gmm25", small, "--iters", "1000000", "--checkpoint-every", "1000000", "--out", "{TMP}/r"), after: "iteration: fused", signals: []syscall.Signal{syscall.SIGHUP}, code: 129, want: "interrupted by SIGHUP", check: checkInterruptedRun},
		{id: "sigint-train", class: "signal", what: "Ctrl-C (SIGINT) during training", args: args("train", "--target", "gmm25", small, "--iters", "1000000", "--checkpoint-every", "1000000", "--out", "{TMP}/r"), after: "iteration: fused", signals: []syscall.Signal{syscall.SIGINT}, code: 130, want: "interrupted by SIGINT (Ctrl-C)", check: checkInterruptedRun},
		{id: "second-signal", class: "signal", what: "a second SIGTERM exits at once, even while the GPU does not answer (the WGSL loop, OSDS_GPU_TIMEOUT=120s)", args: args("train", post, "wgsl:{WGSL_LOOP}", small, "--iters", "2", "--out", "{TMP}/r"), env: []string{"OSDS_GPU_TIMEOUT=120s"}, after: "iteration: fused", signals: []syscall.Signal{syscall.SIGTERM, syscall.SIGTERM}, gap: time.Second, code: 143, want: "SIGTERM again: exiting at once", limit: 100 * time.Second},
		{id: "sigint-eval", class: "signal", what: "Ctrl-C during `osds eval --samples 10000000`", args: args("eval", "{CK}", "--samples", "10000000"), after: "", signals: []syscall.Signal{syscall.SIGINT}, code: 130, want: "interrupted by SIGINT"},
		{id: "sigterm-sample", class: "signal", what: "SIGTERM during `osds sample --n 1000000`", args: args("sample", "{POST}", "--n", "1000000", "--out", "{TMP}/s.png"), after: "", signals: []syscall.Signal{syscall.SIGTERM}, code: 143, want: "interrupted by SIGTERM"},
		{id: "kill9-resume", class: "signal", what: "kill -9 during training, then --resume: every metrics row whole, none duplicated", args: args("train", "--target", "gmm25", small, "--iters", "1000000", "--checkpoint-every", "50", "--out", "{TMP}/r"), after: "iteration: fused", signals: []syscall.Signal{syscall.SIGKILL}, code: 137, check: checkKilledRunResumes},

		// 3. Output folders: nothing a run made is overwritten silently.
		{id: "out-holds-run", class: "lost work", what: "a new run into a folder that holds a run", args: args("train", "--target", "gmm25", small, "--iters", "1", "--out", "{RUN}"), code: 1, want: "already holds a run (checkpoint.safetensors, metrics.jsonl): continue it with --resume"},
		{id: "out-force", class: "lost work", what: "the same with --force replaces it", args: args("train", "--target", "gmm25", small, "--iters", "1", "--out", "{RUN}", "--force"), code: 0, want: "checkpoint:"},
		{id: "out-is-file", class: "lost work", what: "--out names a file", args: args("train", "--target", "gmm25", "--out", "{FILE}"), code: 1, want: "is a file, not a folder"},
		{id: "default-out-fresh", class: "lost work", what: "two runs without --out get two folders", args: args("train", "--target", "gmm25", small, "--iters", "1"), code: 0, want: "run folder: runs/gmm25-", check: checkFreshFolders},
		{id: "resume-continues-metrics", class: "lost work", what: "--resume continues its folder's metrics", args: args("train", "--resume", "{RUN}/checkpoint.safetensors", "--iters", "3"), code: 0, want: "checkpoint:", check: checkResumedMetrics},
		{id: "disk-full", class: "lost work", what: "a full disk while writing the checkpoint (tmpfs of 64 KiB; root only)", args: args("train", "--target", "gmm25", small, "--iters", "2", "--out", "{FULL}"), code: 1, want: "no space left on device", rootOnly: true},

		// 4. Wrong answers without an error.
		{id: "eval-positional", class: "wrong answer", what: "`osds eval CKPT` evaluates CKPT", args: args("eval", "{CK}", "--samples", "100"), code: 0, want: "target        gmm25"},
		{id: "eval-newest", class: "wrong answer", what: "`osds eval` without a checkpoint says which it took", args: args("eval", "--samples", "100"), code: 0, want: "(the newest run; name one to choose)"},
		{id: "eval-none", class: "wrong answer", what: "`osds eval` without a checkpoint and no runs", args: args("eval"), env: []string{"CWD=empty"}, code: 1, want: "no checkpoint given and none under runs/"},
		{id: "eval-two", class: "wrong answer", what: "a positional checkpoint and a different --checkpoint", args: args("eval", "{CK}", "--checkpoint", "{POST}"), code: 1, want: "two checkpoints given"},
		{id: "sample-flag", class: "wrong answer", what: "`osds sample --checkpoint CKPT` (the same forms as eval)", args: args("sample", "--checkpoint", "{POST}", "--n", "4", "--out", "{TMP}/s.png"), code: 0, want: "wrote"},
		{id: "nan-checkpoint-eval", class: "wrong answer", what: "eval of a checkpoint holding NaN", args: args("eval", "{NAN}"), code: 1, want: "holds NaN at element"},
		{id: "nan-checkpoint-resume", class: "wrong answer", what: "--resume of a checkpoint holding NaN", args: args("train", "--resume", "{NAN}"), code: 1, want: "the checkpoint is not usable"},
		{id: "resume-refuses", class: "wrong answer", what: "--resume with --steps and --batch that differ", args: args("train", "--resume", "{CK}", "--steps", "7", "--batch", "20", "--iters", "1"), code: 1, want: "these cannot change: --steps 7 (the checkpoint has 5); --batch 20 (the checkpoint has 16)"},
		{id: "resume-applies", class: "wrong answer", what: "--resume with a new --lr applies it and says so", args: args("train", "--resume", "{CK}", "--lr", "5e-4", "--iters", "1", "--out", "{TMP}/r"), code: 0, want: "resuming with --lr 0.0005 (was 0.001)"},
		{id: "resume-same-value", class: "wrong answer", what: "--resume with the checkpoint's own --steps is accepted", args: args("train", "--resume", "{CK}", "--steps", "5", "--iters", "1", "--out", "{TMP}/r"), code: 0, want: "checkpoint:"},

		// 5. Messages that name the real cause.
		{id: "nan-reward", class: "message", what: "a reward that returns NaN", args: args("train", post, "wgsl:{WGSL_NAN}", small, "--iters", "10", "--out", "{TMP}/r"), code: 1, want: "the reward returned NaN for 16 of 16 terminal states of the latest batch (for a WGSL constraint: its log_reward); stopping (no checkpoint was written"},
		{id: "huge-batch", class: "message", what: "a --batch too large for the adapter", args: args("train", "--target", "gmm25", "--batch", "100000000", "--out", "{TMP}/r"), code: 1, want: "--batch 100000000 with --steps 100 and --width 64 needs a"},
		{id: "failed-run-no-folder", class: "lost work", what: "a run that fails before writing anything leaves no empty folder behind", args: args("train", "--target", "gmm25", "--batch", "100000000", "--out", "{TMP}/gone"), code: 1, want: "storage-buffer limit", check: func(h *harness, _ string) error {
			if _, err := os.Stat(filepath.Join(h.fixtures["TMP"], "gone")); err == nil {
				return fmt.Errorf("the failed run left its folder %s", filepath.Join(h.fixtures["TMP"], "gone"))
			}
			return nil
		}},
		{id: "huge-steps", class: "message", what: "a --steps too large for the adapter", args: args("train", "--target", "gmm25", "--steps", "10000000", "--out", "{TMP}/r"), code: 1, want: "storage-buffer limit"},
		{id: "out-missing-folder", class: "message", what: "`sample --out` into a folder that does not exist", args: args("sample", "{POST}", "--n", "4", "--out", "/nonexistent/x.png"), code: 1, want: "writing /nonexistent/x.png: its folder /nonexistent does not exist"},
		{id: "out-is-folder", class: "message", what: "`sample --out` naming a folder", args: args("sample", "{POST}", "--n", "4", "--out", "{DIR}"), code: 1, want: "it is a folder; name a file"},
		{id: "mask-folder", class: "message", what: "a folder given as an inpainting mask", args: args("train", post, "inpaint:{DIR}", "--out", "{TMP}/r"), code: 1, want: "is a folder: want a PNG file of 28×28 pixels"},
		{id: "mask-not-png", class: "message", what: "a text file given as a mask", args: args("train", post, "inpaint:{FILE}", "--out", "{TMP}/r"), code: 1, want: "is not a PNG image"},
		{id: "mask-wrong-size", class: "message", what: "a mask of the wrong size", args: args("train", "--prior", "mnist-gan", "--constraint", "inpaint:{MASK16}", "--out", "{TMP}/r"), code: 1, want: "is 16×16 pixels but the prior makes 28×28 images"},

		// 6. CLI conventions.
		{id: "help-train", class: "convention", what: "`osds train --help`", args: args("train", "--help"), code: 0, want: "--checkpoint-every"},
		{id: "help-eval", class: "convention", what: "`osds eval --help`", args: args("eval", "--help"), code: 0, want: "--json"},
		{id: "help-sample", class: "convention", what: "`osds sample --help`", args: args("sample", "--help"), code: 0, want: "--class"},
		{id: "help-compare", class: "convention", what: "`osds compare --help`", args: args("compare", "--help"), code: 0, want: "--methods"},
		{id: "help-protocol", class: "convention", what: "`osds protocol --help`", args: args("protocol", "--help"), code: 0, want: "--time-limit"},
		{id: "help-bench", class: "convention", what: "`osds bench --help`", args: args("bench", "--help"), code: 0, want: "--kernel"},
		{id: "help-info", class: "convention", what: "`osds info --help`", args: args("info", "--help"), code: 0, want: "--no-selftest"},
		{id: "help-view", class: "convention", what: "`osds view --help`", args: args("view", "--help"), code: 0, want: "--frames"},
		{id: "help-prior", class: "convention", what: "`osds prior --help`", args: args("prior", "--help"), code: 0, want: "usage: osds prior"},
		{id: "help-prior-list", class: "convention", what: "`osds prior list --help`", args: args("prior", "list", "--help"), code: 0, want: "--json"},
		{id: "help-prior-train", class: "convention", what: "`osds prior train --help`", args: args("prior", "train", "--help"), code: 0, want: "--kind"},
		{id: "prior-list", class: "convention", what: "`osds prior list` prints a table", args: args("prior", "list"), code: 0, want: "NAME               KIND"},
		{id: "prior-list-json", class: "convention", what: "`osds prior list --json`", args: args("prior", "list", "--json"), code: 0, want: `"Name": "mnist-vae"`},
		{id: "eval-json", class: "convention", what: "`osds eval --json`", args: args("eval", "{CK}", "--samples", "100", "--json"), code: 0, want: `"w2":`},
		{id: "bench-no-kernel", class: "convention", what: "`osds bench --kernel nosuchkernel`", args: args("bench", "--kernel", "nosuchkernel"), code: 1, want: `--kernel "nosuchkernel" matches no kernel; the kernels are:`},
		{id: "prior-unknown-sub", class: "convention", what: "`osds prior nosuch`", args: args("prior", "nosuch"), code: 1, want: `unknown subcommand "nosuch"`},
		{id: "unknown-command", class: "convention", what: "`osds frobnicate`", args: args("frobnicate"), code: 2, want: `unknown command "frobnicate"`},
		{id: "no-command", class: "convention", what: "`osds` alone", args: args(), code: 2, want: "usage: osds <command>"},

		// 7. Long phases show progress with an ETA from steady batches.
		{id: "eval-progress", class: "progress", what: "`osds eval --samples 400` shows the progress of sampling and of the EUBO", args: args("eval", "{CK}", "--samples", "400"), code: 0, want: "EUBO 400/400"},
		{id: "first-eta", class: "progress", what: "the first progress line waits for a steady rate (no ETA from the compile-heavy first iteration)", args: args("train", "--target", "gmm25", small, "--iters", "2", "--out", "{TMP}/r"), code: 0, want: "ETA …"},

		// 8. More bad inputs, each with a message naming what was wrong.
		{id: "iters-negative", class: "bad input", what: "--iters -1", args: args("train", "--iters", "-1"), code: 1, want: "--iters -1: want ≥ 0"},
		{id: "iters-not-int", class: "bad input", what: "--iters abc", args: args("train", "--iters", "abc"), code: 1, want: `invalid argument "abc" for "--iters"`},
		{id: "every-zero", class: "bad input", what: "--checkpoint-every 0", args: args("train", "--checkpoint-every", "0"), code: 1, want: "--checkpoint-every 0: want ≥ 1"},
		{id: "time-limit-negative", class: "bad input", what: "--time-limit -1s", args: args("train", "--time-limit", "-1s"), code: 1, want: "--time-limit -1s: want ≥ 0"},
		{id: "batch-zero", class: "bad input", what: "--batch 0", args: args("train", "--batch", "0"), code: 1, want: "--batch 0, --steps 100 and --width 64 must be ≥ 1"},
		{id: "width-zero", class: "bad input", what: "--width 0", args: args("train", "--width", "0"), code: 1, want: "must be ≥ 1"},
		{id: "unknown-flag", class: "bad input", what: "an unknown flag", args: args("train", "--bogus"), code: 1, want: "unknown flag: --bogus"},
		{id: "extra-args", class: "bad input", what: "a stray argument to train", args: args("train", "gmm25"), code: 1, want: `unexpected arguments ["gmm25"]`},
		{id: "unknown-target", class: "bad input", what: "--target nosuch", args: args("train", "--target", "nosuch"), code: 1, want: `unknown target "nosuch" (want gmm25, funnel or manywell)`},
		{id: "unknown-objective", class: "bad input", what: "--objective pis", args: args("train", "--objective", "pis"), code: 1, want: `--objective "pis": want tb or vargrad`},
		{id: "unknown-replay", class: "bad input", what: "--replay best", args: args("train", "--replay", "best"), code: 1, want: `--replay "best": want uniform or rank`},
		{id: "rtb-without-from", class: "bad input", what: "--objective rtb without --rtb-from", args: args("train", "--objective", "rtb"), code: 1, want: "give it with --rtb-from"},
		{id: "rtb-synthetic", class: "bad input", what: "--rtb-from on a synthetic target", args: args("train", "--target", "gmm25", "--rtb-from", "brownian"), code: 1, want: "it needs --prior and --constraint"},
		{id: "prior-without-constraint", class: "bad input", what: "--prior without --constraint", args: args("train", "--prior", "mnist-vae"), code: 1, want: "needs both --prior NAME|FILE and --constraint SPEC"},
		{id: "target-and-prior", class: "bad input", what: "--target with --prior", args: args("train", "--target", "funnel", post, "class:3"), code: 1, want: "mutually exclusive"},
		{id: "constraint-kind", class: "bad input", what: "an unknown constraint kind", args: args("train", post, "nosuch:1"), code: 1, want: `unknown kind "nosuch"`},
		{id: "constraint-beta", class: "bad input", what: "class:3,beta=abc", args: args("train", post, "class:3,beta=abc"), code: 1, want: "beta=abc (want a positive number)"},
		{id: "constraint-class-range", class: "bad input", what: "class:11 under a 10-class classifier", args: args("train", post, "class:11", "--out", "{TMP}/r"), code: 1, want: "class 11 is out of range: the classifier has classes 0..9"},
		{id: "wgsl-missing", class: "bad input", what: "a WGSL constraint file that does not exist", args: args("train", post, "wgsl:/nonexistent.wgsl", "--out", "{TMP}/r"), code: 1, want: "open /nonexistent.wgsl: no such file"},
		{id: "wgsl-syntax", class: "bad input", what: "a WGSL constraint with a syntax error", args: args("train", post, "wgsl:{REPO}/examples/constraints/bad.wgsl", "--out", "{TMP}/r"), code: 1, want: "bad.wgsl:7:"},
		{id: "prior-unknown", class: "bad input", what: "--prior that is neither a file nor shipped", args: args("train", "--prior", "nosuch", "--constraint", "class:3", "--out", "{TMP}/r"), code: 1, want: `prior "nosuch" is neither a file nor a shipped model`},
		{id: "resume-missing", class: "bad input", what: "--resume of a file that does not exist", args: args("train", "--resume", "/nonexistent.safetensors"), code: 1, want: "no such file"},
		{id: "resume-truncated", class: "bad input", what: "--resume of a truncated checkpoint", args: args("train", "--resume", "{TRUNC}"), code: 1, want: "truncated"},
		{id: "resume-not-checkpoint", class: "bad input", what: "--resume of a prior's weights", args: args("train", "--resume", "{NOTCK}"), code: 1, want: "is not an osds sampler checkpoint"},
		{id: "resume-other-target", class: "bad input", what: "--resume with another --target", args: args("train", "--resume", "{CK}", "--target", "funnel"), code: 1, want: `was trained on "gmm25", not --target "funnel"`},
		{id: "sample-synthetic", class: "bad input", what: "`osds sample` of a synthetic target's sampler", args: args("sample", "{CK}"), code: 1, want: "not a posterior in a prior's noise space"},
		{id: "sample-n-zero", class: "bad input", what: "`osds sample --n 0`", args: args("sample", "{POST}", "--n", "0"), code: 1, want: "--n 0 and --cols 8 must be ≥ 1"},
		{id: "sample-class-single", class: "bad input", what: "`osds sample --class 3` of a single-constraint sampler", args: args("sample", "{POST}", "--class", "3"), code: 1, want: "is not amortised"},
		{id: "eval-samples-one", class: "bad input", what: "`osds eval --samples 1`", args: args("eval", "{CK}", "--samples", "1"), code: 1, want: "--samples 1: want at least 2"},
		{id: "view-missing", class: "bad input", what: "`osds view` of a file that does not exist", args: args("view", "/nonexistent.safetensors"), code: 1, want: "no such file"},
		{id: "compare-n", class: "bad input", what: "`osds compare --n 1`", args: args("compare", "--n", "1"), code: 1, want: "want --n ≥ 2"},
		{id: "compare-method", class: "bad input", what: "`osds compare --methods nosuch`", args: args("compare", "--methods", "nosuch"), code: 1, want: `unknown method "nosuch"`},
		{id: "compare-family", class: "bad input", what: "`osds compare` on class:all", args: args("compare", post, "class:all"), code: 1, want: "is a family of constraints"},
		{id: "compare-budget", class: "bad input", what: "`osds compare` without a budget or an osds method", args: args("compare", post, "class:3"), code: 1, want: "--budget is needed"},
		{id: "protocol-cell", class: "bad input", what: "`osds protocol --cell nosuch`", args: args("protocol", "--out", "{TMP}/p", "--cell", "nosuch"), code: 1, want: "nosuch"},
		{id: "protocol-slurm-flag", class: "bad input", what: "`osds protocol --partition gpu` without --slurm (would train here)", args: args("protocol", "--out", "{TMP}/p", "--partition", "gpu"), code: 1, want: "--partition goes with --slurm"},
		{id: "protocol-slurm-time", class: "bad input", what: "`osds protocol --slurm --time infinite`", args: args("protocol", "--out", "{TMP}/p", "--slurm", "--time", "infinite"), code: 1, want: "a task needs a finite time"},
		{id: "backend-unknown", class: "bad input", what: "OSDS_ADAPTER_BACKEND=nosuch", args: args("info"), env: []string{"OSDS_ADAPTER_BACKEND=nosuch"}, code: 1, want: `OSDS_ADAPTER_BACKEND: gpu: unknown backend "nosuch"`},
		{id: "runtime-missing", class: "bad input", what: "the Dawn runtime missing (OSDS_WEBGPU_LIB=/nonexistent)", args: args("info"), env: []string{"OSDS_WEBGPU_LIB=/nonexistent"}, code: 1, want: "make setup"},
		{id: "onnx-prior", class: "bad input", what: "an imported PyTorch generator (nn/onnx's DCGAN fixture) under the shipped classifier trains", args: args("train", "--prior", "{REPO}/nn/onnx/testdata/generator.onnx,data=mnist", "--constraint", "class:3", small, "--iters", "2", "--out", "{TMP}/r"), code: 0, want: "class_rate"},
		{id: "onnx-prior-no-data", class: "bad input", what: "an imported generator without data= under class:L", args: args("train", "--prior", "{REPO}/nn/onnx/testdata/generator.onnx", "--constraint", "class:3", "--out", "{TMP}/r"), code: 1, want: "or name the dataset it was trained on"},
		{id: "onnx-prior-missing", class: "bad input", what: "--prior naming an .onnx file that does not exist", args: args("train", "--prior", "/nonexistent/g.onnx", "--constraint", "class:3", "--out", "{TMP}/r"), code: 1, want: `prior "/nonexistent/g.onnx" is neither a file nor a shipped model`},
		{id: "onnx-prior-not-onnx", class: "bad input", what: "--prior naming a text file called .onnx", args: args("train", "--prior", "{NOTONNX}", "--constraint", "class:3", "--out", "{TMP}/r"), code: 1, want: "not a valid ONNX file"},
		{id: "onnx-prior-option", class: "bad input", what: "an unknown option of an imported prior", args: args("train", "--prior", "{REPO}/nn/onnx/testdata/generator.onnx,colour=rgb", "--constraint", "class:3", "--out", "{TMP}/r"), code: 1, want: `unknown option "colour"`},
		{id: "onnx-constraint-label", class: "bad input", what: "onnx:CLASSIFIER without label=", args: args("train", post, "onnx:{REPO}/nn/onnx/testdata/classifier.onnx", "--out", "{TMP}/r"), code: 1, want: "give the class, onnx:classifier.onnx,label=L"},
		{id: "onnx-constraint-size", class: "bad input", what: "an imported 12×12 classifier under a 28×28 prior", args: args("train", post, "onnx:{REPO}/nn/onnx/testdata/classifier.onnx,label=3", "--out", "{TMP}/r"), code: 1, want: "(144 values per row) but the prior makes rows of 784"},
		{id: "rtb-from-learned", class: "bad input", what: "--rtb-from a sampler with a learned variance", args: args("train", post, "class:5", "--rtb-from", "{POST}", "--out", "{TMP}/r"), code: 1, want: "has a learned variance, which relative TB does not support yet"},
		{id: "variance-bad", class: "bad input", what: "--variance narrow", args: args("train", "--variance", "narrow"), code: 1, want: `--variance "narrow": want fixed or learned`},
		{id: "variance-op-by-op", class: "bad input", what: "--variance learned with --op-by-op", args: args("train", "--target", "funnel", "--variance", "learned", "--op-by-op", small, "--iters", "1", "--out", "{TMP}/r"), code: 1, want: "learned variance runs on the fused iteration only"},
		{id: "sample-npz", class: "convention", what: "`osds sample --out s.npz,s.csv` writes a synthetic target's samples as numbers", args: args("sample", "{CK}", "--n", "20", "--out", "{TMP}/s.npz,{TMP}/s.csv"), code: 0, want: "20 samples of gmm25, d = 2"},
		{id: "sample-format", class: "bad input", what: "`osds sample --out s.txt`", args: args("sample", "{POST}", "--out", "{TMP}/s.txt"), code: 1, want: `unknown format ".txt"`},
		{id: "time-limit", class: "bad input", what: "--time-limit 1ns stops with a checkpoint and says how to continue", args: args("train", "--target", "gmm25", small, "--iters", "5", "--time-limit", "1ns", "--out", "{TMP}/r"), code: 0, want: "continue with --resume"},
	}
}

// harness holds the binary and the fixtures the cases refer to.
type harness struct {
	bin, repo, cwd, empty string
	fixtures              map[string]string
	// env is the environment of every command: the runtime library named, because the
	// commands run outside the repository (where osds looks for .runtime/).
	env []string
}

func newHarness(t *testing.T) *harness {
	h := &harness{bin: buildOSDS(t), fixtures: map[string]string{}}
	dir := t.TempDir()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	h.repo = repo
	libs, _ := filepath.Glob(filepath.Join(repo, ".runtime", "*", "libwebgpu_wrapper.so"))
	if len(libs) == 0 && os.Getenv("OSDS_WEBGPU_LIB") == "" {
		t.Fatalf("no Dawn runtime under %s/.runtime: run `make setup`", repo)
	}
	h.env = os.Environ()
	if len(libs) > 0 && os.Getenv("OSDS_WEBGPU_LIB") == "" {
		h.env = append(h.env, "OSDS_WEBGPU_LIB="+libs[0])
	}
	h.cwd = filepath.Join(dir, "work") // where runs/ of the no---out cases goes
	h.empty = filepath.Join(dir, "empty")
	for _, d := range []string{h.cwd, h.empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(args ...string) {
		t.Helper()
		cmd := exec.Command(h.bin, args...)
		cmd.Dir, cmd.Env = h.cwd, h.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fixture: osds %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ck := filepath.Join(dir, "ck")
	must(append(append([]string{"train", "--target", "gmm25"}, small...), "--iters", "3", "--out", ck)...)
	h.fixtures["CK"] = filepath.Join(ck, "checkpoint.safetensors")
	postDir := filepath.Join(dir, "post")
	must(append(append([]string{"train", "--prior", "mnist-vae", "--constraint", "class:3"}, small...), "--iters", "2", "--out", postDir)...)
	h.fixtures["POST"] = filepath.Join(postDir, "checkpoint.safetensors")
	// The newest run under runs/ of the working folder, for `osds eval` without a path.
	must(append(append([]string{"train", "--target", "gmm25"}, small...), "--iters", "1")...)

	ts, md, err := nn.ReadSafetensors(h.fixtures["CK"])
	if err != nil {
		t.Fatal(err)
	}
	ts[0].Data[len(ts[0].Data)/2] = float32(math.NaN())
	h.fixtures["NAN"] = filepath.Join(dir, "nan.safetensors")
	if err := nn.WriteSafetensors(h.fixtures["NAN"], ts, md); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(h.fixtures["CK"])
	if err != nil {
		t.Fatal(err)
	}
	h.fixtures["TRUNC"] = filepath.Join(dir, "trunc.safetensors")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("trunc.safetensors", raw[:len(raw)/3])
	h.fixtures["NOTCK"] = filepath.Join(repo, "priors", "weights", "mnist-vae.safetensors")
	h.fixtures["FILE"] = write("notes.txt", []byte("not an image\n"))
	h.fixtures["NOTONNX"] = write("notes.onnx", []byte("not a model\n"))
	h.fixtures["DIR"] = t.TempDir()
	h.fixtures["WGSL_NAN"] = write("nan.wgsl", []byte("fn log_reward(x: Sample) -> f32 {\n\treturn sqrt(-1.0 - x[0] * x[0]);\n}\n"))
	h.fixtures["WGSL_LOOP"] = write("loop.wgsl", []byte("fn log_reward(x: Sample) -> f32 {\n\tvar s = 0.0;\n\tvar i = 0u;\n\twhile (x[0] < 1e30) {\n\t\ts += x[i % 4u];\n\t\ti += 1u;\n\t\tif (s > 1e30) { s = 0.0; }\n\t}\n\treturn s;\n}\n"))
	h.fixtures["MASK16"] = write("mask16.png", pngGray(16, 16))
	h.fixtures["REPO"] = repo
	return h
}

// run runs one case: the fixtures substituted, a fresh {TMP} and {RUN}, signals sent
// once the output shows c.after. It returns the combined output and the exit code (-1:
// killed at the deadline, a hang).
func (h *harness) run(t *testing.T, c reliabilityCase) (string, int, time.Duration) {
	tmp := t.TempDir()
	h.fixtures["TMP"] = tmp
	run := filepath.Join(tmp, "run")
	if strings.Contains(strings.Join(c.args, " "), "{RUN}") {
		cmd := exec.Command(h.bin, append(append([]string{"train", "--target", "gmm25"}, small...), "--iters", "2", "--out", run)...)
		cmd.Env = h.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fixture run: %v\n%s", err, out)
		}
	}
	h.fixtures["RUN"] = run
	if c.rootOnly {
		full := filepath.Join(tmp, "full")
		os.MkdirAll(full, 0o755)
		if os.Geteuid() != 0 {
			t.Skipf("%s: needs root to mount a tmpfs; run the suite as root to include it", c.what)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full).CombinedOutput(); err != nil {
			t.Skipf("%s: mounting a tmpfs failed (%v: %s): this machine does not allow it", c.what, err, out)
		}
		t.Cleanup(func() { exec.Command("umount", full).Run() })
		h.fixtures["FULL"] = full
	}
	var argv []string
	for _, a := range c.args {
		for k, v := range h.fixtures {
			a = strings.ReplaceAll(a, "{"+k+"}", v)
		}
		argv = append(argv, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.deadline())
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, argv...)
	cmd.Dir = h.cwd
	var env []string
	for _, e := range c.env {
		if e == "CWD=empty" {
			cmd.Dir = h.empty
			continue
		}
		env = append(env, e)
	}
	cmd.Env = append(append([]string(nil), h.env...), env...)
	var out strings.Builder
	start := time.Now()
	if c.signals == nil {
		raw, _ := cmd.CombinedOutput()
		out.Write(raw)
	} else {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = pw, pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		seen := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewReader(pr)
			once := false
			for {
				line, err := sc.ReadString('\n')
				out.WriteString(line)
				if !once && strings.Contains(out.String(), c.after) {
					once = true
					close(seen)
				}
				if err != nil {
					return
				}
			}
		}()
		select {
		case <-seen:
		case <-ctx.Done():
		}
		// Past the start-up (pipelines compiled, a few iterations done), then each signal.
		time.Sleep(3 * time.Second)
		gap := c.gap
		if gap == 0 {
			gap = 200 * time.Millisecond
		}
		for _, s := range c.signals {
			cmd.Process.Signal(s)
			time.Sleep(gap)
		}
		cmd.Wait()
		<-done
	}
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return out.String(), -1, elapsed
	}
	code := cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	return out.String(), code, elapsed
}

// checkInterruptedRun: the checkpoint of an interrupted run loads, and metrics.jsonl has
// one whole row per iteration it holds.
func checkInterruptedRun(h *harness, _ string) error {
	dir := filepath.Join(h.fixtures["TMP"], "r")
	ck, err := train.LoadCheckpoint(filepath.Join(dir, "checkpoint.safetensors"))
	if err != nil {
		return fmt.Errorf("the interrupted run's checkpoint: %w", err)
	}
	iters, err := metricsIters(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	if len(iters) != ck.Iter {
		return fmt.Errorf("metrics.jsonl has %d rows for a checkpoint at iteration %d", len(iters), ck.Iter)
	}
	return contiguous(iters)
}

// checkKilledRunResumes: after kill -9 every metrics row is whole and in order; resuming
// from the last checkpoint leaves one row per iteration, none twice.
func checkKilledRunResumes(h *harness, _ string) error {
	dir := filepath.Join(h.fixtures["TMP"], "r")
	iters, err := metricsIters(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	if err := contiguous(iters); err != nil {
		return fmt.Errorf("after kill -9: %w", err)
	}
	ckpt := filepath.Join(dir, "checkpoint.safetensors")
	ck, err := train.LoadCheckpoint(ckpt)
	if err != nil {
		return fmt.Errorf("no checkpoint survived kill -9: %w", err)
	}
	resume := exec.Command(h.bin, "train", "--resume", ckpt, "--iters", "2")
	resume.Env = h.env
	if out, err := resume.CombinedOutput(); err != nil {
		return fmt.Errorf("resume: %v\n%s", err, out)
	}
	iters, err = metricsIters(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	if len(iters) != ck.Iter+2 {
		return fmt.Errorf("after resuming at %d for 2 iterations metrics.jsonl has %d rows", ck.Iter, len(iters))
	}
	return contiguous(iters)
}

// checkFreshFolders: a second run without --out gets its own folder.
func checkFreshFolders(h *harness, _ string) error {
	before, _ := filepath.Glob(filepath.Join(h.cwd, "runs", "gmm25-*"))
	cmd := exec.Command(h.bin, append(append([]string{"train", "--target", "gmm25"}, small...), "--iters", "1")...)
	cmd.Dir, cmd.Env = h.cwd, h.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("second run: %v\n%s", err, out)
	}
	after, _ := filepath.Glob(filepath.Join(h.cwd, "runs", "gmm25-*"))
	if len(after) != len(before)+1 {
		return fmt.Errorf("runs/ had %d run folders and has %d after one more run", len(before), len(after))
	}
	return nil
}

// checkResumedMetrics: the resumed {RUN} (2 iterations, then 3 more) has rows 0..4.
func checkResumedMetrics(h *harness, _ string) error {
	iters, err := metricsIters(filepath.Join(h.fixtures["RUN"], "metrics.jsonl"))
	if err != nil {
		return err
	}
	if len(iters) != 5 {
		return fmt.Errorf("metrics.jsonl has %d rows, want 5 (2 + 3 resumed)", len(iters))
	}
	return contiguous(iters)
}

// metricsIters reads the training rows' iterations; a row that is not whole JSON is an
// error.
func metricsIters(path string) ([]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var iters []int
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if line == "" {
			continue
		}
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			return nil, fmt.Errorf("%s: row %d is not whole: %q", path, i+1, line)
		}
		if _, ok := row["loss"]; ok {
			iters = append(iters, int(row["iter"].(float64)))
		}
	}
	return iters, nil
}

func contiguous(iters []int) error {
	for i, it := range iters {
		if it != i {
			return fmt.Errorf("metrics row %d is iteration %d: rows lost or duplicated", i, it)
		}
	}
	return nil
}

// reliabilityDoc renders the table as docs/reliability.md.
func reliabilityDoc(cases []reliabilityCase) string {
	var b strings.Builder
	b.WriteString(`# Reliability: what osds does with bad input and faults

Generated from the table of ` + "`cmd/osds/reliability_test.go`" + ` (` + "`TestReliability`" + `, part of
` + "`make test`" + `), which runs every row through the real binary and checks the exit code and
the message fragment; a row that runs past its deadline is a hang and fails the suite.
Regenerate with ` + "`OSDS_WRITE_RELIABILITY_DOC=1 go test ./cmd/osds -run TestReliability`" + `.

The mechanisms behind the rows, one each:

- **No hang.** Every wait for the GPU has a deadline (` + "`OSDS_GPU_TIMEOUT`" + `, default 10 min; a
  value that does not parse is an error). A wait that runs out marks the runtime wedged:
  teardown, which would wait for the queue for ever, is skipped, and any teardown has its
  own 10 s deadline (` + "`gpu.TeardownGrace`" + `).
- **Signals.** SIGINT, SIGTERM and SIGHUP ask the command to stop at its next safe point:
  training writes its checkpoint there and exits with 128 + the signal's number; sampling,
  evaluation and the baselines stop at their next batch. A second signal exits at once.
- **Run folders.** A new run never writes into a folder that holds another run without
  ` + "`--force`" + `; without ` + "`--out`" + ` it gets ` + "`runs/NAME-DATE-TIME`" + `. ` + "`--resume`" + ` continues its folder's
  metrics without the rows it redoes. Metrics rows are written (one write each) before
  they are printed; checkpoints and outputs are written atomically.
- **Checkpoints.** Loading checks every value is finite. ` + "`--resume`" + ` applies what can change
  (` + "`--iters`" + `, ` + "`--lr`" + `, ` + "`--lr-logz`" + `, housekeeping) and refuses what cannot, naming the
  checkpoint's value.
- **Progress.** Long phases (training, sampling, the EUBO, the baselines of ` + "`compare`" + `) print
  progress with an ETA measured from steady work, after the first, compile-heavy batch.

| # | class | case | exit | the output contains |
|---|---|---|---:|---|
`)
	for i, c := range cases {
		want := strings.ReplaceAll(c.want, "|", `\|`)
		what := strings.ReplaceAll(c.what, "|", `\|`)
		if c.rootOnly {
			what += " *(root only: elsewhere the row is skipped with this reason)*"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %s |\n", i+1, c.class, what, c.code, codeSpan(want))
	}
	fmt.Fprintf(&b, "\n%d cases.\n", len(cases))
	return b.String()
}

func codeSpan(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "`") {
		return "``" + s + "``"
	}
	return "`" + s + "`"
}

// pngGray encodes a w×h all-white PNG (every pixel observed).
func pngGray(w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("encoding a test PNG: " + err.Error())
	}
	return buf.Bytes()
}
