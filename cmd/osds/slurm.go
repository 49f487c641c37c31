package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osds/nn"
)

// `osds protocol --slurm` (issue #23): the protocol's cells as one Slurm job array. osds
// writes the batch script and, with --submit, hands it to sbatch; Slurm does the rest —
// placement, retries (requeue), accounting. Each task runs one cell with `osds protocol
// --cell`, which resumes from the cell's checkpoint, so a task that was requeued after a
// preemption, or that requeued itself when its time ran out, goes on where it stopped and
// ends with the same evaluation as an uninterrupted run. The table is gathered from the
// shared --out folder by `osds protocol --table`, which also names the cells that are
// missing or failed, from their logs. docs/slurm.md explains the script line by line.

// slurmFlags are the flags of `osds protocol` that make and submit the job array.
type slurmFlags struct {
	slurm, submit bool
	partition     string
	gpusPerTask   int
	cpusPerTask   int
	maxRunning    int
	time          string
	sbatch        []string
}

// slurmOnly are the flags that mean something only with --slurm; given without it they are
// refused rather than ignored, so that a forgotten --slurm never runs 105 cells here.
var slurmOnly = []string{"submit", "partition", "gpus-per-task", "cpus-per-task", "max-running", "time", "sbatch"}

func addSlurmFlags(fs *pflag.FlagSet) *slurmFlags {
	f := &slurmFlags{}
	fs.BoolVar(&f.slurm, "slurm", false, "write a Slurm job array, one task per unfinished run (OUT/slurm/protocol.sbatch), instead of training here; see docs/slurm.md")
	fs.BoolVar(&f.submit, "submit", false, "with --slurm: also submit the job array with sbatch")
	fs.StringVar(&f.partition, "partition", "", "with --slurm: the partition to run in (default: the cluster's)")
	fs.IntVar(&f.gpusPerTask, "gpus-per-task", 1, "with --slurm: GPUs per task (0: request none, e.g. on a CPU partition through lavapipe)")
	fs.IntVar(&f.cpusPerTask, "cpus-per-task", 2, "with --slurm: CPUs per task (lavapipe's LP_NUM_THREADS in the task, unless set)")
	fs.IntVar(&f.maxRunning, "max-running", 0, "with --slurm: at most this many tasks at once (0: as many as Slurm places)")
	fs.StringVar(&f.time, "time", "2:00:00", "with --slurm: each task's time limit, in sbatch's format (MM, HH:MM:SS, D-HH:MM …); osds stops a little before it with a checkpoint and the task requeues itself to continue")
	fs.StringArrayVar(&f.sbatch, "sbatch", nil, "with --slurm: one more sbatch `OPTION` for the job array (repeatable), e.g. --sbatch=--account=ml --sbatch=--mem=8G")
	return f
}

// validate refuses Slurm flags without --slurm, and flags that do not go with it.
func (f *slurmFlags) validate(fs *pflag.FlagSet) error {
	if !f.slurm {
		for _, name := range slurmOnly {
			if fs.Changed(name) {
				return fmt.Errorf("--%s goes with --slurm (write a Slurm job array); without it the runs train on this machine", name)
			}
		}
		return nil
	}
	for _, c := range []struct{ name, why string }{
		{"table", "the table is gathered after the array ran: osds protocol --table with the same --out"},
		{"jobs", "Slurm runs the array's tasks side by side; --jobs is for one machine"},
		{"time-limit", "each task's limit comes from --time"},
	} {
		if fs.Changed(c.name) {
			return fmt.Errorf("--slurm and --%s do not go together: %s", c.name, c.why)
		}
	}
	switch {
	case f.gpusPerTask < 0 || f.cpusPerTask < 1 || f.maxRunning < 0:
		return fmt.Errorf("--gpus-per-task %d, --cpus-per-task %d, --max-running %d: want ≥ 0, ≥ 1 and ≥ 0", f.gpusPerTask, f.cpusPerTask, f.maxRunning)
	case strings.ContainsAny(f.partition, " \t\n#'\"$`\\"):
		return fmt.Errorf("--partition %q: not a partition name", f.partition)
	}
	for _, o := range f.sbatch {
		if !strings.HasPrefix(o, "-") || strings.Contains(o, "\n") {
			return fmt.Errorf("--sbatch %q: want one sbatch option, e.g. --sbatch=--account=ml", o)
		}
	}
	return nil
}

// parseSlurmTime reads a time limit in sbatch's formats: minutes, minutes:seconds,
// hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds. An
// unlimited time is refused: osds must know when to stop with a checkpoint.
func parseSlurmTime(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("--time %q: %s (want sbatch's MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, e.g. 2:00:00)", s, why)
	}
	t := strings.TrimSpace(s)
	if t == "" || strings.EqualFold(t, "infinite") || strings.EqualFold(t, "unlimited") || t == "-1" {
		return bad("a task needs a finite time, so that osds can checkpoint before it ends")
	}
	num := func(x string) (int, bool) {
		n, err := strconv.Atoi(x)
		return n, err == nil && n >= 0 && x != "" && !strings.ContainsAny(x, "+-")
	}
	var days, h, m, sec int
	rest := t
	if d, r, ok := strings.Cut(t, "-"); ok {
		n, okd := num(d)
		if !okd {
			return bad("the days are not a number")
		}
		days, rest = n, r
		parts := strings.Split(rest, ":")
		if len(parts) > 3 {
			return bad("too many fields")
		}
		vals := []*int{&h, &m, &sec}
		for i, p := range parts {
			n, ok := num(p)
			if !ok {
				return bad(fmt.Sprintf("%q is not a number", p))
			}
			*vals[i] = n
		}
	} else {
		parts := strings.Split(rest, ":")
		var vals []*int
		switch len(parts) {
		case 1:
			vals = []*int{&m}
		case 2:
			vals = []*int{&m, &sec}
		case 3:
			vals = []*int{&h, &m, &sec}
		default:
			return bad("too many fields")
		}
		for i, p := range parts {
			n, ok := num(p)
			if !ok {
				return bad(fmt.Sprintf("%q is not a number", p))
			}
			*vals[i] = n
		}
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second
	if d < time.Minute {
		return bad("shorter than a minute, Slurm's resolution")
	}
	return d, nil
}

// slurmMargin is how long before the job's end osds stops by itself (its --time-limit):
// the rest of the iteration, the checkpoint, and the evaluation when the run has just
// finished must fit in it. A twentieth of the job, at least a minute and at most ten, and
// never more than a quarter of a short job.
func slurmMargin(job time.Duration) time.Duration {
	m := min(max(job/20, time.Minute), 10*time.Minute)
	return min(m, job/4).Round(time.Second)
}

// slurmArray is everything the job script says: where osds and the runs are, the cells
// (task i runs Cells[i]), and what each task asks of Slurm.
type slurmArray struct {
	Osds, Out, Chdir string
	Cells            []string
	Iters, Samples   int
	Flags            slurmFlags
	JobTime          time.Duration
	// Table is the command that gathers the table once the array ran (for the header).
	Table   string
	Written time.Time
}

// limit is osds's own time limit in a task, in whole seconds: the job's less the margin.
func (a slurmArray) limit() int { return int((a.JobTime - slurmMargin(a.JobTime)).Seconds()) }

// signalLead is when, in seconds before the job's end, Slurm sends the batch shell SIGUSR1
// (sbatch --signal): half the margin, a second line behind osds's own time limit for a
// task whose last step ran long. Slurm may send it up to a minute early; that only stops
// the task sooner, and it requeues itself all the same.
func (a slurmArray) signalLead() int { return max(int(slurmMargin(a.JobTime).Seconds())/2, 10) }

// shellQuote quotes s for bash as one word.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+-@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// script is the batch script of the job array. Slurm reads the #SBATCH lines; bash runs
// the rest in each task, with SLURM_ARRAY_TASK_ID choosing the cell.
func (a slurmArray) script() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	f := a.Flags
	w("#!/bin/bash")
	w("# osds protocol as a Slurm job array, written by `osds protocol --slurm` at %s.", a.Written.UTC().Format(time.RFC3339))
	w("# Submit it with `sbatch %s`; docs/slurm.md explains it line by line.", filepath.Join(a.Out, "slurm", "protocol.sbatch"))
	w("# Task i trains cell i of the list below with `osds protocol --cell` (resuming from the")
	w("# cell's checkpoint when an earlier attempt stopped) and evaluates it into OUT/CELL/eval.json;")
	w("# its output goes to OUT/CELL/protocol.log. When the array is done, gather the table with")
	w("#   %s", a.Table)
	w("#SBATCH --job-name=osds-protocol")
	array := fmt.Sprintf("0-%d", len(a.Cells)-1)
	if f.maxRunning > 0 {
		array += "%" + strconv.Itoa(f.maxRunning)
	}
	w("#SBATCH --array=%s", array)
	w("#SBATCH --ntasks=1")
	w("#SBATCH --cpus-per-task=%d", f.cpusPerTask)
	if f.gpusPerTask > 0 {
		w("#SBATCH --gpus-per-task=%d", f.gpusPerTask)
	}
	if f.partition != "" {
		w("#SBATCH --partition=%s", f.partition)
	}
	w("#SBATCH --time=%s", strings.TrimSpace(f.time))
	w("#SBATCH --requeue")
	w("#SBATCH --signal=B:USR1@%d", a.signalLead())
	w("#SBATCH --open-mode=append")
	w("#SBATCH --output=%s", filepath.Join(a.Out, "slurm", "%A_%a.log"))
	w("#SBATCH --chdir=%s", a.Chdir)
	for _, o := range f.sbatch {
		w("#SBATCH %s", o)
	}
	w("")
	w("set -u")
	w("osds=%s", shellQuote(a.Osds))
	w("out=%s", shellQuote(a.Out))
	w("# osds's --time-limit in seconds: the job's %s less %s for the last iteration, the", strings.TrimSpace(f.time), slurmMargin(a.JobTime))
	w("# checkpoint and the evaluation.")
	w("limit=%d", a.limit())
	w("cells=(")
	for _, c := range a.Cells {
		w("\t%s", c)
	}
	w(")")
	w("cell=${cells[$SLURM_ARRAY_TASK_ID]}")
	w("task=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}")
	w(`mkdir -p "$out/$cell" || exit 1`)
	w("# The one line in Slurm's log (--output): which cell this task is. Everything else goes to")
	w("# the cell's own log, which every attempt of the task appends to.")
	w(`echo "osds-slurm: task $task runs cell $cell; its log: $out/$cell/protocol.log"`)
	w(`exec >>"$out/$cell/protocol.log" 2>&1`)
	w(`say() { echo "osds-slurm: $(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ) task $task (job $SLURM_JOB_ID, restart ${SLURM_RESTART_COUNT:-0}) on $(hostname -s): $*"; }`)
	w("# On a CPU adapter (lavapipe) osds uses the task's CPUs.")
	w(`export LP_NUM_THREADS=${LP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}`)
	w("# SIGUSR1 (--signal) comes only to this shell: the job's time is nearly up, so osds is asked")
	w("# to checkpoint (one SIGTERM) and the task requeues itself below. A SIGTERM comes from Slurm")
	w("# to every process of the job (requeue, preemption, scancel, the time limit): osds got it")
	w("# too, so the shell only notes it and keeps waiting; passing it on would be a second")
	w("# signal, on which osds exits at once without its checkpoint.")
	w("warned=0 pid=")
	w(`on_usr1() { warned=1; say "SIGUSR1: the job's time is nearly up: osds checkpoints and stops"; [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; }`)
	w(`on_term() { say "SIGTERM from Slurm (requeue, preemption, scancel or the time limit): osds checkpoints and stops"; }`)
	w("trap on_usr1 USR1")
	w("trap on_term TERM")
	args := []string{`"$osds"`, "protocol", "--out", `"$out"`, "--cell", `"$cell"`, "--samples", strconv.Itoa(a.Samples)}
	if a.Iters > 0 {
		args = append(args, "--iters", strconv.Itoa(a.Iters))
	}
	args = append(args, "--time-limit", `"${limit}s"`)
	w(`say "cell $cell: starting osds"`)
	w("started=$SECONDS")
	w("%s &", strings.Join(args, " "))
	w("pid=$!")
	w("# wait returns early when a trapped signal arrives; wait again until osds has exited, and")
	w("# once more for its status in case the shell collected it while running a trap.")
	w("rc=0")
	w(`while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done`)
	w(`wait "$pid" 2>/dev/null; last=$?; [ "$last" -ne 127 ] && rc=$last`)
	w("ran=$((SECONDS - started))")
	w("case $rc in")
	w("0)")
	w("\t# osds exits 0 when the cell is finished and evaluated, or when its time limit stopped it")
	w("\t# with a checkpoint: which one, its running time tells (a requeue of a finished cell")
	w("\t# costs seconds: the next attempt finds its eval.json and stops).")
	w(`	if [ "$warned" = 0 ] && [ "$ran" -lt "$limit" ]; then say "cell $cell: finished and evaluated"; exit 0; fi ;;`)
	w("129 | 130 | 143)")
	w(`	if [ "$warned" = 0 ]; then`)
	w(`		say "osds stopped on a signal (status $rc) and kept its checkpoint; Slurm requeues the task after a requeue or preemption"`)
	w(`		exit "$rc"`)
	w("\tfi ;;")
	w("*)")
	w(`	say "failed: osds exited with status $rc; not requeued (fix the cause and submit again: finished cells are kept)"`)
	w(`	exit "$rc" ;;`)
	w("esac")
	w(`say "the job's time is nearly up (osds ran ${ran}s of its ${limit}s): requeueing the task to continue from the checkpoint"`)
	w(`if ! scontrol requeue "$SLURM_JOB_ID"; then`)
	w(`	say "failed: scontrol requeue $SLURM_JOB_ID did not succeed; submit the array again to continue"`)
	w("\texit 1")
	w("fi")
	return b.String()
}

// slurmScriptPath is where --slurm writes the job array of the runs under out.
func slurmScriptPath(out string) string { return filepath.Join(out, "slurm", "protocol.sbatch") }

// runSlurm writes the job array of the cells not yet finished and, with --submit, submits
// it. table is the `osds protocol --table` command that gathers them afterwards.
func runSlurm(f *slurmFlags, cells []protocolCell, out string, samples, iters int, table string) error {
	job, err := parseSlurmTime(f.time)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		return fmt.Errorf("--slurm: finding this program for the tasks to run: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	var todo []string
	for _, c := range cells {
		if _, ok := finished(c, out, samples); !ok {
			todo = append(todo, c.name())
		}
	}
	if len(todo) == 0 {
		fmt.Fprintf(os.Stderr, "protocol: all %d runs are finished and evaluated; nothing to submit (the table: %s)\n", len(cells), table)
		return nil
	}
	a := slurmArray{Osds: self, Out: abs, Chdir: wd, Cells: todo, Iters: iters, Samples: samples,
		Flags: *f, JobTime: job, Table: table, Written: time.Now()}
	path := slurmScriptPath(abs)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := nn.WriteFileAtomic(path, []byte(a.script())); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "protocol: %d of %d runs to do, one task each: job array in %s (each task: --time %s, osds stops after %s with a checkpoint and requeues itself)\n",
		len(todo), len(cells), path, strings.TrimSpace(f.time), time.Duration(a.limit())*time.Second)
	if !f.submit {
		fmt.Fprintf(os.Stderr, "submit it with: sbatch %s\nthen, when it is done: %s\n", path, table)
		return nil
	}
	id, err := sbatch(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "protocol: submitted job array %s (%d tasks); follow it with squeue -j %s, and when it is done: %s\n", id, len(todo), id, table)
	fmt.Println(id) // on stdout alone, for scripts
	return nil
}

// sbatch submits a batch script and returns the job's id.
func sbatch(path string) (string, error) {
	bin, err := exec.LookPath("sbatch")
	if err != nil {
		return "", fmt.Errorf("--submit: sbatch is not on PATH (Slurm's client commands are needed to submit; without --submit the script is only written): %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "--parsable", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("sbatch %s: %v: %s", path, err, strings.TrimSpace(stderr.String()+" "+stdout.String()))
	}
	// --parsable prints "ID" or "ID;CLUSTER".
	id, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), ";")
	if id == "" {
		return "", fmt.Errorf("sbatch %s printed no job id: %s", path, strings.TrimSpace(stderr.String()))
	}
	return id, nil
}

// tableCommand is the `osds protocol --table` call over the same runs as this one.
func tableCommand(fs *pflag.FlagSet) string {
	parts := []string{"osds", "protocol", "--table"}
	for _, name := range []string{"out", "targets", "methods", "seeds", "iters", "samples", "cell"} {
		fl := fs.Lookup(name)
		if name == "out" || fl.Changed {
			v := fl.Value.String()
			if name == "out" {
				if abs, err := filepath.Abs(v); err == nil {
					v = abs
				}
			}
			parts = append(parts, "--"+name, shellQuote(v))
		}
	}
	return strings.Join(parts, " ")
}

// cellReport is one unfinished cell as --table names it.
type cellReport struct {
	Cell  string
	State string // "not started", "checkpoint at iteration 6 of 12", "failed", …
	Note  string // the failure's message, or Slurm's last word on the task
	Log   string
}

// missingCells describes the cells that have no evaluation at this table's iterations and
// samples: how far each got (its checkpoint), whether its last attempt failed (its
// protocol.log: osds's error, or the job script's verdict) and what Slurm said last about
// its task (a line of slurmstepd in OUT/slurm/, e.g. a job cancelled at its time limit).
func missingCells(cells []protocolCell, root string, samples int) []cellReport {
	slurmLogs := slurmTaskLogs(root)
	var out []cellReport
	for _, c := range cells {
		if _, ok := finished(c, root, samples); ok {
			continue
		}
		dir := c.dir(root)
		r := cellReport{Cell: c.name(), State: "not started"}
		if iter, err := checkpointIteration(filepath.Join(dir, "checkpoint.safetensors")); err == nil {
			r.State = fmt.Sprintf("checkpoint at iteration %d of %d", iter, c.Iters)
			if iter >= c.Iters {
				r.State = fmt.Sprintf("trained (iteration %d), not evaluated with %d samples", iter, samples)
			}
		} else if exists(filepath.Join(dir, "checkpoint.safetensors")) {
			r.State = "unreadable checkpoint: " + err.Error()
		} else if exists(filepath.Join(dir, "protocol.log")) {
			r.State = "started, no checkpoint yet"
		}
		logPath := filepath.Join(dir, "protocol.log")
		if failed, msg := lastFailure(logPath); failed {
			r.State, r.Note, r.Log = "failed", msg, logPath
		}
		if line, file := lastSlurmWord(slurmLogs[c.name()]); line != "" {
			if r.Note != "" {
				r.Note += "; "
			}
			r.Note += "Slurm: " + line + " (" + file + ")"
		}
		out = append(out, r)
	}
	return out
}

// checkpointIteration reads the iteration of a sampler checkpoint from its safetensors
// header alone (8 bytes of little-endian length, then JSON whose __metadata__ holds it):
// the report looks at every unfinished run, and a local-search run's checkpoint carries
// its replay buffer, tens of MB that train.LoadCheckpoint would read and check.
func checkpointIteration(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	size := binary.LittleEndian.Uint64(n[:])
	if size > 100<<20 {
		return 0, fmt.Errorf("%s: not a safetensors file (header of %d bytes)", path, size)
	}
	head := make([]byte, size)
	if _, err := io.ReadFull(f, head); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	var h struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(head, &h); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if h.Meta["format"] != "osds-sampler-checkpoint-1" {
		return 0, fmt.Errorf("%s is not an osds sampler checkpoint", path)
	}
	return strconv.Atoi(h.Meta["iteration"])
}

// formatMissing is the report of missingCells, or "" when every cell is finished.
func formatMissing(rs []cellReport, total int) string {
	if len(rs) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "protocol: %d of %d runs missing from the table:\n", len(rs), total)
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s: %s", r.Cell, r.State)
		if r.Note != "" {
			fmt.Fprintf(&b, ": %s", r.Note)
		}
		if r.Log != "" {
			fmt.Fprintf(&b, " (log: %s)", r.Log)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// readTail is the last n bytes of a file, or all of it.
func readTail(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(0, fi.Size()-n)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return "", err
	}
	return string(buf), nil
}

// logLines splits a log into lines, progress lines redrawn with \r included.
func logLines(s string) []string {
	return strings.Split(strings.ReplaceAll(s, "\r", "\n"), "\n")
}

// lastFailure reads a cell's protocol.log and reports whether its last attempt failed,
// with the message that says why: osds's own error line ("osds protocol: …", what main
// prints) when there is one after the attempt's start, else the job script's verdict. A
// stop on a signal, with its checkpoint, is no failure: the task goes on when requeued.
func lastFailure(path string) (bool, string) {
	text, err := readTail(path, 4<<20)
	if err != nil {
		return false, ""
	}
	var osdsErr, script string
	for _, line := range logLines(text) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "protocol: run ") || (strings.HasPrefix(line, "osds-slurm: ") && strings.HasSuffix(line, ": starting osds")):
			osdsErr, script = "", "" // a new attempt: what went before is history
		case strings.HasPrefix(line, "osds protocol: ") && !strings.Contains(line, "interrupted by"):
			osdsErr = strings.TrimPrefix(line, "osds protocol: ")
		case strings.HasPrefix(line, "osds-slurm: ") && strings.Contains(line, ": failed: "):
			_, script, _ = strings.Cut(line, ": failed: ")
		}
	}
	switch {
	case osdsErr != "":
		return true, osdsErr
	case script != "":
		return true, script
	}
	return false, ""
}

// slurmTaskLogs maps each cell to the Slurm output files (OUT/slurm/*.log) of the tasks
// that ran it, newest last: the job script's first line names the cell.
func slurmTaskLogs(root string) map[string][]string {
	paths, _ := filepath.Glob(filepath.Join(root, "slurm", "*.log"))
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			files = append(files, file{p, fi.ModTime()})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	m := map[string][]string{}
	for _, f := range files {
		text, err := readTail(f.path, 1<<20)
		if err != nil {
			continue
		}
		seen := map[string]bool{}
		for _, line := range logLines(text) {
			_, rest, ok := strings.Cut(line, " runs cell ")
			if !ok || !strings.HasPrefix(line, "osds-slurm: task ") {
				continue
			}
			cell, _, _ := strings.Cut(rest, ";")
			if !seen[cell] {
				seen[cell] = true
				m[cell] = append(m[cell], f.path)
			}
		}
	}
	return m
}

// lastSlurmWord is the last message of slurmstepd ("*** JOB 12 ON node CANCELLED AT … DUE
// TO TIME LIMIT ***") in the newest of a task's Slurm logs, and that log.
func lastSlurmWord(paths []string) (string, string) {
	if len(paths) == 0 {
		return "", ""
	}
	p := paths[len(paths)-1]
	text, err := readTail(p, 1<<20)
	if err != nil {
		return "", ""
	}
	var last string
	for _, line := range logLines(text) {
		if strings.HasPrefix(line, "slurmstepd") && strings.Contains(line, "***") {
			last = strings.TrimSpace(line)
		}
	}
	return last, p
}
