package train

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"osds/kernels"
)

// TestResumeIsBitIdentical trains 2k iterations straight, and k, save, load into a fresh
// trainer, k more: parameters must be identical bit for bit.
func TestResumeIsBitIdentical(t *testing.T) {
	l := testLibrary(t)
	for _, rank := range []bool{false, true} {
		t.Run(map[bool]string{false: "uniform replay", true: "rank replay"}[rank], func(t *testing.T) { testResume(t, l, rank) })
	}
}

func testResume(t *testing.T, l *kernels.Library, rank bool) {
	cfg := DefaultConfig(GMM25{})
	cfg.Rank = rank
	cfg.Steps, cfg.Batch, cfg.Explore, cfg.ExploreIters = 8, 64, 0.2, 100
	// Replay and local search too: the buffer, its fill count and the MALA step size are
	// part of the checkpoint.
	cfg.BothWays, cfg.Buffer = true, 640
	cfg.LS = LocalSearch{Every: 6, Steps: 12, Burn: 4, Eta: 0.05, Beta: 1}
	cfg.Langevin = true
	run := func(tr *Trainer, n int) {
		for i := 0; i < n; i++ {
			if _, _, err := tr.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, err := NewTrainer(l, 2, cfg, TargetReward("gmm25"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	run(a, 20)
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	b, err := NewTrainer(l, 2, cfg, TargetReward("gmm25"))
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
	c, err := NewTrainer(l, 2, ck.Cfg, TargetReward(ck.Target))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if err := c.Restore(ck); err != nil {
		t.Fatal(err)
	}
	run(c, 10)
	pa := append(a.Net.Params(), a.Net.LogZ)
	pc := append(c.Net.Params(), c.Net.LogZ)
	for i := range pa {
		va, _ := pa[i].Value.Read()
		vc, _ := pc[i].Value.Read()
		for j := range va {
			if math.Float32bits(va[j]) != math.Float32bits(vc[j]) {
				t.Fatalf("%s[%d]: straight %v, resumed %v", pa[i].Name, j, va[j], vc[j])
			}
		}
	}
}

func TestCheckpointRejectsForeignFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	os.WriteFile(path, []byte("not a checkpoint"), 0o644)
	if _, err := LoadCheckpoint(path); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := LoadCheckpoint(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}
