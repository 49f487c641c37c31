//go:build darwin && metal

// The macOS surface is opt-in (go build -tags metal) until it has been built and run on a
// Mac: it is written to the webgpu.h surface source and AppKit's documented layer-hosting
// order, but no macOS toolchain was available where it was written. Without the tag,
// native_other.go gives a clear error for --view and everything else builds.

package viewer

/*
#cgo CFLAGS: -x objective-c
#cgo LDFLAGS: -framework Cocoa -framework QuartzCore
#import <Cocoa/Cocoa.h>
#import <QuartzCore/CAMetalLayer.h>

// osdsMetalLayer makes a new CAMetalLayer the layer of the window's content view (a
// layer-hosting view: the layer is set before wantsLayer, as AppKit asks) and returns it.
// The view retains the layer. NULL when the window has no content view.
static void *osdsMetalLayer(void *nsWindow) {
	NSWindow *win = (NSWindow *)nsWindow;
	NSView *view = [win contentView];
	if (view == nil) {
		return NULL;
	}
	CAMetalLayer *layer = [CAMetalLayer layer];
	// Draw at the screen's pixel density: GLFW reports the framebuffer in pixels and the
	// swapchain is configured at that size.
	layer.contentsScale = [win backingScaleFactor];
	[view setLayer:layer];
	[view setWantsLayer:YES];
	return (void *)layer;
}
*/
import "C"

import (
	"fmt"
	"runtime"

	"github.com/go-gl/glfw/v3.3/glfw"

	"osds/gpu"
)

// Cocoa accepts window calls only from the process's main thread: pin the main goroutine
// to it before main runs (Open's own LockOSThread keeps whichever thread it runs on).
func init() { runtime.LockOSThread() }

// displayVar names what a display needs (macOS always has one in a login session).
const displayVar = "a desktop session"

// haveDisplay reports whether windows can be opened: GLFW's own error says why not
// (for example over ssh without a window server).
func haveDisplay() bool { return true }

// windowSource gives the GLFW window's Cocoa content view a CAMetalLayer, the surface
// WebGPU presents to on macOS (Dawn's Metal backend).
func windowSource(w *glfw.Window) (gpu.WindowSource, error) {
	ns := w.GetCocoaWindow()
	if ns == nil {
		return gpu.WindowSource{}, fmt.Errorf("viewer: GLFW gave no NSWindow for the window")
	}
	layer := C.osdsMetalLayer(ns)
	if layer == nil {
		return gpu.WindowSource{}, fmt.Errorf("viewer: the window has no content view to attach a CAMetalLayer to")
	}
	return gpu.WindowSource{MetalLayer: layer}, nil
}
