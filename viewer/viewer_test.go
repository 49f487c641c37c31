package viewer

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
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
	t.Cleanup(stop)
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

// checkGrid compares the screen with the images drawn with nearest scaling in a
// fbW×fbH framebuffer at the screen's top-left corner.
func checkGrid(t *testing.T, imgs []float32, g Grid, fbW, fbH int) {
	t.Helper()
	at, sw, sh := screenshot(t)
	if sw < fbW || sh < fbH {
		t.Fatalf("screen %d×%d smaller than the window %d×%d", sw, sh, fbW, fbH)
	}
	cellW, cellH := float64(fbW)/float64(g.Cols), float64(fbH)/float64(g.Rows)
	checked := 0
	for k := 0; k < g.N; k++ {
		col, row := k%g.Cols, k/g.Cols
		for y := 0; y < g.H; y++ {
			for x := 0; x < g.W; x++ {
				// Centre of the screen rectangle showing image pixel (x, y).
				sx := int(float64(col)*cellW + (float64(x)+0.5)*cellW/float64(g.W))
				sy := int(float64(row)*cellH + (float64(y)+0.5)*cellH/float64(g.H))
				want := int(math.Round(float64(imgs[(k*g.H+y)*g.W+x]) * 255))
				got := at(sx, sy)
				for c := 0; c < 3; c++ {
					if d := got[c] - want; d > 2 || d < -2 {
						t.Fatalf("image %d pixel (%d,%d) at screen (%d,%d): got %v, want gray %d", k, x, y, sx, sy, got, want)
					}
				}
				checked++
			}
		}
	}
	t.Logf("%d pixels match in a %d×%d window", checked, fbW, fbH)
}

func TestViewerDrawsBufferAndFollowsResize(t *testing.T) {
	withDisplay(t)
	dev, err := gpu.NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`): %v", err)
	}
	defer dev.Release()
	g := Grid{N: 7, H: 5, W: 6, Cols: 4, Rows: 2}
	imgs := make([]float32, g.N*g.H*g.W)
	for i := range imgs {
		imgs[i] = float32((i*37)%256) / 255 // distinct, known gray levels
	}
	buf, err := dev.CreateBuffer("samples", uint64(4*len(imgs)), gpu.StorageUsage)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Release()
	if err := dev.Queue().WriteFloat32(buf, 0, imgs); err != nil {
		t.Fatal(err)
	}
	w, err := Open(dev, dev.Adapter(), "osds viewer test", 240, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Show(buf, g); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // a few frames: the first may race the window mapping
		if err := w.Draw(); err != nil {
			t.Fatal(err)
		}
	}
	if err := dev.Queue().Wait(); err != nil {
		t.Fatal(err)
	}
	checkGrid(t, imgs, g, 240, 100)

	w.SetSize(360, 180)
	for i := 0; i < 5; i++ {
		if err := w.Draw(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := dev.Queue().Wait(); err != nil {
		t.Fatal(err)
	}
	if w.fbW != 360 || w.fbH != 180 {
		t.Fatalf("swapchain %d×%d after resizing to 360×180", w.fbW, w.fbH)
	}
	checkGrid(t, imgs, g, 360, 180)
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
	dev, err := gpu.NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`): %v", err)
	}
	defer dev.Release()
	// Three points (d = 3 rows, only the first two columns are drawn) in [-10, 10]².
	pts := []float32{-5, 5, 99, 0, 0, 99, 7.5, -7.5, 99}
	buf, err := dev.CreateBuffer("points", uint64(4*len(pts)), gpu.StorageUsage)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Release()
	dev.Queue().WriteFloat32(buf, 0, pts)
	w, err := Open(dev, dev.Adapter(), "density", 200, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Show(buf, Grid{N: 3, W: 3, Density: true, Extent: [4]float32{-10, 10, -10, 10}, Radius: 2}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := w.Draw(); err != nil {
			t.Fatal(err)
		}
	}
	dev.Queue().Wait()
	at, _, _ := screenshot(t)
	// Point (x, y) sits at pixel ((x+10)·10, (10−y)·10): bright there, dark between.
	for _, p := range [][2]int{{50, 50}, {100, 100}, {175, 175}} {
		if g := at(p[0], p[1]); g[0] < 240 {
			t.Fatalf("pixel %v at a point is %v, want bright", p, g)
		}
	}
	for _, p := range [][2]int{{150, 50}, {20, 180}, {100, 150}} {
		if g := at(p[0], p[1]); g[0] > 10 {
			t.Fatalf("pixel %v away from the points is %v, want dark", p, g)
		}
	}
	// The saved-PNG rasteriser draws the same picture as the shader.
	ref := DensityImage(pts, 3, w.Grid(), 200, 200)
	for y := 0; y < 200; y += 3 {
		for x := 0; x < 200; x += 3 {
			if d := at(x, y)[0] - int(ref.GrayAt(x, y).Y); d > 3 || d < -3 {
				t.Fatalf("pixel (%d,%d): window %d, DensityImage %d", x, y, at(x, y)[0], ref.GrayAt(x, y).Y)
			}
		}
	}
}

// BenchmarkDrawDensity measures one frame of the density view of 300 points in a 480×480
// window (the live view of `osds train --view`), drawing and presenting included.
func BenchmarkDrawDensity(b *testing.B) {
	if os.Getenv("DISPLAY") == "" {
		b.Fatal("set DISPLAY (e.g. run under Xvfb) to benchmark the viewer")
	}
	dev, err := gpu.NewDevice()
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Release()
	pts := make([]float32, 600)
	for i := range pts {
		pts[i] = float32((i*7919)%280)/10 - 14
	}
	buf, _ := dev.CreateBuffer("points", 4*600, gpu.StorageUsage)
	defer buf.Release()
	dev.Queue().WriteFloat32(buf, 0, pts)
	w, err := Open(dev, dev.Adapter(), "bench", 480, 480)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if err := w.Show(buf, Grid{N: 300, W: 2, Density: true, Extent: [4]float32{-14, 14, -14, 14}, Radius: 2.5}); err != nil {
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
