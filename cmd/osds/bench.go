package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osds/gpu"
	"osds/kernels"
)

// measurement is one line of `osds bench --json`.
type measurement struct {
	Kernel  string  `json:"kernel"`
	Shape   string  `json:"shape"`
	Seconds float64 `json:"seconds"` // per call
	Rate    float64 `json:"rate"`
	Unit    string  `json:"unit"` // "GFLOP/s" or "GB/s"
	// CeilingRatio is Rate divided by the same-run ceiling of its unit (FMA microkernel
	// for GFLOP/s, buffer copy for GB/s); ReferenceRatio is Rate over the CPU reference
	// measured in the same run (gonum for matmul), when there is one.
	CeilingRatio   float64 `json:"ceiling_ratio"`
	ReferenceRatio float64 `json:"reference_ratio,omitempty"`
	Reference      string  `json:"reference,omitempty"`
	Adapter        string  `json:"adapter"`
	Date           string  `json:"date"`
}

// benchCase measures one kernel at one size. It returns seconds per call and the work
// done per call (FLOPs or bytes, matching unit).
type benchCase struct {
	kernel, shape, unit string
	run                 func(l *kernels.Library) (seconds, work float64, err error)
	// reference, when set, measures a CPU implementation of the same work.
	reference     func() (seconds float64)
	referenceName string
}

func runBench(args []string) error {
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	jsonOut := fs.String("json", "", "also write one JSON object per measurement to this file ('-' for stdout)")
	filter := fs.String("kernel", "", "only run kernels whose name contains this substring")
	quick := fs.Bool("quick", false, "small sizes only (seconds instead of minutes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	d, err := gpu.NewDevice()
	if err != nil {
		return err
	}
	defer d.Release()
	l := kernels.NewLibrary(d)
	defer l.Release()
	info := d.AdapterInfo()
	adapter := fmt.Sprintf("%s (%s, %s)", info.Device, info.Backend, info.Type)
	date := time.Now().UTC().Format("2006-01-02")

	var sink io.Writer
	if *jsonOut == "-" {
		sink = os.Stdout
	} else if *jsonOut != "" {
		if err := os.MkdirAll(filepath.Dir(*jsonOut), 0o755); err != nil {
			return err
		}
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		sink = f
	}
	emit := func(m measurement) error {
		m.Adapter, m.Date = adapter, date
		line := fmt.Sprintf("%-28s %-18s %10.3f ms %9.2f %-8s %5.1f%% of ceiling", m.Kernel, m.Shape, m.Seconds*1e3, m.Rate, m.Unit, 100*m.CeilingRatio)
		if m.Reference != "" {
			line += fmt.Sprintf("  %.2f× %s", m.ReferenceRatio, m.Reference)
		}
		if *jsonOut != "-" {
			fmt.Println(line)
		}
		if sink != nil {
			b, _ := json.Marshal(m)
			if _, err := fmt.Fprintf(sink, "%s\n", b); err != nil {
				return err
			}
		}
		return nil
	}

	cases := benchCases(l, *quick)
	if *filter != "" && !strings.Contains("ceiling/fma ceiling/copy", *filter) {
		var names []string
		seen := map[string]bool{}
		matched := false
		for _, c := range cases {
			matched = matched || strings.Contains(c.kernel, *filter)
			if !seen[c.kernel] {
				seen[c.kernel] = true
				names = append(names, c.kernel)
			}
		}
		if !matched {
			return fmt.Errorf("--kernel %q matches no kernel; the kernels are: %s", *filter, strings.Join(names, ", "))
		}
	}
	// Ceilings first: every rate below is reported as a fraction of them.
	if *jsonOut != "-" {
		fmt.Printf("adapter: %s\n", adapter)
	}
	fma, err := kernels.MeasureFMACeiling(l, 1<<16, 512, 4)
	if err != nil {
		return err
	}
	const copyBytes = 64 << 20
	bw, err := kernels.MeasureCopyCeiling(l, copyBytes, 20)
	if err != nil {
		return err
	}
	ceil := map[string]float64{"GFLOP/s": fma, "GB/s": bw}
	if err := emit(measurement{Kernel: "ceiling/fma", Shape: "65536×512", Rate: fma, Unit: "GFLOP/s", CeilingRatio: 1,
		Seconds: float64(1<<16) * 512 * 64 / (fma * 1e9)}); err != nil {
		return err
	}
	if err := emit(measurement{Kernel: "ceiling/copy", Shape: "64 MiB", Rate: bw, Unit: "GB/s", CeilingRatio: 1,
		Seconds: 2 * copyBytes / (bw * 1e9)}); err != nil {
		return err
	}
	for _, c := range cases {
		if *filter != "" && !strings.Contains(c.kernel, *filter) {
			continue
		}
		sec, work, err := c.run(l)
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.kernel, c.shape, err)
		}
		rate := work / sec / 1e9
		m := measurement{Kernel: c.kernel, Shape: c.shape, Seconds: sec, Rate: rate, Unit: c.unit, CeilingRatio: rate / ceil[c.unit]}
		if c.reference != nil {
			refSec := c.reference()
			m.ReferenceRatio = refSec / sec
			m.Reference = c.referenceName
		}
		if err := emit(m); err != nil {
			return err
		}
	}
	return nil
}
