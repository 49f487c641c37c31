package posterior

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"

	"osds"
	"osds/gpu"
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
// where the harness (shaders/user_constraint.wgsl) declares
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
const DefaultFDStep = 1e-2

// maxWGSLWidth bounds D: a Sample lives in the invocation's private memory (64 KiB here,
// beyond the 8 KiB the WGSL specification guarantees), and compile times grow with D.
const maxWGSLWidth = 1 << 14

// harnessFile is the harness, an embedded shader.
const harnessFile = "user_constraint.wgsl"

// NewWGSL reads a constraint file and checks that it defines log_reward.
func NewWGSL(path string) (WGSL, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return WGSL{}, fmt.Errorf("posterior: WGSL constraint: %w", err)
	}
	w := WGSL{Path: path, Source: string(b)}
	if _, err := w.source(); err != nil {
		return WGSL{}, err
	}
	return w, nil
}

// name is how messages call the file.
func (w WGSL) name() string {
	if w.Path != "" {
		return w.Path
	}
	return "<wgsl constraint>"
}

// source returns the WGSL text (reading Path when Source is empty) after checking that
// it defines log_reward.
func (w WGSL) source() (string, error) {
	src := w.Source
	if src == "" {
		if w.Path == "" {
			return "", fmt.Errorf("posterior: WGSL constraint with neither a file nor a source")
		}
		b, err := os.ReadFile(w.Path)
		if err != nil {
			return "", fmt.Errorf("posterior: WGSL constraint: %w", err)
		}
		src = string(b)
	}
	if _, ok := findFn(src, "log_reward"); !ok {
		return "", fmt.Errorf("posterior: WGSL constraint %s defines no log_reward: it must define %s (and may define %s), where D is the prior's row width and Sample = array<f32, D>",
			w.name(), sigLogReward, sigGradLogReward)
	}
	return src, nil
}

const (
	sigLogReward     = "fn log_reward(x: Sample) -> f32"
	sigGradLogReward = "fn grad_log_reward(x: Sample) -> Sample"
)

// Check reads the source, checks that it defines log_reward, that the row width fits a
// Sample and that the finite-difference step is sane. Compiling needs the device and
// happens in Build.
func (w WGSL) Check(width int) error {
	if _, err := w.source(); err != nil {
		return err
	}
	if width < 1 || width > maxWGSLWidth {
		return fmt.Errorf("posterior: WGSL constraint %s: rows of %d values; a Sample holds 1..%d (array<f32, D> lives in the invocation's private memory)", w.name(), width, maxWGSLWidth)
	}
	if !(w.Step >= 0) || w.Step >= 1 || math.IsInf(w.Step, 0) {
		return fmt.Errorf("posterior: WGSL constraint %s: finite-difference step %v (want 0 < h < 1, or 0 for the default %g)", w.name(), w.Step, DefaultFDStep)
	}
	return nil
}

// HasGradient reports whether the source defines grad_log_reward (otherwise Build
// records the finite-difference gradient).
func (w WGSL) HasGradient() (bool, error) {
	src, err := w.source()
	if err != nil {
		return false, err
	}
	_, ok := findFn(src, "grad_log_reward")
	return ok, nil
}

// Compile compiles the source with the harness for rows of the given width and
// returns the first error (a *WGSLError for compiler messages), building nothing that
// stays: call it where the constraint is chosen so that a broken file is reported before
// any training graph is built. The pipelines stay cached in l for Build.
func (w WGSL) Compile(l *kernels.Library, width int) error {
	if err := w.Check(width); err != nil {
		return err
	}
	x, err := kernels.NewTensor(l.Device(), "wgsl constraint probe", 1, width)
	if err != nil {
		return err
	}
	defer x.Release()
	p, err := w.Build(l, x)
	if err != nil {
		return err
	}
	p.Release()
	return nil
}

// Build compiles the user's source with the harness for rows of x's width and records
// log_reward (Value) and its gradient (Grad: grad_log_reward, or finite differences).
func (w WGSL) Build(l *kernels.Library, x *kernels.Tensor) (*Pass, error) {
	if x == nil {
		return nil, fmt.Errorf("posterior: WGSL constraint %s: x is nil", w.name())
	}
	B, D := x.Rows(), x.Cols()
	if err := w.Check(D); err != nil {
		return nil, err
	}
	src, err := w.source()
	if err != nil {
		return nil, err
	}
	_, hasGrad := findFn(src, "grad_log_reward")
	mod, err := assembleWGSL(src, D, hasGrad)
	if err != nil {
		return nil, err
	}
	h := w.Step
	if h == 0 {
		h = DefaultFDStep
	}
	dev := l.Device()
	p := &Pass{}
	fail := func(err error) (*Pass, error) {
		p.Release()
		var ce *gpu.CompileError
		if errors.As(err, &ce) {
			return nil, mod.compileError(w.name(), src, ce)
		}
		return nil, fmt.Errorf("posterior: WGSL constraint %s: %w", w.name(), err)
	}
	if p.LogR, err = kernels.NewTensor(dev, "wgsl constraint log r", B); err != nil {
		return fail(err)
	}
	p.own(p.LogR.Release)
	if p.DX, err = kernels.NewTensor(dev, "wgsl constraint dx", B, D); err != nil {
		return fail(err)
	}
	p.own(p.DX.Release)
	ps := kernels.Params{B, float32(h), 0, 0}
	value, err := l.BuildSource(w.name(), mod.text, "osds_value", []*kernels.Tensor{x, p.LogR}, ps, kernels.Grid1D(B, 64))
	if err != nil {
		return fail(err)
	}
	p.own(value.Release)
	entry, n := "osds_grad_fd", B*D
	if hasGrad {
		entry, n = "osds_grad_user", B
	}
	grad, err := l.BuildSource(w.name(), mod.text, entry, []*kernels.Tensor{x, p.DX}, ps, kernels.Grid1D(n, 64))
	if err != nil {
		return fail(err)
	}
	p.own(grad.Release)
	p.Value = []*kernels.Op{value}
	p.Grad = []*kernels.Op{grad}
	return p, nil
}

var _ Constraint = WGSL{}

// ---------------------------------------------------------------------------------------
// Assembling the module and placing compiler messages.

// wgslModule is the user's source followed by the harness and the generated D.
type wgslModule struct {
	text        string
	userLines   int      // lines 1..userLines are the user's
	harness     []string // the harness as compiled (blanked section included)
	harnessFrom int      // module line of the harness's line 1
	tail        []string // generated lines after the harness
	tailFrom    int
}

func assembleWGSL(src string, D int, hasGrad bool) (*wgslModule, error) {
	hs, err := osds.Shader(harnessFile)
	if err != nil {
		return nil, err
	}
	harness := strings.Split(strings.TrimSuffix(hs, "\n"), "\n")
	if !hasGrad {
		in := false
		for i, line := range harness {
			switch strings.TrimSpace(line) {
			case "//!if grad_log_reward":
				in = true
			case "//!end":
				in = false
			default:
				if in {
					harness[i] = ""
				}
			}
		}
	}
	user := src
	if !strings.HasSuffix(user, "\n") {
		user += "\n"
	}
	m := &wgslModule{userLines: strings.Count(user, "\n"), harness: harness}
	m.harnessFrom = m.userLines + 1
	m.tail = []string{fmt.Sprintf("const D: u32 = %du;", D)}
	m.tailFrom = m.harnessFrom + len(harness)
	m.text = user + strings.Join(harness, "\n") + "\n" + strings.Join(m.tail, "\n") + "\n"
	return m, nil
}

// WGSLDiagnostic is one compiler message of a user constraint, placed in the user's
// file or in the harness.
type WGSLDiagnostic struct {
	Kind      string // "error", "warning" or "info"
	Line, Col int    // in the user's file, or in the harness when Harness (0: no position)
	Harness   bool   // located in shaders/user_constraint.wgsl or its generated `const D` line
	Text      string
	Code      string // the offending line ("" without a position)
}

// WGSLError is a user constraint that does not compile.
type WGSLError struct {
	Path        string
	Diagnostics []WGSLDiagnostic
	Hints       []string
	Err         *gpu.CompileError // the compiler's own error, line numbers in the assembled module
}

func (e *WGSLError) Unwrap() error { return e.Err }

func (e *WGSLError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "posterior: WGSL constraint %s does not compile:", e.Path)
	for _, d := range e.Diagnostics {
		switch {
		case d.Line == 0:
			fmt.Fprintf(&sb, "\n%s: %s: %s", e.Path, d.Kind, d.Text)
		case d.Harness:
			fmt.Fprintf(&sb, "\n%s: %s in the osds harness, line %d (shaders/%s:%d:%d), where it uses your declarations: %s",
				e.Path, d.Kind, d.Line, harnessFile, d.Line, d.Col, d.Text)
		default:
			fmt.Fprintf(&sb, "\n%s:%d:%d: %s: %s", e.Path, d.Line, d.Col, d.Kind, d.Text)
		}
		if d.Code != "" {
			code := strings.ReplaceAll(d.Code, "\t", " ")
			fmt.Fprintf(&sb, "\n    %s", code)
			if d.Col >= 1 && d.Col <= len(code)+1 {
				fmt.Fprintf(&sb, "\n    %s^", caretPad(code, d.Col))
			}
		}
	}
	for _, h := range e.Hints {
		fmt.Fprintf(&sb, "\n  %s", h)
	}
	return sb.String()
}

// caretPad is the indentation under code that puts a caret below column col (a byte
// offset, as the compiler counts): one space per character before it.
func caretPad(code string, col int) string {
	n := 0
	for i := range code {
		if i >= col-1 {
			break
		}
		n++
	}
	return strings.Repeat(" ", n)
}

// compileError places the compiler's messages in the user's file or the harness and
// adds what the harness expects when a message is the harness's.
func (m *wgslModule) compileError(path, src string, ce *gpu.CompileError) error {
	e := &WGSLError{Path: path, Err: ce}
	userLines := strings.Split(src, "\n")
	inHarness := false
	seen := map[string]bool{}
	for _, msg := range ce.Messages {
		d := WGSLDiagnostic{Kind: msg.Kind, Col: msg.Col, Text: msg.Text}
		switch n := msg.Line; {
		case n <= 0:
		case n <= m.userLines:
			d.Line = n
			if n <= len(userLines) {
				d.Code = strings.TrimSuffix(userLines[n-1], "\r")
			}
		case n < m.tailFrom:
			d.Harness, d.Line = true, n-m.harnessFrom+1
			d.Code = m.harness[d.Line-1]
		default:
			// The generated `const D` line: no line of any file, so no number.
			d.Harness = true
			d.Text = "in the line the harness generates to declare D: " + d.Text
			if i := n - m.tailFrom; i < len(m.tail) {
				d.Code = m.tail[i]
			}
		}
		if d.Harness {
			inHarness = true
			// The harness calls log_reward from two entry points: say it once.
			key := d.Kind + "\x00" + d.Text
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		e.Diagnostics = append(e.Diagnostics, d)
	}
	if len(e.Diagnostics) == 0 {
		e.Diagnostics = []WGSLDiagnostic{{Kind: "error", Text: ce.Raw}}
	}
	if inHarness {
		e.Hints = append(e.Hints, "check your function signatures: the harness calls "+sigLogReward+" and, when you define it, "+sigGradLogReward+
			"; it declares D (the row width), Sample = array<f32, D> and names starting with osds_, which your file must not redeclare")
		for _, fn := range []string{"log_reward", "grad_log_reward"} {
			if f, ok := findFn(src, fn); ok {
				e.Hints = append(e.Hints, fmt.Sprintf("yours: %s:%d: %s", path, f.line, f.decl))
			} else if fn == "log_reward" {
				e.Hints = append(e.Hints, fmt.Sprintf("%s defines no log_reward", path))
			}
		}
	}
	return e
}

// ---------------------------------------------------------------------------------------
// Finding declarations in WGSL text.

// stripComments replaces WGSL comments (line comments and nested block comments) by
// spaces, keeping line breaks, so that offsets and line numbers stay those of src.
func stripComments(src string) string {
	b := []byte(src)
	depth := 0
	for i := 0; i < len(b); i++ {
		switch {
		case depth == 0 && b[i] == '/' && i+1 < len(b) && b[i+1] == '/':
			for ; i < len(b) && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			depth++
			b[i], b[i+1] = ' ', ' '
			i++
		case depth > 0 && b[i] == '*' && i+1 < len(b) && b[i+1] == '/':
			depth--
			b[i], b[i+1] = ' ', ' '
			i++
		case depth > 0 && b[i] != '\n' && b[i] != '\r':
			b[i] = ' '
		}
	}
	return string(b)
}

type fnDecl struct {
	line int    // 1-based line of `fn`
	decl string // the signature, whitespace collapsed, up to the body
}

var fnDeclRE = map[string]*regexp.Regexp{
	"log_reward":      regexp.MustCompile(`\bfn\s+log_reward\s*\(`),
	"grad_log_reward": regexp.MustCompile(`\bfn\s+grad_log_reward\s*\(`),
}

// findFn finds the declaration of function name outside comments.
func findFn(src, name string) (fnDecl, bool) {
	code := stripComments(src)
	loc := fnDeclRE[name].FindStringIndex(code)
	if loc == nil {
		return fnDecl{}, false
	}
	end := strings.IndexByte(code[loc[0]:], '{')
	if end < 0 {
		end = len(code) - loc[0]
	}
	decl := strings.Join(strings.Fields(code[loc[0]:loc[0]+end]), " ")
	return fnDecl{line: strings.Count(code[:loc[0]], "\n") + 1, decl: decl}, true
}
