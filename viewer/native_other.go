//go:build !linux && !freebsd && !windows && !(darwin && metal)

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

// windowSource has no surface for this OS, or for macOS built without -tags metal
// (surfaces exist for X11 and Wayland on Linux and the BSDs, Win32 on Windows, and the
// opt-in Cocoa/Metal one).
func windowSource(w *glfw.Window) (gpu.WindowSource, error) {
	if runtime.GOOS == "darwin" {
		return gpu.WindowSource{}, fmt.Errorf("viewer: the macOS window surface (a CAMetalLayer) is built only with -tags metal: it is written but has not been run on a Mac yet (go build -tags metal ./cmd/osds)")
	}
	return gpu.WindowSource{}, fmt.Errorf("viewer: window surfaces on %s are not supported (Linux/BSD X11 or Wayland, macOS and Windows are)", runtime.GOOS)
}
