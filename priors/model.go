package priors

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// Model is a network of this package with parameters on the GPU: a prior (VAE, GAN,
// flow) or a classifier.
type Model interface {
	// Kind is "vae", "gan", "flow" or "classifier".
	Kind() string
	// Architecture is the architecture, stored as JSON in the weight file's metadata.
	Architecture() any
	// Params lists every parameter, in a fixed order.
	Params() []*nn.Param
	// Release frees the parameters.
	Release()
}

// Prior is a generative model x = f(z), z ~ N(0, I_LatentDim), on the GPU.
type Prior interface {
	Model
	// LatentDim is the dimension of z.
	LatentDim() int
	// Image is the shape of x: height, width and channels (NHWC rows of H·W·C).
	Image() (h, w, c int)
	// Generator is f as a network from z [B, LatentDim] to x [B, H·W·C]; building it
	// with NetOptions{Backward, InputGrad} gives the vector–Jacobian product
	// ∂L/∂z = (∂f/∂z)ᵀ·∂L/∂x without touching the parameter gradients.
	Generator() *nn.Sequential
}

// Metadata keys of a model file (safetensors metadata, all strings).
const (
	MetaKind    = "osds.kind"
	MetaArch    = "osds.arch"
	MetaDataset = "osds.dataset"
)

// KindSpec is what a model kind registers (from an init function in its own file): how
// to build it from an architecture, train it, and measure it.
type KindSpec struct {
	// Build makes a model with fresh parameters from its architecture JSON ("" or "{}"
	// for the kind's default architecture) and an initialisation seed.
	Build func(d *gpu.Device, arch []byte, seed uint64) (Model, error)
	// Train fits a model built by Build to s.Train.
	Train func(l *kernels.Library, m Model, s TrainSpec) error
	// Eval measures a model on a test set (e.g. "test_elbo", "test_accuracy").
	Eval func(l *kernels.Library, m Model, test *Dataset) (map[string]float64, error)
	// DefaultEpochs is the number of passes `osds prior train` makes by default.
	DefaultEpochs int
}

// TrainSpec is one training run of a model.
type TrainSpec struct {
	Train  *Dataset
	Epochs int
	Batch  int
	LR     float64
	Seed   uint64
	// Logf reports progress (nil: silent).
	Logf func(format string, args ...any)
	// EpochDone runs after every epoch (checkpoints, evaluations); an error stops
	// training. Nil: nothing.
	EpochDone func(epoch int) error
}

func (s TrainSpec) check(kind string) error {
	if s.Train == nil || s.Epochs < 1 || s.Batch < 1 || !(s.LR > 0) {
		return fmt.Errorf("priors: %s training needs a dataset, epochs ≥ 1, batch ≥ 1 and a learning rate > 0 (got %d epochs, batch %d, lr %v)", kind, s.Epochs, s.Batch, s.LR)
	}
	return nil
}

func (s TrainSpec) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// kinds holds the registered model kinds.
var kinds = map[string]KindSpec{}

// Register adds a model kind; each kind's file calls it from init.
func Register(kind string, k KindSpec) {
	if _, dup := kinds[kind]; dup {
		panic("priors: kind " + kind + " registered twice")
	}
	kinds[kind] = k
}

// LookupKind returns the registered kind, or an error listing the known ones.
func LookupKind(kind string) (KindSpec, error) {
	k, ok := kinds[kind]
	if !ok {
		return KindSpec{}, fmt.Errorf("unknown model kind %q (want one of %s)", kind, strings.Join(Kinds(), ", "))
	}
	return k, nil
}

// strictJSON decodes data into v, rejecting unknown fields; empty data leaves v alone.
func strictJSON(data []byte, v any) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Kinds lists the model kinds that files may hold.
func Kinds() []string {
	var ks []string
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// SaveModel writes m's parameters and architecture to path (atomically), with extra
// metadata (e.g. the dataset and training command).
func SaveModel(path string, m Model, extra map[string]string) error {
	ts, err := nn.Snapshot(m.Params())
	if err != nil {
		return fmt.Errorf("priors: saving %s: %w", path, err)
	}
	arch, err := json.Marshal(m.Architecture())
	if err != nil {
		return err
	}
	md := map[string]string{MetaKind: m.Kind(), MetaArch: string(arch)}
	for k, v := range extra {
		md[k] = v
	}
	return nn.WriteSafetensors(path, ts, md)
}

// LoadModel reads a model file written by SaveModel (or exported from PyTorch with the
// same names, layouts and metadata; see docs/priors.md) and returns the model on d with
// the file's metadata. Unknown kinds, bad architectures, missing or extra tensors and
// shape mismatches are errors that name the file and what was expected.
func LoadModel(d *gpu.Device, path string) (Model, map[string]string, error) {
	ts, md, err := nn.ReadSafetensors(path)
	if err != nil {
		return nil, nil, fmt.Errorf("priors: %w", err)
	}
	m, err := modelFromTensors(d, ts, md)
	if err != nil {
		return nil, nil, fmt.Errorf("priors: %s: %w", path, err)
	}
	return m, md, nil
}

func modelFromTensors(d *gpu.Device, ts []nn.NamedTensor, md map[string]string) (Model, error) {
	kind := md[MetaKind]
	k, err := LookupKind(kind)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", MetaKind, err)
	}
	m, err := k.Build(d, []byte(md[MetaArch]), 0)
	if err != nil {
		return nil, fmt.Errorf("metadata %s for a %s: %w", MetaArch, kind, err)
	}
	ps := m.Params()
	want := map[string]bool{}
	for _, p := range ps {
		want[p.Name] = true
	}
	for _, t := range ts {
		if !want[t.Name] {
			m.Release()
			return nil, fmt.Errorf("tensor %q is not a parameter of this %s", t.Name, kind)
		}
	}
	if err := nn.Restore(ps, ts); err != nil {
		m.Release()
		return nil, err
	}
	return m, nil
}

// LoadPrior is LoadModel for files that must hold a prior.
func LoadPrior(d *gpu.Device, path string) (Prior, map[string]string, error) {
	m, md, err := LoadModel(d, path)
	if err != nil {
		return nil, nil, err
	}
	p, ok := m.(Prior)
	if !ok {
		m.Release()
		return nil, nil, fmt.Errorf("priors: %s holds a %s, not a prior (vae, gan or flow)", path, m.Kind())
	}
	return p, md, nil
}

// Kind is "vae".
func (v *VAE) Kind() string { return "vae" }

// Architecture is the VAEArch.
func (v *VAE) Architecture() any { return v.Arch }

// LatentDim is the latent size.
func (v *VAE) LatentDim() int { return v.Arch.Latent }

// Image is 28×28×1 for the default architecture (a square of Pixels).
func (v *VAE) Image() (h, w, c int) {
	s := intSqrt(v.Arch.Pixels)
	return s, v.Arch.Pixels / s, 1
}

// Generator is the decoder with its sigmoid.
func (v *VAE) Generator() *nn.Sequential { return v.Decoder() }

// intSqrt is the largest s with s² ≤ n.
func intSqrt(n int) int {
	s := 0
	for (s+1)*(s+1) <= n {
		s++
	}
	return s
}

var _ Prior = (*VAE)(nil)

// BuildFrom is the KindSpec.Build of a kind with architecture type A: the file's JSON
// overrides the fields of def it names, then mk builds the model.
func BuildFrom[A any, M Model](def A, mk func(d *gpu.Device, a A, seed uint64) (M, error)) func(*gpu.Device, []byte, uint64) (Model, error) {
	return func(d *gpu.Device, arch []byte, seed uint64) (Model, error) {
		a := def
		if err := strictJSON(arch, &a); err != nil {
			return nil, err
		}
		m, err := mk(d, a, seed)
		if err != nil {
			return nil, err // not m: a nil *T in a Model interface is not a nil Model
		}
		return m, nil
	}
}
