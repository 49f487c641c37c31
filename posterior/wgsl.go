package posterior

import (
	"fmt"
	"os"

	"osds/kernels"
)

// WGSL is a constraint written by the user in WGSL, one sample at a time.
//
// # Contract
//
// The user's file defines
//
//	fn log_reward(x: Sample) -> f32              // log r(x), required
//	fn grad_log_reward(x: Sample) -> Sample      // ∇_x log r(x), optional
//
// where the harness (shaders/user_function.wgsl, shared with WGSL targets through
// kernels.UserWGSL) declares
//
//	const D: u32 = <the prior's row width>u;    // e.g. 784 for 28×28 grayscale images
//	alias Sample = array<f32, D>;               // one row of the prior's output (NHWC)
//
// The file may declare any helper functions and constants of its own (a `const_assert D
// == 784;` documents and enforces the width it expects), but not D, Sample or names
// starting with osds_ or Osds, and no bindings or entry points: the harness owns the
// buffers and calls log_reward once per row (one invocation per row).
//
// # Gradient
//
// With grad_log_reward, ∇_x log r is the user's. Without it, the harness takes central
// finite differences of log_reward,
//
//	∂log r/∂x_i ≈ (log_reward(x + h_i e_i) − log_reward(x − h_i e_i)) / (2 h_i),
//	h_i = Step · max(|x_i|, 1),
//
// which costs 2·D evaluations of log_reward per sample, O(D²) work for a log_reward
// that reads the whole row. They run as one invocation per (row, coordinate), so the D
// derivatives of a sample are computed in parallel. The cost is paid only where a
// gradient is asked for (the Langevin drift, MALA local search): trajectory balance with
// the plain drift records Value alone, and the gradient pipeline, though built, is never
// dispatched. Measured on lavapipe (2 CPU cores), B = 256 rows of D = 784: 1 s per
// gradient for examples/constraints/brightness.wgsl and 2.2 s for smoothness.wgsl, against
// 5 ms with brightness.wgsl's own grad_log_reward; a GPU spreads the 200k invocations over
// its cores. The error is O(Step²)·|∂³log r| plus f32 rounding of about 6e-8·|log r|/Step;
// the default Step = 1e-2 gives ~2e-4 relative on a quartic test function with |log r|
// ~ 10. Define grad_log_reward for exact gradients, for log r with kinks (|x|, max, a
// threshold) and whenever the gradient is needed at every step on a CPU adapter.
//
// # Width
//
// A Sample lives in the invocation's private memory. The WGSL specification guarantees
// 8192 bytes of it (D ≤ 2048); Dawn accepts more, and Check allows D ≤ 16384. Compiling
// a module for D = 784 takes 0.3 to 1.5 s per entry point on lavapipe (once per process;
// Mesa caches the result on disk).
//
// # Errors
//
// The module compiled is the user's text followed by the harness, so that compiler
// messages keep the user's line numbers: they are reported as FILE:LINE:COL with the
// offending line and a caret. Messages located in the harness (a wrong signature, a
// redeclared D) say so and name the signatures the harness expects.
type WGSL struct {
	Path   string  // the file, named in messages; read by Check and Build when Source is ""
	Source string  // the WGSL text ("" reads Path)
	Step   float64 // relative finite-difference step h (0 means 1e-2); unused with grad_log_reward
}

// DefaultFDStep is the relative step of the finite-difference gradient (WGSL.Step).
const DefaultFDStep = kernels.DefaultFDStep

// WGSLError is a user constraint that does not compile (the shared type of user WGSL
// files: its messages sit at the user's FILE:LINE:COL).
type WGSLError = kernels.WGSLError

// WGSLDiagnostic is one compiler message of a user constraint, placed in the user's file
// or in the harness.
type WGSLDiagnostic = kernels.WGSLDiagnostic

// constraintKind is the contract of a WGSL constraint in the shared harness: the harness
// declares D as the prior's row width.
var constraintKind = &kernels.UserWGSLKind{
	What: "posterior: WGSL constraint", Row: "Sample", Arg: "x",
	Fn: "log_reward", Grad: "grad_log_reward", DimIs: "the prior's row width",
}

var (
	sigLogReward     = constraintKind.FnSig()   // fn log_reward(x: Sample) -> f32
	sigGradLogReward = constraintKind.GradSig() // fn grad_log_reward(x: Sample) -> Sample
)

// user is the constraint as the shared harness sees it.
func (w WGSL) user() kernels.UserWGSL {
	return kernels.UserWGSL{Kind: constraintKind, Path: w.Path, Source: w.Source, Step: w.Step}
}

// NewWGSL reads a constraint file and checks that it defines log_reward.
func NewWGSL(path string) (WGSL, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return WGSL{}, fmt.Errorf("posterior: WGSL constraint: %w", err)
	}
	w := WGSL{Path: path, Source: string(b)}
	if _, err := w.user().Text(); err != nil {
		return WGSL{}, err
	}
	return w, nil
}

// Check reads the source, checks that it defines log_reward, that the row width fits a
// Sample and that the finite-difference step is sane. Compiling needs the device and
// happens in Build.
func (w WGSL) Check(width int) error { return w.user().Check(width) }

// HasGradient reports whether the source defines grad_log_reward (otherwise Build
// records the finite-difference gradient).
func (w WGSL) HasGradient() (bool, error) { return w.user().HasGradient() }

// Compile compiles the source with the harness for rows of the given width and
// returns the first error (a *WGSLError for compiler messages), building nothing that
// stays: call it where the constraint is chosen so that a broken file is reported before
// any training graph is built. The pipelines stay cached in l for Build.
func (w WGSL) Compile(l *kernels.Library, width int) error { return w.user().Compile(l, width) }

// Build compiles the user's source with the harness for rows of x's width and records
// log_reward (Value) and its gradient (Grad: grad_log_reward, or finite differences).
func (w WGSL) Build(l *kernels.Library, x *kernels.Tensor) (*Pass, error) {
	u := w.user()
	if x == nil {
		return nil, fmt.Errorf("posterior: WGSL constraint %s: x is nil", u.Name())
	}
	B, D := x.Rows(), x.Cols()
	// Check before allocating, so that a bad file or width costs no buffers.
	if err := u.Check(D); err != nil {
		return nil, err
	}
	dev := l.Device()
	p := &Pass{}
	fail := func(err error) (*Pass, error) {
		p.Release()
		return nil, err
	}
	var err error
	if p.LogR, err = kernels.NewTensor(dev, "wgsl constraint log r", B); err != nil {
		return fail(err)
	}
	p.own(p.LogR.Release)
	if p.DX, err = kernels.NewTensor(dev, "wgsl constraint dx", B, D); err != nil {
		return fail(err)
	}
	p.own(p.DX.Release)
	value, grad, err := u.Build(l, x, p.LogR, p.DX)
	if err != nil {
		return fail(err)
	}
	p.own(value.Release)
	p.own(grad.Release)
	p.Value = []*kernels.Op{value}
	p.Grad = []*kernels.Op{grad}
	return p, nil
}

var _ Constraint = WGSL{}
