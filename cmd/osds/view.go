package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osds/kernels"
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
  0 … 9    amortised samplers: draw only this class
  a        amortised samplers: draw every class again, one per grid column
  + / -    zoom in / out (density views of 2-D targets)
  [ / ]    show half / twice as many samples (from 1 to the batch size)
  l        nearest / linear scaling
  s        save the view as osds-view-TIME.png (image grids at the images' resolution)
  q, Esc   quit
`

// viewState is what the keys of `osds view` change.
type viewState struct {
	showPrior, paused, linear bool
	zoom                      float32
	shown, total              int // samples drawn, of the batch
	class, classes            int // amortised samplers (classes > 0): the class drawn, -1 for every class
}

// viewAction is what a key asks of the loop beyond changing the state.
type viewAction int

const (
	viewNone viewAction = iota
	viewResample
	viewRelabel // the class changed: rebuild the sampler's graph and resample
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
	case "a":
		if s.classes > 0 && s.class != -1 {
			s.class = -1
			return viewRelabel
		}
	case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9":
		if c := int(k[0] - '0'); c < s.classes && c != s.class {
			s.class = c
			return viewRelabel
		}
	}
	return viewNone
}

// status is the line shown in the window (and its title).
func (s *viewState) status(target string) string {
	which := "posterior"
	if s.showPrior {
		which = "prior"
	}
	cond, condKeys := "", ""
	if s.classes > 0 {
		cond, condKeys = " all classes", " 0-9:class a:all"
		if s.class >= 0 {
			cond = fmt.Sprintf(" class %d", s.class)
		}
	}
	state := ""
	if s.paused {
		state = " (paused)"
	}
	return fmt.Sprintf("%s %s%s%s %d/%d zoom %.2g | r:resample space:pause p:prior%s +-:zoom []:samples s:save q:quit",
		target, which, cond, state, s.shown, s.total, s.zoom, condKeys)
}

// labels are the rows' conditions of a batch of B for an amortised sampler of classes
// conditions: all of class, or (class < 0) row b of class b mod classes, the training
// layout. nil when the sampler is not amortised.
func viewLabels(B, classes, class int) []int {
	if classes == 0 {
		return nil
	}
	if class < 0 {
		return train.TrainingLabels(B, classes)
	}
	out := make([]int, B)
	for i := range out {
		out[i] = class
	}
	return out
}

// runView samples a trained sampler interactively (the keys are listed in viewKeys).
func runView(args []string) error {
	fs := pflag.NewFlagSet("view", pflag.ContinueOnError)
	size := fs.Int("size", 600, "plot width and height in pixels (the window is a status line taller)")
	every := fs.Duration("every", time.Second, "resample this often unless paused")
	frames := fs.Int("frames", 0, "quit after this many frames (0: run until closed; for scripts)")
	save := fs.String("save", "", "save the last frame as this PNG when quitting")
	class := fs.Int("class", -1, "amortised samplers: draw only this class (default: every class, row b of the batch class b mod classes); keys 0-9 and a change it")
	ckptFlag := fs.String("checkpoint", "", "the checkpoint to view (or give it as the argument; default: the newest run's)")
	keys := fs.String("keys", "", "press these keys (names as in the list above, comma-separated) one per frame from the second frame on (for scripts and tests)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: osds view [flags] [CHECKPOINT]\n\nSamples a trained sampler in a window, redrawing as it resamples: the images f(z)\nof a posterior in a prior's noise space, or the density of a 2-D target's samples.\n\n%s\nflags:\n", viewKeys)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, err := checkpointArg(fs, *ckptFlag)
	if err != nil {
		return err
	}
	ck, err := train.LoadCheckpoint(path)
	if err != nil {
		return err
	}
	B, classes := ck.Cfg.Batch, ck.Cfg.Classes
	switch {
	case classes == 0 && fs.Changed("class"):
		return fmt.Errorf("--class: %s is not amortised (trained on %s)", path, ck.Meta[posterior.MetaConstraint])
	case classes > 0 && fs.Changed("class") && (*class < 0 || *class >= classes):
		return fmt.Errorf("--class %d: the sampler has classes 0..%d", *class, classes-1)
	}
	var scripted []string
	if *keys != "" {
		scripted = strings.Split(*keys, ",")
	}
	cs, err := openCheckpoint(ck)
	if err != nil {
		return err
	}
	defer cs.Close()
	d, l, tr := cs.d, cs.l, cs.tr

	// The posterior graph draws the current class; a class key rebuilds it.
	var post *train.Graph
	defer func() {
		if post != nil {
			post.Release()
		}
	}()
	buildPost := func(class int) error {
		if post != nil {
			post.Release()
			post = nil
		}
		labels := viewLabels(B, classes, class)
		var err error
		post, err = train.NewGraphWith(l, tr.Net, ck.Cfg, B, cs.opts.rewardFor(labels), train.GraphOptions{Labels: labels, Prior: tr.Prior()})
		return err
	}
	if err := buildPost(*class); err != nil {
		return err
	}
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
	prior, err := train.NewGraph(l, priorNet, pcfg, B, cs.opts.rewardFor(viewLabels(B, classes, -1)), false)
	if err != nil {
		return err
	}
	defer prior.Release()

	w, err := viewer.Open(d, d.Adapter(), "osds view", *size, *size+viewer.StatusHeight(*size))
	if err != nil {
		return err
	}
	defer w.Close()
	v := newSamplesView(l, cs.setup, ck.Target, classes)
	defer v.release()
	st := viewState{zoom: 1, shown: v.defaultShown(B), total: B, class: *class, classes: classes}
	if classes == 0 {
		st.class = -1
	}
	// The image grid has one class per column only while every class is drawn.
	gridCols := func() {
		v.cols = 0
		if st.class < 0 {
			v.cols = classes
		}
	}
	gridCols()
	stream := uint32(1)
	sample := func() error {
		g := post
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
		if err := r.Submit(); err != nil {
			return err
		}
		if err := v.bind(g.Z[ck.Cfg.Steps]); err != nil {
			return err
		}
		return v.update()
	}
	savePNG := func(path string) error {
		if err := v.savePNG(path, w, *size); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "saved %s\n", path)
		return nil
	}
	if err := sample(); err != nil {
		return err
	}
	if err := v.show(w, st.shown, st.linear, st.zoom); err != nil {
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
		pressed := w.Keys()
		if n >= 1 && len(scripted) > 0 {
			pressed, scripted = append(pressed, strings.TrimSpace(scripted[0])), scripted[1:]
		}
		for _, k := range pressed {
			switch st.key(k) {
			case viewQuit:
				return finishView(*save, savePNG)
			case viewResample:
				resample = true
			case viewRelabel:
				if err := buildPost(st.class); err != nil {
					return err
				}
				gridCols()
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
		if err := v.show(w, st.shown, st.linear, st.zoom); err != nil {
			return err
		}
		if w.ShouldClose() {
			break
		}
		if err := sigs.err(); err != nil {
			// Ctrl-C in the terminal quits like the window's q, saving --save first.
			if serr := finishView(*save, savePNG); serr != nil {
				return serr
			}
			return err
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
