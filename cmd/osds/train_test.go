package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"osds/gpu"
	"osds/priors"
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

// writeTinyPriorFiles saves a small random VAE (784 → 4 latents, dataset mnist) and a
// small random MNIST-sized classifier, and a 28×28 mask whose top half is white.
func writeTinyPriorFiles(t *testing.T, dir string) (vae, cls, mask string) {
	t.Helper()
	d, err := gpu.NewDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	v, err := priors.NewVAE(d, priors.VAEArch{Pixels: 784, Hidden: 16, Latent: 4}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	vae = filepath.Join(dir, "tiny-vae.safetensors")
	if err := priors.SaveModel(vae, v, map[string]string{priors.MetaDataset: "mnist"}); err != nil {
		t.Fatal(err)
	}
	c, err := priors.NewClassifier(d, priors.ClassifierArch{Side: 28, C1: 2, C2: 3, Hidden: 8, Classes: 10}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	cls = filepath.Join(dir, "tiny-classifier.safetensors")
	if err := priors.SaveModel(cls, c, map[string]string{priors.MetaDataset: "mnist"}); err != nil {
		t.Fatal(err)
	}
	writeMask := func(path string, side int) {
		img := image.NewGray(image.Rect(0, 0, side, side))
		for y := 0; y < side/2; y++ {
			for x := 0; x < side; x++ {
				img.SetGray(x, y, color.Gray{Y: 255})
			}
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
	}
	mask = filepath.Join(dir, "mask.png")
	writeMask(mask, 28)
	writeMask(filepath.Join(dir, "mask10.png"), 10)
	return vae, cls, mask
}

// TestPosteriorTrainSampleEval runs the posterior commands a user runs on small random
// models: training with a class constraint, resuming from the checkpoint alone, the
// sample grid, the evaluation, an inpainting run, and the errors of bad specs.
func TestPosteriorTrainSampleEval(t *testing.T) {
	bin := buildOSDS(t)
	dir := t.TempDir()
	vae, cls, mask := writeTinyPriorFiles(t, dir)
	run := func(wantErr string, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if wantErr == "" && err != nil {
			t.Fatalf("osds %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if wantErr != "" && (err == nil || !strings.Contains(string(out), wantErr)) {
			t.Fatalf("osds %s: want an error containing %q, got %v:\n%s", strings.Join(args, " "), wantErr, err, out)
		}
		return string(out)
	}
	small := []string{"--steps", "4", "--batch", "16", "--checkpoint-every", "2"}
	runDir := filepath.Join(dir, "class")
	out := run("", append([]string{"train", "--prior", vae, "--constraint", "class:3,beta=2,classifier=" + cls, "--iters", "4", "--out", runDir}, small...)...)
	for _, want := range []string{"iter      4/4", "log Ẑ^RW", "class_rate", "class:3,beta=2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("train output lacks %q:\n%s", want, out)
		}
	}
	ckpt := filepath.Join(runDir, "checkpoint.safetensors")
	// The checkpoint alone rebuilds the posterior.
	out = run("", "train", "--resume", ckpt, "--iters", "2", "--out", runDir)
	if !strings.Contains(out, "iter      6/6") {
		t.Fatalf("resumed posterior training did not continue from iteration 4:\n%s", out)
	}
	grid := filepath.Join(dir, "grid.png")
	out = run("", "sample", ckpt, "--n", "10", "--out", grid)
	if !strings.Contains(out, "class_rate") {
		t.Fatalf("sample output lacks the class rate:\n%s", out)
	}
	f, err := os.Open(grid)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	// 10 tiles of 28×28 in 8 columns with 2-pixel borders: 8·30+2 by 2·30+2.
	if err != nil || img.Bounds().Dx() != 242 || img.Bounds().Dy() != 62 {
		t.Fatalf("sample grid: %v, %v", img.Bounds(), err)
	}
	out = run("", "eval", "--checkpoint", ckpt, "--samples", "40")
	for _, want := range []string{"posterior of", "log Ẑ (ELBO)", "log Ẑ^RW", "class_rate", "6 iterations"} {
		if !strings.Contains(out, want) {
			t.Fatalf("eval output lacks %q:\n%s", want, out)
		}
	}
	// Inpainting with the Langevin drift and local search: both ask the reward for
	// ∇log R through the decoder (the Langevin drift at every step).
	out = run("", append([]string{"train", "--prior", vae, "--constraint", "inpaint:" + mask + ",sigma=0.2,image=5", "--iters", "2", "--out", filepath.Join(dir, "inpaint"),
		"--langevin", "--local-search", "--ls-every", "1", "--ls-steps", "3", "--ls-burn", "1", "--buffer", "32"}, small...)...)
	if !strings.Contains(out, "observed_rmse") {
		t.Fatalf("inpainting run lacks the observed RMSE:\n%s", out)
	}
	for _, c := range []struct {
		want string
		args []string
	}{
		{"mutually exclusive", []string{"--target", "funnel", "--prior", vae, "--constraint", "class:1"}},
		{"needs both --prior", []string{"--prior", vae}},
		{`unknown kind "klass"`, []string{"--prior", vae, "--constraint", "klass:1"}},
		{`unknown option "bta"`, []string{"--prior", vae, "--constraint", "class:1,bta=2"}},
		{"neither a file nor a shipped model", []string{"--prior", "no-such-prior", "--constraint", "class:1"}},
		{"class 12 is out of range: the classifier has classes 0..9", []string{"--prior", vae, "--constraint", "class:12,classifier=" + cls}},
		{"is 10×10 pixels but the prior makes 28×28 images", []string{"--prior", vae, "--constraint", "inpaint:" + filepath.Join(dir, "mask10.png")}},
		{"image=10000: the mnist test set has images 0..9999", []string{"--prior", vae, "--constraint", "inpaint:" + mask + ",image=10000"}},
	} {
		run(c.want, append([]string{"train", "--iters", "1", "--out", filepath.Join(dir, "bad")}, c.args...)...)
	}
	run("nonexistent.safetensors", "sample", filepath.Join(dir, "nonexistent.safetensors"))
}

// TestTrainResumeKeepsTheCheckpointsTarget: resuming without --target continues the
// checkpoint's target (not the flag's default, gmm25), as `osds protocol` resumes its
// runs; an explicit --target that differs is refused with both names.
func TestTrainResumeKeepsTheCheckpointsTarget(t *testing.T) {
	bin := buildOSDS(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "checkpoint.safetensors")
	small := []string{"--steps", "4", "--batch", "16", "--out", dir}
	if out, err := exec.Command(bin, append([]string{"train", "--target", "funnel", "--iters", "2"}, small...)...).CombinedOutput(); err != nil {
		t.Fatalf("train funnel: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, append([]string{"train", "--resume", ckpt, "--iters", "1"}, small...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "training funnel") || !strings.Contains(string(out), "iter      3/3") {
		t.Fatalf("resume without --target: want funnel continued to iteration 3: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, append([]string{"train", "--resume", ckpt, "--iters", "1", "--target", "gmm25"}, small...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `was trained on "funnel", not --target "gmm25"`) {
		t.Fatalf("resume with another --target: want a refusal naming both: %v\n%s", err, out)
	}
}
