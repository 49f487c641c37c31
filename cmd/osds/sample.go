package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"osds/posterior"
	"osds/priors"
	"osds/train"
)

// runSample draws from a trained sampler and writes its samples: x = f(z) of a posterior
// sampler as a PNG grid, and z and x as numbers (.npz, .npy, .safetensors, .csv) for
// the user's own tools; a synthetic target's samples z as numbers. An amortised sampler
// (trained with class:all) draws the class given by --class, or every class, one grid
// row each; either way the samples come from one SDE pass per batch of the training
// batch size.
func runSample(args []string) error {
	fs := pflag.NewFlagSet("sample", pflag.ContinueOnError)
	n := fs.Int("n", 64, "number of samples (amortised samplers without --class: per class, default --cols)")
	cols := fs.Int("cols", 8, "grid columns")
	class := fs.String("class", "", "amortised samplers (trained with --constraint class:all): the class `LABEL` to sample, or all (the default) for every class in rows of the grid")
	seed := fs.Uint32("seed", 1, "noise stream of the sampler")
	out := fs.String("out", "samples.png", "files to write, comma-separated, each in the format of its extension: "+sampleFormats)
	ckptFlag := fs.String("checkpoint", "", "the checkpoint to sample (or give it as the argument; default: the newest run's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *cols < 1 {
		return fmt.Errorf("--n %d and --cols %d must be ≥ 1", *n, *cols)
	}
	path, err := checkpointArg(fs, *ckptFlag)
	if err != nil {
		return err
	}
	ck, err := train.LoadCheckpoint(path)
	if err != nil {
		return err
	}
	post := ck.Target == posterior.TargetName
	outs := strings.Split(*out, ",")
	for _, o := range outs {
		if err := checkSampleOut(strings.TrimSpace(o), post, ck.Dim); err != nil {
			if !post && strings.EqualFold(filepath.Ext(o), ".png") {
				return fmt.Errorf("%s samples %q, not a posterior in a prior's noise space: %w", path, ck.Target, err)
			}
			return err
		}
	}
	if !post {
		if fs.Changed("class") {
			return fmt.Errorf("--class: %s samples %q, which has no classes", path, ck.Target)
		}
		cs, err := openCheckpoint(ck)
		if err != nil {
			return err
		}
		defer cs.Close()
		s, err := cs.tr.Sample(*n, *seed)
		if err != nil {
			return err
		}
		set := &sampleSet{N: len(s.Z), D: ck.Dim}
		for _, z := range s.Z {
			for _, v := range z {
				set.Z = append(set.Z, float32(v))
			}
		}
		for _, o := range outs {
			if err := set.write(strings.TrimSpace(o)); err != nil {
				return err
			}
		}
		fmt.Printf("wrote %s (%d samples of %s, d = %d)\n", strings.Join(outs, ", "), set.N, ck.Target, ck.Dim)
		return nil
	}
	classes := ck.Cfg.Classes
	// The conditions to draw (amortised), checked before the models load.
	var labels []int
	switch {
	case classes == 0 && fs.Changed("class"):
		return fmt.Errorf("--class %s: %s is not amortised: it was trained on the single constraint %s; --class needs a sampler trained with --constraint class:all", *class, path, ck.Meta[posterior.MetaConstraint])
	case classes > 0 && (*class == "" || *class == "all"):
		per := *cols
		if fs.Changed("n") {
			per = *n
		}
		*cols = per
		for y := 0; y < classes; y++ {
			for i := 0; i < per; i++ {
				labels = append(labels, y)
			}
		}
	case classes > 0:
		y, err := strconv.Atoi(*class)
		if err != nil || y < 0 || y >= classes {
			return fmt.Errorf("--class %q: the amortised sampler %s has classes 0..%d (or all)", *class, path, classes-1)
		}
		for i := 0; i < *n; i++ {
			labels = append(labels, y)
		}
	}
	cs, err := openCheckpoint(ck)
	if err != nil {
		return err
	}
	defer cs.Close()
	var s *train.Samples
	if labels != nil {
		s, err = cs.tr.SampleConditions(labels, *seed)
	} else {
		s, err = cs.tr.Sample(*n, *seed)
	}
	if err != nil {
		return err
	}
	total := len(s.Z)
	xs, err := posterior.Decode(cs.l, cs.setup.Prior, s.Z)
	if err != nil {
		return err
	}
	h, w, c := cs.setup.Prior.Image()
	set := &sampleSet{N: total, D: ck.Dim, X: xs, H: h, W: w, C: c, Labels: s.Labels}
	for _, z := range s.Z {
		for _, v := range z {
			set.Z = append(set.Z, float32(v))
		}
	}
	for _, o := range outs {
		o = strings.TrimSpace(o)
		if strings.EqualFold(filepath.Ext(o), ".png") {
			err = priors.WriteGridPNG(o, xs, total, h, w, c, *cols)
		} else {
			err = set.write(o)
		}
		if err != nil {
			return err
		}
	}
	var score map[string]float64
	if s.Labels != nil {
		score, err = cs.setup.ScoreLabels(cs.l, xs, s.Labels)
	} else {
		score, err = cs.setup.Score(cs.l, xs, total)
	}
	if err != nil {
		return err
	}
	var parts []string
	for _, k := range sortedKeys(score) {
		parts = append(parts, fmt.Sprintf("%s %.4f", k, score[k]))
	}
	what := fmt.Sprintf("%d samples of the posterior of %s", total, cs.setup.Describe())
	if labels != nil {
		if *class == "" || *class == "all" {
			what = fmt.Sprintf("%d samples of each of the %d classes (one row each) of the amortised sampler of %s", total/classes, classes, cs.setup.Describe())
		} else {
			what = fmt.Sprintf("%d samples of class %s of the amortised sampler of %s", total, *class, cs.setup.Describe())
		}
	}
	fmt.Printf("wrote %s (%s; %s)\n", strings.Join(outs, ", "), what, strings.Join(parts, ", "))
	return nil
}
