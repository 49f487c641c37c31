package main

import (
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pngSize(t *testing.T, path string) image.Point {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img.Bounds().Size()
}

// TestAmortisedAndRTBCommands runs the amortised and relative-TB commands on small
// random models: class:all training with replay, resuming, sampling one class and all
// classes, the evaluation per class, and relative TB from the Brownian prior and from
// a checkpoint, with the errors of misuse.
func TestAmortisedAndRTBCommands(t *testing.T) {
	bin := buildOSDS(t)
	dir := t.TempDir()
	vae, cls, _ := writeTinyPriorFiles(t, dir)
	var env []string
	display := ""
	withDisplay := func() []string {
		if display == "" {
			display = xvfb(t)
		}
		return []string{"DISPLAY=" + display}
	}
	run := func(wantErr string, args ...string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		t.Logf("osds %s (%v)", args[0], time.Since(start).Round(time.Millisecond))
		if wantErr == "" && err != nil {
			t.Fatalf("osds %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if wantErr != "" && (err == nil || !strings.Contains(string(out), wantErr)) {
			t.Fatalf("osds %s: want an error containing %q, got %v:\n%s", strings.Join(args, " "), wantErr, err, out)
		}
		return string(out)
	}
	contains := func(out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
	}
	small := []string{"--steps", "4", "--batch", "20", "--checkpoint-every", "2"}
	amDir := filepath.Join(dir, "all")
	out := run("", append([]string{"train", "--prior", vae, "--constraint", "class:all,classifier=" + cls, "--iters", "4", "--both-ways", "--buffer", "40", "--out", amDir}, small...)...)
	contains(out, "one amortised sampler of the 10 posteriors", "class:all,beta=1", "vargrad", "iter      4/4", "class_rate_9")
	am := filepath.Join(amDir, "checkpoint.safetensors")
	out = run("", "train", "--resume", am, "--iters", "2", "--out", amDir)
	contains(out, "iter      6/6", "class_rate_0")

	one := filepath.Join(dir, "three.png")
	out = run("", "sample", am, "--class", "3", "--n", "6", "--out", one)
	contains(out, "6 samples of class 3 of the amortised sampler", "class_rate 0", "class_rate_3")
	// 6 tiles of 28×28 in 8 columns with 2-pixel borders: 8·30+2 by 30+2.
	if sz := pngSize(t, one); sz != (image.Point{242, 32}) {
		t.Fatalf("one-class grid is %v", sz)
	}
	all := filepath.Join(dir, "all.png")
	out = run("", "sample", am, "--cols", "3", "--out", all)
	contains(out, "3 samples of each of the 10 classes", "class_rate_9")
	if sz := pngSize(t, all); sz != (image.Point{3*30 + 2, 10*30 + 2}) {
		t.Fatalf("all-classes grid is %v", sz)
	}
	run("has classes 0..9", "sample", am, "--class", "12")
	// The viewer draws the images f(z): every class, one per column (20 samples in 10
	// columns), or one class in a square grid (20 in 5 columns), chosen by --class or
	// by the keys 0-9 and a.
	env = withDisplay()
	for _, c := range []struct {
		args []string
		want image.Point
	}{
		{nil, image.Point{10*30 + 2, 2*30 + 2}},
		{[]string{"--class", "3"}, image.Point{5*30 + 2, 4*30 + 2}},
		{[]string{"--keys", "7"}, image.Point{5*30 + 2, 4*30 + 2}},
		{[]string{"--class", "3", "--keys", "5,a"}, image.Point{10*30 + 2, 2*30 + 2}},
		// ] is capped at the batch, [ halves: 5 images, fewer than the classes, in a square grid.
		{[]string{"--keys", "],[,["}, image.Point{3*30 + 2, 2*30 + 2}},
	} {
		shot := filepath.Join(dir, "view.png")
		run("", append([]string{"view", "--frames", "4", "--size", "64", "--save", shot, am}, c.args...)...)
		if sz := pngSize(t, shot); sz != c.want {
			t.Fatalf("view %v: snapshot is %v, want %v", c.args, sz, c.want)
		}
	}
	// Training with the live view decodes the trainer's samples each frame.
	out = run("", "train", "--resume", am, "--iters", "2", "--view", "--out", amDir)
	contains(out, "iter      8/8")
	run("the sampler has classes 0..9", "view", "--frames", "1", "--class", "10", am)
	env = nil
	out = run("", "eval", "--checkpoint", am, "--samples", "40")
	contains(out, "amortised     10 conditions", "class 7", "class_rate_7", "8 iterations")

	// A single-class sampler rejects --class, and is a prior sampler for relative TB.
	oneDir := filepath.Join(dir, "one")
	// Fixed variance: it serves as a relative-TB prior below, which must be.
	run("", append([]string{"train", "--prior", vae, "--constraint", "class:3,classifier=" + cls, "--iters", "2", "--variance", "fixed", "--out", oneDir}, small...)...)
	single := filepath.Join(oneDir, "checkpoint.safetensors")
	run("is not amortised", "sample", single, "--class", "3")

	rtbDir := filepath.Join(dir, "rtb")
	out = run("", "train", "--prior", vae, "--constraint", "class:5,classifier="+cls, "--rtb-from", single, "--iters", "2", "--batch", "16", "--out", rtbDir)
	contains(out, "by relative TB from the prior sampler "+single, "T=4", "rtb", "iter      2/2")
	rtb := filepath.Join(rtbDir, "checkpoint.safetensors")
	// The checkpoint carries its prior: resuming and sampling need nothing else.
	os.Remove(single)
	out = run("", "train", "--resume", rtb, "--iters", "1", "--out", rtbDir)
	contains(out, "iter      3/3", "relative TB")
	out = run("", "sample", rtb, "--n", "4", "--out", filepath.Join(dir, "rtb.png"))
	contains(out, "class_rate")
	env = withDisplay()
	run("", "view", "--frames", "2", "--size", "64", rtb)
	env = nil
	out = run("", append([]string{"train", "--prior", vae, "--constraint", "class:all,classifier=" + cls, "--rtb-from", "brownian", "--iters", "2", "--out", filepath.Join(dir, "rtb-all")}, small...)...)
	contains(out, "amortised", "relative TB from the prior sampler brownian")

	bad := []string{"train", "--prior", vae, "--iters", "1", "--out", filepath.Join(dir, "bad")}
	for _, c := range []struct {
		want string
		args []string
	}{
		{"is an amortised sampler", []string{"--constraint", "class:1,classifier=" + cls, "--rtb-from", am}},
		// The prior checkpoint has T = 4.
		{"--steps 6: the prior sampler", []string{"--constraint", "class:1,classifier=" + cls, "--rtb-from", rtb, "--steps", "6"}},
		{"--objective vargrad does not apply", []string{"--constraint", "class:1,classifier=" + cls, "--rtb-from", "brownian", "--objective", "vargrad"}},
		{"multiple of 10", []string{"--constraint", "class:all,classifier=" + cls, "--both-ways", "--batch", "15"}},
	} {
		run(c.want, append(bad, c.args...)...)
	}
	run("--rtb-from fine-tunes towards prior × r", "train", "--target", "gmm25", "--rtb-from", "brownian", "--iters", "1")
}
