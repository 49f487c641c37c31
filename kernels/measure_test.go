package kernels

import "testing"

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
