package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// ErrDeviceLost is wrapped by every error returned after the device was lost.
var ErrDeviceLost = errors.New("device lost")

// Device is a logical connection to an adapter: it creates resources and owns a queue.
type Device struct {
	h        C.WGPUDevice
	inst     *Instance
	adapter  *Adapter
	state    *C.osds_device_state
	queue    C.WGPUQueue
	limits   Limits
	features []Feature
	info     AdapterInfo
	lostErr  error

	ownsAdapter bool // made by NewDevice: Release also releases adapter and instance
}

// NewDevice is a convenience for the common case: an instance, the default adapter (or
// the one OSDS_ADAPTER_BACKEND names) and a device with the adapter's full limits.
// Release the device to release all three.
func NewDevice() (*Device, error) {
	in, err := NewInstance()
	if err != nil {
		return nil, err
	}
	var opts AdapterOptions
	if s := getenv("OSDS_ADAPTER_BACKEND"); s != "" {
		b, err := ParseBackend(s)
		if err != nil {
			in.Release()
			return nil, err
		}
		opts.Backend = b
	}
	a, err := in.RequestAdapter(opts)
	if err != nil {
		in.Release()
		return nil, fmt.Errorf("%w; on a machine without a GPU, install Mesa lavapipe >= 24 (run `make setup`)", err)
	}
	d, err := a.RequestDevice()
	if err != nil {
		a.Release()
		in.Release()
		return nil, err
	}
	d.ownsAdapter = true
	return d, nil
}

// RequestDevice creates a device with all of the adapter's limits (not the spec minimums)
// and the optional features osds uses where the adapter has them (timestamp-query,
// shader-f16, subgroups). On Dawn, timestamp quantization is switched off so that
// kernel timings keep their resolution.
func (a *Adapter) RequestDevice() (*Device, error) {
	limits, err := a.rawLimits()
	if err != nil {
		return nil, err
	}
	limits.nextInChain = nil
	var want []C.uint32_t
	have := a.Features()
	for _, f := range []Feature{FeatureTimestampQuery, FeatureShaderF16, FeatureSubgroups} {
		for _, g := range have {
			if g == f {
				want = append(want, C.uint32_t(f))
			}
		}
	}
	info, err := a.Info()
	if err != nil {
		return nil, err
	}

	// Everything the descriptor points at lives in C memory for the duration of the call.
	desc := (*C.WGPUDeviceDescriptor)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUDeviceDescriptor{}))))
	defer C.free(unsafe.Pointer(desc))
	cl := (*C.WGPULimits)(C.calloc(1, C.size_t(unsafe.Sizeof(limits))))
	defer C.free(unsafe.Pointer(cl))
	*cl = limits
	desc.requiredLimits = cl
	if len(want) > 0 {
		cf := (*C.uint32_t)(C.calloc(C.size_t(len(want)), 4))
		defer C.free(unsafe.Pointer(cf))
		copy(unsafe.Slice(cf, len(want)), want)
		desc.requiredFeatures = cf
		desc.requiredFeatureCount = C.size_t(len(want))
	}
	label, free := cview("osds")
	defer free()
	desc.label = label
	if isDawn() {
		toggles := (*C.WGPUDawnTogglesDescriptor)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUDawnTogglesDescriptor{}))))
		defer C.free(unsafe.Pointer(toggles))
		name := C.CString("timestamp_quantization")
		defer C.free(unsafe.Pointer(name))
		names := (**C.char)(C.calloc(1, C.size_t(unsafe.Sizeof(name))))
		defer C.free(unsafe.Pointer(names))
		*names = name
		toggles.chain.sType = C.WGPUSType_DawnTogglesDescriptor
		toggles.disabledToggleCount = 1
		toggles.disabledToggles = names
		desc.nextInChain = &toggles.chain
	}
	state := C.osds_device_state_new()
	C.osds_fill_device_callbacks(desc, state)

	r := C.osds_result_new()
	defer C.osds_result_free(r)
	C.osds_AdapterRequestDevice(a.h, desc, C.osds_device_callback(r))
	if err := a.inst.wait(r, "requesting a device", nil); err != nil {
		C.osds_device_state_free(state)
		return nil, err
	}
	if r.status != 1 || r.handle == nil {
		C.osds_device_state_free(state)
		return nil, fmt.Errorf("gpu: requesting a device on %s failed (status %d): %s", info.Device, uint32(r.status), goString(r.message))
	}
	d := &Device{h: C.WGPUDevice(r.handle), inst: a.inst, adapter: a, state: state, info: info}
	d.queue = C.osds_DeviceGetQueue(d.h)
	var dl C.WGPULimits
	C.osds_DeviceGetLimits(d.h, &dl)
	d.limits = limitsFromC(&dl)
	for _, f := range want {
		d.features = append(d.features, Feature(f))
	}
	track("device", 1)
	return d, nil
}

// TeardownGrace bounds Release: destroying a device waits for its queue, which a runtime
// that stopped answering never empties, so a teardown that takes longer is abandoned (the
// process is ending; the operating system reclaims the memory).
const TeardownGrace = 10 * time.Second

// Release destroys the device (and, for a device made by NewDevice, its adapter and
// instance). Objects made from it must be released first. After a wait ran out of time
// (the instance is wedged) nothing is destroyed: the runtime would block.
func (d *Device) Release() {
	if d == nil || d.h == nil {
		return
	}
	h, state := d.h, d.state
	d.h, d.state = nil, nil
	track("device", -1)
	if !d.inst.Wedged() {
		done := make(chan struct{})
		go func() {
			C.osds_QueueRelease(d.queue)
			C.osds_DeviceDestroy(h)
			C.osds_DeviceRelease(h)
			// Let the runtime deliver the device-lost callback (reason: destroyed)
			// before the state record it writes into is freed.
			C.osds_InstanceProcessEvents(d.inst.h)
			close(done)
		}()
		select {
		case <-done:
			C.osds_device_state_free(state)
		case <-time.After(TeardownGrace):
			// The callback may still write into state: it is leaked, not freed.
			d.inst.wedged.Store(true)
			fmt.Fprintf(os.Stderr, "gpu: destroying the device on %s did not finish within %v; left to the process exit\n", d.info.Device, TeardownGrace)
		}
	}
	if d.ownsAdapter {
		d.adapter.Release()
		d.inst.Release()
	}
}

// Destroy makes the device lost at once and frees its memory; every later call returns
// an error wrapping ErrDeviceLost. Release must still be called.
func (d *Device) Destroy() {
	C.osds_DeviceDestroy(d.h)
	C.osds_InstanceProcessEvents(d.inst.h)
}

// Limits returns the limits the device was created with.
func (d *Device) Limits() Limits { return d.limits }

// AdapterInfo describes the adapter the device runs on.
func (d *Device) AdapterInfo() AdapterInfo { return d.info }

// HasFeature reports whether the device was created with feature f.
func (d *Device) HasFeature(f Feature) bool {
	for _, g := range d.features {
		if g == f {
			return true
		}
	}
	return false
}

// Err returns, and clears, the errors the device reported outside any error scope since
// the last call, or the device-lost error. Every fallible method calls it first.
func (d *Device) Err() error {
	if d.lostErr != nil {
		return d.lostErr
	}
	if d.h == nil {
		return fmt.Errorf("gpu: device already released")
	}
	var errs *C.char
	var count C.int
	var lostMsg *C.char
	var reason C.uint32_t
	lost := C.osds_device_state_take(d.state, &errs, &count, &lostMsg, &reason)
	var text string
	if errs != nil {
		text = strings.TrimSpace(C.GoString(errs))
		C.free(unsafe.Pointer(errs))
	}
	if lost != 0 {
		d.lostErr = fmt.Errorf("gpu: %w (reason %d): %s", ErrDeviceLost, uint32(reason), goString(lostMsg))
		if text != "" {
			d.lostErr = fmt.Errorf("%w; earlier errors: %s", d.lostErr, text)
		}
		return d.lostErr
	}
	if count > 0 {
		if text == "" {
			text = "(messages dropped)"
		}
		return fmt.Errorf("gpu: %d uncaptured error(s) since the last call: %s", int(count), text)
	}
	return nil
}

// lostCheck reports device loss only (used while waiting, where uncaptured errors are
// left for the next call).
func (d *Device) lostCheck() error {
	if d.lostErr != nil {
		return d.lostErr
	}
	var lostMsg *C.char
	var reason C.uint32_t
	// Taking the uncaptured errors out here would lose them; peek only at the lost flag.
	C.pthread_mutex_lock(&d.state.mu)
	lost := d.state.lost
	if lost != 0 {
		reason = d.state.lostReason
		lostMsg = d.state.lostMessage
	}
	C.pthread_mutex_unlock(&d.state.mu)
	if lost != 0 {
		d.lostErr = fmt.Errorf("gpu: %w (reason %d): %s", ErrDeviceLost, uint32(reason), goString(lostMsg))
		return d.lostErr
	}
	return nil
}

// GPUError is a validation, out-of-memory or internal error reported by the runtime.
type GPUError struct {
	Op      string // what osds was doing
	Type    string // "validation", "out of memory", "internal"
	Message string // the runtime's message
}

func (e *GPUError) Error() string {
	return fmt.Sprintf("gpu: %s: %s error: %s", e.Op, e.Type, e.Message)
}

// scoped runs f inside validation and out-of-memory error scopes and returns the first
// error either caught. The OS thread is locked because error scopes are per thread.
func (d *Device) scoped(op string, f func()) error {
	if err := d.Err(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.osds_DevicePushErrorScope(d.h, C.WGPUErrorFilter_OutOfMemory)
	C.osds_DevicePushErrorScope(d.h, C.WGPUErrorFilter_Validation)
	f()
	var first error
	for _, kind := range []string{"validation", "out of memory"} {
		r := C.osds_result_new()
		C.osds_DevicePopErrorScope(d.h, C.osds_pop_callback(r))
		err := d.inst.wait(r, op+" (error scope)", d.lostCheck)
		if err == nil && r.status == 1 && r._type != C.WGPUErrorType_NoError && first == nil {
			first = &GPUError{Op: op, Type: kind, Message: strings.TrimSpace(goString(r.message))}
		}
		if err != nil && first == nil {
			first = err
		}
		C.osds_result_free(r)
	}
	return first
}

// Queue returns the device's queue.
func (d *Device) Queue() *Queue { return &Queue{d: d} }

// Adapter returns the adapter the device was created on.
func (d *Device) Adapter() *Adapter { return d.adapter }

// Instance returns the instance the device belongs to.
func (d *Device) Instance() *Instance { return d.inst }
