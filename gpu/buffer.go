package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// BufferUsage is a set of webgpu.h WGPUBufferUsage flags.
type BufferUsage uint64

// Buffer usages, with the values of webgpu.h.
const (
	UsageMapRead      BufferUsage = 1 << 0
	UsageMapWrite     BufferUsage = 1 << 1
	UsageCopySrc      BufferUsage = 1 << 2
	UsageCopyDst      BufferUsage = 1 << 3
	UsageIndex        BufferUsage = 1 << 4
	UsageVertex       BufferUsage = 1 << 5
	UsageUniform      BufferUsage = 1 << 6
	UsageStorage      BufferUsage = 1 << 7
	UsageIndirect     BufferUsage = 1 << 8
	UsageQueryResolve BufferUsage = 1 << 9
)

// StorageUsage is what osds tensors use: a storage buffer that can be written from the
// host and copied out for reading.
const StorageUsage = UsageStorage | UsageCopySrc | UsageCopyDst

// Buffer is a block of device memory, or a view of part of one (Slice).
type Buffer struct {
	h     C.WGPUBuffer
	d     *Device
	size  uint64 // as requested
	alloc uint64 // size rounded up to 4 bytes, as WebGPU requires for copies and mapping
	usage BufferUsage
	label string
	// base is where a view starts in the underlying buffer (0 for a buffer of its own);
	// every offset the methods take is relative to it.
	base uint64
	view bool
}

// CreateBuffer allocates size bytes with the given usage. Sizes that are not a multiple of
// 4 are rounded up underneath; Size still reports the requested size.
func (d *Device) CreateBuffer(label string, size uint64, usage BufferUsage) (*Buffer, error) {
	if size == 0 {
		return nil, fmt.Errorf("gpu: buffer %q: size 0 (want at least 1 byte)", label)
	}
	alloc := (size + 3) &^ 3
	if alloc > d.limits.MaxBufferSize {
		return nil, fmt.Errorf("gpu: buffer %q: %d bytes exceeds the device's maxBufferSize %d", label, size, d.limits.MaxBufferSize)
	}
	var desc C.WGPUBufferDescriptor
	l, free := cview(label)
	defer free()
	desc.label = l
	desc.usage = C.WGPUFlags(usage)
	desc.size = C.uint64_t(alloc)
	var h C.WGPUBuffer
	err := d.scoped(fmt.Sprintf("creating buffer %q (%d bytes)", label, size), func() {
		h = C.osds_DeviceCreateBuffer(d.h, &desc)
	})
	if err != nil {
		if h != nil {
			C.osds_BufferRelease(h)
		}
		return nil, err
	}
	track("buffer", 1)
	return &Buffer{h: h, d: d, size: size, alloc: alloc, usage: usage, label: label}, nil
}

// Slice returns a view of n bytes of b starting at byte off: a Buffer sharing b's memory
// whose bindings, writes, copies and reads all address that range. off must be a multiple
// of the device's minStorageBufferOffsetAlignment (so the view can be bound as storage),
// n a positive multiple of 4, and the range inside b. The view stays valid while b does;
// releasing it does nothing. WebGPU tracks usage per buffer, not per range: a dispatch
// must not bind two views of one buffer if either is written.
func (b *Buffer) Slice(label string, off, n uint64) (*Buffer, error) {
	if b == nil || b.h == nil {
		return nil, fmt.Errorf("gpu: slicing a nil or released buffer")
	}
	align := uint64(b.d.limits.MinStorageBufferOffsetAlignment)
	switch {
	case n == 0 || n%4 != 0:
		return nil, fmt.Errorf("gpu: view %q of %q: %d bytes (want a positive multiple of 4)", label, b.label, n)
	case align > 0 && (b.base+off)%align != 0:
		return nil, fmt.Errorf("gpu: view %q of %q: offset %d is not a multiple of the adapter's minStorageBufferOffsetAlignment %d", label, b.label, b.base+off, align)
	case off+n > b.alloc:
		return nil, fmt.Errorf("gpu: view %q of %q: bytes %d..%d outside the buffer's %d", label, b.label, off, off+n, b.alloc)
	}
	return &Buffer{h: b.h, d: b.d, size: n, alloc: n, usage: b.usage, label: label, base: b.base + off, view: true}, nil
}

// Shares reports whether b and o are the same WebGPU buffer, whole or as views (Slice):
// what matters for aliasing, since WebGPU tracks usage per buffer, not per range.
func (b *Buffer) Shares(o *Buffer) bool {
	return b != nil && o != nil && b.h != nil && b.h == o.h
}

// Size is the buffer's size in bytes as requested.
func (b *Buffer) Size() uint64 { return b.size }

// Label is the buffer's name, used in error messages.
func (b *Buffer) Label() string { return b.label }

// Release destroys the buffer. The runtime reuses its memory once the queue has finished
// the last submission that used it (Dawn frees on queue progress, not at once).
func (b *Buffer) Release() {
	if b == nil || b.h == nil {
		return
	}
	if b.view {
		b.h = nil // the underlying buffer owns the memory
		return
	}
	C.osds_BufferDestroy(b.h)
	C.osds_BufferRelease(b.h)
	b.h = nil
	track("buffer", -1)
}

// Queue submits work and writes to buffers.
type Queue struct {
	d *Device
}

// WriteBuffer copies data into b at offset (both byte counts must be multiples of 4,
// as WebGPU requires). The copy is staged by the runtime; data may be reused at once.
func (q *Queue) WriteBuffer(b *Buffer, offset uint64, data []byte) error {
	if err := q.d.Err(); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	if offset%4 != 0 || len(data)%4 != 0 {
		return fmt.Errorf("gpu: writing %q: offset %d and length %d must be multiples of 4", b.label, offset, len(data))
	}
	if offset+uint64(len(data)) > b.alloc {
		return fmt.Errorf("gpu: writing %d bytes at offset %d overflows %q (%d bytes)", len(data), offset, b.label, b.size)
	}
	C.osds_QueueWriteBuffer(q.d.queue, b.h, C.uint64_t(b.base+offset), unsafe.Pointer(&data[0]), C.size_t(len(data)))
	return nil
}

// WriteFloat32 writes xs into b starting at element offset elem.
func (q *Queue) WriteFloat32(b *Buffer, elem int, xs []float32) error {
	if len(xs) == 0 {
		return nil
	}
	return q.WriteBuffer(b, uint64(elem)*4, unsafe.Slice((*byte)(unsafe.Pointer(&xs[0])), 4*len(xs)))
}

// WriteUint32 writes xs into b starting at element offset elem.
func (q *Queue) WriteUint32(b *Buffer, elem int, xs []uint32) error {
	if len(xs) == 0 {
		return nil
	}
	return q.WriteBuffer(b, uint64(elem)*4, unsafe.Slice((*byte)(unsafe.Pointer(&xs[0])), 4*len(xs)))
}

// Submit hands command buffers to the GPU. Validation errors found at submission are
// returned here; the command buffers are consumed (released) either way.
func (q *Queue) Submit(cbs ...*CommandBuffer) error {
	if len(cbs) == 0 {
		return nil
	}
	hs := make([]C.WGPUCommandBuffer, len(cbs))
	for i, c := range cbs {
		if c == nil || c.h == nil {
			return fmt.Errorf("gpu: submit: command buffer %d is nil or already submitted", i)
		}
		hs[i] = c.h
	}
	err := q.d.scoped("submitting work", func() {
		C.osds_QueueSubmit(q.d.queue, C.size_t(len(hs)), &hs[0])
	})
	for _, c := range cbs {
		c.Release()
	}
	return err
}

// Wait blocks until all submitted work has finished on the GPU.
func (q *Queue) Wait() error {
	if err := q.d.Err(); err != nil {
		return err
	}
	r := C.osds_result_new()
	defer C.osds_result_free(r)
	C.osds_QueueOnSubmittedWorkDone(q.d.queue, C.osds_work_done_callback(r))
	if err := q.d.inst.wait(r, "waiting for the queue", q.d.lostCheck); err != nil {
		return err
	}
	if r.status != 1 {
		return fmt.Errorf("gpu: waiting for the queue: status %d", uint32(r.status))
	}
	return q.d.Err()
}

// MapRequest is a pending map-for-reading of a MapRead buffer. Poll it from the host loop
// to read results a few iterations late without ever blocking the GPU.
type MapRequest struct {
	b      *Buffer
	r      *C.osds_result
	off, n uint64
}

// MapReadAsync starts mapping n bytes at off of a UsageMapRead buffer.
func (b *Buffer) MapReadAsync(off, n uint64) (*MapRequest, error) {
	if b.usage&UsageMapRead == 0 {
		return nil, fmt.Errorf("gpu: mapping %q: buffer lacks UsageMapRead", b.label)
	}
	if off%8 != 0 || off+n > b.alloc {
		return nil, fmt.Errorf("gpu: mapping %q: range [%d,%d) must start at a multiple of 8 and lie within %d bytes", b.label, off, off+n, b.size)
	}
	n4 := (n + 3) &^ 3
	r := C.osds_result_new()
	C.osds_BufferMapAsync(b.h, 1, C.size_t(b.base+off), C.size_t(n4), C.osds_map_callback(r))
	return &MapRequest{b: b, r: r, off: off, n: n}, nil
}

// Ready processes pending events and reports whether the mapping has completed.
func (m *MapRequest) Ready() bool {
	C.osds_InstanceProcessEvents(m.b.d.inst.h)
	return m.r.done != 0
}

// Bytes waits for the mapping, copies the mapped range out, unmaps and returns the copy.
func (m *MapRequest) Bytes() ([]byte, error) {
	defer C.osds_result_free(m.r)
	if err := m.b.d.inst.wait(m.r, "mapping "+m.b.label, m.b.d.lostCheck); err != nil {
		return nil, err
	}
	if m.r.status != 1 {
		return nil, fmt.Errorf("gpu: mapping %q failed (status %d): %s", m.b.label, uint32(m.r.status), goString(m.r.message))
	}
	n4 := (m.n + 3) &^ 3
	p := C.osds_BufferGetConstMappedRange(m.b.h, C.size_t(m.b.base+m.off), C.size_t(n4))
	if p == nil {
		C.osds_BufferUnmap(m.b.h)
		return nil, fmt.Errorf("gpu: mapping %q: no mapped range", m.b.label)
	}
	out := C.GoBytes(p, C.int(m.n))
	C.osds_BufferUnmap(m.b.h)
	return out, nil
}

// Read copies n bytes at offset off of b (any buffer with UsageCopySrc) back to the host,
// through a temporary staging buffer. It waits for all work submitted before it.
func (b *Buffer) Read(off, n uint64) ([]byte, error) {
	if b.usage&UsageCopySrc == 0 {
		return nil, fmt.Errorf("gpu: reading %q: buffer lacks UsageCopySrc", b.label)
	}
	if off%4 != 0 || off+n > b.alloc {
		return nil, fmt.Errorf("gpu: reading %q: range [%d,%d) must start at a multiple of 4 and lie within %d bytes", b.label, off, off+n, b.size)
	}
	if n == 0 {
		return nil, nil
	}
	n4 := (n + 3) &^ 3
	d := b.d
	staging, err := d.CreateBuffer(b.label+" (readback)", n4, UsageMapRead|UsageCopyDst)
	if err != nil {
		return nil, err
	}
	defer staging.Release()
	enc, err := d.CreateCommandEncoder("readback")
	if err != nil {
		return nil, err
	}
	enc.CopyBufferToBuffer(b, off, staging, 0, n4)
	cb, err := enc.Finish()
	if err != nil {
		return nil, err
	}
	if err := d.Queue().Submit(cb); err != nil {
		return nil, err
	}
	m, err := staging.MapReadAsync(0, n)
	if err != nil {
		return nil, err
	}
	out, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	return out, d.Err()
}

// ReadFloat32 reads n float32 values starting at element elem.
func (b *Buffer) ReadFloat32(elem, n int) ([]float32, error) {
	raw, err := b.Read(uint64(elem)*4, uint64(n)*4)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// ReadUint32 reads n uint32 values starting at element elem.
func (b *Buffer) ReadUint32(elem, n int) ([]uint32, error) {
	raw, err := b.Read(uint64(elem)*4, uint64(n)*4)
	if err != nil {
		return nil, err
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	return out, nil
}
