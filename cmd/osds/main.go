// Command osds trains diffusion samplers in the noise space of generative priors on any
// WebGPU adapter. Run `osds help` for the subcommands.
package main

import (
	"fmt"
	"os"
	"runtime"
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(args []string) error
}

func commands() []command {
	return []command{
		{"info", "list the WebGPU runtime, adapters, limits and features, and run a self-test", runInfo},
		{"train", "train a diffusion sampler on a target density", runTrain},
		{"eval", "evaluate a trained sampler: log Ẑ, log Ẑ^RW, W2", runEval},
		{"view", "sample a trained sampler interactively in a window", runView},
		{"sample", "draw from a trained posterior sampler and write f(z) as a PNG grid", runSample},
		{"compare", "compare osds samplers with IS, MALA and HMC at equal f evaluations", runCompare},
		{"protocol", "run the published synthetic benchmark table (resumable) and print it beside the paper's", runProtocol},
		{"prior", "train, sample, evaluate and list generative priors and classifiers", runPrior},
		{"bench", "measure the WGSL kernels against same-run ceilings and CPU references", runBench},
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
			if err := c.run(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "osds %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "osds: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}
