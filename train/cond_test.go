package train

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"osds/kernels"
	"osds/nn"
)

// brownianPrior is an untrained (zero-drift) prior sampler for relative TB.
func brownianPrior(t *testing.T, l *kernels.Library, dim int, cfg Config) *Network {
	t.Helper()
	cfg.Objective, cfg.Classes, cfg.Langevin, cfg.Seed = kernels.TB, 0, false, cfg.Seed+100
	p, err := NewNetworkFor(l.Device(), dim, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Release)
	// A non-zero drift, so that a prior that is not used shows in the numbers.
	if err := p.L3.B.Value.Write([]float32{0.3, -0.2}); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameParams(t *testing.T, what string, a, b []*nn.Param) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d parameters", what, len(a), len(b))
	}
	for i := range a {
		va, _ := a[i].Value.Read()
		vb, _ := b[i].Value.Read()
		if a[i].Name != b[i].Name || len(va) != len(vb) {
			t.Fatalf("%s: parameter %s (%d) vs %s (%d)", what, a[i].Name, len(va), b[i].Name, len(vb))
		}
		for j := range va {
			if math.Float32bits(va[j]) != math.Float32bits(vb[j]) {
				t.Fatalf("%s: %s[%d]: %v vs %v", what, a[i].Name, j, va[j], vb[j])
			}
		}
	}
}

// TestAmortisedAndRTBResumeIsBitIdentical is TestResumeIsBitIdentical for an amortised
// sampler (per-condition log Z, condition embedding, replay and local search in blocks
// of conditions) and for relative TB (the frozen prior travels in the checkpoint).
func TestAmortisedAndRTBResumeIsBitIdentical(t *testing.T) {
	l := testLibrary(t)
	base := DefaultConfig(GMM25{})
	base.Steps, base.Batch, base.Explore, base.ExploreIters = 8, 64, 0.2, 100
	base.BothWays, base.Buffer = true, 640
	amortised := base
	amortised.Classes = 4
	amortised.LS = LocalSearch{Every: 6, Steps: 12, Burn: 4, Eta: 0.05, Beta: 1}
	amortised.Langevin = true
	amortisedVG := amortised
	amortisedVG.Objective, amortisedVG.LS, amortisedVG.Langevin = kernels.VarGrad, LocalSearch{}, false
	rtb := base
	rtb.Objective = kernels.RTB
	rtbCond := rtb
	rtbCond.Classes, rtbCond.BothWays = 3, false
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"amortised-tb", amortised}, {"amortised-vargrad", amortisedVG}, {"rtb", rtb}, {"rtb-amortised", rtbCond}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			opt := Options{Reward: TargetReward("gmm25")}
			if cfg.Classes > 0 {
				opt = Options{CondReward: Unconditional(TargetReward("gmm25"))}
			}
			if cfg.Objective == kernels.RTB {
				opt.Prior = brownianPrior(t, l, 2, cfg)
			}
			run := func(tr *Trainer, n int) {
				for i := 0; i < n; i++ {
					if _, _, err := tr.Step(); err != nil {
						t.Fatal(err)
					}
				}
			}
			a, err := NewTrainerWith(l, 2, cfg, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Release()
			run(a, 20)
			path := filepath.Join(t.TempDir(), "ckpt.safetensors")
			b, err := NewTrainerWith(l, 2, cfg, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Release()
			run(b, 10)
			if err := b.Save(path, "gmm25"); err != nil {
				t.Fatal(err)
			}
			ck, err := LoadCheckpoint(path)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Cfg.Classes != cfg.Classes || ck.Cfg.Objective != cfg.Objective {
				t.Fatalf("checkpoint config %+v", ck.Cfg)
			}
			opt2 := opt
			if cfg.Objective == kernels.RTB {
				// The prior comes back from the checkpoint alone.
				p, err := ck.RTBPrior(l.Device())
				if err != nil {
					t.Fatal(err)
				}
				defer p.Release()
				sameParams(t, "prior from the checkpoint", opt.Prior.Params(), p.Params())
				opt2.Prior = p
			} else if _, err := ck.RTBPrior(l.Device()); err == nil || !strings.Contains(err.Error(), "not relative TB") {
				t.Fatalf("RTBPrior of a %v checkpoint: %v", cfg.Objective, err)
			}
			r, err := NewTrainerWith(l, 2, ck.Cfg, opt2)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			if err := r.Restore(ck); err != nil {
				t.Fatal(err)
			}
			run(r, 10)
			sameParams(t, "straight vs resumed", append(a.Net.Params(), a.Net.LogZ), append(r.Net.Params(), r.Net.LogZ))
			if cfg.Classes > 0 && (a.Net.LogZ.Len() != cfg.Classes || a.Net.Emb == nil) {
				t.Fatalf("amortised network: log Z of %d, embedding %v", a.Net.LogZ.Len(), a.Net.Emb != nil)
			}
			if cfg.Objective == kernels.RTB {
				// The prior stays frozen.
				fresh := brownianPrior(t, l, 2, cfg)
				sameParams(t, "prior after training", fresh.Params(), opt.Prior.Params())
			}
		})
	}
}

// TestConditionalRewardSeesRowConditions checks what conditions the graphs ask the
// reward for: training and replay batches b mod C, SampleConditions its own.
func TestConditionalRewardSeesRowConditions(t *testing.T) {
	l := testLibrary(t)
	cfg := DefaultConfig(GMM25{})
	cfg.Steps, cfg.Batch, cfg.Classes, cfg.BothWays, cfg.Buffer = 4, 12, 3, true, 48
	asked := map[string]int{}
	cond := func(labels []int) RewardFunc {
		asked[fmt.Sprint(labels)]++
		return TargetReward("gmm25")
	}
	tr, err := NewTrainerWith(l, 2, cfg, Options{CondReward: cond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	train := fmt.Sprint(TrainingLabels(12, 3))
	if train != "[0 1 2 0 1 2 0 1 2 0 1 2]" || asked[train] != 2 || len(asked) != 1 {
		t.Fatalf("training graphs asked for %v", asked)
	}
	for i := 0; i < 4; i++ {
		if _, _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := tr.SampleConditions([]int{2, 2, 2, 2, 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Z) != 5 || fmt.Sprint(s.Labels) != "[2 2 2 2 2]" || asked["[2 2 2 2 2]"] != 1 {
		t.Fatalf("sampled %d with labels %v; asked %v", len(s.Z), s.Labels, asked)
	}
	// 25 balanced samples: chunks of the batch (12) with the training layout.
	s, err = tr.Sample(25, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, y := range s.Labels {
		if y != i%3 {
			t.Fatalf("sample %d has condition %d", i, y)
		}
	}
	if len(s.Z) != 25 {
		t.Fatalf("%d samples", len(s.Z))
	}
	if _, err := tr.SampleConditions([]int{0, 3}, 1); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("condition 3 of 3: %v", err)
	}
}

func TestConditionalAndRTBOptionErrors(t *testing.T) {
	l := testLibrary(t)
	cfg := DefaultConfig(GMM25{})
	cfg.Steps, cfg.Batch = 4, 10
	r := TargetReward("gmm25")
	cases := []struct {
		want string
		cfg  func(Config) Config
		opt  Options
	}{
		{"needs Options.Reward", func(c Config) Config { c.Classes = 2; return c }, Options{Reward: r}},
		{"needs Options.Reward", func(c Config) Config { return c }, Options{CondReward: Unconditional(r)}},
		{"multiple of 3", func(c Config) Config { c.Classes, c.BothWays, c.Buffer = 3, true, 100; return c }, Options{CondReward: Unconditional(r)}},
		{"needs a prior sampler", func(c Config) Config { c.Objective = kernels.RTB; return c }, Options{Reward: r}},
		{"density is unknown", func(c Config) Config {
			c.Objective, c.BothWays, c.Buffer = kernels.RTB, true, 100
			c.LS = LocalSearch{Every: 2, Steps: 3, Burn: 1, Eta: 0.1, Beta: 1}
			return c
		}, Options{Reward: r}},
		{"want 0 for an unconditional sampler", func(c Config) Config { c.Classes = 1000; return c }, Options{CondReward: Unconditional(r)}},
	}
	for _, c := range cases {
		tr, err := NewTrainerWith(l, 2, c.cfg(cfg), c.opt)
		if err == nil {
			tr.Release()
			t.Fatalf("%q: accepted", c.want)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Fatalf("want %q, got %v", c.want, err)
		}
	}
	cond := cfg
	cond.Width, cond.Harmonics, cond.Classes = 8, 4, 3
	net, err := NewNetworkFor(l.Device(), 2, cond)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	for _, c := range []struct {
		want   string
		labels []int
	}{{"a condition per row", nil}, {"a condition per row", []int{0, 1}}, {"row 1 has condition 3", []int{0, 3, 0, 0, 0, 0, 0, 0, 0, 0}}} {
		if _, err := NewGraphWith(l, net, cond, 10, r, GraphOptions{Labels: c.labels}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("labels %v: want %q, got %v", c.labels, c.want, err)
		}
	}
	plain := cfg
	plain.Width, plain.Harmonics = 8, 4
	unet, err := NewNetworkFor(l.Device(), 2, plain)
	if err != nil {
		t.Fatal(err)
	}
	defer unet.Release()
	if _, err := NewGraphWith(l, unet, plain, 10, r, GraphOptions{Labels: make([]int, 10)}); err == nil || !strings.Contains(err.Error(), "unconditional") {
		t.Fatalf("labels for an unconditional network: %v", err)
	}
	lp := plain
	lp.Langevin = true
	lnet, err := NewNetworkFor(l.Device(), 2, lp)
	if err != nil {
		t.Fatal(err)
	}
	defer lnet.Release()
	rtb := plain
	rtb.Objective = kernels.RTB
	if _, err := NewGraphWith(l, unet, rtb, 10, r, GraphOptions{Prior: lnet}); err == nil || !strings.Contains(err.Error(), "without the Langevin drift") {
		t.Fatalf("Langevin prior: %v", err)
	}
}
