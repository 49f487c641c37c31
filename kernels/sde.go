package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// SDEParams are the per-step settings of SDEStep. Time runs on [0, 1] in Steps steps of
// dt = 1/Steps; Step is k, the step from t_k = k·dt to t_{k+1}.
type SDEParams struct {
	// Step is k ∈ [0, Steps); Steps is N ≥ 1.
	Step, Steps int
	// Sigma is the policy's noise scale σ: log p_F is always evaluated under
	// N(z_k + u·dt, σ²·dt·I). SigmaExplore is the extra exploration noise of the behaviour
	// policy, an absolute std per step as in the published code (not scaled by sqrt(dt)):
	// the step draws z_{k+1} with std sqrt(σ²·dt + σ_explore²). With SigmaExplore = 0
	// behaviour and policy coincide.
	Sigma, SigmaExplore float64
	// Seed is the Philox key; Stream a free counter word, e.g. the training iteration, so
	// that each iteration draws fresh noise from the same seed.
	Seed   uint64
	Stream uint32
}

func (p SDEParams) check() error {
	if p.Steps < 1 || p.Steps > math.MaxUint32 {
		return fmt.Errorf("steps %d (want ≥ 1)", p.Steps)
	}
	if p.Step < 0 || p.Step >= p.Steps {
		return fmt.Errorf("step %d outside [0, %d)", p.Step, p.Steps)
	}
	if !(p.Sigma > 0) || math.IsInf(p.Sigma, 0) {
		return fmt.Errorf("σ = %v (want a finite value > 0)", p.Sigma)
	}
	if !(p.SigmaExplore >= 0) || math.IsInf(p.SigmaExplore, 0) {
		return fmt.Errorf("σ_explore = %v (want a finite value ≥ 0)", p.SigmaExplore)
	}
	return nil
}

// params derives the kernel's uniform block (shaders/sde.wgsl SDEParams) in float64.
func (p SDEParams) params(b, d int) Params {
	k := float64(p.Step)
	dt := 1 / float64(p.Steps)
	varF := p.Sigma * p.Sigma * dt
	noiseStd := math.Sqrt(p.Sigma*p.Sigma*dt + p.SigmaExplore*p.SigmaExplore)
	ratio := k / (k + 1)
	bridge, invVarB, logcB := 0, 0.0, 0.0
	if p.Step > 0 {
		varB := varF * ratio
		bridge, invVarB, logcB = 1, 1/varB, -0.5*float64(d)*math.Log(2*math.Pi*varB)
	}
	key := philoxKey(p.Seed)
	return Params{
		b, d, p.Step, p.Stream, key[0], key[1], bridge, (d + 3) / 4,
		float32(dt), float32(noiseStd), float32(1 / varF), float32(-0.5 * float64(d) * math.Log(2*math.Pi*varF)),
		float32(ratio), float32(invVarB), float32(logcB),
	}
}

// sdeUseWorkgroup decides between one workgroup per sample (sde_wg) and one invocation
// per sample (sde_row). Long rows (d ≥ 256) take sde_wg on GPUs, where B invocations
// alone would leave most of the device idle. CPU adapters always take sde_row: on
// lavapipe (2 cores) it was faster at every shape measured, B=64×d=1024 included (0.43 vs
// 0.59 ms per step), as barriers are expensive there. The choice depends on the shape and
// the adapter only, so results stay reproducible on a device. sdeForceEntry (tests)
// overrides it.
func sdeUseWorkgroup(dev *gpu.Device, d int) bool {
	switch sdeForceEntry {
	case "sde_row":
		return false
	case "sde_wg":
		return true
	}
	return d >= 256 && dev.AdapterInfo().Type != gpu.AdapterCPU
}

// sdeForceEntry, when set by a test, selects the SDE entry point regardless of shape.
var sdeForceEntry string

// SDEStepOp is one recorded-ready SDE step: record its Op, change its settings (the
// stream each iteration, σ_explore) with Update before the submission.
//
// A trainer records the N steps of a trajectory in one command buffer, and a uniform
// write (queue.WriteBuffer) applies to a whole submission, so a single op cannot see N
// different step numbers within one submission. Build one SDEStepOp per step instead
// (k fixed at build time, buffers z_k → z_{k+1} bound to it: the trajectory is kept for
// the backward pass anyway); per iteration, Update each with the new Stream. Each step
// owns a 64-byte uniform buffer.
type SDEStepOp struct {
	*Op
	// B and D are the batch size and dimension the op was built for.
	B, D int
	// P are the settings of the next submission (as last built or updated).
	P   SDEParams
	dev *gpu.Device
}

// SDEStep builds the fused Euler–Maruyama step of DESIGN.md §1 for B samples of
// dimension d (tensors viewed as Rows × Cols):
//
//	z_{k+1} = z_k + u·dt + sqrt(σ² + σ_explore²)·sqrt(dt)·ε,  ε ~ N(0, I) (Philox, see RefSDENoise)
//	logPF[b] += Σ_j log N(z_{k+1,j}; z_{k,j} + u_j·dt, σ²·dt)
//	logPB[b] += Σ_j log N(z_{k,j}; (t_k/t_{k+1})·z_{k+1,j}, σ²·dt·t_k/t_{k+1})   (k ≥ 1 only)
//
// zk, u and zNext are [B, d], logPF and logPB have B elements; zNext must be a different
// tensor from zk. log p_F is evaluated under the policy (σ only) whatever the behaviour
// noise, as off-policy TB requires. The accumulators are added to, so clear them before
// step 0. ε is not stored: RefSDENoise (or the kernel) regenerates it, and
// (z_{k+1} − z_k − u·dt) / sqrt(σ²·dt + σ_explore²) gives it back up to rounding.
// Per-sample sums run in a fixed order: results are deterministic. For step 0 zk holds
// z_0 (zeros in DESIGN.md §1; the kernel does not assume it).
func (l *Library) SDEStep(zk, u, zNext, logPF, logPB *Tensor, p SDEParams) (*SDEStepOp, error) {
	const name = "kernels: sde step"
	if zk == nil || u == nil || zNext == nil || logPF == nil || logPB == nil {
		return nil, fmt.Errorf("%s: nil tensor", name)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b, d := zk.Rows(), zk.Cols()
	if !sameShape(u.Shape, zk.Shape) {
		return nil, fmt.Errorf("%s: z_k is %s but u is %s (shapes must match)", name, sdeShape(zk), sdeShape(u))
	}
	if !sameShape(zNext.Shape, zk.Shape) {
		return nil, fmt.Errorf("%s: z_k is %s but z_{k+1} is %s (shapes must match)", name, sdeShape(zk), sdeShape(zNext))
	}
	if logPF.Len() != b || logPB.Len() != b {
		return nil, fmt.Errorf("%s: z_k is %s (%d samples) but log p_F is %s and log p_B is %s (want %d elements each)", name, sdeShape(zk), b, sdeShape(logPF), sdeShape(logPB), b)
	}
	bufs := []*gpu.Buffer{zk.Buf, u.Buf, zNext.Buf, logPF.Buf, logPB.Buf}
	names := []string{"z_k", "u", "z_{k+1}", "log p_F", "log p_B"}
	for _, w := range []int{2, 3, 4} {
		for j := range bufs {
			if j != w && bufs[j] == bufs[w] {
				return nil, fmt.Errorf("%s: %s and %s are the same tensor %q (outputs need their own buffers)", name, names[w], names[j], bufs[w].Label())
			}
		}
	}
	if err := philoxCheckBinding(l, name, "z_k", zk); err != nil {
		return nil, err
	}
	if uint64(b)*uint64((d+3)/4) > math.MaxUint32 {
		return nil, fmt.Errorf("%s: z_k is %s: too many Philox blocks for a u32 counter", name, sdeShape(zk))
	}
	entry, grid := "sde_row", Grid1D(b, 64)
	if sdeUseWorkgroup(l.dev, d) {
		entry, grid = "sde_wg", Grid1D(b, 1)
	}
	op, err := l.build(opSpec{
		name:    fmt.Sprintf("sde step %d", p.Step),
		file:    "sde.wgsl",
		entry:   entry,
		buffers: bufs,
		params:  p.params(b, d),
		grid:    grid,
	})
	if err != nil {
		return nil, err
	}
	return &SDEStepOp{Op: op, B: b, D: d, P: p, dev: l.dev}, nil
}

// Update rewrites the step's settings for the next submission (e.g. a new Stream every
// iteration, or a new σ_explore). The step index may change too, but remember that one
// submission sees only the last value.
func (s *SDEStepOp) Update(p SDEParams) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("kernels: sde step: %w", err)
	}
	if err := s.Op.SetParams(s.dev, p.params(s.B, s.D)); err != nil {
		return err
	}
	s.P = p
	return nil
}

// sdeShape writes a tensor's shape as 7×13.
func sdeShape(t *Tensor) string {
	s := ""
	for i, v := range t.Shape {
		if i > 0 {
			s += "×"
		}
		s += fmt.Sprint(v)
	}
	return s
}

// philoxCheckBinding reports a tensor too large to bind as one storage buffer.
func philoxCheckBinding(l *Library, op, what string, t *Tensor) error {
	limit := l.dev.Limits().MaxStorageBufferBindingSize
	if bytes := uint64(4 * t.Len()); bytes > limit {
		return fmt.Errorf("%s: %s is %s (%d bytes), over the device's maxStorageBufferBindingSize of %d bytes", op, what, sdeShape(t), bytes, limit)
	}
	return nil
}

// RefSDENoise returns the ε that SDEStep draws for B samples of dimension d under p:
// ε[b, j] is lane j mod 4 of PhiloxNormal4(Philox4x32((b·⌈d/4⌉ + j/4, k, stream, 1), seed)).
func RefSDENoise(b, d int, p SDEParams) []float64 {
	eps := make([]float64, b*d)
	nb := (d + 3) / 4
	key := philoxKey(p.Seed)
	for s := 0; s < b; s++ {
		for q := 0; q < nb; q++ {
			z := PhiloxNormal4(Philox4x32([4]uint32{uint32(s*nb + q), uint32(p.Step), p.Stream, PhiloxDomainSDE}, key))
			for l := 0; l < 4 && 4*q+l < d; l++ {
				eps[s*d+4*q+l] = z[l]
			}
		}
	}
	return eps
}

// RefSDEStep is the float64 reference of SDEStep given the noise eps ([B, d], e.g. from
// RefSDENoise). With dt = 1/N and t_k = k·dt:
//
//	z_{k+1} = z_k + u·dt + sqrt(σ²·dt + σ_explore²)·ε
//	logPF[b] += Σ_j −(z_{k+1,j} − z_{k,j} − u_j·dt)² / (2σ²dt) − ½·ln(2πσ²dt)
//	logPB[b] += Σ_j −(z_{k,j} − r·z_{k+1,j})² / (2σ²dt·r) − ½·ln(2πσ²dt·r),  r = t_k/t_{k+1}, k ≥ 1
//
// It returns z_{k+1} and adds to logPF and logPB in place.
func RefSDEStep(zk, u, eps []float64, b, d int, p SDEParams, logPF, logPB []float64) []float64 {
	dt := 1 / float64(p.Steps)
	varF := p.Sigma * p.Sigma * dt
	noise := math.Sqrt(varF + p.SigmaExplore*p.SigmaExplore)
	r := float64(p.Step) / float64(p.Step+1)
	varB := varF * r
	zn := make([]float64, b*d)
	for s := 0; s < b; s++ {
		var pf, pb float64
		for j := 0; j < d; j++ {
			i := s*d + j
			mean := zk[i] + u[i]*dt
			zn[i] = mean + noise*eps[i]
			df := zn[i] - mean
			pf += -df*df/(2*varF) - 0.5*math.Log(2*math.Pi*varF)
			if p.Step > 0 {
				db := zk[i] - r*zn[i]
				pb += -db*db/(2*varB) - 0.5*math.Log(2*math.Pi*varB)
			}
		}
		logPF[s] += pf
		logPB[s] += pb
	}
	return zn
}
