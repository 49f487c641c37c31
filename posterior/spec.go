package posterior

import (
	"fmt"
	"image"
	"image/color"
	_ "image/png" // masks are PNG files
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"osds/gpu"
	"osds/kernels"
	"osds/priors"
)

// Spec is a constraint in its command-line form:
//
//	class:LABEL[,beta=B][,cap=T][,classifier=NAME|FILE]
//	                                                 min(p_cls(LABEL | x), T)^B (default
//	                                                 B = 1, T = 1: no cap; classifier
//	                                                 "<dataset>-classifier")
//	class:all[,beta=B][,cap=T][,classifier=NAME|FILE]
//	                                                 every class: the family
//	                                                 min(p_cls(y | x), T)^B
//	                                                 for an amortised sampler (one
//	                                                 network conditioned on y)
//	inpaint:MASK.png[,sigma=S][,image=N]            Gaussian observation (default S = 0.1)
//	                                                 of test image N (default 0) of the
//	                                                 prior's dataset where MASK is white
//	wgsl:FILE.wgsl[,step=H]                          the user's fn log_reward(x: Sample)
//	onnx:FILE.onnx[,label=L][,beta=B][,output=NAME]  an imported classifier's log-probability
//	                                                 of L, or a reward model's value, × B
type Spec struct {
	Kind string // "class", "inpaint", "wgsl" or "onnx"

	Label      int // AllClasses: the amortised family over every class
	Beta       float64
	Cap        float64 // class: the probability where the reward saturates (1: none)
	Classifier string  // "" until resolved: "<dataset>-classifier"

	Mask  string
	Sigma float64
	Image int

	File string  // wgsl: the constraint's .wgsl file; onnx: the model's .onnx file
	Step float64 // wgsl: finite-difference step (0: the default)

	Output string // onnx: the model output to read ("": the first)
}

// AllClasses is the Label of the spec class:all.
const AllClasses = -1

// Amortised reports whether the spec is a family of constraints (class:all).
func (s Spec) Amortised() bool { return s.Kind == "class" && s.Label == AllClasses }

// ParseSpec parses a constraint spec; errors say what is wrong and what is expected.
func ParseSpec(s string) (Spec, error) {
	kind, rest, ok := strings.Cut(strings.TrimSpace(s), ":")
	usage := "want class:LABEL|all[,beta=B][,cap=T][,classifier=NAME|FILE] or inpaint:MASK.png[,sigma=S][,image=N] or wgsl:FILE.wgsl[,step=H] or onnx:FILE.onnx[,label=L][,beta=B][,output=NAME]"
	if !ok || rest == "" {
		return Spec{}, fmt.Errorf("constraint %q: %s", s, usage)
	}
	parts := strings.Split(rest, ",")
	opts := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return Spec{}, fmt.Errorf("constraint %q: option %q is not KEY=VALUE", s, p)
		}
		if _, dup := opts[k]; dup {
			return Spec{}, fmt.Errorf("constraint %q: option %s given twice", s, k)
		}
		opts[k] = strings.TrimSpace(v)
	}
	allow := func(keys ...string) error {
		for k := range opts {
			found := false
			for _, a := range keys {
				found = found || k == a
			}
			if !found {
				return fmt.Errorf("constraint %q: unknown option %q for %s (want %s)", s, k, kind, strings.Join(keys, ", "))
			}
		}
		return nil
	}
	num := func(key string, def float64, positive bool) (float64, error) {
		v, ok := opts[key]
		if !ok {
			return def, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || (positive && !(f > 0)) {
			return 0, fmt.Errorf("constraint %q: %s=%s (want a positive number)", s, key, v)
		}
		return f, nil
	}
	sp := Spec{Kind: kind}
	var err error
	switch kind {
	case "class":
		if err := allow("beta", "cap", "classifier"); err != nil {
			return Spec{}, err
		}
		if strings.TrimSpace(parts[0]) == "all" {
			sp.Label = AllClasses
		} else if sp.Label, err = strconv.Atoi(strings.TrimSpace(parts[0])); err != nil || sp.Label < 0 {
			return Spec{}, fmt.Errorf("constraint %q: class label %q is not a non-negative integer or \"all\"", s, parts[0])
		}
		if sp.Beta, err = num("beta", 1, true); err != nil {
			return Spec{}, err
		}
		if sp.Cap, err = num("cap", 1, true); err != nil {
			return Spec{}, err
		}
		if sp.Cap > 1 {
			return Spec{}, fmt.Errorf("constraint %q: cap=%s (want a probability in (0, 1]: the classifier probability beyond which the reward stops growing)", s, opts["cap"])
		}
		sp.Classifier = opts["classifier"]
	case "inpaint":
		if err := allow("sigma", "image"); err != nil {
			return Spec{}, err
		}
		if sp.Mask = strings.TrimSpace(parts[0]); sp.Mask == "" {
			return Spec{}, fmt.Errorf("constraint %q: no mask file", s)
		}
		if sp.Sigma, err = num("sigma", 0.1, true); err != nil {
			return Spec{}, err
		}
		if v, ok := opts["image"]; ok {
			if sp.Image, err = strconv.Atoi(v); err != nil || sp.Image < 0 {
				return Spec{}, fmt.Errorf("constraint %q: image=%s (want a test-image index ≥ 0)", s, v)
			}
		}
	case "wgsl":
		if err := allow("step"); err != nil {
			return Spec{}, err
		}
		if sp.File = strings.TrimSpace(parts[0]); sp.File == "" {
			return Spec{}, fmt.Errorf("constraint %q: no .wgsl file", s)
		}
		if sp.Step, err = num("step", 0, true); err != nil {
			return Spec{}, err
		}
	case "onnx":
		if err := allow("label", "beta", "output"); err != nil {
			return Spec{}, err
		}
		if sp.File = strings.TrimSpace(parts[0]); sp.File == "" {
			return Spec{}, fmt.Errorf("constraint %q: no .onnx file", s)
		}
		sp.Label = -1
		if v, ok := opts["label"]; ok {
			if sp.Label, err = strconv.Atoi(v); err != nil || sp.Label < 0 {
				return Spec{}, fmt.Errorf("constraint %q: label=%s (want an output column ≥ 0)", s, v)
			}
		}
		if sp.Beta, err = num("beta", 1, true); err != nil {
			return Spec{}, err
		}
		sp.Output = opts["output"]
	default:
		return Spec{}, fmt.Errorf("constraint %q: unknown kind %q: %s", s, kind, usage)
	}
	return sp, nil
}

// String is the canonical spec (every option spelled out), parseable by ParseSpec.
func (s Spec) String() string {
	switch s.Kind {
	case "class":
		label := strconv.Itoa(s.Label)
		if s.Label == AllClasses {
			label = "all"
		}
		out := fmt.Sprintf("class:%s,beta=%s", label, strconv.FormatFloat(s.Beta, 'g', -1, 64))
		if s.Cap > 0 && s.Cap < 1 {
			out += ",cap=" + strconv.FormatFloat(s.Cap, 'g', -1, 64)
		}
		if s.Classifier != "" {
			out += ",classifier=" + s.Classifier
		}
		return out
	case "inpaint":
		return fmt.Sprintf("inpaint:%s,sigma=%s,image=%d", s.Mask, strconv.FormatFloat(s.Sigma, 'g', -1, 64), s.Image)
	case "wgsl":
		if s.Step > 0 {
			return fmt.Sprintf("wgsl:%s,step=%s", s.File, strconv.FormatFloat(s.Step, 'g', -1, 64))
		}
		return "wgsl:" + s.File
	case "onnx":
		out := "onnx:" + s.File
		if s.Label >= 0 {
			out += ",label=" + strconv.Itoa(s.Label)
		}
		out += ",beta=" + strconv.FormatFloat(s.Beta, 'g', -1, 64)
		if s.Output != "" {
			out += ",output=" + s.Output
		}
		return out
	}
	return s.Kind + ":?"
}

// Setup is a posterior target ready to train on or sample from: the prior, the
// constraint and its models, and the reward.
type Setup struct {
	Prior      priors.Prior
	PriorRef   string      // the shipped name, or the absolute path of the prior's file
	Dataset    string      // the prior's dataset ("" when its file names none)
	Spec       Spec        // resolved: the classifier reference and the mask path made absolute
	Constraint Constraint  // nil for an amortised spec (class:all)
	Family     Conditional // the constraint family of an amortised spec (nil otherwise)
	Reward     *Reward

	classifier *priors.Classifier
}

// Metadata keys of a posterior sampler's checkpoint (train.Trainer.SaveWith).
const (
	MetaPrior      = "posterior.prior"
	MetaConstraint = "posterior.constraint"
	// TargetName is the checkpoint's target for posterior samplers.
	TargetName = "posterior"
)

// Metadata is what a checkpoint records to rebuild the target with Open.
func (s *Setup) Metadata() map[string]string {
	return map[string]string{MetaPrior: s.PriorRef, MetaConstraint: s.Spec.String()}
}

// Describe is a one-line summary, e.g. "mnist-vae | class:3,beta=1,classifier=mnist-classifier".
func (s *Setup) Describe() string { return s.PriorRef + " | " + s.Spec.String() }

// resolveRef makes a model reference stable: an existing file becomes its absolute path,
// anything else stays a shipped name.
func resolveRef(ref string) string {
	if priors.IsONNXRef(ref) && strings.Contains(ref, ",") {
		// An imported prior with options: the path part becomes absolute.
		if r, err := priors.ParseONNXRef(ref); err == nil {
			r.Path = resolveRef(r.Path)
			return r.String()
		}
	}
	if _, err := os.Stat(ref); err == nil {
		if abs, err := filepath.Abs(ref); err == nil {
			return abs
		}
	}
	return ref
}

// loadModel loads a shipped model or a model file, with an error that says both were tried.
func loadModel(d *gpu.Device, what, ref string) (priors.Model, map[string]string, error) {
	m, md, err := priors.LoadNamedOrFile(d, ref)
	if err != nil {
		path := ref
		if priors.IsONNXRef(ref) {
			path, _, _ = strings.Cut(ref, ",")
		}
		if _, statErr := os.Stat(path); statErr != nil {
			return nil, nil, fmt.Errorf("%s %q is neither a file nor a shipped model (shipped: %s)", what, ref, shippedNames())
		}
		return nil, nil, fmt.Errorf("%s %q: %w", what, ref, err)
	}
	return m, md, nil
}

func shippedNames() string {
	man, err := priors.ShippedManifest()
	if err != nil {
		return err.Error()
	}
	if len(man.Models) == 0 {
		return "none"
	}
	var names []string
	for _, e := range man.Models {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Open loads the prior (a shipped name or a .safetensors file) and the constraint's
// models and data, and builds the reward on l.
func Open(l *kernels.Library, priorRef string, spec Spec) (*Setup, error) {
	s := &Setup{PriorRef: resolveRef(priorRef), Spec: spec}
	m, md, err := loadModel(l.Device(), "prior", priorRef)
	if err != nil {
		return nil, err
	}
	p, ok := m.(priors.Prior)
	if !ok {
		m.Release()
		return nil, fmt.Errorf("prior %q is a %s, not a prior (vae, gan or flow)", priorRef, m.Kind())
	}
	s.Prior, s.Dataset = p, md[priors.MetaDataset]
	fail := func(err error) (*Setup, error) {
		s.Release()
		return nil, err
	}
	h, w, c := p.Image()
	switch spec.Kind {
	case "class":
		ref := spec.Classifier
		if ref == "" {
			if s.Dataset == "" {
				hint := ""
				if priors.IsONNXRef(priorRef) {
					hint = fmt.Sprintf(", or name the dataset it was trained on: --prior %s,data=mnist", priorRef)
				}
				return fail(fmt.Errorf("prior %q names no dataset: give the classifier, %s,classifier=NAME|FILE%s", priorRef, strings.SplitN(spec.String(), ",", 2)[0], hint))
			}
			ref = s.Dataset + "-classifier"
		}
		s.Spec.Classifier = resolveRef(ref)
		cm, _, err := loadModel(l.Device(), "classifier", ref)
		if err != nil {
			return fail(err)
		}
		cls, ok := cm.(*priors.Classifier)
		if !ok {
			cm.Release()
			return fail(fmt.Errorf("classifier %q is a %s, not a classifier", ref, cm.Kind()))
		}
		s.classifier = cls
		if spec.Amortised() {
			s.Family = ClassFamily{Classifier: cls, Beta: spec.Beta, Cap: spec.Cap}
		} else {
			s.Constraint = Class{Classifier: cls, Label: spec.Label, Beta: spec.Beta, Cap: spec.Cap}
		}
	case "inpaint":
		if c != 1 {
			return fail(fmt.Errorf("inpainting needs a grayscale prior; %q makes %d×%d×%d images", priorRef, h, w, c))
		}
		s.Spec.Mask = resolveRef(spec.Mask)
		mask, err := ReadMask(spec.Mask, h, w)
		if err != nil {
			return fail(err)
		}
		if s.Dataset == "" {
			return fail(fmt.Errorf("prior %q names no dataset to take the observed image from", priorRef))
		}
		ds, err := priors.LoadDataset(s.Dataset, "test")
		if err != nil {
			return fail(err)
		}
		if ds.Height != h || ds.Wd != w {
			return fail(fmt.Errorf("the %s test images are %d×%d but the prior makes %d×%d", s.Dataset, ds.Height, ds.Wd, h, w))
		}
		if spec.Image >= ds.N {
			return fail(fmt.Errorf("image=%d: the %s test set has images 0..%d", spec.Image, s.Dataset, ds.N-1))
		}
		y := append([]float32(nil), ds.Images[spec.Image*h*w:(spec.Image+1)*h*w]...)
		s.Constraint = GaussianObservation{Y: y, Mask: mask, Sigma: spec.Sigma}
	case "wgsl":
		s.Spec.File = resolveRef(spec.File)
		wc, err := NewWGSL(spec.File)
		if err != nil {
			return fail(err)
		}
		wc.Step = spec.Step
		// Compile now, so a broken file is reported against its lines before any
		// trainer is built.
		if err := wc.Compile(l, h*w*c); err != nil {
			return fail(err)
		}
		s.Constraint = wc
	case "onnx":
		s.Spec.File = resolveRef(spec.File)
		oc, err := NewONNXConstraint(spec, h, w, c)
		if err != nil {
			return fail(err)
		}
		s.Constraint = oc
	default:
		return fail(fmt.Errorf("unknown constraint kind %q", spec.Kind))
	}
	if s.Family != nil {
		s.Reward, err = NewCondReward(l, p, s.Family)
	} else {
		s.Reward, err = NewReward(l, p, s.Constraint)
	}
	if err != nil {
		return fail(err)
	}
	return s, nil
}

// Conditions is the number of conditions of an amortised setup (0: one constraint).
func (s *Setup) Conditions() int {
	if s.Family == nil {
		return 0
	}
	return s.Family.Conditions()
}

// Release frees the reward and the models.
func (s *Setup) Release() {
	if s.Reward != nil {
		s.Reward.Release()
	}
	if s.classifier != nil {
		s.classifier.Release()
	}
	if s.Prior != nil {
		s.Prior.Release()
	}
}

// ReadMask reads a PNG mask of h×w pixels: white (gray ≥ 50%) is observed (1), anything
// darker is free (0).
func ReadMask(path string, h, w int) ([]float32, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("mask %s is a folder: want a PNG file of %d×%d pixels (white = observed)", path, w, h)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mask: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("mask %s is not a PNG image (%v): want a PNG file of %d×%d pixels (white = observed)", path, err, w, h)
	}
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		return nil, fmt.Errorf("mask %s is %d×%d pixels but the prior makes %d×%d images", path, b.Dx(), b.Dy(), w, h)
	}
	out := make([]float32, h*w)
	observed := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if g := color.Gray16Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray16); g.Y >= 0x8000 {
				out[y*w+x] = 1
				observed++
			}
		}
	}
	if observed == 0 {
		return nil, fmt.Errorf("mask %s has no white pixel: it observes nothing", path)
	}
	return out, nil
}

// ScoreLabels measures samples x = f(z) of an amortised sampler, sample i drawn for
// condition labels[i]: for the class family the share the classifier assigns to each
// sample's own class ("class_rate") and the same per class ("class_rate_Y" for the
// classes present). Unconditional setups ignore labels (Score).
func (s *Setup) ScoreLabels(l *kernels.Library, xs []float32, labels []int) (map[string]float64, error) {
	f, ok := s.Family.(ClassFamily)
	if !ok {
		if s.Family != nil {
			return map[string]float64{}, nil
		}
		return s.Score(l, xs, len(labels))
	}
	pred, err := priors.Predict(l, f.Classifier, xs)
	if err != nil {
		return nil, err
	}
	if len(pred) != len(labels) {
		return nil, fmt.Errorf("posterior: %d predictions for %d samples", len(pred), len(labels))
	}
	hit, hitY, nY := 0, map[int]int{}, map[int]int{}
	for i, p := range pred {
		nY[labels[i]]++
		if int(p) == labels[i] {
			hit++
			hitY[labels[i]]++
		}
	}
	out := map[string]float64{"class_rate": float64(hit) / float64(len(pred))}
	for y, n := range nY {
		out[fmt.Sprintf("class_rate_%d", y)] = float64(hitY[y]) / float64(n)
	}
	return out, nil
}

// Score measures samples x = f(z) (n rows) against the constraint: for a class
// constraint the share the classifier assigns to the label ("class_rate"); for an
// observation the root-mean-square error on the observed coordinates ("observed_rmse").
// Amortised setups score with ScoreLabels.
func (s *Setup) Score(l *kernels.Library, xs []float32, n int) (map[string]float64, error) {
	switch c := s.Constraint.(type) {
	case *ONNX:
		return c.score(l, xs, n)
	case Class:
		pred, err := priors.Predict(l, c.Classifier, xs)
		if err != nil {
			return nil, err
		}
		hit := 0
		for _, p := range pred {
			if int(p) == c.Label {
				hit++
			}
		}
		return map[string]float64{"class_rate": float64(hit) / float64(len(pred))}, nil
	case GaussianObservation:
		D := len(c.Y)
		sum, cnt := 0.0, 0.0
		for b := 0; b < n; b++ {
			for i := 0; i < D; i++ {
				r := float64(xs[b*D+i] - c.Y[i])
				sum += float64(c.Mask[i]) * r * r
				cnt += float64(c.Mask[i])
			}
		}
		return map[string]float64{"observed_rmse": math.Sqrt(sum / cnt)}, nil
	}
	return map[string]float64{}, nil
}
