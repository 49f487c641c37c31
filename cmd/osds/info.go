package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osds"
	"osds/gpu"
)

func runInfo(args []string) error {
	fs := pflag.NewFlagSet("info", pflag.ContinueOnError)
	skipTest := fs.Bool("no-selftest", false, "only list adapters; do not run the self-test")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (info takes only flags)", fs.Args())
	}
	in, err := gpu.NewInstance()
	if err != nil {
		return err
	}
	defer in.Release()
	path, _ := gpu.LibraryPath()
	fmt.Printf("runtime library: %s\n", path)
	adapters, err := in.Adapters()
	if err != nil {
		return err
	}
	for i, a := range adapters {
		info, err := a.Info()
		if err != nil {
			return err
		}
		l, err := a.Limits()
		if err != nil {
			return err
		}
		fmt.Printf("\nadapter %d: %s\n", i, info.Device)
		fmt.Printf("  vendor:   %s (0x%04x)  architecture: %s\n", info.Vendor, info.VendorID, info.Architecture)
		fmt.Printf("  backend:  %s\n  type:     %s\n  driver:   %s\n", info.Backend, info.Type, info.Description)
		if info.SubgroupMaxSize > 0 {
			fmt.Printf("  subgroup size: %d..%d\n", info.SubgroupMinSize, info.SubgroupMaxSize)
		}
		fmt.Printf("  limits:   maxBufferSize %s, maxStorageBufferBindingSize %s, maxStorageBuffersPerShaderStage %d\n",
			bytesHuman(l.MaxBufferSize), bytesHuman(l.MaxStorageBufferBindingSize), l.MaxStorageBuffersPerShaderStage)
		fmt.Printf("            maxComputeWorkgroupStorageSize %s, maxComputeInvocationsPerWorkgroup %d, workgroup size ≤ %d×%d×%d, maxComputeWorkgroupsPerDimension %d\n",
			bytesHuman(uint64(l.MaxComputeWorkgroupStorageSize)), l.MaxComputeInvocationsPerWorkgroup,
			l.MaxComputeWorkgroupSizeX, l.MaxComputeWorkgroupSizeY, l.MaxComputeWorkgroupSizeZ, l.MaxComputeWorkgroupsPerDimension)
		var names []string
		for _, f := range a.Features() {
			names = append(names, f.String())
		}
		fmt.Printf("  features: %s\n", strings.Join(names, ", "))
	}
	var failed error
	if !*skipTest {
		for i, a := range adapters {
			info, _ := a.Info()
			dur, n, err := selfTest(a)
			if err != nil {
				fmt.Printf("\nself-test on adapter %d (%s): FAIL: %v\n", i, info.Device, err)
				if failed == nil {
					failed = fmt.Errorf("self-test failed on %s: %w", info.Device, err)
				}
				continue
			}
			fmt.Printf("\nself-test on adapter %d (%s): ok (%d elements checked against float64 in %v)\n", i, info.Device, n, dur.Round(time.Millisecond))
		}
	}
	for _, a := range adapters {
		a.Release()
	}
	return failed
}

// selfTest runs shaders/selftest.wgsl on random inputs of several awkward sizes for about
// a second and compares each output with the float64 value of the same polynomial.
func selfTest(a *gpu.Adapter) (time.Duration, int, error) {
	start := time.Now()
	d, err := a.RequestDevice()
	if err != nil {
		return 0, 0, err
	}
	defer d.Release()
	src, err := osds.Shader("selftest.wgsl")
	if err != nil {
		return 0, 0, err
	}
	m, err := d.CreateShaderModule("selftest.wgsl", src)
	if err != nil {
		return 0, 0, err
	}
	defer m.Release()
	const ca, cb, cc = 0.5, -1.25, 3.0
	p, err := d.CreateComputePipeline("selftest", m, gpu.PipelineOptions{Constants: map[string]float64{"a": ca, "b": cb, "c": cc}})
	if err != nil {
		return 0, 0, err
	}
	defer p.Release()
	layout, err := p.BindGroupLayout(0)
	if err != nil {
		return 0, 0, err
	}
	defer layout.Release()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	checked := 0
	for round := 0; time.Since(start) < time.Second || round < 3; round++ {
		n := 1 + rng.IntN(1<<20)
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(rng.NormFloat64() * 4)
		}
		x, err := d.CreateBuffer("selftest x", uint64(4*n), gpu.StorageUsage)
		if err != nil {
			return 0, 0, err
		}
		y, err := d.CreateBuffer("selftest y", uint64(4*n), gpu.StorageUsage)
		if err != nil {
			x.Release()
			return 0, 0, err
		}
		err = func() error {
			defer x.Release()
			defer y.Release()
			q := d.Queue()
			if err := q.WriteFloat32(x, 0, xs); err != nil {
				return err
			}
			// Poison the output so that a kernel that writes nothing cannot pass.
			poison := make([]float32, n)
			for i := range poison {
				poison[i] = float32(math.NaN())
			}
			if err := q.WriteFloat32(y, 0, poison); err != nil {
				return err
			}
			g, err := d.CreateBindGroup("selftest", layout, []gpu.BindEntry{{Binding: 0, Buffer: x}, {Binding: 1, Buffer: y}})
			if err != nil {
				return err
			}
			defer g.Release()
			enc, err := d.CreateCommandEncoder("selftest")
			if err != nil {
				return err
			}
			pass := enc.BeginComputePass(nil)
			pass.SetPipeline(p)
			pass.SetBindGroup(0, g)
			pass.Dispatch(uint32((n+255)/256), 1, 1)
			pass.End()
			cbuf, err := enc.Finish()
			if err != nil {
				return err
			}
			if err := q.Submit(cbuf); err != nil {
				return err
			}
			got, err := y.ReadFloat32(0, n)
			if err != nil {
				return err
			}
			for i, v := range xs {
				want := (ca*float64(v)+cb)*float64(v) + cc
				// Two f32 roundings of values up to ~|x|²: relative 1e-6 of the largest term.
				tol := 1e-6 * (math.Abs(ca*float64(v)*float64(v)) + math.Abs(cb*float64(v)) + math.Abs(cc))
				if !(math.Abs(float64(got[i])-want) <= tol) {
					return fmt.Errorf("n=%d element %d: x=%v gives %v, want %v", n, i, v, got[i], want)
				}
			}
			checked += n
			return nil
		}()
		if err != nil {
			return 0, 0, err
		}
	}
	return time.Since(start), checked, nil
}

func bytesHuman(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
