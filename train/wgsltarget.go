package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"osds/kernels"
)

// WGSLTarget is an energy target written by the user in WGSL: the unnormalised density
// R(z) on R^D, compiled at run time with the harness that WGSL constraints use
// (kernels.UserWGSL, shaders/user_function.wgsl). Its command-line name is
// `wgsl:FILE.wgsl[,step=H]`.
//
// # Contract
//
// The file declares, at module scope,
//
//	const D: u32 = 2u;                             // the dimension, an integer literal (required)
//	fn log_density(z: State) -> f32               // log R(z) (required)
//	fn grad_log_density(z: State) -> State         // ∇log R(z) (optional)
//	const LOG_Z: f32 = 2.0847;                     // log ∫R(z)dz, when known (optional)
//	const SIGMA2: f32 = 4.0;                       // the diffusion coefficient σ² (optional, default 1)
//
// where the harness declares `alias State = array<f32, D>;` with the file's D. osds reads
// D, LOG_Z and SIGMA2 before compiling (the sampler's network is sized by D before any
// device exists), so each must be a plain number literal (`2`, `2u`, `-1.5`, `3e-2`,
// `1.0f`), not an expression; the compiled module asserts D == the value read. The file
// may declare any helpers and constants of its own, but not State or names starting with
// osds_ or Osds, and no bindings or entry points.
//
// Without grad_log_density, the Langevin drift and local search get central finite
// differences of log_density with relative step H (`,step=H`, default 1e-2): 2·D
// evaluations per state, see kernels.UserWGSL.
//
// osds knows the target only through log_density on the GPU: LogR and GradLogR return
// NaN and Sample returns nil (HasExactSamples is false), so evaluation reports log Ẑ and,
// with LOG_Z, its error, but no W2 or EUBO.
type WGSLTarget struct {
	user   kernels.UserWGSL
	d      int
	logZ   float64
	hasZ   bool
	sigma2 float64
}

// WGSLTargetPrefix starts the command-line name of a WGSL target: wgsl:FILE[,step=H].
const WGSLTargetPrefix = "wgsl:"

// targetKind is the contract of a WGSL target in the shared harness: the user declares D.
var targetKind = &kernels.UserWGSLKind{
	What: "train: WGSL target", Row: "State", Arg: "z",
	Fn: "log_density", Grad: "grad_log_density", DimIs: "your file's `const D: u32 = …u;`",
	UserD: true,
}

// wgslTargetUsage is the form of the name, for messages.
const wgslTargetUsage = "wgsl:FILE.wgsl[,step=H]"

// isWGSLTarget reports whether name is a WGSL target's (wgsl:…, any case of the prefix)
// and returns the rest.
func isWGSLTarget(name string) (string, bool) {
	if len(name) >= len(WGSLTargetPrefix) && strings.EqualFold(name[:len(WGSLTargetPrefix)], WGSLTargetPrefix) {
		return name[len(WGSLTargetPrefix):], true
	}
	return "", false
}

var optionRE = regexp.MustCompile(`^([A-Za-z_]+)=(.*)$`)

// NewWGSLTarget reads a WGSL target from spec, the part of its name after "wgsl:":
// FILE[,step=H]. It checks everything that can be checked without a device (the file,
// log_density, D, LOG_Z, SIGMA2, the step); compiler errors come from Compile or the
// first reward built.
func NewWGSLTarget(spec string) (*WGSLTarget, error) {
	path, step, stepGiven := spec, 0.0, false
	// Options are split off from the right, so that a path may hold commas.
	for {
		i := strings.LastIndexByte(path, ',')
		if i < 0 {
			break
		}
		m := optionRE.FindStringSubmatch(path[i+1:])
		if m == nil {
			break
		}
		if m[1] != "step" {
			return nil, fmt.Errorf("train: WGSL target %q: unknown option %q (want %s)", spec, m[1], wgslTargetUsage)
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, fmt.Errorf("train: WGSL target %q: step=%q is not a number (want 0 < H < 1)", spec, m[2])
		}
		step, stepGiven, path = v, true, path[:i]
	}
	if path == "" {
		return nil, fmt.Errorf("train: WGSL target %q names no file (want %s)", WGSLTargetPrefix+spec, wgslTargetUsage)
	}
	// The name is stored in checkpoints: an absolute path rebuilds the target from any
	// working directory.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: WGSL target: %w (want %s, a file that defines %s)", err, wgslTargetUsage, targetKind.FnSig())
	}
	t := &WGSLTarget{user: kernels.UserWGSL{Kind: targetKind, Path: path, Source: string(b), Step: step}, sigma2: 1}
	if stepGiven && step == 0 {
		return nil, fmt.Errorf("train: WGSL target %s: finite-difference step 0 (want 0 < h < 1; leave out step= for the default %g)", path, kernels.DefaultFDStep)
	}
	if err := t.user.CheckStep(); err != nil {
		return nil, err
	}
	src, err := t.user.Text()
	if err != nil {
		return nil, err
	}
	if t.d, err = t.readDim(src); err != nil {
		return nil, err
	}
	t.user.Dim = t.d
	if v, ok, err := t.readFloat(src, "LOG_Z", "log ∫R(z)dz"); err != nil {
		return nil, err
	} else if ok {
		t.logZ, t.hasZ = v, true
	}
	if v, ok, err := t.readFloat(src, "SIGMA2", "the diffusion coefficient σ²"); err != nil {
		return nil, err
	} else if ok {
		if !(v > 0) {
			return nil, fmt.Errorf("train: WGSL target %s: SIGMA2 = %v; the diffusion coefficient must be > 0", path, v)
		}
		t.sigma2 = v
	}
	return t, nil
}

var (
	uintLitRE  = regexp.MustCompile(`^(0|[1-9][0-9]*)u?$`)
	floatLitRE = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[fh]?$`)
)

// readDim reads the file's `const D[: u32] = N[u];`.
func (t *WGSLTarget) readDim(src string) (int, error) {
	path := t.user.Path
	want := "`const D: u32 = 2u;` at module scope (the number of coordinates of a state; State = array<f32, D>)"
	c, ok := kernels.FindWGSLConst(src, "D")
	if !ok {
		return 0, fmt.Errorf("train: WGSL target %s declares no dimension: add %s", path, want)
	}
	if c.Type != "" && c.Type != "u32" {
		return 0, fmt.Errorf("train: WGSL target %s:%d: `%s`: D has type %s; declare it as %s", path, c.Line, c.Text, c.Type, want)
	}
	if !uintLitRE.MatchString(c.Init) {
		return 0, fmt.Errorf("train: WGSL target %s:%d: `%s`: D must be an integer literal, which osds reads before compiling (it sizes the sampler); declare it as %s", path, c.Line, c.Text, want)
	}
	d, err := strconv.Atoi(strings.TrimSuffix(c.Init, "u"))
	if err != nil || d < 1 || d > kernels.MaxUserWGSLWidth {
		return 0, fmt.Errorf("train: WGSL target %s:%d: `%s`: D = %s; want 1 ≤ D ≤ %d", path, c.Line, c.Text, c.Init, kernels.MaxUserWGSLWidth)
	}
	return d, nil
}

// readFloat reads an optional `const NAME[: f32] = literal;`.
func (t *WGSLTarget) readFloat(src, name, what string) (float64, bool, error) {
	c, ok := kernels.FindWGSLConst(src, name)
	if !ok {
		return 0, false, nil
	}
	path := t.user.Path
	if c.Type != "" && c.Type != "f32" {
		return 0, false, fmt.Errorf("train: WGSL target %s:%d: `%s`: %s (%s) has type %s; declare it as `const %s: f32 = <number>;`", path, c.Line, c.Text, name, what, c.Type, name)
	}
	lit := strings.Join(strings.Fields(c.Init), "") // `- 1.5` is -1.5
	v, err := strconv.ParseFloat(strings.TrimRight(lit, "fh"), 64)
	if !floatLitRE.MatchString(lit) || err != nil {
		return 0, false, fmt.Errorf("train: WGSL target %s:%d: `%s`: %s (%s) must be a number literal, which osds reads before compiling; write its value, e.g. `const %s: f32 = 1.8378771;`", path, c.Line, c.Text, name, what, name)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false, fmt.Errorf("train: WGSL target %s:%d: `%s`: %s = %v is not finite", path, c.Line, c.Text, name, v)
	}
	return v, true, nil
}

// Name is "wgsl:" with the file's absolute path (and ",step=H" when given), the name
// NewTarget rebuilds the target from.
func (t *WGSLTarget) Name() string {
	n := WGSLTargetPrefix + t.user.Path
	if t.user.Step != 0 {
		n += ",step=" + strconv.FormatFloat(t.user.Step, 'g', -1, 64)
	}
	return n
}

// Path is the file's absolute path.
func (t *WGSLTarget) Path() string { return t.user.Path }

// Dim is the file's D.
func (t *WGSLTarget) Dim() int { return t.d }

// LogZ is the file's LOG_Z, when it declares one.
func (t *WGSLTarget) LogZ() (float64, bool) { return t.logZ, t.hasZ }

// Sigma2 is the file's SIGMA2, or 1.
func (t *WGSLTarget) Sigma2() float64 { return t.sigma2 }

// HasGradient reports whether the file defines grad_log_density (otherwise gradients are
// finite differences).
func (t *WGSLTarget) HasGradient() bool {
	has, _ := t.user.HasGradient()
	return has
}

// LogR is NaN: a WGSL target is evaluated on the GPU only (Reward).
func (t *WGSLTarget) LogR(x []float64) float64 { return math.NaN() }

// GradLogR fills g with NaN: a WGSL target is evaluated on the GPU only (Reward).
func (t *WGSLTarget) GradLogR(x, g []float64) {
	for i := range g {
		g[i] = math.NaN()
	}
}

// Sample returns nil: a WGSL target has no exact sampler (HasExactSamples is false).
func (t *WGSLTarget) Sample(rng *rand.Rand, n int) [][]float64 { return nil }

// HasExactSamples is false: osds knows the target only through its log density.
func (t *WGSLTarget) HasExactSamples() bool { return false }

// Compile compiles the file with the harness (value and gradient) and returns the first
// error, a *kernels.WGSLError at the file's lines for compiler messages: call it where
// the target is chosen to report a broken file before any graph is built. The pipelines
// stay cached in l.
func (t *WGSLTarget) Compile(l *kernels.Library) error { return t.user.Compile(l, t.d) }

// Reward is the GPU reward of the target: log_density of each row of z [B, D] into logr
// and, when grad is not nil, grad_log_density or its finite differences into grad.
func (t *WGSLTarget) Reward() RewardFunc {
	return func(l *kernels.Library, logr, grad, z *kernels.Tensor) (*Reward, error) {
		value, g, err := t.user.Build(l, z, logr, grad)
		if err != nil {
			return nil, err
		}
		ops := []*kernels.Op{value}
		if g != nil {
			ops = append(ops, g)
		}
		return NewReward(ops, func() { value.Release(); g.Release() }), nil
	}
}

var _ Target = (*WGSLTarget)(nil)
