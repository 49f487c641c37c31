package kernels

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"osds/gpu"
)

// testLib opens the default adapter and a kernel library. No adapter is a failure with
// the message that says how to get one, never a skip.
func testLib(t testing.TB) *Library {
	t.Helper()
	d, err := gpu.NewDevice()
	if err != nil {
		t.Fatalf("no WebGPU device (run `make setup`; on machines without a GPU it installs Mesa lavapipe): %v", err)
	}
	l := NewLibrary(d)
	t.Cleanup(func() {
		l.Release()
		d.Release()
	})
	return l
}

// testRNG returns a generator seeded from the clock (fresh inputs every run) and logs the
// seed so a failure can be replayed with OSDS_TEST_SEED.
func testRNG(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OSDS_TEST_SEED"); s != "" {
		var v uint64
		for _, c := range s {
			v = v*10 + uint64(c-'0')
		}
		seed = v
	}
	t.Logf("seed %d (set OSDS_TEST_SEED to replay)", seed)
	return rand.New(rand.NewPCG(seed, 0x05d5))
}

// randn returns n normal values scaled by s (never all zeros).
func randn(rng *rand.Rand, n int, s float64) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64() * s)
	}
	return xs
}

// to64 widens float32 values for the references.
func to64(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// mustTensor uploads xs into a new tensor, released at the end of the test.
func mustTensor(t testing.TB, l *Library, label string, xs []float32, shape ...int) *Tensor {
	t.Helper()
	x, err := FromSlice(l.Device(), label, xs, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Release)
	return x
}

// poisoned allocates a tensor filled with NaN, released at the end of the test.
func poisoned(t testing.TB, l *Library, label string, shape ...int) *Tensor {
	t.Helper()
	x, err := NewTensor(l.Device(), label, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Release)
	if err := x.Poison(); err != nil {
		t.Fatal(err)
	}
	return x
}

// assertClose checks got against the float64 reference want: each element must satisfy
// |got - want| <= tol * max(1, |want|) — relative error, with an absolute floor near 0
// where relative error is meaningless. NaN anywhere fails.
func assertClose(t testing.TB, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, -1
	for i := range got {
		g := float64(got[i])
		err := math.Abs(g-want[i]) / math.Max(1, math.Abs(want[i]))
		if math.IsNaN(g) || math.IsInf(g, 0) && !math.IsInf(want[i], 0) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, g, want[i])
		}
		if err > worst {
			worst, at = err, i
		}
	}
	if worst > tol {
		t.Fatalf("%s: element %d: got %v, want %v (relative error %.3g > %.3g)", what, at, got[at], want[at], worst, tol)
	}
}

// readT reads a tensor back, failing the test on error.
func readT(t testing.TB, x *Tensor) []float32 {
	t.Helper()
	v, err := x.Read()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
