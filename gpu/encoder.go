package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// CommandEncoder records GPU commands into a command buffer.
type CommandEncoder struct {
	h C.WGPUCommandEncoder
	d *Device
}

// CreateCommandEncoder starts recording.
func (d *Device) CreateCommandEncoder(label string) (*CommandEncoder, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	var desc C.WGPUCommandEncoderDescriptor
	l, free := cview(label)
	defer free()
	desc.label = l
	h := C.osds_DeviceCreateCommandEncoder(d.h, &desc)
	if h == nil {
		return nil, fmt.Errorf("gpu: wgpuDeviceCreateCommandEncoder returned NULL")
	}
	track("encoder", 1)
	return &CommandEncoder{h: h, d: d}, nil
}

// CopyBufferToBuffer records a copy of n bytes (a multiple of 4).
func (e *CommandEncoder) CopyBufferToBuffer(src *Buffer, srcOff uint64, dst *Buffer, dstOff uint64, n uint64) {
	C.osds_CommandEncoderCopyBufferToBuffer(e.h, src.h, C.uint64_t(src.base+srcOff), dst.h, C.uint64_t(dst.base+dstOff), C.uint64_t(n))
}

// ClearBuffer records zero-filling n bytes of b at off (both multiples of 4).
func (e *CommandEncoder) ClearBuffer(b *Buffer, off, n uint64) {
	C.osds_CommandEncoderClearBuffer(e.h, b.h, C.uint64_t(b.base+off), C.uint64_t(n))
}

// ResolveQuerySet copies n timestamps starting at first into dst at off (8 bytes each).
func (e *CommandEncoder) ResolveQuerySet(q *QuerySet, first, n uint32, dst *Buffer, off uint64) {
	C.osds_CommandEncoderResolveQuerySet(e.h, q.h, C.uint32_t(first), C.uint32_t(n), dst.h, C.uint64_t(dst.base+off))
}

// PassTimestamps asks a compute pass to write timestamps at its start and end into
// QuerySet at the given indices.
type PassTimestamps struct {
	QuerySet   *QuerySet
	Begin, End uint32
}

// BeginComputePass starts a compute pass; ts may be nil.
func (e *CommandEncoder) BeginComputePass(ts *PassTimestamps) *ComputePass {
	var desc C.WGPUComputePassDescriptor
	if ts != nil {
		tw := (*C.WGPUPassTimestampWrites)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUPassTimestampWrites{}))))
		defer C.free(unsafe.Pointer(tw))
		tw.querySet = ts.QuerySet.h
		tw.beginningOfPassWriteIndex = C.uint32_t(ts.Begin)
		tw.endOfPassWriteIndex = C.uint32_t(ts.End)
		desc.timestampWrites = tw
	}
	h := C.osds_CommandEncoderBeginComputePass(e.h, &desc)
	track("computepass", 1)
	return &ComputePass{h: h}
}

// Finish ends recording. Errors made while recording (a bind group that does not match
// the pipeline, a dispatch too large, a copy out of range) are returned here.
func (e *CommandEncoder) Finish() (*CommandBuffer, error) {
	var desc C.WGPUCommandBufferDescriptor
	var h C.WGPUCommandBuffer
	err := e.d.scoped("recording commands", func() {
		h = C.osds_CommandEncoderFinish(e.h, &desc)
	})
	e.Release()
	if err != nil {
		if h != nil {
			C.osds_CommandBufferRelease(h)
		}
		return nil, err
	}
	track("commandbuffer", 1)
	return &CommandBuffer{h: h}, nil
}

// Release abandons the encoder (Finish releases it already).
func (e *CommandEncoder) Release() {
	if e == nil || e.h == nil {
		return
	}
	C.osds_CommandEncoderRelease(e.h)
	e.h = nil
	track("encoder", -1)
}

// ComputePass records dispatches.
type ComputePass struct {
	h C.WGPUComputePassEncoder
}

// SetPipeline selects the pipeline for following dispatches.
func (p *ComputePass) SetPipeline(pl *ComputePipeline) {
	C.osds_ComputePassEncoderSetPipeline(p.h, pl.h)
}

// SetBindGroup binds group g at index.
func (p *ComputePass) SetBindGroup(index uint32, g *BindGroup) {
	C.osds_ComputePassEncoderSetBindGroup(p.h, C.uint32_t(index), g.h, 0, nil)
}

// Dispatch launches x×y×z workgroups.
func (p *ComputePass) Dispatch(x, y, z uint32) {
	C.osds_ComputePassEncoderDispatchWorkgroups(p.h, C.uint32_t(x), C.uint32_t(y), C.uint32_t(z))
}

// End closes the pass and releases it.
func (p *ComputePass) End() {
	if p.h == nil {
		return
	}
	C.osds_ComputePassEncoderEnd(p.h)
	C.osds_ComputePassEncoderRelease(p.h)
	p.h = nil
	track("computepass", -1)
}

// CommandBuffer is finished work, ready for Queue.Submit (which consumes it).
type CommandBuffer struct {
	h C.WGPUCommandBuffer
}

// Release frees an unsubmitted command buffer.
func (c *CommandBuffer) Release() {
	if c == nil || c.h == nil {
		return
	}
	C.osds_CommandBufferRelease(c.h)
	c.h = nil
	track("commandbuffer", -1)
}

// QuerySet holds GPU timestamps.
type QuerySet struct {
	h     C.WGPUQuerySet
	count uint32
}

// CreateTimestampQuerySet creates count timestamp slots; the device must have the
// timestamp-query feature.
func (d *Device) CreateTimestampQuerySet(label string, count uint32) (*QuerySet, error) {
	if !d.HasFeature(FeatureTimestampQuery) {
		return nil, fmt.Errorf("gpu: adapter %q has no timestamp-query feature", d.info.Device)
	}
	var desc C.WGPUQuerySetDescriptor
	l, free := cview(label)
	defer free()
	desc.label = l
	desc._type = C.WGPUQueryType_Timestamp
	desc.count = C.uint32_t(count)
	var h C.WGPUQuerySet
	err := d.scoped("creating query set "+label, func() {
		h = C.osds_DeviceCreateQuerySet(d.h, &desc)
	})
	if err != nil {
		if h != nil {
			C.osds_QuerySetRelease(h)
		}
		return nil, err
	}
	track("queryset", 1)
	return &QuerySet{h: h, count: count}, nil
}

// Count is the number of timestamp slots.
func (q *QuerySet) Count() uint32 { return q.count }

// Release destroys the query set.
func (q *QuerySet) Release() {
	if q == nil || q.h == nil {
		return
	}
	C.osds_QuerySetDestroy(q.h)
	C.osds_QuerySetRelease(q.h)
	q.h = nil
	track("queryset", -1)
}
