//go:build (linux || freebsd) && wayland

package viewer

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"osds/gpu"
)

// displayVar names the environment variable that says where the display is.
const displayVar = "WAYLAND_DISPLAY"

// haveDisplay reports whether a Wayland compositor is named (the wayland build tag
// builds GLFW for Wayland only).
func haveDisplay() bool { return os.Getenv("WAYLAND_DISPLAY") != "" }

// windowSource returns the Wayland display and surface of a GLFW window.
func windowSource(w *glfw.Window) (gpu.WindowSource, error) {
	display, surface := unsafe.Pointer(glfw.GetWaylandDisplay()), unsafe.Pointer(w.GetWaylandWindow())
	if display == nil || surface == nil {
		return gpu.WindowSource{}, fmt.Errorf("viewer: GLFW gave no Wayland display or surface for the window")
	}
	return gpu.WindowSource{WaylandDisplay: display, WaylandSurface: surface}, nil
}
