package kernels

import "math"

// AdamBytes is the memory traffic of one AdamW step on P parameters: params, grads, m, v
// read and params, m, v written (28·P), plus one more read of grads for the norm when
// clipping.
func AdamBytes(p int, clip bool) float64 {
	if clip {
		return 32 * float64(p)
	}
	return 28 * float64(p)
}

// MeasureAdam times one AdamW step (with global-norm clipping when clip) on P parameters
// and returns the seconds per step (all of its dispatches) and AdamBytes.
func MeasureAdam(l *Library, p int, clip bool, reps int) (seconds, bytes float64, err error) {
	var ts []*Tensor
	defer func() {
		for _, t := range ts {
			t.Release()
		}
	}()
	for i, name := range []string{"params", "grads", "m", "v"} {
		t, err := rngBenchNormal(l, "adam bench "+name, uint32(i), p)
		if err != nil {
			return 0, 0, err
		}
		ts = append(ts, t)
	}
	// v must be non-negative; squares are what Adam would hold there.
	if err := ts[3].Fill(1e-4); err != nil {
		return 0, 0, err
	}
	cfg := DefaultAdamConfig()
	cfg.LR = 0 // keep params fixed across many repetitions
	if clip {
		cfg.MaxGradNorm = math.Sqrt(float64(p)) / 2
	}
	a, err := l.NewAdam(ts[0], ts[1], ts[2], ts[3], cfg)
	if err != nil {
		return 0, 0, err
	}
	defer a.Release()
	sec, err := TimeOps(l, reps, a.Ops()...)
	return sec, AdamBytes(p, clip), err
}
