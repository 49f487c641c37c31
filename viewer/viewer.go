// Package viewer shows posterior samples live in a GLFW window: a WebGPU surface on the
// native window, and a render pipeline that draws a grid of images straight from the
// storage buffer the trainer writes — no readback to the CPU.
package viewer

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"runtime"
	"slices"

	"github.com/go-gl/glfw/v3.3/glfw"

	"osds"
	"osds/gpu"
)

// ErrNoDisplay is returned by Open on a machine without a display.
var ErrNoDisplay = errors.New("viewer: no display (" + displayVar + " is unset); run without --view, or under Xvfb (xvfb-run)")

// Grid says how the samples buffer is laid out and drawn.
type Grid struct {
	N, H, W    int  // N images of H×W pixels, row-major floats in [0, 1]
	C          int  // channels per pixel, fastest-varying: 1 (or 0) gray, 3 RGB
	Cols, Rows int  // grid cells; Cols·Rows ≥ N shows every image
	Linear     bool // bilinear instead of nearest scaling

	// Density, when set, draws the N rows of an [N, W] buffer as points (x, y) = the
	// first two columns, over the Extent [x0, x1, y0, y1], as a kernel density with
	// Radius pixels (H, C, Cols, Rows unused).
	Density bool
	Extent  [4]float32
	Radius  float32
}

// Window is an open viewer window.
type Window struct {
	win      *glfw.Window
	dev      *gpu.Device
	surface  *gpu.Surface
	format   gpu.TextureFormat
	pipe     *gpu.RenderPipeline
	layout   *gpu.BindGroupLayout
	params   *gpu.Buffer
	group    *gpu.BindGroup
	images   *gpu.Buffer
	grid     Grid
	fbW, fbH int
	keys     []string

	font, text  *gpu.Buffer // the status line's glyph table and glyph indices
	status      []uint32    // glyph indices of the status line
	statusDirty bool        // status differs from what text holds
	statusScale int         // font scale; 0 picks one from the window width
}

// maxStatus is the most characters of a status line (the text buffer's capacity).
const maxStatus = 512

// paramWords is the size of the shader's uniform Grid in 32-bit words.
const paramWords = 20

// Open creates a width×height window titled title whose surface presents with dev's
// adapter. GLFW requires the calling goroutine to stay on the main OS thread; Open locks
// the current one.
func Open(dev *gpu.Device, adapter *gpu.Adapter, title string, width, height int) (*Window, error) {
	if !haveDisplay() {
		return nil, ErrNoDisplay
	}
	runtime.LockOSThread()
	if err := glfw.Init(); err != nil {
		return nil, fmt.Errorf("viewer: GLFW: %w", err)
	}
	glfw.WindowHint(glfw.ClientAPI, glfw.NoAPI)
	win, err := glfw.CreateWindow(width, height, title, nil, nil)
	if err != nil {
		glfw.Terminate()
		return nil, fmt.Errorf("viewer: creating the window: %w", err)
	}
	src, err := windowSource(win)
	if err != nil {
		win.Destroy()
		glfw.Terminate()
		return nil, err
	}
	surface, err := dev.Instance().CreateSurface(src)
	if err != nil {
		win.Destroy()
		glfw.Terminate()
		return nil, err
	}
	w := &Window{win: win, dev: dev, surface: surface}
	w.listenKeys()
	formats, err := surface.Formats(adapter)
	if err != nil || len(formats) == 0 {
		w.Close()
		return nil, fmt.Errorf("viewer: the window surface cannot present with this adapter: %v", err)
	}
	w.format = formats[0]
	for _, f := range formats {
		if f == gpu.FormatBGRA8Unorm || f == gpu.FormatRGBA8Unorm {
			w.format = f // linear (non-sRGB) so gray levels reach the screen unchanged
			break
		}
	}
	src2, err := osds.Shader("viewer.wgsl")
	if err != nil {
		w.Close()
		return nil, err
	}
	m, err := dev.CreateShaderModule("viewer.wgsl", src2)
	if err != nil {
		w.Close()
		return nil, err
	}
	defer m.Release()
	if w.pipe, err = dev.CreateRenderPipeline("viewer", m, "vs", "fs", w.format); err != nil {
		w.Close()
		return nil, err
	}
	if w.layout, err = w.pipe.BindGroupLayout(0); err != nil {
		w.Close()
		return nil, err
	}
	if w.params, err = dev.CreateBuffer("viewer grid", 4*paramWords, gpu.UsageUniform|gpu.UsageCopyDst); err != nil {
		w.Close()
		return nil, err
	}
	glyphs := fontWords()
	if w.font, err = dev.CreateBuffer("viewer font", uint64(4*len(glyphs)), gpu.StorageUsage); err != nil {
		w.Close()
		return nil, err
	}
	if err := dev.Queue().WriteUint32(w.font, 0, glyphs); err != nil {
		w.Close()
		return nil, err
	}
	if w.text, err = dev.CreateBuffer("viewer status", 4*maxStatus, gpu.StorageUsage); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.reconfigure(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// reconfigure matches the swapchain to the framebuffer size.
func (w *Window) reconfigure() error {
	fw, fh := w.win.GetFramebufferSize()
	if fw < 1 || fh < 1 {
		return nil // minimised: nothing to draw into
	}
	if fw == w.fbW && fh == w.fbH {
		return nil
	}
	if err := w.surface.Configure(w.dev, w.format, fw, fh); err != nil {
		return err
	}
	w.fbW, w.fbH = fw, fh
	return nil
}

// Show binds the samples buffer (device memory the trainer writes) with its layout.
func (w *Window) Show(images *gpu.Buffer, g Grid) error {
	if g.C == 0 || g.Density {
		g.C = 1
	}
	if g.C != 1 && g.C != 3 {
		return fmt.Errorf("viewer: grid of %d-channel images: want 1 (gray) or 3 (RGB)", g.C)
	}
	if g.Density {
		g.H, g.Cols, g.Rows = 1, 1, 1
		if g.W < 2 || g.Extent[1] <= g.Extent[0] || g.Extent[3] <= g.Extent[2] || !(g.Radius > 0) {
			return fmt.Errorf("viewer: density view needs rows of ≥ 2 columns, a non-empty extent and a positive radius, got %+v", g)
		}
	}
	if g.N < 1 || g.H < 1 || g.W < 1 || g.Cols < 1 || g.Rows < 1 {
		return fmt.Errorf("viewer: grid %+v needs positive sizes", g)
	}
	if need := uint64(4 * g.N * g.H * g.W * g.C); images.Size() < need {
		return fmt.Errorf("viewer: buffer %q has %d bytes, grid of %d %d×%d×%d images needs %d", images.Label(), images.Size(), g.N, g.H, g.W, g.C, need)
	}
	grp, err := w.dev.CreateBindGroup("viewer", w.layout, []gpu.BindEntry{{Binding: 0, Buffer: images}, {Binding: 1, Buffer: w.params},
		{Binding: 2, Buffer: w.font}, {Binding: 3, Buffer: w.text}})
	if err != nil {
		return err
	}
	w.group.Release()
	w.group, w.images, w.grid = grp, images, g
	return nil
}

// Draw renders one frame of the current grid and presents it (vsync paces it).
func (w *Window) Draw() error {
	glfw.PollEvents()
	if err := w.reconfigure(); err != nil {
		return err
	}
	if w.fbW < 1 || w.group == nil {
		return nil
	}
	g := w.grid
	lin := uint32(0)
	if g.Linear {
		lin = 1
	}
	mode := uint32(0)
	if g.Density {
		mode = 1
	}
	st := w.statusLayout()
	if w.statusDirty {
		if len(w.status) > 0 {
			if err := w.dev.Queue().WriteUint32(w.text, 0, w.status); err != nil {
				return err
			}
		}
		w.statusDirty = false
	}
	f := math.Float32bits
	if err := w.dev.Queue().WriteUint32(w.params, 0, []uint32{uint32(g.N), uint32(g.H), uint32(g.W), uint32(g.Cols), uint32(g.Rows),
		uint32(w.fbW), uint32(w.fbH - st.strip), lin, mode, f(g.Extent[0]), f(g.Extent[1]), f(g.Extent[2]), f(g.Extent[3]), f(g.Radius),
		uint32(g.C), uint32(st.chars), uint32(st.scale), uint32(st.strip), 0, 0}); err != nil {
		return err
	}
	tex, err := w.surface.CurrentTexture()
	if errors.Is(err, gpu.ErrSurfaceOutdated) {
		w.fbW, w.fbH = 0, 0
		return w.reconfigure()
	}
	if err != nil {
		return err
	}
	defer tex.Release()
	enc, err := w.dev.CreateCommandEncoder("viewer frame")
	if err != nil {
		return err
	}
	enc.DrawFullscreen(tex, w.pipe, w.group, 3, 0.1)
	cb, err := enc.Finish()
	if err != nil {
		return err
	}
	if err := w.dev.Queue().Submit(cb); err != nil {
		return err
	}
	return w.surface.Present(w.dev)
}

// SetTitle shows a status line (iteration, loss, log Ẑ, ...) in the title bar. Window
// managers may hide or cut it, and a bare X server (Xvfb) has no title bar: SetStatus
// draws one inside the window.
func (w *Window) SetTitle(s string) { w.win.SetTitle(s) }

// SetStatus shows one line of text (iteration, loss, log Ẑ, reward, it/s, keys) in a strip
// along the bottom of the window, from the next Draw on; the samples are drawn in the
// area above it. The font is a built-in 5×7 one: printable ASCII and Ẑ · × ± Δ ² σ (dashes
// draw as '-', other runes as '?'). Text wider than the window is cut; "" removes the strip.
func (w *Window) SetStatus(text string) {
	gs := glyphString(text, maxStatus)
	if slices.Equal(gs, w.status) {
		return
	}
	w.status, w.statusDirty = gs, true
}

// SetStatusScale sets how many screen pixels one font pixel of the status line covers
// (its characters are 6·scale pixels wide, its strip 11·scale high); 0, the default,
// picks 1 below 960 pixels of framebuffer width, 2 below 1920, and so on.
func (w *Window) SetStatusScale(scale int) { w.statusScale = max(scale, 0) }

// StatusHeight is the height in pixels of the status strip in a window whose framebuffer
// is width pixels wide, at the default font scale: open a window this much taller than the
// plot to keep the plot's aspect ratio once SetStatus is called.
func StatusHeight(width int) int {
	return (2 + glyphH + 2) * (1 + width/960)
}

// statusGeometry is where the status line goes in the current framebuffer.
type statusGeometry struct {
	scale int // screen pixels per font pixel
	strip int // strip height in pixels (0: no strip)
	chars int // characters drawn (the status line cut to the window width)
}

// statusLayout places the status line in the current framebuffer: a strip 11·scale pixels
// high (2·scale above the 7·scale glyphs, 2·scale below), with the characters in 6·scale
// wide cells from 2·scale pixels on, only those whose glyph fits in the width. There is no
// strip without text, or when it would take more than half the window's height.
func (w *Window) statusLayout() statusGeometry {
	s := w.statusScale
	if s == 0 {
		s = 1 + w.fbW/960
	}
	strip := (2 + glyphH + 2) * s // as in StatusHeight
	if len(w.status) == 0 || 2*strip > w.fbH {
		return statusGeometry{scale: s}
	}
	chars := 0
	if room := w.fbW - 2*s; room >= glyphW*s {
		chars = (room + (cellW-glyphW)*s) / (cellW * s) // the last glyph needs no gap after it
	}
	return statusGeometry{scale: s, strip: strip, chars: min(chars, len(w.status))}
}

// PlotSize is the size in pixels of the area the samples are drawn in as of the last
// Draw: the framebuffer less the status strip. Save density pictures (DensityImage) at
// this size to match the window.
func (w *Window) PlotSize() (width, height int) {
	return w.fbW, w.fbH - w.statusLayout().strip
}

// SetSize resizes the window (the swapchain follows on the next Draw).
func (w *Window) SetSize(width, height int) { w.win.SetSize(width, height) }

// ShouldClose reports whether the user closed the window.
func (w *Window) ShouldClose() bool { return w.win.ShouldClose() }

// Close destroys the window and its GPU objects (not the samples buffer). GLFW itself
// stays initialised (a later Open reuses it) until Terminate or the process's exit: the
// runtime destroys a released surface's swapchain lazily, as late as the device's own
// release, and that needs the window system's connection, which terminating GLFW
// closes. With glfw.Terminate here, `osds view` crashed in wgpuDeviceDestroy in about
// one run in eight.
func (w *Window) Close() {
	w.group.Release()
	w.params.Release()
	w.font.Release()
	w.text.Release()
	w.layout.Release()
	w.pipe.Release()
	w.surface.Release()
	if w.win != nil {
		w.win.Destroy()
		w.win = nil
	}
}

// Terminate closes GLFW's connection to the window system. Call it after every device
// that drew into a window has been released (see Close), and before the window system
// goes away, e.g. before stopping an Xvfb the process started; a later Open initialises
// GLFW again. A process that simply exits need not call it.
func Terminate() { glfw.Terminate() }

// Keys returns the keys pressed since the last call, by name: "r", "p", "s", "l", "a",
// "space", "+", "-", "[", "]", "escape", "q" and the digits "0".."9" (others are ignored).
// Call it after Draw, which polls events.
func (w *Window) Keys() []string {
	out := w.keys
	w.keys = nil
	return out
}

// listenKeys installs the key callback that feeds Keys.
func (w *Window) listenKeys() {
	names := map[glfw.Key]string{glfw.KeyR: "r", glfw.KeyP: "p", glfw.KeyS: "s", glfw.KeySpace: "space",
		glfw.KeyEqual: "+", glfw.KeyKPAdd: "+", glfw.KeyMinus: "-", glfw.KeyKPSubtract: "-",
		glfw.KeyLeftBracket: "[", glfw.KeyRightBracket: "]", glfw.KeyL: "l",
		glfw.KeyEscape: "escape", glfw.KeyQ: "q", glfw.KeyA: "a"}
	for d := 0; d <= 9; d++ {
		names[glfw.Key0+glfw.Key(d)] = fmt.Sprint(d)
		names[glfw.KeyKP0+glfw.Key(d)] = fmt.Sprint(d)
	}
	w.win.SetKeyCallback(func(_ *glfw.Window, key glfw.Key, _ int, action glfw.Action, _ glfw.ModifierKey) {
		if action != glfw.Press {
			return
		}
		if n, ok := names[key]; ok {
			w.keys = append(w.keys, n)
		}
	})
}

// Grid returns the layout currently shown.
func (w *Window) Grid() Grid { return w.grid }

// DensityImage rasterises points (the first two of each row's w columns) exactly as the
// density view draws them, for saving a frame as PNG without reading the swapchain back.
func DensityImage(points []float32, w int, g Grid, width, height int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, width, height))
	sx := float64(width) / float64(g.Extent[1]-g.Extent[0])
	sy := float64(height) / float64(g.Extent[3]-g.Extent[2])
	inv := 1 / (2 * float64(g.Radius) * float64(g.Radius))
	n := len(points) / w
	px, py := make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		px[i] = (float64(points[i*w]) - float64(g.Extent[0])) * sx
		py[i] = (float64(g.Extent[3]) - float64(points[i*w+1])) * sy
	}
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			acc := 0.0
			for i := range px {
				dx, dy := px[i]-(float64(x)+0.5), py[i]-(float64(y)+0.5)
				acc += math.Exp(-(dx*dx + dy*dy) * inv)
			}
			img.SetGray(x, y, color.Gray{uint8(math.Round(255 * math.Min(acc, 1)))})
		}
	}
	return img
}
