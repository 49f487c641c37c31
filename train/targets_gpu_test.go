package train

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"osds/gpu"
	"osds/kernels"
)

func testLibrary(t testing.TB) *kernels.Library {
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

// TestLogRewardKernelsMatchReference compares the WGSL targets with the float64 ones on
// fresh random points of an awkward batch size, outputs poisoned first.
func TestLogRewardKernelsMatchReference(t *testing.T) {
	l := testLibrary(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, tg := range []Target{GMM25{}, Funnel{}, Manywell{}} {
		const batch = 1037
		d := tg.Dim()
		xs := make([]float32, batch*d)
		for i := range xs {
			xs[i] = float32(rng.NormFloat64() * 3)
		}
		if tg.Name() == "funnel" {
			for b := 0; b < batch; b++ {
				xs[b*d] = float32(rng.NormFloat64() * 1.5)
			}
		}
		x, _ := kernels.FromSlice(l.Device(), "x", xs, batch, d)
		logr, _ := kernels.NewTensor(l.Device(), "logr", batch)
		grad, _ := kernels.NewTensor(l.Device(), "grad", batch, d)
		logr.Poison()
		grad.Poison()
		op, err := l.LogReward(logr, grad, x, kernels.TargetKind(tg.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(op); err != nil {
			t.Fatal(err)
		}
		gotR, err := logr.Read()
		if err != nil {
			t.Fatal(err)
		}
		gotG, _ := grad.Read()
		for b := 0; b < batch; b++ {
			row := make([]float64, d)
			for j := range row {
				row[j] = float64(xs[b*d+j])
			}
			want := tg.LogR(row)
			// f32 evaluation of sums of terms up to |a|⁴: relative to the largest term.
			scale := 1.0
			for _, v := range row {
				scale = math.Max(scale, v*v*v*v)
			}
			if tg.Name() == "funnel" {
				scale = math.Max(scale, math.Exp(-row[0])*100)
			}
			if !(math.Abs(float64(gotR[b])-want) <= 1e-5*scale) {
				t.Fatalf("%s sample %d: log R %v, want %v", tg.Name(), b, gotR[b], want)
			}
			g := make([]float64, d)
			tg.GradLogR(row, g)
			for j := range g {
				if !(math.Abs(float64(gotG[b*d+j])-g[j]) <= 1e-4*math.Max(1, math.Abs(g[j]))*math.Max(1, scale/100)) {
					t.Fatalf("%s sample %d: ∂/∂x%d %v, want %v", tg.Name(), b, j, gotG[b*d+j], g[j])
				}
			}
		}
		op.Release()
		x.Release()
		logr.Release()
		grad.Release()
	}
}

func TestLogRewardShapeErrors(t *testing.T) {
	l := testLibrary(t)
	x, _ := kernels.NewTensor(l.Device(), "x", 5, 3)
	defer x.Release()
	logr, _ := kernels.NewTensor(l.Device(), "logr", 5)
	defer logr.Release()
	if _, err := l.LogReward(logr, nil, x, kernels.TargetGMM25); err == nil {
		t.Fatal("gmm25 with d = 3 accepted")
	}
	if _, err := l.LogReward(logr, nil, x, "lgcp"); err == nil {
		t.Fatal("unknown target accepted")
	}
	x2, _ := kernels.NewTensor(l.Device(), "x2", 6, 2)
	defer x2.Release()
	if _, err := l.LogReward(logr, nil, x2, kernels.TargetGMM25); err == nil {
		t.Fatal("batch mismatch accepted")
	}
	x3, _ := kernels.NewTensor(l.Device(), "x3", 5, 2)
	defer x3.Release()
	op, err := l.LogReward(logr, nil, x3, kernels.TargetGMM25)
	if err != nil {
		t.Fatalf("log R without gradient: %v", err)
	}
	op.Release()
}
