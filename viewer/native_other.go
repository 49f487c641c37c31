//go:build !linux && !freebsd

package viewer

import (
	"fmt"
	"runtime"

	"github.com/go-gl/glfw/v3.3/glfw"

	"osds/gpu"
)

// windowSource is not written yet for this OS: macOS needs a CAMetalLayer attached to
// the Cocoa view, Windows the HWND and module handle.
func windowSource(w *glfw.Window) (gpu.WindowSource, error) {
	return gpu.WindowSource{}, fmt.Errorf("viewer: window surfaces on %s are not supported yet", runtime.GOOS)
}
