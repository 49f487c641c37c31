package kernels

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestRolloutMatchesReference runs the fused rollout against RefRollout (float64, the
// Go Philox noise) on awkward sizes (d = 1, 3, 32; batch 1, 7, 301; T = 1, 2, 100), for
// sampling and for given states, with and without the saved activations, conditions and
// exploration, and with one or two column groups per invocation. Outputs are poisoned
// first; the accumulators start from random values (the kernel adds to them).
func TestRolloutMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	cases := []struct {
		d, b, T, w, classes, wg int
		mode                    RolloutMode
		save, lv, lp            bool
		explore                 float64
	}{
		{d: 1, b: 1, T: 1, w: 4, mode: RolloutSample, save: true},
		{d: 2, b: 301, T: 100, w: 16, mode: RolloutSample},
		{d: 32, b: 7, T: 100, w: 12, mode: RolloutSample, save: true},
		{d: 32, b: 301, T: 2, w: 8, mode: RolloutGiven, classes: 4, save: true},
		{d: 3, b: 9, T: 3, w: 8, mode: RolloutSample, classes: 3, save: true, explore: 0.4},
		{d: 2, b: 7, T: 2, w: 64, mode: RolloutSample, save: true, wg: 4}, // two column groups per invocation
		// Learned variance: sampling (with exploration), given states, long trajectories.
		{d: 3, b: 9, T: 3, w: 8, mode: RolloutSample, save: true, lv: true, explore: 0.3},
		{d: 5, b: 13, T: 2, w: 12, mode: RolloutGiven, classes: 3, save: true, lv: true},
		{d: 2, b: 301, T: 100, w: 16, mode: RolloutSample, lv: true},
		// The Langevin term: one step per dispatch when sampling (as the trainer runs it),
		// the whole trajectory at once for given states; gradients with NaNs and values
		// beyond the clip.
		{d: 1, b: 1, T: 1, w: 4, mode: RolloutSample, save: true, lp: true},
		{d: 3, b: 7, T: 5, w: 8, mode: RolloutSample, save: true, lp: true, explore: 0.3},
		{d: 32, b: 301, T: 2, w: 12, mode: RolloutGiven, classes: 3, save: true, lp: true},
		{d: 2, b: 9, T: 100, w: 16, mode: RolloutSample, lp: true, lv: true},
	}
	for _, c := range cases {
		name := fmt.Sprintf("d%d_b%d_T%d_w%d_mode%d_save%v_cond%d_wg%d_lv%v_lp%v", c.d, c.b, c.T, c.w, c.mode, c.save, c.classes, c.wg, c.lv, c.lp)
		t.Run(name, func(t *testing.T) {
			rolloutForceInvocations = c.wg
			defer func() { rolloutForceInvocations = 0 }()
			lay := NewRolloutLayout(RolloutShape{D: c.d, W: c.w, T: c.T, Classes: c.classes, LV: c.lv, LP: c.lp})
			// Weights scaled by 1/√fan-in, as a trained sampler's are, so that a 100-step
			// trajectory stays bounded instead of running into the drift clip (where states
			// of thousands make f32 rounding, not the kernel, the measured error).
			in, hid := 1/math.Sqrt(float64(c.d)), 1/math.Sqrt(float64(c.w))
			ref := RefRolloutNet{
				WS: to64(randn(rng, c.d*c.w, in)), SBias: to64(randn(rng, c.T*c.w, 0.5)),
				W1: to64(randn(rng, c.w*c.w, hid)), B1: to64(randn(rng, c.w, 0.3)),
				W2: to64(randn(rng, c.w*c.w, hid)), B2: to64(randn(rng, c.w, 0.3)),
				W3: to64(randn(rng, c.w*lay.Out, hid)), B3: to64(randn(rng, lay.Out, 0.3)),
				Emb: to64(randn(rng, c.classes*c.w, 0.5)),
			}
			if c.lp {
				ref.Scale = to64(randn(rng, c.T, 0.5))
			}
			pack := make([]float32, lay.Len)
			for _, part := range []struct {
				at int
				xs []float64
			}{{lay.WS, ref.WS}, {lay.SBias, ref.SBias}, {lay.W1, ref.W1}, {lay.B1, ref.B1}, {lay.W2, ref.W2}, {lay.B2, ref.B2}, {lay.W3, ref.W3}, {lay.B3, ref.B3}, {lay.Emb, ref.Emb}, {lay.Scale, ref.Scale}} {
				for i, v := range part.xs {
					pack[part.at+i] = float32(v)
				}
			}
			sigma2 := 0.5 + 2*rng.Float64()
			p := RolloutParams{Steps: c.T, Sigma: sqrt(sigma2), SigmaExplore: c.explore, Seed: rng.Uint64(), Stream: rng.Uint32(), K0: 0, K1: c.T}
			// The kernel's stacks use the stride b (no padding) so that the reference's
			// layout is the same; the trainer's padded strides are covered by train's tests.
			z := make([]float64, (c.T+1)*c.b*c.d)
			if c.mode == RolloutGiven {
				for i, v := range randn(rng, len(z), 1.5) {
					z[i] = float64(v)
				}
			}
			zs := mustTensor(t, l, "z", f32(z), (c.T+1)*c.b, c.d)
			if c.mode == RolloutSample {
				if err := zs.Poison(); err != nil {
					t.Fatal(err)
				}
			}
			pf0, pb0 := randn(rng, c.b, 5), randn(rng, c.b, 5)
			inputs, err := NewRolloutInputs(l.Device(), "steps", lay, c.b, sigma2)
			if err != nil {
				t.Fatal(err)
			}
			defer inputs.Release()
			var grads []float64
			if c.lp {
				// ∇log R of every step: mostly inside the clip, some far outside, some NaN
				// (outside a target's support), which the drift must ignore.
				gs := randn(rng, c.T*c.b*c.d, 30)
				for i := range gs {
					switch rng.IntN(20) {
					case 0:
						gs[i] = float32(math.NaN())
					case 1:
						gs[i] *= 100
					}
				}
				if err := inputs.Grads.Write(gs); err != nil {
					t.Fatal(err)
				}
				grads = to64(gs)
			}
			bufs := RolloutBuffers{
				Net: mustTensor(t, l, "pack", pack, lay.Len), Steps: inputs.All,
				Z: zs, U: poisoned(t, l, "u", c.T*c.b, lay.Out), LogPF: mustTensor(t, l, "log p_F", pf0, c.b),
			}
			if c.save {
				bufs.Save = poisoned(t, l, "save", 6*c.T*c.b, c.w)
			}
			if c.mode == RolloutSample {
				bufs.LogPB = mustTensor(t, l, "log p_B", pb0, c.b)
			}
			var labels []uint32
			if c.classes > 0 {
				labels = make([]uint32, c.b)
				for i := range labels {
					labels[i] = uint32(rng.IntN(c.classes))
				}
				idx, err := IndexFromSlice(l.Device(), "labels", labels, c.classes)
				if err != nil {
					t.Fatal(err)
				}
				defer idx.Release()
				bufs.Labels = idx
			}
			// A sampling rollout with the Langevin term runs one step per dispatch, as the
			// trainer records it (the gradients of step k are formed between dispatches).
			spans := [][2]int{{0, c.T}}
			if c.lp && c.mode == RolloutSample {
				spans = spans[:0]
				for k := 0; k < c.T; k++ {
					spans = append(spans, [2]int{k, k + 1})
				}
			}
			var ops []*Op
			for _, sp := range spans {
				q := p
				q.K0, q.K1 = sp[0], sp[1]
				op, err := l.Rollout(lay, c.b, c.b, c.mode, bufs, q)
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				ops = append(ops, op.Op)
			}
			if err := l.Run(ops...); err != nil {
				t.Fatal(err)
			}
			wantPF, wantPB := to64(pf0), to64(pb0)
			var wantU []float64
			var wantSave [6][]float64
			if c.mode == RolloutSample && c.T > 3 {
				// Over a long trajectory the f32 roundings of one step feed back through
				// the states and grow chaotically, so no tolerance on a free-running
				// comparison is both safe and sharp. Instead every transition is checked:
				// the reference takes each step from the kernel's own state z_k.
				z = to64(readT(t, zs))
				wantU, wantSave = refRolloutForced(ref, lay, c.b, labels, p, z, grads, wantPF, wantPB)
			} else {
				wantU, wantSave = RefRollout(ref, lay, c.b, labels, c.mode, p, z, grads, wantPF, wantPB)
			}
			// Each step is exact to the f32 rounding of its dot products.
			tol := 1e-4
			assertClose(t, "states", readT(t, zs), z, tol)
			assertClose(t, "drifts", readT(t, bufs.U), wantU, tol)
			assertClose(t, "log p_F", readT(t, bufs.LogPF), wantPF, tol)
			if c.mode == RolloutSample {
				assertClose(t, "log p_B", readT(t, bufs.LogPB), wantPB, tol)
			}
			if c.save {
				got := readT(t, bufs.Save)
				n := c.T * c.b * c.w
				for i, name := range []string{"h0", "a0", "h1", "a1", "h2", "a2"} {
					assertClose(t, name, got[i*n:(i+1)*n], wantSave[i], tol)
				}
			}
		})
	}
}

// TestBridgeTrajectoryMatchesSteps checks the one-dispatch backward trajectory against
// RefBridgeStep applied step by step with BridgeStep's noise, on awkward sizes, padded
// stack strides included (padding rows must stay untouched).
func TestBridgeTrajectoryMatchesSteps(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, c := range []struct{ b, rows, d, T int }{{1, 1, 1, 1}, {7, 9, 3, 2}, {301, 301, 2, 100}, {7, 8, 32, 5}} {
		t.Run(fmt.Sprintf("b%d_rows%d_d%d_T%d", c.b, c.rows, c.d, c.T), func(t *testing.T) {
			sigma2 := 0.5 + 3*rng.Float64()
			p := BridgeParams{Steps: c.T, Sigma2: sigma2, Seed: rng.Uint64(), Stream: rng.Uint32()}
			zT := to64(randn(rng, c.b*c.d, 2))
			zs := poisoned(t, l, "z", (c.T+1)*c.rows, c.d)
			init := readT(t, zs)
			for i, v := range zT {
				init[(c.T*c.rows)*c.d+i] = float32(v)
			}
			if err := zs.Write(init); err != nil {
				t.Fatal(err)
			}
			pb0 := randn(rng, c.b, 5)
			pb := mustTensor(t, l, "log p_B", pb0, c.b)
			table := mustTensor(t, l, "table", BridgeStepTable(c.T, c.d, sigma2), c.T, 4)
			op, err := l.BridgeTrajectory(zs, pb, table, c.b, c.rows, p)
			if err != nil {
				t.Fatal(err)
			}
			defer op.Release()
			if err := l.Run(op.Op); err != nil {
				t.Fatal(err)
			}
			got := readT(t, zs)
			want := to64(pb0)
			next := zT
			for k := c.T - 1; k >= 0; k-- {
				q := p
				q.Step = k
				cur := RefBridgeStep(next, RefBridgeNoise(c.b, c.d, q), c.b, c.d, q, want)
				assertClose(t, fmt.Sprintf("z_%d", k), got[k*c.rows*c.d:(k*c.rows+c.b)*c.d], cur, 1e-4)
				for i := (k*c.rows + c.b) * c.d; i < (k+1)*c.rows*c.d; i++ {
					if got[i] == got[i] { // padding rows keep their poison (NaN)
						t.Fatalf("padding element %d of step %d was written: %v", i, k, got[i])
					}
				}
				next = cur
			}
			assertClose(t, "log p_B", readT(t, pb), want, 1e-4)
		})
	}
}

// refRolloutForced is RefRollout in sampling mode with teacher forcing: z holds the
// kernel's states on entry, and each step k runs from the kernel's z_k. On return z holds
// the reference's z_{k+1} of every step, ready to compare with the kernel's.
func refRolloutForced(n RefRolloutNet, lay RolloutLayout, b int, labels []uint32, p RolloutParams, z, grads, logpf, logpb []float64) (u []float64, save [6][]float64) {
	rowLen, uLen := b*lay.D, b*lay.Out
	kernel := append([]float64(nil), z...)
	u = make([]float64, lay.T*b*lay.Out)
	for i := range save {
		save[i] = make([]float64, lay.T*b*lay.W)
	}
	for k := p.K0; k < p.K1; k++ {
		q := p
		q.K0, q.K1 = k, k+1
		work := append([]float64(nil), kernel...)
		uk, sk := RefRollout(n, lay, b, labels, RolloutSample, q, work, grads, logpf, logpb)
		if k == 0 {
			copy(z[:rowLen], work[:rowLen]) // the start state, zero
		}
		copy(z[(k+1)*rowLen:(k+2)*rowLen], work[(k+1)*rowLen:(k+2)*rowLen])
		copy(u[k*uLen:(k+1)*uLen], uk[k*uLen:(k+1)*uLen])
		for i := range save {
			at := k * b * lay.W
			copy(save[i][at:at+b*lay.W], sk[i][at:at+b*lay.W])
		}
	}
	return u, save
}

func f32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, v := range xs {
		out[i] = float32(v)
	}
	return out
}

func sqrt(x float64) float64 { return math.Sqrt(x) }

// TestRolloutErrors checks that bad inputs of the fused rollout and the bridge trajectory
// are refused before anything is built, with an error naming what was wrong.
func TestRolloutErrors(t *testing.T) {
	l := testLib(t)
	const d, b, T, w = 3, 5, 2, 8
	lay := NewRolloutLayout(RolloutShape{D: d, W: w, T: T})
	ok := func() RolloutBuffers {
		return RolloutBuffers{
			Net: poisoned(t, l, "pack", lay.Len), Steps: poisoned(t, l, "steps", T, 4),
			Z: poisoned(t, l, "z", (T+1)*b, d), U: poisoned(t, l, "u", T*b, d),
			LogPF: poisoned(t, l, "log p_F", b), LogPB: poisoned(t, l, "log p_B", b),
		}
	}
	p := RolloutParams{Steps: T, Sigma: 1, K0: 0, K1: T}
	for _, c := range []struct {
		want string
		edit func(*RolloutBuffers, *RolloutParams, *RolloutMode, *int)
	}{
		{"parameter pack", func(x *RolloutBuffers, _ *RolloutParams, _ *RolloutMode, _ *int) {
			x.Net = poisoned(t, l, "short pack", lay.Len-1)
		}},
		{"state stack", func(x *RolloutBuffers, _ *RolloutParams, _ *RolloutMode, _ *int) { x.Z = poisoned(t, l, "z", T*b, d) }},
		{"only when sampling", func(_ *RolloutBuffers, _ *RolloutParams, m *RolloutMode, _ *int) { *m = RolloutGiven }},
		{"log p_B", func(x *RolloutBuffers, _ *RolloutParams, _ *RolloutMode, _ *int) { x.LogPB = nil }},
		{"σ", func(_ *RolloutBuffers, q *RolloutParams, _ *RolloutMode, _ *int) { q.Sigma = 0 }},
		{"outside", func(_ *RolloutBuffers, q *RolloutParams, _ *RolloutMode, _ *int) { q.K1 = T + 1 }},
		{"stride", func(_ *RolloutBuffers, _ *RolloutParams, _ *RolloutMode, rows *int) { *rows = b - 1 }},
		{"share", func(x *RolloutBuffers, _ *RolloutParams, _ *RolloutMode, _ *int) { x.LogPB = x.LogPF }},
		{"label per row", func(x *RolloutBuffers, _ *RolloutParams, _ *RolloutMode, _ *int) {
			idx, err := IndexFromSlice(l.Device(), "labels", make([]uint32, b), 1)
			if err != nil {
				t.Fatal(err)
			}
			x.Labels = idx
		}},
	} {
		x, q, m, rows := ok(), p, RolloutSample, b
		c.edit(&x, &q, &m, &rows)
		if _, err := l.Rollout(lay, b, rows, m, x, q); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error about %q, got %v", c.want, err)
		}
	}
	if err := RolloutSupported(l.Device(), RolloutShape{D: d, W: 6, T: T}); err == nil || !strings.Contains(err.Error(), "multiple of 4") {
		t.Errorf("width 6: want an error about the multiple of 4, got %v", err)
	}
	zs, pb, table := poisoned(t, l, "z", (T+1)*b, d), poisoned(t, l, "log p_B", b), poisoned(t, l, "table", T, 4)
	bp := BridgeParams{Steps: T, Sigma2: 1}
	if _, err := l.BridgeTrajectory(zs, pb, table, b, b+1, bp); err == nil || !strings.Contains(err.Error(), "state stack") {
		t.Errorf("bridge trajectory with the wrong stride: want an error about the state stack, got %v", err)
	}
	if _, err := l.BridgeTrajectory(zs, zs, table, b, b, bp); err == nil {
		t.Errorf("bridge trajectory with log p_B in the state stack: want an error")
	}
}
