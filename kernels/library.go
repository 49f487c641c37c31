package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"osds"
	"osds/gpu"
)

// Library compiles and caches the kernels' pipelines for one device.
type Library struct {
	dev       *gpu.Device
	pipelines map[string]*pipeline
	// unused is bound where a kernel declares a writable binding that an op's options
	// leave unused (matmul's aux): a writable binding may not alias the op's inputs.
	unused *gpu.Buffer
}

type pipeline struct {
	p      *gpu.ComputePipeline
	layout *gpu.BindGroupLayout
}

// NewLibrary returns an empty library for d; pipelines compile on first use.
func NewLibrary(d *gpu.Device) *Library {
	return &Library{dev: d, pipelines: map[string]*pipeline{}}
}

// Device is the library's device.
func (l *Library) Device() *gpu.Device { return l.dev }

// Release frees every cached pipeline.
func (l *Library) Release() {
	for _, p := range l.pipelines {
		p.layout.Release()
		p.p.Release()
	}
	l.pipelines = map[string]*pipeline{}
	if l.unused != nil {
		l.unused.Release()
		l.unused = nil
	}
}

// overrideBool is the value of a WGSL bool override (pipeline constants are numbers).
func overrideBool(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// unusedBuffer returns the library's placeholder for bindings an op does not use.
func (l *Library) unusedBuffer() (*gpu.Buffer, error) {
	if l.unused == nil {
		b, err := l.dev.CreateBuffer("unused binding", 16, gpu.StorageUsage)
		if err != nil {
			return nil, err
		}
		l.unused = b
	}
	return l.unused, nil
}

// pipeline returns the compiled entry point of shaders/<file> for the given overrides.
func (l *Library) pipeline(file, entry string, consts map[string]float64) (*pipeline, error) {
	keys := make([]string, 0, len(consts))
	for k := range consts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s:%s", file, entry)
	for _, k := range keys {
		fmt.Fprintf(&sb, ":%s=%v", k, consts[k])
	}
	key := sb.String()
	if p, ok := l.pipelines[key]; ok {
		return p, nil
	}
	src, err := shaderSource(file)
	if err != nil {
		return nil, err
	}
	m, err := l.dev.CreateShaderModule(file, src)
	if err != nil {
		return nil, err
	}
	defer m.Release()
	cp, err := l.dev.CreateComputePipeline(key, m, gpu.PipelineOptions{Entry: entry, Constants: consts})
	if err != nil {
		return nil, err
	}
	layout, err := cp.BindGroupLayout(0)
	if err != nil {
		cp.Release()
		return nil, err
	}
	p := &pipeline{p: cp, layout: layout}
	l.pipelines[key] = p
	return p, nil
}

// shaderSource returns shaders/<file> with the files it names in `//!include NAME`
// lines appended at the end: WGSL declarations are order-independent, and appending keeps
// the line numbers of compiler messages true for the including file.
func shaderSource(file string) (string, error) {
	src, err := osds.Shader(file)
	if err != nil {
		return "", err
	}
	var extra []string
	for _, line := range strings.Split(src, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "//!include "); ok {
			inc, err := osds.Shader(strings.TrimSpace(name))
			if err != nil {
				return "", fmt.Errorf("kernels: %s includes %w", file, err)
			}
			extra = append(extra, "// ---- included from "+strings.TrimSpace(name)+" ----\n"+inc)
		}
	}
	if len(extra) == 0 {
		return src, nil
	}
	return src + "\n" + strings.Join(extra, "\n"), nil
}

// Op is one recorded-ready dispatch: pipeline, bound buffers and grid. Build ops once
// and record them every iteration; Release frees the bind group and parameter buffer.
type Op struct {
	Name   string
	pipe   *pipeline
	group  *gpu.BindGroup
	params *gpu.Buffer
	owned  []*gpu.Buffer // scratch buffers the op allocated for itself
	grid   [3]uint32
}

// Params packs a kernel's uniform parameters: u32, i32 and f32 fields in declaration
// order, 4 bytes each, padded to 16 bytes as WGSL uniform structs require.
type Params []any

func (ps Params) bytes() ([]byte, error) {
	n := (len(ps)*4 + 15) &^ 15
	if n == 0 {
		n = 16
	}
	out := make([]byte, n)
	for i, p := range ps {
		var u uint32
		switch v := p.(type) {
		case uint32:
			u = v
		case int:
			if v < 0 || v > math.MaxUint32 {
				return nil, fmt.Errorf("kernels: parameter %d = %d does not fit in u32", i, v)
			}
			u = uint32(v)
		case int32:
			u = uint32(v)
		case float32:
			u = math.Float32bits(v)
		case float64:
			u = math.Float32bits(float32(v))
		default:
			return nil, fmt.Errorf("kernels: parameter %d has unsupported type %T", i, p)
		}
		binary.LittleEndian.PutUint32(out[4*i:], u)
	}
	return out, nil
}

// opSpec describes an Op to build: shader file and entry, overrides, the buffers for
// bindings 0..n-1 in order, the uniform parameters (bound after the buffers, when
// non-nil) and the workgroup grid.
type opSpec struct {
	name    string
	file    string
	entry   string
	consts  map[string]float64
	buffers []*gpu.Buffer
	params  Params
	grid    [3]uint32
}

func (l *Library) build(s opSpec) (*Op, error) {
	p, err := l.pipeline(s.file, s.entry, s.consts)
	if err != nil {
		return nil, err
	}
	for i, g := range s.grid {
		if g == 0 || g > l.dev.Limits().MaxComputeWorkgroupsPerDimension {
			return nil, fmt.Errorf("kernels: %s: grid dimension %d is %d (want 1..%d)", s.name, i, g, l.dev.Limits().MaxComputeWorkgroupsPerDimension)
		}
	}
	entries := make([]gpu.BindEntry, 0, len(s.buffers)+1)
	for i, b := range s.buffers {
		entries = append(entries, gpu.BindEntry{Binding: uint32(i), Buffer: b})
	}
	op := &Op{Name: s.name, pipe: p, grid: s.grid}
	if s.params != nil {
		raw, err := s.params.bytes()
		if err != nil {
			return nil, fmt.Errorf("kernels: %s: %w", s.name, err)
		}
		op.params, err = l.dev.CreateBuffer(s.name+" params", uint64(len(raw)), gpu.UsageUniform|gpu.UsageCopyDst)
		if err != nil {
			return nil, err
		}
		if err := l.dev.Queue().WriteBuffer(op.params, 0, raw); err != nil {
			op.params.Release()
			return nil, err
		}
		entries = append(entries, gpu.BindEntry{Binding: uint32(len(s.buffers)), Buffer: op.params})
	}
	op.group, err = l.dev.CreateBindGroup(s.name, p.layout, entries)
	if err != nil {
		op.params.Release()
		return nil, err
	}
	return op, nil
}

// SetParams rewrites the op's uniform parameters (same layout as when built), e.g. a
// step counter or a learning rate that changes every iteration.
func (op *Op) SetParams(d *gpu.Device, ps Params) error {
	if op.params == nil {
		return fmt.Errorf("kernels: %s has no parameters", op.Name)
	}
	raw, err := ps.bytes()
	if err != nil {
		return err
	}
	if uint64(len(raw)) != op.params.Size() {
		return fmt.Errorf("kernels: %s: %d parameter bytes, built with %d", op.Name, len(raw), op.params.Size())
	}
	return d.Queue().WriteBuffer(op.params, 0, raw)
}

// Release frees the op's bind group and parameters (the pipeline stays cached).
func (op *Op) Release() {
	if op == nil {
		return
	}
	op.group.Release()
	op.params.Release()
	for _, b := range op.owned {
		b.Release()
	}
}

// Grid1D returns a grid of workgroups covering n invocations at wg per workgroup,
// folded into two dimensions when it exceeds maxPerDim (65535 on every adapter).
func Grid1D(n, wg int) [3]uint32 {
	groups := (n + wg - 1) / wg
	if groups < 1 {
		groups = 1
	}
	const maxPerDim = 65535
	if groups <= maxPerDim {
		return [3]uint32{uint32(groups), 1, 1}
	}
	y := (groups + maxPerDim - 1) / maxPerDim
	x := (groups + y - 1) / y
	return [3]uint32{uint32(x), uint32(y), 1}
}

// Recorder records ops into one compute pass of one command buffer.
type Recorder struct {
	dev        *gpu.Device
	enc        *gpu.CommandEncoder
	pass       *gpu.ComputePass
	dispatches int
}

// NewRecorder starts a command buffer with one open compute pass.
func (l *Library) NewRecorder(label string) (*Recorder, error) {
	enc, err := l.dev.CreateCommandEncoder(label)
	if err != nil {
		return nil, err
	}
	return &Recorder{dev: l.dev, enc: enc, pass: enc.BeginComputePass(nil)}, nil
}

// Record appends op's dispatch. Dispatches in one pass see each other's writes in order.
func (r *Recorder) Record(ops ...*Op) {
	if r.pass == nil {
		r.pass = r.enc.BeginComputePass(nil)
	}
	for _, op := range ops {
		r.pass.SetPipeline(op.pipe.p)
		r.pass.SetBindGroup(0, op.group)
		r.pass.Dispatch(op.grid[0], op.grid[1], op.grid[2])
	}
	r.dispatches += len(ops)
}

// Dispatches is the number of dispatches recorded so far.
func (r *Recorder) Dispatches() int { return r.dispatches }

// Encoder ends the compute pass and returns the encoder for copies; a new pass opens
// on the next Record.
func (r *Recorder) Encoder() *gpu.CommandEncoder {
	if r.pass != nil {
		r.pass.End()
		r.pass = nil
	}
	return r.enc
}

// Submit finishes the command buffer and submits it.
func (r *Recorder) Submit() error {
	if r.pass != nil {
		r.pass.End()
		r.pass = nil
	}
	cb, err := r.enc.Finish()
	if err != nil {
		return err
	}
	return r.dev.Queue().Submit(cb)
}

// Run records ops into one command buffer and submits it.
func (l *Library) Run(ops ...*Op) error {
	r, err := l.NewRecorder("run")
	if err != nil {
		return err
	}
	r.Record(ops...)
	return r.Submit()
}
