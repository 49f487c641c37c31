package posterior

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"osds/kernels"
	"osds/train"
)

// quarticWGSL is a smooth non-linear log r with a non-zero third derivative (so that
// finite differences are not exact), written the way a user would (dynamic indexing of
// the Sample):
//
//	log r(x) = Σ_i w_i x_i − ¼ Σ_i c_i x_i⁴ − ½ (Σ_i a_i x_i)² / D
//	w_i = 0.5 + 0.01 i,  c_i = 0.1 + 0.002 i,  a_i = (i mod 7) − 3
const quarticWGSL = `// a test constraint
fn w(i: u32) -> f32 { return 0.5 + 0.01 * f32(i); }
fn c(i: u32) -> f32 { return 0.1 + 0.002 * f32(i); }
fn a(i: u32) -> f32 { return f32(i % 7u) - 3.0; }

fn log_reward(x: Sample) -> f32 {
	var s = 0.0;
	var q = 0.0;
	for (var i = 0u; i < D; i++) {
		let v = x[i];
		s += w(i) * v - 0.25 * c(i) * v * v * v * v;
		q += a(i) * v;
	}
	return s - 0.5 * q * q / f32(D);
}
`

const quarticGradWGSL = `
/* the exact gradient */
fn grad_log_reward(x: Sample) -> Sample {
	var q = 0.0;
	for (var i = 0u; i < D; i++) {
		q += a(i) * x[i];
	}
	var g: Sample;
	for (var i = 0u; i < D; i++) {
		g[i] = w(i) - c(i) * x[i] * x[i] * x[i] - a(i) * q / f32(D);
	}
	return g;
}
`

func refQuartic(x []float64) (float64, []float64) {
	D := len(x)
	s, q := 0.0, 0.0
	for i, v := range x {
		w, c, a := 0.5+0.01*float64(i), 0.1+0.002*float64(i), float64(i%7)-3
		s += w*v - 0.25*c*v*v*v*v
		q += a * v
	}
	g := make([]float64, D)
	for i, v := range x {
		w, c, a := 0.5+0.01*float64(i), 0.1+0.002*float64(i), float64(i%7)-3
		g[i] = w - c*v*v*v - a*q/float64(D)
	}
	return s - 0.5*q*q/float64(D), g
}

// wgslRun builds c on x [B, D] filled with xs, runs the value and gradient ops and returns
// log r and ∇log r (outputs poisoned first).
func wgslRun(t *testing.T, l *kernels.Library, c WGSL, xs []float32, B, D int) (logr, dx []float64) {
	t.Helper()
	x, err := kernels.FromSlice(l.Device(), "x", xs, B, D)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	p, err := c.Build(l, x)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if err := p.LogR.Poison(); err != nil {
		t.Fatal(err)
	}
	if err := p.DX.Poison(); err != nil {
		t.Fatal(err)
	}
	if err := l.Run(append(append([]*kernels.Op(nil), p.Value...), p.Grad...)...); err != nil {
		t.Fatal(err)
	}
	return wgslRead(t, p.LogR), wgslRead(t, p.DX)
}

func wgslRead(t *testing.T, x *kernels.Tensor) []float64 {
	t.Helper()
	v, err := x.Read()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

// wgslClose checks |got − want| ≤ tol·max(1, |want|) and returns the largest such ratio.
func wgslClose(t *testing.T, what string, got, want []float64, tol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		e := math.Abs(got[i]-want[i]) / math.Max(1, math.Abs(want[i]))
		if math.IsNaN(got[i]) || e > tol {
			t.Fatalf("%s: element %d: got %.7g, want %.7g (tolerance %.2g relative)", what, i, got[i], want[i], tol)
		}
		worst = math.Max(worst, e)
	}
	return worst
}

func randomRows(rng *rand.Rand, n int, scale float64) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(scale * rng.NormFloat64())
	}
	return xs
}

// TestWGSLMatchesReference runs a user constraint on 70 rows (two workgroups) of the
// awkward width 53, with its own gradient and without it (finite differences), against
// float64.
func TestWGSLMatchesReference(t *testing.T) {
	l := testLibrary(t)
	rng := testRNG(t)
	const B, D = 70, 53
	xs := randomRows(rng, B*D, 1)
	wantR := make([]float64, B)
	wantG := make([]float64, 0, B*D)
	for b := 0; b < B; b++ {
		row := make([]float64, D)
		for i := range row {
			row[i] = float64(xs[b*D+i])
		}
		r, g := refQuartic(row)
		wantR[b] = r
		wantG = append(wantG, g...)
	}
	dir := t.TempDir()
	withGrad := filepath.Join(dir, "quartic.wgsl")
	if err := os.WriteFile(withGrad, []byte(quarticWGSL+quarticGradWGSL), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := NewWGSL(withGrad)
	if err != nil {
		t.Fatal(err)
	}
	if has, err := c.HasGradient(); err != nil || !has {
		t.Fatalf("HasGradient = %v, %v; want true", has, err)
	}
	lr, dx := wgslRun(t, l, c, xs, B, D)
	t.Logf("user gradient: log r rel err %.2g, grad %.2g", wgslClose(t, "log r", lr, wantR, 1e-4), wgslClose(t, "grad_log_reward", dx, wantG, 1e-4))

	// The same log_reward without grad_log_reward (given as Source, Path for messages).
	fd := WGSL{Path: "quartic-fd.wgsl", Source: quarticWGSL}
	if has, _ := fd.HasGradient(); has {
		t.Fatal("HasGradient = true for a source without grad_log_reward")
	}
	lr, dx = wgslRun(t, l, fd, xs, B, D)
	wgslClose(t, "log r (fd module)", lr, wantR, 1e-4)
	// Central differences: O(h²)·|f'''| truncation plus f32 rounding of log r (|log r| ~
	// 10 here) over 2h; 2e-3 relative leaves a margin of several times the worst seen.
	t.Logf("finite differences (h = %g): grad rel err %.2g", DefaultFDStep, wgslClose(t, "finite-difference gradient", dx, wantG, 2e-3))
}

// brightnessRef is examples/constraints/brightness.wgsl in float64 (β = 20, 8×8 block).
func brightnessRef(x []float64) (float64, []float64) {
	side := int(math.Round(math.Sqrt(float64(len(x)))))
	first := (side - 8) / 2
	s := 0.0
	g := make([]float64, len(x))
	for r := first; r < first+8; r++ {
		for c := first; c < first+8; c++ {
			s += x[r*side+c]
			g[r*side+c] = 20.0 / 64
		}
	}
	return 20 * s / 64, g
}

// TestWGSLBrightnessExample runs the shipped example on MNIST-sized rows (D = 784) with
// its gradient and with finite differences in its place.
func TestWGSLBrightnessExample(t *testing.T) {
	l := testLibrary(t)
	rng := testRNG(t)
	const B, D = 5, 784
	xs := make([]float32, B*D)
	for i := range xs {
		xs[i] = rng.Float32()
	}
	var wantR, wantG []float64
	for b := 0; b < B; b++ {
		row := make([]float64, D)
		for i := range row {
			row[i] = float64(xs[b*D+i])
		}
		r, g := brightnessRef(row)
		wantR, wantG = append(wantR, r), append(wantG, g...)
	}
	c, err := NewWGSL("../examples/constraints/brightness.wgsl")
	if err != nil {
		t.Fatal(err)
	}
	lr, dx := wgslRun(t, l, c, xs, B, D)
	wgslClose(t, "brightness log r", lr, wantR, 1e-4)
	wgslClose(t, "brightness gradient", dx, wantG, 1e-4)
	// Without grad_log_reward: 784 finite differences per row. log r is linear, so they
	// are exact up to rounding.
	c.Source = strings.Replace(c.Source, "fn grad_log_reward", "fn unused_gradient", 1)
	_, dx = wgslRun(t, l, c, xs, B, D)
	wgslClose(t, "brightness finite-difference gradient", dx, wantG, 1e-3)

	// The width is asserted by the example itself (const_assert SIDE * SIDE == D).
	x, err := kernels.NewTensor(l.Device(), "x", 2, 50)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	_, err = c.Build(l, x)
	if err == nil || !strings.Contains(err.Error(), "brightness.wgsl:") || !strings.Contains(err.Error(), "const_assert SIDE * SIDE == D") {
		t.Fatalf("brightness on rows of 50: got %v, want the failed const_assert in brightness.wgsl", err)
	}
}

// TestWGSLSyntaxErrorNamesFileAndLine compiles examples/constraints/bad.wgsl (an
// unclosed parenthesis) and wants the error at the file's own line and column, with the
// line and a caret.
func TestWGSLSyntaxErrorNamesFileAndLine(t *testing.T) {
	l := testLibrary(t)
	const path = "../examples/constraints/bad.wgsl"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The compiler stops at the ';' where it expects the ')'.
	line, col := 0, 0
	for i, s := range strings.Split(string(src), "\n") {
		if j := strings.Index(s, "/ 2.0;"); j >= 0 {
			line, col = i+1, j+len("/ 2.0")+1
		}
	}
	if line == 0 {
		t.Fatal("bad.wgsl has changed: no `/ 2.0;` line")
	}
	c, err := NewWGSL(path)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Compile(l, 784)
	if err == nil {
		t.Fatal("bad.wgsl compiled")
	}
	msg := err.Error()
	t.Logf("%s", msg)
	var we *WGSLError
	if !errors.As(err, &we) {
		t.Fatalf("error %T, want *WGSLError", err)
	}
	want := path + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col) + ": error: "
	if !strings.Contains(msg, want) {
		t.Errorf("error does not contain %q", want)
	}
	if !strings.Contains(msg, "let m = (x[0] + x[1] / 2.0;") || !strings.Contains(msg, "\n    "+strings.Repeat(" ", col-1)+"^") {
		t.Errorf("error does not show the offending line with a caret under column %d", col)
	}
	if strings.Contains(msg, "harness") {
		t.Errorf("a syntax error in the user's file is blamed on the harness")
	}
}

// TestWGSLSignatureErrors: a wrong return type, a wrong parameter, a wrong gradient and a
// missing log_reward each say what the harness expects and where the user's declaration is.
func TestWGSLSignatureErrors(t *testing.T) {
	l := testLibrary(t)
	x, err := kernels.NewTensor(l.Device(), "x", 3, 37)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	cases := []struct {
		name, src string
		want      []string
	}{
		{"vec2.wgsl", "// returns the wrong type\n\nfn log_reward(x: Sample) -> vec2<f32> {\n\treturn vec2<f32>(x[0], x[1]);\n}\n",
			[]string{"vec2.wgsl: error in the osds harness, line ", "'vec2<f32>'", "check your function signatures", sigLogReward,
				"yours: vec2.wgsl:3: fn log_reward(x: Sample) -> vec2<f32>"}},
		{"param.wgsl", "fn log_reward(x: vec4<f32>) -> f32 {\n\treturn x.x;\n}\n",
			[]string{"in the osds harness", "type mismatch for argument 1 in call to 'log_reward'", "yours: param.wgsl:1: fn log_reward(x: vec4<f32>) -> f32"}},
		{"grad.wgsl", "fn log_reward(x: Sample) -> f32 { return x[0]; }\nfn grad_log_reward(x: Sample) -> f32 { return 1.0; }\n",
			[]string{"in the osds harness", sigGradLogReward, "yours: grad.wgsl:2: fn grad_log_reward(x: Sample) -> f32"}},
		{"redeclare.wgsl", "const D: u32 = 3u;\nfn log_reward(x: Sample) -> f32 { return x[0]; }\n",
			[]string{"redeclaration of 'D'", "redeclare.wgsl:1:", "const D: u32 = 37u;"}},
		{"missing.wgsl", "// fn log_reward(x: Sample) -> f32 in a comment does not count\nfn reward(x: Sample) -> f32 { return x[0]; }\n",
			[]string{"missing.wgsl defines no log_reward", sigLogReward}},
	}
	for _, c := range cases {
		p, err := WGSL{Path: c.name, Source: c.src}.Build(l, x)
		if err == nil {
			p.Release()
			t.Errorf("%s compiled", c.name)
			continue
		}
		t.Logf("%s:\n%v", c.name, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not contain %q", c.name, w)
			}
		}
	}
	if err := (WGSL{Path: "/nonexistent/c.wgsl"}).Check(37); err == nil || !strings.Contains(err.Error(), "/nonexistent/c.wgsl") {
		t.Errorf("Check of a missing file: %v", err)
	}
	if err := (WGSL{Source: quarticWGSL, Step: 2}).Check(37); err == nil {
		t.Error("Check accepted a finite-difference step of 2")
	}
}

// wgslObservation is linObs (analytic_test.go) written as a user constraint:
// Σ_i m_i log N(y_i; x_i, 1) over D = 5.
const wgslObservation = `
const Y = array<f32, 5>(1.2, 0.0, 0.4, 1.5, 0.0);
const M = array<f32, 5>(1.0, 0.0, 1.0, 1.0, 0.0);
const_assert D == 5;

fn log_reward(x: Sample) -> f32 {
	var s = 0.0;
	for (var i = 0u; i < D; i++) {
		let r = x[i] - Y[i];
		s += M[i] * (-0.9189385 - 0.5 * r * r);
	}
	return s;
}
`

// TestWGSLRewardMatchesObservation: the posterior reward of the linear prior with the
// observation written in WGSL (gradient by finite differences) equals the reward with
// the built-in GaussianObservation, value and gradient.
func TestWGSLRewardMatchesObservation(t *testing.T) {
	l := testLibrary(t)
	rng := testRNG(t)
	prior, err := NewLinear(l.Device(), linA, linB)
	if err != nil {
		t.Fatal(err)
	}
	defer prior.Release()
	const B, d = 45, 2
	zs := randomRows(rng, B*d, 1)
	eval := func(c Constraint) ([]float64, []float64) {
		r, err := NewReward(l, prior, c)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		z, err := kernels.FromSlice(l.Device(), "z", zs, B, d)
		if err != nil {
			t.Fatal(err)
		}
		defer z.Release()
		lr, err := kernels.NewTensor(l.Device(), "logR", B)
		if err != nil {
			t.Fatal(err)
		}
		defer lr.Release()
		g, err := kernels.NewTensor(l.Device(), "grad", B, d)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		lr.Poison()
		g.Poison()
		rw, err := r.Func()(l, lr, g, z)
		if err != nil {
			t.Fatal(err)
		}
		defer rw.Release()
		if err := l.Run(rw.Ops...); err != nil {
			t.Fatal(err)
		}
		return wgslRead(t, lr), wgslRead(t, g)
	}
	wantR, wantG := eval(linObs)
	gotR, gotG := eval(WGSL{Path: "observation.wgsl", Source: wgslObservation})
	wgslClose(t, "log R", gotR, wantR, 1e-5)
	wgslClose(t, "∇log R (finite differences)", gotG, wantG, 1e-3)
}

// TestWGSLTrains trains a sampler for a few iterations on the linear prior under the
// WGSL observation and checks that the loss stays finite and the mean log r of on-policy
// samples rises above the untrained sampler's.
func TestWGSLTrains(t *testing.T) {
	l := testLibrary(t)
	prior, err := NewLinear(l.Device(), linA, linB)
	if err != nil {
		t.Fatal(err)
	}
	defer prior.Release()
	c := WGSL{Path: "observation.wgsl", Source: wgslObservation}
	r, err := NewReward(l, prior, c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	cfg := train.Config{Steps: 10, Sigma2: 1, Batch: 64, Width: 32, Harmonics: 16, Objective: kernels.TB,
		LR: 1e-2, LRLogZ: 0.1, Seed: 11}
	tr, err := train.NewTrainer(l, r.Dim(), cfg, r.Func())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	meanLogR := func() float64 {
		s, err := tr.Sample(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		xs, err := Decode(l, prior, s.Z)
		if err != nil {
			t.Fatal(err)
		}
		m := 0.0
		for b := range s.Z {
			for i := 0; i < 5; i++ {
				r := float64(xs[b*5+i] - linObs.Y[i])
				m += float64(linObs.Mask[i]) * (-0.5*math.Log(2*math.Pi) - 0.5*r*r) / float64(len(s.Z))
			}
		}
		return m
	}
	before := meanLogR()
	var last train.Stats
	for i := 0; i < 150; i++ {
		st, ok, err := tr.Step()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			last = st
			if math.IsNaN(st.Loss) || math.IsInf(st.Loss, 0) {
				t.Fatalf("iteration %d: loss %v", st.Iter, st.Loss)
			}
		}
	}
	if _, err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	after := meanLogR()
	_, _, logZ, _ := LinearGaussianPosterior(linA, linB, linObs)
	t.Logf("mean log r of samples: %.3f untrained, %.3f after 150 iterations; loss %.4f, log Z %.3f (exact %.3f)", before, after, last.Loss, last.LogZ, logZ)
	if !(after > before+0.2) {
		t.Errorf("mean log r went from %.3f to %.3f, want a rise of at least 0.2", before, after)
	}
}

// smoothnessRef is examples/constraints/smoothness.wgsl in float64 (λ = 2).
func smoothnessRef(x []float64) (float64, []float64) {
	side := int(math.Round(math.Sqrt(float64(len(x)))))
	s := 0.0
	g := make([]float64, len(x))
	pair := func(i, j int) { // (x_j − x_i)²
		d := x[j] - x[i]
		s += d * d
		g[j] += -2 * 2 * d
		g[i] -= -2 * 2 * d
	}
	for r := 0; r < side; r++ {
		for c := 0; c < side; c++ {
			if c+1 < side {
				pair(r*side+c, r*side+c+1)
			}
			if r+1 < side {
				pair(r*side+c, (r+1)*side+c)
			}
		}
	}
	return -2 * s, g
}

// TestWGSLSmoothnessExample runs the shipped example without a gradient on 7×7 images:
// log r against float64, and its finite-difference gradient against the analytic one.
func TestWGSLSmoothnessExample(t *testing.T) {
	l := testLibrary(t)
	rng := testRNG(t)
	const B, D = 9, 49
	xs := make([]float32, B*D)
	for i := range xs {
		xs[i] = rng.Float32()
	}
	var wantR, wantG []float64
	for b := 0; b < B; b++ {
		row := make([]float64, D)
		for i := range row {
			row[i] = float64(xs[b*D+i])
		}
		r, g := smoothnessRef(row)
		wantR, wantG = append(wantR, r), append(wantG, g...)
	}
	c, err := NewWGSL("../examples/constraints/smoothness.wgsl")
	if err != nil {
		t.Fatal(err)
	}
	lr, dx := wgslRun(t, l, c, xs, B, D)
	wgslClose(t, "smoothness log r", lr, wantR, 1e-4)
	// Quadratic: central differences are exact up to rounding.
	wgslClose(t, "smoothness finite-difference gradient", dx, wantG, 1e-3)
}
