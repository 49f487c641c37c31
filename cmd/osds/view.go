package main

import (
	"bytes"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"osds/nn"
	"osds/train"
	"osds/viewer"
)

// runView samples a trained sampler interactively: r resamples, space pauses the
// automatic resampling, p toggles prior (the untrained reference process, Brownian motion
// from 0) and posterior samples, + and − zoom, s saves the view as PNG, q or Esc quits.
func runView(args []string) error {
	fs := pflag.NewFlagSet("view", pflag.ContinueOnError)
	size := fs.Int("size", 600, "window width and height in pixels")
	every := fs.Duration("every", time.Second, "resample this often unless paused")
	frames := fs.Int("frames", 0, "quit after this many frames (0: run until closed; for scripts)")
	save := fs.String("save", "", "save the last frame as this PNG when quitting")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: osds view [flags] CHECKPOINT")
	}
	ck, err := train.LoadCheckpoint(fs.Arg(0))
	if err != nil {
		return err
	}
	cs, err := openCheckpoint(ck)
	if err != nil {
		return err
	}
	defer cs.Close()
	d, l, tr := cs.d, cs.l, cs.tr
	post, err := train.NewGraph(l, tr.Net, ck.Cfg, ck.Cfg.Batch, train.TargetReward(ck.Target), false)
	if err != nil {
		return err
	}
	defer post.Release()
	// A fresh network's last layer is zero: its drift is 0, the reference process.
	priorNet, err := train.NewNetwork(d, ck.Dim, ck.Cfg.Width, ck.Cfg.Harmonics, rand.New(rand.NewPCG(1, 2)), false)
	if err != nil {
		return err
	}
	defer priorNet.Release()
	prior, err := train.NewGraph(l, priorNet, ck.Cfg, ck.Cfg.Batch, train.TargetReward(ck.Target), false)
	if err != nil {
		return err
	}
	defer prior.Release()

	w, err := viewer.Open(d, d.Adapter(), "osds view", *size, *size)
	if err != nil {
		return err
	}
	defer w.Close()
	extent, ok := viewExtents[ck.Target]
	if !ok {
		extent = [4]float32{-5, 5, -5, 5}
	}
	showPrior, paused := false, false
	stream := uint32(1)
	zoom := float32(1)
	g := post
	sample := func() error {
		g = post
		if showPrior {
			g = prior
		}
		if err := g.SetNoise(stream, 0); err != nil {
			return err
		}
		stream++
		r, err := l.NewRecorder("view sample")
		if err != nil {
			return err
		}
		g.RecordForward(r)
		return r.Submit()
	}
	show := func() error {
		z := g.Z[ck.Cfg.Steps]
		e := extent
		for i := range e {
			e[i] /= zoom
		}
		return w.Show(z.Buf, viewer.Grid{N: z.Rows(), W: z.Cols(), Density: true, Extent: e, Radius: 2.5})
	}
	savePNG := func(path string) error {
		pts, err := g.Z[ck.Cfg.Steps].Read()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, viewer.DensityImage(pts, ck.Dim, w.Grid(), *size, *size)); err != nil {
			return err
		}
		if err := nn.WriteFileAtomic(path, buf.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "saved %s\n", path)
		return nil
	}
	if err := sample(); err != nil {
		return err
	}
	if err := show(); err != nil {
		return err
	}
	last := time.Now()
	for n := 0; *frames == 0 || n < *frames; n++ {
		which := "posterior"
		if showPrior {
			which = "prior"
		}
		state := ""
		if paused {
			state = " (paused)"
		}
		w.SetTitle(fmt.Sprintf("osds view — %s, %s samples%s, zoom %.2g — r resample, space pause, p prior/posterior, +/- zoom, s save, q quit", ck.Target, which, state, zoom))
		if err := w.Draw(); err != nil {
			return err
		}
		resample := !paused && time.Since(last) >= *every
		for _, k := range w.Keys() {
			switch k {
			case "q", "escape":
				return finishView(*save, savePNG)
			case "r":
				resample = true
			case "space":
				paused = !paused
			case "p":
				showPrior = !showPrior
				resample = true
			case "+":
				zoom *= 1.25
			case "-":
				zoom /= 1.25
			case "s":
				if err := savePNG(filepath.Join(".", fmt.Sprintf("osds-view-%d.png", time.Now().Unix()))); err != nil {
					return err
				}
			}
		}
		if resample {
			last = time.Now()
			if err := sample(); err != nil {
				return err
			}
		}
		if err := show(); err != nil {
			return err
		}
		if w.ShouldClose() {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	return finishView(*save, savePNG)
}

func finishView(path string, save func(string) error) error {
	if path == "" {
		return nil
	}
	return save(path)
}
