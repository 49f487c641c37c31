package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"osds/posterior"
	"osds/train"
)

func TestParseMethods(t *testing.T) {
	ms, err := parseMethods("osds:a/b.safetensors, is,mala,hmc,osds-is:c.safetensors")
	if err != nil || len(ms) != 5 || ms[0].Kind != "osds" || ms[0].Path != "a/b.safetensors" || ms[3].Kind != "hmc" || ms[4].Kind != "osds-is" || ms[4].Path != "c.safetensors" {
		t.Fatalf("parseMethods: %+v, %v", ms, err)
	}
	for _, bad := range []string{"", "osds", "osds:", "osds-is:", "is:x", "smc"} {
		if _, err := parseMethods(bad); err == nil {
			t.Errorf("parseMethods(%q) accepted", bad)
		}
	}
}

// TestCompareEndToEnd trains a tiny posterior sampler, then compares it with the three
// baselines: the budget defaults to what the checkpoint spent, every method stays within
// the budget it is given, and the JSON, the table and the grids carry every metric.
func TestCompareEndToEnd(t *testing.T) {
	bin := buildOSDS(t)
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("train", "--prior", "mnist-vae", "--constraint", "class:3", "--iters", "4", "--steps", "5", "--batch", "32", "--out", dir); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	ckpt := filepath.Join(dir, "checkpoint.safetensors")

	// The budget from the checkpoint: 4 iterations × 32 + sampling 40 in 2 batches of 32.
	js := filepath.Join(dir, "a.json")
	out, err := run("compare", "--methods", "osds:"+ckpt+",is", "--n", "40", "--json", js)
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, out)
	}
	var rep compareReport
	readJSON(t, js, &rep)
	ck, err := train.LoadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	want := posterior.SamplerCost(ck.Cfg, ck.Iter, 40).Evals()
	if want != 4*32+64 || rep.Budget != want || rep.BudgetFrom != ckpt {
		t.Fatalf("budget %v from %q, want %v from the checkpoint", rep.Budget, rep.BudgetFrom, want)
	}
	if len(rep.Methods) != 2 || rep.Methods[1].Extra["proposals"] != want || rep.Methods[0].Evals != want {
		t.Fatalf("methods %+v", rep.Methods)
	}
	for _, k := range []string{"accuracy", "class_entropy", "diversity", "diversity_ratio", "frechet", "mean_log_r", "elbo", "iw_log_z"} {
		if _, ok := rep.Methods[0].Metrics[k]; !ok {
			t.Errorf("osds row lacks %q: %v", k, rep.Methods[0].Metrics)
		}
	}
	if rep.TrainImages["n"] != 40 || rep.TrainImages["accuracy"] < 0.9 {
		t.Errorf("training-image reference %v", rep.TrainImages)
	}
	// The VAE's reconstructions of the same images: blurrier (less diverse), still the class.
	rr := rep.TrainReconstructions
	if rr["n"] != 40 || rr["accuracy"] < 0.8 || !(rr["diversity"] > 0.5*rep.TrainImages["diversity"] && rr["diversity"] < rep.TrainImages["diversity"]) {
		t.Errorf("reconstruction reference %v against the images' %v", rr, rep.TrainImages)
	}
	if !strings.Contains(out, "VAE reconstructions of them (40)") {
		t.Errorf("table lacks the reconstruction row:\n%s", out)
	}
	if !strings.Contains(out, "osds TB, 4 it") || !strings.Contains(out, "real train images (40)") || !strings.Contains(out, "IS (prior proposal)") || !strings.Contains(out, "FD") {
		t.Errorf("table lacks rows or columns:\n%s", out)
	}

	// The sampler as an importance proposal: 100 proposals resampled to 40, charged as
	// training + 100 samples (4 batches of 32), with the ESS of their trajectory weights;
	// the baselines' default budget is the same.
	out, err = run("compare", "--methods", "osds-is:"+ckpt, "--n", "40", "--proposals", "100", "--json", js)
	if err != nil {
		t.Fatalf("compare osds-is: %v\n%s", err, out)
	}
	readJSON(t, js, &rep)
	m := rep.Methods[0]
	if m.Evals != 4*32+128 || rep.Budget != m.Evals || m.Extra["proposals"] != 100 || !(m.Extra["ess"] >= 1 && m.Extra["ess"] <= 100) || m.Metrics["n"] != 40 {
		t.Fatalf("osds-is row: evals %v, extra %v, %v samples", m.Evals, m.Extra, m.Metrics["n"])
	}
	if !strings.Contains(out, "+ IS of 100") {
		t.Errorf("table lacks the osds-is row:\n%q", out)
	}
	if out, err := run("compare", "--methods", "osds-is:"+ckpt, "--n", "40", "--proposals", "20"); err == nil || !strings.Contains(out, "--proposals ≥ --n") {
		t.Errorf("--proposals below --n: err %v\n%s", err, out)
	}

	// A given budget, all baselines, grids.
	grids := filepath.Join(dir, "grids")
	out, err = run("compare", "--prior", "mnist-vae", "--constraint", "class:3", "--methods", "is,mala,hmc",
		"--budget", "2000", "--n", "40", "--chains", "20", "--leapfrog", "2", "--json", js, "--grids", grids)
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	readJSON(t, js, &rep)
	if len(rep.Methods) != 3 || rep.Reference["n"] < 900 {
		t.Fatalf("report %+v", rep)
	}
	for _, m := range rep.Methods {
		if m.Evals > 2000 || m.Evals < 1800 {
			t.Errorf("%s spent %v f evaluations of a budget of 2000", m.Method, m.Evals)
		}
		if m.Metrics["n"] != 40 {
			t.Errorf("%s: %v samples measured, want 40", m.Method, m.Metrics["n"])
		}
		if fi, err := os.Stat(m.Grid); err != nil || fi.Size() == 0 {
			t.Errorf("%s: grid %q: %v", m.Method, m.Grid, err)
		}
	}
	if a := rep.Methods[1].Extra["acceptance"]; !(a > 0 && a < 1) {
		t.Errorf("MALA acceptance %v", a)
	}

	// A checkpoint of another posterior is refused.
	if out, err := run("compare", "--constraint", "class:7", "--methods", "osds:"+ckpt, "--n", "20"); err == nil || !strings.Contains(out, "class:3") {
		t.Errorf("a class-3 checkpoint compared on class 7: %v\n%s", err, out)
	}

	// Without a checkpoint the budget must be given.
	if out, err := run("compare", "--prior", "mnist-vae", "--constraint", "class:3", "--methods", "is"); err == nil || !strings.Contains(out, "--budget") {
		t.Errorf("compare without a budget: %v\n%s", err, out)
	}
}

// TestCompareAmortised: an amortised sampler (class:all) is compared on the class that
// --constraint names; a constraint it was not trained on (another β), or no class at all,
// is refused.
func TestCompareAmortised(t *testing.T) {
	bin := buildOSDS(t)
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("train", "--prior", "mnist-vae", "--constraint", "class:all", "--iters", "2", "--steps", "5", "--batch", "40", "--out", dir); err != nil {
		t.Fatalf("train amortised: %v\n%s", err, out)
	}
	am := filepath.Join(dir, "checkpoint.safetensors")
	js := filepath.Join(dir, "a.json")
	out, err := run("compare", "--constraint", "class:3", "--methods", "osds:"+am, "--n", "20", "--json", js)
	if err != nil {
		t.Fatalf("compare amortised: %v\n%s", err, out)
	}
	var rep compareReport
	readJSON(t, js, &rep)
	if len(rep.Methods) != 1 || !strings.Contains(rep.Methods[0].Method, "amortised") || rep.Methods[0].Evals != 2*40+40 {
		t.Errorf("amortised row %+v", rep.Methods)
	}
	if _, ok := rep.Methods[0].Metrics["accuracy"]; !ok || !strings.Contains(rep.Constraint, "class:3") {
		t.Errorf("amortised row measured against %s: %v", rep.Constraint, rep.Methods[0].Metrics)
	}
	if out, err := run("compare", "--constraint", "class:3,beta=2", "--methods", "osds:"+am, "--n", "20"); err == nil || !strings.Contains(out, "class:all,beta=1") {
		t.Errorf("compared on a β it was not trained on: %v\n%s", err, out)
	}
	if out, err := run("compare", "--methods", "osds:"+am, "--n", "20"); err == nil || !strings.Contains(out, "class:7") {
		t.Errorf("an amortised checkpoint without a class: %v\n%s", err, out)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestTrainingSeconds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	lines := `{"iter":0,"loss":1,"time":0.5}
{"iter":1,"loss":1,"time":2}
{"eval_elbo":-3,"iter":2}
{"iter":2,"loss":1,"time":0.4}
{"iter":3,"loss":1,"time":1.5}
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, ok := trainingSeconds(path); !ok || s != 3.5 {
		t.Errorf("training seconds %v (%v), want 2 + 1.5 over a resumed run", s, ok)
	}
	if _, ok := trainingSeconds(filepath.Join(t.TempDir(), "none.jsonl")); ok {
		t.Error("a missing metrics file gave a time")
	}
}
