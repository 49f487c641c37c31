package priors

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

func testLib(t testing.TB) *kernels.Library {
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

// centralDiff is (f(x + h·e_i) − f(x − h·e_i)) / 2h, the central difference of f in
// coordinate i of x, where f reads x; x[i] is restored afterwards.
func centralDiff(x []float64, i int, h float64, f func() float64) float64 {
	v := x[i]
	x[i] = v + h
	up := f()
	x[i] = v - h
	down := f()
	x[i] = v
	return (up - down) / (2 * h)
}

func to64(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// refClassifierLoss is the float64 mean cross-entropy of the classifier with parameters
// ps (in Params order) on images x and labels y.
func refClassifierLoss(c *Classifier, ps [][]float64, x []float64, y []uint32, batch int) float64 {
	a := c.Arch
	relu := func(v []float64) []float64 {
		for i := range v {
			v[i] = math.Max(v[i], 0)
		}
		return v
	}
	g1, g2 := c.Conv1.Geom, c.Conv2.Geom
	g1.Batch, g2.Batch = batch, batch
	h1 := relu(kernels.RefConv2D(x, ps[0], ps[1], g1))
	h2 := relu(kernels.RefConv2D(h1, ps[2], ps[3], g2))
	lin := func(in []float64, w, b []float64, nin, nout int) []float64 {
		out := make([]float64, batch*nout)
		for r := 0; r < batch; r++ {
			for j := 0; j < nout; j++ {
				s := b[j]
				for i := 0; i < nin; i++ {
					s += in[r*nin+i] * w[i*nout+j]
				}
				out[r*nout+j] = s
			}
		}
		return out
	}
	f := relu(lin(h2, ps[4], ps[5], g2.OutLen(), a.Hidden))
	logits := lin(f, ps[6], ps[7], a.Hidden, a.Classes)
	loss, _ := kernels.RefSoftmaxCrossEntropy(logits, y, a.Classes, 1)
	sum := 0.0
	for _, v := range loss {
		sum += v
	}
	return sum / float64(batch)
}

// TestClassifierGradientsMatchFiniteDifferences builds a tiny classifier, runs the
// training graph's forward and backward on the GPU and compares random coordinates of
// every parameter gradient with central differences of the float64 network.
func TestClassifierGradientsMatchFiniteDifferences(t *testing.T) {
	l := testLib(t)
	d := l.Device()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	arch := ClassifierArch{Side: 9, C1: 3, C2: 4, Hidden: 6, Classes: 5}
	c, err := NewClassifier(d, arch, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	const batch = 7
	xs := make([]float32, batch*arch.Side*arch.Side)
	for i := range xs {
		xs[i] = rng.Float32()
	}
	labels := make([]uint32, batch)
	for i := range labels {
		labels[i] = uint32(rng.IntN(arch.Classes))
	}
	x, err := kernels.FromSlice(d, "x", xs, batch, arch.Side*arch.Side)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	y, err := kernels.IndexFromSlice(d, "y", labels, arch.Classes)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Release()
	net, err := c.Logits().Build(l, x, nn.NetOptions{Backward: true, ParamGrads: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Release()
	loss, err := kernels.NewTensor(d, "loss", batch)
	if err != nil {
		t.Fatal(err)
	}
	defer loss.Release()
	xent, err := l.SoftmaxCrossEntropy(loss, net.DY, net.Y, y, 1.0/batch)
	if err != nil {
		t.Fatal(err)
	}
	defer xent.Release()
	r, err := l.NewRecorder("grad check")
	if err != nil {
		t.Fatal(err)
	}
	params := c.Params()
	nn.ZeroGrads(r, params)
	r.Record(net.Forward...)
	r.Record(xent)
	r.Record(net.Backward...)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	ps := make([][]float64, len(params))
	for i, p := range params {
		v, err := p.Value.Read()
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = to64(v)
	}
	x64 := to64(xs)
	for i, p := range params {
		grad, err := p.Grad.Read()
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 6; k++ {
			j := rng.IntN(len(ps[i]))
			fd := centralDiff(ps[i], j, 1e-5, func() float64 { return refClassifierLoss(c, ps, x64, labels, batch) })
			if math.Abs(float64(grad[j])-fd) > 2e-3*math.Max(1e-2, math.Abs(fd)) {
				t.Errorf("%s[%d]: GPU gradient %.6g, finite differences %.6g", p.Name, j, grad[j], fd)
			}
		}
	}
}
