package main

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"osds/kernels"
	"osds/nn"
	"osds/posterior"
	"osds/train"
	"osds/viewer"
)

// viewKeys documents the keys of `osds view` (its help and the window's status line).
const viewKeys = `keys:
  r        resample now
  space    pause / resume the automatic resampling
  p        switch between prior (the untrained reference process, Brownian motion from 0;
           for relative TB the frozen prior sampler) and posterior samples
  + / -    zoom in / out
  [ / ]    show half / twice as many samples (from 1 to the batch size)
  l        nearest / linear scaling of image grids (the density view of 2-D targets has none)
  s        save the view as osds-view-TIME.png
  q, Esc   quit
`

// viewState is what the keys of `osds view` change.
type viewState struct {
	showPrior, paused, linear bool
	zoom                      float32
	shown, total              int // samples drawn, of the batch
}

// viewAction is what a key asks of the loop beyond changing the state.
type viewAction int

const (
	viewNone viewAction = iota
	viewResample
	viewSave
	viewQuit
)

// key applies one key (a name from viewer.Window.Keys).
func (s *viewState) key(k string) viewAction {
	switch k {
	case "q", "escape":
		return viewQuit
	case "r":
		return viewResample
	case "space":
		s.paused = !s.paused
	case "p":
		s.showPrior = !s.showPrior
		return viewResample
	case "+":
		s.zoom *= 1.25
	case "-":
		s.zoom /= 1.25
	case "[":
		s.shown = max(1, s.shown/2)
	case "]":
		s.shown = min(s.total, 2*s.shown)
	case "l":
		s.linear = !s.linear
	case "s":
		return viewSave
	}
	return viewNone
}

// status is the line shown in the window (and its title).
func (s *viewState) status(target string) string {
	which := "posterior"
	if s.showPrior {
		which = "prior"
	}
	state := ""
	if s.paused {
		state = " (paused)"
	}
	return fmt.Sprintf("%s %s%s %d/%d zoom %.2g | r:resample space:pause p:prior +-:zoom []:samples s:save q:quit",
		target, which, state, s.shown, s.total, s.zoom)
}

// runView samples a trained sampler interactively (the keys are listed in viewKeys).
func runView(args []string) error {
	fs := pflag.NewFlagSet("view", pflag.ContinueOnError)
	size := fs.Int("size", 600, "plot width and height in pixels (the window is a status line taller)")
	every := fs.Duration("every", time.Second, "resample this often unless paused")
	frames := fs.Int("frames", 0, "quit after this many frames (0: run until closed; for scripts)")
	save := fs.String("save", "", "save the last frame as this PNG when quitting")
	class := fs.Int("class", -1, "amortised samplers: draw only this class (default: every class, row b of the batch class b mod classes)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: osds view [flags] CHECKPOINT\n\nSamples a trained sampler in a window, redrawing as it resamples.\n\n%s\nflags:\n", viewKeys)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
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
	// An amortised sampler draws every class (the training layout) or --class.
	var labels []int
	switch {
	case ck.Cfg.Classes == 0 && fs.Changed("class"):
		return fmt.Errorf("--class: %s is not amortised (trained on %s)", fs.Arg(0), ck.Meta[posterior.MetaConstraint])
	case ck.Cfg.Classes > 0 && fs.Changed("class"):
		if *class < 0 || *class >= ck.Cfg.Classes {
			return fmt.Errorf("--class %d: the sampler has classes 0..%d", *class, ck.Cfg.Classes-1)
		}
		labels = make([]int, ck.Cfg.Batch)
		for i := range labels {
			labels[i] = *class
		}
	default:
		labels = train.TrainingLabels(ck.Cfg.Batch, ck.Cfg.Classes)
	}
	reward := cs.opts.rewardFor(labels)
	post, err := train.NewGraphWith(l, tr.Net, ck.Cfg, ck.Cfg.Batch, reward, train.GraphOptions{Labels: labels, Prior: tr.Prior()})
	if err != nil {
		return err
	}
	defer post.Release()
	// The prior view: relative TB's frozen prior sampler, or else a fresh network, whose
	// last layer is zero: its drift is 0, the reference process.
	pcfg := ck.Cfg
	pcfg.Classes, pcfg.Objective = 0, kernels.TB
	priorNet := tr.Prior()
	if priorNet == nil {
		if priorNet, err = train.NewNetwork(d, ck.Dim, ck.Cfg.Width, ck.Cfg.Harmonics, rand.New(rand.NewPCG(1, 2)), false); err != nil {
			return err
		}
		defer priorNet.Release()
	}
	prior, err := train.NewGraph(l, priorNet, pcfg, ck.Cfg.Batch, reward, false)
	if err != nil {
		return err
	}
	defer prior.Release()

	w, err := viewer.Open(d, d.Adapter(), "osds view", *size, *size+viewer.StatusHeight(*size))
	if err != nil {
		return err
	}
	defer w.Close()
	extent, ok := viewExtents[ck.Target]
	if !ok {
		extent = [4]float32{-5, 5, -5, 5}
	}
	st := viewState{zoom: 1, shown: ck.Cfg.Batch, total: ck.Cfg.Batch}
	stream := uint32(1)
	g := post
	sample := func() error {
		g = post
		if st.showPrior {
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
			e[i] /= st.zoom
		}
		return w.Show(z.Buf, viewer.Grid{N: min(st.shown, z.Rows()), W: z.Cols(), Density: true, Extent: e, Radius: 2.5, Linear: st.linear})
	}
	savePNG := func(path string) error {
		pts, err := g.Z[ck.Cfg.Steps].Read()
		if err != nil {
			return err
		}
		pw, ph := w.PlotSize()
		if pw < 1 || ph < 1 { // nothing drawn yet, or minimised
			pw, ph = *size, *size
		}
		var buf bytes.Buffer
		gr := w.Grid() // the samples shown: the first gr.N rows
		if err := png.Encode(&buf, viewer.DensityImage(pts[:gr.N*gr.W], gr.W, gr, pw, ph)); err != nil {
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
		line := st.status(ck.Target)
		w.SetTitle("osds view — " + line)
		w.SetStatus(line)
		if err := w.Draw(); err != nil {
			return err
		}
		resample := !st.paused && time.Since(last) >= *every
		for _, k := range w.Keys() {
			switch st.key(k) {
			case viewQuit:
				return finishView(*save, savePNG)
			case viewResample:
				resample = true
			case viewSave:
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
