package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// Instance is the entry point of the API: it finds adapters and drives callbacks.
type Instance struct {
	h C.WGPUInstance
	// wedged is set when a wait ran out of time: the runtime no longer answers (a shader
	// that never ends, a hung driver), so teardown, which waits for the queue, is skipped.
	wedged atomic.Bool
}

// NewInstance loads the runtime library (once per process) and creates an instance. A
// malformed OSDS_GPU_TIMEOUT is an error here, before any work starts.
func NewInstance() (*Instance, error) {
	if _, err := WaitTimeout(); err != nil {
		return nil, err
	}
	if s := getenv("OSDS_ADAPTER_BACKEND"); s != "" {
		if _, err := ParseBackend(s); err != nil {
			return nil, fmt.Errorf("OSDS_ADAPTER_BACKEND: %w", err)
		}
	}
	if err := load(); err != nil {
		return nil, err
	}
	h := C.osds_CreateInstance(nil)
	if h == nil {
		return nil, fmt.Errorf("gpu: wgpuCreateInstance returned NULL (runtime %s)", libPath)
	}
	track("instance", 1)
	return &Instance{h: h}, nil
}

// Release frees the instance (nothing, when the runtime stopped answering).
func (in *Instance) Release() {
	if in == nil || in.h == nil {
		return
	}
	if !in.wedged.Load() {
		C.osds_InstanceRelease(in.h)
	}
	in.h = nil
	track("instance", -1)
}

// Wedged reports whether a wait on this instance ran out of time. The runtime's state is
// then unknown; the process should report its error and exit.
func (in *Instance) Wedged() bool { return in.wedged.Load() }

// DefaultWaitTimeout bounds a wait for the GPU when OSDS_GPU_TIMEOUT is not set: long
// enough for a first pipeline compile of a large kernel on a CPU adapter.
const DefaultWaitTimeout = 10 * time.Minute

// WaitTimeout is the bound of every wait for a callback, so that a GPU that never
// answers becomes an error, not a hang: OSDS_GPU_TIMEOUT (a Go duration such as 90s or
// 5m) or DefaultWaitTimeout. A value that does not parse, or is not positive, is an error.
func WaitTimeout() (time.Duration, error) {
	s := os.Getenv("OSDS_GPU_TIMEOUT")
	if s == "" {
		return DefaultWaitTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("gpu: OSDS_GPU_TIMEOUT=%q: want a positive Go duration such as 90s or 5m", s)
	}
	return d, nil
}

// waitTimeout is WaitTimeout where the value was already checked (by NewInstance).
func waitTimeout() time.Duration {
	d, err := WaitTimeout()
	if err != nil {
		return DefaultWaitTimeout
	}
	return d
}

// wait polls ProcessEvents until r's callback has run. lost, when non-nil, is checked
// between polls so that a lost device ends the wait with its error. The poll backs off to
// short sleeps: on a CPU adapter (lavapipe) the GPU work runs on the same cores, and a
// spinning poll would steal one of them. Running out of time marks the instance wedged.
func (in *Instance) wait(r *C.osds_result, what string, lost func() error) error {
	limit := waitTimeout()
	deadline := time.Now().Add(limit)
	sleep := time.Duration(0)
	for spins := 0; ; spins++ {
		C.osds_InstanceProcessEvents(in.h)
		if r.done != 0 {
			return nil
		}
		if lost != nil {
			if err := lost(); err != nil {
				return fmt.Errorf("gpu: %s: %w", what, err)
			}
		}
		if time.Now().After(deadline) {
			in.wedged.Store(true)
			return fmt.Errorf("gpu: %s: %w after %v (a shader that never finishes, or a hung driver; set OSDS_GPU_TIMEOUT to wait longer)", what, ErrTimeout, limit)
		}
		if spins > 64 {
			if sleep < time.Millisecond {
				sleep += 20 * time.Microsecond
			}
			time.Sleep(sleep)
		}
	}
}

// ErrTimeout is wrapped by the error of a wait that ran out of time.
var ErrTimeout = errors.New("no answer from the GPU")

// Backend is a native API an adapter runs on (webgpu.h WGPUBackendType).
type Backend uint32

// Backends, with the values of webgpu.h.
const (
	BackendUndefined Backend = 0
	BackendNull      Backend = 1
	BackendWebGPU    Backend = 2
	BackendD3D11     Backend = 3
	BackendD3D12     Backend = 4
	BackendMetal     Backend = 5
	BackendVulkan    Backend = 6
	BackendOpenGL    Backend = 7
	BackendOpenGLES  Backend = 8
)

func (b Backend) String() string {
	names := []string{"undefined", "null", "WebGPU", "D3D11", "D3D12", "Metal", "Vulkan", "OpenGL", "OpenGLES"}
	if int(b) < len(names) {
		return names[b]
	}
	return fmt.Sprintf("backend(%d)", uint32(b))
}

// ParseBackend maps a name such as "vulkan" to a Backend.
func ParseBackend(s string) (Backend, error) {
	for b := BackendNull; b <= BackendOpenGLES; b++ {
		if strings.EqualFold(b.String(), s) {
			return b, nil
		}
	}
	return 0, fmt.Errorf("gpu: unknown backend %q (want one of vulkan, metal, d3d12, d3d11, opengl, opengles)", s)
}

// AdapterOptions selects an adapter. The zero value asks the runtime for its default.
type AdapterOptions struct {
	Backend         Backend // BackendUndefined lets the runtime choose
	HighPerformance bool    // prefer a discrete GPU
	LowPower        bool    // prefer an integrated GPU
	Fallback        bool    // ask for the software fallback adapter
}

// RequestAdapter returns the adapter the runtime picks for opts.
func (in *Instance) RequestAdapter(opts AdapterOptions) (*Adapter, error) {
	var o C.WGPURequestAdapterOptions
	o.backendType = C.uint32_t(opts.Backend)
	switch {
	case opts.HighPerformance:
		o.powerPreference = 2
	case opts.LowPower:
		o.powerPreference = 1
	}
	if opts.Fallback {
		o.forceFallbackAdapter = 1
	}
	r := C.osds_result_new()
	defer C.osds_result_free(r)
	C.osds_InstanceRequestAdapter(in.h, &o, C.osds_adapter_callback(r))
	if err := in.wait(r, "requesting an adapter", nil); err != nil {
		return nil, err
	}
	if r.status != 1 || r.handle == nil {
		msg := ""
		if r.message != nil {
			msg = ": " + C.GoString(r.message)
		}
		what := "default"
		if opts.Backend != BackendUndefined {
			what = opts.Backend.String()
		}
		return nil, fmt.Errorf("gpu: no %s adapter (status %d)%s", what, uint32(r.status), msg)
	}
	track("adapter", 1)
	return &Adapter{h: C.WGPUAdapter(r.handle), inst: in}, nil
}

// Adapters returns every distinct adapter reachable through the native backends, found
// by asking for each backend in turn (webgpu.h has no enumeration call).
func (in *Instance) Adapters() ([]*Adapter, error) {
	var out []*Adapter
	seen := map[string]bool{}
	backends := []Backend{BackendVulkan, BackendMetal, BackendD3D12, BackendD3D11, BackendOpenGL, BackendOpenGLES}
	var firstErr error
	for _, b := range backends {
		for _, pref := range []AdapterOptions{{Backend: b, HighPerformance: true}, {Backend: b, LowPower: true}} {
			a, err := in.RequestAdapter(pref)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			info, err := a.Info()
			key := fmt.Sprintf("%v|%s|%s|%x|%x", info.Backend, info.Device, info.Description, info.VendorID, info.DeviceID)
			if err != nil || seen[key] {
				a.Release()
				continue
			}
			seen[key] = true
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("gpu: the runtime reports no adapter")
		}
		return nil, fmt.Errorf("%w; on a machine without a GPU, install Mesa lavapipe >= 24 (run `make setup`)", firstErr)
	}
	return out, nil
}

// goString copies a C string owned by C into Go memory ("" for NULL).
func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// view converts a WGPUStringView to a Go string.
func view(v C.WGPUStringView) string {
	if v.data == nil {
		return ""
	}
	if v.length == C.size_t(^uint(0)) {
		return C.GoString(v.data)
	}
	return C.GoStringN(v.data, C.int(v.length))
}

// cview returns a WGPUStringView of a C copy of s and the function that frees it.
func cview(s string) (C.WGPUStringView, func()) {
	if s == "" {
		return C.WGPUStringView{data: nil, length: 0}, func() {}
	}
	p := C.CString(s)
	return C.WGPUStringView{data: p, length: C.size_t(len(s))}, func() { C.free(unsafe.Pointer(p)) }
}
