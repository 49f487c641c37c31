package main

import (
	"fmt"
	"os"
	"time"
)

// rateMeter estimates a rate from steady work: the first observation is the baseline,
// because the first unit of work on a fresh process compiles pipelines (tens of seconds
// on a CPU adapter) and would make every early ETA wildly long.
type rateMeter struct {
	t0  time.Time
	n0  int
	set bool
}

// observe records that done units are finished now and returns the steady rate in
// units per second (ok = false until there is a second observation to measure from).
func (m *rateMeter) observe(done int) (rate float64, ok bool) {
	now := time.Now()
	if !m.set {
		m.t0, m.n0, m.set = now, done, true
		return 0, false
	}
	dt := now.Sub(m.t0).Seconds()
	if done <= m.n0 || dt <= 0 {
		return 0, false
	}
	return float64(done-m.n0) / dt, true
}

// eta formats the remaining time at rate, or says it is being measured.
func eta(remaining int, rate float64, ok bool) string {
	if !ok {
		return "ETA …"
	}
	return "ETA " + (time.Duration(float64(remaining) / rate * float64(time.Second))).Round(time.Second).String()
}

// phaseProgress prints the advance of long phases (sampling, the EUBO, baselines) to
// stderr: redrawn in place on a terminal at most 4 times a second, a line every 10
// seconds in a log file. It returns the interruption error once a signal arrived, so a
// phase stops at its next batch.
func phaseProgress(sigs *interrupts) func(phase string, done, total int) error {
	tty := isTerminal(os.Stderr)
	interval := 10 * time.Second
	if tty {
		interval = 250 * time.Millisecond
	}
	meters := map[string]*rateMeter{}
	var shown time.Time
	return func(phase string, done, total int) error {
		if err := sigs.err(); err != nil {
			return err
		}
		m := meters[phase]
		if m == nil {
			m = &rateMeter{}
			meters[phase] = m
		}
		rate, ok := m.observe(done)
		if time.Since(shown) < interval && done < total {
			return nil
		}
		shown = time.Now()
		line := fmt.Sprintf("%s %d/%d  %s", phase, done, total, eta(total-done, rate, ok))
		switch {
		case tty && done < total:
			fmt.Fprintf(os.Stderr, "\r%-60s", line)
		case tty:
			fmt.Fprintf(os.Stderr, "\r%-60s\n", line)
		default:
			fmt.Fprintln(os.Stderr, line)
		}
		return nil
	}
}
