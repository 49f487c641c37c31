package priors

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"osds/kernels"
	"osds/nn"
)

// vaeRef is a float64 copy of a VAE's parameters with −ELBO written directly from the
// architecture's definition.
type vaeRef struct {
	a VAEArch
	p map[string][]float64
}

// decode is the decoder's logits for rows latents.
func (r *vaeRef) decode(z []float64, rows int) []float64 {
	a := r.a
	if c := a.DecoderChannels; c > 0 {
		h := refAct(kernels.ReLU, refLinear(z, r.p["dec.fc1.weight"], r.p["dec.fc1.bias"], rows, a.Latent, 49*c))
		g1 := ganUp(7, c, c/2, true)
		g1.Batch = rows
		h = refAct(kernels.ReLU, kernels.RefConvTranspose2D(h, r.p["dec.up1.weight"], r.p["dec.up1.bias"], g1))
		g2 := ganUp(14, c/2, 1, true)
		g2.Batch = rows
		return kernels.RefConvTranspose2D(h, r.p["dec.up2.weight"], r.p["dec.up2.bias"], g2)
	}
	h := refAct(kernels.ReLU, refLinear(z, r.p["dec.fc1.weight"], r.p["dec.fc1.bias"], rows, a.Latent, a.Hidden))
	return refLinear(h, r.p["dec.fc2.weight"], r.p["dec.fc2.bias"], rows, a.Hidden, a.Pixels)
}

// loss is the batch mean of BCE(x | sigmoid(decode(μ + σε))) + KL(N(μ, σ²) ‖ N(0, I)).
func (r *vaeRef) loss(x, eps []float64, rows int) float64 {
	a := r.a
	h := refAct(kernels.ReLU, refLinear(x, r.p["enc.fc1.weight"], r.p["enc.fc1.bias"], rows, a.Pixels, a.Hidden))
	mu := refLinear(h, r.p["enc.mu.weight"], r.p["enc.mu.bias"], rows, a.Hidden, a.Latent)
	lv := refLinear(h, r.p["enc.logvar.weight"], r.p["enc.logvar.bias"], rows, a.Hidden, a.Latent)
	z := make([]float64, len(mu))
	kl := 0.0
	for i := range mu {
		z[i] = mu[i] + math.Exp(lv[i]/2)*eps[i]
		kl += 0.5 * (mu[i]*mu[i] + math.Exp(lv[i]) - 1 - lv[i])
	}
	bce := 0.0
	for i, s := range r.decode(z, rows) {
		bce += math.Max(s, 0) - x[i]*s + math.Log1p(math.Exp(-math.Abs(s)))
	}
	return (bce + kl) / float64(rows)
}

// TestVAEStepGradients records one training step of each decoder (MLP and convolutional)
// on random images without the optimizer, and compares the loss with the float64
// reference and every parameter's accumulated gradient with central differences of it.
func TestVAEStepGradients(t *testing.T) {
	for _, a := range []VAEArch{
		{Pixels: 29, Hidden: 7, Latent: 3},
		{Pixels: 784, Hidden: 6, Latent: 3, DecoderChannels: 4},
	} {
		t.Run("DecoderChannels="+strconv.Itoa(a.DecoderChannels), func(t *testing.T) {
			l := ganTestLib(t)
			rng := ganTestRNG(t)
			v, err := NewVAE(l.Device(), a, rng.Uint64())
			if err != nil {
				t.Fatal(err)
			}
			defer v.Release()
			const b = 3
			xs := make([]float32, b*a.Pixels)
			for i := range xs {
				xs[i] = float32(rng.Float64())
			}
			x := ganTensor(t, l, "images", xs, b, a.Pixels)
			g, err := newVAEGraph(l, v, x, true, rng.Uint64())
			if err != nil {
				t.Fatal(err)
			}
			defer g.release()
			if err := g.setStep(l.Device(), 5); err != nil {
				t.Fatal(err)
			}
			r, err := l.NewRecorder("vae test step")
			if err != nil {
				t.Fatal(err)
			}
			ps := v.Params()
			nn.ZeroGrads(r, ps)
			r.Record(g.ops...)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			rec, kl, err := g.losses()
			if err != nil {
				t.Fatal(err)
			}
			got := 0.0
			for i := range rec {
				got += float64(rec[i]) + float64(kl[i])
			}
			got /= b
			ref := &vaeRef{a: a, p: map[string][]float64{}}
			for _, p := range ps {
				ref.p[p.Name] = ganRead64(t, p.Value)
			}
			eps := ganRead64(t, g.eps)
			x64 := make([]float64, len(xs))
			for i, v := range xs {
				x64[i] = float64(v)
			}
			loss := func() float64 { return ref.loss(x64, eps, b) }
			if want := loss(); math.Abs(got-want) > 1e-4*math.Max(1, math.Abs(want)) {
				t.Fatalf("−ELBO %v on the GPU, %v in float64", got, want)
			}
			layers := 3 + 2 // encoder, MLP decoder
			if a.DecoderChannels > 0 {
				layers = 3 + 3 // dec.fc1, dec.up1, dec.up2
			}
			if len(ref.p) != len(ps) || len(ps) != 2*layers {
				t.Fatalf("%d parameters (%d names), want %d", len(ps), len(ref.p), 2*layers)
			}
			checkParamGrads(t, rng, ps, ref.p, loss, "L", 4)
		})
	}
}

// TestConvVAEArchitecture checks the convolutional decoder's sizes, its rejection of
// images other than 28×28, and that its model file round-trips.
func TestConvVAEArchitecture(t *testing.T) {
	l := ganTestLib(t)
	if _, err := NewVAE(l.Device(), VAEArch{Pixels: 36, Hidden: 5, Latent: 2, DecoderChannels: 4}, 1); err == nil || !strings.Contains(err.Error(), "Pixels 784") {
		t.Fatalf("a 6×6 VAE with a convolutional decoder: err = %v, want one naming Pixels 784", err)
	}
	if _, err := NewVAE(l.Device(), VAEArch{Pixels: 784, Hidden: 5, Latent: 2, DecoderChannels: 3}, 1); err == nil || !strings.Contains(err.Error(), "even") {
		t.Fatalf("odd DecoderChannels: err = %v, want one asking for an even number", err)
	}
	a := VAEArch{Pixels: 784, Hidden: 5, Latent: 2, DecoderChannels: 6}
	v, err := NewVAE(l.Device(), a, 9)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	if h, w, c := v.Image(); h != 28 || w != 28 || c != 1 {
		t.Fatalf("Image() = %d×%d×%d, want 28×28×1", h, w, c)
	}
	path := t.TempDir() + "/cvae.safetensors"
	if err := SaveModel(path, v, nil); err != nil {
		t.Fatal(err)
	}
	m, _, err := LoadModel(l.Device(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	if got := m.(*VAE).Arch; got != a {
		t.Fatalf("loaded architecture %+v, want %+v", got, a)
	}
	want, err := Sample(l, v, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Sample(l, m.(Prior), 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample value %d: %v after loading, %v before", i, got[i], want[i])
		}
	}
}

// TestSampleChunksMatchOnePass draws more samples than one generator pass takes and
// compares them with a single pass over the same latents: chunking must not change them,
// including the short last chunk.
func TestSampleChunksMatchOnePass(t *testing.T) {
	l := ganTestLib(t)
	rng := ganTestRNG(t)
	v, err := NewVAE(l.Device(), VAEArch{Pixels: 30, Hidden: 9, Latent: 3}, rng.Uint64())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	n, seed := 2*sampleChunk+rng.IntN(sampleChunk-1)+1, rng.Uint64()
	got, err := Sample(l, v, n, seed)
	if err != nil {
		t.Fatal(err)
	}
	z, err := kernels.NewTensor(l.Device(), "z", n, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Release()
	rnd, err := l.RandNormal(z, seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rnd.Release()
	net, err := v.Generator().Build(l, z, nn.NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	if err := l.Run(append([]*kernels.Op{rnd}, net.Forward...)...); err != nil {
		t.Fatal(err)
	}
	want, err := net.Y.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d values from Sample(%d), want %d", len(got), n, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("n = %d: value %d (row %d) is %v chunked, %v in one pass", n, i, i/30, got[i], want[i])
		}
	}
}

// TestVAEReconstruct compares Reconstruct (more rows than one chunk, for both decoders)
// with dec(μ(x)) in float64.
func TestVAEReconstruct(t *testing.T) {
	l := ganTestLib(t)
	rng := ganTestRNG(t)
	for _, a := range []VAEArch{{Pixels: 784, Hidden: 5, Latent: 3}, {Pixels: 784, Hidden: 5, Latent: 3, DecoderChannels: 4}} {
		v, err := NewVAE(l.Device(), a, rng.Uint64())
		if err != nil {
			t.Fatal(err)
		}
		defer v.Release()
		n := sampleChunk + 1 + rng.IntN(40)
		xs := make([]float32, n*784)
		for i := range xs {
			xs[i] = float32(rng.Float64())
		}
		got, err := v.Reconstruct(l, xs, n)
		if err != nil {
			t.Fatal(err)
		}
		ref := &vaeRef{a: a, p: map[string][]float64{}}
		for _, p := range v.Params() {
			ref.p[p.Name] = ganRead64(t, p.Value)
		}
		for _, row := range []int{0, sampleChunk - 1, sampleChunk, n - 1} {
			x := make([]float64, 784)
			for i := range x {
				x[i] = float64(xs[row*784+i])
			}
			h := refAct(kernels.ReLU, refLinear(x, ref.p["enc.fc1.weight"], ref.p["enc.fc1.bias"], 1, 784, a.Hidden))
			mu := refLinear(h, ref.p["enc.mu.weight"], ref.p["enc.mu.bias"], 1, a.Hidden, a.Latent)
			for i, s := range ref.decode(mu, 1) {
				want := 1 / (1 + math.Exp(-s))
				if g := float64(got[row*784+i]); math.Abs(g-want) > 1e-5 {
					t.Fatalf("%+v, row %d of %d, pixel %d: %v on the GPU, %v in float64", a, row, n, i, g, want)
				}
			}
		}
	}
	if _, err := (&VAE{Arch: VAEArch{Pixels: 784}}).Reconstruct(l, make([]float32, 10), 1); err == nil {
		t.Fatal("Reconstruct accepted 10 values for one 784-pixel image")
	}
}
