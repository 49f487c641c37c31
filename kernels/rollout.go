package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// RolloutShape is what the fused rollout needs to know of a drift network: state
// dimension D, width W, steps T, conditions (0: unconditional), a learned variance (LV)
// and the Langevin term (LP: u = clip(u_nn + s_k·clip(∇log R(z_k))), langevin.wgsl).
type RolloutShape struct {
	D, W, T, Classes int
	LV, LP           bool
}

// out is the width of the network's output layer: the drift, and the log-variance head
// with LV.
func (s RolloutShape) out() int {
	if s.LV {
		return 2 * s.D
	}
	return s.D
}

// RolloutLayout is the packing of a drift network's parameters into the one buffer the
// fused rollout reads (shaders/rollout.wgsl binding 0): float offsets of W_S [D, W],
// sbias [T, W], W_1, b_1, W_2, b_2, W_3 [W, Out], b_3 [Out], the condition embedding
// E [Classes, W] and, with LP, the Langevin scale s [T] of every step, each rounded up to
// a multiple of 4 floats (vec4 loads). Out is D, or 2D for a network with learned variance
// (LV: the drift u, then the log-variance head h).
type RolloutLayout struct {
	RolloutShape
	Out                                                int
	WS, SBias, W1, B1, W2, B2, W3, B3, Emb, Scale, Len int
}

// NewRolloutLayout lays out the parameters of a network of shape s.
func NewRolloutLayout(s RolloutShape) RolloutLayout {
	l := RolloutLayout{RolloutShape: s, Out: s.out()}
	d, w, t := s.D, s.W, s.T
	at := 0
	next := func(n int) int {
		o := at
		at += (n + 3) &^ 3
		return o
	}
	l.WS, l.SBias = next(d*w), next(t*w)
	l.W1, l.B1, l.W2, l.B2 = next(w*w), next(w), next(w*w), next(w)
	l.W3, l.B3, l.Emb = next(w*l.Out), next(l.Out), next(s.Classes*w)
	if s.LP {
		l.Scale = next(t)
	}
	l.Len = max(at, 4)
	return l
}

// RolloutGradsAt is the float offset of the ∇log R stack in a fused rollout's input
// buffer (after the [T, 4] step table, rounded up so that the stack and its per-step
// slices can be bound on dev).
func RolloutGradsAt(dev *gpu.Device, steps int) int {
	align := max(int(dev.Limits().MinStorageBufferOffsetAlignment)/4, 4)
	return (4*steps + align - 1) / align * align
}

// RolloutInputs is the read-only input buffer of a fused rollout (rollout.wgsl binding 1):
// the step table and, for a network with the Langevin term, the stack of ∇log R(z_k)
// [T·rows, D] that the target's kernels write before each step's dispatch. Both live in
// one buffer so that the rollout binds WebGPU's portable 8 storage buffers.
type RolloutInputs struct {
	All   *Tensor // the whole buffer: RolloutBuffers.Steps
	Grads *Tensor // LP: the ∇log R stack [T·rows, D], a view into All (nil without LP)
}

// NewRolloutInputs allocates the input buffer of a rollout of lay over stacks of stride
// rows, with the step table of σ² written (and, with LP, the gradient stack zeroed).
func NewRolloutInputs(dev *gpu.Device, label string, lay RolloutLayout, rows int, sigma2 float64) (*RolloutInputs, error) {
	table := RolloutStepTable(lay.T, lay.D, sigma2)
	if !lay.LP {
		all, err := FromSlice(dev, label, table, lay.T, 4)
		return &RolloutInputs{All: all}, err
	}
	at := RolloutGradsAt(dev, lay.T)
	n := at + lay.T*rows*lay.D
	xs := make([]float32, n)
	copy(xs, table)
	all, err := FromSlice(dev, label, xs, n)
	if err != nil {
		return nil, err
	}
	grads, err := all.Slice(label+": ∇log R stack", at, lay.T*rows, lay.D)
	if err != nil {
		all.Release()
		return nil, err
	}
	return &RolloutInputs{All: all, Grads: grads}, nil
}

// Release frees the input buffer.
func (in *RolloutInputs) Release() {
	if in != nil && in.All != nil {
		in.All.Release()
	}
}

// RolloutMode says what a fused rollout does with the states.
type RolloutMode int

const (
	// RolloutSample draws forward trajectories from z_0 = 0 (sde.wgsl's noise and update).
	RolloutSample RolloutMode = iota
	// RolloutGiven evaluates log p_F of the transitions of given trajectories (states in the
	// stack already: backward trajectories, or a relative-TB prior on sampled ones).
	RolloutGiven
)

// RolloutParams are a fused rollout's per-submission settings.
type RolloutParams struct {
	Steps               int     // T
	Sigma, SigmaExplore float64 // σ, the exploration std per step (RolloutSample)
	Seed                uint64
	Stream              uint32
	// K0, K1 are the steps this dispatch runs, k0 ≤ k < k1 (0 and Steps for a whole
	// trajectory). A sampling rollout with the Langevin term runs one step per dispatch:
	// step k's ∇log R is formed from z_k between the dispatches.
	K0, K1 int
}

func (p RolloutParams) check() error {
	switch {
	case p.Steps < 1:
		return fmt.Errorf("steps %d (want ≥ 1)", p.Steps)
	case p.K0 < 0 || p.K1 > p.Steps || p.K0 >= p.K1:
		return fmt.Errorf("steps [%d, %d) outside [0, %d) or empty", p.K0, p.K1, p.Steps)
	case !(p.Sigma > 0) || math.IsInf(p.Sigma, 0):
		return fmt.Errorf("σ = %v (want a finite value > 0)", p.Sigma)
	case !(p.SigmaExplore >= 0) || math.IsInf(p.SigmaExplore, 0):
		return fmt.Errorf("σ_explore = %v (want a finite value ≥ 0)", p.SigmaExplore)
	}
	return nil
}

// RolloutStepTable returns the per-step constants of rollout.wgsl binding 1, [T] × (r,
// 1/(σ²·dt·r), −(d/2)·ln(2π·σ²·dt·r), 0) with r = k/(k+1), derived in float64 as
// SDEParams does (zeros for k = 0, where there is no log p_B term).
func RolloutStepTable(steps, d int, sigma2 float64) []float32 {
	out := make([]float32, 4*steps)
	dt := 1 / float64(steps)
	for k := 1; k < steps; k++ {
		r := float64(k) / float64(k+1)
		v := sigma2 * dt * r
		out[4*k], out[4*k+1], out[4*k+2] = float32(r), float32(1/v), float32(-0.5*float64(d)*math.Log(2*math.Pi*v))
	}
	return out
}

// RolloutRows is the number of batch rows one workgroup of the fused rollout owns
// (rollout.wgsl's ROWS: the fields of its accumulators).
const RolloutRows = 8

// RolloutInvocations is the number of invocations per workgroup of the fused rollout for
// a network of width w on dev; each owns one or two vec4 column groups of the hidden
// layers (so it lies in [w/8, w/4]). CPU adapters (lavapipe) run a workgroup as one
// thread-pool task and its invocations as 8-lane SIMD chunks: a workgroup of one chunk
// makes barriers nearly free (see rollout.wgsl's header for what was measured). GPUs get one
// invocation per column group, the shortest dependent chain.
func RolloutInvocations(dev *gpu.Device, w int) int {
	wv := max(w/4, 1)
	n := wv
	if dev.AdapterInfo().Type == gpu.AdapterCPU {
		n = 8
	}
	if rolloutForceInvocations > 0 {
		n = rolloutForceInvocations
	}
	return min(max(n, (wv+1)/2), wv)
}

// rolloutForceInvocations, when set by a test, overrides RolloutInvocations' choice.
var rolloutForceInvocations int

// RolloutSupported reports why the fused rollout cannot run a network of shape s on this
// device (nil when it can): the width must be a multiple of 4 and its workgroup must fit
// the device's limits.
func RolloutSupported(dev *gpu.Device, s RolloutShape) error {
	lim := dev.Limits()
	d, w := s.D, s.W
	inv, rows := RolloutInvocations(dev, w), RolloutRows
	nb := (d + 3) / 4
	out := s.out()
	wgBytes := 4 * (2*rows*w + rows*(d+out) + 2*rows*nb + 2*rows)
	switch {
	case w%4 != 0 || w < 4:
		return fmt.Errorf("the fused rollout needs a width that is a positive multiple of 4 (width %d)", w)
	case uint32(inv) > lim.MaxComputeInvocationsPerWorkgroup || uint32(inv) > lim.MaxComputeWorkgroupSizeX:
		return fmt.Errorf("the fused rollout runs %d invocations per workgroup at width %d, over the device's limit of %d", inv, w, min(lim.MaxComputeInvocationsPerWorkgroup, lim.MaxComputeWorkgroupSizeX))
	case uint32(wgBytes) > lim.MaxComputeWorkgroupStorageSize:
		return fmt.Errorf("the fused rollout needs %d bytes of workgroup memory at width %d and dimension %d, over the device's %d", wgBytes, w, d, lim.MaxComputeWorkgroupStorageSize)
	case lim.MaxStorageBuffersPerShaderStage < 8:
		return fmt.Errorf("the fused rollout binds 8 storage buffers; the device allows %d", lim.MaxStorageBuffersPerShaderStage)
	}
	return nil
}

// RolloutOp is a recorded-ready fused rollout; Update changes its settings (the stream
// every iteration, the exploration std) before a submission.
type RolloutOp struct {
	*Op
	B, Rows int
	Layout  RolloutLayout
	Mode    RolloutMode
	P       RolloutParams
	dev     *gpu.Device
}

// RolloutBuffers are the tensors a fused rollout binds. Stacks hold step k's row b at row
// k·Rows + b (Rows ≥ B; padding rows are never written).
type RolloutBuffers struct {
	Net   *Tensor // the packed parameters (Layout.Len elements)
	Steps *Tensor // RolloutInputs.All: RolloutStepTable ([T, 4]), and with LP the ∇log R stack
	Z     *Tensor // [(T+1)·Rows, D] states
	U     *Tensor // [T·Rows, Layout.Out] drifts (LV: and log-variance heads), written
	// Save, when not nil, receives the six stacks [T·Rows, W] h0, a0, h1, a1, h2, a2
	// (pre-activations and activations of the three GELU layers), one after the other.
	Save  *Tensor
	LogPF *Tensor // [B], added to
	LogPB *Tensor // [B], added to (RolloutSample only; nil otherwise)
	// Labels are the rows' conditions (networks with Layout.Classes > 0 only).
	Labels *IndexTensor
}

// Rollout builds the fused rollout of shaders/rollout.wgsl for b rows: the drift network
// and the SDE steps P.K0..P.K1−1 (mode RolloutSample), or log p_F of the given states'
// transitions (RolloutGiven), in one dispatch.
func (l *Library) Rollout(lay RolloutLayout, b, rows int, mode RolloutMode, t RolloutBuffers, p RolloutParams) (*RolloutOp, error) {
	const name = "kernels: rollout"
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if p.Steps != lay.T {
		return nil, fmt.Errorf("%s: %d steps for a layout of %d", name, p.Steps, lay.T)
	}
	if err := RolloutSupported(l.dev, lay.RolloutShape); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if b < 1 || rows < b {
		return nil, fmt.Errorf("%s: batch %d with a stack stride of %d rows (want 1 ≤ batch ≤ stride)", name, b, rows)
	}
	T, D, W := lay.T, lay.D, lay.W
	want := func(what string, x *Tensor, n int) error {
		if x == nil {
			return fmt.Errorf("%s: no %s tensor", name, what)
		}
		if x.Len() != n {
			return fmt.Errorf("%s: %s %q has %d elements (shape %v), want %d", name, what, x.Label(), x.Len(), x.Shape, n)
		}
		return philoxCheckBinding(l, name, what, x)
	}
	inputs := 4 * T
	if lay.LP {
		inputs = RolloutGradsAt(l.dev, T) + T*rows*D // NewRolloutInputs
	}
	checks := []error{
		want("parameter pack", t.Net, lay.Len), want("step table", t.Steps, inputs),
		want("state stack", t.Z, (T+1)*rows*D), want("drift stack", t.U, T*rows*lay.Out),
		want("log p_F", t.LogPF, b),
	}
	if t.Save != nil {
		checks = append(checks, want("activation stacks", t.Save, 6*T*rows*W))
	}
	if mode == RolloutSample {
		checks = append(checks, want("log p_B", t.LogPB, b))
	} else if t.LogPB != nil {
		return nil, fmt.Errorf("%s: log p_B is accumulated only when sampling", name)
	}
	for _, e := range checks {
		if e != nil {
			return nil, e
		}
	}
	if (lay.Classes > 0) != (t.Labels != nil) || (t.Labels != nil && t.Labels.Len() != b) {
		return nil, fmt.Errorf("%s: a network of %d conditions needs one label per row (batch %d, labels given: %v)", name, lay.Classes, b, t.Labels != nil)
	}
	if uint64(b)*uint64((D+3)/4) > math.MaxUint32 {
		return nil, fmt.Errorf("%s: %d rows of dimension %d: too many Philox blocks for a u32 counter", name, b, D)
	}
	outs := map[string]*gpu.Buffer{"state stack": t.Z.Buf, "drift stack": t.U.Buf, "log p_F": t.LogPF.Buf}
	if t.Save != nil {
		outs["activation stacks"] = t.Save.Buf
	}
	if t.LogPB != nil {
		outs["log p_B"] = t.LogPB.Buf
	}
	ins := map[string]*gpu.Buffer{"parameter pack": t.Net.Buf, "step table": t.Steps.Buf}
	for on, ob := range outs {
		for n, x := range ins {
			if x.Shares(ob) {
				return nil, fmt.Errorf("%s: %s and %s share buffer %q (outputs need their own)", name, on, n, ob.Label())
			}
		}
		for n, x := range outs {
			if n != on && x.Shares(ob) {
				return nil, fmt.Errorf("%s: %s and %s share buffer %q (outputs need their own)", name, on, n, ob.Label())
			}
		}
	}
	op := &Op{}
	placeholder := func(label string) (*gpu.Buffer, error) {
		pb, err := l.dev.CreateBuffer("rollout: unused "+label, 16, gpu.StorageUsage)
		if err == nil {
			op.owned = append(op.owned, pb)
		}
		return pb, err
	}
	save, logpb, labels := (*gpu.Buffer)(nil), (*gpu.Buffer)(nil), (*gpu.Buffer)(nil)
	var err error
	if t.Save != nil {
		save = t.Save.Buf
	} else if save, err = placeholder("activations"); err != nil {
		return nil, err
	}
	if t.LogPB != nil {
		logpb = t.LogPB.Buf
	} else if logpb, err = placeholder("log p_B"); err != nil {
		op.Release()
		return nil, err
	}
	if t.Labels != nil {
		labels = t.Labels.Buf
	} else if labels, err = placeholder("labels"); err != nil {
		op.Release()
		return nil, err
	}
	consts := map[string]float64{
		"W": float64(W), "D": float64(D), "WG": float64(RolloutInvocations(l.dev, W)),
		"SAMPLE": overrideBool(mode == RolloutSample), "SAVE": overrideBool(t.Save != nil), "COND": overrideBool(lay.Classes > 0),
		"LV": overrideBool(lay.LV), "LP": overrideBool(lay.LP),
	}
	built, err := l.build(opSpec{
		name: "rollout", file: "rollout.wgsl", entry: "main", consts: consts,
		buffers: []*gpu.Buffer{t.Net.Buf, t.Steps.Buf, t.Z.Buf, t.U.Buf, save, t.LogPF.Buf, logpb, labels},
		params:  rolloutParams(l.dev, lay, b, rows, p), grid: Grid1D((b+RolloutRows-1)/RolloutRows, 1),
	})
	if err != nil {
		op.Release()
		return nil, err
	}
	built.owned = op.owned
	return &RolloutOp{Op: built, B: b, Rows: rows, Layout: lay, Mode: mode, P: p, dev: l.dev}, nil
}

// rolloutParams is rollout.wgsl's uniform block, its constants derived in float64.
func rolloutParams(dev *gpu.Device, lay RolloutLayout, b, rows int, p RolloutParams) Params {
	dt := 1 / float64(p.Steps)
	varF := p.Sigma * p.Sigma * dt
	key := philoxKey(p.Seed)
	return Params{b, rows, p.Steps, p.K0, p.K1, p.Stream, key[0], key[1],
		float32(dt), float32(math.Sqrt(varF + p.SigmaExplore*p.SigmaExplore)), float32(1 / varF), float32(-0.5 * float64(lay.D) * math.Log(2*math.Pi*varF)),
		lay.WS, lay.SBias, lay.W1, lay.B1, lay.W2, lay.B2, lay.W3, lay.B3, lay.Emb,
		float32(varF), float32(p.SigmaExplore * p.SigmaExplore), lay.Scale, RolloutGradsAt(dev, p.Steps), float32(LangevinClip)}
}

// Update rewrites the rollout's settings for the next submission.
func (r *RolloutOp) Update(p RolloutParams) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("kernels: rollout: %w", err)
	}
	if p.Steps != r.Layout.T {
		return fmt.Errorf("kernels: rollout: %d steps for a layout of %d", p.Steps, r.Layout.T)
	}
	if err := r.Op.SetParams(r.dev, rolloutParams(r.dev, r.Layout, r.B, r.Rows, p)); err != nil {
		return err
	}
	r.P = p
	return nil
}

// RefRolloutNet is a drift network in float64 for RefRollout, weights row-major as the
// layout stores them (W_S [D, W], SBias [T, W], W_3 [W, D], Emb [Classes, W]).
type RefRolloutNet struct {
	WS, SBias, W1, B1, W2, B2, W3, B3, Emb []float64
	Scale                                  []float64 // LP: the Langevin scale s_k of every step
}

// RefRollout is the float64 reference of the fused rollout for b rows over steps k0..k1−1:
// it runs the network and, with RolloutSample, the SDE with RefSDENoise's noise (z is
// the whole state stack [(T+1)·b, D] with stride b, z_{k0} given, z_0 = 0 when sampling
// from k0 = 0); it returns the drift stack [T·b, Out] (steps outside [k0, k1) zero), the
// activation stacks h0, a0, h1, a1, h2, a2 ([T·b, W] each) and adds to logpf, logpb.
// With learned variance (lay.LV) coordinate j of a step has the policy variance
// σ²·dt·exp(4·tanh(h_j)), h the second half of the output row, and the exploration's
// variance σ_explore² adds to it when sampling. With the Langevin term (lay.LP) grads is
// the stack [T·b, D] of ∇log R(z_k) (nil otherwise) and the drift is RefLangevinDrift's.
func RefRollout(n RefRolloutNet, lay RolloutLayout, b int, labels []uint32, mode RolloutMode, p RolloutParams, z, grads, logpf, logpb []float64) (u []float64, save [6][]float64) {
	T, D, W, O := lay.T, lay.D, lay.W, lay.Out
	dt := 1 / float64(p.Steps)
	varF := p.Sigma * p.Sigma * dt
	u = make([]float64, T*b*O)
	for i := range save {
		save[i] = make([]float64, T*b*W)
	}
	gelu := func(x float64) float64 { return RefActivate(GELU, x) }
	if mode == RolloutSample && p.K0 == 0 {
		for i := 0; i < b*D; i++ {
			z[i] = 0
		}
	}
	for k := p.K0; k < p.K1; k++ {
		var eps []float64
		if mode == RolloutSample {
			eps = RefSDENoise(b, D, SDEParams{Steps: p.Steps, Step: k, Sigma: p.Sigma, SigmaExplore: p.SigmaExplore, Seed: p.Seed, Stream: p.Stream})
		}
		for r := 0; r < b; r++ {
			row := k*b + r
			zk := z[row*D : (row+1)*D]
			layer := func(in []float64, wgt, bias []float64, n int, out []float64) {
				for c := 0; c < W; c++ {
					s := bias[c]
					for j := 0; j < n; j++ {
						s += in[j] * wgt[j*W+c]
					}
					out[c] = s
				}
			}
			h0, a0 := save[0][row*W:(row+1)*W], save[1][row*W:(row+1)*W]
			layer(zk, n.WS, n.SBias[k*W:(k+1)*W], D, h0)
			if lay.Classes > 0 {
				for c := 0; c < W; c++ {
					h0[c] += n.Emb[int(labels[r])*W+c]
				}
			}
			for c := range a0 {
				a0[c] = gelu(h0[c])
			}
			h1, a1 := save[2][row*W:(row+1)*W], save[3][row*W:(row+1)*W]
			layer(a0, n.W1, n.B1, W, h1)
			for c := range a1 {
				a1[c] = gelu(h1[c])
			}
			h2, a2 := save[4][row*W:(row+1)*W], save[5][row*W:(row+1)*W]
			layer(a1, n.W2, n.B2, W, h2)
			for c := range a2 {
				a2[c] = gelu(h2[c])
			}
			out := u[row*O : (row+1)*O]
			for j := 0; j < O; j++ {
				s := n.B3[j]
				for c := 0; c < W; c++ {
					s += a2[c] * n.W3[c*O+j]
				}
				if lay.LP && j < D {
					s += n.Scale[k] * clampNaN(grads[row*D+j], LangevinClip)
				}
				out[j] = RefActivate(Clip, s)
			}
			uk := out[:D]
			zn := z[((k+1)*b+r)*D : ((k+1)*b+r+1)*D]
			if lay.LV {
				for j := 0; j < D; j++ {
					lv := 4 * math.Tanh(out[D+j])
					v := varF * math.Exp(lv)
					if mode == RolloutSample {
						zn[j] = zk[j] + uk[j]*dt + math.Sqrt(v+p.SigmaExplore*p.SigmaExplore)*eps[r*D+j]
						if k > 0 {
							rr := float64(k) / float64(k+1)
							db := zk[j] - rr*zn[j]
							logpb[r] += -db*db/(2*varF*rr) - 0.5*math.Log(2*math.Pi*varF*rr)
						}
					}
					e := zn[j] - zk[j] - uk[j]*dt
					logpf[r] += -e*e/(2*v) - 0.5*math.Log(2*math.Pi*v)
				}
				continue
			}
			if mode == RolloutSample {
				pf, pb := []float64{0}, []float64{0}
				out := RefSDEStep(zk, uk, eps[r*D:(r+1)*D], 1, D, SDEParams{Steps: p.Steps, Step: k, Sigma: p.Sigma, SigmaExplore: p.SigmaExplore}, pf, pb)
				copy(zn, out)
				logpf[r] += pf[0]
				logpb[r] += pb[0]
			} else {
				for j := 0; j < D; j++ {
					e := zn[j] - zk[j] - uk[j]*dt
					logpf[r] += -e*e/(2*varF) - 0.5*math.Log(2*math.Pi*varF)
				}
			}
		}
	}
	return u, save
}
