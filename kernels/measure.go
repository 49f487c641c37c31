package kernels

import (
	"encoding/binary"
	"fmt"
	"time"

	"osds/gpu"
)

// TimeOps records reps repetitions of ops into one compute pass, submits once and returns
// the seconds per repetition. With the timestamp-query feature the time is the GPU's
// (pass begin to pass end); otherwise it is the host's wall clock around submit and wait,
// which includes one submission's overhead. A warm-up run (compiling pipelines,
// faulting pages) precedes the measurement.
func TimeOps(l *Library, reps int, ops ...*Op) (float64, error) {
	if reps < 1 {
		return 0, fmt.Errorf("kernels: TimeOps: reps %d (want ≥ 1)", reps)
	}
	d := l.dev
	if err := l.Run(ops...); err != nil {
		return 0, err
	}
	if err := d.Queue().Wait(); err != nil {
		return 0, err
	}
	var qs *gpu.QuerySet
	var resolve *gpu.Buffer
	if d.HasFeature(gpu.FeatureTimestampQuery) {
		var err error
		if qs, err = d.CreateTimestampQuerySet("TimeOps", 2); err != nil {
			return 0, err
		}
		defer qs.Release()
		if resolve, err = d.CreateBuffer("TimeOps timestamps", 16, gpu.UsageQueryResolve|gpu.UsageCopySrc); err != nil {
			return 0, err
		}
		defer resolve.Release()
	}
	enc, err := d.CreateCommandEncoder("TimeOps")
	if err != nil {
		return 0, err
	}
	var ts *gpu.PassTimestamps
	if qs != nil {
		ts = &gpu.PassTimestamps{QuerySet: qs, Begin: 0, End: 1}
	}
	pass := enc.BeginComputePass(ts)
	r := &Recorder{dev: d, enc: enc, pass: pass}
	for i := 0; i < reps; i++ {
		r.Record(ops...)
	}
	r.Encoder()
	if qs != nil {
		enc.ResolveQuerySet(qs, 0, 2, resolve, 0)
	}
	cb, err := enc.Finish()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := d.Queue().Submit(cb); err != nil {
		return 0, err
	}
	if err := d.Queue().Wait(); err != nil {
		return 0, err
	}
	wall := time.Since(start).Seconds()
	if qs == nil {
		return wall / float64(reps), nil
	}
	raw, err := resolve.Read(0, 16)
	if err != nil {
		return 0, err
	}
	t0 := binary.LittleEndian.Uint64(raw[0:])
	t1 := binary.LittleEndian.Uint64(raw[8:])
	if t1 <= t0 {
		// Some adapters report zero-width timestamps; the host clock is the honest fallback.
		return wall / float64(reps), nil
	}
	return float64(t1-t0) * 1e-9 / float64(reps), nil
}

// MeasureFMACeiling runs the FMA-bound microkernel of shaders/ceiling.wgsl and returns
// the achieved GFLOP/s: the arithmetic ceiling real kernels are compared against.
func MeasureFMACeiling(l *Library, invocations, iters, reps int) (gflops float64, err error) {
	out, err := l.dev.CreateBuffer("ceiling out", uint64(16*invocations), gpu.StorageUsage)
	if err != nil {
		return 0, err
	}
	defer out.Release()
	op, err := l.build(opSpec{
		name: "fma ceiling", file: "ceiling.wgsl", entry: "main",
		buffers: []*gpu.Buffer{out},
		params:  Params{iters, invocations, float32(1)},
		grid:    Grid1D(invocations, 64),
	})
	if err != nil {
		return 0, err
	}
	defer op.Release()
	sec, err := TimeOps(l, reps, op)
	if err != nil {
		return 0, err
	}
	flops := float64(invocations) * float64(iters) * 8 * 4 * 2
	return flops / sec / 1e9, nil
}

// MeasureCopyCeiling returns the memory-bandwidth ceiling in GB/s, counted as bytes read
// plus bytes written: the faster of a device-to-device buffer copy of n bytes (host clock
// around one submission of reps copies) and a shader copy of the same bytes
// (shaders/ceiling_copy.wgsl, timed like every kernel by TimeOps). Both are measured because
// neither is always the faster: lavapipe's buffer copy is a memcpy, while on a GPU the
// host-clocked copies are dominated by the submission unless reps is large.
func MeasureCopyCeiling(l *Library, n uint64, reps int) (gbps float64, err error) {
	d := l.dev
	n = (n + 15) &^ 15
	src, err := d.CreateBuffer("copy src", n, gpu.StorageUsage)
	if err != nil {
		return 0, err
	}
	defer src.Release()
	dst, err := d.CreateBuffer("copy dst", n, gpu.StorageUsage)
	if err != nil {
		return 0, err
	}
	defer dst.Release()
	run := func(k int) (float64, error) {
		enc, err := d.CreateCommandEncoder("copy ceiling")
		if err != nil {
			return 0, err
		}
		for i := 0; i < k; i++ {
			enc.CopyBufferToBuffer(src, 0, dst, 0, n)
		}
		cb, err := enc.Finish()
		if err != nil {
			return 0, err
		}
		start := time.Now()
		if err := d.Queue().Submit(cb); err != nil {
			return 0, err
		}
		if err := d.Queue().Wait(); err != nil {
			return 0, err
		}
		return time.Since(start).Seconds(), nil
	}
	if _, err := run(1); err != nil {
		return 0, err
	}
	sec, err := run(reps)
	if err != nil {
		return 0, err
	}
	buffer := 2 * float64(n) * float64(reps) / sec / 1e9

	op, err := l.copyVec4(dst, src, int(n/16))
	if err != nil {
		return 0, err
	}
	defer op.Release()
	if sec, err = TimeOps(l, reps, op); err != nil {
		return 0, err
	}
	return max(buffer, 2*float64(n)/sec/1e9), nil
}

// copyVec4 returns the op of shaders/ceiling_copy.wgsl: the first vecs 16-byte elements of
// src copied to dst.
func (l *Library) copyVec4(dst, src *gpu.Buffer, vecs int) (*Op, error) {
	return l.build(opSpec{
		name: "copy ceiling", file: "ceiling_copy.wgsl", entry: "main",
		buffers: []*gpu.Buffer{src, dst},
		params:  Params{vecs},
		grid:    Grid1D(vecs, 256),
	})
}
