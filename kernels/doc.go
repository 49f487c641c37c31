// Package kernels holds osds's WGSL compute kernels behind typed Go launchers, and a
// float64 CPU reference for every kernel.
//
// # Model
//
// A Tensor is a float32 row-major array in a device buffer. A launcher (Matmul, Unary,
// RowReduce, ...) checks shapes once and returns an *Op: a compiled pipeline, its bind
// group and its grid, ready to be recorded any number of times. A Recorder records ops
// into one compute pass of one command buffer, so a whole training iteration is one
// queue submission; Library.Run is the shortcut that records and submits at once.
//
// Pipelines are compiled once per (shader file, entry point, override constants) and
// cached in the Library. Small per-op parameters (sizes, scalars) live in a uniform
// buffer owned by the Op.
//
// # WGSL conventions
//
// Each shader file starts with a comment naming its bindings, shapes and dispatch grid.
// 1-D kernels whose element count exceeds 65535 workgroups fold the grid into two
// dimensions: the linear workgroup index is wid.x + wid.y * nwg.x (see Grid1D).
//
// # References
//
// Every kernel has a float64 reference in ref.go-style files (functions named Ref*),
// used by the tests on fresh random inputs of awkward sizes with poisoned outputs.
package kernels
