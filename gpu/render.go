package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// SurfaceTexture is the swapchain image to draw the next frame into.
type SurfaceTexture struct {
	tex  C.WGPUTexture
	view C.WGPUTextureView
}

// CurrentTexture returns the texture of the next frame. Outdated or lost surfaces
// (after a resize) return ErrSurfaceOutdated: reconfigure and try again.
func (s *Surface) CurrentTexture() (*SurfaceTexture, error) {
	var st C.WGPUSurfaceTexture
	C.osds_SurfaceGetCurrentTexture(s.h, &st)
	switch st.status {
	case 1, 2: // SuccessOptimal, SuccessSuboptimal
	case 4, 5: // Outdated, Lost
		if st.texture != nil {
			C.osds_TextureRelease(st.texture)
		}
		return nil, ErrSurfaceOutdated
	default:
		if st.texture != nil {
			C.osds_TextureRelease(st.texture)
		}
		return nil, fmt.Errorf("gpu: getting the surface texture failed (status %d)", uint32(st.status))
	}
	view := C.osds_TextureCreateView(st.texture, nil)
	track("texture", 1)
	return &SurfaceTexture{tex: st.texture, view: view}, nil
}

// ErrSurfaceOutdated says the surface must be reconfigured (the window changed size).
var ErrSurfaceOutdated = fmt.Errorf("gpu: surface outdated; reconfigure it")

// Release frees the frame's texture and view (after Present).
func (t *SurfaceTexture) Release() {
	if t == nil || t.tex == nil {
		return
	}
	C.osds_TextureViewRelease(t.view)
	C.osds_TextureRelease(t.tex)
	t.tex = nil
	track("texture", -1)
}

// RenderPipeline draws full-screen passes: a vertex and a fragment entry point of one
// WGSL module, no vertex buffers, one color target, triangle lists.
type RenderPipeline struct {
	h C.WGPURenderPipeline
	d *Device
}

// CreateRenderPipeline builds a render pipeline with an automatic layout.
func (d *Device) CreateRenderPipeline(label string, m *ShaderModule, vertexEntry, fragmentEntry string, format TextureFormat) (*RenderPipeline, error) {
	desc := (*C.WGPURenderPipelineDescriptor)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPURenderPipelineDescriptor{}))))
	defer C.free(unsafe.Pointer(desc))
	frag := (*C.WGPUFragmentState)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUFragmentState{}))))
	defer C.free(unsafe.Pointer(frag))
	target := (*C.WGPUColorTargetState)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUColorTargetState{}))))
	defer C.free(unsafe.Pointer(target))
	l, f1 := cview(label)
	defer f1()
	ve, f2 := cview(vertexEntry)
	defer f2()
	fe, f3 := cview(fragmentEntry)
	defer f3()
	desc.label = l
	desc.vertex.module = m.h
	desc.vertex.entryPoint = ve
	desc.primitive.topology = 4  // TriangleList
	desc.primitive.frontFace = 1 // CCW
	desc.primitive.cullMode = 1  // None
	desc.multisample.count = 1
	desc.multisample.mask = 0xFFFFFFFF
	target.format = C.uint32_t(format)
	target.writeMask = 0xF
	frag.module = m.h
	frag.entryPoint = fe
	frag.targetCount = 1
	frag.targets = target
	desc.fragment = frag
	var h C.WGPURenderPipeline
	err := d.scoped("creating render pipeline "+label, func() {
		h = C.osds_DeviceCreateRenderPipeline(d.h, desc)
	})
	if err != nil {
		if h != nil {
			C.osds_RenderPipelineRelease(h)
		}
		return nil, err
	}
	track("renderpipeline", 1)
	return &RenderPipeline{h: h, d: d}, nil
}

// BindGroupLayout returns the (automatic) layout of bind group index.
func (p *RenderPipeline) BindGroupLayout(index int) (*BindGroupLayout, error) {
	return p.d.scopedLayout(fmt.Sprintf("getting render bind group layout %d", index), func() C.WGPUBindGroupLayout {
		return C.osds_RenderPipelineGetBindGroupLayout(p.h, C.uint32_t(index))
	})
}

// Release frees the pipeline.
func (p *RenderPipeline) Release() {
	if p == nil || p.h == nil {
		return
	}
	C.osds_RenderPipelineRelease(p.h)
	p.h = nil
	track("renderpipeline", -1)
}

// DrawFullscreen records a render pass into target that clears it to the given gray
// level and draws vertexCount vertices (3 for one full-screen triangle) with pipeline p
// and bind group g at index 0.
func (e *CommandEncoder) DrawFullscreen(target *SurfaceTexture, p *RenderPipeline, g *BindGroup, vertexCount uint32, clear float64) {
	att := (*C.WGPURenderPassColorAttachment)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPURenderPassColorAttachment{}))))
	defer C.free(unsafe.Pointer(att))
	att.view = target.view
	att.depthSlice = 0xFFFFFFFF // WGPU_DEPTH_SLICE_UNDEFINED
	att.loadOp = 2              // Clear
	att.storeOp = 1             // Store
	att.clearValue = C.WGPUColor{r: C.double(clear), g: C.double(clear), b: C.double(clear), a: 1}
	var desc C.WGPURenderPassDescriptor
	desc.colorAttachmentCount = 1
	desc.colorAttachments = att
	pass := C.osds_CommandEncoderBeginRenderPass(e.h, &desc)
	C.osds_RenderPassEncoderSetPipeline(pass, p.h)
	if g != nil {
		C.osds_RenderPassEncoderSetBindGroup(pass, 0, g.h, 0, nil)
	}
	C.osds_RenderPassEncoderDraw(pass, C.uint32_t(vertexCount), 1, 0, 0)
	C.osds_RenderPassEncoderEnd(pass)
	C.osds_RenderPassEncoderRelease(pass)
}
