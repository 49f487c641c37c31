package train

import (
	"fmt"
	"testing"
)

// TestDispatchesPerIteration fixes the number of compute dispatches one training
// iteration records, per configuration, on the fused path and on the op-by-op reference,
// so that a regression in either shows. T = 100 as published; the count does not depend
// on the batch. Both-ways and local-search configurations count their replay iteration
// (backward trajectories) too.
//
// The fused 41: time embedding 4, rollout 1, log R 1, loss 1, backward 20 (drift gradient
// 1, three input-gradient products, dtemb 1, four weight-gradient products and their four
// bias sums, time-embedding backward 7), Adam 14 (one per parameter tensor). A replay
// iteration adds the buffer draw (2) and the bridge trajectory (1). The Langevin drift's
// 268: the 41, its scale network's forward 5, per step the target's ∇log R and a rollout
// step (2·T − 1 more), its backward 14 (the scale's gradient 1, the network's 13) and
// Adam 9 (its parameter tensors).
func TestDispatchesPerIteration(t *testing.T) {
	l := testLibrary(t)
	for _, c := range []struct {
		name          string
		target        string
		opByOp        bool
		bothWays      bool
		langevin      bool
		classes       int
		forward, back int // dispatches of a forward and of a replay iteration
	}{
		{name: "gmm25 fused", target: "gmm25", forward: 41},
		{name: "gmm25 op by op", target: "gmm25", opByOp: true, forward: 939},
		{name: "manywell fused both ways", target: "manywell", bothWays: true, forward: 41, back: 44},
		{name: "manywell op by op both ways", target: "manywell", opByOp: true, bothWays: true, forward: 939, back: 1041},
		{name: "funnel langevin fused", target: "funnel", langevin: true, forward: 268},
		{name: "funnel langevin op by op", target: "funnel", opByOp: true, langevin: true, forward: 1167},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, err := NewTarget(c.target)
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig(tg)
			cfg.Batch, cfg.OpByOp, cfg.Langevin = 10, c.opByOp, c.langevin
			cfg.BothWays, cfg.Buffer = c.bothWays, 100
			tr, err := NewTrainer(l, tg.Dim(), cfg, TargetReward(c.target))
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Release()
			if got := tr.IterationPath() == "fused"; got != !c.opByOp {
				t.Fatalf("iteration path %q", tr.IterationPath())
			}
			counts := []int{}
			for it := 0; it < 2; it++ {
				if _, _, err := tr.Step(); err != nil {
					t.Fatal(err)
				}
				counts = append(counts, tr.Dispatches)
			}
			want := []int{c.forward, c.forward}
			if c.bothWays {
				want[1] = c.back
			}
			if fmt.Sprint(counts) != fmt.Sprint(want) {
				t.Errorf("dispatches per iteration %v, want %v", counts, want)
			}
		})
	}
}
