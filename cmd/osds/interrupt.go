package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// terminating are the signals that end a command: Ctrl-C, `kill`/`timeout`/`docker stop`
// and cluster schedulers (SIGTERM), a closed terminal or ssh session (SIGHUP).
var terminating = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// interrupts turns terminating signals into a stop request for a command's lifetime. The
// first signal asks the work to stop at its next safe point (train writes a checkpoint
// there); a second ends the process at once, with the shell's code for that signal.
type interrupts struct {
	ch   chan os.Signal
	mu   sync.Mutex
	got  os.Signal
	done chan struct{}
}

// catchInterrupts starts catching; call release when the command ends.
func catchInterrupts() *interrupts {
	in := &interrupts{ch: make(chan os.Signal, 2), done: make(chan struct{})}
	signal.Notify(in.ch, terminating...)
	go func() {
		for {
			select {
			case s := <-in.ch:
				in.mu.Lock()
				first := in.got == nil
				if first {
					in.got = s
				}
				in.mu.Unlock()
				if !first {
					fmt.Fprintf(os.Stderr, "\nosds: %s again: exiting at once\n", signalName(s))
					os.Exit(signalExitCode(s))
				}
				fmt.Fprintf(os.Stderr, "\nosds: %s: stopping at the next safe point (send it again to exit at once)\n", signalName(s))
			case <-in.done:
				return
			}
		}
	}()
	return in
}

// err is nil until a signal arrived, then an *interrupted error naming it.
func (in *interrupts) err() error {
	if s := in.signal(); s != nil {
		return &interrupted{sig: s}
	}
	return nil
}

// signal is the first signal that arrived (nil: none yet).
func (in *interrupts) signal() os.Signal {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.got
}

// release stops catching: later signals have their default effect again. A nil
// *interrupts (a command that does not catch) is valid everywhere and never stops.
func (in *interrupts) release() {
	if in == nil {
		return
	}
	signal.Stop(in.ch)
	close(in.done)
}

// interrupted is the error of work stopped by a signal. main exits with 128 + the
// signal's number, as a shell reports a process killed by it.
type interrupted struct {
	sig  os.Signal
	note string // what was kept, e.g. "checkpoint: runs/x/checkpoint.safetensors"
}

func (e *interrupted) Error() string {
	if e.note != "" {
		return fmt.Sprintf("interrupted by %s; %s", signalName(e.sig), e.note)
	}
	return fmt.Sprintf("interrupted by %s", signalName(e.sig))
}

// exitCode is the process's exit status for err: 128 + signal for an interruption, else 1.
func exitCode(err error) int {
	var in *interrupted
	if errors.As(err, &in) {
		return signalExitCode(in.sig)
	}
	return 1
}

// signalName is the conventional name of a terminating signal (Go's are "terminated" …).
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT (Ctrl-C)"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

func signalExitCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}
