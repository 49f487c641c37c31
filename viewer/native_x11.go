//go:build (linux || freebsd) && !wayland

package viewer

import (
	"os"
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"osds/gpu"
)

// displayVar names the environment variable that says where the display is.
const displayVar = "DISPLAY"

// haveDisplay reports whether an X server is named (GLFW's default build on Linux and the
// BSDs is for X11; build with -tags wayland for Wayland).
func haveDisplay() bool { return os.Getenv("DISPLAY") != "" }

// windowSource returns the X11 display and window of a GLFW window.
func windowSource(w *glfw.Window) (gpu.WindowSource, error) {
	return gpu.WindowSource{
		XDisplay: unsafe.Pointer(glfw.GetX11Display()),
		XWindow:  uint64(w.GetX11Window()),
	}, nil
}
