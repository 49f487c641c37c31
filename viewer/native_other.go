//go:build !linux && !freebsd && !windows

package viewer

import (
	"fmt"
	"runtime"

	"github.com/go-gl/glfw/v3.3/glfw"

	"osds/gpu"
)

// displayVar names what a display needs.
const displayVar = "a desktop session"

// haveDisplay lets Open try (and windowSource fail with a clear error).
func haveDisplay() bool { return true }

// windowSource is not written for this OS. macOS needs a CAMetalLayer set as the layer
// of the Cocoa window's content view (Objective-C), which gpu.WindowSource.MetalLayer
// then takes.
func windowSource(w *glfw.Window) (gpu.WindowSource, error) {
	return gpu.WindowSource{}, fmt.Errorf("viewer: window surfaces on %s are not supported yet (Linux/BSD X11 or Wayland, and Windows, are)", runtime.GOOS)
}
