package train

import (
	"math"
	"sort"
	"strings"
	"testing"

	"osds/kernels"
)

// Replay draws states with the weights it promises: the last replayed batch's mean log R
// (64 draws) matches the mean under the rank weights of the buffer it was drawn from
// (no forward batch enters after it) within 5 standard errors, for uniform replay the
// buffer's plain mean; rank replay's batch is far better than uniform's. The buffer's
// log R column is the reward of its states.
func TestRankReplayFavoursHighReward(t *testing.T) {
	l := testLibrary(t)
	replayed := map[bool]float64{}
	for _, rank := range []bool{false, true} {
		cfg := DefaultConfig(GMM25{})
		cfg.Steps, cfg.Batch, cfg.BothWays, cfg.Buffer, cfg.Rank = 6, 64, true, 1024, rank
		tr, err := NewTrainer(l, 2, cfg, TargetReward("gmm25"))
		if err != nil {
			t.Fatal(err)
		}
		for it := 0; it < 40; it++ { // ends with a replay iteration (it = 39)
			if _, _, err := tr.Step(); err != nil {
				t.Fatal(err)
			}
		}
		lr, err := tr.back.LogR.Read()
		if err != nil {
			t.Fatal(err)
		}
		buf, err := tr.buffer.logR.Read()
		if err != nil {
			t.Fatal(err)
		}
		filled := buf[:min(tr.buffer.inserted, len(buf))]
		// The draw's distribution over the buffer's values, best first.
		sorted := append([]float32(nil), filled...)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a] > sorted[b] })
		w := make([]float64, len(sorted))
		for r := range w {
			w[r] = 1 / float64(len(w))
		}
		if rank {
			w = kernels.RankProbabilities(len(sorted), kernels.RankWeight)
		}
		m, m2 := 0.0, 0.0
		for r, v := range sorted {
			m += w[r] * float64(v)
			m2 += w[r] * float64(v) * float64(v)
		}
		se := math.Sqrt((m2 - m*m) / float64(len(lr)))
		got := 0.0
		for _, v := range lr {
			got += float64(v) / float64(len(lr))
		}
		replayed[rank] = got
		t.Logf("rank=%v: replayed mean log R %.3f, expected %.3f ± %.3f (buffer of %d, best %.3f)", rank, got, m, se, len(sorted), sorted[0])
		if math.Abs(got-m) > 5*se {
			t.Errorf("rank=%v: replayed mean log R %.3f, want %.3f ± 5·%.3f", rank, got, m, se)
		}
		// The log R column is the reward of the stored states.
		z, err := tr.buffer.z.Read()
		if err != nil {
			t.Fatal(err)
		}
		g := GMM25{}
		for i := 0; i < len(filled); i += 97 {
			if want := g.LogR([]float64{float64(z[2*i]), float64(z[2*i+1])}); math.Abs(float64(filled[i])-want) > 1e-3*math.Max(1, math.Abs(want)) {
				t.Fatalf("buffer row %d: log R %v, the target gives %v", i, filled[i], want)
			}
		}
		tr.Release()
	}
	if replayed[true] <= replayed[false]+1 {
		t.Fatalf("rank replay's batch (mean log R %.3f) is not clearly better than uniform replay's (%.3f)", replayed[true], replayed[false])
	}
}

// Rank replay is refused where it cannot work, with the reason.
func TestRankReplayConfigErrors(t *testing.T) {
	l := testLibrary(t)
	for _, c := range []struct {
		cfg  func(Config) Config
		want string
	}{
		{func(c Config) Config { c.Rank = true; return c }, "needs a replay buffer"},
		{func(c Config) Config { c.Rank, c.BothWays, c.Buffer, c.Classes = true, true, 640, 2; return c }, "amortised"},
	} {
		cfg := c.cfg(DefaultConfig(GMM25{}))
		cfg.Batch = 32
		var err error
		if cfg.Classes > 0 {
			_, err = NewTrainerWith(l, 2, cfg, Options{CondReward: Unconditional(TargetReward("gmm25"))})
		} else {
			_, err = NewTrainer(l, 2, cfg, TargetReward("gmm25"))
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("want an error containing %q, got %v", c.want, err)
		}
	}
}

// Local search pushes its chains' states after every post-burn-in step into its own
// buffer, and replay then trains on states from that buffer (with their log R).
func TestLocalSearchFeedsReplay(t *testing.T) {
	l := testLibrary(t)
	for _, rank := range []bool{false, true} {
		cfg := DefaultConfig(GMM25{})
		cfg.Steps, cfg.Batch, cfg.BothWays, cfg.Buffer, cfg.Rank = 4, 32, true, 640, rank
		cfg.LS = LocalSearch{Every: 4, Steps: 7, Burn: 3, Eta: 0.05, Beta: 1}
		tr, err := NewTrainer(l, 2, cfg, TargetReward("gmm25"))
		if err != nil {
			t.Fatal(err)
		}
		for it := 0; it < 6; it++ { // local search runs before iteration 4; 5 replays
			if _, _, err := tr.Step(); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := tr.ls.buf.inserted, (7-3)*32; got != want {
			t.Fatalf("rank=%v: local search pushed %d states, want %d", rank, got, want)
		}
		ls, err := tr.ls.buf.z.Read()
		if err != nil {
			t.Fatal(err)
		}
		in := map[[2]float32]bool{}
		for i := 0; i < tr.ls.buf.filled(); i++ {
			in[[2]float32{ls[2*i], ls[2*i+1]}] = true
		}
		fwd, err := tr.buffer.z.Read()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < tr.buffer.filled(); i++ {
			delete(in, [2]float32{fwd[2*i], fwd[2*i+1]}) // states in both prove nothing
		}
		z, err := tr.back.Z[cfg.Steps].Read()
		if err != nil {
			t.Fatal(err)
		}
		hits := 0
		for b := 0; b < cfg.Batch; b++ {
			if in[[2]float32{z[2*b], z[2*b+1]}] {
				hits++
			}
		}
		if hits < cfg.Batch/2 {
			t.Fatalf("rank=%v: only %d of the last replay batch's %d states come from local search", rank, hits, cfg.Batch)
		}
		tr.Release()
	}
}
