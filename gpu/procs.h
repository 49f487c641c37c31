// procs.h — the table of webgpu.h entry points osds calls, the callback records that the
// asynchronous calls fill, and one static inline wrapper per entry point (cgo cannot call
// a C function pointer directly). The table is filled by osds_load in loader.c.
#ifndef OSDS_PROCS_H
#define OSDS_PROCS_H

#include <pthread.h>
#include <stdlib.h>
#include "webgpu_decl.h"

// X(return type, name without the wgpu prefix, parameter list, argument list)
#define OSDS_PROCS(X) \
	X(WGPUInstance, CreateInstance, (void const *d), (d)) \
	X(void, InstanceRelease, (WGPUInstance i), (i)) \
	X(void, InstanceProcessEvents, (WGPUInstance i), (i)) \
	X(WGPUFuture, InstanceRequestAdapter, (WGPUInstance i, WGPURequestAdapterOptions const *o, WGPUCallbackInfo c), (i, o, c)) \
	X(WGPUSurface, InstanceCreateSurface, (WGPUInstance i, WGPUSurfaceDescriptor const *d), (i, d)) \
	X(uint32_t, AdapterGetInfo, (WGPUAdapter a, WGPUAdapterInfo *info), (a, info)) \
	X(void, AdapterInfoFreeMembers, (WGPUAdapterInfo info), (info)) \
	X(uint32_t, AdapterGetLimits, (WGPUAdapter a, WGPULimits *l), (a, l)) \
	X(void, AdapterGetFeatures, (WGPUAdapter a, WGPUSupportedFeatures *f), (a, f)) \
	X(void, SupportedFeaturesFreeMembers, (WGPUSupportedFeatures f), (f)) \
	X(WGPUFuture, AdapterRequestDevice, (WGPUAdapter a, WGPUDeviceDescriptor const *d, WGPUCallbackInfo c), (a, d, c)) \
	X(void, AdapterRelease, (WGPUAdapter a), (a)) \
	X(uint32_t, DeviceGetLimits, (WGPUDevice d, WGPULimits *l), (d, l)) \
	X(WGPUQueue, DeviceGetQueue, (WGPUDevice d), (d)) \
	X(void, DevicePushErrorScope, (WGPUDevice d, uint32_t filter), (d, filter)) \
	X(WGPUFuture, DevicePopErrorScope, (WGPUDevice d, WGPUCallbackInfo c), (d, c)) \
	X(WGPUBuffer, DeviceCreateBuffer, (WGPUDevice d, WGPUBufferDescriptor const *b), (d, b)) \
	X(WGPUShaderModule, DeviceCreateShaderModule, (WGPUDevice d, WGPUShaderModuleDescriptor const *s), (d, s)) \
	X(WGPUComputePipeline, DeviceCreateComputePipeline, (WGPUDevice d, WGPUComputePipelineDescriptor const *p), (d, p)) \
	X(WGPUBindGroupLayout, DeviceCreateBindGroupLayout, (WGPUDevice d, WGPUBindGroupLayoutDescriptor const *l), (d, l)) \
	X(WGPUBindGroup, DeviceCreateBindGroup, (WGPUDevice d, WGPUBindGroupDescriptor const *g), (d, g)) \
	X(WGPUPipelineLayout, DeviceCreatePipelineLayout, (WGPUDevice d, WGPUPipelineLayoutDescriptor const *l), (d, l)) \
	X(WGPUCommandEncoder, DeviceCreateCommandEncoder, (WGPUDevice d, WGPUCommandEncoderDescriptor const *e), (d, e)) \
	X(WGPUQuerySet, DeviceCreateQuerySet, (WGPUDevice d, WGPUQuerySetDescriptor const *q), (d, q)) \
	X(void, DeviceDestroy, (WGPUDevice d), (d)) \
	X(void, DeviceRelease, (WGPUDevice d), (d)) \
	X(void, QueueSubmit, (WGPUQueue q, size_t n, WGPUCommandBuffer const *c), (q, n, c)) \
	X(void, QueueWriteBuffer, (WGPUQueue q, WGPUBuffer b, uint64_t off, void const *data, size_t size), (q, b, off, data, size)) \
	X(WGPUFuture, QueueOnSubmittedWorkDone, (WGPUQueue q, WGPUCallbackInfo c), (q, c)) \
	X(void, QueueRelease, (WGPUQueue q), (q)) \
	X(WGPUFuture, BufferMapAsync, (WGPUBuffer b, WGPUFlags mode, size_t off, size_t size, WGPUCallbackInfo c), (b, mode, off, size, c)) \
	X(void const *, BufferGetConstMappedRange, (WGPUBuffer b, size_t off, size_t size), (b, off, size)) \
	X(void *, BufferGetMappedRange, (WGPUBuffer b, size_t off, size_t size), (b, off, size)) \
	X(void, BufferUnmap, (WGPUBuffer b), (b)) \
	X(void, BufferDestroy, (WGPUBuffer b), (b)) \
	X(void, BufferRelease, (WGPUBuffer b), (b)) \
	X(WGPUFuture, ShaderModuleGetCompilationInfo, (WGPUShaderModule m, WGPUCallbackInfo c), (m, c)) \
	X(void, ShaderModuleRelease, (WGPUShaderModule m), (m)) \
	X(WGPUBindGroupLayout, ComputePipelineGetBindGroupLayout, (WGPUComputePipeline p, uint32_t i), (p, i)) \
	X(void, ComputePipelineRelease, (WGPUComputePipeline p), (p)) \
	X(void, BindGroupLayoutRelease, (WGPUBindGroupLayout l), (l)) \
	X(void, BindGroupRelease, (WGPUBindGroup g), (g)) \
	X(void, PipelineLayoutRelease, (WGPUPipelineLayout l), (l)) \
	X(WGPUComputePassEncoder, CommandEncoderBeginComputePass, (WGPUCommandEncoder e, WGPUComputePassDescriptor const *d), (e, d)) \
	X(void, CommandEncoderCopyBufferToBuffer, (WGPUCommandEncoder e, WGPUBuffer s, uint64_t so, WGPUBuffer d, uint64_t dof, uint64_t n), (e, s, so, d, dof, n)) \
	X(void, CommandEncoderClearBuffer, (WGPUCommandEncoder e, WGPUBuffer b, uint64_t off, uint64_t n), (e, b, off, n)) \
	X(void, CommandEncoderResolveQuerySet, (WGPUCommandEncoder e, WGPUQuerySet q, uint32_t first, uint32_t n, WGPUBuffer d, uint64_t off), (e, q, first, n, d, off)) \
	X(WGPUCommandBuffer, CommandEncoderFinish, (WGPUCommandEncoder e, WGPUCommandBufferDescriptor const *d), (e, d)) \
	X(void, CommandEncoderRelease, (WGPUCommandEncoder e), (e)) \
	X(void, CommandBufferRelease, (WGPUCommandBuffer c), (c)) \
	X(void, ComputePassEncoderSetPipeline, (WGPUComputePassEncoder p, WGPUComputePipeline pl), (p, pl)) \
	X(void, ComputePassEncoderSetBindGroup, (WGPUComputePassEncoder p, uint32_t i, WGPUBindGroup g, size_t n, uint32_t const *offs), (p, i, g, n, offs)) \
	X(void, ComputePassEncoderDispatchWorkgroups, (WGPUComputePassEncoder p, uint32_t x, uint32_t y, uint32_t z), (p, x, y, z)) \
	X(void, ComputePassEncoderEnd, (WGPUComputePassEncoder p), (p)) \
	X(void, ComputePassEncoderRelease, (WGPUComputePassEncoder p), (p)) \
	X(void, QuerySetDestroy, (WGPUQuerySet q), (q)) \
	X(void, QuerySetRelease, (WGPUQuerySet q), (q)) \
	X(uint32_t, SurfaceGetCapabilities, (WGPUSurface s, WGPUAdapter a, WGPUSurfaceCapabilities *c), (s, a, c)) \
	X(void, SurfaceCapabilitiesFreeMembers, (WGPUSurfaceCapabilities c), (c)) \
	X(void, SurfaceConfigure, (WGPUSurface s, WGPUSurfaceConfiguration const *c), (s, c)) \
	X(void, SurfaceUnconfigure, (WGPUSurface s), (s)) \
	X(void, SurfaceGetCurrentTexture, (WGPUSurface s, WGPUSurfaceTexture *t), (s, t)) \
	X(void, SurfacePresent, (WGPUSurface s), (s)) \
	X(void, SurfaceRelease, (WGPUSurface s), (s)) \
	X(void, TextureRelease, (WGPUTexture t), (t)) \
	X(WGPUTextureView, TextureCreateView, (WGPUTexture t, void const *d), (t, d)) \
	X(void, TextureViewRelease, (WGPUTextureView v), (v)) \
	X(WGPURenderPipeline, DeviceCreateRenderPipeline, (WGPUDevice d, WGPURenderPipelineDescriptor const *p), (d, p)) \
	X(WGPUBindGroupLayout, RenderPipelineGetBindGroupLayout, (WGPURenderPipeline p, uint32_t i), (p, i)) \
	X(void, RenderPipelineRelease, (WGPURenderPipeline p), (p)) \
	X(WGPURenderPassEncoder, CommandEncoderBeginRenderPass, (WGPUCommandEncoder e, WGPURenderPassDescriptor const *d), (e, d)) \
	X(void, RenderPassEncoderSetPipeline, (WGPURenderPassEncoder p, WGPURenderPipeline pl), (p, pl)) \
	X(void, RenderPassEncoderSetBindGroup, (WGPURenderPassEncoder p, uint32_t i, WGPUBindGroup g, size_t n, uint32_t const *offs), (p, i, g, n, offs)) \
	X(void, RenderPassEncoderDraw, (WGPURenderPassEncoder p, uint32_t vc, uint32_t ic, uint32_t fv, uint32_t fi), (p, vc, ic, fv, fi)) \
	X(void, RenderPassEncoderEnd, (WGPURenderPassEncoder p), (p)) \
	X(void, RenderPassEncoderRelease, (WGPURenderPassEncoder p), (p))

#define OSDS_FIELD(ret, name, params, args) ret(*name) params;
typedef struct osds_procs {
	OSDS_PROCS(OSDS_FIELD)
} osds_procs;
#undef OSDS_FIELD

extern osds_procs osds_P;
// osds_is_dawn is 1 when the library exports Dawn's wgpuDeviceTick.
extern int osds_is_dawn;

#define OSDS_WRAP(ret, name, params, args) \
	static inline ret osds_##name params { return osds_P.name args; }
OSDS_PROCS(OSDS_WRAP)
#undef OSDS_WRAP

// osds_load opens the runtime library at path and fills osds_P. It returns 0 on success,
// else writes a message into err (dlerror's text or the first missing symbol).
int osds_load(char const *path, char *err, size_t errlen);

// osds_result is what one asynchronous call leaves behind: done turns 1 when its callback
// has run. message is malloc'd (or NULL) and freed by osds_result_free.
typedef struct osds_result {
	int done;
	uint32_t status;
	uint32_t type;
	void *handle;
	char *message;
	// Compilation info (shader modules): parallel arrays of messageCount entries.
	size_t count;
	uint32_t *msgTypes;
	uint64_t *lines;
	uint64_t *cols;
	char **msgs;
} osds_result;

osds_result *osds_result_new(void);
void osds_result_free(osds_result *r);

WGPUCallbackInfo osds_adapter_callback(osds_result *r);
WGPUCallbackInfo osds_device_callback(osds_result *r);
WGPUCallbackInfo osds_map_callback(osds_result *r);
WGPUCallbackInfo osds_pop_callback(osds_result *r);
WGPUCallbackInfo osds_work_done_callback(osds_result *r);
WGPUCallbackInfo osds_compilation_callback(osds_result *r);

// osds_device_state collects what a device reports outside any call: uncaptured errors
// (appended, capped) and device loss. Written from any thread, read from Go under mu.
typedef struct osds_device_state {
	pthread_mutex_t mu;
	char *errors;
	size_t errorsLen;
	int errorCount;
	int lost;
	uint32_t lostReason;
	char *lostMessage;
} osds_device_state;

osds_device_state *osds_device_state_new(void);
void osds_device_state_free(osds_device_state *s);
// osds_device_state_take moves the pending uncaptured errors out (caller frees *errors)
// and reports whether the device is lost (and why, in *lostMessage, owned by the state).
int osds_device_state_take(osds_device_state *s, char **errors, int *count, char **lostMessage, uint32_t *lostReason);
void osds_fill_device_callbacks(WGPUDeviceDescriptor *d, osds_device_state *s);

#endif
