package train

import (
	"testing"

	"osds/kernels"
)

// BenchmarkIterationParts times the parts of one training iteration at the published
// configuration (T = 100, batch 300, width 64) on the GPU (kernels.TimeOps), fused and
// op by op, for 25GMM (d = 2) and Manywell (d = 32): the time embedding, the rollout
// steps, log R, the loss and the backward pass, in ms per iteration.
//
//	go test ./train -run '^$' -bench IterationParts -benchtime 1x
func BenchmarkIterationParts(b *testing.B) {
	l := testLibrary(b)
	for _, target := range []string{"gmm25", "manywell"} {
		for _, opByOp := range []bool{false, true} {
			name := target + "/fused"
			if opByOp {
				name = target + "/op-by-op"
			}
			b.Run(name, func(b *testing.B) {
				tg, err := NewTarget(target)
				if err != nil {
					b.Fatal(err)
				}
				cfg := DefaultConfig(tg)
				cfg.OpByOp = opByOp
				net, err := NewNetworkFor(l.Device(), tg.Dim(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer net.Release()
				g, err := NewGraph(l, net, cfg, cfg.Batch, TargetReward(target), true)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Release()
				submitIteration(b, l, g) // compiles and warms every pipeline
				for i := 0; i < b.N; i++ {
					for _, part := range []struct {
						name string
						ops  []*kernels.Op
					}{{"time-ms", g.timeOps}, {"steps-ms", g.stepOps}, {"reward-ms", g.rewardOps}, {"loss-ms", g.lossOps}, {"backward-ms", g.backOps}} {
						s, err := kernels.TimeOps(l, 3, part.ops...)
						if err != nil {
							b.Fatal(err)
						}
						b.ReportMetric(1e3*s, part.name)
					}
				}
			})
		}
	}
}
