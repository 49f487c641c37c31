package kernels

// SDEStepBytes is the memory traffic of one SDE step on B×d: z_k and u read, z_{k+1}
// written, the two accumulators read and written.
func SDEStepBytes(b, d int) float64 { return 12*float64(b*d) + 16*float64(b) }

// MeasureSDEStep times a trajectory of steps SDE steps (one op per step, z_0 → z_N as a
// trainer records them) on B samples of dimension d, and returns the seconds per step
// and SDEStepBytes.
func MeasureSDEStep(l *Library, b, d, steps, reps int) (seconds, bytes float64, err error) {
	var ts []*Tensor
	defer func() {
		for _, t := range ts {
			t.Release()
		}
	}()
	alloc := func(label string, stream uint32, shape ...int) *Tensor {
		if err != nil {
			return nil
		}
		var t *Tensor
		t, err = rngBenchNormal(l, label, stream, shape...)
		ts = append(ts, t)
		return t
	}
	zs := make([]*Tensor, steps+1)
	for k := range zs {
		zs[k] = alloc("sde bench z", uint32(k), b, d)
	}
	u := alloc("sde bench u", 1000, b, d)
	pf := alloc("sde bench log p_F", 1001, b)
	pb := alloc("sde bench log p_B", 1002, b)
	if err != nil {
		return 0, 0, err
	}
	ops := make([]*Op, 0, steps)
	defer func() {
		for _, op := range ops {
			op.Release()
		}
	}()
	for k := 0; k < steps; k++ {
		s, err := l.SDEStep(zs[k], u, zs[k+1], pf, pb, SDEParams{Step: k, Steps: steps, Sigma: 1, SigmaExplore: 0.1, Seed: 0x5eed})
		if err != nil {
			return 0, 0, err
		}
		ops = append(ops, s.Op)
	}
	sec, err := TimeOps(l, reps, ops...)
	return sec / float64(steps), SDEStepBytes(b, d), err
}
