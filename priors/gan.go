package priors

import (
	"fmt"
	"math"
	"math/rand/v2"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// GANArch is a DCGAN-style generative adversarial network for 28×28 grayscale images
// (NHWC rows of 784), without batch normalisation:
//
//	generator (the prior f, shipped)
//	  z [Latent] → Linear → 7×7×C → ReLU
//	             → ConvTranspose2D 4×4 s2 p1 → 14×14×C/2 → ReLU
//	             → ConvTranspose2D 4×4 s2 p1 → 28×28×1 → Sigmoid        (pixels in (0, 1))
//	discriminator (training only)
//	  x [784] → Conv2D 4×4 s2 p1 → 14×14×CD/2 → LeakyReLU
//	          → Conv2D 4×4 s2 p1 → 7×7×CD → LeakyReLU → Linear → 1 logit
//
// with C = Channels, CD = DiscChannels (both even, ≥ 2) and LeakyReLU slope
// GANLeakySlope = 0.2. The discriminator is not part of the model file; its width is
// recorded with the architecture because it shaped the training.
type GANArch struct {
	Latent, Channels, DiscChannels int
}

// DefaultGANArch is z ∈ R³², C = 64, CD = 32: 137k generator parameters, 10k in the
// discriminator. With equal widths three quarters of a step's arithmetic is the
// discriminator's (three forward and three backward passes against one and one for G);
// halving its width halves the step time, and on MNIST reached the same sample quality
// per minute of training as CD = 64 (D(x) ≈ 0.5 against D(G(z)) ≈ 0.4 late in training).
var DefaultGANArch = GANArch{Latent: 32, Channels: 64, DiscChannels: 32}

func (a GANArch) check() error {
	if a.Latent < 1 || a.Channels < 2 || a.Channels%2 != 0 || a.DiscChannels < 2 || a.DiscChannels%2 != 0 {
		return fmt.Errorf("priors: gan architecture %+v: want Latent ≥ 1 and even Channels and DiscChannels ≥ 2", a)
	}
	return nil
}

// ganUp is the geometry of a 4×4, stride 2, padding 1 (transposed) convolution on
// side×side×in images: it doubles (transposed) or halves the side.
func ganUp(side, in, out int, transposed bool) kernels.ConvGeom {
	return kernels.ConvGeom{InH: side, InW: side, InC: in, OutC: out, KH: 4, KW: 4, Stride: 2, Pad: 1, Transposed: transposed}
}

// GAN is the generator of a GANArch: parameters gen.fc (Linear [Latent, 49·C], output
// NHWC 7×7×C), gen.up1 (ConvTranspose2D C → C/2) and gen.up2 (C/2 → 1), each with
// ".weight" and ".bias" in the layouts of package nn (PyTorch's ConvTranspose2d weight
// (in, out, kh, kw) permuted to (in, kh, kw, out); a PyTorch Linear producing NCHW
// channels must have its output columns permuted to NHWC).
type GAN struct {
	Arch     GANArch
	FC       *nn.Linear
	Up1, Up2 *nn.ConvTranspose2D
}

// NewGAN creates a generator initialised like PyTorch's layers.
func NewGAN(d *gpu.Device, a GANArch, seed uint64) (*GAN, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x6a7))
	g := &GAN{Arch: a}
	var err error
	c := a.Channels
	if g.FC, err = nn.NewLinear(d, "gen.fc", a.Latent, 7*7*c, rng, false); err != nil {
		return nil, err
	}
	if g.Up1, err = nn.NewConvTranspose2D(d, "gen.up1", ganUp(7, c, c/2, true), rng); err != nil {
		g.Release()
		return nil, err
	}
	if g.Up2, err = nn.NewConvTranspose2D(d, "gen.up2", ganUp(14, c/2, 1, true), rng); err != nil {
		g.Release()
		return nil, err
	}
	return g, nil
}

// Kind is "gan".
func (g *GAN) Kind() string { return "gan" }

// Architecture is the GANArch.
func (g *GAN) Architecture() any { return g.Arch }

// LatentDim is the size of z.
func (g *GAN) LatentDim() int { return g.Arch.Latent }

// Image is 28×28×1.
func (g *GAN) Image() (h, w, c int) { return 28, 28, 1 }

// Params lists the generator's parameters (the discriminator is not part of the model).
func (g *GAN) Params() []*nn.Param {
	var ps []*nn.Param
	for _, l := range g.Generator().Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Release frees the parameters.
func (g *GAN) Release() {
	if g.FC != nil {
		g.FC.Release()
	}
	for _, m := range []*nn.ConvTranspose2D{g.Up1, g.Up2} {
		if m != nil {
			m.Release()
		}
	}
}

// Generator is f(z): z [B, Latent] → images [B, 784] in (0, 1).
func (g *GAN) Generator() *nn.Sequential {
	return &nn.Sequential{Layers: []*nn.Named{
		{Name: "gen.fc", Layer: g.FC},
		{Name: "gen.fc.relu", Layer: nn.Act{Fn: kernels.ReLU}},
		{Name: "gen.up1", Layer: g.Up1},
		{Name: "gen.up1.relu", Layer: nn.Act{Fn: kernels.ReLU}},
		{Name: "gen.up2", Layer: g.Up2},
		{Name: "gen.sigmoid", Layer: nn.Act{Fn: kernels.Sigmoid}},
	}}
}

var _ Prior = (*GAN)(nil)

// ganDisc is the discriminator: parameters disc.conv1, disc.conv2, disc.fc.
type ganDisc struct {
	Conv1, Conv2 *nn.Conv2D
	FC           *nn.Linear
}

func newGANDisc(d *gpu.Device, a GANArch, seed uint64) (*ganDisc, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0xd15c))
	D := &ganDisc{}
	var err error
	c := a.DiscChannels
	if D.Conv1, err = nn.NewConv2D(d, "disc.conv1", ganUp(28, 1, c/2, false), rng); err != nil {
		return nil, err
	}
	if D.Conv2, err = nn.NewConv2D(d, "disc.conv2", ganUp(14, c/2, c, false), rng); err != nil {
		D.Release()
		return nil, err
	}
	if D.FC, err = nn.NewLinear(d, "disc.fc", 7*7*c, 1, rng, false); err != nil {
		D.Release()
		return nil, err
	}
	return D, nil
}

func (D *ganDisc) net() *nn.Sequential {
	return &nn.Sequential{Layers: []*nn.Named{
		{Name: "disc.conv1", Layer: D.Conv1},
		{Name: "disc.conv1.lrelu", Layer: ganLeaky{}},
		{Name: "disc.conv2", Layer: D.Conv2},
		{Name: "disc.conv2.lrelu", Layer: ganLeaky{}},
		{Name: "disc.fc", Layer: D.FC},
	}}
}

// GANLeakySlope is the negative slope of the discriminator's LeakyReLU, DCGAN's 0.2: the
// gradient reaching the generator through D stays dense (kernels.LeakyReLU's 0.01 is
// nearly a ReLU).
const GANLeakySlope = 0.2

// ganLeaky is LeakyReLU with slope GANLeakySlope, composed from tested elementwise
// kernels with one scratch tensor t:
//
//	forward   t = relu(x);            y = s·x + (1 − s)·t
//	backward  t = relu'(x)·dy;        dx = s·dy + (1 − s)·t
type ganLeaky struct{}

func (ganLeaky) Params() []*nn.Param { return nil }

func (ganLeaky) OutWidth(in int) (int, error) { return in, nil }

func (ganLeaky) Build(l *kernels.Library, io nn.LayerIO) (*nn.Pass, error) {
	const s = GANLeakySlope
	p := &nn.Pass{}
	tmp, err := kernels.NewTensor(l.Device(), "leaky relu scratch", io.X.Shape...)
	if err != nil {
		return nil, err
	}
	p.Own(tmp)
	fwd := func(op *kernels.Op, err error) error {
		if err == nil {
			p.Forward = append(p.Forward, op)
		}
		return err
	}
	bwd := func(op *kernels.Op, err error) error {
		if err == nil {
			p.Backward = append(p.Backward, op)
		}
		return err
	}
	fail := func(err error) (*nn.Pass, error) {
		p.Release()
		return nil, err
	}
	if err := fwd(l.Activate(tmp, io.X, kernels.ReLU)); err != nil {
		return fail(err)
	}
	if err := fwd(l.Scale(io.Y, io.X, s)); err != nil {
		return fail(err)
	}
	if err := fwd(l.Axpy(io.Y, tmp, 1-s)); err != nil {
		return fail(err)
	}
	if io.DY == nil || io.DX == nil {
		return p, nil
	}
	if err := bwd(l.ActivateBackward(tmp, io.DY, io.X, kernels.ReLU)); err != nil {
		return fail(err)
	}
	if err := bwd(l.Scale(io.DX, io.DY, s)); err != nil {
		return fail(err)
	}
	if err := bwd(l.Axpy(io.DX, tmp, 1-s)); err != nil {
		return fail(err)
	}
	return p, nil
}

func (D *ganDisc) Params() []*nn.Param { return D.net().Params() }

func (D *ganDisc) Release() {
	for _, m := range []*nn.Conv2D{D.Conv1, D.Conv2} {
		if m != nil {
			m.Release()
		}
	}
	if D.FC != nil {
		D.FC.Release()
	}
}

// ganRealTarget is the discriminator's target for real images: one-sided label
// smoothing (Salimans et al. 2016) keeps D from growing overconfident logits on the
// data, the usual stand-in for batch normalisation's regularising effect.
const ganRealTarget = 0.9

// ganGraph is one training iteration of the non-saturating GAN on a batch x of real
// images, recorded once:
//
//	z ~ N(0, I); x̃ = G(z)
//	D step:  L_D = mean_b BCE(D(x_b), 0.9) + mean_b BCE(D(x̃_b), 0)  → ∇_D (dReal, dFake)
//	G step:  L_G = mean_b BCE(D(x̃_b), 1)  → ∂L_G/∂x̃ through D (dGen: input gradient only,
//	         D's parameter gradients untouched) → ∇_G through G's backward
//
// The G step runs after D's update in the same command buffer, on the same x̃ (G has
// not changed in between), as in the reference DCGAN training loop.
type ganGraph struct {
	gen, dReal, dFake, dGen *nn.Net
	z                       *kernels.Tensor
	tReal, tFake, tGen      *kernels.Tensor
	lossReal, lossFake      *kernels.Tensor
	lossGen                 *kernels.Tensor
	rand                    *kernels.Op
	// dOps: z, G forward, D's loss and parameter gradients; gOps: G's loss and
	// parameter gradients (after dOps, and after D's update when training).
	dOps, gOps []*kernels.Op
	extra      []*kernels.Op
	scratch    []*kernels.Tensor
	seed       uint64
}

func newGANGraph(l *kernels.Library, g *GAN, D *ganDisc, x *kernels.Tensor, seed uint64) (*ganGraph, error) {
	d := l.Device()
	b := x.Rows()
	gr := &ganGraph{seed: seed}
	fail := func(err error) (*ganGraph, error) {
		gr.release()
		return nil, fmt.Errorf("priors: gan graph: %w", err)
	}
	tensor := func(name string, cols int, fill float32) (*kernels.Tensor, error) {
		t, err := kernels.NewTensor(d, "gan "+name, b, cols)
		if err != nil {
			return nil, err
		}
		gr.scratch = append(gr.scratch, t)
		if fill >= 0 {
			err = t.Fill(fill)
		}
		return t, err
	}
	var err error
	if gr.z, err = tensor("z", g.Arch.Latent, -1); err != nil {
		return fail(err)
	}
	for _, t := range []struct {
		dst  **kernels.Tensor
		name string
		v    float32
	}{
		{&gr.tReal, "real target", ganRealTarget}, {&gr.tFake, "fake target", 0}, {&gr.tGen, "generator target", 1},
		{&gr.lossReal, "D loss real", -1}, {&gr.lossFake, "D loss fake", -1}, {&gr.lossGen, "G loss", -1},
	} {
		if *t.dst, err = tensor(t.name, 1, t.v); err != nil {
			return fail(err)
		}
	}
	train := nn.NetOptions{Backward: true, ParamGrads: true}
	if gr.gen, err = g.Generator().Build(l, gr.z, train); err != nil {
		return fail(err)
	}
	if gr.dReal, err = D.net().Build(l, x, train); err != nil {
		return fail(err)
	}
	if gr.dFake, err = D.net().Build(l, gr.gen.Y, train); err != nil {
		return fail(err)
	}
	if gr.dGen, err = D.net().Build(l, gr.gen.Y, nn.NetOptions{Backward: true, InputGrad: true}); err != nil {
		return fail(err)
	}
	own := func(op *kernels.Op, err error) (*kernels.Op, error) {
		if err == nil {
			gr.extra = append(gr.extra, op)
		}
		return op, err
	}
	scale := float32(1 / float64(b))
	if gr.rand, err = own(l.RandNormal(gr.z, seed, 0)); err != nil {
		return fail(err)
	}
	bceReal, err := own(l.BernoulliLogitsNLL(gr.lossReal, gr.dReal.DY, gr.dReal.Y, gr.tReal, scale))
	if err != nil {
		return fail(err)
	}
	bceFake, err := own(l.BernoulliLogitsNLL(gr.lossFake, gr.dFake.DY, gr.dFake.Y, gr.tFake, scale))
	if err != nil {
		return fail(err)
	}
	bceGen, err := own(l.BernoulliLogitsNLL(gr.lossGen, gr.dGen.DY, gr.dGen.Y, gr.tGen, scale))
	if err != nil {
		return fail(err)
	}
	// ∂L_G/∂x̃ from D's input gradient into G's output gradient.
	handOver, err := own(l.Scale(gr.gen.DY, gr.dGen.DX, 1))
	if err != nil {
		return fail(err)
	}
	gr.dOps = append(gr.dOps, gr.rand)
	gr.dOps = append(gr.dOps, gr.gen.Forward...)
	gr.dOps = append(gr.dOps, gr.dReal.Forward...)
	gr.dOps = append(gr.dOps, bceReal)
	gr.dOps = append(gr.dOps, gr.dReal.Backward...)
	gr.dOps = append(gr.dOps, gr.dFake.Forward...)
	gr.dOps = append(gr.dOps, bceFake)
	gr.dOps = append(gr.dOps, gr.dFake.Backward...)
	gr.gOps = append(gr.gOps, gr.dGen.Forward...)
	gr.gOps = append(gr.gOps, bceGen)
	gr.gOps = append(gr.gOps, gr.dGen.Backward...)
	gr.gOps = append(gr.gOps, handOver)
	gr.gOps = append(gr.gOps, gr.gen.Backward...)
	return gr, nil
}

// setStep draws fresh latents for step (a pure function of seed and step).
func (gr *ganGraph) setStep(d *gpu.Device, step int) error {
	return gr.rand.SetParams(d, kernels.RandParams(gr.z.Len(), gr.seed, uint32(step), 0))
}

// ganStats are batch means of the last iteration: the losses and D's probabilities.
type ganStats struct {
	LossD, LossG float64 // L_D = real + fake terms; L_G non-saturating
	DReal, DFake float64 // mean sigmoid(D(x)), sigmoid(D(G(z))) in the D step
	DFakeAfter   float64 // mean sigmoid(D(G(z))) after D's update (G step)
}

func (gr *ganGraph) stats() (ganStats, error) {
	var s ganStats
	mean := func(t *kernels.Tensor, f func(float64) float64) (float64, error) {
		v, err := t.Read()
		if err != nil {
			return 0, err
		}
		sum := 0.0
		for i, x := range v {
			if !finite32(x) {
				return 0, fmt.Errorf("%s row %d is %v", t.Label(), i, x)
			}
			sum += f(float64(x))
		}
		return sum / float64(len(v)), nil
	}
	id := func(x float64) float64 { return x }
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	var lr, lf float64
	var err error
	for _, q := range []struct {
		dst *float64
		t   *kernels.Tensor
		f   func(float64) float64
	}{
		{&lr, gr.lossReal, id}, {&lf, gr.lossFake, id}, {&s.LossG, gr.lossGen, id},
		{&s.DReal, gr.dReal.Y, sig}, {&s.DFake, gr.dFake.Y, sig}, {&s.DFakeAfter, gr.dGen.Y, sig},
	} {
		if *q.dst, err = mean(q.t, q.f); err != nil {
			return s, err
		}
	}
	s.LossD = lr + lf
	return s, nil
}

func (gr *ganGraph) release() {
	for _, n := range []*nn.Net{gr.gen, gr.dReal, gr.dFake, gr.dGen} {
		if n != nil {
			n.Release()
		}
	}
	for _, op := range gr.extra {
		op.Release()
	}
	for _, t := range gr.scratch {
		t.Release()
	}
	gr.gen, gr.dReal, gr.dFake, gr.dGen = nil, nil, nil, nil
	gr.extra, gr.scratch, gr.dOps, gr.gOps = nil, nil, nil, nil
}

// GANAdamConfig is DCGAN's Adam: β1 = 0.5 (less momentum keeps the two players from
// overshooting each other), β2 = 0.999; the learning rate comes from the TrainSpec.
func GANAdamConfig(lr float64) kernels.AdamConfig {
	return kernels.AdamConfig{LR: lr, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
}

// GANEMADecay is the largest decay of the exponential moving average of the generator's
// weights that TrainGAN ships; step t uses min(GANEMADecay, (1 + t)/(10 + t)), so the
// average forgets the random initialisation quickly in short runs.
const GANEMADecay = 0.999

// ganEMADecay is the decay of step t (≥ 1).
func ganEMADecay(t int) float64 { return min(GANEMADecay, float64(1+t)/float64(10+t)) }

// ganTrainer holds what a training run needs besides the model: the generator that the
// optimizer updates (train), the discriminator, the graph, both optimizers, and the ops
// that fold train's weights into the model's moving average after every step
//
//	tmp = β·θ_model;  tmp += (1 − β)·θ_train;  θ_model = tmp
//
// The model g therefore always holds the averaged weights (checkpoints and evaluations
// see them): averaging the generator over the last few hundred steps smooths out the
// oscillation of the two-player game, and gives visibly cleaner samples than the last
// iterate (Yazıcı et al. 2019).
type ganTrainer struct {
	g, train       *GAN
	D              *ganDisc
	graph          *ganGraph
	dOpt, gOpt     *nn.Optimizer
	dParams, gPars []*nn.Param
	emaScale       []*kernels.Op // tmp = β·θ_model, one per parameter
	emaAxpy        []*kernels.Op // tmp += (1 − β)·θ_train
	emaOps         []*kernels.Op // the three ops of every parameter, in order (owned)
	emaTmp         []*kernels.Tensor
}

func newGANTrainer(l *kernels.Library, g *GAN, x *kernels.Tensor, lr float64, seed uint64) (*ganTrainer, error) {
	d := l.Device()
	t := &ganTrainer{g: g}
	fail := func(err error) (*ganTrainer, error) {
		t.release()
		return nil, err
	}
	var err error
	if t.train, err = NewGAN(d, g.Arch, seed); err != nil {
		return nil, err
	}
	snap, err := nn.Snapshot(g.Params())
	if err != nil {
		return fail(err)
	}
	if err := nn.Restore(t.train.Params(), snap); err != nil {
		return fail(err)
	}
	if t.D, err = newGANDisc(d, g.Arch, seed); err != nil {
		return fail(err)
	}
	if t.graph, err = newGANGraph(l, t.train, t.D, x, seed); err != nil {
		return fail(err)
	}
	t.dParams, t.gPars = t.D.Params(), t.train.Params()
	if t.dOpt, err = nn.NewOptimizer(l, t.dParams, GANAdamConfig(lr)); err != nil {
		return fail(err)
	}
	if t.gOpt, err = nn.NewOptimizer(l, t.gPars, GANAdamConfig(lr)); err != nil {
		return fail(err)
	}
	for i, p := range g.Params() {
		q := t.gPars[i]
		tmp, err := kernels.NewTensor(d, p.Name+".ema", p.Value.Shape...)
		if err != nil {
			return fail(err)
		}
		t.emaTmp = append(t.emaTmp, tmp)
		sc, err := l.Scale(tmp, p.Value, 1)
		if err != nil {
			return fail(err)
		}
		t.emaScale = append(t.emaScale, sc)
		t.emaOps = append(t.emaOps, sc)
		ax, err := l.Axpy(tmp, q.Value, 0)
		if err != nil {
			return fail(err)
		}
		t.emaAxpy = append(t.emaAxpy, ax)
		t.emaOps = append(t.emaOps, ax)
		cp, err := l.Scale(p.Value, tmp, 1)
		if err != nil {
			return fail(err)
		}
		t.emaOps = append(t.emaOps, cp)
	}
	return t, nil
}

// step records and submits one iteration (D update, G update, moving average) as one
// command buffer; x must hold the real batch.
func (t *ganTrainer) step(l *kernels.Library, step int, lr float64) error {
	d := l.Device()
	if err := t.graph.setStep(d, step); err != nil {
		return err
	}
	if err := t.dOpt.SetStep(step, lr); err != nil {
		return err
	}
	if err := t.gOpt.SetStep(step, lr); err != nil {
		return err
	}
	beta := float32(ganEMADecay(step))
	for i, p := range t.gPars {
		if err := t.emaScale[i].SetParams(d, kernels.ScaleParams(p.Len(), beta)); err != nil {
			return err
		}
		if err := t.emaAxpy[i].SetParams(d, kernels.ScaleParams(p.Len(), 1-beta)); err != nil {
			return err
		}
	}
	r, err := l.NewRecorder("gan step")
	if err != nil {
		return err
	}
	nn.ZeroGrads(r, t.dParams)
	nn.ZeroGrads(r, t.gPars)
	r.Record(t.graph.dOps...)
	r.Record(t.dOpt.Ops()...)
	r.Record(t.graph.gOps...)
	r.Record(t.gOpt.Ops()...)
	r.Record(t.emaOps...)
	if err := r.Submit(); err != nil {
		return fmt.Errorf("priors: gan step %d: %w", step, err)
	}
	return nil
}

func (t *ganTrainer) release() {
	if t.graph != nil {
		t.graph.release()
	}
	for _, o := range []*nn.Optimizer{t.dOpt, t.gOpt} {
		if o != nil {
			o.Release()
		}
	}
	for _, op := range t.emaOps {
		op.Release()
	}
	for _, x := range t.emaTmp {
		x.Release()
	}
	if t.D != nil {
		t.D.Release()
	}
	if t.train != nil {
		t.train.Release()
	}
	t.graph, t.dOpt, t.gOpt, t.D, t.train = nil, nil, nil, nil, nil
	t.emaOps, t.emaScale, t.emaAxpy, t.emaTmp = nil, nil, nil, nil
}

// ganDefaultEpochs is what `osds prior train --kind gan` runs by default: with batch 32
// (see TrainGAN) about 12 minutes on two shared CPU cores under lavapipe.
const ganDefaultEpochs = 3

// TrainGAN fits g to the images of s.Train (labels unused) with the non-saturating GAN
// loss: every step one Adam update of the discriminator on a real and a fake batch, then
// one of the generator through the updated discriminator, both with GANAdamConfig(s.LR).
// Stabilisers in place of batch normalisation: Adam β1 = 0.5, one-sided label smoothing
// (real target 0.9), LeakyReLU with slope 0.2 in D. g ends up holding an exponential
// moving average of the trained generator's weights (see GANEMADecay).
//
// Batch size and learning rate come from s. On a small compute budget a GAN is limited
// by its number of updates, not by their noise: on MNIST with lr 1e-3 (two shared CPU
// cores), batch 32 reached a classifier-feature Fréchet distance of 117 in 8 minutes
// (2 epochs), batch 64 129 in 14 minutes (3 epochs), batch 128 139 in 20 minutes (4
// epochs); batch 32 with lr 1e-3 is the recommended setting (`osds prior train --kind gan
// --batch 32`). Losses are read back every 100 steps and logged; a NaN or Inf stops
// training with the step named. The discriminator lives only for the run.
func TrainGAN(l *kernels.Library, g *GAN, s TrainSpec) error {
	if err := s.check("gan"); err != nil {
		return err
	}
	return trainGAN(l, g, s, s.Train.N/s.Batch)
}

// trainGAN is TrainGAN with perEpoch steps per epoch (tests use fewer).
func trainGAN(l *kernels.Library, g *GAN, s TrainSpec, perEpoch int) error {
	ds := s.Train
	d := l.Device()
	bs, err := NewBatches(d, ds, s.Batch, true, s.Seed)
	if err != nil {
		return err
	}
	defer bs.Release()
	t, err := newGANTrainer(l, g, bs.X, s.LR, s.Seed)
	if err != nil {
		return err
	}
	defer t.release()
	const logEvery = 100
	step := 0
	for epoch := 1; epoch <= s.Epochs; epoch++ {
		var sum ganStats
		seen := 0
		for i := 0; i < perEpoch; i++ {
			step++
			if err := bs.Next(); err != nil {
				return err
			}
			if err := t.step(l, step, s.LR); err != nil {
				return err
			}
			if step%logEvery == 0 || i == perEpoch-1 {
				st, err := t.graph.stats()
				if err != nil {
					return fmt.Errorf("priors: gan step %d: %v; stopping", step, err)
				}
				sum.LossD += st.LossD
				sum.LossG += st.LossG
				sum.DReal += st.DReal
				sum.DFake += st.DFake
				seen++
				n := float64(seen)
				s.logf("epoch %d step %d: loss D %.3f, G %.3f; D(x) %.2f, D(G(z)) %.2f (epoch means of %d readings)", epoch, step, sum.LossD/n, sum.LossG/n, sum.DReal/n, sum.DFake/n, seen)
			}
		}
		if s.EpochDone != nil {
			if err := s.EpochDone(epoch); err != nil {
				return err
			}
		}
	}
	return nil
}

// GANEvalSamples is the number of generator samples EvalGAN draws.
const GANEvalSamples = 10000

// EvalGAN measures a generator without a classifier, on GANEvalSamples samples drawn
// with a fixed seed:
//
//	pixel_fd_7x7  Fréchet distance between the samples and the test images, both
//	              average-pooled 4×4 to 7×7 (49 features); 10,000 training images
//	              score 0.008 on MNIST (0.002 on Fashion-MNIST), a collapsed or
//	              blurry generator far more
//	mean_pixel    mean intensity of the samples (test images: MNIST 0.133, Fashion 0.287)
//	sample_std    per-pixel standard deviation across samples, averaged over pixels
//	              (diversity; test images: MNIST 0.192, Fashion 0.274; collapse → 0)
//	frechet_10k   Fréchet distance in the features of the shipped <dataset>-classifier
//	              (FrechetFeatureLayer), as for the other priors; only where it ships
func EvalGAN(l *kernels.Library, g *GAN, test *Dataset) (map[string]float64, error) {
	if test.Height*test.Wd != 784 {
		return nil, fmt.Errorf("priors: gan evaluation on %s with %d×%d images (want 28×28)", test.Name, test.Height, test.Wd)
	}
	xs, err := sampleBatched(l, g, GANEvalSamples, 500, 0x5eed)
	if err != nil {
		return nil, err
	}
	n := GANEvalSamples
	fs, err := FeatureMoments(pool7x7(xs, n), n, 49)
	if err != nil {
		return nil, err
	}
	ft, err := FeatureMoments(pool7x7(test.Images, test.N), test.N, 49)
	if err != nil {
		return nil, err
	}
	fd, err := FrechetDistance(fs, ft)
	if err != nil {
		return nil, err
	}
	mean, std := pixelStats(xs, n, 784)
	m := map[string]float64{"pixel_fd_7x7": fd, "mean_pixel": mean, "sample_std": std}
	// frechet_10k in the shipped classifier's features, as for the other priors (left
	// out where no classifier for the dataset ships), on the same samples.
	man, err := ShippedManifest()
	if err != nil {
		return nil, err
	}
	if _, err := man.Find(test.Name + "-classifier"); err == nil {
		if m["frechet_10k"], err = FrechetToTest(l, xs, n, test); err != nil {
			return nil, err
		}
	}
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("priors: gan %s on %s is %v", k, test.Name, v)
		}
	}
	return m, nil
}

// sampleBatched draws n samples of p in batches of batch (z from Philox stream k for
// batch k) and returns them as NHWC rows.
func sampleBatched(l *kernels.Library, p Prior, n, batch int, seed uint64) ([]float32, error) {
	batch = min(batch, n)
	z, err := kernels.NewTensor(l.Device(), "prior z", batch, p.LatentDim())
	if err != nil {
		return nil, err
	}
	defer z.Release()
	rnd, err := l.RandNormal(z, seed, 0)
	if err != nil {
		return nil, err
	}
	defer rnd.Release()
	net, err := p.Generator().Build(l, z, nn.NetOptions{})
	if err != nil {
		return nil, err
	}
	defer net.Release()
	var out []float32
	for k := 0; len(out) < n*net.Y.Cols(); k++ {
		if err := rnd.SetParams(l.Device(), kernels.RandParams(z.Len(), seed, uint32(k), 0)); err != nil {
			return nil, err
		}
		if err := l.Run(append([]*kernels.Op{rnd}, net.Forward...)...); err != nil {
			return nil, err
		}
		y, err := net.Y.Read()
		if err != nil {
			return nil, err
		}
		out = append(out, y...)
	}
	return out[:n*net.Y.Cols()], nil
}

// pool7x7 average-pools n 28×28 images 4×4 to 7×7.
func pool7x7(xs []float32, n int) []float32 {
	out := make([]float32, n*49)
	for k := 0; k < n; k++ {
		img := xs[k*784 : (k+1)*784]
		for i := 0; i < 7; i++ {
			for j := 0; j < 7; j++ {
				s := float32(0)
				for a := 0; a < 4; a++ {
					for b := 0; b < 4; b++ {
						s += img[(4*i+a)*28+4*j+b]
					}
				}
				out[k*49+i*7+j] = s / 16
			}
		}
	}
	return out
}

// pixelStats returns the mean pixel and the mean over pixels of the standard deviation
// across the n images.
func pixelStats(xs []float32, n, dim int) (mean, std float64) {
	sum := make([]float64, dim)
	sq := make([]float64, dim)
	for k := 0; k < n; k++ {
		for j := 0; j < dim; j++ {
			v := float64(xs[k*dim+j])
			sum[j] += v
			sq[j] += v * v
		}
	}
	for j := 0; j < dim; j++ {
		m := sum[j] / float64(n)
		mean += m
		std += math.Sqrt(math.Max(sq[j]/float64(n)-m*m, 0))
	}
	return mean / float64(dim), std / float64(dim)
}

func init() {
	Register("gan", KindSpec{
		Build: func(d *gpu.Device, arch []byte, seed uint64) (Model, error) {
			a := DefaultGANArch
			if err := strictJSON(arch, &a); err != nil {
				return nil, err
			}
			return NewGAN(d, a, seed)
		},
		Train: func(l *kernels.Library, m Model, s TrainSpec) error { return TrainGAN(l, m.(*GAN), s) },
		Eval: func(l *kernels.Library, m Model, test *Dataset) (map[string]float64, error) {
			return EvalGAN(l, m.(*GAN), test)
		},
		DefaultEpochs: ganDefaultEpochs,
	})
}
