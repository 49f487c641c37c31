package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"osds/train"
)

// TestWGSLTargetEndToEnd trains on the shipped WGSL target from the command line alone,
// resumes it, and evaluates the checkpoint from another working directory (the
// checkpoint stores the file's absolute path): eval reports log Ẑ, log Ẑ^RW and their
// errors against the file's LOG_Z, and says that W2 and the EUBO need an exact sampler.
// A target without LOG_Z evaluates without gaps, and broken files fail with the file's
// own line.
func TestWGSLTargetEndToEnd(t *testing.T) {
	bin := buildOSDS(t)
	dir := t.TempDir()
	// Run outside the repository, osds finds no .runtime/ above the working directory or
	// the (temporary) binary: name the library, as TestReliability does.
	env := os.Environ()
	if libs, _ := filepath.Glob(filepath.Join("..", "..", ".runtime", "*", "libwebgpu_wrapper.so")); len(libs) > 0 && os.Getenv("OSDS_WEBGPU_LIB") == "" {
		lib, err := filepath.Abs(libs[0])
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, "OSDS_WEBGPU_LIB="+lib)
	}
	run := func(wd string, wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = wd, env
		out, err := cmd.CombinedOutput()
		if wantOK && err != nil {
			t.Fatalf("osds %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !wantOK && err == nil {
			t.Fatalf("osds %s succeeded, want an error:\n%s", strings.Join(args, " "), out)
		}
		return string(out)
	}
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	const ring = "../../examples/targets/ring.wgsl" // relative to cmd/osds, where tests run
	abs, err := filepath.Abs(ring)
	if err != nil {
		t.Fatal(err)
	}
	small := []string{"--steps", "6", "--batch", "32", "--checkpoint-every", "4"}
	runDir := filepath.Join(dir, "ring")
	out := run(here, true, append([]string{"train", "--target", "wgsl:" + ring, "--iters", "6", "--out", runDir}, small...)...)
	if !strings.Contains(out, "iter      6/6") || !strings.Contains(out, "Δ^RW") {
		t.Fatalf("train output lacks progress or the evaluation against LOG_Z:\n%s", out)
	}
	ckpt := filepath.Join(runDir, "checkpoint.safetensors")
	ck, err := train.LoadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Target != "wgsl:"+abs || ck.Dim != 2 || ck.Cfg.Sigma2 != 4 {
		t.Fatalf("checkpoint target %q, d %d, σ² %v; want wgsl:%s, 2 and the file's SIGMA2 = 4", ck.Target, ck.Dim, ck.Cfg.Sigma2, abs)
	}
	// Resumed with the same --target given as the relative path it was trained with.
	out = run(here, true, append([]string{"train", "--target", "wgsl:" + ring, "--iters", "2", "--resume", ckpt}, small...)...)
	if !strings.Contains(out, "iter      8/8") {
		t.Fatalf("resumed training did not continue from iteration 6:\n%s", out)
	}

	elsewhere := t.TempDir()
	out = run(elsewhere, true, "eval", ckpt, "--samples", "300")
	t.Logf("osds eval:\n%s", out)
	for _, want := range []string{"target        wgsl:" + abs + " (d=2), 8 iterations", "log Z (true)  2.0847",
		"log Ẑ (ELBO)", "Δ    = ", "log Ẑ^RW", "Δ^RW = ", "EUBO          unavailable", "W2            unavailable", "no exact sampler"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q", want)
		}
	}
	if strings.Contains(out, "NaN") {
		t.Errorf("eval prints NaN")
	}
	// The JSON object is stdout alone (progress goes to stderr).
	cmd := exec.Command(bin, "eval", ckpt, "--samples", "300", "--json")
	cmd.Dir, cmd.Env = elsewhere, env
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("osds eval --json: %v", err)
	}
	out = string(stdout)
	var js struct {
		Target  string              `json:"target"`
		Metrics map[string]*float64 `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	if js.Target != "wgsl:"+abs || js.Metrics["delta_rw"] == nil || js.Metrics["log_z"] == nil || js.Metrics["w2"] != nil || js.Metrics["eubo"] != nil {
		t.Errorf("eval --json: target %q, metrics %v; want delta_rw and log_z, and null w2 and eubo", js.Target, out)
	}

	// Without LOG_Z and without a gradient; the run folder is named after the file.
	plain := filepath.Join(dir, "plain.wgsl")
	if err := os.WriteFile(plain, []byte("const D: u32 = 3u;\nfn log_density(z: State) -> f32 {\n\treturn -0.5 * (z[0] * z[0] + z[1] * z[1] + z[2] * z[2]);\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = run(dir, true, append([]string{"train", "--target", "wgsl:plain.wgsl", "--iters", "2", "--langevin"}, small...)...)
	runs, _ := filepath.Glob(filepath.Join(dir, "runs", "wgsl-plain-*", "checkpoint.safetensors"))
	if len(runs) != 1 {
		t.Fatalf("want one run folder runs/wgsl-plain-*, got %v:\n%s", runs, out)
	}
	out = run(elsewhere, true, "eval", runs[0], "--samples", "100")
	for _, want := range []string{"(d=3)", "log Z (true)  unknown (the target declares no LOG_Z)", "log Ẑ^RW", "W2            unavailable"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval of a target without LOG_Z lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Δ") || strings.Contains(out, "NaN") {
		t.Errorf("eval of a target without LOG_Z prints a gap or NaN:\n%s", out)
	}

	// Broken files: a missing one, a syntax error at its line and column, no dimension.
	bad := filepath.Join(dir, "bad.wgsl")
	if err := os.WriteFile(bad, []byte("const D: u32 = 2u;\n\nfn log_density(z: State) -> f32 {\n\treturn -(z[0] * z[0];\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nodim := filepath.Join(dir, "nodim.wgsl")
	if err := os.WriteFile(nodim, []byte("fn log_density(z: State) -> f32 { return 0.0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ target, want string }{
		{"wgsl:" + filepath.Join(dir, "none.wgsl"), "none.wgsl: no such file"},
		{"wgsl:" + bad, bad + ":4:"},
		{"wgsl:" + nodim, "declares no dimension"},
	} {
		out := run(dir, false, append([]string{"train", "--target", c.target, "--iters", "1", "--out", filepath.Join(dir, "x")}, small...)...)
		if !strings.Contains(out, c.want) || strings.Contains(out, "panic") {
			t.Errorf("osds train --target %s: output lacks %q (or panics):\n%s", c.target, c.want, out)
		}
	}
}
