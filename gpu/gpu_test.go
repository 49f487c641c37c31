package gpu

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// testDevice opens the default adapter. There is no skip: a machine without an adapter
// fails with the message that says how to get one.
func testDevice(t testing.TB) *Device {
	t.Helper()
	d, err := NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`; on machines without a GPU it installs Mesa lavapipe): %v", err)
	}
	t.Cleanup(d.Release)
	return d
}

func randomFloats(rng *rand.Rand, n int) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64() * 3)
	}
	return xs
}

func TestBufferRoundTripOddSizes(t *testing.T) {
	d := testDevice(t)
	rng := rand.New(rand.NewPCG(1, uint64(os.Getpid())))
	for _, n := range []int{1, 3, 7, 129, 1023, 65537, 1<<20 + 13} {
		b, err := d.CreateBuffer("roundtrip", uint64(4*n), StorageUsage)
		if err != nil {
			t.Fatal(err)
		}
		want := randomFloats(rng, n)
		if err := d.Queue().WriteFloat32(b, 0, want); err != nil {
			t.Fatal(err)
		}
		got, err := b.ReadFloat32(0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: element %d: got %v, want %v", n, i, got[i], want[i])
			}
		}
		// A partial read at an odd element offset returns the same values.
		if n > 5 {
			part, err := b.ReadFloat32(3, n-5)
			if err != nil {
				t.Fatal(err)
			}
			for i := range part {
				if part[i] != want[3+i] {
					t.Fatalf("n=%d: partial read element %d: got %v, want %v", n, i, part[i], want[3+i])
				}
			}
		}
		b.Release()
	}
}

func TestBufferByteSizesNotMultipleOfFour(t *testing.T) {
	d := testDevice(t)
	b, err := d.CreateBuffer("bytes", 10, StorageUsage)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	if b.Size() != 10 {
		t.Fatalf("Size() = %d, want 10", b.Size())
	}
	if err := d.Queue().WriteBuffer(b, 0, []byte{1, 2, 3}); err == nil || !strings.Contains(err.Error(), "multiples of 4") {
		t.Fatalf("3-byte write: got %v, want an error about multiples of 4", err)
	}
	if err := d.Queue().WriteBuffer(b, 8, make([]byte, 8)); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Fatalf("write past the end: got %v, want an overflow error", err)
	}
}

const scaleAddWGSL = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
override alpha: f32 = 1.0;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
	let i = id.x;
	if (i < arrayLength(&y)) {
		y[i] = alpha * x[i] + y[i];
	}
}
`

func TestDispatchMatchesReference(t *testing.T) {
	d := testDevice(t)
	rng := rand.New(rand.NewPCG(2, uint64(os.Getpid())))
	const n = 1000003
	alpha := 0.75
	m, err := d.CreateShaderModule("axpy_test.wgsl", scaleAddWGSL)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	p, err := d.CreateComputePipeline("axpy", m, PipelineOptions{Constants: map[string]float64{"alpha": alpha}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	xs, ys := randomFloats(rng, n), randomFloats(rng, n)
	x, _ := d.CreateBuffer("x", 4*n, StorageUsage)
	y, _ := d.CreateBuffer("y", 4*n, StorageUsage)
	defer x.Release()
	defer y.Release()
	if err := d.Queue().WriteFloat32(x, 0, xs); err != nil {
		t.Fatal(err)
	}
	if err := d.Queue().WriteFloat32(y, 0, ys); err != nil {
		t.Fatal(err)
	}
	layout, err := p.BindGroupLayout(0)
	if err != nil {
		t.Fatal(err)
	}
	defer layout.Release()
	g, err := d.CreateBindGroup("axpy", layout, []BindEntry{{Binding: 0, Buffer: x}, {Binding: 1, Buffer: y}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	enc, _ := d.CreateCommandEncoder("axpy")
	pass := enc.BeginComputePass(nil)
	pass.SetPipeline(p)
	pass.SetBindGroup(0, g)
	pass.Dispatch((n+63)/64, 1, 1)
	pass.End()
	cb, err := enc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Queue().Submit(cb); err != nil {
		t.Fatal(err)
	}
	got, err := y.ReadFloat32(0, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		want := alpha*float64(xs[i]) + float64(ys[i])
		if diff := math.Abs(float64(got[i]) - want); diff > 1e-6*(1+math.Abs(want)) {
			t.Fatalf("element %d: got %v, want %v", i, got[i], want)
		}
	}
}

func TestBadWGSLReportsLine(t *testing.T) {
	d := testDevice(t)
	src := "@compute @workgroup_size(1)\nfn main() {\n  let a = 1.0;\n  let b: u32 = a + ;\n}\n"
	_, err := d.CreateShaderModule("broken.wgsl", src)
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v (%T), want a *CompileError", err, err)
	}
	if !strings.Contains(err.Error(), "broken.wgsl:4:") {
		t.Fatalf("error does not point at broken.wgsl line 4:\n%v", err)
	}
	if len(ce.Messages) == 0 || ce.Messages[0].Line != 4 {
		t.Fatalf("messages %+v, want the first on line 4", ce.Messages)
	}
	// The device stays usable after a compile error.
	if _, err := d.CreateBuffer("after", 16, StorageUsage); err != nil {
		t.Fatalf("device unusable after a compile error: %v", err)
	}
}

func TestBindGroupMisuseIsAnError(t *testing.T) {
	d := testDevice(t)
	m, err := d.CreateShaderModule("axpy_test.wgsl", scaleAddWGSL)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	p, err := d.CreateComputePipeline("axpy", m, PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	layout, _ := p.BindGroupLayout(0)
	defer layout.Release()
	x, _ := d.CreateBuffer("x", 64, StorageUsage)
	defer x.Release()
	uni, _ := d.CreateBuffer("uniform-only", 64, UsageUniform|UsageCopyDst)
	defer uni.Release()

	// A missing binding.
	if _, err := d.CreateBindGroup("missing", layout, []BindEntry{{Binding: 0, Buffer: x}}); err == nil {
		t.Fatal("bind group with a missing binding: no error")
	}
	// A buffer without storage usage in a storage slot.
	if _, err := d.CreateBindGroup("usage", layout, []BindEntry{{Binding: 0, Buffer: x}, {Binding: 1, Buffer: uni}}); err == nil {
		t.Fatal("bind group with a uniform buffer in a storage slot: no error")
	}
	// A range past the end of the buffer.
	if _, err := d.CreateBindGroup("range", layout, []BindEntry{{Binding: 0, Buffer: x}, {Binding: 1, Buffer: x, Offset: 256, Size: 64}}); err == nil {
		t.Fatal("bind group range past the end: no error")
	}
	// A dispatch without a bind group fails at Finish, not in a crash.
	enc, _ := d.CreateCommandEncoder("nobind")
	pass := enc.BeginComputePass(nil)
	pass.SetPipeline(p)
	pass.Dispatch(1, 1, 1)
	pass.End()
	if _, err := enc.Finish(); err == nil {
		t.Fatal("dispatch without its bind group: Finish returned no error")
	}
	// A copy out of range fails at Finish too.
	enc, _ = d.CreateCommandEncoder("badcopy")
	enc.CopyBufferToBuffer(x, 0, x, 32, 64)
	if _, err := enc.Finish(); err == nil {
		t.Fatal("out-of-range copy: Finish returned no error")
	}
	// The device still works afterwards.
	if _, err := x.ReadFloat32(0, 4); err != nil {
		t.Fatalf("device unusable after misuse: %v", err)
	}
}

func TestCreateReleaseCyclesDoNotLeak(t *testing.T) {
	d := testDevice(t)
	m, err := d.CreateShaderModule("axpy_test.wgsl", scaleAddWGSL)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	p, err := d.CreateComputePipeline("axpy", m, PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	layout, _ := p.BindGroupLayout(0)
	defer layout.Release()
	before, _ := LiveObjects()
	cycles := 0
	cycle := func() {
		x, err := d.CreateBuffer("x", 4096, StorageUsage)
		if err != nil {
			t.Fatal(err)
		}
		y, err := d.CreateBuffer("y", 4096, StorageUsage)
		if err != nil {
			t.Fatal(err)
		}
		g, err := d.CreateBindGroup("g", layout, []BindEntry{{Binding: 0, Buffer: x}, {Binding: 1, Buffer: y}})
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := d.CreateCommandEncoder("cycle")
		pass := enc.BeginComputePass(nil)
		pass.SetPipeline(p)
		pass.SetBindGroup(0, g)
		pass.Dispatch(1, 1, 1)
		pass.End()
		cb, err := enc.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Queue().Submit(cb); err != nil {
			t.Fatal(err)
		}
		g.Release()
		x.Release()
		y.Release()
		// Dawn frees released memory once the queue passes the submission that last used
		// it, so a real loop waits now and then, as the trainer's readback does.
		if cycles++; cycles%100 == 0 {
			if err := d.Queue().Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Warm up allocator pools, then measure resident memory over 10,000 cycles.
	for i := 0; i < 500; i++ {
		cycle()
	}
	if err := d.Queue().Wait(); err != nil {
		t.Fatal(err)
	}
	rss0 := residentBytes(t)
	for i := 0; i < 10000; i++ {
		cycle()
	}
	if err := d.Queue().Wait(); err != nil {
		t.Fatal(err)
	}
	rss1 := residentBytes(t)
	after, kinds := LiveObjects()
	if after != before {
		t.Fatalf("live objects %d before, %d after 10,000 cycles (%v)", before, after, kinds)
	}
	// 10,000 cycles allocate 80 MB of buffers; a leak of even one buffer per cycle would
	// show as tens of MB. Allow 16 MB of allocator noise.
	if grow := rss1 - rss0; grow > 16<<20 {
		t.Fatalf("resident memory grew by %d MB over 10,000 create/release cycles", grow>>20)
	}
}

func residentBytes(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatalf("reading resident memory: %v", err)
	}
	var size, rss int64
	if _, err := fmtSscan(string(raw), &size, &rss); err != nil {
		t.Fatal(err)
	}
	return rss * int64(os.Getpagesize())
}

func TestAdapterInfoAndLimits(t *testing.T) {
	d := testDevice(t)
	info := d.AdapterInfo()
	if info.Device == "" || info.Backend == BackendUndefined {
		t.Fatalf("incomplete adapter info: %+v", info)
	}
	l := d.Limits()
	// The device must carry the adapter's limits, not the spec minimums (256 MiB / 16 KiB).
	in := d.Instance()
	a, err := in.RequestAdapter(AdapterOptions{Backend: info.Backend})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	al, err := a.Limits()
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxBufferSize != al.MaxBufferSize || l.MaxComputeWorkgroupStorageSize != al.MaxComputeWorkgroupStorageSize ||
		l.MaxStorageBufferBindingSize != al.MaxStorageBufferBindingSize {
		t.Fatalf("device limits %+v differ from adapter limits %+v", l, al)
	}
}

func TestTimestamps(t *testing.T) {
	d := testDevice(t)
	if !d.HasFeature(FeatureTimestampQuery) {
		t.Logf("adapter %s has no timestamp-query; timings fall back to host clocks", d.AdapterInfo().Device)
		if _, err := d.CreateTimestampQuerySet("ts", 2); err == nil {
			t.Fatal("CreateTimestampQuerySet without the feature: no error")
		}
		return
	}
	q, err := d.CreateTimestampQuerySet("ts", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Release()
	res, _ := d.CreateBuffer("ts", 16, UsageQueryResolve|UsageCopySrc)
	defer res.Release()
	m, _ := d.CreateShaderModule("axpy_test.wgsl", scaleAddWGSL)
	defer m.Release()
	p, _ := d.CreateComputePipeline("axpy", m, PipelineOptions{})
	defer p.Release()
	layout, _ := p.BindGroupLayout(0)
	defer layout.Release()
	x, _ := d.CreateBuffer("x", 4<<20, StorageUsage)
	defer x.Release()
	y, _ := d.CreateBuffer("y", 4<<20, StorageUsage)
	defer y.Release()
	g, _ := d.CreateBindGroup("g", layout, []BindEntry{{Binding: 0, Buffer: x}, {Binding: 1, Buffer: y}})
	defer g.Release()
	enc, _ := d.CreateCommandEncoder("ts")
	pass := enc.BeginComputePass(&PassTimestamps{QuerySet: q, Begin: 0, End: 1})
	pass.SetPipeline(p)
	pass.SetBindGroup(0, g)
	pass.Dispatch((1<<20)/64, 1, 1)
	pass.End()
	enc.ResolveQuerySet(q, 0, 2, res, 0)
	cb, err := enc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Queue().Submit(cb); err != nil {
		t.Fatal(err)
	}
	raw, err := res.ReadUint32(0, 4)
	if err != nil {
		t.Fatal(err)
	}
	t0 := uint64(raw[0]) | uint64(raw[1])<<32
	t1 := uint64(raw[2]) | uint64(raw[3])<<32
	if t1 < t0 {
		t.Fatalf("end timestamp %d before begin %d", t1, t0)
	}
}

func TestUncapturedErrorIsReturnedByNextCall(t *testing.T) {
	d := testDevice(t)
	// A buffer without CopyDst cannot be written by the queue; the write itself is not
	// inside an error scope, so the runtime reports it as an uncaptured error.
	b, err := d.CreateBuffer("no-copy-dst", 64, UsageStorage)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	if err := d.Queue().WriteBuffer(b, 0, make([]byte, 16)); err != nil {
		t.Fatalf("the write is asynchronous; got an error at once: %v", err)
	}
	_, err = d.CreateBuffer("next", 16, StorageUsage)
	if err == nil || !strings.Contains(err.Error(), "uncaptured") {
		t.Fatalf("next call: got %v, want the uncaptured validation error", err)
	}
	// Reported once: the call after that succeeds.
	next, err := d.CreateBuffer("after", 16, StorageUsage)
	if err != nil {
		t.Fatalf("error reported twice: %v", err)
	}
	next.Release()
}

func TestDeviceLossIsAnErrorNotAHang(t *testing.T) {
	d := testDevice(t)
	b, err := d.CreateBuffer("x", 64, StorageUsage)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	d.Destroy()
	if _, err := d.CreateBuffer("after loss", 16, StorageUsage); !errors.Is(err, ErrDeviceLost) {
		t.Fatalf("CreateBuffer after loss: %v, want ErrDeviceLost", err)
	}
	if err := d.Queue().Wait(); !errors.Is(err, ErrDeviceLost) {
		t.Fatalf("Queue.Wait after loss: %v, want ErrDeviceLost", err)
	}
	if _, err := b.ReadFloat32(0, 4); !errors.Is(err, ErrDeviceLost) {
		t.Fatalf("reading after loss: %v, want ErrDeviceLost", err)
	}
}

// TestBufferSlice writes and reads through a view at an aligned offset and checks that
// only its range changes, that bad views are refused with the reason, and that releasing
// a view leaves the buffer usable.
func TestBufferSlice(t *testing.T) {
	d := testDevice(t)
	rng := rand.New(rand.NewPCG(2, uint64(os.Getpid())))
	align := int(d.Limits().MinStorageBufferOffsetAlignment)
	n := 3*align/4 + 37 // floats in the whole buffer: the view starts at one alignment
	b, err := d.CreateBuffer("whole", uint64(4*n), StorageUsage)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	whole := randomFloats(rng, n)
	if err := d.Queue().WriteFloat32(b, 0, whole); err != nil {
		t.Fatal(err)
	}
	first, count := align/4, 29 // the view: floats first..first+count-1
	v, err := b.Slice("view", uint64(align), uint64(4*count))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Shares(b) || !b.Shares(v) {
		t.Fatal("a view and its buffer do not report sharing")
	}
	other, err := d.CreateBuffer("other", 16, StorageUsage)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	if v.Shares(other) || b.Shares(other) {
		t.Fatal("distinct buffers report sharing")
	}
	got, err := v.ReadFloat32(0, count)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != whole[first+i] {
			t.Fatalf("view element %d = %v, want whole[%d] = %v", i, got[i], first+i, whole[first+i])
		}
	}
	patch := randomFloats(rng, 5)
	if err := d.Queue().WriteFloat32(v, 3, patch); err != nil {
		t.Fatal(err)
	}
	copy(whole[first+3:], patch)
	v.Release()
	after, err := b.ReadFloat32(0, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range after {
		if after[i] != whole[i] {
			t.Fatalf("after writing through the view: whole[%d] = %v, want %v", i, after[i], whole[i])
		}
	}
	for _, bad := range []struct {
		off, size uint64
		want      string
	}{
		{4, 16, "minStorageBufferOffsetAlignment"},
		{uint64(align), 6, "multiple of 4"},
		{uint64(align), uint64(4 * n), "outside"},
	} {
		if align == 4 && bad.off == 4 {
			continue // every offset that is a multiple of 4 is aligned on this adapter
		}
		if _, err := b.Slice("bad", bad.off, bad.size); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("Slice(%d, %d): error %v, want one mentioning %q", bad.off, bad.size, err, bad.want)
		}
	}
}
