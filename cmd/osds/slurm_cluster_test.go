//go:build slurm

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSlurmProtocolArray is issue #23's end-to-end check, on a real Slurm: it starts a
// single-node cluster (scripts/slurm/local-cluster.sh: munged, slurmctld and slurmd on
// localhost), submits a small protocol (2 targets × 1 method × 2 seeds) with `osds
// protocol --slurm --submit`, requeues one task while it trains (`scontrol requeue`:
// Slurm's SIGTERM, the checkpoint, the requeue, a new attempt that resumes), and checks
// that the table `osds protocol --table` gathers from the array's folder is the one a
// single `osds protocol` process makes, byte for byte, and every eval.json with it. The
// table holds no wall times or device names (only the iterations, seed counts and
// metrics), so the bytes themselves must be equal.
//
// It runs only with -tags slurm (make test-slurm), and fails, not skips, when Slurm is
// missing. OSDS_SLURM_KEEP=1 leaves the cluster running afterwards.
func TestSlurmProtocolArray(t *testing.T) {
	for _, b := range []string{"sbatch", "squeue", "scontrol", "sinfo", "slurmctld", "slurmd", "munged"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is not on PATH: the Slurm test needs Debian's slurm-wlm and munge (scripts/slurm/local-cluster.sh install; make test-slurm runs it)", b)
		}
	}
	cluster := filepath.Join("..", "..", "scripts", "slurm", "local-cluster.sh")
	if out, err := exec.Command("bash", cluster, "start").CombinedOutput(); err != nil {
		t.Fatalf("starting the local Slurm: %v\n%s", err, out)
	}
	if os.Getenv("OSDS_SLURM_KEEP") == "" {
		t.Cleanup(func() { exec.Command("bash", cluster, "stop").Run() })
	}
	envLine, err := exec.Command("bash", cluster, "env").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLURM_CONF", strings.TrimPrefix(strings.TrimSpace(string(envLine)), "export SLURM_CONF="))

	bin := buildOSDS(t)
	const iters = 40
	sel := []string{"--targets", "gmm25,funnel", "--methods", "tb", "--seeds", "2", "--iters", strconv.Itoa(iters), "--samples", "200"}
	arrayOut := t.TempDir()
	start := time.Now()
	sub := exec.Command(bin, append(append([]string{"protocol", "--slurm", "--submit", "--out", arrayOut}, sel...),
		"--time", "10:00", "--gpus-per-task", "0", "--cpus-per-task", "1")...)
	var subErr bytes.Buffer
	sub.Stderr = &subErr
	idOut, err := sub.Output()
	if err != nil {
		t.Fatalf("osds protocol --slurm --submit: %v\n%s", err, subErr.String())
	}
	job := strings.TrimSpace(string(idOut))
	if _, err := strconv.Atoi(job); err != nil {
		t.Fatalf("--submit printed %q, not a job id\n%s", idOut, subErr.String())
	}
	t.Logf("submitted job array %s: %s", job, strings.TrimSpace(subErr.String()))
	t.Cleanup(func() { exec.Command("scancel", job).Run() })
	dump := func() {
		for _, p := range append(globAll(arrayOut, "*/*/*/protocol.log"), globAll(arrayOut, "slurm/*.log")...) {
			b, _ := os.ReadFile(p)
			t.Logf("== %s\n%s", p, tail(string(b), 40))
		}
		st, _ := exec.Command("scontrol", "-o", "show", "job", job).CombinedOutput()
		t.Logf("== scontrol show job %s\n%s", job, st)
	}

	// The victim is the array's second task (funnel/tb/seed1, started with the first on
	// the node's 2 CPUs): requeued once its metrics show it training, well before its end.
	victim, victimTask := "funnel/tb/seed1", job+"_1"
	metrics := filepath.Join(arrayOut, "funnel", "tb", "seed1", "metrics.jsonl")
	for rows := 0; rows < 4; rows = countLines(metrics) {
		if rows >= iters/2 {
			dump()
			t.Fatalf("%s reached %d of %d iterations before it could be requeued", victim, rows, iters)
		}
		if time.Since(start) > 8*time.Minute {
			dump()
			t.Fatalf("%s did not start training within 8 minutes", victim)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if out, err := exec.Command("scontrol", "requeue", victimTask).CombinedOutput(); err != nil {
		dump()
		t.Fatalf("scontrol requeue %s: %v\n%s", victimTask, err, out)
	}
	t.Logf("requeued %s (%s) at %d metrics rows, %v after submitting", victimTask, victim, countLines(metrics), time.Since(start).Round(time.Second))

	// The same table in one process, trained while the array runs on.
	ref := t.TempDir()
	refDone := make(chan error, 1)
	var refOut bytes.Buffer
	go func() {
		cmd := exec.Command(bin, append([]string{"protocol", "--out", ref}, sel...)...)
		cmd.Stdout, cmd.Stderr = &refOut, &refOut
		refDone <- cmd.Run()
	}()

	// Slurm holds a requeued job back for two minutes before it runs it again.
	for {
		q, err := exec.Command("squeue", "-h", "-j", job, "-o", "%i %T %r").CombinedOutput()
		if err != nil {
			dump()
			t.Fatalf("squeue -j %s: %v\n%s", job, err, q)
		}
		if strings.TrimSpace(string(q)) == "" {
			break
		}
		if time.Since(start) > 25*time.Minute {
			dump()
			t.Fatalf("the array has not finished after 25 minutes:\n%s", q)
		}
		time.Sleep(2 * time.Second)
	}
	arrayTime := time.Since(start)
	if err := <-refDone; err != nil {
		t.Fatalf("osds protocol in one process: %v\n%s", err, refOut.String())
	}

	// Every task completed, the victim after one restart.
	st, err := exec.Command("scontrol", "-o", "show", "job", job).CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol show job %s: %v\n%s", job, err, st)
	}
	tasks := 0
	for _, line := range strings.Split(strings.TrimSpace(string(st)), "\n") {
		tasks++
		field := func(k string) string {
			m := regexp.MustCompile(`\b` + k + `=(\S+)`).FindStringSubmatch(line)
			if m == nil {
				return ""
			}
			return m[1]
		}
		want := "0"
		if field("ArrayTaskId") == "1" {
			want = "1"
		}
		if field("JobState") != "COMPLETED" || field("ExitCode") != "0:0" || field("Restarts") != want {
			dump()
			t.Fatalf("task %s: JobState=%s ExitCode=%s Restarts=%s, want COMPLETED, 0:0 and %s restarts", field("ArrayTaskId"), field("JobState"), field("ExitCode"), field("Restarts"), want)
		}
	}
	if tasks != 4 {
		dump()
		t.Fatalf("the array has %d tasks, want 4:\n%s", tasks, st)
	}

	// The victim was interrupted with a checkpoint and resumed from it.
	logText, _ := os.ReadFile(filepath.Join(arrayOut, "funnel", "tb", "seed1", "protocol.log"))
	stopped := regexp.MustCompile(`interrupted by SIGTERM; checkpoint at iteration (\d+)`).FindStringSubmatch(string(logText))
	resumed := regexp.MustCompile(`resuming at iteration (\d+) of 40`).FindStringSubmatch(string(logText))
	if stopped == nil || resumed == nil || stopped[1] != resumed[1] || resumed[1] == "0" || !strings.Contains(string(logText), "SIGTERM from Slurm") || !strings.Contains(string(logText), "restart 1)") {
		dump()
		t.Fatalf("%s's log does not show a SIGTERM, a checkpoint and a resume from it in its second start:\n%s", victim, tail(string(logText), 60))
	}
	t.Logf("%s: stopped by Slurm's SIGTERM at iteration %s of %d, resumed there after the requeue", victim, stopped[1], iters)

	// The gathered table and every evaluation equal the one-process run's, byte for byte.
	gather := exec.Command(bin, append([]string{"protocol", "--table", "--out", arrayOut}, sel...)...)
	var gErr bytes.Buffer
	gather.Stderr = &gErr
	gOut, err := gather.Output()
	if err != nil || strings.Contains(gErr.String(), "missing") {
		t.Fatalf("osds protocol --table: %v\n%s%s", err, gOut, gErr.String())
	}
	a, _ := os.ReadFile(filepath.Join(arrayOut, "table.md"))
	b, _ := os.ReadFile(filepath.Join(ref, "table.md"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("the gathered table differs from the one-process table:\ngathered:\n%s\none process:\n%s", a, b)
	}
	if !strings.Contains(string(a), fmt.Sprintf("| gmm25 | TB | %d | 2 |", iters)) || !strings.Contains(string(a), fmt.Sprintf("| funnel | TB | %d | 2 |", iters)) {
		t.Fatalf("the table lacks a row of 2 seeds per target:\n%s", a)
	}
	for _, cell := range []string{"gmm25/tb/seed1", "funnel/tb/seed1", "gmm25/tb/seed2", "funnel/tb/seed2"} {
		x, _ := os.ReadFile(filepath.Join(arrayOut, filepath.FromSlash(cell), "eval.json"))
		y, _ := os.ReadFile(filepath.Join(ref, filepath.FromSlash(cell), "eval.json"))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Fatalf("%s: eval.json differs:\narray:\n%s\none process:\n%s", cell, x, y)
		}
	}
	t.Logf("the array finished in %v; table and eval.json files equal the one-process run's:\n%s", arrayTime.Round(time.Second), a)
}

func globAll(root, pattern string) []string {
	m, _ := filepath.Glob(filepath.Join(root, pattern))
	return m
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte{'\n'})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(s, "\r", "\n"), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
