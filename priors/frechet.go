package priors

import (
	"fmt"
	"math"
	"osds/kernels"

	"gonum.org/v1/gonum/mat"
)

// Moments are the mean and covariance of a set of feature vectors.
type Moments struct {
	Mean []float64
	Cov  *mat.SymDense
	N    int
}

// FeatureMoments computes the mean and the unbiased covariance of n rows of dim features.
func FeatureMoments(feats []float32, n, dim int) (Moments, error) {
	if n < 2 || dim < 1 || len(feats) != n*dim {
		return Moments{}, fmt.Errorf("priors: feature moments of %d values as %d rows of %d (want ≥ 2 rows)", len(feats), n, dim)
	}
	mean := make([]float64, dim)
	for r := 0; r < n; r++ {
		for j := 0; j < dim; j++ {
			mean[j] += float64(feats[r*dim+j])
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	centred := mat.NewDense(n, dim, nil)
	for r := 0; r < n; r++ {
		for j := 0; j < dim; j++ {
			centred.Set(r, j, float64(feats[r*dim+j])-mean[j])
		}
	}
	cov := mat.NewSymDense(dim, nil)
	cov.SymOuterK(1/float64(n-1), centred.T())
	return Moments{Mean: mean, Cov: cov, N: n}, nil
}

// FrechetDistance is the Fréchet (2-Wasserstein) distance between the Gaussians fitted to
// two feature sets:
//
//	FD = ‖μ₁ − μ₂‖² + tr(C₁ + C₂ − 2 (C₁C₂)^½)
//
// tr((C₁C₂)^½) is computed as Σ √λᵢ over the eigenvalues λᵢ of the symmetric positive
// semi-definite C₁^½ C₂ C₁^½, which has the same spectrum as C₁C₂; tiny negative
// eigenvalues from rounding count as 0.
func FrechetDistance(a, b Moments) (float64, error) {
	if len(a.Mean) != len(b.Mean) {
		return 0, fmt.Errorf("priors: Fréchet distance between %d- and %d-dimensional features", len(a.Mean), len(b.Mean))
	}
	d := 0.0
	for j := range a.Mean {
		diff := a.Mean[j] - b.Mean[j]
		d += diff * diff
	}
	sqrtA, err := symSqrt(a.Cov)
	if err != nil {
		return 0, err
	}
	var m mat.Dense
	m.Mul(sqrtA, b.Cov)
	m.Mul(&m, sqrtA)
	n := len(a.Mean)
	sym := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			sym.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(sym, false) {
		return 0, fmt.Errorf("priors: Fréchet distance: eigendecomposition failed")
	}
	trSqrt := 0.0
	for _, l := range eig.Values(nil) {
		trSqrt += math.Sqrt(math.Max(l, 0))
	}
	return d + mat.Trace(a.Cov) + mat.Trace(b.Cov) - 2*trSqrt, nil
}

// symSqrt is the principal square root of a symmetric positive semi-definite matrix.
func symSqrt(c *mat.SymDense) (*mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(c, true) {
		return nil, fmt.Errorf("priors: square root of a covariance: eigendecomposition failed")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	n := len(vals)
	scaled := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			scaled.Set(i, j, vecs.At(i, j)*math.Sqrt(math.Max(vals[j], 0)))
		}
	}
	var out mat.Dense
	out.Mul(scaled, vecs.T())
	return &out, nil
}

// FrechetFeatureLayer names the features FrechetToTest compares: the ReLU output of the
// shipped classifier's first linear layer (128 features), "<dataset>-classifier".
const FrechetFeatureLayer = "relu(cls.fc1) of the shipped <dataset>-classifier, 128 features"

// FrechetToTest is the Fréchet distance, in the feature space of the shipped classifier
// for test's dataset, between n images xs (rows of pixels) and the test images.
func FrechetToTest(l *kernels.Library, xs []float32, n int, test *Dataset) (float64, error) {
	m, _, err := LoadShipped(l.Device(), test.Name+"-classifier")
	if err != nil {
		return 0, err
	}
	defer m.Release()
	c, ok := m.(*Classifier)
	if !ok {
		return 0, fmt.Errorf("priors: shipped %s-classifier is a %s", test.Name, m.Kind())
	}
	fa, err := FeaturesOf(l, c, xs)
	if err != nil {
		return 0, err
	}
	fb, err := FeaturesOf(l, c, test.Images)
	if err != nil {
		return 0, err
	}
	ma, err := FeatureMoments(fa, n, c.Arch.Hidden)
	if err != nil {
		return 0, err
	}
	mb, err := FeatureMoments(fb, test.N, c.Arch.Hidden)
	if err != nil {
		return 0, err
	}
	return FrechetDistance(ma, mb)
}

// PriorFrechet draws n samples of p (seed 1) and returns FrechetToTest of them.
func PriorFrechet(l *kernels.Library, p Prior, n int, test *Dataset) (float64, error) {
	xs, err := Sample(l, p, n, 1)
	if err != nil {
		return 0, err
	}
	return FrechetToTest(l, xs, n, test)
}

// withFrechet adds "frechet_10k" (PriorFrechet over 10,000 samples) to a prior's metrics
// when a classifier for its dataset ships; without one the metric is left out.
func withFrechet(l *kernels.Library, p Prior, test *Dataset, metrics map[string]float64) (map[string]float64, error) {
	man, err := ShippedManifest()
	if err != nil {
		return nil, err
	}
	if _, err := man.Find(test.Name + "-classifier"); err != nil {
		return metrics, nil
	}
	fd, err := PriorFrechet(l, p, 10000, test)
	if err != nil {
		return nil, err
	}
	metrics["frechet_10k"] = fd
	return metrics, nil
}
