package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"fmt"
	"sort"
	"unsafe"
)

// ComputePipeline is a compiled compute entry point with its bind group layouts.
type ComputePipeline struct {
	h     C.WGPUComputePipeline
	d     *Device
	label string
}

// PipelineOptions configure CreateComputePipeline.
type PipelineOptions struct {
	Entry     string             // entry point; "" picks the module's only compute entry point
	Constants map[string]float64 // values for the module's `override` declarations
	Layout    *PipelineLayout    // nil derives the layout from the shader ("auto")
}

// CreateComputePipeline builds a pipeline from a module.
func (d *Device) CreateComputePipeline(label string, m *ShaderModule, opts PipelineOptions) (*ComputePipeline, error) {
	desc := (*C.WGPUComputePipelineDescriptor)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUComputePipelineDescriptor{}))))
	defer C.free(unsafe.Pointer(desc))
	l, freeLabel := cview(label)
	defer freeLabel()
	desc.label = l
	if opts.Layout != nil {
		desc.layout = opts.Layout.h
	}
	desc.compute.module = m.h
	e, freeEntry := cview(opts.Entry)
	defer freeEntry()
	if opts.Entry == "" {
		e = C.WGPUStringView{data: nil, length: C.size_t(^uint(0))}
	}
	desc.compute.entryPoint = e
	if n := len(opts.Constants); n > 0 {
		keys := make([]string, 0, n)
		for k := range opts.Constants {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		cs := (*C.WGPUConstantEntry)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.WGPUConstantEntry{}))))
		defer C.free(unsafe.Pointer(cs))
		entries := unsafe.Slice(cs, n)
		for i, k := range keys {
			kv, free := cview(k)
			defer free()
			entries[i].key = kv
			entries[i].value = C.double(opts.Constants[k])
		}
		desc.compute.constants = cs
		desc.compute.constantCount = C.size_t(n)
	}
	var h C.WGPUComputePipeline
	err := d.scoped("creating compute pipeline "+label, func() {
		h = C.osds_DeviceCreateComputePipeline(d.h, desc)
	})
	if err != nil {
		if h != nil {
			C.osds_ComputePipelineRelease(h)
		}
		return nil, err
	}
	track("pipeline", 1)
	return &ComputePipeline{h: h, d: d, label: label}, nil
}

// Label is the pipeline's name.
func (p *ComputePipeline) Label() string { return p.label }

// Release frees the pipeline.
func (p *ComputePipeline) Release() {
	if p == nil || p.h == nil {
		return
	}
	C.osds_ComputePipelineRelease(p.h)
	p.h = nil
	track("pipeline", -1)
}

// BindGroupLayout returns the layout of bind group index (derived from the shader when
// the pipeline was created with an automatic layout).
func (p *ComputePipeline) BindGroupLayout(index int) (*BindGroupLayout, error) {
	return p.d.scopedLayout(fmt.Sprintf("getting bind group layout %d of %s", index, p.label), func() C.WGPUBindGroupLayout {
		return C.osds_ComputePipelineGetBindGroupLayout(p.h, C.uint32_t(index))
	})
}

// BindingType is the kind of buffer a binding slot holds.
type BindingType uint32

// Buffer binding types, with the values of webgpu.h.
const (
	BindUniform         BindingType = 2
	BindStorage         BindingType = 3
	BindReadOnlyStorage BindingType = 4
)

// LayoutEntry describes one buffer binding of a compute bind group layout.
type LayoutEntry struct {
	Binding uint32
	Type    BindingType
}

// BindGroupLayout describes the bindings of one bind group.
type BindGroupLayout struct {
	h C.WGPUBindGroupLayout
}

// CreateBindGroupLayout creates an explicit layout of buffer bindings visible to compute.
func (d *Device) CreateBindGroupLayout(label string, entries []LayoutEntry) (*BindGroupLayout, error) {
	n := len(entries)
	var ce *C.WGPUBindGroupLayoutEntry
	if n > 0 {
		ce = (*C.WGPUBindGroupLayoutEntry)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.WGPUBindGroupLayoutEntry{}))))
		defer C.free(unsafe.Pointer(ce))
		cs := unsafe.Slice(ce, n)
		for i := range cs {
			s := &cs[i]
			s.binding = C.uint32_t(entries[i].Binding)
			s.visibility = 4 // WGPUShaderStage_Compute
			s.buffer._type = C.uint32_t(entries[i].Type)
		}
	}
	var desc C.WGPUBindGroupLayoutDescriptor
	l, free := cview(label)
	defer free()
	desc.label = l
	desc.entryCount = C.size_t(n)
	desc.entries = ce
	return d.scopedLayout("creating bind group layout "+label, func() C.WGPUBindGroupLayout {
		return C.osds_DeviceCreateBindGroupLayout(d.h, &desc)
	})
}

// scopedLayout runs make, which returns a new bind group layout, inside error scopes:
// the one mechanism behind creating a layout and reading a pipeline's.
func (d *Device) scopedLayout(op string, make func() C.WGPUBindGroupLayout) (*BindGroupLayout, error) {
	var h C.WGPUBindGroupLayout
	err := d.scoped(op, func() { h = make() })
	if err != nil {
		if h != nil {
			C.osds_BindGroupLayoutRelease(h)
		}
		return nil, err
	}
	track("bindgrouplayout", 1)
	return &BindGroupLayout{h: h}, nil
}

// Release frees the layout.
func (l *BindGroupLayout) Release() {
	if l == nil || l.h == nil {
		return
	}
	C.osds_BindGroupLayoutRelease(l.h)
	l.h = nil
	track("bindgrouplayout", -1)
}

// PipelineLayout lists the bind group layouts of a pipeline.
type PipelineLayout struct {
	h C.WGPUPipelineLayout
}

// CreatePipelineLayout creates a pipeline layout from bind group layouts.
func (d *Device) CreatePipelineLayout(label string, groups ...*BindGroupLayout) (*PipelineLayout, error) {
	n := len(groups)
	var arr *C.WGPUBindGroupLayout
	if n > 0 {
		arr = (*C.WGPUBindGroupLayout)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.WGPUBindGroupLayout(nil)))))
		defer C.free(unsafe.Pointer(arr))
		for i, g := range groups {
			unsafe.Slice(arr, n)[i] = g.h
		}
	}
	var desc C.WGPUPipelineLayoutDescriptor
	l, free := cview(label)
	defer free()
	desc.label = l
	desc.bindGroupLayoutCount = C.size_t(n)
	desc.bindGroupLayouts = arr
	var h C.WGPUPipelineLayout
	err := d.scoped("creating pipeline layout "+label, func() {
		h = C.osds_DeviceCreatePipelineLayout(d.h, &desc)
	})
	if err != nil {
		if h != nil {
			C.osds_PipelineLayoutRelease(h)
		}
		return nil, err
	}
	track("pipelinelayout", 1)
	return &PipelineLayout{h: h}, nil
}

// Release frees the layout.
func (l *PipelineLayout) Release() {
	if l == nil || l.h == nil {
		return
	}
	C.osds_PipelineLayoutRelease(l.h)
	l.h = nil
	track("pipelinelayout", -1)
}

// BindEntry binds a range of a buffer to a binding slot. Size 0 binds from Offset to the
// end of the buffer.
type BindEntry struct {
	Binding uint32
	Buffer  *Buffer
	Offset  uint64
	Size    uint64
}

// BindGroup is a set of resources bound together for a dispatch.
type BindGroup struct {
	h C.WGPUBindGroup
}

// CreateBindGroup binds buffers to the slots of layout. Mismatches (missing slots, wrong
// usage, ranges out of bounds) are returned as errors.
func (d *Device) CreateBindGroup(label string, layout *BindGroupLayout, entries []BindEntry) (*BindGroup, error) {
	if layout == nil || layout.h == nil {
		return nil, fmt.Errorf("gpu: bind group %q: nil or released layout", label)
	}
	n := len(entries)
	var ce *C.WGPUBindGroupEntry
	if n > 0 {
		ce = (*C.WGPUBindGroupEntry)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.WGPUBindGroupEntry{}))))
		defer C.free(unsafe.Pointer(ce))
		cs := unsafe.Slice(ce, n)
		for i, e := range entries {
			if e.Buffer == nil || e.Buffer.h == nil {
				return nil, fmt.Errorf("gpu: bind group %q: binding %d has a nil or released buffer", label, e.Binding)
			}
			size := e.Size
			if size == 0 {
				size = e.Buffer.alloc - e.Offset
			}
			cs[i].binding = C.uint32_t(e.Binding)
			cs[i].buffer = e.Buffer.h
			cs[i].offset = C.uint64_t(e.Buffer.base + e.Offset)
			cs[i].size = C.uint64_t(size)
		}
	}
	var desc C.WGPUBindGroupDescriptor
	l, free := cview(label)
	defer free()
	desc.label = l
	desc.layout = layout.h
	desc.entryCount = C.size_t(n)
	desc.entries = ce
	var h C.WGPUBindGroup
	err := d.scoped("creating bind group "+label, func() {
		h = C.osds_DeviceCreateBindGroup(d.h, &desc)
	})
	if err != nil {
		if h != nil {
			C.osds_BindGroupRelease(h)
		}
		return nil, err
	}
	track("bindgroup", 1)
	return &BindGroup{h: h}, nil
}

// Release frees the bind group.
func (g *BindGroup) Release() {
	if g == nil || g.h == nil {
		return
	}
	C.osds_BindGroupRelease(g.h)
	g.h = nil
	track("bindgroup", -1)
}
