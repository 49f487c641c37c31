package main

import (
	"math"
	"math/rand/v2"
	"testing"

	"osds/gpu"
	"osds/kernels"
	"osds/posterior"
	"osds/priors"
	"osds/viewer"
)

// The live view of a posterior sampler decodes the batch on the GPU: the images it
// binds are f(z) of the bound z, as posterior.Decode computes them, and they follow z
// when it changes; the grid is square, or one class per column for an amortised sampler.
func TestSamplesViewDecodesTheBatch(t *testing.T) {
	display := xvfb(t)
	t.Setenv("DISPLAY", display)
	d, err := gpu.NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`): %v", err)
	}
	defer d.Release()
	l := kernels.NewLibrary(d)
	defer l.Release()
	vae, err := priors.NewVAE(d, priors.VAEArch{Pixels: 784, Hidden: 16, Latent: 4}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer vae.Release()
	const B = 13
	z, err := kernels.NewTensor(d, "batch", B, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Release()
	w, err := viewer.Open(d, d.Adapter(), "decode test", 200, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	v := newSamplesView(l, &posterior.Setup{Prior: vae}, "posterior", 0)
	defer v.release()
	if err := v.bind(z); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 2; round++ {
		zs := make([][]float64, B)
		flat := make([]float32, 0, 4*B)
		for i := range zs {
			zs[i] = make([]float64, 4)
			for j := range zs[i] {
				zs[i][j] = 2 * rng.NormFloat64()
				flat = append(flat, float32(zs[i][j]))
			}
		}
		if err := z.Write(flat); err != nil {
			t.Fatal(err)
		}
		if err := v.update(); err != nil {
			t.Fatal(err)
		}
		if err := v.show(w, B, false, 1); err != nil {
			t.Fatal(err)
		}
		if err := w.Draw(); err != nil {
			t.Fatal(err)
		}
		got, err := v.dec.Images().Read()
		if err != nil {
			t.Fatal(err)
		}
		want, err := posterior.Decode(l, vae, zs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-5 {
				t.Fatalf("round %d: pixel %d of the view is %v, f(z) is %v", round, i, got[i], want[i])
			}
		}
		if g := w.Grid(); g.N != B || g.H != 28 || g.W != 28 || g.Cols != 4 || g.Rows != 4 || g.Density {
			t.Fatalf("grid of %d images: %+v, want 13 of 28×28 in 4×4", B, g)
		}
	}
	// One class per column for an amortised sampler of 10 conditions.
	v.cols = 10
	if err := v.show(w, B, false, 1); err != nil {
		t.Fatal(err)
	}
	if g := w.Grid(); g.Cols != 10 || g.Rows != 2 {
		t.Fatalf("amortised grid %+v, want 10 columns and 2 rows", g)
	}
}
