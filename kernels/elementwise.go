package kernels

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	"osds/gpu"
)

// Elementwise kernels (shaders/elementwise.wgsl): activations forward and backward, and
// add, mul, axpy, scale, clamp. Every launcher takes its outputs first, then its inputs,
// then scalars; all tensors of one op must have the same shape, and an output may not be
// an input tensor (WebGPU rejects a buffer bound both read-only and writable in one
// dispatch), except in Axpy where y is both by design.

// ewWorkgroup is the workgroup size of shaders/elementwise.wgsl on GPUs.
const ewWorkgroup = 256

// ewTarget is the kind of adapter the elementwise and reduction kernels plan grids for.
type ewTarget int

const (
	ewGPU ewTarget = iota // one work item per invocation, as many workgroups as that takes
	ewCPU                 // a few workgroups per core, each looping over a contiguous block
)

// ewForceTarget, when non-nil, overrides the adapter's kind. Tests set it so that the GPU
// plans (folded grids, 256-wide reduction workgroups) also run on lavapipe.
var ewForceTarget *ewTarget

// CPU grids. On lavapipe each workgroup is one task on the host's thread pool, costing
// a few µs to start: Add on 2^12 elements took 21 µs in 2 workgroups and 84 µs in 16,
// and on 2^20 elements 10 ms in 4096 workgroups of one element per invocation against
// 1.5–3 ms in 4–32 looping ones (2-core Xeon, lavapipe, BenchmarkAdd). So a CPU grid gives each
// workgroup at least ewCPUMinWork elements of work, and at most ewCPUGroupsPerThread
// workgroups to each worker thread (more than one evens out the load).
const (
	ewCPUMinWork         = 16384
	ewCPUGroupsPerThread = 8
)

func (l *Library) ewTarget() ewTarget {
	if ewForceTarget != nil {
		return *ewForceTarget
	}
	if l.dev.AdapterInfo().Type == gpu.AdapterCPU {
		return ewCPU
	}
	return ewGPU
}

// ewCPUThreads is the worker thread count of a CPU adapter: lavapipe's LP_NUM_THREADS
// when set, else the number of CPUs (lavapipe's default).
func ewCPUThreads() int {
	if n, err := strconv.Atoi(os.Getenv("LP_NUM_THREADS")); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// ewWorkgroupSize is the `wg` override of shaders/elementwise.wgsl: ewWorkgroup on GPUs;
// on CPU adapters the SIMD width, which lavapipe reports as its subgroup size (8 lanes
// of f32 at its default 256-bit vectors).
func (l *Library) ewWorkgroupSize() int {
	if l.ewTarget() != ewCPU {
		return ewWorkgroup
	}
	if s := int(l.dev.AdapterInfo().SubgroupMaxSize); s >= 4 && s <= ewWorkgroup {
		return s
	}
	return 8
}

// ewGrid returns the grid for items work items of cost elements each, in workgroups of
// wg invocations: Grid1D(items, wg) on GPUs (one item per invocation); on CPU adapters
// fewer workgroups, each looping over a contiguous block of items (see ewCPUMinWork).
// The kernels derive their share from the grid they get (num_workgroups), so any grid
// of at least one workgroup covers all items.
func (l *Library) ewGrid(items, cost, wg int) [3]uint32 {
	g := Grid1D(items, wg)
	if l.ewTarget() != ewCPU {
		return g
	}
	groups := min(int(g[0])*int(g[1]), ewCPUGroupsPerThread*ewCPUThreads(), (items*cost+ewCPUMinWork-1)/ewCPUMinWork)
	return [3]uint32{uint32(max(groups, 1)), 1, 1}
}

// ScaleParams is the uniform parameter block of Axpy and Scale ops: rebuild it to change
// α between runs, op.SetParams(l.Device(), ScaleParams(x.Len(), α)).
func ScaleParams(n int, alpha float32) Params { return Params{n, alpha, float32(0)} }

// ClampParams is the uniform parameter block of Clamp ops, for op.SetParams.
func ClampParams(n int, lo, hi float32) Params { return Params{n, lo, hi} }

// ewCountParams is the parameter block of the ops without scalars.
func ewCountParams(n int) Params { return Params{n, float32(0), float32(0)} }

// Activate returns the op y = f(x), applied elementwise, for the activation a.
func (l *Library) Activate(y, x *Tensor, a Activation) (*Op, error) {
	name := "activate " + a.String()
	if err := ewValidActivation("activate", a); err != nil {
		return nil, err
	}
	if err := l.ewCheck(name, []string{"y", "x"}, []*Tensor{y, x}, 1); err != nil {
		return nil, err
	}
	return l.ewBuild(name, "activate", map[string]float64{"act": float64(a)}, []*Tensor{x, y}, ewCountParams(x.Len()))
}

// ActivateBackward returns the op dx = dy ⊙ f'(x) for the activation a, where x is the
// pre-activation input of the forward pass (not its output).
func (l *Library) ActivateBackward(dx, dy, x *Tensor, a Activation) (*Op, error) {
	name := "activate backward " + a.String()
	if err := ewValidActivation("activate backward", a); err != nil {
		return nil, err
	}
	if err := l.ewCheck(name, []string{"dx", "dy", "x"}, []*Tensor{dx, dy, x}, 1); err != nil {
		return nil, err
	}
	return l.ewBuild(name, "activate_backward", map[string]float64{"act": float64(a)}, []*Tensor{dy, x, dx}, ewCountParams(x.Len()))
}

// Add returns the op z = x + y.
func (l *Library) Add(z, x, y *Tensor) (*Op, error) {
	if err := l.ewCheck("add", []string{"z", "x", "y"}, []*Tensor{z, x, y}, 1); err != nil {
		return nil, err
	}
	return l.ewBuild("add", "add", nil, []*Tensor{x, y, z}, ewCountParams(x.Len()))
}

// Mul returns the op z = x ⊙ y (elementwise product).
func (l *Library) Mul(z, x, y *Tensor) (*Op, error) {
	if err := l.ewCheck("mul", []string{"z", "x", "y"}, []*Tensor{z, x, y}, 1); err != nil {
		return nil, err
	}
	return l.ewBuild("mul", "mul", nil, []*Tensor{x, y, z}, ewCountParams(x.Len()))
}

// Axpy returns the op y = α·x + y, accumulating into y in place. Its parameters are
// ScaleParams(n, α).
func (l *Library) Axpy(y, x *Tensor, alpha float32) (*Op, error) {
	if err := l.ewCheck("axpy", []string{"y", "x"}, []*Tensor{y, x}, 1); err != nil {
		return nil, err
	}
	if err := ewFinite("axpy", "alpha", alpha); err != nil {
		return nil, err
	}
	return l.ewBuild("axpy", "axpy", nil, []*Tensor{x, y}, ScaleParams(x.Len(), alpha))
}

// Scale returns the op y = α·x. Its parameters are ScaleParams(n, α).
func (l *Library) Scale(y, x *Tensor, alpha float32) (*Op, error) {
	if err := l.ewCheck("scale", []string{"y", "x"}, []*Tensor{y, x}, 1); err != nil {
		return nil, err
	}
	if err := ewFinite("scale", "alpha", alpha); err != nil {
		return nil, err
	}
	return l.ewBuild("scale", "scale", nil, []*Tensor{x, y}, ScaleParams(x.Len(), alpha))
}

// Clamp returns the op y = min(max(x, lo), hi); lo ≤ hi. Its parameters are
// ClampParams(n, lo, hi). Infinite bounds are allowed (a one-sided clamp).
func (l *Library) Clamp(y, x *Tensor, lo, hi float32) (*Op, error) {
	if err := l.ewCheck("clamp", []string{"y", "x"}, []*Tensor{y, x}, 1); err != nil {
		return nil, err
	}
	if lo != lo || hi != hi || lo > hi {
		return nil, fmt.Errorf("kernels: clamp: bounds [%v, %v] are not an interval (want lo ≤ hi, no NaN)", lo, hi)
	}
	return l.ewBuild("clamp", "clamp_op", nil, []*Tensor{x, y}, ClampParams(x.Len(), lo, hi))
}

// ewCheck validates the tensors of an elementwise op: none nil, all of one shape, each
// within the device's storage binding size, and the first nOut (the outputs) distinct
// from every other tensor.
func (l *Library) ewCheck(op string, names []string, ts []*Tensor, nOut int) error {
	for i, t := range ts {
		if t == nil {
			return fmt.Errorf("kernels: %s: %s is nil", op, names[i])
		}
	}
	for i := 1; i < len(ts); i++ {
		if !sameShape(ts[0].Shape, ts[i].Shape) {
			return fmt.Errorf("kernels: %s: %s is %s but %s is %s (shapes must match)", op, names[0], ewShape(ts[0].Shape), names[i], ewShape(ts[i].Shape))
		}
	}
	for i := 0; i < nOut; i++ {
		for j := range ts {
			if j != i && ts[j].Buf.Shares(ts[i].Buf) {
				return fmt.Errorf("kernels: %s: output %s is the same tensor as %s (%q); write to a separate tensor", op, names[i], names[j], ts[i].Label())
			}
		}
	}
	return l.ewCheckBindable(op, names[0], ts[0])
}

// ewCheckBindable reports a tensor too large to bind as one storage buffer.
func (l *Library) ewCheckBindable(op, name string, t *Tensor) error {
	limit := l.dev.Limits().MaxStorageBufferBindingSize
	if bytes := uint64(4 * t.Len()); bytes > limit {
		return fmt.Errorf("kernels: %s: %s is %s (%d bytes), over the device's maxStorageBufferBindingSize of %d bytes", op, name, ewShape(t.Shape), bytes, limit)
	}
	return nil
}

// ewBuild builds an op of shaders/elementwise.wgsl over ts (bindings in order, the
// output last) with the grid and workgroup size planned for the adapter.
func (l *Library) ewBuild(name, entry string, consts map[string]float64, ts []*Tensor, ps Params) (*Op, error) {
	bufs := make([]*gpu.Buffer, len(ts))
	for i, t := range ts {
		bufs[i] = t.Buf
	}
	wg := l.ewWorkgroupSize()
	all := map[string]float64{"wg": float64(wg)}
	for k, v := range consts {
		all[k] = v
	}
	return l.build(opSpec{
		name:    name,
		file:    "elementwise.wgsl",
		entry:   entry,
		consts:  all,
		buffers: bufs,
		params:  ps,
		grid:    l.ewGrid(ts[0].Len(), 1, wg),
	})
}

func ewFinite(op, name string, v float32) error {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return fmt.Errorf("kernels: %s: %s = %v (want a finite value)", op, name, v)
	}
	return nil
}

// ewShape writes a shape as 13×7.
func ewShape(shape []int) string {
	parts := make([]string, len(shape))
	for i, s := range shape {
		parts[i] = fmt.Sprint(s)
	}
	return strings.Join(parts, "×")
}

// ewValidActivation reports an Activation value outside the enum.
func ewValidActivation(op string, a Activation) error {
	if a.valid() != nil {
		return fmt.Errorf("kernels: %s: unknown activation %d (want one of %s)", op, uint32(a), strings.Join(activationNames, ", "))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// float64 references

// RefUnary returns f applied to every element of x: out[i] = f(x[i]). With
// f = func(v float64) float64 { return RefActivate(a, v) } it is the reference of Activate.
func RefUnary(f func(float64) float64, x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = f(v)
	}
	return out
}

// RefActivateBackward is the reference of ActivateBackward: dx[i] = dy[i]·f'(x[i]).
func RefActivateBackward(a Activation, dy, x []float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = dy[i] * RefActivateGrad(a, x[i])
	}
	return out
}

// RefAdd is the reference of Add: z[i] = x[i] + y[i].
func RefAdd(x, y []float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] + y[i]
	}
	return out
}

// RefMul is the reference of Mul: z[i] = x[i]·y[i].
func RefMul(x, y []float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] * y[i]
	}
	return out
}

// RefAxpy is the reference of Axpy: it returns α·x[i] + y[i] (y is not modified).
func RefAxpy(alpha float64, x, y []float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = alpha*x[i] + y[i]
	}
	return out
}

// RefScale is the reference of Scale: y[i] = α·x[i].
func RefScale(alpha float64, x []float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = alpha * x[i]
	}
	return out
}

// RefClamp is the reference of Clamp: y[i] = min(max(x[i], lo), hi).
func RefClamp(x []float64, lo, hi float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = math.Min(math.Max(x[i], lo), hi)
	}
	return out
}
