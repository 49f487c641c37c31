package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"osds/kernels"
)

const ringPath = "../examples/targets/ring.wgsl"

// ringRef is examples/targets/ring.wgsl in float64: log R and ∇log R of
// Σ_k exp(−|z − μ_k|² / (2·0.16)), μ_k = 3 (cos 2πk/8, sin 2πk/8).
func ringRef(z []float64) (float64, []float64) {
	const k, r, s2 = 8, 3.0, 0.16
	e := make([]float64, k)
	mu := make([][2]float64, k)
	m := math.Inf(-1)
	for i := range e {
		a := 2 * math.Pi * float64(i) / k
		mu[i] = [2]float64{r * math.Cos(a), r * math.Sin(a)}
		dx, dy := z[0]-mu[i][0], z[1]-mu[i][1]
		e[i] = -(dx*dx + dy*dy) / (2 * s2)
		m = math.Max(m, e[i])
	}
	s := 0.0
	for _, v := range e {
		s += math.Exp(v - m)
	}
	lr := m + math.Log(s)
	g := make([]float64, 2)
	for i, v := range e {
		w := math.Exp(v - lr)
		g[0] += w * (mu[i][0] - z[0]) / s2
		g[1] += w * (mu[i][1] - z[1]) / s2
	}
	return lr, g
}

// wgslTestRNG is seeded from the clock (fresh points every run); OSDS_TEST_SEED replays.
func wgslTestRNG(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OSDS_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("OSDS_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (set OSDS_TEST_SEED to replay)", seed)
	return rand.New(rand.NewPCG(seed, 0x7a5))
}

// runTargetReward evaluates tg's GPU reward (value and gradient, outputs poisoned first)
// on the rows xs [B, D].
func runTargetReward(t *testing.T, l *kernels.Library, reward RewardFunc, xs []float32, B, D int) (logr, grad []float64) {
	t.Helper()
	z, err := kernels.FromSlice(l.Device(), "z", xs, B, D)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Release()
	lr, err := kernels.NewTensor(l.Device(), "logr", B)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Release()
	g, err := kernels.NewTensor(l.Device(), "grad", B, D)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if err := lr.Poison(); err != nil {
		t.Fatal(err)
	}
	if err := g.Poison(); err != nil {
		t.Fatal(err)
	}
	r, err := reward(l, lr, g, z)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if err := l.Run(r.Ops...); err != nil {
		t.Fatal(err)
	}
	read := func(x *kernels.Tensor) []float64 {
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
	return read(lr), read(g)
}

// wgslClose checks |got − want| ≤ tol·max(1, |want|) element by element and returns the
// largest ratio of the error to that scale.
func wgslClose(t *testing.T, what string, got, want []float64, tol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		e := math.Abs(got[i]-want[i]) / math.Max(1, math.Abs(want[i]))
		if !(e <= tol) {
			t.Fatalf("%s: element %d: got %.7g, want %.7g (tolerance %.2g relative)", what, i, got[i], want[i], tol)
		}
		worst = math.Max(worst, e)
	}
	return worst
}

// writeWGSL writes src to dir/name and returns the path.
func writeWGSL(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWGSLTargetRingMatchesReference evaluates the shipped example through the reward
// the CLI builds (TargetReward of the target's name) on 77 fresh random points (two
// workgroups, the second partial), against float64: log R and the file's exact gradient.
func TestWGSLTargetRingMatchesReference(t *testing.T) {
	tg, err := NewTarget("wgsl:" + ringPath)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(ringPath)
	if tg.Name() != "wgsl:"+abs || tg.Dim() != 2 || tg.Sigma2() != 4 {
		t.Fatalf("ring: name %q, d %d, σ² %v; want wgsl:%s, 2, 4", tg.Name(), tg.Dim(), tg.Sigma2(), abs)
	}
	// LOG_Z in the file is log(8 · 2π s²) to f32 precision.
	if z, ok := tg.LogZ(); !ok || math.Abs(z-math.Log(8*2*math.Pi*0.16)) > 1e-6 {
		t.Fatalf("ring: LOG_Z = %v (declared %v), want log(2.56π) = %v", z, ok, math.Log(8*2*math.Pi*0.16))
	}
	if HasExactSamples(tg) || tg.Sample(rand.New(rand.NewPCG(1, 2)), 3) != nil {
		t.Fatal("a WGSL target claims exact samples")
	}
	if !HasExactSamples(GMM25{}) {
		t.Fatal("gmm25 has exact samples")
	}
	l := testLibrary(t)
	rng := wgslTestRNG(t)
	const B = 77
	xs := make([]float32, B*2)
	for i := range xs {
		xs[i] = float32(3 * rng.NormFloat64()) // on the ring, inside it and far outside
	}
	var wantR, wantG []float64
	for b := 0; b < B; b++ {
		r, g := ringRef([]float64{float64(xs[2*b]), float64(xs[2*b+1])})
		wantR, wantG = append(wantR, r), append(wantG, g...)
	}
	gotR, gotG := runTargetReward(t, l, TargetReward(tg.Name()), xs, B, 2)
	t.Logf("log R rel err %.2g, gradient %.2g",
		wgslClose(t, "ring log R", gotR, wantR, 1e-4), wgslClose(t, "ring grad_log_density", gotG, wantG, 1e-4))
}

// quarticTarget is a smooth D = 5 density with couplings and a non-zero third derivative
// (finite differences are not exact on it), with and without its exact gradient:
//
//	log R(z) = Σ_i w_i z_i − ¼ Σ_i c_i z_i⁴ − ½ (Σ_i a_i z_i)² / D
//	w_i = 0.5 + 0.1 i,  c_i = 0.3 + 0.05 i,  a_i = i − 2
const quarticTarget = `// a test target
const D: u32 = 5u;
fn w(i: u32) -> f32 { return 0.5 + 0.1 * f32(i); }
fn c(i: u32) -> f32 { return 0.3 + 0.05 * f32(i); }
fn a(i: u32) -> f32 { return f32(i) - 2.0; }

fn log_density(z: State) -> f32 {
	var s = 0.0;
	var q = 0.0;
	for (var i = 0u; i < D; i++) {
		let v = z[i];
		s += w(i) * v - 0.25 * c(i) * v * v * v * v;
		q += a(i) * v;
	}
	return s - 0.5 * q * q / f32(D);
}
`

const quarticTargetGrad = `
fn grad_log_density(z: State) -> State {
	var q = 0.0;
	for (var i = 0u; i < D; i++) {
		q += a(i) * z[i];
	}
	var g: State;
	for (var i = 0u; i < D; i++) {
		g[i] = w(i) - c(i) * z[i] * z[i] * z[i] - a(i) * q / f32(D);
	}
	return g;
}
`

func quarticTargetRef(z []float64) (float64, []float64) {
	D := float64(len(z))
	s, q := 0.0, 0.0
	for i, v := range z {
		w, c, a := 0.5+0.1*float64(i), 0.3+0.05*float64(i), float64(i)-2
		s += w*v - 0.25*c*v*v*v*v
		q += a * v
	}
	g := make([]float64, len(z))
	for i, v := range z {
		w, c, a := 0.5+0.1*float64(i), 0.3+0.05*float64(i), float64(i)-2
		g[i] = w - c*v*v*v - a*q/D
	}
	return s - 0.5*q*q/D, g
}

// TestWGSLTargetFiniteDifferences: without grad_log_density the reward's gradient is
// central finite differences; on the quartic (B = 131, D = 5: 655 invocations, a partial
// last workgroup) it matches the exact float64 gradient to the error of the method, and
// the exact WGSL gradient matches it to f32 rounding. On the ring example, finite
// differences with a small step match the file's own gradient.
func TestWGSLTargetFiniteDifferences(t *testing.T) {
	l := testLibrary(t)
	rng := wgslTestRNG(t)
	dir := t.TempDir()
	const B, D = 131, 5
	xs := make([]float32, B*D)
	for i := range xs {
		xs[i] = float32(1.5 * rng.NormFloat64())
	}
	var wantR, wantG []float64
	for b := 0; b < B; b++ {
		row := make([]float64, D)
		for i := range row {
			row[i] = float64(xs[b*D+i])
		}
		r, g := quarticTargetRef(row)
		wantR, wantG = append(wantR, r), append(wantG, g...)
	}
	exact, err := NewTarget("wgsl:" + writeWGSL(t, dir, "quartic.wgsl", quarticTarget+quarticTargetGrad))
	if err != nil {
		t.Fatal(err)
	}
	fd, err := NewTarget("wgsl:" + writeWGSL(t, dir, "quartic-fd.wgsl", quarticTarget))
	if err != nil {
		t.Fatal(err)
	}
	if !exact.(*WGSLTarget).HasGradient() || fd.(*WGSLTarget).HasGradient() {
		t.Fatal("HasGradient wrong")
	}
	lr, g := runTargetReward(t, l, exact.(*WGSLTarget).Reward(), xs, B, D)
	wgslClose(t, "quartic log R", lr, wantR, 1e-4)
	wgslClose(t, "quartic grad_log_density", g, wantG, 1e-4)
	lr, g = runTargetReward(t, l, fd.(*WGSLTarget).Reward(), xs, B, D)
	wgslClose(t, "quartic log R (finite-difference module)", lr, wantR, 1e-4)
	// Truncation h²/6·|f'''| with h = 0.01·max(|z|, 1) (|f'''| = 6 c_i |z_i| ≤ 3·|z|) plus
	// f32 rounding of log R (|log R| ≲ 50 here) over 2h: below 1e-3 of max(1, |∂f|).
	t.Logf("finite differences (h = %g): gradient rel err %.2g", kernels.DefaultFDStep, wgslClose(t, "quartic finite-difference gradient", g, wantG, 2e-3))

	// The ring without its gradient, step=1e-3: its curvature changes over s = 0.4
	// (|f'''| up to ~(2.3/s²)³ between modes), so the default step's truncation error
	// would reach percents there; at h = 3e-3 it is below 1e-3 of the gradient's scale,
	// and f32 rounding (|log R| ≲ 10 at |z| ≲ 5) adds ~6e-8·10/3e-3 = 2e-4.
	src, err := os.ReadFile(ringPath)
	if err != nil {
		t.Fatal(err)
	}
	ringFD := writeWGSL(t, dir, "ring-fd.wgsl", strings.Replace(string(src), "fn grad_log_density", "fn unused_gradient", 1))
	rfd, err := NewTarget("wgsl:" + ringFD + ",step=1e-3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(rfd.Name(), ",step=0.001") {
		t.Fatalf("name %q does not keep the step", rfd.Name())
	}
	const RB = 97
	rs := make([]float32, RB*2)
	for i := range rs {
		rs[i] = float32(1.5 * rng.NormFloat64())
	}
	var ringG []float64
	for b := 0; b < RB; b++ {
		_, g := ringRef([]float64{float64(rs[2*b]), float64(rs[2*b+1])})
		ringG = append(ringG, g...)
	}
	_, g = runTargetReward(t, l, TargetReward(rfd.Name()), rs, RB, 2)
	t.Logf("ring finite differences (h = 1e-3): gradient rel err %.2g", wgslClose(t, "ring finite-difference gradient", g, ringG, 5e-3))
}

// TestWGSLTargetNames: the name round-trips through NewTarget (the checkpoint stores
// it), with the file's absolute path and the step.
func TestWGSLTargetNames(t *testing.T) {
	tg, err := NewTarget("WGSL:" + ringPath + ",step=0.02")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(ringPath)
	if want := "wgsl:" + abs + ",step=0.02"; tg.Name() != want {
		t.Fatalf("name %q, want %q", tg.Name(), want)
	}
	again, err := NewTarget(tg.Name())
	if err != nil || again.Name() != tg.Name() || again.Dim() != 2 {
		t.Fatalf("NewTarget(%q) = %v, %v", tg.Name(), again, err)
	}
	// A path holding a comma is not an option.
	dir := filepath.Join(t.TempDir(), "a,b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := writeWGSL(t, dir, "g.wgsl", "const D = 3;\nfn log_density(z: State) -> f32 { return -z[0] * z[0]; }\n")
	if tg, err := NewTarget("wgsl:" + p); err != nil || tg.Dim() != 3 || tg.Sigma2() != 1 {
		t.Fatalf("path with a comma: %v, %v", tg, err)
	} else if _, ok := tg.LogZ(); ok {
		t.Fatal("LOG_Z known without a declaration")
	}
}

// TestWGSLTargetErrors: each mistake is an error that names the file and what was
// wanted; syntax errors and wrong signatures come from the compiler, placed in the file.
func TestWGSLTargetErrors(t *testing.T) {
	dir := t.TempDir()
	const fn = "fn log_density(z: State) -> f32 { return -0.5 * z[0] * z[0]; }\n"
	static := []struct {
		name, src string // src "" : no file is written
		suffix    string // after the path in the target's name
		want      []string
	}{
		{"missing.wgsl", "", "", []string{"missing.wgsl: no such file", "fn log_density(z: State) -> f32"}},
		{"nofn.wgsl", "const D: u32 = 1u;\n// fn log_density(z: State) -> f32 in a comment does not count\nfn density(z: State) -> f32 { return z[0]; }\n", "",
			[]string{"nofn.wgsl defines no log_density", "fn log_density(z: State) -> f32", "fn grad_log_density(z: State) -> State"}},
		{"nod.wgsl", "// const D: u32 = 2u; in a comment does not count\n" + fn, "", []string{"nod.wgsl declares no dimension", "const D: u32 = 2u;"}},
		{"dexpr.wgsl", "const D: u32 = 2u * 1u;\n" + fn, "", []string{"dexpr.wgsl:1: `const D: u32 = 2u * 1u;`", "integer literal"}},
		{"dzero.wgsl", "const D = 0;\n" + fn, "", []string{"dzero.wgsl:1", "want 1 ≤ D ≤ 16384"}},
		{"dbig.wgsl", "const D = 100000u;\n" + fn, "", []string{"want 1 ≤ D ≤ 16384"}},
		{"dtype.wgsl", "const D: i32 = 2;\n" + fn, "", []string{"dtype.wgsl:1", "D has type i32"}},
		{"logz.wgsl", "const D = 1u;\nconst LOG_Z: f32 = log(2.0);\n" + fn, "", []string{"logz.wgsl:2: `const LOG_Z: f32 = log(2.0);`", "must be a number literal"}},
		{"logztype.wgsl", "const D = 1u;\nconst LOG_Z: u32 = 2u;\n" + fn, "", []string{"LOG_Z", "has type u32"}},
		{"sigma.wgsl", "const D = 1u;\nconst SIGMA2 = -1.0;\n" + fn, "", []string{"sigma.wgsl: SIGMA2 = -1", "must be > 0"}},
		{"step.wgsl", "const D = 1u;\n" + fn, ",step=2", []string{"finite-difference step 2"}},
		{"step0.wgsl", "const D = 1u;\n" + fn, ",step=0", []string{"finite-difference step 0"}},
		{"stepnan.wgsl", "const D = 1u;\n" + fn, ",step=abc", []string{`step="abc" is not a number`}},
		{"option.wgsl", "const D = 1u;\n" + fn, ",beta=2", []string{`unknown option "beta"`, "wgsl:FILE.wgsl[,step=H]"}},
	}
	for _, c := range static {
		p := filepath.Join(dir, c.name)
		if c.src != "" {
			writeWGSL(t, dir, c.name, c.src)
		}
		_, err := NewTarget("wgsl:" + p + c.suffix)
		if err == nil {
			t.Errorf("%s%s accepted", c.name, c.suffix)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.name, err, w)
			}
		}
		// The reward of a bad name fails (no panic) with the same reason.
		if _, rerr := TargetReward("wgsl:"+p+c.suffix)(nil, nil, nil, nil); rerr == nil || rerr.Error() != err.Error() {
			t.Errorf("%s: TargetReward error %v, want %v", c.name, rerr, err)
		}
	}
	if _, err := NewTarget("wgsl:"); err == nil || !strings.Contains(err.Error(), "names no file") {
		t.Errorf("wgsl: with no file: %v", err)
	}

	// What only the compiler sees.
	l := testLibrary(t)
	compiled := []struct {
		name, src string
		want      []string
	}{
		{"syntax.wgsl", "const D: u32 = 2u;\n\nfn log_density(z: State) -> f32 {\n\tlet r = (z[0] * z[0] + z[1] * z[1];\n\treturn -r;\n}\n",
			[]string{"train: WGSL target ", "syntax.wgsl does not compile", "syntax.wgsl:4:", "let r = (z[0] * z[0] + z[1] * z[1];", "^"}},
		{"vec2.wgsl", "const D: u32 = 2u;\nfn log_density(z: State) -> vec2<f32> { return vec2<f32>(z[0], z[1]); }\n",
			[]string{"in the osds harness", "'vec2<f32>'", "the harness calls fn log_density(z: State) -> f32", "yours: " + filepath.Join(dir, "vec2.wgsl") + ":2: fn log_density(z: State) -> vec2<f32>"}},
		{"param.wgsl", "const D: u32 = 2u;\nfn log_density(z: vec2<f32>) -> f32 { return z.x; }\n",
			[]string{"in the osds harness", "in call to 'log_density'", "yours: " + filepath.Join(dir, "param.wgsl") + ":2: fn log_density(z: vec2<f32>) -> f32"}},
		{"grad.wgsl", "const D: u32 = 2u;\n" + fn + "fn grad_log_density(z: State) -> f32 { return 1.0; }\n",
			[]string{"in the osds harness", "fn grad_log_density(z: State) -> State", "yours: " + filepath.Join(dir, "grad.wgsl") + ":3: fn grad_log_density(z: State) -> f32"}},
		{"state.wgsl", "const D: u32 = 2u;\nalias State = vec2<f32>;\n" + fn, []string{"redeclaration of 'State'"}},
	}
	for _, c := range compiled {
		tg, err := NewTarget("wgsl:" + writeWGSL(t, dir, c.name, c.src))
		if err != nil {
			t.Errorf("%s: %v before compiling", c.name, err)
			continue
		}
		err = tg.(*WGSLTarget).Compile(l)
		if err == nil {
			t.Errorf("%s compiled", c.name)
			continue
		}
		t.Logf("%s:\n%v", c.name, err)
		var we *kernels.WGSLError
		if !errors.As(err, &we) {
			t.Errorf("%s: error %T, want *kernels.WGSLError", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not contain %q", c.name, w)
			}
		}
	}
	// The reward checks its batch against D.
	tg, err := NewTarget("wgsl:" + writeWGSL(t, dir, "ok.wgsl", "const D: u32 = 2u;\n"+fn))
	if err != nil {
		t.Fatal(err)
	}
	z, _ := kernels.NewTensor(l.Device(), "z", 4, 3)
	defer z.Release()
	lr, _ := kernels.NewTensor(l.Device(), "logr", 4)
	defer lr.Release()
	if _, err := TargetReward(tg.Name())(l, lr, nil, z); err == nil || !strings.Contains(err.Error(), "declares D = 2, but the rows given have 3 values") {
		t.Errorf("rows of 3 for D = 2: %v", err)
	}
}

// gaussianWGSL writes the Gaussian target g (R = Z·N(m, S)) as a WGSL target without a
// gradient: log R(z) = −½ (z − m)ᵀ P (z − m) + c.
func gaussianWGSL(g *Gaussian) string {
	d := g.Dim()
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', 9, 64) }
	var sb strings.Builder
	fmt.Fprintf(&sb, "const D: u32 = %du;\nconst LOG_Z: f32 = %s;\n", d, num(g.Z))
	var m, p []string
	for i := 0; i < d; i++ {
		m = append(m, num(g.Mean[i]))
	}
	for _, v := range g.Precision() {
		p = append(p, num(v))
	}
	fmt.Fprintf(&sb, "const M = array<f32, %d>(%s);\nconst P = array<f32, %d>(%s);\nconst C: f32 = %s;\n",
		d, strings.Join(m, ", "), d*d, strings.Join(p, ", "), num(g.Offset()))
	sb.WriteString(`
fn log_density(z: State) -> f32 {
	var q = 0.0;
	for (var i = 0u; i < D; i++) {
		for (var j = 0u; j < D; j++) {
			q += (z[i] - M[i]) * P[i * D + j] * (z[j] - M[j]);
		}
	}
	return C - 0.5 * q;
}
`)
	return sb.String()
}

// TestWGSLTargetSamplerLearnsGaussian trains a sampler on a 2-D Gaussian written in WGSL
// (log Z = 1.5, LOG_Z in the file, no gradient) through the CLI's path (NewTarget,
// DefaultConfig, TargetReward), fixed seed, and checks log Ẑ^RW against LOG_Z. The
// tolerance is 5 standard errors of log Ẑ^RW at n samples, by the delta method
// se ≈ sd(w)/(mean(w)·√n) from the samples' own weights (whose effective sample size must
// be large enough for that estimate to mean something), plus the −se²/2 bias of a log.
func TestWGSLTargetSamplerLearnsGaussian(t *testing.T) {
	g, err := NewGaussian([]float64{1, -0.5}, [][]float64{{0.5, 0.2}, {0.2, 0.3}}, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := NewTarget("wgsl:" + writeWGSL(t, t.TempDir(), "gaussian.wgsl", gaussianWGSL(g)))
	if err != nil {
		t.Fatal(err)
	}
	if z, ok := tg.LogZ(); !ok || z != 1.5 {
		t.Fatalf("LOG_Z = %v, %v; want 1.5", z, ok)
	}
	l := testLibrary(t)
	cfg := DefaultConfig(tg)
	cfg.Steps, cfg.Batch, cfg.Seed, cfg.LR = 10, 128, 11, 3e-3
	tr, err := NewTrainer(l, tg.Dim(), cfg, TargetReward(tg.Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	start := time.Now()
	const iters = 300
	var last Stats
	for i := 0; i < iters; i++ {
		st, ok, err := tr.Step()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			last = st
		}
	}
	if _, err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d iterations in %v; loss %.4f, learned log Z %.4f", iters, time.Since(start).Round(time.Millisecond), last.Loss, last.LogZ)
	const n = 4096
	s, err := tr.Sample(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	est := EstimateLogZ(s.LogW, 1.5)
	maxW := math.Inf(-1)
	for _, v := range s.LogW {
		maxW = math.Max(maxW, v)
	}
	var sw, sw2 float64
	for _, v := range s.LogW {
		w := math.Exp(v - maxW)
		sw += w
		sw2 += w * w
	}
	mean := sw / n
	sd := math.Sqrt(math.Max(0, sw2/n-mean*mean) * n / (n - 1))
	se := sd / (mean * math.Sqrt(n))
	ess := sw * sw / sw2
	t.Logf("ELBO %.4f (Δ %.4f), log Ẑ^RW %.4f (Δ^RW %.4f), se %.4f, ESS %.0f of %d", est.ELBO, est.Delta, est.IW, est.DelRW, se, ess, n)
	if ess < n/4 {
		t.Fatalf("effective sample size %.0f of %d: the sampler did not learn the target well enough for the delta-method error", ess, n)
	}
	if tol := 5*se + se*se/2; math.Abs(est.DelRW) > tol {
		t.Errorf("log Ẑ^RW = %.4f, want LOG_Z = 1.5 ± %.4f (5 standard errors)", est.IW, tol)
	}
	if est.Delta < -5*stdErr(s.LogW) {
		t.Errorf("ELBO %.4f above log Z = 1.5 by more than 5 standard errors", est.ELBO)
	}
}

// TestWGSLTargetGradientServesLangevinAndLocalSearch trains a few iterations with the
// Langevin drift and MALA local search on the ring example without its gradient (finite
// differences): both record the target's gradient at every step and must run, and stay
// finite.
func TestWGSLTargetGradientServesLangevinAndLocalSearch(t *testing.T) {
	src, err := os.ReadFile(ringPath)
	if err != nil {
		t.Fatal(err)
	}
	p := writeWGSL(t, t.TempDir(), "ring-fd.wgsl", strings.Replace(string(src), "fn grad_log_density", "fn unused_gradient", 1))
	var losses []float64
	for _, exact := range []bool{false, true} {
		name := "wgsl:" + p
		if exact {
			name = "wgsl:" + ringPath
		}
		tg, err := NewTarget(name)
		if err != nil {
			t.Fatal(err)
		}
		l := testLibrary(t)
		cfg := DefaultConfig(tg)
		cfg.Steps, cfg.Batch, cfg.Seed = 8, 32, 5
		cfg.Langevin = true
		cfg.BothWays, cfg.Buffer = true, 256
		cfg.LS = LocalSearch{Every: 2, Steps: 4, Burn: 1, Eta: 0.01, Beta: 1}
		tr, err := NewTrainer(l, 2, cfg, TargetReward(tg.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var last Stats
		for i := 0; i < 6; i++ {
			st, ok, err := tr.Step()
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				last = st
			}
		}
		rest, err := tr.Flush()
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) > 0 {
			last = rest[len(rest)-1]
		}
		calls := tr.ls.calls
		tr.Release()
		t.Logf("exact gradient %v: iteration %d, loss %.4f, %d local searches", exact, last.Iter, last.Loss, calls)
		losses = append(losses, last.Loss)
		if last.Iter != 5 || math.IsNaN(last.Loss) || math.IsInf(last.Loss, 0) { // iterations count from 0
			t.Errorf("exact gradient %v: iteration %d, loss %v", exact, last.Iter, last.Loss)
		}
		if calls == 0 {
			t.Errorf("exact gradient %v: local search never ran", exact)
		}
	}
	// Same seed, same noise: the runs differ only by the gradient's finite-difference
	// error, which the Langevin drift's small initial scale shrinks further.
	if len(losses) == 2 && math.Abs(losses[0]-losses[1]) > 1e-2*math.Abs(losses[1]) {
		t.Errorf("loss %.6f with finite differences, %.6f with the exact gradient: want within 1%%", losses[0], losses[1])
	}
}
