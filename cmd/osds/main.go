// Command osds trains diffusion samplers in the noise space of generative priors on any
// WebGPU adapter. Run `osds help` for the subcommands.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/pflag"
)

// sigs catches the terminating signals while a command runs (interrupt.go): long work
// checks sigs.err() at its safe points.
var sigs *interrupts

// command is one subcommand: it parses its own flags from args. A stoppable command
// checks sigs at its safe points (a terminating signal asks it to stop there, keeping
// its work); the others have nothing to keep and end at once, the default.
type command struct {
	name      string
	summary   string
	run       func(args []string) error
	stoppable bool
}

func commands() []command {
	return []command{
		{"info", "list the WebGPU runtime, adapters, limits and features, and run a self-test", runInfo, false},
		{"train", "train a diffusion sampler on a target density", runTrain, true},
		{"eval", "evaluate a trained sampler: log Ẑ, log Ẑ^RW, W2", runEval, true},
		{"view", "sample a trained sampler interactively in a window", runView, true},
		{"sample", "draw from a trained posterior sampler and write f(z) as a PNG grid", runSample, true},
		{"compare", "compare osds samplers with IS, MALA and HMC at equal f evaluations", runCompare, true},
		{"protocol", "run the published synthetic benchmark table (resumable) and print it beside the paper's", runProtocol, true},
		{"prior", "train, sample, evaluate and list generative priors and classifiers", runPrior, false},
		{"bench", "measure the WGSL kernels against same-run ceilings and CPU references", runBench, false},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: osds <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun `osds <command> --help` for a command's flags.\n")
}

// GLFW (the live view) must run on the process's main thread; main's goroutine stays
// there from the start.
func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	for _, c := range commands() {
		if c.name == os.Args[1] {
			if c.stoppable {
				sigs = catchInterrupts()
			}
			err := c.run(os.Args[2:])
			if err == nil {
				err = sigs.err() // a signal during work that had no safe point to stop at
			}
			sigs.release()
			switch {
			case errors.Is(err, pflag.ErrHelp):
				return // --help: pflag printed the flags; asking for help is not an error
			case err != nil:
				fmt.Fprintf(os.Stderr, "osds %s: %v\n", c.name, err)
				os.Exit(exitCode(err))
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "osds: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}
