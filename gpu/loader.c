// loader.c — opens the WebGPU runtime at run time and implements the C side of callbacks.
//
// Callbacks never call into Go: each one copies what it was given into a C record that the
// Go side polls (wgpuInstanceProcessEvents) until done. This keeps cgo handles and Go
// pointers out of the library's hands entirely.
#include <stdio.h>
#include <string.h>
#include "procs.h"

#ifdef _WIN32
#include <windows.h>
static void *open_lib(char const *path) { return (void *)LoadLibraryA(path); }
static void *find_sym(void *lib, char const *name) { return (void *)GetProcAddress((HMODULE)lib, name); }
static char const *open_error(void) { return "LoadLibrary failed"; }
#else
#include <dlfcn.h>
static void *open_lib(char const *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static void *find_sym(void *lib, char const *name) { return dlsym(lib, name); }
static char const *open_error(void) { char const *e = dlerror(); return e ? e : "dlopen failed"; }
#endif

osds_procs osds_P;
int osds_is_dawn;

int osds_load(char const *path, char *err, size_t errlen) {
	void *lib = open_lib(path);
	if (!lib) {
		snprintf(err, errlen, "%s", open_error());
		return 1;
	}
	osds_procs p;
	memset(&p, 0, sizeof p);
#define OSDS_LOOKUP(ret, name, params, args) \
	p.name = (ret(*) params)find_sym(lib, "wgpu" #name); \
	if (!p.name) { snprintf(err, errlen, "symbol wgpu%s missing", #name); return 1; }
	OSDS_PROCS(OSDS_LOOKUP)
#undef OSDS_LOOKUP
	osds_P = p;
	osds_is_dawn = find_sym(lib, "wgpuDeviceTick") != NULL;
	return 0;
}

static char *copy_view(WGPUStringView v) {
	if (!v.data) return NULL;
	size_t n = v.length == WGPU_STRLEN ? strlen(v.data) : v.length;
	char *s = malloc(n + 1);
	memcpy(s, v.data, n);
	s[n] = 0;
	return s;
}

osds_result *osds_result_new(void) { return calloc(1, sizeof(osds_result)); }

void osds_result_free(osds_result *r) {
	if (!r) return;
	free(r->message);
	for (size_t i = 0; i < r->count; i++) free(r->msgs[i]);
	free(r->msgs);
	free(r->msgTypes);
	free(r->lines);
	free(r->cols);
	free(r);
}

static void on_adapter(uint32_t status, WGPUAdapter a, WGPUStringView msg, void *u1, void *u2) {
	osds_result *r = u1;
	r->status = status;
	r->handle = a;
	r->message = copy_view(msg);
	r->done = 1;
}

static void on_device(uint32_t status, WGPUDevice d, WGPUStringView msg, void *u1, void *u2) {
	osds_result *r = u1;
	r->status = status;
	r->handle = d;
	r->message = copy_view(msg);
	r->done = 1;
}

static void on_map(uint32_t status, WGPUStringView msg, void *u1, void *u2) {
	osds_result *r = u1;
	r->status = status;
	r->message = copy_view(msg);
	r->done = 1;
}

static void on_pop(uint32_t status, uint32_t type, WGPUStringView msg, void *u1, void *u2) {
	osds_result *r = u1;
	r->status = status;
	r->type = type;
	r->message = copy_view(msg);
	r->done = 1;
}

// The queue-work-done callback gained a WGPUStringView message between header versions:
// (status, u1, u2) before, (status, message, u1, u2) after. Declared with enough integer
// arguments to cover both, it finds its record by the tag placed in userdata2: in the old
// form the record arrives in a and the tag in b, in the new form in c and d.
#define OSDS_WORK_DONE_TAG ((uintptr_t)0x05D5D0E1u)
static void on_work_done(uint32_t status, void *a, void *b, void *c, void *d) {
	osds_result *r = NULL;
	if ((uintptr_t)b == ((uintptr_t)a ^ OSDS_WORK_DONE_TAG)) r = a;
	else if ((uintptr_t)d == ((uintptr_t)c ^ OSDS_WORK_DONE_TAG)) r = c;
	if (!r) return;
	r->status = status;
	r->done = 1;
}

static void on_compilation(uint32_t status, WGPUCompilationInfo const *info, void *u1, void *u2) {
	osds_result *r = u1;
	r->status = status;
	if (info && info->messageCount > 0) {
		size_t n = info->messageCount;
		r->count = n;
		r->msgTypes = calloc(n, sizeof(uint32_t));
		r->lines = calloc(n, sizeof(uint64_t));
		r->cols = calloc(n, sizeof(uint64_t));
		r->msgs = calloc(n, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			r->msgTypes[i] = info->messages[i].type;
			r->lines[i] = info->messages[i].lineNum;
			r->cols[i] = info->messages[i].linePos;
			r->msgs[i] = copy_view(info->messages[i].message);
		}
	}
	r->done = 1;
}

static WGPUCallbackInfo callback(void *fn, osds_result *r) {
	WGPUCallbackInfo c = {0};
	c.mode = WGPUCallbackMode_AllowProcessEvents;
	c.callback = fn;
	c.userdata1 = r;
	return c;
}

WGPUCallbackInfo osds_adapter_callback(osds_result *r) { return callback((void *)on_adapter, r); }
WGPUCallbackInfo osds_device_callback(osds_result *r) { return callback((void *)on_device, r); }
WGPUCallbackInfo osds_map_callback(osds_result *r) { return callback((void *)on_map, r); }
WGPUCallbackInfo osds_pop_callback(osds_result *r) { return callback((void *)on_pop, r); }
WGPUCallbackInfo osds_work_done_callback(osds_result *r) {
	WGPUCallbackInfo c = callback((void *)on_work_done, r);
	c.userdata2 = (void *)((uintptr_t)r ^ OSDS_WORK_DONE_TAG);
	return c;
}
WGPUCallbackInfo osds_compilation_callback(osds_result *r) { return callback((void *)on_compilation, r); }

// Uncaptured errors beyond this many bytes are counted but not kept: a runaway loop of
// failing dispatches must not eat memory before the next call reports it.
#define OSDS_MAX_ERROR_TEXT 16384

osds_device_state *osds_device_state_new(void) {
	osds_device_state *s = calloc(1, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void osds_device_state_free(osds_device_state *s) {
	if (!s) return;
	pthread_mutex_destroy(&s->mu);
	free(s->errors);
	free(s->lostMessage);
	free(s);
}

static char const *error_type_name(uint32_t t) {
	switch (t) {
	case 2: return "validation";
	case 3: return "out of memory";
	case 4: return "internal";
	default: return "unknown";
	}
}

static void on_uncaptured(WGPUDevice const *d, uint32_t type, WGPUStringView msg, void *u1, void *u2) {
	osds_device_state *s = u1;
	char *m = copy_view(msg);
	pthread_mutex_lock(&s->mu);
	s->errorCount++;
	size_t need = strlen(error_type_name(type)) + (m ? strlen(m) : 0) + 16;
	if (s->errorsLen + need < OSDS_MAX_ERROR_TEXT) {
		s->errors = realloc(s->errors, s->errorsLen + need);
		s->errorsLen += snprintf(s->errors + s->errorsLen, need, "%s error: %s\n", error_type_name(type), m ? m : "");
	}
	pthread_mutex_unlock(&s->mu);
	free(m);
}

static void on_lost(WGPUDevice const *d, uint32_t reason, WGPUStringView msg, void *u1, void *u2) {
	osds_device_state *s = u1;
	char *m = copy_view(msg);
	pthread_mutex_lock(&s->mu);
	s->lost = 1;
	s->lostReason = reason;
	free(s->lostMessage);
	s->lostMessage = m;
	pthread_mutex_unlock(&s->mu);
}

int osds_device_state_take(osds_device_state *s, char **errors, int *count, char **lostMessage, uint32_t *lostReason) {
	pthread_mutex_lock(&s->mu);
	*errors = s->errors;
	*count = s->errorCount;
	s->errors = NULL;
	s->errorsLen = 0;
	s->errorCount = 0;
	int lost = s->lost;
	*lostMessage = s->lostMessage;
	*lostReason = s->lostReason;
	pthread_mutex_unlock(&s->mu);
	return lost;
}

void osds_fill_device_callbacks(WGPUDeviceDescriptor *d, osds_device_state *s) {
	d->deviceLostCallbackInfo.mode = WGPUCallbackMode_AllowSpontaneous;
	d->deviceLostCallbackInfo.callback = (void *)on_lost;
	d->deviceLostCallbackInfo.userdata1 = s;
	d->uncapturedErrorCallbackInfo.callback = on_uncaptured;
	d->uncapturedErrorCallbackInfo.userdata1 = s;
}
