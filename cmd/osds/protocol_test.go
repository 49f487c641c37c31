package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProtocolResumesAndTabulates runs a shortened protocol table (gmm25, TB, 12
// iterations) in one go, and again in two calls, the first stopping at 6 iterations: the
// second call must resume the checkpoint and reach the same evaluation bit for bit. A
// deadline that has already passed trains nothing and still prints the table.
func TestProtocolResumesAndTabulates(t *testing.T) {
	bin := buildOSDS(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"protocol", "--targets", "gmm25", "--methods", "tb", "--samples", "500"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("osds protocol %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	straight, split := t.TempDir(), t.TempDir()
	out := run("--out", straight, "--seeds", "2", "--iters", "12")
	if !strings.Contains(out, "2 of 2 runs finished") || !strings.Contains(out, "| gmm25 | TB | 12 | 2 |") {
		t.Fatalf("straight run: want both seeds finished and tabulated:\n%s", out)
	}
	table, err := os.ReadFile(filepath.Join(straight, "table.md"))
	if err != nil || !strings.Contains(string(table), "1.176 ± 0.109") {
		t.Fatalf("table.md lacks the published numbers (%v):\n%s", err, table)
	}

	run("--out", split, "--seeds", "1", "--iters", "6")
	out = run("--out", split, "--seeds", "1", "--iters", "12")
	if !strings.Contains(out, "resuming at iteration 6 of 12") {
		t.Fatalf("second call did not resume the 6-iteration checkpoint:\n%s", out)
	}
	a, b := readEvalJSON(t, straight), readEvalJSON(t, split)
	if a != b {
		t.Fatalf("resumed run differs from the straight one:\nstraight %+v\nresumed  %+v", a, b)
	}
	if a.Iter != 12 || a.Samples != 500 || a.Seed != 1 || a.Method != "tb" {
		t.Fatalf("eval.json %+v: want iteration 12, 500 samples, seed 1, method tb", a)
	}

	// Two worker processes, one seed each: the same evaluations as the in-process runs.
	par := t.TempDir()
	out = run("--out", par, "--seeds", "2", "--iters", "12", "--jobs", "2")
	if !strings.Contains(out, "2 of 2 runs finished") || !strings.Contains(out, "in a worker process") {
		t.Fatalf("--jobs 2: want both seeds finished by workers:\n%s", out)
	}
	for seed := 1; seed <= 2; seed++ {
		if a, b := readSeedEval(t, straight, seed), readSeedEval(t, par, seed); a != b {
			t.Fatalf("seed %d: the worker's run differs from the in-process one:\nin process %+v\nworker     %+v", seed, a, b)
		}
	}
	if _, err := os.Stat(filepath.Join(par, "gmm25", "tb", "seed2", "protocol.log")); err != nil {
		t.Fatalf("the worker left no log: %v", err)
	}
	for _, bad := range []string{"gmm25/tb", "gmm25/all/seed1", "gmm25,funnel/tb/seed1", "gmm25/tb/seed0", "gmm25/tb/2", "gmm26/tb/seed1"} {
		cmd := exec.Command(bin, "protocol", "--out", t.TempDir(), "--cell", bad)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "want TARGET/METHOD/seedK") {
			t.Fatalf("--cell %s: want an error naming the form, got %v\n%s", bad, err, out)
		}
	}

	late := t.TempDir()
	out = run("--out", late, "--seeds", "1", "--iters", "12", "--time-limit", "1ns")
	if !strings.Contains(out, "0 of 1 runs finished") || !strings.Contains(out, "| gmm25 | TB | 12 | 0 | – |") {
		t.Fatalf("past deadline: want nothing trained and an empty row:\n%s", out)
	}

	stopped := t.TempDir()
	tout, err := exec.Command(bin, "train", "--target", "gmm25", "--steps", "6", "--batch", "32", "--iters", "50", "--time-limit", "1ns", "--out", stopped).CombinedOutput()
	if err != nil || !strings.Contains(string(tout), "time limit 1ns reached after iteration 0 of 50; continue with --resume") {
		t.Fatalf("train --time-limit: %v\n%s", err, tout)
	}
	if _, err := os.Stat(filepath.Join(stopped, "checkpoint.safetensors")); err != nil {
		t.Fatalf("train stopped by its time limit left no checkpoint: %v", err)
	}

	cmd := exec.Command(bin, "protocol", "--methods", "tb,lp")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), `unknown method "lp"`) {
		t.Fatalf("unknown method: %v\n%s", err, out)
	}
}

func readEvalJSON(t *testing.T, root string) cellEval {
	t.Helper()
	return readSeedEval(t, root, 1)
}

func readSeedEval(t *testing.T, root string, seed int) cellEval {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "gmm25", "tb", fmt.Sprintf("seed%d", seed), "eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev cellEval
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestFormatMeanStd: one seed shows its value alone (no spread to report), several their
// mean ± sample std.
func TestFormatMeanStd(t *testing.T) {
	if got := formatMeanStd([]float64{1.5}); got != "1.500" {
		t.Errorf("one seed: %q, want \"1.500\"", got)
	}
	if got := formatMeanStd([]float64{1, 2, 3}); got != "2.000 ± 1.000" {
		t.Errorf("three seeds: %q, want \"2.000 ± 1.000\"", got)
	}
}
