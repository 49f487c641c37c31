package main

import (
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"osds/viewer"
)

// xvfb returns DISPLAY, starting an X server for the test when there is none.
func xvfb(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("DISPLAY"); d != "" {
		return d
	}
	display, stop, err := viewer.StartXvfb(120)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return display
}

// TestTrainEvalViewEndToEnd runs the commands a user runs: a short training with the live
// view, a resumed continuation, the evaluation table, and the interactive viewer saving a
// PNG.
func TestTrainEvalViewEndToEnd(t *testing.T) {
	bin := buildOSDS(t)
	display := xvfb(t)
	dir := t.TempDir()
	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("osds %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	small := []string{"--target", "gmm25", "--steps", "6", "--batch", "32", "--out", dir, "--checkpoint-every", "4"}
	out := run([]string{"DISPLAY=" + display}, append([]string{"train", "--iters", "8", "--view", "--local-search", "--ls-every", "4", "--ls-steps", "6", "--ls-burn", "2", "--buffer", "64", "--explore", "0.2"}, small...)...)
	if !strings.Contains(out, "iter      8/8") || !strings.Contains(out, "log Ẑ^RW") {
		t.Fatalf("train output lacks progress or evaluation:\n%s", out)
	}
	ckpt := filepath.Join(dir, "checkpoint.safetensors")
	out = run(nil, append([]string{"train", "--iters", "4", "--resume", ckpt}, small...)...)
	if !strings.Contains(out, "iter     12/12") {
		t.Fatalf("resumed training did not continue from iteration 8:\n%s", out)
	}
	lines, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if n := strings.Count(string(lines), `"loss"`); n != 12 {
		t.Fatalf("metrics.jsonl has %d loss lines, want 12", n)
	}
	out = run(nil, "eval", "--checkpoint", ckpt, "--samples", "200")
	for _, want := range []string{"log Ẑ (ELBO)", "Δ^RW", "EUBO", "W2", "12 iterations"} {
		if !strings.Contains(out, want) {
			t.Fatalf("eval output lacks %q:\n%s", want, out)
		}
	}
	shot := filepath.Join(dir, "view.png")
	run([]string{"DISPLAY=" + display}, "view", "--frames", "3", "--size", "128", "--save", shot, ckpt)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() != 128 {
		t.Fatalf("saved view: %v, %v", img, err)
	}
}

func TestViewAndTrainFailFastWithoutDisplay(t *testing.T) {
	bin := buildOSDS(t)
	for _, args := range [][]string{{"train", "--iters", "1", "--view", "--out", t.TempDir()}, {"view", "nonexistent.safetensors"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "DISPLAY=", "WAYLAND_DISPLAY=")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("osds %v without a display exited 0", args)
		}
		if args[0] == "train" && !strings.Contains(string(out), "no display") {
			t.Fatalf("osds %v: %s", args, out)
		}
	}
	cmd := exec.Command(bin, "train", "--objective", "pis")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "want tb or vargrad") {
		t.Fatalf("bad objective: %v %s", err, out)
	}
}
