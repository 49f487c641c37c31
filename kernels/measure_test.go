package kernels

import "testing"

// TestCeilingCopy checks the shader copy behind the bandwidth ceiling: an awkward number of
// vec4s copied exactly over a poisoned destination, and nothing past them.
func TestCeilingCopy(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	const vecs = 1237
	xs := randn(rng, 4*(vecs+3), 1)
	src := mustTensor(t, l, "src", xs, vecs+3, 4)
	dst := poisoned(t, l, "dst", vecs+3, 4)
	op, err := l.copyVec4(dst.Buf, src.Buf, vecs)
	ewRun(t, l, op, err)
	got := readT(t, dst)
	for i, x := range got {
		if i < 4*vecs && x != xs[i] {
			t.Fatalf("dst[%d] = %v, want src[%d] = %v", i, x, i, xs[i])
		}
		if i >= 4*vecs && x == x {
			t.Fatalf("dst[%d] = %v past the %d copied vec4s, want the poison (NaN) kept", i, x, vecs)
		}
	}
}

// TestCeilingsRun checks that the ceiling measurements produce finite positive rates
// (their values are benchmarks, not assertions).
func TestCeilingsRun(t *testing.T) {
	l := testLib(t)
	g, err := MeasureFMACeiling(l, 4096, 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	c, err := MeasureCopyCeiling(l, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !(g > 0) || !(c > 0) {
		t.Fatalf("ceilings %v GFLOP/s, %v GB/s", g, c)
	}
	t.Logf("FMA ceiling %.1f GFLOP/s, copy %.1f GB/s", g, c)
}

func BenchmarkFMACeiling(b *testing.B) {
	l := testLib(b)
	for i := 0; i < b.N; i++ {
		g, err := MeasureFMACeiling(l, 1<<16, 256, 4)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(g, "GFLOP/s")
	}
}

func BenchmarkCopyCeiling(b *testing.B) {
	l := testLib(b)
	for i := 0; i < b.N; i++ {
		g, err := MeasureCopyCeiling(l, 64<<20, 4)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(g, "GB/s")
	}
}
