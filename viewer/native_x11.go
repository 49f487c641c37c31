//go:build linux || freebsd

package viewer

import (
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"osds/gpu"
)

// windowSource returns the X11 display and window of a GLFW window. (GLFW's Wayland
// build uses the native_wayland variant of this file.)
func windowSource(w *glfw.Window) (gpu.WindowSource, error) {
	return gpu.WindowSource{
		XDisplay: unsafe.Pointer(glfw.GetX11Display()),
		XWindow:  uint64(w.GetX11Window()),
	}, nil
}
