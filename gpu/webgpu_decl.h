// webgpu_decl.h — the part of the standard webgpu.h C API that osds uses, declared by hand.
//
// Layouts follow the webgpu.h generation that Dawn ships in bun-webgpu 0.1.x (StringView
// labels, CallbackInfo structs passed by value, futures, 64-bit flags). Only the fields
// osds sets or reads matter, but every struct lists all of its fields in header order so
// the C compiler reproduces the library's layout. Functions are reached through a table of
// pointers filled by dlopen/LoadLibrary at run time (loader.c), so nothing links against
// the runtime at build time.
#ifndef OSDS_WEBGPU_DECL_H
#define OSDS_WEBGPU_DECL_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t WGPUBool;
typedef uint64_t WGPUFlags;

typedef struct WGPUInstanceImpl *WGPUInstance;
typedef struct WGPUAdapterImpl *WGPUAdapter;
typedef struct WGPUDeviceImpl *WGPUDevice;
typedef struct WGPUQueueImpl *WGPUQueue;
typedef struct WGPUBufferImpl *WGPUBuffer;
typedef struct WGPUShaderModuleImpl *WGPUShaderModule;
typedef struct WGPUBindGroupLayoutImpl *WGPUBindGroupLayout;
typedef struct WGPUBindGroupImpl *WGPUBindGroup;
typedef struct WGPUPipelineLayoutImpl *WGPUPipelineLayout;
typedef struct WGPUComputePipelineImpl *WGPUComputePipeline;
typedef struct WGPURenderPipelineImpl *WGPURenderPipeline;
typedef struct WGPUCommandEncoderImpl *WGPUCommandEncoder;
typedef struct WGPUCommandBufferImpl *WGPUCommandBuffer;
typedef struct WGPUComputePassEncoderImpl *WGPUComputePassEncoder;
typedef struct WGPURenderPassEncoderImpl *WGPURenderPassEncoder;
typedef struct WGPUQuerySetImpl *WGPUQuerySet;
typedef struct WGPUSurfaceImpl *WGPUSurface;
typedef struct WGPUTextureImpl *WGPUTexture;
typedef struct WGPUTextureViewImpl *WGPUTextureView;
typedef struct WGPUSamplerImpl *WGPUSampler;

#define WGPU_STRLEN SIZE_MAX
#define WGPU_WHOLE_SIZE UINT64_MAX

// Enum values from webgpu.h (core values; Dawn extensions start at 0x00050000).
enum {
	WGPUSType_ShaderSourceWGSL = 0x00000002,
	WGPUSType_SurfaceSourceMetalLayer = 0x00000004,
	WGPUSType_SurfaceSourceWindowsHWND = 0x00000005,
	WGPUSType_SurfaceSourceXlibWindow = 0x00000006,
	WGPUSType_SurfaceSourceWaylandSurface = 0x00000007,
	WGPUSType_DawnTogglesDescriptor = 0x0005000A,

	WGPUCallbackMode_AllowProcessEvents = 0x00000002,
	WGPUCallbackMode_AllowSpontaneous = 0x00000003,

	WGPUStatus_Success = 0x00000001,

	WGPUErrorFilter_Validation = 0x00000001,
	WGPUErrorFilter_OutOfMemory = 0x00000002,
	WGPUErrorFilter_Internal = 0x00000003,

	WGPUErrorType_NoError = 0x00000001,

	WGPUBufferBindingType_Uniform = 0x00000002,
	WGPUBufferBindingType_Storage = 0x00000003,
	WGPUBufferBindingType_ReadOnlyStorage = 0x00000004,

	WGPUQueryType_Timestamp = 0x00000002,
	WGPUFeatureName_TimestampQuery = 0x00000003,

	WGPUCompilationInfoRequestStatus_Success = 0x00000001,
	WGPUCompilationMessageType_Error = 0x00000001,
	WGPUCompilationMessageType_Warning = 0x00000002,
	WGPUCompilationMessageType_Info = 0x00000003,
};

typedef struct WGPUStringView {
	char const *data;
	size_t length;
} WGPUStringView;

typedef struct WGPUChainedStruct {
	struct WGPUChainedStruct *next;
	uint32_t sType;
} WGPUChainedStruct;

typedef struct WGPUFuture {
	uint64_t id;
} WGPUFuture;

// All asynchronous callbacks receive two user pointers; osds passes a C-allocated result
// record in userdata1 and never calls back into Go (see loader.c).
typedef void (*WGPURequestAdapterCallback)(uint32_t status, WGPUAdapter adapter, WGPUStringView message, void *u1, void *u2);
typedef void (*WGPURequestDeviceCallback)(uint32_t status, WGPUDevice device, WGPUStringView message, void *u1, void *u2);
typedef void (*WGPUBufferMapCallback)(uint32_t status, WGPUStringView message, void *u1, void *u2);
typedef void (*WGPUPopErrorScopeCallback)(uint32_t status, uint32_t type, WGPUStringView message, void *u1, void *u2);
// WGPUQueueWorkDoneCallback changed between header versions; see on_work_done in loader.c.
typedef void (*WGPUDeviceLostCallback)(WGPUDevice const *device, uint32_t reason, WGPUStringView message, void *u1, void *u2);
typedef void (*WGPUUncapturedErrorCallback)(WGPUDevice const *device, uint32_t type, WGPUStringView message, void *u1, void *u2);
struct WGPUCompilationInfo;
typedef void (*WGPUCompilationInfoCallback)(uint32_t status, struct WGPUCompilationInfo const *info, void *u1, void *u2);

// Every *CallbackInfo struct of webgpu.h has this layout; only the callback type differs.
typedef struct WGPUCallbackInfo {
	WGPUChainedStruct *nextInChain;
	uint32_t mode;
	void *callback;
	void *userdata1;
	void *userdata2;
} WGPUCallbackInfo;

typedef struct WGPUUncapturedErrorCallbackInfo {
	WGPUChainedStruct *nextInChain;
	WGPUUncapturedErrorCallback callback;
	void *userdata1;
	void *userdata2;
} WGPUUncapturedErrorCallbackInfo;

typedef struct WGPULimits {
	WGPUChainedStruct *nextInChain;
	uint32_t maxTextureDimension1D;
	uint32_t maxTextureDimension2D;
	uint32_t maxTextureDimension3D;
	uint32_t maxTextureArrayLayers;
	uint32_t maxBindGroups;
	uint32_t maxBindGroupsPlusVertexBuffers;
	uint32_t maxBindingsPerBindGroup;
	uint32_t maxDynamicUniformBuffersPerPipelineLayout;
	uint32_t maxDynamicStorageBuffersPerPipelineLayout;
	uint32_t maxSampledTexturesPerShaderStage;
	uint32_t maxSamplersPerShaderStage;
	uint32_t maxStorageBuffersPerShaderStage;
	uint32_t maxStorageTexturesPerShaderStage;
	uint32_t maxUniformBuffersPerShaderStage;
	uint64_t maxUniformBufferBindingSize;
	uint64_t maxStorageBufferBindingSize;
	uint32_t minUniformBufferOffsetAlignment;
	uint32_t minStorageBufferOffsetAlignment;
	uint32_t maxVertexBuffers;
	uint64_t maxBufferSize;
	uint32_t maxVertexAttributes;
	uint32_t maxVertexBufferArrayStride;
	uint32_t maxInterStageShaderVariables;
	uint32_t maxColorAttachments;
	uint32_t maxColorAttachmentBytesPerSample;
	uint32_t maxComputeWorkgroupStorageSize;
	uint32_t maxComputeInvocationsPerWorkgroup;
	uint32_t maxComputeWorkgroupSizeX;
	uint32_t maxComputeWorkgroupSizeY;
	uint32_t maxComputeWorkgroupSizeZ;
	uint32_t maxComputeWorkgroupsPerDimension;
	uint32_t maxImmediateSize;
	uint32_t maxStorageBuffersInVertexStage;
	uint32_t maxStorageTexturesInVertexStage;
	uint32_t maxStorageBuffersInFragmentStage;
	uint32_t maxStorageTexturesInFragmentStage;
} WGPULimits;

typedef struct WGPUAdapterInfo {
	WGPUChainedStruct *nextInChain;
	WGPUStringView vendor;
	WGPUStringView architecture;
	WGPUStringView device;
	WGPUStringView description;
	uint32_t backendType;
	uint32_t adapterType;
	uint32_t vendorID;
	uint32_t deviceID;
	uint32_t subgroupMinSize;
	uint32_t subgroupMaxSize;
} WGPUAdapterInfo;

typedef struct WGPUSupportedFeatures {
	size_t featureCount;
	uint32_t const *features;
} WGPUSupportedFeatures;

typedef struct WGPURequestAdapterOptions {
	WGPUChainedStruct *nextInChain;
	uint32_t featureLevel;
	uint32_t powerPreference;
	WGPUBool forceFallbackAdapter;
	uint32_t backendType;
	WGPUSurface compatibleSurface;
} WGPURequestAdapterOptions;

typedef struct WGPUDawnTogglesDescriptor {
	WGPUChainedStruct chain;
	size_t enabledToggleCount;
	char const *const *enabledToggles;
	size_t disabledToggleCount;
	char const *const *disabledToggles;
} WGPUDawnTogglesDescriptor;

typedef struct WGPUQueueDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
} WGPUQueueDescriptor;

typedef struct WGPUDeviceDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	size_t requiredFeatureCount;
	uint32_t const *requiredFeatures;
	WGPULimits const *requiredLimits;
	WGPUQueueDescriptor defaultQueue;
	WGPUCallbackInfo deviceLostCallbackInfo;
	WGPUUncapturedErrorCallbackInfo uncapturedErrorCallbackInfo;
} WGPUDeviceDescriptor;

typedef struct WGPUBufferDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	WGPUFlags usage;
	uint64_t size;
	WGPUBool mappedAtCreation;
} WGPUBufferDescriptor;

typedef struct WGPUShaderModuleDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
} WGPUShaderModuleDescriptor;

typedef struct WGPUShaderSourceWGSL {
	WGPUChainedStruct chain;
	WGPUStringView code;
} WGPUShaderSourceWGSL;

typedef struct WGPUCompilationMessage {
	WGPUChainedStruct *nextInChain;
	WGPUStringView message;
	uint32_t type;
	uint64_t lineNum;
	uint64_t linePos;
	uint64_t offset;
	uint64_t length;
} WGPUCompilationMessage;

typedef struct WGPUCompilationInfo {
	WGPUChainedStruct *nextInChain;
	size_t messageCount;
	WGPUCompilationMessage const *messages;
} WGPUCompilationInfo;

typedef struct WGPUConstantEntry {
	WGPUChainedStruct *nextInChain;
	WGPUStringView key;
	double value;
} WGPUConstantEntry;

typedef struct WGPUComputeState {
	WGPUChainedStruct *nextInChain;
	WGPUShaderModule module;
	WGPUStringView entryPoint;
	size_t constantCount;
	WGPUConstantEntry const *constants;
} WGPUComputeState;

typedef struct WGPUComputePipelineDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	WGPUPipelineLayout layout;
	WGPUComputeState compute;
} WGPUComputePipelineDescriptor;

typedef struct WGPUBufferBindingLayout {
	WGPUChainedStruct *nextInChain;
	uint32_t type;
	WGPUBool hasDynamicOffset;
	uint64_t minBindingSize;
} WGPUBufferBindingLayout;

typedef struct WGPUSamplerBindingLayout {
	WGPUChainedStruct *nextInChain;
	uint32_t type;
} WGPUSamplerBindingLayout;

typedef struct WGPUTextureBindingLayout {
	WGPUChainedStruct *nextInChain;
	uint32_t sampleType;
	uint32_t viewDimension;
	WGPUBool multisampled;
} WGPUTextureBindingLayout;

typedef struct WGPUStorageTextureBindingLayout {
	WGPUChainedStruct *nextInChain;
	uint32_t access;
	uint32_t format;
	uint32_t viewDimension;
} WGPUStorageTextureBindingLayout;

typedef struct WGPUBindGroupLayoutEntry {
	WGPUChainedStruct *nextInChain;
	uint32_t binding;
	WGPUFlags visibility;
	uint32_t bindingArraySize;
	WGPUBufferBindingLayout buffer;
	WGPUSamplerBindingLayout sampler;
	WGPUTextureBindingLayout texture;
	WGPUStorageTextureBindingLayout storageTexture;
} WGPUBindGroupLayoutEntry;

typedef struct WGPUBindGroupLayoutDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	size_t entryCount;
	WGPUBindGroupLayoutEntry const *entries;
} WGPUBindGroupLayoutDescriptor;

typedef struct WGPUBindGroupEntry {
	WGPUChainedStruct *nextInChain;
	uint32_t binding;
	WGPUBuffer buffer;
	uint64_t offset;
	uint64_t size;
	WGPUSampler sampler;
	WGPUTextureView textureView;
} WGPUBindGroupEntry;

typedef struct WGPUBindGroupDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	WGPUBindGroupLayout layout;
	size_t entryCount;
	WGPUBindGroupEntry const *entries;
} WGPUBindGroupDescriptor;

typedef struct WGPUPipelineLayoutDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	size_t bindGroupLayoutCount;
	WGPUBindGroupLayout const *bindGroupLayouts;
	uint32_t immediateSize;
} WGPUPipelineLayoutDescriptor;

typedef struct WGPUCommandEncoderDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
} WGPUCommandEncoderDescriptor;

typedef struct WGPUCommandBufferDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
} WGPUCommandBufferDescriptor;

typedef struct WGPUPassTimestampWrites {
	WGPUChainedStruct *nextInChain;
	WGPUQuerySet querySet;
	uint32_t beginningOfPassWriteIndex;
	uint32_t endOfPassWriteIndex;
} WGPUPassTimestampWrites;

typedef struct WGPUComputePassDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	WGPUPassTimestampWrites const *timestampWrites;
} WGPUComputePassDescriptor;

typedef struct WGPUQuerySetDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	uint32_t type;
	uint32_t count;
} WGPUQuerySetDescriptor;

typedef struct WGPUSurfaceDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
} WGPUSurfaceDescriptor;

typedef struct WGPUSurfaceSourceXlibWindow {
	WGPUChainedStruct chain;
	void *display;
	uint64_t window;
} WGPUSurfaceSourceXlibWindow;

typedef struct WGPUSurfaceSourceWaylandSurface {
	WGPUChainedStruct chain;
	void *display;
	void *surface;
} WGPUSurfaceSourceWaylandSurface;

typedef struct WGPUSurfaceSourceMetalLayer {
	WGPUChainedStruct chain;
	void *layer;
} WGPUSurfaceSourceMetalLayer;

typedef struct WGPUSurfaceSourceWindowsHWND {
	WGPUChainedStruct chain;
	void *hinstance;
	void *hwnd;
} WGPUSurfaceSourceWindowsHWND;

typedef struct WGPUSurfaceCapabilities {
	WGPUChainedStruct *nextInChain;
	WGPUFlags usages;
	size_t formatCount;
	uint32_t const *formats;
	size_t presentModeCount;
	uint32_t const *presentModes;
	size_t alphaModeCount;
	uint32_t const *alphaModes;
} WGPUSurfaceCapabilities;

typedef struct WGPUSurfaceConfiguration {
	WGPUChainedStruct *nextInChain;
	WGPUDevice device;
	uint32_t format;
	WGPUFlags usage;
	uint32_t width;
	uint32_t height;
	size_t viewFormatCount;
	uint32_t const *viewFormats;
	uint32_t alphaMode;
	uint32_t presentMode;
} WGPUSurfaceConfiguration;

typedef struct WGPUSurfaceTexture {
	WGPUChainedStruct *nextInChain;
	WGPUTexture texture;
	uint32_t status;
} WGPUSurfaceTexture;

// ---- rendering (the viewer draws sample grids straight from storage buffers) ----------

typedef struct WGPUVertexState {
	WGPUChainedStruct *nextInChain;
	WGPUShaderModule module;
	WGPUStringView entryPoint;
	size_t constantCount;
	WGPUConstantEntry const *constants;
	size_t bufferCount;
	void const *buffers;
} WGPUVertexState;

typedef struct WGPUPrimitiveState {
	WGPUChainedStruct *nextInChain;
	uint32_t topology;
	uint32_t stripIndexFormat;
	uint32_t frontFace;
	uint32_t cullMode;
	WGPUBool unclippedDepth;
} WGPUPrimitiveState;

typedef struct WGPUMultisampleState {
	WGPUChainedStruct *nextInChain;
	uint32_t count;
	uint32_t mask;
	WGPUBool alphaToCoverageEnabled;
} WGPUMultisampleState;

typedef struct WGPUColorTargetState {
	WGPUChainedStruct *nextInChain;
	uint32_t format;
	void const *blend;
	WGPUFlags writeMask;
} WGPUColorTargetState;

typedef struct WGPUFragmentState {
	WGPUChainedStruct *nextInChain;
	WGPUShaderModule module;
	WGPUStringView entryPoint;
	size_t constantCount;
	WGPUConstantEntry const *constants;
	size_t targetCount;
	WGPUColorTargetState const *targets;
} WGPUFragmentState;

typedef struct WGPURenderPipelineDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	WGPUPipelineLayout layout;
	WGPUVertexState vertex;
	WGPUPrimitiveState primitive;
	void const *depthStencil;
	WGPUMultisampleState multisample;
	WGPUFragmentState const *fragment;
} WGPURenderPipelineDescriptor;

typedef struct WGPUColor {
	double r, g, b, a;
} WGPUColor;

typedef struct WGPURenderPassColorAttachment {
	WGPUChainedStruct *nextInChain;
	WGPUTextureView view;
	uint32_t depthSlice;
	WGPUTextureView resolveTarget;
	uint32_t loadOp;
	uint32_t storeOp;
	WGPUColor clearValue;
} WGPURenderPassColorAttachment;

typedef struct WGPURenderPassDescriptor {
	WGPUChainedStruct *nextInChain;
	WGPUStringView label;
	size_t colorAttachmentCount;
	WGPURenderPassColorAttachment const *colorAttachments;
	void const *depthStencilAttachment;
	WGPUQuerySet occlusionQuerySet;
	WGPUPassTimestampWrites const *timestampWrites;
} WGPURenderPassDescriptor;

#endif
