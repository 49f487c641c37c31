package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Surface is a window's drawable area that the GPU presents frames into.
type Surface struct {
	h    C.WGPUSurface
	inst *Instance
}

// WindowSource says which native window a surface is for. Exactly one group of fields
// is set: Xlib (XDisplay, XWindow), Wayland (WaylandDisplay, WaylandSurface), macOS
// (MetalLayer, a CAMetalLayer*), or Windows (HInstance, HWND).
type WindowSource struct {
	XDisplay       unsafe.Pointer
	XWindow        uint64
	WaylandDisplay unsafe.Pointer
	WaylandSurface unsafe.Pointer
	MetalLayer     unsafe.Pointer
	HInstance      unsafe.Pointer
	HWND           unsafe.Pointer
}

// CreateSurface creates a surface for a native window.
func (in *Instance) CreateSurface(src WindowSource) (*Surface, error) {
	var desc C.WGPUSurfaceDescriptor
	var chain *C.WGPUChainedStruct
	switch {
	case src.XDisplay != nil:
		s := (*C.WGPUSurfaceSourceXlibWindow)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUSurfaceSourceXlibWindow{}))))
		defer C.free(unsafe.Pointer(s))
		s.chain.sType = C.WGPUSType_SurfaceSourceXlibWindow
		s.display = src.XDisplay
		s.window = C.uint64_t(src.XWindow)
		chain = &s.chain
	case src.WaylandDisplay != nil:
		s := (*C.WGPUSurfaceSourceWaylandSurface)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUSurfaceSourceWaylandSurface{}))))
		defer C.free(unsafe.Pointer(s))
		s.chain.sType = C.WGPUSType_SurfaceSourceWaylandSurface
		s.display = src.WaylandDisplay
		s.surface = src.WaylandSurface
		chain = &s.chain
	case src.MetalLayer != nil:
		s := (*C.WGPUSurfaceSourceMetalLayer)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUSurfaceSourceMetalLayer{}))))
		defer C.free(unsafe.Pointer(s))
		s.chain.sType = C.WGPUSType_SurfaceSourceMetalLayer
		s.layer = src.MetalLayer
		chain = &s.chain
	case src.HWND != nil:
		s := (*C.WGPUSurfaceSourceWindowsHWND)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUSurfaceSourceWindowsHWND{}))))
		defer C.free(unsafe.Pointer(s))
		s.chain.sType = C.WGPUSType_SurfaceSourceWindowsHWND
		s.hinstance = src.HInstance
		s.hwnd = src.HWND
		chain = &s.chain
	default:
		return nil, fmt.Errorf("gpu: CreateSurface: no native window given")
	}
	desc.nextInChain = chain
	h := C.osds_InstanceCreateSurface(in.h, &desc)
	if h == nil {
		return nil, fmt.Errorf("gpu: the runtime could not create a surface for this window")
	}
	track("surface", 1)
	return &Surface{h: h, inst: in}, nil
}

// Texture formats used for presentation (webgpu.h WGPUTextureFormat values).
const (
	FormatRGBA8Unorm TextureFormat = 0x12
	FormatBGRA8Unorm TextureFormat = 0x17
)

// TextureFormat is a webgpu.h WGPUTextureFormat.
type TextureFormat uint32

// Formats returns the texture formats the surface can present with on adapter a.
func (s *Surface) Formats(a *Adapter) ([]TextureFormat, error) {
	var caps C.WGPUSurfaceCapabilities
	if C.osds_SurfaceGetCapabilities(s.h, a.h, &caps) != C.WGPUStatus_Success {
		return nil, fmt.Errorf("gpu: the surface is not compatible with adapter")
	}
	defer C.osds_SurfaceCapabilitiesFreeMembers(caps)
	var out []TextureFormat
	for _, f := range unsafe.Slice(caps.formats, int(caps.formatCount)) {
		out = append(out, TextureFormat(f))
	}
	return out, nil
}

// Configure (re)creates the swapchain at width×height with vsync (FIFO presentation);
// call it again after the window is resized.
func (s *Surface) Configure(d *Device, format TextureFormat, width, height int) error {
	if width < 1 || height < 1 {
		return fmt.Errorf("gpu: surface size %d×%d (want at least 1×1)", width, height)
	}
	var cfg C.WGPUSurfaceConfiguration
	cfg.device = d.h
	cfg.format = C.uint32_t(format)
	cfg.usage = 0x10 // WGPUTextureUsage_RenderAttachment
	cfg.width = C.uint32_t(width)
	cfg.height = C.uint32_t(height)
	cfg.alphaMode = 1   // WGPUCompositeAlphaMode_Opaque
	cfg.presentMode = 1 // WGPUPresentMode_Fifo (vsync)
	return d.scoped("configuring the surface", func() {
		C.osds_SurfaceConfigure(s.h, &cfg)
	})
}

// Present shows the frame drawn into the current texture. Its result is read from the
// device's error state: the header generation osds targets changed wgpuSurfacePresent's
// return type (void, later WGPUStatus), so the return value is not trusted.
func (s *Surface) Present(d *Device) error {
	C.osds_SurfacePresent(s.h)
	return d.Err()
}

// Release frees the surface.
func (s *Surface) Release() {
	if s == nil || s.h == nil {
		return
	}
	C.osds_SurfaceUnconfigure(s.h)
	C.osds_SurfaceRelease(s.h)
	s.h = nil
	track("surface", -1)
}
