//go:build windows

package viewer

import (
	"fmt"
	"syscall"
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"osds/gpu"
)

// displayVar names what a display needs (nothing on Windows: there always is a desktop).
const displayVar = "a desktop session"

// haveDisplay reports whether windows can be opened: always, on Windows.
func haveDisplay() bool { return true }

var getModuleHandle = syscall.NewLazyDLL("kernel32.dll").NewProc("GetModuleHandleW")

// windowSource returns the HWND of a GLFW window and the module handle of the process.
func windowSource(w *glfw.Window) (gpu.WindowSource, error) {
	hwnd := unsafe.Pointer(w.GetWin32Window())
	if hwnd == nil {
		return gpu.WindowSource{}, fmt.Errorf("viewer: GLFW gave no HWND for the window")
	}
	h, _, err := getModuleHandle.Call(0) // GetModuleHandleW(NULL): the executable's HINSTANCE
	if h == 0 {
		return gpu.WindowSource{}, fmt.Errorf("viewer: GetModuleHandle: %v", err)
	}
	// h is a handle owned by Windows, not Go memory; it travels as an opaque pointer.
	return gpu.WindowSource{HWND: hwnd, HInstance: *(*unsafe.Pointer)(unsafe.Pointer(&h))}, nil
}
