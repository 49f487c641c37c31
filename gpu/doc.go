// Package gpu is osds's own Go binding of the standard webgpu.h C API.
//
// The runtime library (Dawn from the npm package bun-webgpu-<os>-<arch>, or any library
// exporting the standard wgpu* symbols, e.g. wgpu-native) is opened at run time with
// dlopen/LoadLibrary, so osds builds everywhere and fails with a clear message where no
// runtime is installed. The library is found through OSDS_WEBGPU_LIB, else in the .runtime
// folder that `make setup` fills (searched upwards from the working directory and from the
// executable).
//
// # Objects and ownership
//
// Every object wraps one webgpu.h handle and must be released with Release; LiveObjects
// counts the handles this package holds, which tests use to detect leaks. A Device and the
// objects made from it are meant to be used from one goroutine at a time.
//
// # Errors
//
// Creation calls run inside error scopes and return Go errors; WGSL that fails to compile
// returns a *CompileError carrying the compiler's messages with line and column.
// Errors the device reports outside any scope (uncaptured errors) and device loss are kept
// and returned by the next fallible call on that device: nothing is printed and lost.
//
// # Asynchrony
//
// Every asynchronous webgpu.h call is made with the AllowProcessEvents callback mode and
// completed by polling wgpuInstanceProcessEvents, which works the same on Dawn and
// wgpu-native (whose WaitAny is unimplemented). The C callbacks only fill C records; no
// Go code runs inside the library.
package gpu
