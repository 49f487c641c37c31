package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"osds/gpu"
)

// BuildSource builds an op from WGSL text that is not one of the embedded shaders (a
// user's constraint assembled with its harness, see package posterior): the entry point
// entry of source, the tensors bound to bindings 0..n-1 in order, params (bound after
// them when non-nil) and the workgroup grid.
//
// name labels the module in compiler messages; a source that fails to compile returns
// the *gpu.CompileError whose line numbers count in source. The pipeline is cached in
// the Library under the source's SHA-256 and the entry point, so building the same
// source again (another batch size) compiles nothing.
func (l *Library) BuildSource(name, source, entry string, bufs []*Tensor, params Params, grid [3]uint32) (*Op, error) {
	sum := sha256.Sum256([]byte(source))
	// The cache key of l.pipeline(file, entry, nil) is "file:entry"; a file name with a
	// slash never names an embedded shader, so the key cannot collide with one.
	file := "source/" + hex.EncodeToString(sum[:])
	key := file + ":" + entry
	if _, ok := l.pipelines[key]; !ok {
		m, err := l.dev.CreateShaderModule(name, source)
		if err != nil {
			return nil, err
		}
		cp, err := l.dev.CreateComputePipeline(name+":"+entry, m, gpu.PipelineOptions{Entry: entry})
		m.Release()
		if err != nil {
			return nil, fmt.Errorf("kernels: %s: entry point %s: %w", name, entry, err)
		}
		layout, err := cp.BindGroupLayout(0)
		if err != nil {
			cp.Release()
			return nil, err
		}
		l.pipelines[key] = &pipeline{p: cp, layout: layout}
	}
	buffers := make([]*gpu.Buffer, len(bufs))
	for i, t := range bufs {
		if t == nil {
			return nil, fmt.Errorf("kernels: %s: binding %d is nil", name, i)
		}
		if err := l.ewCheckBindable(name, fmt.Sprintf("binding %d", i), t); err != nil {
			return nil, err
		}
		buffers[i] = t.Buf
	}
	return l.build(opSpec{name: name + ":" + entry, file: file, entry: entry, buffers: buffers, params: params, grid: grid})
}
