package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// PhiloxDomainBridge is the Philox domain word of BridgeStep's noise (see rng.go).
const PhiloxDomainBridge uint32 = 2

// BridgeParams configure one backward step from z_{k+1} to z_k.
type BridgeParams struct {
	Step, Steps int     // k ∈ [0, Steps)
	Sigma2      float64 // σ²
	Seed        uint64
	Stream      uint32
}

func (p BridgeParams) params(b, d int) (Params, error) {
	if p.Steps < 1 || p.Step < 0 || p.Step >= p.Steps {
		return nil, fmt.Errorf("kernels: bridge step: step %d of %d", p.Step, p.Steps)
	}
	if !(p.Sigma2 > 0) || math.IsInf(p.Sigma2, 0) {
		return nil, fmt.Errorf("kernels: bridge step: σ² = %v (want positive and finite)", p.Sigma2)
	}
	dt := 1 / float64(p.Steps)
	k := float64(p.Step)
	r := k / (k + 1)
	v := p.Sigma2 * dt * r
	logc := 0.0
	if p.Step > 0 {
		logc = -0.5 * float64(d) * math.Log(2*math.Pi*v)
	}
	return Params{b, d, p.Step, p.Stream, uint32(p.Seed), uint32(p.Seed >> 32), (d + 3) / 4,
		float32(r), float32(math.Sqrt(v)), float32(logc)}, nil
}

// BridgeStepOp is a BridgeStep op with its current parameters.
type BridgeStepOp struct {
	*Op
	B, D int
	P    BridgeParams
	dev  *gpu.Device
}

// BridgeStep records z_k ~ p_B(· | z_{k+1}) (the Brownian bridge pinned at 0) and
// logpb += log p_B(z_k | z_{k+1}); at k = 0, z_0 = 0 and logpb is unchanged.
func (l *Library) BridgeStep(z, znext, logpb *Tensor, p BridgeParams) (*BridgeStepOp, error) {
	if !sameShape(z.Shape, znext.Shape) || logpb.Len() != z.Rows() {
		return nil, fmt.Errorf("kernels: bridge step: z %v, z_next %v and log p_B %v must be [B, d], [B, d], [B]", z.Shape, znext.Shape, logpb.Shape)
	}
	ps, err := p.params(z.Rows(), z.Cols())
	if err != nil {
		return nil, err
	}
	op, err := l.build(opSpec{
		name: "bridge step", file: "bridge.wgsl", entry: "main",
		buffers: []*gpu.Buffer{znext.Buf, z.Buf, logpb.Buf},
		params:  ps,
		grid:    Grid1D(z.Rows(), 64),
	})
	if err != nil {
		return nil, err
	}
	return &BridgeStepOp{Op: op, B: z.Rows(), D: z.Cols(), P: p, dev: l.dev}, nil
}

// Update rewrites the op's parameters (a new Stream per iteration).
func (s *BridgeStepOp) Update(p BridgeParams) error {
	ps, err := p.params(s.B, s.D)
	if err != nil {
		return err
	}
	if err := s.Op.SetParams(s.dev, ps); err != nil {
		return err
	}
	s.P = p
	return nil
}

// RefBridgeNoise returns the ε of BridgeStep (the Go Philox reference), [B, d].
func RefBridgeNoise(b, d int, p BridgeParams) []float64 {
	nb := (d + 3) / 4
	key := [2]uint32{uint32(p.Seed), uint32(p.Seed >> 32)}
	out := make([]float64, b*d)
	for s := 0; s < b; s++ {
		for q := 0; q < nb; q++ {
			eps := PhiloxNormal4(Philox4x32([4]uint32{uint32(s*nb + q), uint32(p.Step), p.Stream, PhiloxDomainBridge}, key))
			for l := 0; l < 4 && 4*q+l < d; l++ {
				out[s*d+4*q+l] = eps[l]
			}
		}
	}
	return out
}

// RefBridgeStep is the float64 reference of BridgeStep given the noise eps: it returns
// z_k and adds log p_B to logpb.
func RefBridgeStep(znext, eps []float64, b, d int, p BridgeParams, logpb []float64) []float64 {
	z := make([]float64, len(znext))
	if p.Step == 0 {
		return z
	}
	dt := 1 / float64(p.Steps)
	r := float64(p.Step) / float64(p.Step+1)
	v := p.Sigma2 * dt * r
	for s := 0; s < b; s++ {
		for j := 0; j < d; j++ {
			i := s*d + j
			z[i] = r*znext[i] + math.Sqrt(v)*eps[i]
			logpb[s] += -0.5*(z[i]-r*znext[i])*(z[i]-r*znext[i])/v - 0.5*math.Log(2*math.Pi*v)
		}
	}
	return z
}

// LogPF records logpf[b] += Σ_j log N(z1[b,j]; z0[b,j] + u[b,j]·dt, σ²·dt): the policy's
// log-density of transitions it did not draw.
func (l *Library) LogPF(logpf, z0, z1, u *Tensor, dt, sigma2 float64) (*Op, error) {
	if !sameShape(z0.Shape, z1.Shape) || !sameShape(z0.Shape, u.Shape) || logpf.Len() != z0.Rows() {
		return nil, fmt.Errorf("kernels: log p_F: z0 %v, z1 %v, u %v and log p_F %v must be [B, d] ×3 and [B]", z0.Shape, z1.Shape, u.Shape, logpf.Shape)
	}
	if !(dt > 0) || !(sigma2 > 0) {
		return nil, fmt.Errorf("kernels: log p_F: dt = %v, σ² = %v must be positive", dt, sigma2)
	}
	v := sigma2 * dt
	return l.build(opSpec{
		name: "log p_F", file: "logpf.wgsl", entry: "main",
		buffers: []*gpu.Buffer{z0.Buf, z1.Buf, u.Buf, logpf.Buf},
		params:  Params{z0.Rows(), z0.Cols(), float32(dt), float32(1 / v), float32(-0.5 * float64(z0.Cols()) * math.Log(2*math.Pi*v))},
		grid:    Grid1D(z0.Rows(), 64),
	})
}

// RefLogPF is the float64 reference of LogPF (returns logpf + Σ).
func RefLogPF(logpf, z0, z1, u []float64, d int, dt, sigma2 float64) []float64 {
	out := append([]float64(nil), logpf...)
	v := sigma2 * dt
	for i := range z0 {
		r := z1[i] - z0[i] - u[i]*dt
		out[i/d] += -0.5*r*r/v - 0.5*math.Log(2*math.Pi*v)
	}
	return out
}

// BridgeTrajectoryOp is a BridgeTrajectory op with its current parameters.
type BridgeTrajectoryOp struct {
	*Op
	B, D, Rows int
	P          BridgeParams // Step is unused: the op walks every step
	dev        *gpu.Device
}

// BridgeStepTable returns bridge_trajectory.wgsl's per-step constants [T] × (r_k,
// sqrt(σ²·dt·r_k), −(d/2)·ln(2π·σ²·dt·r_k), 0), derived in float64 as BridgeParams does.
func BridgeStepTable(steps, d int, sigma2 float64) []float32 {
	out := make([]float32, 4*steps)
	for k := 1; k < steps; k++ {
		ps, _ := BridgeParams{Step: k, Steps: steps, Sigma2: sigma2}.params(1, d)
		out[4*k], out[4*k+1], out[4*k+2] = ps[7].(float32), ps[8].(float32), ps[9].(float32)
	}
	return out
}

// BridgeTrajectory records a whole backward trajectory per row in one dispatch: from z_T
// (row T·rows + b of the stack zs [(T+1)·rows, d]) down to z_0 = 0, each z_k drawn from
// p_B(· | z_{k+1}) with exactly BridgeStep's noise, and logpb [B] += Σ_k log p_B. table is
// BridgeStepTable(T, d, σ²) ([T, 4]).
func (l *Library) BridgeTrajectory(zs, logpb, table *Tensor, b, rows int, p BridgeParams) (*BridgeTrajectoryOp, error) {
	const name = "kernels: bridge trajectory"
	d := zs.Cols()
	T := p.Steps
	switch {
	case T < 1 || !(p.Sigma2 > 0) || math.IsInf(p.Sigma2, 0):
		return nil, fmt.Errorf("%s: %d steps, σ² = %v (want ≥ 1 step and a positive finite σ²)", name, T, p.Sigma2)
	case b < 1 || rows < b:
		return nil, fmt.Errorf("%s: batch %d with a stack stride of %d rows (want 1 ≤ batch ≤ stride)", name, b, rows)
	case zs.Len() != (T+1)*rows*d:
		return nil, fmt.Errorf("%s: state stack %v, want [(T+1)·rows, d] = [%d, %d]", name, zs.Shape, (T+1)*rows, d)
	case logpb.Len() != b || table.Len() != 4*T:
		return nil, fmt.Errorf("%s: log p_B %v and step table %v, want [%d] and [%d, 4]", name, logpb.Shape, table.Shape, b, T)
	case zs.Buf.Shares(logpb.Buf):
		return nil, fmt.Errorf("%s: the state stack and log p_B share a buffer", name)
	}
	if err := philoxCheckBinding(l, name, "state stack", zs); err != nil {
		return nil, err
	}
	op, err := l.build(opSpec{
		name: "bridge trajectory", file: "bridge_trajectory.wgsl", entry: "main",
		buffers: []*gpu.Buffer{zs.Buf, logpb.Buf, table.Buf},
		params:  bridgeTrajectoryParams(b, d, rows, p),
		grid:    Grid1D(b, 64),
	})
	if err != nil {
		return nil, err
	}
	return &BridgeTrajectoryOp{Op: op, B: b, D: d, Rows: rows, P: p, dev: l.dev}, nil
}

func bridgeTrajectoryParams(b, d, rows int, p BridgeParams) Params {
	key := philoxKey(p.Seed)
	return Params{b, d, rows, p.Steps, p.Stream, key[0], key[1], (d + 3) / 4}
}

// Update rewrites the op's parameters (a new Stream per iteration).
func (s *BridgeTrajectoryOp) Update(p BridgeParams) error {
	if p.Steps != s.P.Steps || p.Sigma2 != s.P.Sigma2 {
		return fmt.Errorf("kernels: bridge trajectory: built for %d steps and σ² = %v, updated to %d and %v", s.P.Steps, s.P.Sigma2, p.Steps, p.Sigma2)
	}
	if err := s.Op.SetParams(s.dev, bridgeTrajectoryParams(s.B, s.D, s.Rows, p)); err != nil {
		return err
	}
	s.P = p
	return nil
}
