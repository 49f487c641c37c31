package kernels

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"

	"osds"
	"osds/gpu"
)

// UserWGSLKind is the contract of one family of user-written WGSL functions compiled with
// the harness shaders/user_function.wgsl: the names the harness calls and declares, and
// who declares the row width D. WGSL constraints (package posterior) and WGSL targets
// (package train) are the two kinds; they share the assembling, the compiling, the
// placing of compiler messages in the user's file and the finite-difference gradient.
type UserWGSLKind struct {
	What  string // how messages name the file's role, e.g. "posterior: WGSL constraint"
	Row   string // the alias the harness declares for one row, array<f32, D>: "Sample"
	Arg   string // the parameter's name in the signatures messages show: "x"
	Fn    string // the function the user must define, e.g. "log_reward"
	Grad  string // its optional exact gradient, e.g. "grad_log_reward"
	DimIs string // what D is, for messages: "the prior's row width"
	// UserD: the user's file declares D itself (and the caller reads it, UserWGSL.Dim);
	// otherwise the harness generates `const D: u32 = <the width of x>u;`.
	UserD bool
}

// FnSig is the signature the harness calls, e.g. "fn log_reward(x: Sample) -> f32".
func (k *UserWGSLKind) FnSig() string {
	return fmt.Sprintf("fn %s(%s: %s) -> f32", k.Fn, k.Arg, k.Row)
}

// GradSig is the signature of the optional gradient, e.g.
// "fn grad_log_reward(x: Sample) -> Sample".
func (k *UserWGSLKind) GradSig() string {
	return fmt.Sprintf("fn %s(%s: %s) -> %s", k.Grad, k.Arg, k.Row, k.Row)
}

// UserWGSL is a user's WGSL file of some kind, compiled with the harness for rows x [B, D].
//
// # Gradient
//
// With the kind's Grad function (e.g. grad_log_reward) defined, the gradient is the
// user's. Without it, the harness takes central finite differences of Fn,
//
//	∂f/∂x_i ≈ (f(x + h_i e_i) − f(x − h_i e_i)) / (2 h_i),   h_i = Step · max(|x_i|, 1),
//
// 2·D evaluations of f per row, one invocation per (row, coordinate). The error is
// O(Step²)·|∂³f| plus f32 rounding of about 6e-8·|f|/Step; the default Step = 1e-2 gives
// ~2e-4 relative on a quartic with |f| ~ 10. The cost is paid only where a gradient is
// recorded (the Langevin drift, MALA local search).
//
// # Errors
//
// The module compiled is the user's text followed by the harness, so that compiler
// messages keep the user's line numbers: a *WGSLError reports them as FILE:LINE:COL with
// the offending line and a caret. Messages located in the harness (a wrong signature, a
// redeclared name) say so and name the signatures the harness expects.
type UserWGSL struct {
	Kind   *UserWGSLKind
	Path   string  // the file, named in messages; read when Source is ""
	Source string  // the WGSL text ("" reads Path)
	Step   float64 // relative finite-difference step (0: DefaultFDStep); unused with Grad
	// Dim is the D the caller read from the file of a UserD kind: Build checks x's width
	// against it, and the module asserts it, so that the harness never reads rows of
	// another width than the user's own D. Unused when the harness declares D.
	Dim int
}

// DefaultFDStep is the default relative step of the finite-difference gradient.
const DefaultFDStep = 1e-2

// MaxUserWGSLWidth bounds D: a row lives in the invocation's private memory (the WGSL
// specification guarantees 8192 bytes, D ≤ 2048; Dawn accepts 64 KiB), and compile
// times grow with D.
const MaxUserWGSLWidth = 1 << 14

// userHarness is the harness template, an embedded shader.
const userHarness = "user_function.wgsl"

// Name is how messages call the file.
func (u UserWGSL) Name() string {
	if u.Path != "" {
		return u.Path
	}
	return "<WGSL source>"
}

func (u UserWGSL) kind() *UserWGSLKind {
	if u.Kind == nil {
		return &UserWGSLKind{What: "user WGSL", Row: "Row", Arg: "x", Fn: "f", Grad: "grad_f", DimIs: "the row width"}
	}
	return u.Kind
}

// Text returns the WGSL text (reading Path when Source is empty) after checking that it
// defines the kind's function.
func (u UserWGSL) Text() (string, error) {
	k := u.kind()
	src := u.Source
	if src == "" {
		if u.Path == "" {
			return "", fmt.Errorf("%s with neither a file nor a source", k.What)
		}
		b, err := os.ReadFile(u.Path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", k.What, err)
		}
		src = string(b)
	}
	if _, ok := FindWGSLFn(src, k.Fn); !ok {
		return "", fmt.Errorf("%s %s defines no %s: it must define %s (and may define %s), where D is %s and %s = array<f32, D>",
			k.What, u.Name(), k.Fn, k.FnSig(), k.GradSig(), k.DimIs, k.Row)
	}
	return src, nil
}

// HasGradient reports whether the source defines the kind's gradient function
// (otherwise Build records finite differences).
func (u UserWGSL) HasGradient() (bool, error) {
	src, err := u.Text()
	if err != nil {
		return false, err
	}
	_, ok := FindWGSLFn(src, u.kind().Grad)
	return ok, nil
}

// Check reads the source, checks that it defines the kind's function, that rows of width
// D fit the harness and that the finite-difference step is sane. Compiling needs the
// device and happens in Build.
func (u UserWGSL) Check(D int) error {
	if _, err := u.Text(); err != nil {
		return err
	}
	k := u.kind()
	if D < 1 || D > MaxUserWGSLWidth {
		return fmt.Errorf("%s %s: rows of %d values; a %s holds 1..%d (array<f32, D> lives in the invocation's private memory)", k.What, u.Name(), D, k.Row, MaxUserWGSLWidth)
	}
	if k.UserD && D != u.Dim {
		return fmt.Errorf("%s %s declares D = %d, but the rows given have %d values", k.What, u.Name(), u.Dim, D)
	}
	return u.CheckStep()
}

// CheckStep checks the finite-difference step: 0 (the default) or 0 < h < 1.
func (u UserWGSL) CheckStep() error {
	if !(u.Step >= 0) || u.Step >= 1 || math.IsInf(u.Step, 0) {
		return fmt.Errorf("%s %s: finite-difference step %v (want 0 < h < 1, or 0 for the default %g)", u.kind().What, u.Name(), u.Step, DefaultFDStep)
	}
	return nil
}

// Compile compiles the source with the harness for rows of width D and returns the first
// error (a *WGSLError for compiler messages), keeping nothing but the pipelines, cached in
// l for Build: call it where the file is chosen, so that a broken file is reported before
// any training graph is built.
func (u UserWGSL) Compile(l *Library, D int) error {
	if err := u.Check(D); err != nil {
		return err
	}
	x, err := NewTensor(l.Device(), u.kind().What+" probe", 1, D)
	if err != nil {
		return err
	}
	defer x.Release()
	out, err := NewTensor(l.Device(), u.kind().What+" probe out", 1)
	if err != nil {
		return err
	}
	defer out.Release()
	dx, err := NewTensor(l.Device(), u.kind().What+" probe dx", 1, D)
	if err != nil {
		return err
	}
	defer dx.Release()
	value, grad, err := u.Build(l, x, out, dx)
	if err != nil {
		return err
	}
	value.Release()
	grad.Release()
	return nil
}

// Build compiles the user's source with the harness for the rows of x [B, D] and records
// value (out [B] = f(x_b)) and, when dx is not nil, grad (dx [B, D] = ∇f(x_b): the user's
// gradient function or central finite differences). The pipelines are cached in l, so
// building again for another batch compiles nothing.
func (u UserWGSL) Build(l *Library, x, out, dx *Tensor) (value, grad *Op, err error) {
	k := u.kind()
	if x == nil || out == nil {
		return nil, nil, fmt.Errorf("%s %s: x and out must not be nil", k.What, u.Name())
	}
	B, D := x.Rows(), x.Cols()
	if err := u.Check(D); err != nil {
		return nil, nil, err
	}
	if out.Len() != B {
		return nil, nil, fmt.Errorf("%s %s: out has %d elements for a batch of %d rows", k.What, u.Name(), out.Len(), B)
	}
	if dx != nil && (dx.Rows() != B || dx.Cols() != D) {
		return nil, nil, fmt.Errorf("%s %s: dx is %v, want [%d, %d] like x", k.What, u.Name(), dx.Shape, B, D)
	}
	src, err := u.Text()
	if err != nil {
		return nil, nil, err
	}
	_, hasGrad := FindWGSLFn(src, k.Grad)
	mod, err := assembleUserWGSL(k, src, D, hasGrad)
	if err != nil {
		return nil, nil, err
	}
	h := u.Step
	if h == 0 {
		h = DefaultFDStep
	}
	fail := func(err error) (*Op, *Op, error) {
		value.Release()
		var ce *gpu.CompileError
		if errors.As(err, &ce) {
			return nil, nil, mod.compileError(k, u.Name(), src, ce)
		}
		return nil, nil, fmt.Errorf("%s %s: %w", k.What, u.Name(), err)
	}
	ps := Params{B, float32(h), 0, 0}
	if value, err = l.BuildSource(u.Name(), mod.text, "osds_value", []*Tensor{x, out}, ps, Grid1D(B, 64)); err != nil {
		return fail(err)
	}
	if dx == nil {
		return value, nil, nil
	}
	entry, n := "osds_grad_fd", B*D
	if hasGrad {
		entry, n = "osds_grad_user", B
	}
	if grad, err = l.BuildSource(u.Name(), mod.text, entry, []*Tensor{x, dx}, ps, Grid1D(n, 64)); err != nil {
		return fail(err)
	}
	return value, grad, nil
}

// ---------------------------------------------------------------------------------------
// Assembling the module and placing compiler messages.

// userModule is the user's source followed by the harness and the generated lines.
type userModule struct {
	text        string
	userLines   int      // lines 1..userLines are the user's
	harness     []string // the harness as compiled (names filled in, blanked section included)
	harnessFrom int      // module line of the harness's line 1
	tail        []string // generated lines after the harness
	tailFrom    int
	tailDoc     string // what the generated lines do, for messages located in them
}

func assembleUserWGSL(k *UserWGSLKind, src string, D int, hasGrad bool) (*userModule, error) {
	hs, err := osds.Shader(userHarness)
	if err != nil {
		return nil, err
	}
	fill := strings.NewReplacer("$ROW", k.Row, "$GRAD", k.Grad, "$FN", k.Fn)
	harness := strings.Split(strings.TrimSuffix(hs, "\n"), "\n")
	in := false
	for i, line := range harness {
		switch strings.TrimSpace(line) {
		case "//!if grad":
			in = true
		case "//!end":
			in = false
		default:
			if in && !hasGrad {
				harness[i] = ""
			} else {
				harness[i] = fill.Replace(line)
			}
		}
	}
	user := src
	if !strings.HasSuffix(user, "\n") {
		user += "\n"
	}
	m := &userModule{userLines: strings.Count(user, "\n"), harness: harness}
	m.harnessFrom = m.userLines + 1
	if k.UserD {
		// The caller sized its tensors with the D it read from the file; a D the compiler
		// evaluates differently must not compile.
		m.tail = []string{fmt.Sprintf("const_assert D == %du;", D)}
		m.tailDoc = fmt.Sprintf("in the line osds generates to check that D is the %d it read from your file", D)
	} else {
		m.tail = []string{fmt.Sprintf("const D: u32 = %du;", D)}
		m.tailDoc = "in the line the harness generates to declare D"
	}
	m.tailFrom = m.harnessFrom + len(harness)
	m.text = user + strings.Join(harness, "\n") + "\n" + strings.Join(m.tail, "\n") + "\n"
	return m, nil
}

// WGSLDiagnostic is one compiler message of a user's WGSL file, placed in the user's file
// or in the harness.
type WGSLDiagnostic struct {
	Kind      string // "error", "warning" or "info"
	Line, Col int    // in the user's file, or in the harness when Harness (0: no position)
	Harness   bool   // located in shaders/user_function.wgsl or its generated lines
	Text      string
	Code      string // the offending line ("" without a position)
}

// WGSLError is a user's WGSL file that does not compile.
type WGSLError struct {
	What        string // the file's role, e.g. "posterior: WGSL constraint"
	Path        string
	Diagnostics []WGSLDiagnostic
	Hints       []string
	Err         *gpu.CompileError // the compiler's own error, line numbers in the assembled module
}

// Unwrap returns the compiler's error.
func (e *WGSLError) Unwrap() error { return e.Err }

// Error lists the messages as FILE:LINE:COL with the offending line and a caret, then
// the hints.
func (e *WGSLError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s does not compile:", e.What, e.Path)
	for _, d := range e.Diagnostics {
		switch {
		case d.Line == 0:
			fmt.Fprintf(&sb, "\n%s: %s: %s", e.Path, d.Kind, d.Text)
		case d.Harness:
			// No column: the harness as compiled has its names filled in, so columns
			// after them are not those of the template file.
			fmt.Fprintf(&sb, "\n%s: %s in the osds harness, line %d (shaders/%s:%d), where it uses your declarations: %s",
				e.Path, d.Kind, d.Line, userHarness, d.Line, d.Text)
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
func (m *userModule) compileError(k *UserWGSLKind, path, src string, ce *gpu.CompileError) error {
	e := &WGSLError{What: k.What, Path: path, Err: ce}
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
			// A generated line: no line of any file, so no number.
			d.Harness = true
			d.Text = m.tailDoc + ": " + d.Text
			if i := n - m.tailFrom; i < len(m.tail) {
				d.Code = m.tail[i]
			}
		}
		if d.Harness {
			inHarness = true
			// The harness calls the user's function from two entry points: say it once.
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
		declares := "D (" + k.DimIs + "), " + k.Row + " = array<f32, D>"
		if k.UserD {
			declares = k.Row + " = array<f32, D> (with your D)"
		}
		e.Hints = append(e.Hints, "check your function signatures: the harness calls "+k.FnSig()+" and, when you define it, "+k.GradSig()+
			"; it declares "+declares+" and names starting with osds_, which your file must not redeclare")
		for _, fn := range []string{k.Fn, k.Grad} {
			if f, ok := FindWGSLFn(src, fn); ok {
				e.Hints = append(e.Hints, fmt.Sprintf("yours: %s:%d: %s", path, f.Line, f.Text))
			} else if fn == k.Fn {
				e.Hints = append(e.Hints, fmt.Sprintf("%s defines no %s", path, k.Fn))
			}
		}
	}
	return e
}

// ---------------------------------------------------------------------------------------
// Finding declarations in WGSL text.

// StripWGSLComments replaces WGSL comments (line comments and nested block comments) by
// spaces, keeping line breaks, so that offsets and line numbers stay those of src.
func StripWGSLComments(src string) string {
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

// WGSLDecl is a declaration found in WGSL text.
type WGSLDecl struct {
	Line int    // 1-based line where it starts
	Text string // the declaration, whitespace collapsed: a function's signature up to its body, a const's whole text up to ';'
	// Type and Init are a const's declared type ("" when it has none) and initializer.
	Type, Init string
}

var (
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// constTmpl matches `const NAME [: TYPE] = INIT;` (INIT without ';'); FindWGSLConst
	// splices the name in.
	constTmpl = `(?:^|[;{}\s])const\s+%s\s*(?::\s*([^=;]*?))?\s*=\s*([^;]*);`
)

// FindWGSLFn finds the declaration of function name outside comments.
func FindWGSLFn(src, name string) (WGSLDecl, bool) {
	if !identRE.MatchString(name) {
		return WGSLDecl{}, false
	}
	code := StripWGSLComments(src)
	loc := regexp.MustCompile(`\bfn\s+` + name + `\s*\(`).FindStringIndex(code)
	if loc == nil {
		return WGSLDecl{}, false
	}
	end := strings.IndexByte(code[loc[0]:], '{')
	if end < 0 {
		end = len(code) - loc[0]
	}
	decl := strings.Join(strings.Fields(code[loc[0]:loc[0]+end]), " ")
	return WGSLDecl{Line: strings.Count(code[:loc[0]], "\n") + 1, Text: decl}, true
}

// FindWGSLConst finds the first declaration `const name[: type] = init;` outside
// comments. It does not tell module scope from function scope: callers that read a
// module constant from it (a WGSL target's D) have the compiler assert what they read.
func FindWGSLConst(src, name string) (WGSLDecl, bool) {
	if !identRE.MatchString(name) {
		return WGSLDecl{}, false
	}
	code := StripWGSLComments(src)
	sm := regexp.MustCompile(fmt.Sprintf(constTmpl, name)).FindStringSubmatchIndex(code)
	if sm == nil {
		return WGSLDecl{}, false
	}
	start := sm[0] + strings.Index(code[sm[0]:sm[1]], "const")
	d := WGSLDecl{
		Line: strings.Count(code[:start], "\n") + 1,
		Text: strings.Join(strings.Fields(code[start:sm[1]]), " "),
		Init: strings.TrimSpace(code[sm[4]:sm[5]]),
	}
	if sm[2] >= 0 {
		d.Type = strings.TrimSpace(code[sm[2]:sm[3]])
	}
	return d, true
}
