package kernels

import (
	"strings"
	"testing"
)

// TestFindWGSLDeclarations: declarations are found outside comments (line and nested
// block comments), with their line, type and initializer.
func TestFindWGSLDeclarations(t *testing.T) {
	src := "// const D: u32 = 9u; in a comment\n/* fn log_density(z: State) -> f32 { /* nested */ } */\nconst D: u32 = 2u;\nconst LOG_Z = -1.5e-1 ;\nconst Dx: f32 = 3.0;\n\nfn log_density(z: State)\n\t-> f32 {\n\treturn 0.0;\n}\n"
	cases := []struct {
		name            string
		line            int
		typ, init, text string
	}{
		{"D", 3, "u32", "2u", "const D: u32 = 2u;"},
		{"LOG_Z", 4, "", "-1.5e-1", "const LOG_Z = -1.5e-1 ;"},
		{"Dx", 5, "f32", "3.0", "const Dx: f32 = 3.0;"},
	}
	for _, c := range cases {
		d, ok := FindWGSLConst(src, c.name)
		if !ok || d.Line != c.line || d.Type != c.typ || d.Init != c.init || d.Text != c.text {
			t.Errorf("const %s: %+v, %v; want line %d, type %q, init %q, text %q", c.name, d, ok, c.line, c.typ, c.init, c.text)
		}
	}
	if d, ok := FindWGSLConst(src, "SIGMA2"); ok {
		t.Errorf("SIGMA2 found: %+v", d)
	}
	f, ok := FindWGSLFn(src, "log_density")
	if !ok || f.Line != 7 || f.Text != "fn log_density(z: State) -> f32" {
		t.Errorf("log_density: %+v, %v; want line 7 outside the block comment", f, ok)
	}
	if _, ok := FindWGSLFn(src, "grad_log_density"); ok {
		t.Error("grad_log_density found")
	}
	if _, ok := FindWGSLFn(src, "a(b"); ok {
		t.Error("a name that is no identifier matched")
	}
	if got := StripWGSLComments(src); strings.Count(got, "\n") != strings.Count(src, "\n") || len(got) != len(src) {
		t.Error("StripWGSLComments changed line breaks or offsets")
	}
}

// TestUserWGSLChecks: the checks made without a device name the file and what was wanted.
func TestUserWGSLChecks(t *testing.T) {
	k := &UserWGSLKind{What: "test: WGSL thing", Row: "Row", Arg: "x", Fn: "f", Grad: "grad_f", DimIs: "the width", UserD: true}
	if k.FnSig() != "fn f(x: Row) -> f32" || k.GradSig() != "fn grad_f(x: Row) -> Row" {
		t.Fatalf("signatures %q, %q", k.FnSig(), k.GradSig())
	}
	u := UserWGSL{Kind: k, Path: "t.wgsl", Source: "fn g(x: Row) -> f32 { return 0.0; }\n", Dim: 3}
	if err := u.Check(3); err == nil || !strings.Contains(err.Error(), "test: WGSL thing t.wgsl defines no f: it must define fn f(x: Row) -> f32") {
		t.Errorf("no f: %v", err)
	}
	u.Source = "fn f(x: Row) -> f32 { return x[0]; }\n"
	if err := u.Check(4); err == nil || !strings.Contains(err.Error(), "declares D = 3, but the rows given have 4 values") {
		t.Errorf("width mismatch: %v", err)
	}
	if err := u.Check(MaxUserWGSLWidth + 1); err == nil {
		t.Error("a width beyond MaxUserWGSLWidth accepted")
	}
	u.Step = 1
	if err := u.Check(3); err == nil || !strings.Contains(err.Error(), "finite-difference step 1") {
		t.Errorf("step 1: %v", err)
	}
	u.Step = 0.05
	if err := u.Check(3); err != nil {
		t.Errorf("a good file: %v", err)
	}
	if _, err := (UserWGSL{Kind: k, Path: "/nonexistent/t.wgsl"}).Text(); err == nil || !strings.Contains(err.Error(), "/nonexistent/t.wgsl") {
		t.Errorf("missing file: %v", err)
	}
}
