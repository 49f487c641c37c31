package posterior

// Metrics of posterior samples x = f(z), judged by models and data the sampler never
// trained against where possible:
//
//   - class constraint with label y:
//     accuracy        share of samples that the INDEPENDENT classifier (a different
//                     network and seed from the constraint's, "<dataset>-classifier-indep")
//                     assigns to y;
//     class_entropy   entropy (nats) of that classifier's predicted labels over the samples;
//     diversity       mean pairwise L2 distance between samples (pixels in [0, 1]);
//     real_*          the same three on the real test images of class y, and
//     diversity_ratio = diversity / real_diversity;
//     frechet         Fréchet distance to the real test images of class y in the feature
//                     space of the shipped "<dataset>-classifier" (FrechetLayer);
//   - inpainting (a Gaussian observation of test image i):
//     observed_rmse   RMSE on the observed pixels;
//     free_rmse       RMSE on the unobserved pixels against the held-out test image (one of
//                     many plausible completions, so a loose reference);
//     diversity       as above, and accuracy = share the independent classifier assigns
//                     to test image i's true label;
//   - other constraints (user WGSL): class_entropy and diversity only;
//   - always: mean_log_r = mean log r(f(z), y); z_sq = mean ‖z‖²/d (1 under the prior: a
//     diagnostic of samplers that contract towards z = 0); for osds samplers elbo and iw_log_z
//     (train.EstimateLogZ of on-policy log weights), set by the caller.
//
// Pairwise distances use at most MaxPairwise samples (the first ones).

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"osds/kernels"
	"osds/nn/onnx"
	"osds/priors"
)

// MaxPairwise bounds the samples that enter the mean pairwise distance (O(n²·D)).
const MaxPairwise = 2000

// FrechetLayer names the Fréchet feature space.
const FrechetLayer = priors.FrechetFeatureLayer

// Metrics are the measures of one set of samples; NaN means "does not apply" (Map drops
// it).
type Metrics struct {
	N                int
	Accuracy         float64
	ClassEntropy     float64
	Diversity        float64
	RealAccuracy     float64
	RealClassEntropy float64
	RealDiversity    float64
	DiversityRatio   float64
	Frechet          float64
	ObservedRMSE     float64
	FreeRMSE         float64
	MeanLogR         float64
	ZSq              float64
	ELBO, IWLogZ     float64
}

func nanMetrics(n int) Metrics {
	v := math.NaN()
	return Metrics{N: n, Accuracy: v, ClassEntropy: v, Diversity: v, RealAccuracy: v, RealClassEntropy: v,
		RealDiversity: v, DiversityRatio: v, Frechet: v, ObservedRMSE: v, FreeRMSE: v, MeanLogR: v, ZSq: v, ELBO: v, IWLogZ: v}
}

// Map returns the metrics that apply, by their JSON names.
func (m Metrics) Map() map[string]float64 {
	out := map[string]float64{"n": float64(m.N)}
	for k, v := range map[string]float64{
		"accuracy": m.Accuracy, "class_entropy": m.ClassEntropy, "diversity": m.Diversity,
		"real_accuracy": m.RealAccuracy, "real_class_entropy": m.RealClassEntropy, "real_diversity": m.RealDiversity,
		"diversity_ratio": m.DiversityRatio, "frechet": m.Frechet, "observed_rmse": m.ObservedRMSE,
		"free_rmse": m.FreeRMSE, "mean_log_r": m.MeanLogR, "z_sq": m.ZSq, "elbo": m.ELBO, "iw_log_z": m.IWLogZ,
	} {
		if !math.IsNaN(v) {
			out[k] = v
		}
	}
	return out
}

// MetricNames are the keys of Map in table order.
var MetricNames = []string{"accuracy", "class_entropy", "diversity", "diversity_ratio", "frechet",
	"observed_rmse", "free_rmse", "mean_log_r", "z_sq", "elbo", "iw_log_z",
	"real_accuracy", "real_class_entropy", "real_diversity"}

// MeanPairwiseL2 is the mean Euclidean distance over the pairs of the first
// min(n, MaxPairwise) rows of xs (rows of D values); 0 for fewer than 2 rows.
func MeanPairwiseL2(xs []float32, n, D int) float64 {
	n = min(n, MaxPairwise)
	if n < 2 {
		return 0
	}
	sum := 0.0
	for i := 0; i < n; i++ {
		a := xs[i*D : (i+1)*D]
		for j := i + 1; j < n; j++ {
			b := xs[j*D : (j+1)*D]
			s := float32(0)
			for k := range a {
				d := a[k] - b[k]
				s += d * d
			}
			sum += math.Sqrt(float64(s))
		}
	}
	return sum / float64(n*(n-1)/2)
}

// LabelEntropy is the entropy (nats) of the empirical distribution of labels.
func LabelEntropy(labels []uint32) float64 {
	counts := map[uint32]int{}
	for _, l := range labels {
		counts[l]++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(len(labels))
		h -= p * math.Log(p)
	}
	return h
}

// LabelShare is the share of labels equal to want.
func LabelShare(labels []uint32, want int) float64 {
	hit := 0
	for _, l := range labels {
		if int(l) == want {
			hit++
		}
	}
	return float64(hit) / float64(len(labels))
}

// ClassImages returns the images of ds with label y and their count.
func ClassImages(ds *priors.Dataset, y int) ([]float32, int) {
	D := ds.Height * ds.Wd
	var out []float32
	n := 0
	for i, l := range ds.Labels {
		if int(l) == y {
			out = append(out, ds.Images[i*D:(i+1)*D]...)
			n++
		}
	}
	return out, n
}

// Judge measures samples of one Setup (see the package comment above for the metrics).
type Judge struct {
	lib   *kernels.Library
	setup *Setup
	ev    *Evaluator
	indep *priors.Classifier // nil when the judge is an imported model (indepONNX)
	// indepONNX is an imported classifier as the judge (a .onnx IndepRef).
	indepONNX *onnx.Layer
	features  *priors.Classifier
	// What samples are compared with: for a class constraint the real test images of the
	// label (their moments and measures); for inpainting the held-out test image.
	label      int
	refMoments priors.Moments
	real       Metrics
	truth      []float32
	// train holds the class's training images (trainD pixels each) once loaded.
	train  []float32
	trainD int
	// IndepRef and FeaturesRef name the judging models.
	IndepRef, FeaturesRef string
}

// NewJudge loads the independent classifier (indepRef; "" is "<dataset>-classifier-indep"),
// the Fréchet feature classifier ("<dataset>-classifier") and the test images of the
// setup's dataset, and measures the real images of the class once.
func NewJudge(l *kernels.Library, s *Setup, indepRef string) (*Judge, error) {
	if s.Dataset == "" {
		return nil, fmt.Errorf("posterior: judge: prior %s names no dataset to compare with", s.PriorRef)
	}
	if indepRef == "" {
		indepRef = s.Dataset + "-classifier-indep"
	}
	j := &Judge{lib: l, setup: s, IndepRef: indepRef, FeaturesRef: s.Dataset + "-classifier", real: nanMetrics(0)}
	fail := func(err error) (*Judge, error) {
		j.Release()
		return nil, fmt.Errorf("posterior: judge: %w", err)
	}
	var err error
	if j.ev, err = NewEvaluator(l, s.Reward.Func(), s.Reward.Dim(), 500); err != nil {
		return fail(err)
	}
	loadCls := func(ref string) (*priors.Classifier, error) {
		m, _, err := loadModel(l.Device(), "classifier", ref)
		if err != nil {
			return nil, err
		}
		c, ok := m.(*priors.Classifier)
		if !ok {
			m.Release()
			return nil, fmt.Errorf("%q is a %s, not a classifier", ref, m.Kind())
		}
		return c, nil
	}
	if priors.IsONNXRef(indepRef) {
		m, err := onnx.Load(strings.SplitN(indepRef, ",", 2)[0])
		if err != nil {
			return fail(err)
		}
		if j.indepONNX, err = onnx.NewLayer(m, "", nil); err != nil {
			return fail(err)
		}
		h, w, c := s.Prior.Image()
		if _, err := j.indepONNX.OutWidth(h * w * c); err != nil {
			return fail(fmt.Errorf("the judge %s: %w", indepRef, err))
		}
	} else if j.indep, err = loadCls(indepRef); err != nil {
		return fail(err)
	}
	ds, err := priors.LoadDataset(s.Dataset, "test")
	if err != nil {
		return fail(err)
	}
	D := ds.Height * ds.Wd
	switch c := s.Constraint.(type) {
	case Class:
		j.label = c.Label
		if j.features, err = loadCls(j.FeaturesRef); err != nil {
			return fail(err)
		}
		xs, n := ClassImages(ds, c.Label)
		if n < 2 {
			return fail(fmt.Errorf("the %s test set has %d images of class %d", s.Dataset, n, c.Label))
		}
		f, err := priors.FeaturesOf(l, j.features, xs)
		if err != nil {
			return fail(err)
		}
		if j.refMoments, err = priors.FeatureMoments(f, n, j.features.Arch.Hidden); err != nil {
			return fail(err)
		}
		pred, err := j.predict(xs, n)
		if err != nil {
			return fail(err)
		}
		j.real.N = n
		j.real.Accuracy = LabelShare(pred, c.Label)
		j.real.ClassEntropy = LabelEntropy(pred)
		j.real.Diversity = MeanPairwiseL2(xs, n, D)
	case GaussianObservation:
		i := s.Spec.Image
		j.label = int(ds.Labels[i])
		j.truth = append([]float32(nil), ds.Images[i*D:(i+1)*D]...)
	case *ONNX:
		// An imported classifier's label (−1 for a reward model): the independent
		// classifier's accuracy on it, and the generic measures.
		j.label = c.Label
	default:
		// Other constraints (user WGSL): the generic measures only.
		j.label = -1
	}
	return j, nil
}

// predict is the independent classifier's class of each of the n images xs.
func (j *Judge) predict(xs []float32, n int) ([]uint32, error) {
	if j.indepONNX != nil {
		return onnxPredict(j.lib, j.indepONNX, xs, n)
	}
	return priors.Predict(j.lib, j.indep, xs)
}

// Release frees the judge's models and evaluator (not the setup).
func (j *Judge) Release() {
	if j == nil {
		return
	}
	j.ev.Release()
	if j.indep != nil {
		j.indep.Release()
	}
	if j.features != nil {
		j.features.Release()
	}
}

// Real returns the class constraint's reference measures of the real test images
// (accuracy, class entropy, diversity in the Accuracy, ClassEntropy and Diversity fields).
func (j *Judge) Real() Metrics { return j.real }

// MeasureTrainImages measures the first n training images of the class (class
// constraints only): the score of a perfect sampler of the data's class-conditional at
// the same sample size, the floor of the Fréchet distance (which is biased upwards at
// finite n) and the reference for accuracy and diversity.
func (j *Judge) MeasureTrainImages(n int) (Metrics, error) {
	xs, n, err := j.trainImages(n)
	if err != nil {
		return Metrics{}, err
	}
	return j.MeasureImages(xs, n, nil)
}

// MeasureTrainReconstructions measures the VAE prior's reconstructions dec(μ(x)) of the
// same n training images as MeasureTrainImages: a perfect sampler of the class's data as
// this VAE renders it. ok is false when the prior is not a VAE.
func (j *Judge) MeasureTrainReconstructions(n int) (m Metrics, ok bool, err error) {
	v, isVAE := j.setup.Prior.(*priors.VAE)
	if _, isClass := j.setup.Constraint.(Class); !isVAE || !isClass {
		return Metrics{}, false, nil
	}
	xs, n, err := j.trainImages(n)
	if err != nil {
		return Metrics{}, false, err
	}
	rec, err := v.Reconstruct(j.lib, xs, n)
	if err != nil {
		return Metrics{}, false, err
	}
	m, err = j.MeasureImages(rec, n, nil)
	return m, err == nil, err
}

// trainImages returns the first min(n, available) training images of the class, loading
// the training set once per judge.
func (j *Judge) trainImages(n int) ([]float32, int, error) {
	if _, ok := j.setup.Constraint.(Class); !ok {
		return nil, 0, fmt.Errorf("posterior: judge: training-image reference only for class constraints")
	}
	if j.train == nil {
		ds, err := priors.LoadDataset(j.setup.Dataset, "train")
		if err != nil {
			return nil, 0, err
		}
		j.train, _ = ClassImages(ds, j.label)
		j.trainD = ds.Height * ds.Wd
	}
	n = min(n, len(j.train)/j.trainD)
	return j.train[:n*j.trainD], n, nil
}

// Measure pushes zs through the prior and measures them (ELBO and IW log Ẑ stay NaN).
// The log r evaluations are not charged to any method.
func (j *Judge) Measure(zs [][]float64) (Metrics, []float32, error) {
	xs, err := Decode(j.lib, j.setup.Prior, zs)
	if err != nil {
		return Metrics{}, nil, err
	}
	lr, err := j.ev.LogR(zs)
	if err != nil {
		return Metrics{}, nil, err
	}
	logr := make([]float64, len(zs))
	for i, z := range zs {
		logr[i] = lr[i] - LogNormal(z)
	}
	m, err := j.MeasureImages(xs, len(zs), logr)
	sq := 0.0
	for _, z := range zs {
		for _, v := range z {
			sq += v * v
		}
	}
	m.ZSq = sq / float64(len(zs)*len(zs[0]))
	return m, xs, err
}

// MeasureImages measures n images xs (rows of pixels) with their log r (nil: not
// measured).
func (j *Judge) MeasureImages(xs []float32, n int, logr []float64) (Metrics, error) {
	m := nanMetrics(n)
	if n < 2 || len(xs)%n != 0 {
		return m, fmt.Errorf("posterior: judge: %d values as %d images (want ≥ 2)", len(xs), n)
	}
	D := len(xs) / n
	if logr != nil {
		s, k := 0.0, 0
		for _, v := range logr {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				s += v
				k++
			}
		}
		m.MeanLogR = s / float64(k)
	}
	m.Diversity = MeanPairwiseL2(xs, n, D)
	pred, err := j.predict(xs, n)
	if err != nil {
		return m, err
	}
	if j.label >= 0 {
		m.Accuracy = LabelShare(pred, j.label)
	}
	m.ClassEntropy = LabelEntropy(pred)
	switch c := j.setup.Constraint.(type) {
	case Class:
		m.RealAccuracy, m.RealClassEntropy, m.RealDiversity = j.real.Accuracy, j.real.ClassEntropy, j.real.Diversity
		m.DiversityRatio = m.Diversity / j.real.Diversity
		f, err := priors.FeaturesOf(j.lib, j.features, xs)
		if err != nil {
			return m, err
		}
		mo, err := priors.FeatureMoments(f, n, j.features.Arch.Hidden)
		if err != nil {
			return m, err
		}
		if m.Frechet, err = priors.FrechetDistance(mo, j.refMoments); err != nil {
			return m, err
		}
	case GaussianObservation:
		var so, co, sf, cf float64
		for b := 0; b < n; b++ {
			for i := 0; i < D; i++ {
				w := float64(c.Mask[i])
				r := float64(xs[b*D+i] - c.Y[i])
				so += w * r * r
				co += w
				rf := float64(xs[b*D+i] - j.truth[i])
				sf += (1 - math.Min(w, 1)) * rf * rf
				cf += 1 - math.Min(w, 1)
			}
		}
		m.ObservedRMSE = math.Sqrt(so / co)
		if cf > 0 {
			m.FreeRMSE = math.Sqrt(sf / cf)
		}
	}
	return m, nil
}

// SortedKeys returns the keys of a metric map in MetricNames order, then the rest sorted.
func SortedKeys(m map[string]float64) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range MetricNames {
		if _, ok := m[k]; ok {
			out = append(out, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
