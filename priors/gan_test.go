package priors

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

func ganTestLib(t testing.TB) *kernels.Library {
	t.Helper()
	d, err := gpu.NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`; on machines without a GPU it installs Mesa lavapipe): %v", err)
	}
	l := kernels.NewLibrary(d)
	t.Cleanup(func() {
		l.Release()
		d.Release()
	})
	return l
}

func ganTestRNG(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0x6a7))
}

// ganTinyArch is small enough for float64 finite differences of the whole graph.
var ganTinyArch = GANArch{Latent: 3, Channels: 4, DiscChannels: 6}

func newTestGAN(t *testing.T, l *kernels.Library, a GANArch, seed uint64) *GAN {
	t.Helper()
	g, err := NewGAN(l.Device(), a, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Release)
	return g
}

func ganRead64(t *testing.T, x *kernels.Tensor) []float64 {
	t.Helper()
	v, err := x.Read()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

func ganTensor(t *testing.T, l *kernels.Library, label string, xs []float32, shape ...int) *kernels.Tensor {
	t.Helper()
	x, err := kernels.FromSlice(l.Device(), label, xs, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Release)
	return x
}

// ganRef is a float64 copy of a generator's and a discriminator's parameters with the
// forward passes written directly from the layer definitions.
type ganRef struct {
	a GANArch
	// gen.fc, gen.up1, gen.up2, disc.conv1, disc.conv2, disc.fc: weight then bias
	p map[string][]float64
}

func newGANRef(t *testing.T, a GANArch, ps ...[]*nn.Param) *ganRef {
	r := &ganRef{a: a, p: map[string][]float64{}}
	for _, list := range ps {
		for _, p := range list {
			r.p[p.Name] = ganRead64(t, p.Value)
		}
	}
	return r
}

func refLinear(x, w, b []float64, rows, in, out int) []float64 {
	y := make([]float64, rows*out)
	for r := 0; r < rows; r++ {
		for j := 0; j < out; j++ {
			s := b[j]
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w[i*out+j]
			}
			y[r*out+j] = s
		}
	}
	return y
}

func refLeaky(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v
		if v < 0 {
			y[i] = GANLeakySlope * v
		}
	}
	return y
}

func refAct(a kernels.Activation, x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = kernels.RefActivate(a, v)
	}
	return y
}

// gen is G(z) for rows latents.
func (r *ganRef) gen(z []float64, rows int) []float64 {
	c := r.a.Channels
	h := refAct(kernels.ReLU, refLinear(z, r.p["gen.fc.weight"], r.p["gen.fc.bias"], rows, r.a.Latent, 49*c))
	g1 := ganUp(7, c, c/2, true)
	g1.Batch = rows
	h = refAct(kernels.ReLU, kernels.RefConvTranspose2D(h, r.p["gen.up1.weight"], r.p["gen.up1.bias"], g1))
	g2 := ganUp(14, c/2, 1, true)
	g2.Batch = rows
	return refAct(kernels.Sigmoid, kernels.RefConvTranspose2D(h, r.p["gen.up2.weight"], r.p["gen.up2.bias"], g2))
}

// disc is D(x), one logit per image.
func (r *ganRef) disc(x []float64, rows int) []float64 {
	c := r.a.DiscChannels
	g1 := ganUp(28, 1, c/2, false)
	g1.Batch = rows
	h := refLeaky(kernels.RefConv2D(x, r.p["disc.conv1.weight"], r.p["disc.conv1.bias"], g1))
	g2 := ganUp(14, c/2, c, false)
	g2.Batch = rows
	h = refLeaky(kernels.RefConv2D(h, r.p["disc.conv2.weight"], r.p["disc.conv2.bias"], g2))
	return refLinear(h, r.p["disc.fc.weight"], r.p["disc.fc.bias"], rows, 49*c, 1)
}

// bce is mean_b BCE-with-logits(logit_b, target).
func refBCE(logits []float64, target float64) float64 {
	s := 0.0
	for _, x := range logits {
		s += math.Max(x, 0) - target*x + math.Log1p(math.Exp(-math.Abs(x)))
	}
	return s / float64(len(logits))
}

// ganClose fails unless got and want agree to tol relative to scale.
func ganClose(t *testing.T, what string, got, want, scale, tol float64) {
	t.Helper()
	if err := math.Abs(got-want) / math.Max(scale, 1e-12); !(err <= tol) {
		t.Errorf("%s: GPU %.8g, float64 finite differences %.8g (error %.2g of the gradient scale %.3g, tolerance %g)", what, got, want, err, scale, tol)
	}
}

// checkParamGrads compares each parameter's accumulated gradient (ps' Grad, read from the
// GPU) with central differences of the float64 loss, perturbing the float64 copy ref[name]
// in place: k entries per parameter, the first the largest so that each check has
// signal, the rest random. An all-zero gradient fails.
func checkParamGrads(t *testing.T, rng *rand.Rand, ps []*nn.Param, ref map[string][]float64, loss func() float64, what string, k int) {
	t.Helper()
	for _, p := range ps {
		grad := ganRead64(t, p.Grad)
		scale, largest := 0.0, 0
		for j, v := range grad {
			if math.Abs(v) > scale {
				scale, largest = math.Abs(v), j
			}
		}
		if scale == 0 {
			t.Errorf("∂%s/∂%s is all zero", what, p.Name)
			continue
		}
		w := ref[p.Name]
		for c := 0; c < k; c++ {
			i := largest
			if c > 0 {
				i = rng.IntN(len(w))
			}
			ganClose(t, "∂"+what+"/∂"+p.Name+"["+strconv.Itoa(i)+"]", grad[i], centralDiff(w, i, 1e-6, loss), scale, 2e-3)
		}
	}
}

// TestGANGeneratorVJP checks the generator built with Backward+InputGrad: its DX is
// (∂f/∂z)ᵀ·DY, compared with central differences of Σ DY ⊙ f(z) in float64, and the
// parameter gradients stay untouched.
func TestGANGeneratorVJP(t *testing.T) {
	l := ganTestLib(t)
	rng := ganTestRNG(t)
	a := ganTinyArch
	g := newTestGAN(t, l, a, rng.Uint64())
	const b = 2
	z := make([]float32, b*a.Latent)
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	zt := ganTensor(t, l, "z", z, b, a.Latent)
	net, err := g.Generator().Build(l, zt, nn.NetOptions{Backward: true, InputGrad: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	c := make([]float32, b*784)
	for i := range c {
		c[i] = float32(rng.NormFloat64())
	}
	if err := net.DY.Write(c); err != nil {
		t.Fatal(err)
	}
	if err := net.DX.Poison(); err != nil {
		t.Fatal(err)
	}
	if err := l.Run(append(append([]*kernels.Op(nil), net.Forward...), net.Backward...)...); err != nil {
		t.Fatal(err)
	}
	dz := ganRead64(t, net.DX)
	ref := newGANRef(t, a, g.Params())
	z64, c64 := make([]float64, len(z)), make([]float64, len(c))
	for i := range z {
		z64[i] = float64(z[i])
	}
	for i := range c {
		c64[i] = float64(c[i])
	}
	// The forward matches the reference too.
	y := ganRead64(t, net.Y)
	for i, want := range ref.gen(z64, b) {
		if math.Abs(y[i]-want) > 1e-4 {
			t.Fatalf("G(z)[%d] = %v on the GPU, %v in float64", i, y[i], want)
		}
	}
	loss := func(zz []float64) float64 {
		s := 0.0
		for i, v := range ref.gen(zz, b) {
			s += c64[i] * v
		}
		return s
	}
	scale := 0.0
	for _, v := range dz {
		scale = math.Max(scale, math.Abs(v))
	}
	const h = 1e-6
	for i := range z64 {
		zp := append([]float64(nil), z64...)
		zm := append([]float64(nil), z64...)
		zp[i] += h
		zm[i] -= h
		ganClose(t, "∂L/∂z["+strconv.Itoa(i)+"]", dz[i], (loss(zp)-loss(zm))/(2*h), scale, 1e-3)
	}
	for _, p := range g.Params() {
		for i, v := range ganRead64(t, p.Grad) {
			if v != 0 {
				t.Fatalf("the VJP touched %s.grad[%d] = %v", p.Name, i, v)
			}
		}
	}
}

// TestGANStepGradients runs the D step and the G step of one iteration without the
// optimizers and compares the accumulated gradients with float64 finite differences:
// D's gradients are those of L_D alone (the G step's pass through D adds nothing), G's
// those of the non-saturating L_G through D.
func TestGANStepGradients(t *testing.T) {
	l := ganTestLib(t)
	rng := ganTestRNG(t)
	a := ganTinyArch
	g := newTestGAN(t, l, a, rng.Uint64())
	D, err := newGANDisc(l.Device(), a, rng.Uint64())
	if err != nil {
		t.Fatal(err)
	}
	defer D.Release()
	const b = 3
	xs := make([]float32, b*784)
	for i := range xs {
		xs[i] = float32(rng.Float64())
	}
	x := ganTensor(t, l, "real", xs, b, 784)
	gr, err := newGANGraph(l, g, D, x, rng.Uint64())
	if err != nil {
		t.Fatal(err)
	}
	defer gr.release()
	if err := gr.setStep(l.Device(), 7); err != nil {
		t.Fatal(err)
	}
	r, err := l.NewRecorder("gan test step")
	if err != nil {
		t.Fatal(err)
	}
	dps, gps := D.Params(), g.Params()
	nn.ZeroGrads(r, append(append([]*nn.Param(nil), dps...), gps...))
	r.Record(gr.dOps...)
	r.Record(gr.gOps...)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	st, err := gr.stats()
	if err != nil {
		t.Fatal(err)
	}
	z := ganRead64(t, gr.z)
	x64 := make([]float64, len(xs))
	for i, v := range xs {
		x64[i] = float64(v)
	}
	ref := newGANRef(t, a, gps, dps)
	lossD := func() float64 {
		return refBCE(ref.disc(x64, b), ganRealTarget) + refBCE(ref.disc(ref.gen(z, b), b), 0)
	}
	lossG := func() float64 { return refBCE(ref.disc(ref.gen(z, b), b), 1) }
	if math.Abs(st.LossD-lossD()) > 1e-4*math.Max(1, lossD()) || math.Abs(st.LossG-lossG()) > 1e-4*math.Max(1, lossG()) {
		t.Fatalf("losses D %v, G %v on the GPU; float64 %v, %v", st.LossD, st.LossG, lossD(), lossG())
	}
	checkParamGrads(t, rng, dps, ref.p, lossD, "L_D", 3)
	checkParamGrads(t, rng, gps, ref.p, lossG, "L_G", 3)
}

// ganToyData is n images of random bright bars (a stand-in for a dataset in tests that
// must not depend on MNIST being installed).
func ganToyData(rng *rand.Rand, n int) *Dataset {
	ds := &Dataset{Name: "bars", N: n, Height: 28, Wd: 28, Images: make([]float32, n*784), Labels: make([]uint8, n)}
	for k := 0; k < n; k++ {
		row := 4 + rng.IntN(20)
		for j := 4; j < 24; j++ {
			for w := 0; w < 3; w++ {
				ds.Images[k*784+(row+w)*28+j] = 1
			}
		}
	}
	return ds
}

// TestGANTrainingSteps runs a few dozen full steps (D update, then G update) on a toy
// dataset: every parameter moves, the losses stay finite, the discriminator learns to
// tell real from fake, and EvalGAN's metrics are finite.
func TestGANTrainingSteps(t *testing.T) {
	l := ganTestLib(t)
	rng := ganTestRNG(t)
	a := GANArch{Latent: 8, Channels: 8, DiscChannels: 8}
	g := newTestGAN(t, l, a, rng.Uint64())
	ds := ganToyData(rng, 256)
	before := map[string][]float64{}
	for _, p := range g.Params() {
		before[p.Name] = ganRead64(t, p.Value)
	}
	var logs []string
	spec := TrainSpec{Train: ds, Epochs: 1, Batch: 32, LR: 2e-3, Seed: rng.Uint64(),
		Logf: func(f string, args ...any) { logs = append(logs, f) }}
	bs, err := NewBatches(l.Device(), ds, spec.Batch, true, spec.Seed)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Release()
	tr, err := newGANTrainer(l, g, bs.X, spec.LR, spec.Seed)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.release()
	dBefore := map[string][]float64{}
	for _, p := range tr.dParams {
		dBefore[p.Name] = ganRead64(t, p.Value)
	}
	var first, last ganStats
	for step := 1; step <= 40; step++ {
		if err := bs.Next(); err != nil {
			t.Fatal(err)
		}
		if err := tr.step(l, step, spec.LR); err != nil {
			t.Fatal(err)
		}
		if step == 1 {
			// The model holds the moving average: β·θ_model + (1 − β)·θ_train.
			beta := ganEMADecay(1)
			for i, p := range g.Params() {
				got, trained := ganRead64(t, p.Value), ganRead64(t, tr.gPars[i].Value)
				for j := range got {
					want := beta*before[p.Name][j] + (1-beta)*trained[j]
					if math.Abs(got[j]-want) > 1e-6*(1+math.Abs(want)) {
						t.Fatalf("%s[%d] after step 1 = %v, want the average %v (model %v, trained %v, β %v)", p.Name, j, got[j], want, before[p.Name][j], trained[j], beta)
					}
				}
			}
		}
		if step == 1 || step == 40 {
			st, err := tr.graph.stats()
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if step == 1 {
				first = st
			}
			last = st
		}
	}
	t.Logf("step 1: %+v; step 40: %+v", first, last)
	if !(last.DReal > last.DFake) {
		t.Errorf("after 40 steps D(x) = %.3f is not above D(G(z)) = %.3f", last.DReal, last.DFake)
	}
	moved := func(ps []*nn.Param, was map[string][]float64) {
		for _, p := range ps {
			now := ganRead64(t, p.Value)
			same := true
			for i := range now {
				if now[i] != was[p.Name][i] {
					same = false
				}
				if math.IsNaN(now[i]) || math.IsInf(now[i], 0) {
					t.Fatalf("%s[%d] = %v after training", p.Name, i, now[i])
				}
			}
			if same {
				t.Errorf("%s did not change in 40 steps", p.Name)
			}
		}
	}
	moved(g.Params(), before)
	moved(tr.dParams, dBefore)
	// The public loop: a short epoch with logging and the epoch callback.
	done := 0
	spec.EpochDone = func(int) error { done++; return nil }
	if err := trainGAN(l, g, spec, 3); err != nil {
		t.Fatal(err)
	}
	if done != 1 || len(logs) == 0 {
		t.Fatalf("trainGAN: %d epoch callbacks and %d log lines, want 1 and ≥ 1", done, len(logs))
	}
	m, err := EvalGAN(l, g, ganToyData(rng, 500))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pixel_fd_7x7", "mean_pixel", "sample_std"} {
		if v, ok := m[k]; !ok || math.IsNaN(v) || v < 0 {
			t.Errorf("EvalGAN %s = %v (present %v)", k, v, ok)
		}
	}
	t.Logf("eval: %v", m)
}

// TestGANSaveLoad round-trips a generator through SaveModel/LoadModel: same kind,
// architecture, parameter names and bit-identical samples; a wrong architecture fails.
func TestGANSaveLoad(t *testing.T) {
	l := ganTestLib(t)
	rng := ganTestRNG(t)
	a := GANArch{Latent: 5, Channels: 6, DiscChannels: 4}
	g := newTestGAN(t, l, a, rng.Uint64())
	var names []string
	for _, p := range g.Params() {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, " "); got != "gen.fc.weight gen.fc.bias gen.up1.weight gen.up1.bias gen.up2.weight gen.up2.bias" {
		t.Fatalf("parameter names %s", got)
	}
	path := filepath.Join(t.TempDir(), "gan.safetensors")
	if err := SaveModel(path, g, map[string]string{MetaDataset: "mnist"}); err != nil {
		t.Fatal(err)
	}
	p, md, err := LoadPrior(l.Device(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if p.Kind() != "gan" || md[MetaDataset] != "mnist" || p.(*GAN).Arch != a || p.LatentDim() != 5 {
		t.Fatalf("loaded %s %+v (metadata %v)", p.Kind(), p.Architecture(), md)
	}
	if h, w, c := p.Image(); h != 28 || w != 28 || c != 1 {
		t.Fatalf("image %d×%d×%d", h, w, c)
	}
	want, err := Sample(l, g, 16, 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Sample(l, p, 16, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] || !(want[i] > 0 && want[i] < 1) {
			t.Fatalf("sample value %d: %v after the round trip, %v before", i, got[i], want[i])
		}
	}
	batched, err := sampleBatched(l, g, 16, 16, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if batched[i] != want[i] {
			t.Fatalf("sampleBatched value %d: %v, Sample %v (same seed, stream 0)", i, batched[i], want[i])
		}
	}
	k, err := LookupKind("gan")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Build(l.Device(), []byte(`{"Latent": 4, "Channels": 5, "DiscChannels": 4}`), 1); err == nil {
		t.Fatal("an odd channel count was accepted")
	}
	if _, err := k.Build(l.Device(), []byte(`{"Latent": 4, "Chanels": 6, "DiscChannels": 4}`), 1); err == nil {
		t.Fatal("an unknown architecture field was accepted")
	}
}
