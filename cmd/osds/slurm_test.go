package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"osds/nn"
)

// These tests need neither Slurm nor a GPU: they check the job script osds writes, the
// script's own control logic (run by bash with a stand-in for osds and scontrol), the
// flags and the report of missing runs. The real cluster is TestSlurmProtocolArray
// (slurm_cluster_test.go, `make test-slurm`).

func TestParseSlurmTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90":         90 * time.Minute,
		"10:30":      10*time.Minute + 30*time.Second,
		"2:00:00":    2 * time.Hour,
		"1-0":        24 * time.Hour,
		"1-2:30":     26*time.Hour + 30*time.Minute,
		"2-01:02:03": 49*time.Hour + 2*time.Minute + 3*time.Second,
		" 5 ":        5 * time.Minute,
	} {
		got, err := parseSlurmTime(in)
		if err != nil || got != want {
			t.Errorf("parseSlurmTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "infinite", "UNLIMITED", "-1", "0:30", "1:2:3:4", "a", "1-", "1-2:3:4:5", "-5", "+5", "1h"} {
		if d, err := parseSlurmTime(in); err == nil || !strings.Contains(err.Error(), "--time") {
			t.Errorf("parseSlurmTime(%q) = %v, %v; want an error naming --time", in, d, err)
		}
	}
}

// TestSlurmMargin: osds stops a little before the job's end, more for longer jobs, never
// most of a short one; the USR1 warning comes after osds's own limit.
func TestSlurmMargin(t *testing.T) {
	for job, want := range map[time.Duration]time.Duration{
		2 * time.Hour:    6 * time.Minute,
		10 * time.Minute: time.Minute,
		2 * time.Minute:  30 * time.Second,
		48 * time.Hour:   10 * time.Minute,
	} {
		if got := slurmMargin(job); got != want {
			t.Errorf("slurmMargin(%v) = %v, want %v", job, got, want)
		}
		a := slurmArray{JobTime: job}
		if lead := time.Duration(a.signalLead()) * time.Second; lead >= slurmMargin(job) && job > 2*time.Minute {
			t.Errorf("job %v: the USR1 warning %v before the end comes before osds's own limit (%v before)", job, lead, slurmMargin(job))
		}
	}
}

// TestSlurmScriptWritten runs `osds protocol --slurm` without submitting: the script names
// the unfinished cells in the table's order, asks for what the flags say, and parses.
func TestSlurmScriptWritten(t *testing.T) {
	out := t.TempDir()
	// A finished cell is left out of the array.
	writeFakeEval(t, out, "gmm25/tb/seed1", 12, 200)
	err := runProtocol([]string{"--slurm", "--out", out, "--targets", "gmm25,funnel", "--methods", "tb", "--seeds", "2",
		"--iters", "12", "--samples", "200", "--time", "1:00:00", "--partition", "gpu", "--gpus-per-task", "1",
		"--cpus-per-task", "4", "--max-running", "2", "--sbatch=--account=ml", "--sbatch=--mem=8G"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(slurmScriptPath(out))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --array=0-2%2\n", "#SBATCH --ntasks=1\n", "#SBATCH --cpus-per-task=4\n", "#SBATCH --gpus-per-task=1\n",
		"#SBATCH --partition=gpu\n", "#SBATCH --time=1:00:00\n", "#SBATCH --requeue\n", "#SBATCH --signal=B:USR1@90\n",
		"#SBATCH --open-mode=append\n", "#SBATCH --output=" + filepath.Join(out, "slurm", "%A_%a.log") + "\n",
		"#SBATCH --account=ml\n", "#SBATCH --mem=8G\n",
		"limit=3420\n", // 1 h less 3 min
		"cells=(\n\tfunnel/tb/seed1\n\tgmm25/tb/seed2\n\tfunnel/tb/seed2\n)\n",
		`--cell "$cell" --samples 200 --iters 12 --time-limit "${limit}s" &`,
		"osds protocol --table --out " + out + " --targets gmm25,funnel --methods tb --seeds 2 --iters 12 --samples 200",
		`scontrol requeue "$SLURM_JOB_ID"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the script lacks %q:\n%s", want, s)
		}
	}
	// #SBATCH lines count only before the first command.
	body := false
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "#SBATCH") && body {
			t.Errorf("#SBATCH line after the first command (sbatch ignores it): %s", line)
		}
		if line != "" && !strings.HasPrefix(line, "#") {
			body = true
		}
	}
	if out, err := exec.Command("bash", "-n", slurmScriptPath(out)).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}

	// No GPUs asked for, no partition: the lines are left out, Slurm's defaults apply.
	out2 := t.TempDir()
	if err := runProtocol([]string{"--slurm", "--out", out2, "--cell", "manywell/tb-expl-lp/seed3", "--gpus-per-task", "0", "--time", "30"}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(slurmScriptPath(out2))
	s = string(b)
	if strings.Contains(s, "--gpus-per-task") || strings.Contains(s, "--partition") || !strings.Contains(s, "cells=(\n\tmanywell/tb-expl-lp/seed3\n)") ||
		!strings.Contains(s, "#SBATCH --array=0-0\n") || strings.Contains(s, "--iters") || !strings.Contains(s, "--cell manywell/tb-expl-lp/seed3") {
		t.Errorf("one cell, no GPU, no partition:\n%s", s)
	}
}

func TestSlurmFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--submit"}, "--submit goes with --slurm"},
		{[]string{"--partition", "gpu"}, "--partition goes with --slurm"},
		{[]string{"--time", "10"}, "--time goes with --slurm"},
		{[]string{"--slurm", "--jobs", "2"}, "--slurm and --jobs do not go together"},
		{[]string{"--slurm", "--table"}, "--slurm and --table do not go together"},
		{[]string{"--slurm", "--time-limit", "1h"}, "--slurm and --time-limit do not go together"},
		{[]string{"--slurm", "--time", "infinite"}, "a task needs a finite time"},
		{[]string{"--slurm", "--time", "2h"}, "want sbatch's"},
		{[]string{"--slurm", "--gpus-per-task", "-1"}, "want ≥ 0"},
		{[]string{"--slurm", "--sbatch", "account=ml"}, "want one sbatch option"},
		{[]string{"--slurm", "--partition", "a b"}, "not a partition name"},
	} {
		err := runProtocol(append([]string{"--out", t.TempDir()}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("osds protocol %s: %v, want an error with %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// writeFakeEval writes a cell's eval.json as a finished run leaves it.
func writeFakeEval(t *testing.T, root, cell string, iter, samples int) {
	t.Helper()
	dir := filepath.Join(root, filepath.FromSlash(cell))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	js := []byte(`{"target": "x", "method": "tb", "seed": 1, "iter": ` + strconv.Itoa(iter) + `, "samples": ` + strconv.Itoa(samples) + `}`)
	if err := os.WriteFile(filepath.Join(dir, "eval.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSlurmScriptControl runs the job script under bash with the environment Slurm gives
// a task, osds replaced by a stand-in that behaves as told, and scontrol by one that notes
// its arguments: a finished cell ends the task, a run stopped by its time limit or by the
// USR1 warning requeues the task (osds getting exactly one SIGTERM), a SIGTERM to the
// whole job (what Slurm sends on requeue, preemption or scancel) reaches osds once and
// does not requeue, a failure does not requeue and is what --table reports.
func TestSlurmScriptControl(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run the job script")
	}
	for _, c := range []struct {
		name     string
		mode     string
		signal   syscall.Signal // sent once the stand-in is running: to the shell (USR1) or to the group (TERM)
		code     int
		requeued bool
		terms    int
		logWants string
	}{
		{name: "finished", mode: "finish", code: 0, logWants: "finished and evaluated"},
		{name: "time-limit", mode: "slow", code: 0, requeued: true, logWants: "requeueing the task"},
		{name: "failed", mode: "fail", code: 1, logWants: "failed: osds exited with status 1"},
		{name: "usr1-warning", mode: "wait", signal: syscall.SIGUSR1, code: 0, requeued: true, terms: 1, logWants: "SIGUSR1: the job's time is nearly up"},
		{name: "sigterm-to-job", mode: "wait", signal: syscall.SIGTERM, code: 143, terms: 1, logWants: "SIGTERM from Slurm"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			stub := filepath.Join(dir, "osds")
			writeExec(t, stub, `#!/bin/bash
echo "stand-in osds $*"
trap 'echo TERM >>"$STUB_DIR/terms"; stop=1' TERM
touch "$STUB_DIR/ready"
case $STUB_MODE in
finish) exit 0 ;;
slow) sleep 2; exit 0 ;;
fail) echo "osds protocol: gmm25 / TB / seed 1: loss is NaN at iteration 3"; exit 1 ;;
wait) while [ -z "${stop:-}" ]; do sleep 0.05; done; sleep 0.5; exit 143 ;;
esac
`)
			bin := filepath.Join(dir, "bin")
			os.Mkdir(bin, 0o755)
			writeExec(t, filepath.Join(bin, "scontrol"), "#!/bin/bash\necho \"$*\" >>\"$STUB_DIR/scontrol\"\n")
			out := filepath.Join(dir, "out")
			a := slurmArray{Osds: stub, Out: out, Chdir: dir, Cells: []string{"gmm25/tb/seed1"}, Samples: 200,
				Flags: slurmFlags{cpusPerTask: 1, time: "1:00"}, JobTime: time.Minute, Table: "osds protocol --table", Written: time.Now()}
			script := a.script()
			if c.mode == "slow" {
				// A limit of a second: the stand-in's 2 s are past it.
				script = strings.Replace(script, "\nlimit=45\n", "\nlimit=1\n", 1)
			}
			path := filepath.Join(dir, "job.sh")
			writeExec(t, path, script)
			cmd := exec.Command("bash", path)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "STUB_DIR="+dir, "STUB_MODE="+c.mode,
				"SLURM_ARRAY_TASK_ID=0", "SLURM_ARRAY_JOB_ID=7", "SLURM_JOB_ID=8", "SLURM_RESTART_COUNT=0", "SLURM_CPUS_PER_TASK=1")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var slurmOut strings.Builder
			cmd.Stdout, cmd.Stderr = &slurmOut, &slurmOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if c.signal != 0 {
				for end := time.Now().Add(10 * time.Second); !exists(filepath.Join(dir, "ready")); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(end) {
						t.Fatal("the stand-in osds never started")
					}
				}
				time.Sleep(100 * time.Millisecond)
				if c.signal == syscall.SIGTERM {
					syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // every process of the job, as slurmstepd does
				} else {
					cmd.Process.Signal(c.signal) // the batch shell only: --signal=B:USR1
				}
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatal("the job script hung")
			}
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(out, "gmm25", "tb", "seed1", "protocol.log")
			logText, _ := os.ReadFile(logPath)
			requeue, _ := os.ReadFile(filepath.Join(dir, "scontrol"))
			terms, _ := os.ReadFile(filepath.Join(dir, "terms"))
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			if got := string(requeue) == "requeue 8\n"; got != c.requeued || (!c.requeued && len(requeue) > 0) {
				t.Errorf("scontrol called with %q; want a requeue of job 8: %v", requeue, c.requeued)
			}
			if n := strings.Count(string(terms), "TERM"); n != c.terms {
				t.Errorf("osds got %d SIGTERMs, want %d", n, c.terms)
			}
			if !strings.Contains(string(logText), c.logWants) || !strings.Contains(string(logText), "stand-in osds protocol --out "+out+" --cell gmm25/tb/seed1 --samples 200 --time-limit ") {
				t.Errorf("the cell's log lacks %q or the osds call:\n%s", c.logWants, logText)
			}
			if want := "osds-slurm: task 7_0 runs cell gmm25/tb/seed1; its log: " + logPath + "\n"; slurmOut.String() != want {
				t.Errorf("Slurm's log holds %q, want only %q", slurmOut.String(), want)
			}
			failed, msg := lastFailure(logPath)
			if failed != (c.mode == "fail") || (failed && msg != "gmm25 / TB / seed 1: loss is NaN at iteration 3") {
				t.Errorf("lastFailure: %v %q", failed, msg)
			}
		})
	}
}

func writeExec(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestMissingCellsReport: --table names every run it lacks with how far it got, the error
// of a failed one (from its log, after its last start) and Slurm's last word on its task.
func TestMissingCellsReport(t *testing.T) {
	root := t.TempDir()
	cells, err := protocolCells("gmm25,funnel", "tb", 2, 12)
	if err != nil {
		t.Fatal(err)
	}
	writeFakeEval(t, root, "gmm25/tb/seed1", 12, 200)
	// funnel/tb/seed1 failed in its last attempt, after an earlier one that failed otherwise.
	writeLog(t, root, "funnel/tb/seed1/protocol.log", "osds-slurm: 2026 task 3_1 (job 5, restart 0) on vm: cell funnel/tb/seed1: starting osds\n"+
		"osds protocol: an old error\nosds-slurm: 2026 ...: failed: osds exited with status 1; not requeued\n"+
		"osds-slurm: 2026 task 3_1 (job 5, restart 1) on vm: cell funnel/tb/seed1: starting osds\n"+
		"protocol: run 1 of 1, funnel / TB / seed 1: 12 iterations\n\riteration 3/12\riteration 4/12\n"+
		"osds protocol: funnel / TB / seed 1: loss is NaN at iteration 4\n"+
		"osds-slurm: 2026 task 3_1 (job 5, restart 1) on vm: failed: osds exited with status 1; not requeued\n")
	// gmm25/tb/seed2 stopped on a signal: no failure; Slurm's log says why.
	writeLog(t, root, "gmm25/tb/seed2/protocol.log", "protocol: run 1 of 1, gmm25 / TB / seed 2: 12 iterations\n"+
		"osds protocol: gmm25 / TB / seed 2: interrupted by SIGTERM; checkpoint at iteration 5\n")
	writeLog(t, root, "slurm/3_2.log", "osds-slurm: task 3_2 runs cell gmm25/tb/seed2; its log: x\n"+
		"slurmstepd-vm: error: *** JOB 6 ON vm CANCELLED AT 2026-12-02T18:38:54 DUE TO TIME LIMIT ***\n")
	rs := missingCells(cells, root, 200)
	got := formatMissing(rs, len(cells))
	for _, want := range []string{
		"protocol: 3 of 4 runs missing from the table:\n",
		"  funnel/tb/seed1: failed: funnel / TB / seed 1: loss is NaN at iteration 4 (log: " + filepath.Join(root, "funnel", "tb", "seed1", "protocol.log") + ")\n",
		"  gmm25/tb/seed2: started, no checkpoint yet: Slurm: slurmstepd-vm: error: *** JOB 6 ON vm CANCELLED AT 2026-12-02T18:38:54 DUE TO TIME LIMIT *** (" + filepath.Join(root, "slurm", "3_2.log") + ")\n",
		"  funnel/tb/seed2: not started\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "gmm25/tb/seed1") || strings.Contains(got, "old error") {
		t.Errorf("the report names a finished run or an old attempt's error:\n%s", got)
	}
	// A checkpoint gives the progress, read from its header alone.
	ck := filepath.Join(root, "funnel", "tb", "seed2", "checkpoint.safetensors")
	os.MkdirAll(filepath.Dir(ck), 0o755)
	if err := nn.WriteSafetensors(ck, []nn.NamedTensor{{Name: "w", Shape: []int{2}, Data: []float32{1, 2}}},
		map[string]string{"format": "osds-sampler-checkpoint-1", "iteration": "7"}); err != nil {
		t.Fatal(err)
	}
	if rs := missingCells(cells[3:], root, 200); len(rs) != 1 || rs[0].State != "checkpoint at iteration 7 of 12" {
		t.Errorf("a run with a checkpoint: %+v", rs)
	}
	os.WriteFile(ck, []byte("not a checkpoint"), 0o644)
	if rs := missingCells(cells[3:], root, 200); len(rs) != 1 || !strings.HasPrefix(rs[0].State, "unreadable checkpoint: ") {
		t.Errorf("a damaged checkpoint: %+v", rs)
	}
	// The same evaluation at another sample count is not this table's.
	if rs := missingCells(cells[:1], root, 500); len(rs) != 1 || rs[0].State != "not started" {
		t.Errorf("an evaluation with other samples counts as finished: %+v", rs)
	}
	if s := formatMissing(nil, 4); s != "" {
		t.Errorf("nothing missing: %q", s)
	}
}

func writeLog(t *testing.T, root, rel, text string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
