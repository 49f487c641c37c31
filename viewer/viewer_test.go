package viewer

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osds/gpu"
)

// withDisplay makes sure an X server is there: the one in DISPLAY, else an Xvfb started
// for the test.
func withDisplay(t *testing.T) {
	t.Helper()
	if os.Getenv("DISPLAY") != "" {
		return
	}
	display, stop, err := StartXvfb(90)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the test's device is released by then, so GLFW can let go
	// of the display before the display stops.
	t.Cleanup(func() {
		Terminate()
		stop()
	})
	t.Setenv("DISPLAY", display)
}

// screenshot grabs the root window with xwd and returns a gray-level reader (0..255).
func screenshot(t *testing.T) (func(x, y int) [3]int, int, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shot.xwd")
	out, err := exec.Command("xwd", "-root", "-silent", "-out", path).CombinedOutput()
	if err != nil {
		t.Fatalf("xwd: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := DecodeXWD(raw)
	if err != nil {
		t.Fatal(err)
	}
	at := func(x, y int) [3]int {
		c := img.RGBAAt(x, y)
		return [3]int{int(c.R), int(c.G), int(c.B)}
	}
	return at, img.Bounds().Dx(), img.Bounds().Dy()
}

// shot is a screenshot: at returns the RGB levels (0..255) of a screen pixel.
type shot struct {
	at     func(x, y int) [3]int
	sw, sh int
}

// drawUntil draws frames until check passes on a screenshot, failing with check's last
// error after a few seconds: the first frames can race the window being mapped, and more
// so on a loaded machine.
func drawUntil(t *testing.T, w *Window, check func(s shot) error) {
	t.Helper()
	var err error
	for try := 0; try < 40; try++ {
		for i := 0; i < 2; i++ {
			if err := w.Draw(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.dev.Queue().Wait(); err != nil {
			t.Fatal(err)
		}
		at, sw, sh := screenshot(t)
		if err = check(shot{at, sw, sh}); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
}

// near reports whether two colours differ by at most tol in every channel.
func near(a, b [3]int, tol int) bool {
	for c := range a {
		if d := a[c] - b[c]; d > tol || d < -tol {
			return false
		}
	}
	return true
}

// checkGrid compares the screen with the images (gray, or RGB when g.C = 3) drawn with
// nearest scaling in a plotW×plotH area at the screen's top-left corner.
func checkGrid(s shot, imgs []float32, g Grid, plotW, plotH int) (int, error) {
	if s.sw < plotW || s.sh < plotH {
		return 0, fmt.Errorf("screen %d×%d smaller than the plot area %d×%d", s.sw, s.sh, plotW, plotH)
	}
	c := max(g.C, 1)
	cellW, cellH := float64(plotW)/float64(g.Cols), float64(plotH)/float64(g.Rows)
	checked := 0
	for k := 0; k < g.N; k++ {
		col, row := k%g.Cols, k/g.Cols
		for y := 0; y < g.H; y++ {
			for x := 0; x < g.W; x++ {
				// Centre of the screen rectangle showing image pixel (x, y).
				sx := int(float64(col)*cellW + (float64(x)+0.5)*cellW/float64(g.W))
				sy := int(float64(row)*cellH + (float64(y)+0.5)*cellH/float64(g.H))
				var want [3]int
				for ch := range want {
					want[ch] = int(math.Round(float64(imgs[((k*g.H+y)*g.W+x)*c+min(ch, c-1)]) * 255))
				}
				if got := s.at(sx, sy); !near(got, want, 2) {
					return checked, fmt.Errorf("image %d pixel (%d,%d) at screen (%d,%d): got %v, want %v", k, x, y, sx, sy, got, want)
				}
				checked++
			}
		}
	}
	return checked, nil
}

// drawGrid draws until the window shows the grid in its plotW×plotH area.
func drawGrid(t *testing.T, w *Window, imgs []float32, g Grid, plotW, plotH int) {
	t.Helper()
	n := 0
	drawUntil(t, w, func(s shot) (err error) {
		n, err = checkGrid(s, imgs, g, plotW, plotH)
		return err
	})
	t.Logf("%d pixels match in a %d×%d plot area", n, plotW, plotH)
}

// newBuffer uploads data to a new storage buffer.
func newBuffer(t *testing.T, dev *gpu.Device, label string, data []float32) *gpu.Buffer {
	t.Helper()
	buf, err := dev.CreateBuffer(label, uint64(4*len(data)), gpu.StorageUsage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(buf.Release)
	if err := dev.Queue().WriteFloat32(buf, 0, data); err != nil {
		t.Fatal(err)
	}
	return buf
}

// newDevice opens the WebGPU device for a test.
func newDevice(t *testing.T) *gpu.Device {
	t.Helper()
	dev, err := gpu.NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`): %v", err)
	}
	t.Cleanup(dev.Release)
	return dev
}

// openWindow opens a width×height viewer window for a test.
func openWindow(t *testing.T, dev *gpu.Device, width, height int) *Window {
	t.Helper()
	w, err := Open(dev, dev.Adapter(), t.Name(), width, height)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func TestViewerDrawsBufferAndFollowsResize(t *testing.T) {
	withDisplay(t)
	dev := newDevice(t)
	g := Grid{N: 7, H: 5, W: 6, Cols: 4, Rows: 2}
	imgs := make([]float32, g.N*g.H*g.W)
	for i := range imgs {
		imgs[i] = float32((i*37)%256) / 255 // distinct, known gray levels
	}
	buf := newBuffer(t, dev, "samples", imgs)
	w := openWindow(t, dev, 240, 100)
	if err := w.Show(buf, g); err != nil {
		t.Fatal(err)
	}
	drawGrid(t, w, imgs, g, 240, 100)

	w.SetSize(360, 180)
	drawGrid(t, w, imgs, g, 360, 180)
	if w.fbW != 360 || w.fbH != 180 {
		t.Fatalf("swapchain %d×%d after resizing to 360×180", w.fbW, w.fbH)
	}
}

func TestViewerDrawsRGB(t *testing.T) {
	withDisplay(t)
	dev := newDevice(t)
	g := Grid{N: 5, H: 3, W: 4, C: 3, Cols: 3, Rows: 2}
	imgs := make([]float32, g.N*g.H*g.W*g.C)
	for i := range imgs {
		imgs[i] = float32((i*53+11)%256) / 255 // the channels of a pixel differ
	}
	buf := newBuffer(t, dev, "rgb samples", imgs)
	w := openWindow(t, dev, 240, 120)
	if err := w.Show(buf, g); err != nil {
		t.Fatal(err)
	}
	drawGrid(t, w, imgs, g, 240, 120)
	// A buffer too small for 3 channels, and 2 channels, are refused.
	if err := w.Show(buf, Grid{N: 6, H: 3, W: 4, C: 3, Cols: 3, Rows: 2}); err == nil {
		t.Fatal("Show accepted a buffer smaller than the RGB grid")
	}
	if err := w.Show(buf, Grid{N: 1, H: 3, W: 4, C: 2, Cols: 1, Rows: 1}); err == nil {
		t.Fatal("Show accepted 2-channel images")
	}
}

func TestViewerStatusLine(t *testing.T) {
	withDisplay(t)
	dev := newDevice(t)
	g := Grid{N: 3, H: 4, W: 4, Cols: 3, Rows: 1}
	imgs := make([]float32, g.N*g.H*g.W)
	for i := range imgs {
		imgs[i] = float32((i*41+7)%256) / 255
	}
	buf := newBuffer(t, dev, "samples", imgs)
	const width, height, scale = 240, 120, 2
	w := openWindow(t, dev, width, height)
	if err := w.Show(buf, g); err != nil {
		t.Fatal(err)
	}
	// Longer than the window: (240 − 2)/12 = 19 characters fit.
	text := "it 42 loss 0.5 log Ẑ -3.2 reward 7 it/s 31.5 and more that is cut"
	w.SetStatus(text)
	w.SetStatusScale(scale)
	const strip, shown = 11 * scale, 19
	glyphs := glyphString(text, shown)
	fg, bg := [3]int{255, 230, 128}, [3]int{41, 41, 51} // the shader's STRIP_FG and STRIP_BG
	top := height - strip
	drawUntil(t, w, func(s shot) error {
		if _, err := checkGrid(s, imgs, g, width, top); err != nil {
			return fmt.Errorf("grid above the status strip: %w", err)
		}
		// Every font pixel of every character shown, at its centre.
		lit := 0
		for i, gl := range glyphs {
			rows := glyphRows(gl)
			for y := 0; y < glyphH; y++ {
				for x := 0; x < cellW; x++ {
					sx := 2*scale + (cellW*i+x)*scale + scale/2
					sy := top + 2*scale + y*scale + scale/2
					want := bg
					if x < glyphW && rows[y]>>(glyphW-1-x)&1 == 1 {
						want = fg
						lit++
					}
					if got := s.at(sx, sy); !near(got, want, 3) {
						return fmt.Errorf("character %d (%q) pixel (%d,%d) at screen (%d,%d): got %v, want %v", i, []rune(text)[i], x, y, sx, sy, got, want)
					}
				}
			}
		}
		if lit < 100 {
			return fmt.Errorf("only %d lit font pixels", lit)
		}
		// Margins and the cut-off rest of the line are background.
		for y := top; y < height; y++ {
			for x := 0; x < width; x++ {
				inText := x >= 2*scale && x < 2*scale+cellW*scale*shown && y >= top+2*scale && y < top+(2+glyphH)*scale
				if !inText && !near(s.at(x, y), bg, 3) {
					return fmt.Errorf("strip pixel (%d,%d) outside the text is %v, want background %v", x, y, s.at(x, y), bg)
				}
			}
		}
		return nil
	})
	if pw, ph := w.PlotSize(); pw != width || ph != top {
		t.Fatalf("PlotSize %d×%d, want %d×%d", pw, ph, width, top)
	}
}

func TestStatusLayout(t *testing.T) {
	w := &Window{fbW: 600, fbH: 600}
	if st := w.statusLayout(); st.strip != 0 {
		t.Fatalf("a strip without text: %+v", st)
	}
	w.SetStatus("x")
	if st := w.statusLayout(); st != (statusGeometry{scale: 1, strip: 11, chars: 1}) {
		t.Fatalf("600×600: %+v", st)
	}
	w.SetStatus(strings.Repeat("x", 400))
	// (600 − 1)/6 = 99: the 99th glyph ends at 2 + 98·6 + 5 = 595 ≤ 600.
	if st := w.statusLayout(); st.chars != 99 {
		t.Fatalf("600 wide: %d characters, want 99", st.chars)
	}
	w.fbW, w.fbH = 1920, 1080
	if st := w.statusLayout(); st.scale != 3 || st.strip != 33 || st.chars != (1920-3)/18 {
		t.Fatalf("1920×1080: %+v", st)
	}
	w.fbW, w.fbH = 100, 20 // the strip would take more than half the height
	if st := w.statusLayout(); st.strip != 0 {
		t.Fatalf("100×20: %+v", st)
	}
	w.SetStatus(strings.Repeat("é", 2*maxStatus))
	if len(w.status) != maxStatus || w.status[0] != glyphIndex('?') {
		t.Fatalf("status of %d glyphs", len(w.status))
	}
}

func TestOpenWithoutDisplayFailsFast(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	if _, err := Open(nil, nil, "x", 10, 10); err != ErrNoDisplay {
		t.Fatalf("got %v, want ErrNoDisplay", err)
	}
}

func TestViewerDensityShowsPoints(t *testing.T) {
	withDisplay(t)
	dev := newDevice(t)
	// Three points (d = 3 rows, only the first two columns are drawn) in [-10, 10]².
	pts := []float32{-5, 5, 99, 0, 0, 99, 7.5, -7.5, 99}
	buf := newBuffer(t, dev, "points", pts)
	w := openWindow(t, dev, 200, 200)
	if err := w.Show(buf, Grid{N: 3, W: 3, Density: true, Extent: [4]float32{-10, 10, -10, 10}, Radius: 2}); err != nil {
		t.Fatal(err)
	}
	drawUntil(t, w, func(s shot) error {
		// Point (x, y) sits at pixel ((x+10)·10, (10−y)·10): bright there, dark between.
		for _, p := range [][2]int{{50, 50}, {100, 100}, {175, 175}} {
			if g := s.at(p[0], p[1]); g[0] < 240 {
				return fmt.Errorf("pixel %v at a point is %v, want bright", p, g)
			}
		}
		for _, p := range [][2]int{{150, 50}, {20, 180}, {100, 150}} {
			if g := s.at(p[0], p[1]); g[0] > 10 {
				return fmt.Errorf("pixel %v away from the points is %v, want dark", p, g)
			}
		}
		// The saved-PNG rasteriser draws the same picture as the shader.
		ref := DensityImage(pts, 3, w.Grid(), 200, 200)
		for y := 0; y < 200; y += 3 {
			for x := 0; x < 200; x += 3 {
				if d := s.at(x, y)[0] - int(ref.GrayAt(x, y).Y); d > 3 || d < -3 {
					return fmt.Errorf("pixel (%d,%d): window %d, DensityImage %d", x, y, s.at(x, y)[0], ref.GrayAt(x, y).Y)
				}
			}
		}
		return nil
	})
}

// BenchmarkDrawDensity measures one frame of the density view of 300 points in a 480×480
// window (the live view of `osds train --view`), drawing and presenting included.
func BenchmarkDrawDensity(b *testing.B) {
	pts := make([]float32, 600)
	for i := range pts {
		pts[i] = float32((i*7919)%280)/10 - 14
	}
	benchmarkDraw(b, pts, Grid{N: 300, W: 2, Density: true, Extent: [4]float32{-14, 14, -14, 14}, Radius: 2.5})
}

// BenchmarkDrawImages is a frame of the live view of a posterior sampler: 100 images of
// 28×28 in a 10×10 grid, in a 480×480 window.
func BenchmarkDrawImages(b *testing.B) {
	imgs := make([]float32, 100*28*28)
	for i := range imgs {
		imgs[i] = float32((i*7919)%256) / 255
	}
	benchmarkDraw(b, imgs, Grid{N: 100, H: 28, W: 28, Cols: 10, Rows: 10})
}

// benchmarkDraw times Draw (render, present and wait) of data shown as g in a 480×480
// window.
func benchmarkDraw(b *testing.B, data []float32, g Grid) {
	if os.Getenv("DISPLAY") == "" {
		b.Fatal("set DISPLAY (e.g. run under Xvfb) to benchmark the viewer")
	}
	dev, err := gpu.NewDevice()
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Release()
	buf, err := dev.CreateBuffer("samples", uint64(4*len(data)), gpu.StorageUsage)
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Release()
	if err := dev.Queue().WriteFloat32(buf, 0, data); err != nil {
		b.Fatal(err)
	}
	w, err := Open(dev, dev.Adapter(), "bench", 480, 480)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if err := w.Show(buf, g); err != nil {
		b.Fatal(err)
	}
	w.Draw()
	dev.Queue().Wait()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Draw(); err != nil {
			b.Fatal(err)
		}
		if err := dev.Queue().Wait(); err != nil {
			b.Fatal(err)
		}
	}
}
