package gpu

/*
#include "procs.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// ShaderModule is compiled WGSL.
type ShaderModule struct {
	h     C.WGPUShaderModule
	label string
}

// CompileMessage is one diagnostic of the WGSL compiler. Line and Col count from 1;
// 0 means the compiler gave no position.
type CompileMessage struct {
	Kind      string // "error", "warning" or "info"
	Line, Col int
	Text      string
}

// CompileError is returned when WGSL fails to compile. Its message lists each
// diagnostic as name:line:col with the offending source line underneath.
type CompileError struct {
	Name     string // file or kernel name the source came from
	Messages []CompileMessage
	Source   string
	Raw      string // the runtime's own error text, kept for messages without positions
}

func (e *CompileError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "WGSL compile error in %s:", e.Name)
	lines := strings.Split(e.Source, "\n")
	shown := 0
	for _, m := range e.Messages {
		if m.Kind != "error" && shown > 0 {
			continue
		}
		fmt.Fprintf(&sb, "\n%s:%d:%d: %s: %s", e.Name, m.Line, m.Col, m.Kind, m.Text)
		if m.Line >= 1 && m.Line <= len(lines) {
			src := strings.ReplaceAll(lines[m.Line-1], "\t", " ")
			fmt.Fprintf(&sb, "\n    %s", src)
			if m.Col >= 1 && m.Col <= len(src)+1 {
				fmt.Fprintf(&sb, "\n    %s^", strings.Repeat(" ", m.Col-1))
			}
		}
		shown++
	}
	if shown == 0 {
		fmt.Fprintf(&sb, "\n%s", e.Raw)
	}
	return sb.String()
}

// CreateShaderModule compiles WGSL source; name labels the module in messages (use the
// file name so that errors point into the right file).
func (d *Device) CreateShaderModule(name, source string) (*ShaderModule, error) {
	src := (*C.WGPUShaderSourceWGSL)(C.calloc(1, C.size_t(unsafe.Sizeof(C.WGPUShaderSourceWGSL{}))))
	defer C.free(unsafe.Pointer(src))
	src.chain.sType = C.WGPUSType_ShaderSourceWGSL
	code, freeCode := cview(source)
	defer freeCode()
	src.code = code
	var desc C.WGPUShaderModuleDescriptor
	desc.nextInChain = &src.chain
	l, freeLabel := cview(name)
	defer freeLabel()
	desc.label = l
	var h C.WGPUShaderModule
	err := d.scoped("compiling "+name, func() {
		h = C.osds_DeviceCreateShaderModule(d.h, &desc)
	})
	if err == nil {
		track("shader", 1)
		return &ShaderModule{h: h, label: name}, nil
	}
	ce := &CompileError{Name: name, Source: source, Raw: err.Error()}
	if h != nil {
		ce.Messages = d.compilationMessages(h)
		C.osds_ShaderModuleRelease(h)
	}
	if len(ce.Messages) == 0 {
		return nil, err
	}
	return nil, ce
}

// compilationMessages asks the runtime for a module's structured diagnostics.
func (d *Device) compilationMessages(h C.WGPUShaderModule) []CompileMessage {
	r := C.osds_result_new()
	defer C.osds_result_free(r)
	C.osds_ShaderModuleGetCompilationInfo(h, C.osds_compilation_callback(r))
	if err := d.inst.wait(r, "reading compilation info", d.lostCheck); err != nil || r.count == 0 {
		return nil
	}
	n := int(r.count)
	types := unsafe.Slice(r.msgTypes, n)
	lines := unsafe.Slice(r.lines, n)
	cols := unsafe.Slice(r.cols, n)
	msgs := unsafe.Slice(r.msgs, n)
	out := make([]CompileMessage, n)
	for i := range out {
		kind := "info"
		switch types[i] {
		case C.WGPUCompilationMessageType_Error:
			kind = "error"
		case C.WGPUCompilationMessageType_Warning:
			kind = "warning"
		}
		out[i] = CompileMessage{Kind: kind, Line: int(lines[i]), Col: int(cols[i]), Text: goString(msgs[i])}
	}
	return out
}

// Release frees the module.
func (m *ShaderModule) Release() {
	if m == nil || m.h == nil {
		return
	}
	C.osds_ShaderModuleRelease(m.h)
	m.h = nil
	track("shader", -1)
}
