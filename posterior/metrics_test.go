package posterior

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"osds/priors"
)

func TestMeanPairwiseL2KnownAnswers(t *testing.T) {
	// Constant samples: no diversity.
	xs := make([]float32, 5*3)
	for i := range xs {
		xs[i] = 0.7
	}
	if d := MeanPairwiseL2(xs, 5, 3); d != 0 {
		t.Errorf("diversity of constant samples = %v, want 0", d)
	}
	// Three points with pairwise distances 5, 5 and 6 (3-4-5 triangles).
	pts := []float32{0, 0, 3, 4, -3, 4}
	if d := MeanPairwiseL2(pts, 3, 2); math.Abs(d-16.0/3) > 1e-6 {
		t.Errorf("mean pairwise distance = %v, want 16/3", d)
	}
	if d := MeanPairwiseL2(pts, 1, 2); d != 0 {
		t.Errorf("one sample: %v, want 0", d)
	}
}

func TestLabelEntropyAndShare(t *testing.T) {
	if h := LabelEntropy([]uint32{7, 7, 7, 7}); h != 0 {
		t.Errorf("entropy of one class = %v, want 0", h)
	}
	var all []uint32
	for c := uint32(0); c < 10; c++ {
		all = append(all, c, c, c)
	}
	if h := LabelEntropy(all); math.Abs(h-math.Log(10)) > 1e-12 {
		t.Errorf("entropy of 10 equal classes = %v, want log 10", h)
	}
	if h := LabelEntropy([]uint32{1, 2, 2, 2}); math.Abs(h-(-0.25*math.Log(0.25)-0.75*math.Log(0.75))) > 1e-12 {
		t.Errorf("entropy of (1/4, 3/4) = %v", h)
	}
	if s := LabelShare([]uint32{3, 1, 3, 3}, 3); s != 0.75 {
		t.Errorf("share = %v, want 0.75", s)
	}
}

// TestFrechetKnownAnswers: identical feature sets are at distance 0; a set shifted by a
// vector s is at ‖s‖² (equal covariances).
func TestFrechetKnownAnswers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, dim = 500, 12
	a := make([]float32, n*dim)
	b := make([]float32, n*dim)
	shift := 0.0
	for j := 0; j < dim; j++ {
		shift += float64(j) * 0.1 * float64(j) * 0.1
	}
	for i := range a {
		a[i] = float32(rng.NormFloat64() * (1 + float64(i%dim)/4))
		b[i] = a[i] + float32(i%dim)*0.1
	}
	ma, err := priors.FeatureMoments(a, n, dim)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := priors.FeatureMoments(b, n, dim)
	if fd, err := priors.FrechetDistance(ma, ma); err != nil || math.Abs(fd) > 1e-6 {
		t.Errorf("FD of identical sets = %v (%v), want 0", fd, err)
	}
	if fd, _ := priors.FrechetDistance(ma, mb); math.Abs(fd-shift) > 1e-3 {
		t.Errorf("FD of a shifted set = %v, want ‖s‖² = %v", fd, shift)
	}
}

// TestJudgeClassOnRealImages: the real test images of class 7 judged against themselves
// are at Fréchet distance 0 with diversity ratio 1 and the real accuracy (≥ 95%); prior
// samples (unconstrained) score far lower accuracy and a large distance.
func TestJudgeClassOnRealImages(t *testing.T) {
	l := testLibrary(t)
	s, err := Open(l, "mnist-vae", Spec{Kind: "class", Label: 7, Beta: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	start := time.Now()
	j, err := NewJudge(l, s, "")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Release()
	real := j.Real()
	t.Logf("judge built in %v: %d real 7s, accuracy %.4f, entropy %.4f, diversity %.3f", time.Since(start).Round(time.Millisecond), real.N, real.Accuracy, real.ClassEntropy, real.Diversity)
	if real.Accuracy < 0.95 || real.ClassEntropy > 0.3 || real.Diversity < 5 {
		t.Errorf("real class-7 measures %+v look wrong", real)
	}
	ds, err := priors.LoadDataset("mnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	xs, n := ClassImages(ds, 7)
	m, err := j.MeasureImages(xs, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.Frechet) > 1e-3 || math.Abs(m.DiversityRatio-1) > 1e-9 || m.Accuracy != real.Accuracy {
		t.Errorf("real images against themselves: FD %v, diversity ratio %v, accuracy %v (want 0, 1, %v)", m.Frechet, m.DiversityRatio, m.Accuracy, real.Accuracy)
	}
	tm, err := j.MeasureTrainImages(500)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("500 training 7s: %v", tm.Map())
	if tm.N != 500 || tm.Accuracy < 0.95 || tm.Frechet > 30 || math.Abs(tm.DiversityRatio-1) > 0.1 {
		t.Errorf("training images of class 7 judged unlike the test images: %v", tm.Map())
	}
	rng := rand.New(rand.NewPCG(1, 1))
	zs := priorStates(rng, 300, s.Reward.Dim())
	pm, _, err := j.Measure(zs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prior samples: %v", pm.Map())
	if pm.Accuracy > 0.4 || pm.Frechet < 10 || pm.ClassEntropy < 1.5 || math.IsNaN(pm.MeanLogR) || pm.MeanLogR > -1 || math.Abs(pm.ZSq-1) > 0.1 {
		t.Errorf("prior samples judged as class-7 posterior samples: %v", pm.Map())
	}
}

// TestJudgeInpainting: for an observation of the top half of test image 0, the observed
// RMSE of Measure agrees with Setup.Score, and images equal to the test image score
// observed and free RMSE 0.
func TestJudgeInpainting(t *testing.T) {
	l := testLibrary(t)
	mask := filepath.Join(t.TempDir(), "top.png")
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 0; y < 14; y++ {
		for x := 0; x < 28; x++ {
			img.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	f, err := os.Create(mask)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err := Open(l, "mnist-vae", Spec{Kind: "inpaint", Mask: mask, Sigma: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	j, err := NewJudge(l, s, "")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Release()
	zs := priorStates(rand.New(rand.NewPCG(2, 2)), 50, s.Reward.Dim())
	m, xs, err := j.Measure(zs)
	if err != nil {
		t.Fatal(err)
	}
	score, err := s.Score(l, xs, len(zs))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.ObservedRMSE-score["observed_rmse"]) > 1e-9 || math.IsNaN(m.FreeRMSE) || m.Diversity <= 0 || !math.IsNaN(m.Frechet) {
		t.Errorf("inpainting metrics %v (Score says observed RMSE %v)", m.Map(), score["observed_rmse"])
	}
	truth := append(append([]float32(nil), j.truth...), j.truth...)
	m2, err := j.MeasureImages(truth, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m2.ObservedRMSE != 0 || m2.FreeRMSE != 0 || m2.Diversity != 0 || m2.Accuracy != 1 {
		t.Errorf("the test image itself: %v, want RMSEs 0, diversity 0, accuracy 1", m2.Map())
	}
}
