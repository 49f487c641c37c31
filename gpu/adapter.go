package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Adapter is one physical (or software) device the runtime can drive.
type Adapter struct {
	h    C.WGPUAdapter
	inst *Instance
}

// Release frees the adapter.
func (a *Adapter) Release() {
	if a == nil || a.h == nil {
		return
	}
	if !a.inst.Wedged() {
		C.osds_AdapterRelease(a.h)
	}
	a.h = nil
	track("adapter", -1)
}

// AdapterType says what kind of device an adapter is (webgpu.h WGPUAdapterType).
type AdapterType uint32

// Adapter types, with the values of webgpu.h.
const (
	AdapterDiscreteGPU   AdapterType = 1
	AdapterIntegratedGPU AdapterType = 2
	AdapterCPU           AdapterType = 3
	AdapterUnknown       AdapterType = 4
)

func (t AdapterType) String() string {
	switch t {
	case AdapterDiscreteGPU:
		return "discrete GPU"
	case AdapterIntegratedGPU:
		return "integrated GPU"
	case AdapterCPU:
		return "CPU"
	}
	return "unknown"
}

// AdapterInfo describes an adapter.
type AdapterInfo struct {
	Vendor, Architecture, Device, Description string // Description holds the driver string
	Backend                                   Backend
	Type                                      AdapterType
	VendorID, DeviceID                        uint32
	SubgroupMinSize, SubgroupMaxSize          uint32
}

// Info returns the adapter's identification.
func (a *Adapter) Info() (AdapterInfo, error) {
	var ci C.WGPUAdapterInfo
	if C.osds_AdapterGetInfo(a.h, &ci) != C.WGPUStatus_Success {
		return AdapterInfo{}, fmt.Errorf("gpu: wgpuAdapterGetInfo failed")
	}
	defer C.osds_AdapterInfoFreeMembers(ci)
	return AdapterInfo{
		Vendor: view(ci.vendor), Architecture: view(ci.architecture),
		Device: view(ci.device), Description: view(ci.description),
		Backend: Backend(ci.backendType), Type: AdapterType(ci.adapterType),
		VendorID: uint32(ci.vendorID), DeviceID: uint32(ci.deviceID),
		SubgroupMinSize: uint32(ci.subgroupMinSize), SubgroupMaxSize: uint32(ci.subgroupMaxSize),
	}, nil
}

// Limits are the resource limits of an adapter or device (the subset osds reads).
type Limits struct {
	MaxBufferSize                     uint64
	MaxStorageBufferBindingSize       uint64
	MaxUniformBufferBindingSize       uint64
	MaxStorageBuffersPerShaderStage   uint32
	MaxBindGroups                     uint32
	MaxComputeWorkgroupStorageSize    uint32
	MaxComputeInvocationsPerWorkgroup uint32
	MaxComputeWorkgroupSizeX          uint32
	MaxComputeWorkgroupSizeY          uint32
	MaxComputeWorkgroupSizeZ          uint32
	MaxComputeWorkgroupsPerDimension  uint32
	MinStorageBufferOffsetAlignment   uint32
	MinUniformBufferOffsetAlignment   uint32
}

func limitsFromC(l *C.WGPULimits) Limits {
	return Limits{
		MaxBufferSize:                     uint64(l.maxBufferSize),
		MaxStorageBufferBindingSize:       uint64(l.maxStorageBufferBindingSize),
		MaxUniformBufferBindingSize:       uint64(l.maxUniformBufferBindingSize),
		MaxStorageBuffersPerShaderStage:   uint32(l.maxStorageBuffersPerShaderStage),
		MaxBindGroups:                     uint32(l.maxBindGroups),
		MaxComputeWorkgroupStorageSize:    uint32(l.maxComputeWorkgroupStorageSize),
		MaxComputeInvocationsPerWorkgroup: uint32(l.maxComputeInvocationsPerWorkgroup),
		MaxComputeWorkgroupSizeX:          uint32(l.maxComputeWorkgroupSizeX),
		MaxComputeWorkgroupSizeY:          uint32(l.maxComputeWorkgroupSizeY),
		MaxComputeWorkgroupSizeZ:          uint32(l.maxComputeWorkgroupSizeZ),
		MaxComputeWorkgroupsPerDimension:  uint32(l.maxComputeWorkgroupsPerDimension),
		MinStorageBufferOffsetAlignment:   uint32(l.minStorageBufferOffsetAlignment),
		MinUniformBufferOffsetAlignment:   uint32(l.minUniformBufferOffsetAlignment),
	}
}

func (a *Adapter) rawLimits() (C.WGPULimits, error) {
	var l C.WGPULimits
	if C.osds_AdapterGetLimits(a.h, &l) != C.WGPUStatus_Success {
		return l, fmt.Errorf("gpu: wgpuAdapterGetLimits failed")
	}
	return l, nil
}

// Limits returns the adapter's limits (what a device may request, not the spec minimums).
func (a *Adapter) Limits() (Limits, error) {
	l, err := a.rawLimits()
	if err != nil {
		return Limits{}, err
	}
	return limitsFromC(&l), nil
}

// Feature is an optional WebGPU capability (webgpu.h WGPUFeatureName).
type Feature uint32

// Features osds asks for when the adapter has them.
const (
	FeatureTimestampQuery Feature = 3
	FeatureShaderF16      Feature = 10
	FeatureSubgroups      Feature = 17
)

var featureNames = map[Feature]string{
	1: "depth-clip-control", 2: "depth32float-stencil8", 3: "timestamp-query",
	4: "texture-compression-bc", 5: "texture-compression-bc-sliced-3d", 6: "texture-compression-etc2",
	7: "texture-compression-astc", 8: "texture-compression-astc-sliced-3d", 9: "indirect-first-instance",
	10: "shader-f16", 11: "rg11b10ufloat-renderable", 12: "bgra8unorm-storage",
	13: "float32-filterable", 14: "float32-blendable", 15: "clip-distances",
	16: "dual-source-blending", 17: "subgroups", 18: "core-features-and-limits",
}

func (f Feature) String() string {
	if n, ok := featureNames[f]; ok {
		return n
	}
	return fmt.Sprintf("native-0x%05x", uint32(f))
}

// Features lists the adapter's optional features.
func (a *Adapter) Features() []Feature {
	var sf C.WGPUSupportedFeatures
	C.osds_AdapterGetFeatures(a.h, &sf)
	defer C.osds_SupportedFeaturesFreeMembers(sf)
	fs := unsafe.Slice(sf.features, int(sf.featureCount))
	out := make([]Feature, len(fs))
	for i, f := range fs {
		out[i] = Feature(f)
	}
	return out
}

// HasFeature reports whether the adapter supports f.
func (a *Adapter) HasFeature(f Feature) bool {
	for _, g := range a.Features() {
		if g == f {
			return true
		}
	}
	return false
}
