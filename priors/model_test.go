package priors

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osds/kernels"
	"osds/nn"
)

// TestModelFileRoundTripAndRejections saves a small VAE, loads it back (same samples), and
// checks that files with the wrong kind, architecture, extra or missing tensors, or a
// mismatched shape fail with errors that say what was wrong.
func TestModelFileRoundTripAndRejections(t *testing.T) {
	l := testLib(t)
	d := l.Device()
	dir := t.TempDir()
	arch := VAEArch{Pixels: 36, Hidden: 11, Latent: 3}
	v, err := NewVAE(d, arch, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	path := filepath.Join(dir, "vae.safetensors")
	if err := SaveModel(path, v, map[string]string{MetaDataset: "mnist"}); err != nil {
		t.Fatal(err)
	}
	m, md, err := LoadModel(d, path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	if md[MetaDataset] != "mnist" || m.Kind() != "vae" {
		t.Fatalf("loaded kind %q, metadata %v", m.Kind(), md)
	}
	want, err := Sample(l, v, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Sample(l, m.(Prior), 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %d differs after the round trip: %v vs %v", i, got[i], want[i])
		}
	}
	ts, _, err := nn.ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, ts []nn.NamedTensor, md map[string]string) string {
		p := filepath.Join(dir, name)
		if err := nn.WriteSafetensors(p, ts, md); err != nil {
			t.Fatal(err)
		}
		return p
	}
	archJSON := `{"Pixels":36,"Hidden":11,"Latent":3}`
	extra := append(append([]nn.NamedTensor(nil), ts...), nn.NamedTensor{Name: "stray", Shape: []int{1}, Data: []float32{1}})
	var wrongShape, missing []nn.NamedTensor
	for _, x := range ts {
		if x.Name != "dec.fc2.bias" {
			missing = append(missing, x)
		}
		if x.Name == "dec.fc1.bias" {
			x = nn.NamedTensor{Name: x.Name, Shape: []int{10}, Data: x.Data[:10]}
		}
		wrongShape = append(wrongShape, x)
	}
	cases := []struct {
		name, want string
		ts         []nn.NamedTensor
		md         map[string]string
	}{
		{"nokind", `osds.kind: unknown model kind ""`, ts, map[string]string{MetaArch: archJSON}},
		{"badkind", `unknown model kind "unet"`, ts, map[string]string{MetaKind: "unet", MetaArch: archJSON}},
		{"badarch", `unknown field "Width"`, ts, map[string]string{MetaKind: "vae", MetaArch: `{"Width":3}`}},
		{"extra", `tensor "stray" is not a parameter`, extra, map[string]string{MetaKind: "vae", MetaArch: archJSON}},
		{"missing", `lacks parameter "dec.fc2.bias"`, missing, map[string]string{MetaKind: "vae", MetaArch: archJSON}},
		{"shape", `"dec.fc1.bias" has shape [10] in the checkpoint, [11] in the model`, wrongShape, map[string]string{MetaKind: "vae", MetaArch: archJSON}},
	}
	for _, c := range cases {
		p := write(c.name+".safetensors", c.ts, c.md)
		m, _, err := LoadModel(d, p)
		if err == nil {
			m.Release()
			t.Errorf("%s: loaded; want an error containing %q", c.name, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q; want it to name the file and contain %q", c.name, err, c.want)
		}
	}
	// A truncated file is rejected by the safetensors reader, named.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "truncated.safetensors")
	if err := os.WriteFile(trunc, raw[:len(raw)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadModel(d, trunc); err == nil || !strings.Contains(err.Error(), trunc) {
		t.Errorf("truncated file: error %v, want one naming %s", err, trunc)
	}
}

// TestVAEGeneratorVJPMatchesFiniteDifferences checks the prior's vector–Jacobian product
// dz = (∂f/∂z)ᵀ·c against central differences of a float64 decoder, and that it leaves the
// parameter gradients alone.
func TestVAEGeneratorVJPMatchesFiniteDifferences(t *testing.T) {
	l := testLib(t)
	d := l.Device()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	arch := VAEArch{Pixels: 25, Hidden: 13, Latent: 4}
	v, err := NewVAE(d, arch, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	const batch = 3
	zs := make([]float32, batch*arch.Latent)
	for i := range zs {
		zs[i] = float32(rng.NormFloat64())
	}
	cs := make([]float32, batch*arch.Pixels)
	for i := range cs {
		cs[i] = float32(rng.NormFloat64())
	}
	z, err := kernels.FromSlice(d, "z", zs, batch, arch.Latent)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Release()
	net, err := v.Generator().Build(l, z, nn.NetOptions{Backward: true, InputGrad: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	if err := net.DY.Write(cs); err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Params() {
		if err := p.Grad.Fill(0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Run(append(append([]*kernels.Op(nil), net.Forward...), net.Backward...)...); err != nil {
		t.Fatal(err)
	}
	dz, err := net.DX.Read()
	if err != nil {
		t.Fatal(err)
	}
	read := func(p *nn.Param) []float64 {
		x, err := p.Value.Read()
		if err != nil {
			t.Fatal(err)
		}
		return to64(x)
	}
	w1, b1, w2, b2 := read(v.DecFC1.W), read(v.DecFC1.B), read(v.DecFC2.W), read(v.DecFC2.B)
	// objective(z) = Σ c ⊙ sigmoid(ReLU(z·W₁+b₁)·W₂+b₂) for one row.
	objective := func(row int, zr []float64) float64 {
		h := make([]float64, arch.Hidden)
		for j := range h {
			s := b1[j]
			for i, zi := range zr {
				s += zi * w1[i*arch.Hidden+j]
			}
			h[j] = math.Max(s, 0)
		}
		sum := 0.0
		for k := 0; k < arch.Pixels; k++ {
			s := b2[k]
			for j, hj := range h {
				s += hj * w2[j*arch.Pixels+k]
			}
			sum += float64(cs[row*arch.Pixels+k]) / (1 + math.Exp(-s))
		}
		return sum
	}
	for row := 0; row < batch; row++ {
		zr := to64(zs[row*arch.Latent : (row+1)*arch.Latent])
		for i := range zr {
			fd := centralDiff(zr, i, 1e-6, func() float64 { return objective(row, zr) })
			got := float64(dz[row*arch.Latent+i])
			if math.Abs(got-fd) > 1e-3*math.Max(1, math.Abs(fd)) {
				t.Errorf("dz[%d,%d] = %.6g, finite differences %.6g", row, i, got, fd)
			}
		}
	}
	for _, p := range v.Params() {
		g, err := p.Grad.Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range g {
			if x != 0 {
				t.Fatalf("the VJP touched the gradient of %s", p.Name)
			}
		}
	}
}
