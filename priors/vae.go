package priors

import (
	"fmt"
	"math"
	"math/rand/v2"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// VAEArch is the MLP variational autoencoder of the diffusion-sampler literature:
//
//	encoder  x [784] → ReLU(x·W₁+b₁) [400] → μ, log σ² [20] (two linear heads)
//	decoder  z [20]  → ReLU(z·W₃+b₃) [400] → logits [784] → p = sigmoid(logits)
//
// with a Bernoulli likelihood on grayscale pixels in [0, 1] (not binarised). The prior
// f(z) is the decoder's mean image p.
//
// DecoderChannels C > 0 swaps the MLP decoder for the convolutional one of the GAN's
// generator (28×28 images only; the encoder stays the MLP above):
//
//	decoder  z → ReLU(Linear) 7×7×C → ReLU(ConvTranspose2D 4×4 s2 p1) 14×14×C/2
//	           → ConvTranspose2D 4×4 s2 p1 → logits 28×28×1 → sigmoid
//
// It was added to test whether the blur of an MLP decoder's mean images is what makes
// even an exact posterior under the VAE 10–20% less diverse (mean pairwise distance)
// than real digits of the class; RESULTS.md found it is not the decoder's architecture:
// the convolutional one renders real digits, and samples posteriors, as diversely.
type VAEArch struct {
	Pixels, Hidden, Latent int
	// DecoderChannels is C of the convolutional decoder; 0 selects the MLP decoder.
	DecoderChannels int `json:",omitempty"`
}

// DefaultVAEArch is 784-400-20 with the MLP decoder.
var DefaultVAEArch = VAEArch{Pixels: 784, Hidden: 400, Latent: 20}

// check names what is wrong with the sizes.
func (a VAEArch) check() error {
	if a.Pixels < 1 || a.Hidden < 1 || a.Latent < 1 || a.DecoderChannels < 0 {
		return fmt.Errorf("priors: vae sizes %+v must be positive", a)
	}
	if a.DecoderChannels > 0 && (a.Pixels != 784 || a.DecoderChannels%2 != 0) {
		return fmt.Errorf("priors: vae with a convolutional decoder (DecoderChannels %d) needs Pixels 784 (28×28) and an even DecoderChannels ≥ 2; got Pixels %d", a.DecoderChannels, a.Pixels)
	}
	return nil
}

// VAE holds the encoder's three linear layers and the decoder's layers. Parameter names,
// with PyTorch's nn.Linear weight transposed to [in, out]: enc.fc1 (fc1), enc.mu (fc21),
// enc.logvar (fc22), dec.fc1 (fc3), dec.fc2 (fc4), each with ".weight" and ".bias". The
// convolutional decoder has dec.fc1 (Linear [Latent, 49·C], NHWC output), dec.up1 and
// dec.up2 (ConvTranspose2D in package nn's layout) instead of dec.fc1 and dec.fc2.
type VAE struct {
	Arch                   VAEArch
	EncFC1, EncMu, EncLogV *nn.Linear
	DecFC1, DecFC2         *nn.Linear          // DecFC2 is nil with the convolutional decoder
	DecUp1, DecUp2         *nn.ConvTranspose2D // nil with the MLP decoder
}

// NewVAE creates a VAE initialised like PyTorch's nn.Linear.
func NewVAE(d *gpu.Device, a VAEArch, seed uint64) (*VAE, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x7ae))
	v := &VAE{Arch: a}
	specs := []struct {
		dst     **nn.Linear
		name    string
		in, out int
	}{
		{&v.EncFC1, "enc.fc1", a.Pixels, a.Hidden},
		{&v.EncMu, "enc.mu", a.Hidden, a.Latent},
		{&v.EncLogV, "enc.logvar", a.Hidden, a.Latent},
		{&v.DecFC1, "dec.fc1", a.Latent, a.Hidden},
		{&v.DecFC2, "dec.fc2", a.Hidden, a.Pixels},
	}
	c := a.DecoderChannels
	if c > 0 {
		specs[3].out = 7 * 7 * c
		specs = specs[:4]
	}
	for _, s := range specs {
		m, err := nn.NewLinear(d, s.name, s.in, s.out, rng, false)
		if err != nil {
			v.Release()
			return nil, err
		}
		*s.dst = m
	}
	if c > 0 {
		var err error
		if v.DecUp1, err = nn.NewConvTranspose2D(d, "dec.up1", ganUp(7, c, c/2, true), rng); err != nil {
			v.Release()
			return nil, err
		}
		if v.DecUp2, err = nn.NewConvTranspose2D(d, "dec.up2", ganUp(14, c/2, 1, true), rng); err != nil {
			v.Release()
			return nil, err
		}
	}
	return v, nil
}

// Params lists every parameter (encoder first).
func (v *VAE) Params() []*nn.Param {
	ps := append(append(v.EncFC1.Params(), v.EncMu.Params()...), v.EncLogV.Params()...)
	for _, l := range v.decoderLogits().Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Release frees the parameters.
func (v *VAE) Release() {
	for _, m := range []*nn.Linear{v.EncFC1, v.EncMu, v.EncLogV, v.DecFC1, v.DecFC2} {
		if m != nil {
			m.Release()
		}
	}
	for _, m := range []*nn.ConvTranspose2D{v.DecUp1, v.DecUp2} {
		if m != nil {
			m.Release()
		}
	}
}

// encoderHidden is x → ReLU(x·W₁+b₁), the layer the heads μ and log σ² read.
func (v *VAE) encoderHidden() *nn.Sequential {
	return &nn.Sequential{Layers: []*nn.Named{
		{Name: "enc.fc1", Layer: v.EncFC1},
		{Name: "enc.relu", Layer: nn.Act{Fn: kernels.ReLU}},
	}}
}

// decoderLogits is z → logits; Decoder adds the sigmoid.
func (v *VAE) decoderLogits() *nn.Sequential {
	if v.Arch.DecoderChannels > 0 {
		return &nn.Sequential{Layers: []*nn.Named{
			{Name: "dec.fc1", Layer: v.DecFC1},
			{Name: "dec.fc1.relu", Layer: nn.Act{Fn: kernels.ReLU}},
			{Name: "dec.up1", Layer: v.DecUp1},
			{Name: "dec.up1.relu", Layer: nn.Act{Fn: kernels.ReLU}},
			{Name: "dec.up2", Layer: v.DecUp2},
		}}
	}
	return &nn.Sequential{Layers: []*nn.Named{
		{Name: "dec.fc1", Layer: v.DecFC1},
		{Name: "dec.relu", Layer: nn.Act{Fn: kernels.ReLU}},
		{Name: "dec.fc2", Layer: v.DecFC2},
	}}
}

// Decoder is the prior f(z) = sigmoid(logits(z)), pixel means in (0, 1).
func (v *VAE) Decoder() *nn.Sequential {
	s := v.decoderLogits()
	s.Layers = append(s.Layers, &nn.Named{Name: "dec.sigmoid", Layer: nn.Act{Fn: kernels.Sigmoid}})
	return s
}

// vaeGraph is one batch of the negative ELBO, −ELBO(x) = BCE(x | dec(z)) + KL(q(z|x) ‖ N(0, I))
// with z = μ + σ·ε, and (for training) its gradient with respect to every parameter.
type vaeGraph struct {
	enc, dec         *nn.Net
	mu, logv, eps, z *kernels.Tensor
	dmu, dlogv       *kernels.Tensor
	rec, kl          *kernels.Tensor
	ones             *kernels.Tensor
	rand             *kernels.Op
	ops              []*kernels.Op
	scratch          []*kernels.Tensor
	encoder, decoder *nn.Sequential
	batch            int
	seed             uint64
}

// newVAEGraph records the loss of x (the batch images) and, with train, the backward pass
// that accumulates parameter gradients of the batch-mean loss.
func newVAEGraph(l *kernels.Library, v *VAE, x *kernels.Tensor, train bool, seed uint64) (*vaeGraph, error) {
	d := l.Device()
	b := x.Rows()
	g := &vaeGraph{batch: b, seed: seed}
	fail := func(err error) (*vaeGraph, error) {
		g.release()
		return nil, fmt.Errorf("priors: vae graph: %w", err)
	}
	tensor := func(name string, cols int) *kernels.Tensor {
		t, err := kernels.NewTensor(d, "vae "+name, b, cols)
		if err != nil {
			return nil
		}
		g.scratch = append(g.scratch, t)
		return t
	}
	z := v.Arch.Latent
	g.mu, g.logv, g.eps, g.z = tensor("mu", z), tensor("logvar", z), tensor("eps", z), tensor("z", z)
	g.dmu, g.dlogv = tensor("dmu", z), tensor("dlogvar", z)
	g.rec, g.kl = tensor("reconstruction", 1), tensor("kl", 1)
	for _, t := range []*kernels.Tensor{g.mu, g.logv, g.eps, g.z, g.dmu, g.dlogv, g.rec, g.kl} {
		if t == nil {
			return fail(fmt.Errorf("allocating the batch tensors for %d rows", b))
		}
	}
	var err error
	g.encoder = v.encoderHidden()
	g.decoder = v.decoderLogits()
	opt := nn.NetOptions{Backward: true, InputGrad: true, ParamGrads: train}
	if g.enc, err = g.encoder.Build(l, x, nn.NetOptions{Backward: train, ParamGrads: train}); err != nil {
		return fail(err)
	}
	if g.dec, err = g.decoder.Build(l, g.z, opt); err != nil {
		return fail(err)
	}
	add := func(op *kernels.Op, err error) error {
		if err == nil {
			g.ops = append(g.ops, op)
		}
		return err
	}
	scale := float32(1 / float64(b))
	// Forward: h = enc(x); μ, log σ² = heads(h); ε ~ N(0, I); z = μ + σε; logits = dec(z).
	g.ops = append(g.ops, g.enc.Forward...)
	if err := add(v.EncMu.Forward(l, g.mu, g.enc.Y, kernels.Identity)); err != nil {
		return fail(err)
	}
	if err := add(v.EncLogV.Forward(l, g.logv, g.enc.Y, kernels.Identity)); err != nil {
		return fail(err)
	}
	if g.rand, err = l.RandNormal(g.eps, seed, 0); err != nil {
		return fail(err)
	}
	g.ops = append(g.ops, g.rand)
	if err := add(l.Reparameterize(g.z, g.mu, g.logv, g.eps)); err != nil {
		return fail(err)
	}
	g.ops = append(g.ops, g.dec.Forward...)
	// Losses per row; the gradients are those of the batch mean.
	if err := add(l.BernoulliLogitsNLL(g.rec, g.dec.DY, g.dec.Y, x, scale)); err != nil {
		return fail(err)
	}
	if train {
		g.ops = append(g.ops, g.dec.Backward...)
	}
	if err := add(l.GaussianKL(g.kl, g.dmu, g.dlogv, g.mu, g.logv, g.dec.DX, g.eps, scale)); err != nil {
		return fail(err)
	}
	if !train {
		return g, nil
	}
	// Heads backward: their parameter gradients, then dh = dμ·W_μᵀ + dlogσ²·W_lvᵀ into
	// the encoder's output gradient.
	ones, err := nn.Ones(d, b)
	if err != nil {
		return fail(err)
	}
	g.scratch = append(g.scratch, ones)
	for _, h := range []struct {
		m  *nn.Linear
		dy *kernels.Tensor
	}{{v.EncMu, g.dmu}, {v.EncLogV, g.dlogv}} {
		ops, err := h.m.Backward(l, nil, h.dy, g.enc.Y, ones)
		if err != nil {
			return fail(err)
		}
		g.ops = append(g.ops, ops...)
	}
	if err := add(l.Matmul(g.enc.DY, g.dmu, v.EncMu.W.Value, kernels.MatmulOptions{TransB: true})); err != nil {
		return fail(err)
	}
	if err := add(l.Matmul(g.enc.DY, g.dlogv, v.EncLogV.W.Value, kernels.MatmulOptions{TransB: true, Accumulate: true})); err != nil {
		return fail(err)
	}
	g.ops = append(g.ops, g.enc.Backward...)
	return g, nil
}

// setStep picks fresh noise ε for step (a pure function of seed and step).
func (g *vaeGraph) setStep(d *gpu.Device, step int) error {
	return g.rand.SetParams(d, kernels.RandParams(g.eps.Len(), g.seed, uint32(step), 0))
}

// losses reads the per-row reconstruction and KL terms of the last run.
func (g *vaeGraph) losses() (rec, kl []float32, err error) {
	if rec, err = g.rec.Read(); err != nil {
		return nil, nil, err
	}
	kl, err = g.kl.Read()
	return rec, kl, err
}

func (g *vaeGraph) release() {
	// The nets own their ops; g.ops holds them plus the ops built here.
	owned := map[*kernels.Op]bool{}
	for _, n := range []*nn.Net{g.enc, g.dec} {
		if n == nil {
			continue
		}
		for _, op := range append(append([]*kernels.Op(nil), n.Forward...), n.Backward...) {
			owned[op] = true
		}
		n.Release()
	}
	for _, op := range g.ops {
		if !owned[op] {
			op.Release()
		}
	}
	for _, t := range g.scratch {
		t.Release()
	}
	g.ops, g.scratch = nil, nil
}

func init() {
	Register("vae", KindSpec{
		Build: BuildFrom(DefaultVAEArch, NewVAE),
		Train: func(l *kernels.Library, m Model, s TrainSpec) error { return TrainVAE(l, m.(*VAE), s) },
		Eval: func(l *kernels.Library, m Model, test *Dataset) (map[string]float64, error) {
			v := m.(*VAE)
			elbo, err := EvalVAE(l, v, test, 1)
			if err != nil {
				return nil, err
			}
			return withFrechet(l, v, test, map[string]float64{"test_elbo": elbo})
		},
		DefaultEpochs: 50,
	})
}

// EvalVAE returns the mean test ELBO in nats per image, −(BCE + KL), with one
// reparameterised sample per image (an unbiased estimate of the ELBO; seed fixes it).
func EvalVAE(l *kernels.Library, v *VAE, ds *Dataset, seed uint64) (float64, error) {
	batch := evalBatch(ds.N)
	bs, err := NewBatches(l.Device(), ds, batch, false, 0)
	if err != nil {
		return 0, err
	}
	defer bs.Release()
	g, err := newVAEGraph(l, v, bs.X, false, seed)
	if err != nil {
		return 0, err
	}
	defer g.release()
	total := 0.0
	for i := 0; i < ds.N/batch; i++ {
		if err := bs.Next(); err != nil {
			return 0, err
		}
		if err := g.setStep(l.Device(), i); err != nil {
			return 0, err
		}
		if err := l.Run(g.ops...); err != nil {
			return 0, err
		}
		rec, kl, err := g.losses()
		if err != nil {
			return 0, err
		}
		for j := range rec {
			total += float64(rec[j]) + float64(kl[j])
		}
	}
	elbo := -total / float64(ds.N)
	if math.IsNaN(elbo) || math.IsInf(elbo, 0) {
		return 0, fmt.Errorf("priors: vae ELBO on %s is %v", ds.Name, elbo)
	}
	return elbo, nil
}

// evalBatch is the largest batch ≤ 1000 that divides n.
func evalBatch(n int) int {
	for b := min(n, 1000); b > 1; b-- {
		if n%b == 0 {
			return b
		}
	}
	return 1
}

// TrainVAE fits v to the images of s.Train (labels unused) by minimising the batch-mean
// negative ELBO with Adam (the literature's lr 1e-3, batch 128). Losses are read back
// every 100 steps and logged; a NaN or Inf loss stops training with the step named.
func TrainVAE(l *kernels.Library, v *VAE, s TrainSpec) error {
	if err := s.check("vae"); err != nil {
		return err
	}
	cfg, ds := s, s.Train
	d := l.Device()
	bs, err := NewBatches(d, ds, cfg.Batch, true, cfg.Seed)
	if err != nil {
		return err
	}
	defer bs.Release()
	g, err := newVAEGraph(l, v, bs.X, true, cfg.Seed)
	if err != nil {
		return err
	}
	defer g.release()
	params := v.Params()
	opt, err := nn.NewOptimizer(l, params, kernels.DefaultAdamConfig())
	if err != nil {
		return err
	}
	defer opt.Release()
	perEpoch := ds.N / cfg.Batch
	const logEvery = 100
	step := 0
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		sumRec, sumKL, seen := 0.0, 0.0, 0
		for i := 0; i < perEpoch; i++ {
			step++
			if err := bs.Next(); err != nil {
				return err
			}
			if err := g.setStep(d, step); err != nil {
				return err
			}
			if err := opt.SetStep(step, cfg.LR); err != nil {
				return err
			}
			r, err := l.NewRecorder("vae step")
			if err != nil {
				return err
			}
			nn.ZeroGrads(r, params)
			r.Record(g.ops...)
			r.Record(opt.Ops()...)
			if err := r.Submit(); err != nil {
				return fmt.Errorf("priors: vae step %d: %w", step, err)
			}
			if step%logEvery == 0 || i == perEpoch-1 {
				rec, kl, err := g.losses()
				if err != nil {
					return err
				}
				for j := range rec {
					if !finite32(rec[j]) || !finite32(kl[j]) {
						return fmt.Errorf("priors: vae step %d: loss is not finite (reconstruction %v, KL %v, row %d); stopping", step, rec[j], kl[j], j)
					}
					sumRec += float64(rec[j])
					sumKL += float64(kl[j])
				}
				seen += len(rec)
				{
					s.logf("epoch %d step %d: −ELBO %.2f (BCE %.2f, KL %.2f) per image", epoch, step, (sumRec+sumKL)/float64(seen), sumRec/float64(seen), sumKL/float64(seen))
				}
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

func finite32(x float32) bool {
	f := float64(x)
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}

// Reconstruct returns dec(μ(x)), the decoder's mean images of the encoder's means, for n
// images xs (rows of Pixels): how the VAE renders real images, without the noise of
// z ~ q(z|x). It is the reference for what a sampler of this prior can hope to score
// against real images (a VAE's mean images are blurred, so their pairwise distances are
// smaller).
func (v *VAE) Reconstruct(l *kernels.Library, xs []float32, n int) ([]float32, error) {
	if n < 1 || len(xs) != n*v.Arch.Pixels {
		return nil, fmt.Errorf("priors: vae reconstruct: %d values for %d images of %d pixels", len(xs), n, v.Arch.Pixels)
	}
	net := v.encoderHidden()
	net.Layers = append(net.Layers, &nn.Named{Name: "enc.mu", Layer: v.EncMu})
	net.Layers = append(net.Layers, v.Decoder().Layers...)
	return ForwardRows(l, net, xs, n)
}
