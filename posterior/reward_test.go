package posterior

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"osds/gpu"
	"osds/kernels"
	"osds/priors"
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

// testRNG is seeded from the clock (fresh inputs every run); OSDS_TEST_SEED replays.
func testRNG(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OSDS_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	t.Logf("seed %d (set OSDS_TEST_SEED to replay)", seed)
	return rand.New(rand.NewPCG(seed, 0x9057))
}

const log2Pi = 1.8378770664093453

// callSite is one reward call: its own z, logr and (optionally) grad tensors.
type callSite struct {
	zs         []float32
	z, lr, grd *kernels.Tensor
}

func newCallSite(t *testing.T, l *kernels.Library, rng *rand.Rand, B, d int, grad bool) *callSite {
	t.Helper()
	c := &callSite{zs: make([]float32, B*d)}
	for i := range c.zs {
		c.zs[i] = float32(rng.NormFloat64())
	}
	var err error
	if c.z, err = kernels.FromSlice(l.Device(), "z", c.zs, B, d); err != nil {
		t.Fatal(err)
	}
	if c.lr, err = kernels.NewTensor(l.Device(), "logr", B); err != nil {
		t.Fatal(err)
	}
	c.lr.Poison()
	if grad {
		if c.grd, err = kernels.NewTensor(l.Device(), "grad", B, d); err != nil {
			t.Fatal(err)
		}
		c.grd.Poison()
	}
	t.Cleanup(func() { c.z.Release(); c.lr.Release(); c.grd.Release() })
	return c
}

// runSites builds every call site's reward and records them all into ONE command buffer
// (the shared graph is reused by every site of a batch size, in order).
func runSites(t *testing.T, l *kernels.Library, r *Reward, sites []*callSite) {
	t.Helper()
	rec, err := l.NewRecorder("reward test")
	if err != nil {
		t.Fatal(err)
	}
	f := r.Func()
	for _, s := range sites {
		rw, err := f(l, s.lr, s.grd, s.z)
		if err != nil {
			t.Fatal(err)
		}
		defer rw.Release()
		rec.Record(rw.Ops...)
	}
	if err := rec.Submit(); err != nil {
		t.Fatal(err)
	}
}

func read64(t *testing.T, x *kernels.Tensor) []float64 {
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

func rows64(xs []float32, d int) [][]float64 {
	out := make([][]float64, len(xs)/d)
	for b := range out {
		out[b] = make([]float64, d)
		for j := range out[b] {
			out[b][j] = float64(xs[b*d+j])
		}
	}
	return out
}

// assertClose checks |got − want| ≤ tol·max(1, |want|) element by element.
func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("%s: element %d: got %.7g, want %.7g (tolerance %.2g relative)", what, i, got[i], want[i], tol)
		}
	}
}

// linearLogR is the float64 reference: log N(z; 0, I) + Σ_i m_i log N(y_i; (Az+b)_i, σ²)
// and its gradient −z + Aᵀ(m ⊙ (y − Az − b))/σ².
func linearLogR(a [][]float64, b []float64, o GaussianObservation, z []float64) (float64, []float64) {
	d := len(z)
	lr := -0.5 * float64(d) * log2Pi
	g := make([]float64, d)
	for i, v := range z {
		lr -= 0.5 * v * v
		g[i] = -v
	}
	s2 := o.Sigma * o.Sigma
	for j := range a {
		x := b[j]
		for i := range z {
			x += a[j][i] * z[i]
		}
		m, r := float64(o.Mask[j]), float64(o.Y[j])-x
		lr += m * (-0.5*math.Log(2*math.Pi*s2) - 0.5*r*r/s2)
		for i := range z {
			g[i] += m * a[j][i] * r / s2
		}
	}
	return lr, g
}

func randomLinear(rng *rand.Rand, D, d int) ([][]float64, []float64) {
	a := make([][]float64, D)
	b := make([]float64, D)
	for j := range a {
		a[j] = make([]float64, d)
		for i := range a[j] {
			a[j][i] = rng.NormFloat64()
		}
		b[j] = rng.NormFloat64()
	}
	return a, b
}

// TestLinearRewardMatchesReference checks log R and ∇log R of the linear prior with a
// partial Gaussian observation against float64, with three call sites (two sharing a
// batch size, one without gradient) recorded into one command buffer.
func TestLinearRewardMatchesReference(t *testing.T) {
	l := testLibrary(t)
	rng := testRNG(t)
	const D, d = 6, 3
	a, b := randomLinear(rng, D, d)
	o := GaussianObservation{Y: make([]float32, D), Mask: []float32{1, 0, 1, 1, 0, 1}, Sigma: 0.7}
	for j := range o.Y {
		o.Y[j] = float32(rng.NormFloat64())
	}
	prior, err := NewLinear(l.Device(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer prior.Release()
	r, err := NewReward(l, prior, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	sites := []*callSite{newCallSite(t, l, rng, 37, d, true), newCallSite(t, l, rng, 37, d, false), newCallSite(t, l, rng, 70, d, true)}
	runSites(t, l, r, sites[:1])
	// The first site's reward is released by now; the shared graph must survive it.
	runSites(t, l, r, sites[1:])
	if len(r.shared) != 2 {
		t.Errorf("%d shared graphs for batch sizes 37 and 70, want 2", len(r.shared))
	}
	for k, s := range sites {
		var wantLR, wantG []float64
		for _, z := range rows64(s.zs, d) {
			lr, g := linearLogR(a, b, o, z)
			wantLR, wantG = append(wantLR, lr), append(wantG, g...)
		}
		assertClose(t, "log R of call site "+strconv.Itoa(k), read64(t, s.lr), wantLR, 1e-4)
		if s.grd != nil {
			assertClose(t, "∇log R of call site "+strconv.Itoa(k), read64(t, s.grd), wantG, 1e-4)
		}
	}
}

// TestLinearGaussianPosteriorFormula checks the closed form against the direct
// expressions: log Z = log N(y_M; b_M, σ²I + A_M A_Mᵀ), and log R(z) − log Z equals the
// log density of N(μ, P⁻¹) at any z.
func TestLinearGaussianPosteriorFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const D, d = 5, 2
	a, b := randomLinear(rng, D, d)
	o := GaussianObservation{Y: []float32{0.3, -1, 0.5, 2, 0}, Mask: []float32{1, 1, 0, 1, 0}, Sigma: 0.4}
	mean, cov, logZ, err := LinearGaussianPosterior(a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	// Direct: S = σ²I + A_M A_Mᵀ over the observed rows {0, 1, 3}.
	M := []int{0, 1, 3}
	S := make([][]float64, len(M))
	r := make([]float64, len(M))
	for p, j := range M {
		S[p] = make([]float64, len(M))
		for q, k := range M {
			for i := 0; i < d; i++ {
				S[p][q] += a[j][i] * a[k][i]
			}
			if p == q {
				S[p][q] += o.Sigma * o.Sigma
			}
		}
		r[p] = float64(o.Y[j]) - b[j]
	}
	want := gaussLogDensity(r, make([]float64, len(M)), S)
	if math.Abs(logZ-want) > 1e-10 {
		t.Fatalf("log Z = %.12f, direct log N(y_M; b_M, σ²I + A_M A_Mᵀ) = %.12f", logZ, want)
	}
	for k := 0; k < 5; k++ {
		z := []float64{rng.NormFloat64(), rng.NormFloat64()}
		lr, _ := linearLogR(a, b, o, z)
		if got, want := lr-logZ, gaussLogDensity(z, mean, cov); math.Abs(got-want) > 1e-10 {
			t.Fatalf("log R(z) − log Z = %.12f but log N(z; μ, Σ) = %.12f", got, want)
		}
	}
}

// gaussLogDensity is log N(x; m, S) for a small S (Gauss–Jordan inverse and determinant).
func gaussLogDensity(x, m []float64, S [][]float64) float64 {
	n := len(x)
	aug := make([][]float64, n)
	for i := range aug {
		aug[i] = append(append([]float64(nil), S[i]...), make([]float64, n)...)
		aug[i][n+i] = 1
	}
	det := 1.0
	for c := 0; c < n; c++ {
		p := c
		for i := c + 1; i < n; i++ {
			if math.Abs(aug[i][c]) > math.Abs(aug[p][c]) {
				p = i
			}
		}
		if p != c {
			aug[p], aug[c] = aug[c], aug[p]
			det = -det
		}
		det *= aug[c][c]
		for j := range aug[c] {
			if j != c {
				aug[c][j] /= aug[c][c]
			}
		}
		aug[c][c] = 1
		for i := 0; i < n; i++ {
			if i != c && aug[i][c] != 0 {
				f := aug[i][c]
				for j := range aug[i] {
					aug[i][j] -= f * aug[c][j]
				}
			}
		}
	}
	q := 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			q += (x[i] - m[i]) * aug[i][n+j] * (x[j] - m[j])
		}
	}
	return -0.5 * (float64(n)*log2Pi + math.Log(det) + q)
}

// ---------------------------------------------------------------------------------------

// tinyVAEClassifier returns a random VAE decoder 3 → 16 → 64 (8×8 images) and a
// classifier of 8×8 images with 5 classes.
func tinyVAEClassifier(t *testing.T, l *kernels.Library) (*priors.VAE, *priors.Classifier) {
	t.Helper()
	v, err := priors.NewVAE(l.Device(), priors.VAEArch{Pixels: 64, Hidden: 16, Latent: 3}, 11)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Release)
	c, err := priors.NewClassifier(l.Device(), priors.ClassifierArch{Side: 8, C1: 3, C2: 4, Hidden: 8, Classes: 5}, 12)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	// PyTorch's initialisation makes both networks nearly linear and flat; larger output
	// weights make images and class scores depend strongly on z, so that the gradient
	// through both networks is large enough to test.
	for _, s := range []struct {
		x *kernels.Tensor
		f float32
	}{{v.DecFC2.W.Value, 6}, {c.FC1.W.Value, 3}, {c.FC2.W.Value, 8}} {
		w, err := s.x.Read()
		if err != nil {
			t.Fatal(err)
		}
		for i := range w {
			w[i] *= s.f
		}
		if err := s.x.Write(w); err != nil {
			t.Fatal(err)
		}
	}
	return v, c
}

func paramValues(t *testing.T, ps ...interface{ Read() ([]float32, error) }) [][]float64 {
	t.Helper()
	var out [][]float64
	for _, p := range ps {
		v, err := p.Read()
		if err != nil {
			t.Fatal(err)
		}
		w := make([]float64, len(v))
		for i, f := range v {
			w[i] = float64(f)
		}
		out = append(out, w)
	}
	return out
}

// dense is y = x·W + b for one row (W [in, out] row-major).
func dense(x, w, b []float64) []float64 {
	out := append([]float64(nil), b...)
	for i, xi := range x {
		for j := range out {
			out[j] += xi * w[i*len(out)+j]
		}
	}
	return out
}

func relu(x []float64) []float64 {
	for i := range x {
		x[i] = math.Max(0, x[i])
	}
	return x
}

// vaeClassRef is the float64 log R(z) of the tiny VAE decoder with the class constraint.
type vaeClassRef struct {
	dec    [][]float64 // fc1 W, b, fc2 W, b
	cls    [][]float64 // conv1 W, b, conv2 W, b, fc1 W, b, fc2 W, b
	g1, g2 kernels.ConvGeom
	label  int
	beta   float64
	cap    float64 // 0: no cap
}

func newVAEClassRef(t *testing.T, v *priors.VAE, c *priors.Classifier, label int, beta float64) *vaeClassRef {
	r := &vaeClassRef{label: label, beta: beta, g1: c.Conv1.Geom, g2: c.Conv2.Geom}
	r.g1.Batch, r.g2.Batch = 1, 1
	r.dec = paramValues(t, v.DecFC1.W.Value, v.DecFC1.B.Value, v.DecFC2.W.Value, v.DecFC2.B.Value)
	r.cls = paramValues(t, c.Conv1.W.Value, c.Conv1.B.Value, c.Conv2.W.Value, c.Conv2.B.Value, c.FC1.W.Value, c.FC1.B.Value, c.FC2.W.Value, c.FC2.B.Value)
	return r
}

func (r *vaeClassRef) image(z []float64) []float64 {
	x := dense(relu(dense(z, r.dec[0], r.dec[1])), r.dec[2], r.dec[3])
	for i := range x {
		x[i] = 1 / (1 + math.Exp(-x[i]))
	}
	return x
}

func (r *vaeClassRef) logR(z []float64) float64 {
	lp := r.logP(z)
	if r.cap > 0 {
		lp = math.Min(lp, math.Log(r.cap))
	}
	lr := r.beta * lp
	for _, v := range z {
		lr -= 0.5 * v * v
	}
	return lr - 0.5*float64(len(z))*log2Pi
}

// logP is the classifier's log p(label | f(z)).
func (r *vaeClassRef) logP(z []float64) float64 {
	x := r.image(z)
	h := relu(kernels.RefConv2D(x, r.cls[0], r.cls[1], r.g1))
	h = relu(kernels.RefConv2D(h, r.cls[2], r.cls[3], r.g2))
	h = relu(dense(h, r.cls[4], r.cls[5]))
	logits := dense(h, r.cls[6], r.cls[7])
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, v)
	}
	s := 0.0
	for _, v := range logits {
		s += math.Exp(v - m)
	}
	return logits[r.label] - m - math.Log(s)
}

// TestVAEClassRewardMatchesReference checks log R of a tiny random VAE with a class
// constraint against a float64 forward pass, and ∇log R against central finite
// differences of that reference; without a cap, and with a cap τ between the rows'
// class probabilities, so that some rows sit on it (log r = β log τ, no gradient).
func TestVAEClassRewardMatchesReference(t *testing.T) {
	l := testLibrary(t)
	rng := testRNG(t)
	v, c := tinyVAEClassifier(t, l)
	const label, beta, d = 2, 1.7, 3
	sites := []*callSite{newCallSite(t, l, rng, 13, d, true), newCallSite(t, l, rng, 13, d, false)}
	ref := newVAEClassRef(t, v, c, label, beta)
	var logPs []float64
	for _, s := range sites {
		for _, z := range rows64(s.zs, d) {
			logPs = append(logPs, ref.logP(z))
		}
	}
	sort.Float64s(logPs)
	n := len(logPs)
	capAt := math.Exp((logPs[n/2-1] + logPs[n/2]) / 2) // midway: no row at the kink
	for _, cap := range []float64{0, capAt} {
		ref.cap = cap
		r, err := NewReward(l, v, Class{Classifier: c, Label: label, Beta: beta, Cap: cap})
		if err != nil {
			t.Fatal(err)
		}
		runSites(t, l, r, sites)
		r.Release()
		what := fmt.Sprintf("cap %.4g: ", cap)
		capped := 0
		for k, s := range sites {
			var wantLR, wantG []float64
			for _, z := range rows64(s.zs, d) {
				if cap > 0 && ref.logP(z) > math.Log(cap) {
					capped++
				}
				wantLR = append(wantLR, ref.logR(z))
				const h = 1e-5
				for i := range z {
					zp, zm := append([]float64(nil), z...), append([]float64(nil), z...)
					zp[i] += h
					zm[i] -= h
					wantG = append(wantG, (ref.logR(zp)-ref.logR(zm))/(2*h))
				}
			}
			assertClose(t, what+"log R of call site "+strconv.Itoa(k), read64(t, s.lr), wantLR, 1e-4)
			if s.grd != nil {
				assertClose(t, what+"∇log R (finite differences)", read64(t, s.grd), wantG, 1e-3)
				// The test means something only if the classifier's part J_fᵀ∇_x log r of the
				// gradient is well above the tolerance.
				part := 0.0
				for i, g := range wantG {
					part = math.Max(part, math.Abs(g+float64(s.zs[i])))
				}
				t.Logf("%slargest |J_fᵀ ∇_x log r| component: %.4f", what, part)
				if part < 0.02 {
					t.Fatalf("%sthe constraint's gradient is only %.2g: too weak to test", what, part)
				}
			}
		}
		if cap > 0 && (capped == 0 || capped == n) {
			t.Fatalf("%s%d of %d rows capped; the test wants both kinds", what, capped, n)
		}
	}
}

// TestVAEObservationReward checks the inpainting constraint through the tiny VAE: log R
// against float64 and ∇log R against finite differences.
func TestVAEObservationReward(t *testing.T) {
	l := testLibrary(t)
	rng := testRNG(t)
	v, c := tinyVAEClassifier(t, l)
	o := GaussianObservation{Y: make([]float32, 64), Mask: make([]float32, 64), Sigma: 0.2}
	for i := range o.Y {
		o.Y[i] = float32(rng.Float64())
		if i%8 < 4 { // the left half of the image is observed
			o.Mask[i] = 1
		}
	}
	r, err := NewReward(l, v, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	s := newCallSite(t, l, rng, 9, 3, true)
	runSites(t, l, r, []*callSite{s})
	ref := newVAEClassRef(t, v, c, 0, 0)
	logR := func(z []float64) float64 {
		x := ref.image(z)
		y64, m64 := make([]float64, 64), make([]float64, 64)
		for i := range y64 {
			y64[i], m64[i] = float64(o.Y[i]), float64(o.Mask[i])
		}
		lr, _ := kernels.RefGaussianObservation(x, y64, m64, o.Sigma)
		q := 0.0
		for _, v := range z {
			q += v * v
		}
		return lr[0] - 0.5*q - 1.5*log2Pi
	}
	var wantLR, wantG []float64
	for _, z := range rows64(s.zs, 3) {
		wantLR = append(wantLR, logR(z))
		for i := range z {
			zp, zm := append([]float64(nil), z...), append([]float64(nil), z...)
			zp[i] += 1e-5
			zm[i] -= 1e-5
			wantG = append(wantG, (logR(zp)-logR(zm))/2e-5)
		}
	}
	assertClose(t, "log R", read64(t, s.lr), wantLR, 1e-4)
	assertClose(t, "∇log R (finite differences)", read64(t, s.grd), wantG, 1e-3)
}

// TestConstraintChecks names what is wrong.
func TestConstraintChecks(t *testing.T) {
	l := testLibrary(t)
	v, c := tinyVAEClassifier(t, l)
	for _, tc := range []struct {
		c    Constraint
		want string
	}{
		{Class{Classifier: c, Label: 5, Beta: 1}, "class 5 is out of range: the classifier has classes 0..4"},
		{Class{Classifier: c, Label: 1, Beta: 0}, "β = 0"},
		{Class{Classifier: c, Label: 1, Beta: 1, Cap: 1.2}, "cap τ = 1.2 (want a probability in (0, 1]"},
		{GaussianObservation{Y: make([]float32, 63), Mask: make([]float32, 63), Sigma: 1}, "observation of 63 values with a mask of 63, but the prior makes rows of 64"},
		{GaussianObservation{Y: make([]float32, 64), Mask: make([]float32, 64), Sigma: 1}, "observes no coordinate"},
	} {
		_, err := NewReward(l, v, tc.c)
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("NewReward(%T): error %v, want one containing %q", tc.c, err, tc.want)
		}
	}
	big, err := priors.NewClassifier(l.Device(), priors.DefaultClassifierArch, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Release()
	if _, err := NewReward(l, v, Class{Classifier: big, Label: 1, Beta: 1}); err == nil || !contains(err.Error(), "reads 28×28 grayscale images (784 values) but the prior makes rows of 64") {
		t.Errorf("classifier of the wrong size: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
