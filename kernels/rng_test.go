package kernels

import (
	"math"
	"sort"
	"strings"
	"testing"
)

// Random123's published known answers for Philox-4x32-10 (its tests/kat_vectors).
func TestPhiloxKnownAnswers(t *testing.T) {
	cases := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, c := range cases {
		if got := Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

// The transforms' edge values: no 0, no 1, finite normals at the extremes.
func TestPhiloxTransformRange(t *testing.T) {
	if u := PhiloxUniform(0); u != 1.0/(1<<24) {
		t.Errorf("PhiloxUniform(0) = %v, want 2^-24", u)
	}
	if u := PhiloxUniform(math.MaxUint32); u != 1-1.0/(1<<24) {
		t.Errorf("PhiloxUniform(max) = %v, want 1 - 2^-24", u)
	}
	for _, r := range [][4]uint32{{0, 0, 0, 0}, {math.MaxUint32, math.MaxUint32, math.MaxUint32, math.MaxUint32}} {
		for _, z := range PhiloxNormal4(r) {
			if math.IsNaN(z) || math.Abs(z) > 5.8 {
				t.Errorf("PhiloxNormal4(%08x) has %v", r, z)
			}
		}
	}
}

// rngRunOp fails on err, else runs op and releases it.
func rngRunOp(t *testing.T, l *Library, op *Op, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer op.Release()
	if err := l.Run(op); err != nil {
		t.Fatal(err)
	}
}

// GPU uniforms equal the Go reference bit for bit, normals to 1e-5, indices exactly, on
// awkward lengths (partial last block, many workgroups, a folded 2-D grid).
func TestRandMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, n := range []int{1, 3, 7, 13, 4099, 1000003} {
		seed, stream := rng.Uint64(), rng.Uint32()
		x := poisoned(t, l, "rand", n)
		op, err := l.RandUniform(x, seed, stream)
		rngRunOp(t, l, op, err)
		got := readT(t, x)
		want := RefRandUniform(n, seed, stream, 0)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("uniform n=%d seed=%d stream=%d: element %d is %v (%08x), want %v (%08x)", n, seed, stream, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
		if err := x.Poison(); err != nil {
			t.Fatal(err)
		}
		op, err = l.RandNormal(x, seed, stream)
		rngRunOp(t, l, op, err)
		assertClose(t, "normal", readT(t, x), RefRandNormal(n, seed, stream, 0), 1e-5)

		limit := 1 + rng.IntN(1<<31)
		ix, err := NewIndexTensor(l.Device(), "idx", n, limit)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ix.Release)
		op, err = l.RandIndex(ix, limit, seed, stream)
		rngRunOp(t, l, op, err)
		gi, err := ix.Read()
		if err != nil {
			t.Fatal(err)
		}
		wi := RefRandIndex(n, limit, seed, stream, 0)
		for i := range gi {
			if gi[i] != wi[i] {
				t.Fatalf("index n=%d limit=%d: element %d is %d, want %d", n, limit, i, gi[i], wi[i])
			}
		}
	}
}

// Rewriting the parameters moves the counter offset: new numbers, still the reference's.
func TestRandOffsetViaSetParams(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	const n = 1031
	seed, stream := rng.Uint64(), rng.Uint32()
	x := poisoned(t, l, "rand", n)
	op, err := l.RandNormal(x, seed, stream)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Release()
	for _, off := range []uint32{0, 1, 0xfffffffe} {
		if err := op.SetParams(l.Device(), RandParams(n, seed, stream, off)); err != nil {
			t.Fatal(err)
		}
		if err := l.Run(op); err != nil {
			t.Fatal(err)
		}
		assertClose(t, "normal at offset", readT(t, x), RefRandNormal(n, seed, stream, off), 1e-5)
	}
}

func TestRandErrors(t *testing.T) {
	l := testLib(t)
	ix, err := NewIndexTensor(l.Device(), "idx", 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Release()
	cases := []struct {
		what string
		err  func() error
		want string
	}{
		{"nil out", func() error { _, err := l.RandUniform(nil, 1, 2); return err }, "rand_uniform: nil output"},
		{"limit above bound", func() error { _, err := l.RandIndex(ix, 11, 1, 2); return err }, "limit 11 exceeds index tensor \"idx\"'s bound 10"},
		{"limit 0", func() error { _, err := l.RandIndex(ix, 0, 1, 2); return err }, "limit 0"},
	}
	for _, c := range cases {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.what, err, c.want)
		}
	}
}

// Statistical checks use fixed seeds so they cannot flake; bounds are 5 standard errors
// of each estimator, the Kolmogorov–Smirnov bound is the critical value at α = 1e-4.
const rngStatN = 1 << 20

// rngKSCritical is the asymptotic two-sided Kolmogorov–Smirnov critical value
// sqrt(−ln(α/2)/2)/sqrt(n).
func rngKSCritical(n int, alpha float64) float64 {
	return math.Sqrt(-math.Log(alpha/2)/2) / math.Sqrt(float64(n))
}

// rngKS is sup |F_n(x) − F(x)| of the sample xs against the CDF cdf.
func rngKS(xs []float32, cdf func(float64) float64) float64 {
	s := make([]float64, len(xs))
	for i, x := range xs {
		s[i] = float64(x)
	}
	sort.Float64s(s)
	n := float64(len(s))
	d := 0.0
	for i, x := range s {
		f := cdf(x)
		d = math.Max(d, math.Max(f-float64(i)/n, float64(i+1)/n-f))
	}
	return d
}

// rngMoments returns the sample mean and the central moments 2 and 4.
func rngMoments(xs []float32) (mean, m2, m4 float64) {
	for _, x := range xs {
		mean += float64(x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		d := float64(x) - mean
		m2 += d * d
		m4 += d * d * d * d
	}
	return mean, m2 / float64(len(xs)), m4 / float64(len(xs))
}

// rngCorrelation is Pearson's r of two equally long samples.
func rngCorrelation(a, b []float32) float64 {
	ma, _, _ := rngMoments(a)
	mb, _, _ := rngMoments(b)
	var sab, saa, sbb float64
	for i := range a {
		x, y := float64(a[i])-ma, float64(b[i])-mb
		sab += x * y
		saa += x * x
		sbb += y * y
	}
	return sab / math.Sqrt(saa*sbb)
}

func rngDraw(t *testing.T, l *Library, normal bool, n int, seed uint64, stream, offset uint32) []float32 {
	t.Helper()
	x := poisoned(t, l, "rand", n)
	var op *Op
	var err error
	if normal {
		op, err = l.RandNormal(x, seed, stream)
	} else {
		op, err = l.RandUniform(x, seed, stream)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer op.Release()
	if offset != 0 {
		if err := op.SetParams(l.Device(), RandParams(n, seed, stream, offset)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Run(op); err != nil {
		t.Fatal(err)
	}
	return readT(t, x)
}

func rngCheckStat(t *testing.T, what string, got, want, bound float64) {
	t.Helper()
	if math.Abs(got-want) > bound {
		t.Errorf("%s = %.6g, want %.6g ± %.3g", what, got, want, bound)
	} else {
		t.Logf("%s = %.6g (want %.6g ± %.3g)", what, got, want, bound)
	}
}

func TestRandUniformStatistics(t *testing.T) {
	l := testLib(t)
	n := float64(rngStatN)
	xs := rngDraw(t, l, false, rngStatN, 0x5eed0001, 7, 0)
	mean, m2, _ := rngMoments(xs)
	// Var(U) = 1/12; the sample variance's variance is (μ4 − σ⁴)/n with μ4 = 1/80.
	rngCheckStat(t, "uniform mean", mean, 0.5, 5*math.Sqrt(1.0/12/n))
	rngCheckStat(t, "uniform variance", m2, 1.0/12, 5*math.Sqrt((1.0/80-1.0/144)/n))
	ks := rngKS(xs, func(x float64) float64 { return math.Min(1, math.Max(0, x)) })
	rngCheckStat(t, "uniform KS distance", ks, 0, rngKSCritical(rngStatN, 1e-4))
	for i, x := range xs {
		if !(x > 0 && x < 1) {
			t.Fatalf("uniform element %d = %v, outside (0, 1)", i, x)
		}
	}
	// Neighbours within a Philox block and across blocks are uncorrelated.
	rngCheckStat(t, "uniform lag-1 correlation", rngCorrelation(xs[1:], xs[:len(xs)-1]), 0, 5/math.Sqrt(n))
	rngCheckStat(t, "uniform lag-4 correlation", rngCorrelation(xs[4:], xs[:len(xs)-4]), 0, 5/math.Sqrt(n))
}

func TestRandNormalStatistics(t *testing.T) {
	l := testLib(t)
	n := float64(rngStatN)
	xs := rngDraw(t, l, true, rngStatN, 0x5eed0002, 3, 0)
	mean, m2, m4 := rngMoments(xs)
	// For N(0, 1): Var(mean) = 1/n, Var(s²) ≈ 2/n, Var(m4) ≈ (E z⁸ − (E z⁴)²)/n = 96/n.
	rngCheckStat(t, "normal mean", mean, 0, 5/math.Sqrt(n))
	rngCheckStat(t, "normal variance", m2, 1, 5*math.Sqrt(2/n))
	rngCheckStat(t, "normal 4th moment", m4, 3, 5*math.Sqrt(96/n))
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	rngCheckStat(t, "normal KS distance", rngKS(xs, phi), 0, rngKSCritical(rngStatN, 1e-4))
	// The two members of a Box–Muller pair are independent, as are the two pairs.
	a, b, c := make([]float32, 0, rngStatN/4), make([]float32, 0, rngStatN/4), make([]float32, 0, rngStatN/4)
	for i := 0; i+3 < len(xs); i += 4 {
		a, b, c = append(a, xs[i]), append(b, xs[i+1]), append(c, xs[i+2])
	}
	rngCheckStat(t, "normal pair correlation", rngCorrelation(a, b), 0, 5/math.Sqrt(float64(len(a))))
	rngCheckStat(t, "normal cross-pair correlation", rngCorrelation(a, c), 0, 5/math.Sqrt(float64(len(a))))
}

// Different streams, seeds and offsets give independent sequences.
func TestRandIndependence(t *testing.T) {
	l := testLib(t)
	const n = rngStatN / 4
	bound := 5 / math.Sqrt(n)
	base := rngDraw(t, l, true, n, 0x5eed0003, 0, 0)
	rngCheckStat(t, "stream 0 vs stream 1", rngCorrelation(base, rngDraw(t, l, true, n, 0x5eed0003, 1, 0)), 0, bound)
	rngCheckStat(t, "seed vs seed+1", rngCorrelation(base, rngDraw(t, l, true, n, 0x5eed0004, 0, 0)), 0, bound)
	rngCheckStat(t, "seed vs seed+2^32", rngCorrelation(base, rngDraw(t, l, true, n, 0x5eed0003+1<<32, 0, 0)), 0, bound)
	rngCheckStat(t, "offset 0 vs offset 1", rngCorrelation(base, rngDraw(t, l, true, n, 0x5eed0003, 0, 1)), 0, bound)
}

// RandIndex hits every value of a small range equally often (5σ of the binomial count).
func TestRandIndexStatistics(t *testing.T) {
	l := testLib(t)
	const n, limit = 1 << 18, 10
	ix, err := NewIndexTensor(l.Device(), "idx", n, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Release()
	op, err := l.RandIndex(ix, limit, 0x5eed0005, 0)
	rngRunOp(t, l, op, err)
	got, err := ix.Read()
	if err != nil {
		t.Fatal(err)
	}
	var counts [limit]float64
	for i, v := range got {
		if v >= limit {
			t.Fatalf("index %d = %d ≥ %d", i, v, limit)
		}
		counts[v]++
	}
	p := 1.0 / limit
	for v, c := range counts {
		if math.Abs(c-n*p) > 5*math.Sqrt(n*p*(1-p)) {
			t.Errorf("value %d drawn %v times, want %v ± %.0f", v, c, n*p, 5*math.Sqrt(n*p*(1-p)))
		}
	}
}
