package priors

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// flowTestLib opens the default adapter and a kernel library (no adapter is a failure).
func flowTestLib(t testing.TB) *kernels.Library {
	t.Helper()
	d, err := gpu.NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`): %v", err)
	}
	l := kernels.NewLibrary(d)
	t.Cleanup(func() {
		l.Release()
		d.Release()
	})
	return l
}

// flowTestRNG is seeded from the clock (OSDS_TEST_SEED replays a failure).
func flowTestRNG(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OSDS_TEST_SEED"); s != "" {
		seed = 0
		for _, c := range s {
			seed = seed*10 + uint64(c-'0')
		}
	}
	t.Logf("seed %d (set OSDS_TEST_SEED to replay)", seed)
	return rand.New(rand.NewPCG(seed, 0xf10))
}

// newTestFlow builds a flow of arch with every parameter (the zero-initialised output
// layers too) drawn from N(0, scale²), so that the couplings are far from the identity.
func newTestFlow(t *testing.T, l *kernels.Library, rng *rand.Rand, a FlowArch, scale float64) *Flow {
	t.Helper()
	f, err := NewFlow(l.Device(), a, rng.Uint64())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Release)
	for _, p := range f.Params() {
		v := make([]float32, p.Len())
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		if err := p.Value.Write(v); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// tinyFlowArch is a 6-pixel flow (2×3 images).
func tinyFlowArch(couplings, hidden, layers int, masks string) FlowArch {
	return FlowArch{Height: 2, Width: 3, Couplings: couplings, Hidden: hidden, HiddenLayers: layers, Masks: masks, Clamp: 1.5, Alpha: 0.05}
}

// refFlow is a float64 copy of a flow's parameters with the flow's math on the host.
type refFlow struct {
	arch     FlowArch
	parts    []kernels.RefCoupling
	w, b     [][][]float64 // [coupling][layer]: W [in·out] row-major [in, out], b [out]
	ins, out [][]int
	// signs, when not nil, receives whether each ReLU that mlp evaluates is active, in
	// order: the linear piece of the networks that a point lies on.
	signs *[]bool
}

func newRefFlow(t *testing.T, f *Flow) *refFlow {
	t.Helper()
	r := &refFlow{arch: f.Arch}
	for c, net := range f.Nets {
		perm, na := f.Arch.Partition(c)
		r.parts = append(r.parts, kernels.RefCoupling{Perm: perm, NA: na, Clamp: f.Arch.Clamp})
		var ws, bs [][]float64
		var ins, outs []int
		for _, m := range net {
			w, err := m.W.Value.Read()
			if err != nil {
				t.Fatal(err)
			}
			b, err := m.B.Value.Read()
			if err != nil {
				t.Fatal(err)
			}
			ws, bs = append(ws, flow64(w)), append(bs, flow64(b))
			ins, outs = append(ins, m.In), append(outs, m.Out)
		}
		r.w, r.b = append(r.w, ws), append(r.b, bs)
		r.ins, r.out = append(r.ins, ins), append(r.out, outs)
	}
	return r
}

func flow64(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// mlp is coupling c's network on one row.
func (r *refFlow) mlp(c int, x []float64) []float64 {
	for k := range r.w[c] {
		in, out := r.ins[c][k], r.out[c][k]
		y := make([]float64, out)
		for j := 0; j < out; j++ {
			s := r.b[c][k][j]
			for i := 0; i < in; i++ {
				s += x[i] * r.w[c][k][i*out+j]
			}
			if k < len(r.w[c])-1 {
				if r.signs != nil {
					*r.signs = append(*r.signs, s > 0)
				}
				s = math.Max(s, 0)
			}
			y[j] = s
		}
		x = y
	}
	return x
}

// forward is g: y → z with Σ log|det| for one row.
func (r *refFlow) forward(y []float64) ([]float64, float64) {
	ld := 0.0
	for c, p := range r.parts {
		h := r.mlp(c, kernels.RefCouplingGather(y, p))
		var l []float64
		y, l = kernels.RefCouplingForward(y, h, []float64{ld}, p, false)
		ld = l[0]
	}
	return y, ld
}

// logDetByDifferences estimates log|det ∂z/∂y| of forward at y from central differences
// extrapolated over two steps (Richardson: (4·D(h/2) − D(h))/3 cancels the h² error) at
// h = 2e-3, 1e-3, …, 6.25e-5, and returns the estimate that agrees best with the one at
// the next larger step, with that disagreement as err. A fixed step cannot serve every
// random flow: the curvature of the stacked exp(s) scales spoils large steps (2e-6 at
// 1e-5 unextrapolated, 8e-6 at 1e-3 extrapolated) and rounding, ε·|z|/h amplified by J's
// condition, small ones (4e-6 at 1e-6, 4e-7 at 1e-4), each on some seeds. ok is false
// if a difference crosses a ReLU kink.
func (r *refFlow) logDetByDifferences(y []float64) (ld, err float64, ok bool) {
	const steps = 7
	js := make([][][]float64, steps)
	for i := range js {
		if js[i] = r.jacobian(y, 2e-3/float64(int(1)<<i)); js[i] == nil {
			return 0, 0, false
		}
	}
	est := make([]float64, steps-1)
	for i := range est {
		x := make([][]float64, len(y))
		for a := range x {
			x[a] = make([]float64, len(y))
			for b := range x[a] {
				x[a][b] = (4*js[i+1][a][b] - js[i][a][b]) / 3
			}
		}
		est[i] = logAbsDet(x)
	}
	err = math.Inf(1)
	for i := 1; i < len(est); i++ {
		if d := math.Abs(est[i] - est[i-1]); d < err {
			ld, err = est[i], d
		}
	}
	return ld, err, true
}

// jacobian is ∂z_i/∂y_j of forward at y by central differences of step h, or nil if a
// difference crosses a kink: if some ReLU is active at y ± h·e_j and not at y, or the
// other way round, the difference mixes two linear pieces and is wrong in that column.
func (r *refFlow) jacobian(y []float64, h float64) [][]float64 {
	pattern := func(y []float64) ([]float64, []bool) {
		var signs []bool
		r.signs = &signs
		z, _ := r.forward(y)
		r.signs = nil
		return z, signs
	}
	_, at := pattern(y)
	J := make([][]float64, len(y))
	for i := range J {
		J[i] = make([]float64, len(y))
	}
	for j := range y {
		yp := append([]float64(nil), y...)
		ym := append([]float64(nil), y...)
		yp[j] += h
		ym[j] -= h
		zp, sp := pattern(yp)
		zm, sm := pattern(ym)
		if !slices.Equal(sp, at) || !slices.Equal(sm, at) {
			return nil
		}
		for i := range zp {
			J[i][j] = (zp[i] - zm[i]) / (2 * h)
		}
	}
	return J
}

// inverse is g⁻¹: z → y for one row.
func (r *refFlow) inverse(z []float64) []float64 {
	for c := len(r.parts) - 1; c >= 0; c-- {
		h := r.mlp(c, kernels.RefCouplingGather(z, r.parts[c]))
		z, _ = kernels.RefCouplingForward(z, h, nil, r.parts[c], true)
	}
	return z
}

// generate is the prior f(z) for one row.
func (r *refFlow) generate(z []float64) []float64 {
	return kernels.RefLogitOutput(r.inverse(z), float64(float32(r.arch.Alpha)))
}

// nll is −log p(k + u) in nats for one row of pixels and noise.
func (r *refFlow) nll(pix, u []float64) float64 {
	d := len(pix)
	y, ld0 := kernels.RefDequantLogit(pix, u, d, float64(float32(r.arch.Alpha)))
	z, ld := r.forward(y)
	nll, _ := kernels.RefGaussianNLL(z, []float64{ld0[0] + ld}, d, 0)
	return nll[0]
}

// setParam writes v into element i of parameter (c, k, bias?) of the reference.
func (r *refFlow) param(c, k int, bias bool) []float64 {
	if bias {
		return r.b[c][k]
	}
	return r.w[c][k]
}

// logAbsDet returns log|det A| of an n×n matrix by Gaussian elimination with partial
// pivoting.
func logAbsDet(a [][]float64) float64 {
	n := len(a)
	m := make([][]float64, n)
	for i := range a {
		m[i] = append([]float64(nil), a[i]...)
	}
	s := 0.0
	for k := 0; k < n; k++ {
		p := k
		for i := k + 1; i < n; i++ {
			if math.Abs(m[i][k]) > math.Abs(m[p][k]) {
				p = i
			}
		}
		m[k], m[p] = m[p], m[k]
		s += math.Log(math.Abs(m[k][k]))
		for i := k + 1; i < n; i++ {
			f := m[i][k] / m[k][k]
			for j := k; j < n; j++ {
				m[i][j] -= f * m[k][j]
			}
		}
	}
	return s
}

// flowClose fails unless |got − want| ≤ tol·max(1, |want|).
func flowClose(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if e := math.Abs(got-want) / math.Max(1, math.Abs(want)); !(e <= tol) {
		t.Fatalf("%s: got %v, want %v (relative error %.3g > %.3g)", what, got, want, e, tol)
	}
}

// TestFlowLogDet compares the GPU flow's z and log-determinant with the float64
// reference, and the reference's log-determinant with the log|det| of its Jacobian
// computed by central differences (a brute-force determinant, no triangular structure
// assumed).
func TestFlowLogDet(t *testing.T) {
	l, rng := flowTestLib(t), flowTestRNG(t)
	for _, a := range []FlowArch{tinyFlowArch(2, 5, 1, "checkerboard"), tinyFlowArch(4, 4, 2, "checkerboard+halves")} {
		f := newTestFlow(t, l, rng, a, 0.7)
		r := newRefFlow(t, f)
		const rows = 4
		D := a.D()
		ys := make([]float32, rows*D)
		for i := range ys {
			ys[i] = float32(rng.NormFloat64() * 1.5)
		}
		z, ld, err := f.Transform(l, ys, rows)
		if err != nil {
			t.Fatal(err)
		}
		for b := 0; b < rows; b++ {
			y := flow64(ys[b*D : (b+1)*D])
			wz, wld := r.forward(y)
			for i := range wz {
				flowClose(t, a.Masks+" z", float64(z[b*D+i]), wz[i], 1e-4)
			}
			flowClose(t, a.Masks+" logdet", float64(ld[b]), wld, 1e-4)
			// Brute force: log|det ∂z/∂y| from finite differences (no triangular structure
			// assumed), at a point whose differences stay on one linear piece of the ReLU
			// networks: y, or y moved a little.
			yf := y
			fd, fdErr, ok := r.logDetByDifferences(yf)
			for try := 0; !ok; try++ {
				if try == 100 {
					t.Fatalf("%s: every point near y puts a ReLU kink within a difference step", a.Masks)
				}
				yf = append([]float64(nil), y...)
				for i := range yf {
					yf[i] += 0.01 * rng.NormFloat64()
				}
				fd, fdErr, ok = r.logDetByDifferences(yf)
			}
			_, fld := r.forward(yf)
			if !(fdErr <= 1e-5) {
				t.Fatalf("%s: the finite-difference log-determinant does not settle (steps disagree by %.3g)", a.Masks, fdErr)
			}
			if d := math.Abs(fd - fld); !(d <= 1e-6*math.Max(1, math.Abs(fld))+4*fdErr) {
				t.Fatalf("%s: reference logdet %.12g, finite differences %.12g ± %.2g", a.Masks, fld, fd, fdErr)
			}
			// And the inverse undoes the forward.
			back := r.inverse(wz)
			for i := range back {
				flowClose(t, a.Masks+" reference inverse", back[i], y[i], 1e-9)
			}
		}
	}
}

// TestFlowRoundTrip: on the default 784-pixel architecture with random couplings,
// Generator(Transform(y)) gives back the pixels of y.
func TestFlowRoundTrip(t *testing.T) {
	l, rng := flowTestLib(t), flowTestRNG(t)
	a := DefaultFlowArch
	a.Couplings = 4
	// Output weights of 0.02 give log-scales of O(1) from 96 hidden units.
	f := newTestFlow(t, l, rng, a, 0.02)
	const rows = 3
	D := a.D()
	ys := make([]float32, rows*D)
	for i := range ys {
		ys[i] = float32(rng.NormFloat64() * 1.5)
	}
	z, _, err := f.Transform(l, ys, rows)
	if err != nil {
		t.Fatal(err)
	}
	zt, err := kernels.FromSlice(l.Device(), "z", z, rows, D)
	if err != nil {
		t.Fatal(err)
	}
	defer zt.Release()
	net, err := f.Generator().Build(l, zt, nn.NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	if err := l.Run(net.Forward...); err != nil {
		t.Fatal(err)
	}
	px, err := net.Y.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := kernels.RefLogitOutput(flow64(ys), float64(float32(a.Alpha)))
	worst := 0.0
	for i := range px {
		worst = math.Max(worst, math.Abs(float64(px[i])-want[i]))
	}
	if !(worst < 1e-4) {
		t.Fatalf("Generator(Transform(y)) differs from the pixels of y by up to %v", worst)
	}
	t.Logf("round trip on 784 pixels through 4 couplings: max error %.2g", worst)
}

// TestFlowTrainGradient compares the training graph's loss and parameter gradients with
// the float64 reference and central differences of it, on a tiny flow with two hidden
// layers per coupling and the same Philox dequantisation noise.
func TestFlowTrainGradient(t *testing.T) {
	l, rng := flowTestLib(t), flowTestRNG(t)
	for _, alpha := range []float64{0.05, 1e-6} {
		a := tinyFlowArch(3, 4, 2, "checkerboard")
		a.Alpha = alpha
		flowCheckTrainGradient(t, l, rng, a)
	}
}

func flowCheckTrainGradient(t *testing.T, l *kernels.Library, rng *rand.Rand, a FlowArch) {
	f := newTestFlow(t, l, rng, a, 0.6)
	// Positive hidden biases keep most ReLUs active, so the gradient reaches every layer.
	for _, net := range f.Nets {
		for _, m := range net[:len(net)-1] {
			b := make([]float32, m.Out)
			for i := range b {
				b[i] = float32(0.5 + rng.Float64())
			}
			if err := m.B.Value.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := newRefFlow(t, f)
	const rows, step = 5, 3
	D := a.D()
	pixels := make([]float32, rows*D)
	for i := range pixels {
		pixels[i] = float32(rng.IntN(256)) / 255
	}
	pix, err := kernels.FromSlice(l.Device(), "pixels", pixels, rows, D)
	if err != nil {
		t.Fatal(err)
	}
	defer pix.Release()
	seed := rng.Uint64()
	g, err := newFlowGraph(l, f, pix, true, false, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer g.release()
	if err := g.setStep(l.Device(), step); err != nil {
		t.Fatal(err)
	}
	params := f.Params()
	for _, p := range params {
		if err := p.Grad.Poison(); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := l.NewRecorder("test")
	if err != nil {
		t.Fatal(err)
	}
	nn.ZeroGrads(rec, params)
	g.record(rec)
	if err := rec.Submit(); err != nil {
		t.Fatal(err)
	}
	u := kernels.RefRandUniform(rows*D, seed, step, 0)
	px64, u64 := flow64(pixels), flow64(u)
	loss := func() float64 {
		s := 0.0
		for b := 0; b < rows; b++ {
			s += r.nll(px64[b*D:(b+1)*D], u64[b*D:(b+1)*D])
		}
		return s / rows
	}
	nll, err := g.nll.Read()
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < rows; b++ {
		flowClose(t, "nll", float64(nll[b]), r.nll(px64[b*D:(b+1)*D], u64[b*D:(b+1)*D]), 1e-4)
	}
	checked := 0
	for c := range f.Nets {
		for k, m := range f.Nets[c] {
			for _, bias := range []bool{false, true} {
				p := m.W
				if bias {
					p = m.B
				}
				grad, err := p.Grad.Read()
				if err != nil {
					t.Fatal(err)
				}
				ref := r.param(c, k, bias)
				// Gradient scale for the error floor: the largest of this tensor.
				gmax := 0.0
				fds := make([]float64, len(ref))
				for i := range ref {
					fds[i] = centralDiff(ref, i, 1e-6, loss)
					gmax = math.Max(gmax, math.Abs(fds[i]))
				}
				for i := range ref {
					e := math.Abs(float64(grad[i])-fds[i]) / math.Max(math.Abs(fds[i]), 1e-2*gmax+1e-6)
					if !(e < 1e-3) {
						t.Fatalf("%s element %d: gradient %v, central difference %v (error %.3g)", p.Name, i, grad[i], fds[i], e)
					}
					checked++
				}
			}
		}
	}
	t.Logf("α %g: %d parameter gradients match central differences", a.Alpha, checked)
}

// TestFlowGeneratorVJP checks the Generator's output against the reference and its
// input and parameter gradients against central differences of L(z) = Σ dp ⊙ f(z).
func TestFlowGeneratorVJP(t *testing.T) {
	l, rng := flowTestLib(t), flowTestRNG(t)
	a := tinyFlowArch(3, 5, 2, "checkerboard+halves")
	f := newTestFlow(t, l, rng, a, 0.5)
	r := newRefFlow(t, f)
	const rows = 4
	D := a.D()
	zs, dps := make([]float32, rows*D), make([]float32, rows*D)
	for i := range zs {
		zs[i] = float32(rng.NormFloat64())
		dps[i] = float32(rng.NormFloat64())
	}
	z, err := kernels.FromSlice(l.Device(), "z", zs, rows, D)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Release()
	net, err := f.Generator().Build(l, z, nn.NetOptions{Backward: true, InputGrad: true, ParamGrads: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	if err := net.DY.Write(dps); err != nil {
		t.Fatal(err)
	}
	params := f.Params()
	rec, err := l.NewRecorder("vjp")
	if err != nil {
		t.Fatal(err)
	}
	nn.ZeroGrads(rec, params)
	rec.Record(net.Forward...)
	rec.Record(net.Backward...)
	if err := rec.Submit(); err != nil {
		t.Fatal(err)
	}
	px, err := net.Y.Read()
	if err != nil {
		t.Fatal(err)
	}
	dz, err := net.DX.Read()
	if err != nil {
		t.Fatal(err)
	}
	z64, dp64 := flow64(zs), flow64(dps)
	L := func() float64 {
		s := 0.0
		for b := 0; b < rows; b++ {
			p := r.generate(z64[b*D : (b+1)*D])
			for i := range p {
				s += dp64[b*D+i] * p[i]
			}
		}
		return s
	}
	fd := func(x []float64, i int) float64 { return centralDiff(x, i, 1e-6, L) }
	for b := 0; b < rows; b++ {
		want := r.generate(z64[b*D : (b+1)*D])
		for i := range want {
			flowClose(t, "generator output", float64(px[b*D+i]), want[i], 1e-5)
		}
	}
	for i := range z64 {
		flowClose(t, "generator VJP ∂L/∂z", float64(dz[i]), fd(z64, i), 1e-4)
	}
	for c := range f.Nets {
		for k, m := range f.Nets[c] {
			grad, err := m.W.Grad.Read()
			if err != nil {
				t.Fatal(err)
			}
			ref := r.param(c, k, false)
			for i := range ref {
				flowClose(t, m.W.Name+" gradient", float64(grad[i]), fd(ref, i), 1e-4)
			}
		}
	}
}

// flowSubset is the first n images of ds.
func flowSubset(ds *Dataset, n int) *Dataset {
	p := ds.Height * ds.Wd
	return &Dataset{Name: ds.Name, Images: ds.Images[:n*p], Labels: ds.Labels[:n], N: n, Height: ds.Height, Wd: ds.Wd}
}

// TestFlowTrainingLowersBitsPerDim trains a small flow for a few hundred steps on an
// MNIST subset and checks held-out bits/dim against the untrained flow.
func TestFlowTrainingLowersBitsPerDim(t *testing.T) {
	l := flowTestLib(t)
	// The test split alone (quicker to load): the first 3200 images to train on, the last
	// 500 held out.
	test, err := LoadDataset("mnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	a := FlowArch{Height: 28, Width: 28, Couplings: 4, Hidden: 32, HiddenLayers: 1, Masks: "checkerboard+halves", Clamp: 2, Alpha: 1e-6}
	f, err := NewFlow(l.Device(), a, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	p := test.Height * test.Wd
	held := &Dataset{Name: "mnist held out", Images: test.Images[(test.N-500)*p:], Labels: test.Labels[test.N-500:], N: 500, Height: test.Height, Wd: test.Wd}
	before, err := EvalFlow(l, f, held, 1)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var logs []string
	spec := TrainSpec{Train: flowSubset(test, 3200), Epochs: 3, Batch: 32, LR: 3e-3, Seed: 1,
		Logf: func(format string, args ...any) { logs = append(logs, format) }}
	if err := TrainFlow(l, f, spec); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	after, err := EvalFlow(l, f, held, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("300 steps in %v: held-out bits/dim %.3f → %.3f", elapsed.Round(time.Millisecond), before, after)
	if !(after < before-1 && after < 3.5) {
		t.Fatalf("training did not lower held-out bits/dim enough: %.3f → %.3f", before, after)
	}
	if len(logs) == 0 {
		t.Fatal("training logged nothing")
	}
}

// TestFlowTrainStopsOnNaN: a NaN parameter makes training fail, naming the step.
func TestFlowTrainStopsOnNaN(t *testing.T) {
	l, rng := flowTestLib(t), flowTestRNG(t)
	a := tinyFlowArch(2, 4, 1, "checkerboard")
	f := newTestFlow(t, l, rng, a, 0.3)
	// A NaN output bias (a hidden one could vanish in max(NaN, 0)).
	if err := f.Nets[1][len(f.Nets[1])-1].B.Value.Poison(); err != nil {
		t.Fatal(err)
	}
	ds := &Dataset{Name: "tiny", N: 64, Height: 2, Wd: 3, Images: make([]float32, 64*6), Labels: make([]uint8, 64)}
	for i := range ds.Images {
		ds.Images[i] = float32(rng.IntN(256)) / 255
	}
	err := TrainFlow(l, f, TrainSpec{Train: ds, Epochs: 1, Batch: 8, LR: 1e-3})
	if err == nil || !strings.Contains(err.Error(), "flow step 8") || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("want an error naming step 8 and NaN, got %v", err)
	}
}

// TestFlowSaveLoad round-trips a flow through SaveModel / LoadModel.
func TestFlowSaveLoad(t *testing.T) {
	l, rng := flowTestLib(t), flowTestRNG(t)
	a := FlowArch{Height: 4, Width: 5, Couplings: 3, Hidden: 7, HiddenLayers: 2, Masks: "checkerboard+halves", Clamp: 2.5, Alpha: 0.05}
	f := newTestFlow(t, l, rng, a, 0.3)
	path := filepath.Join(t.TempDir(), "flow.safetensors")
	if err := SaveModel(path, f, map[string]string{MetaDataset: "tiny"}); err != nil {
		t.Fatal(err)
	}
	m, md, err := LoadModel(l.Device(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	g, ok := m.(*Flow)
	if !ok || md[MetaKind] != "flow" || g.Arch != a {
		t.Fatalf("loaded %T kind %q arch %+v, want a flow of %+v", m, md[MetaKind], g, a)
	}
	pa, pb := f.Params(), g.Params()
	if len(pa) != len(pb) || pa[0].Name != "flow.c0.fc1.weight" {
		t.Fatalf("%d params (first %q) loaded as %d", len(pa), pa[0].Name, len(pb))
	}
	for i := range pa {
		va, _ := pa[i].Value.Read()
		vb, _ := pb[i].Value.Read()
		if pa[i].Name != pb[i].Name || len(va) != len(vb) {
			t.Fatalf("param %d: %s vs %s", i, pa[i].Name, pb[i].Name)
		}
		for j := range va {
			if va[j] != vb[j] {
				t.Fatalf("%s[%d]: %v saved, %v loaded", pa[i].Name, j, va[j], vb[j])
			}
		}
	}
	pixels := make([]float32, 6*a.D())
	for i := range pixels {
		pixels[i] = float32(rng.IntN(256)) / 255
	}
	pix, err := kernels.FromSlice(l.Device(), "pixels", pixels, 6, a.D())
	if err != nil {
		t.Fatal(err)
	}
	defer pix.Release()
	lpa, err := f.LogProb(l, pix, 5)
	if err != nil {
		t.Fatal(err)
	}
	lpb, err := g.LogProb(l, pix, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range lpa {
		if lpa[i] != lpb[i] || math.IsNaN(lpa[i]) {
			t.Fatalf("log p of image %d: %v before saving, %v after loading", i, lpa[i], lpb[i])
		}
	}
}

func TestFlowKind(t *testing.T) {
	l := flowTestLib(t)
	k, err := LookupKind("flow")
	if err != nil {
		t.Fatal(err)
	}
	m, err := k.Build(l.Device(), nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	f := m.(*Flow)
	n := 0
	for _, p := range f.Params() {
		n += p.Len()
	}
	if h, w, c := f.Image(); f.LatentDim() != 784 || h != 28 || w != 28 || c != 1 || n > 1_000_000 || f.Kind() != "flow" {
		t.Fatalf("default flow: latent %d, image %d×%d×%d, %d parameters", f.LatentDim(), h, w, c, n)
	}
	t.Logf("default flow: %d parameters", n)
	for _, bad := range []string{`{"Couplings": 0}`, `{"Masks": "stripes"}`, `{"Alpha": 0.5}`, `{"Clamp": -1}`, `{"Depth": 3}`, `{"Height": 1, "Width": 1}`} {
		if m, err := k.Build(l.Device(), []byte(bad), 1); err == nil {
			m.Release()
			t.Errorf("architecture %s accepted", bad)
		}
	}
	// A fresh flow is the identity: z = y and log|det| = 0.
	small, err := k.Build(l.Device(), []byte(`{"Height": 3, "Width": 3, "Couplings": 2, "Hidden": 4}`), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Release()
	ys := []float32{0.5, -1, 2, 0.25, -0.75, 1.5, -2, 3, 0.1}
	z, ld, err := small.(*Flow).Transform(l, ys, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ys {
		if z[i] != ys[i] {
			t.Fatalf("fresh flow: z[%d] = %v, want %v", i, z[i], ys[i])
		}
	}
	if ld[0] != 0 {
		t.Fatalf("fresh flow: logdet %v, want 0", ld[0])
	}
}
