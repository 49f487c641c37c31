package posterior

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Spec
		str  string
	}{
		{"class:7", Spec{Kind: "class", Label: 7, Beta: 1, Cap: 1}, "class:7,beta=1"},
		{"class:3,beta=2.5,classifier=x.safetensors", Spec{Kind: "class", Label: 3, Beta: 2.5, Cap: 1, Classifier: "x.safetensors"}, "class:3,beta=2.5,classifier=x.safetensors"},
		{"class:all,beta=2", Spec{Kind: "class", Label: AllClasses, Beta: 2, Cap: 1}, "class:all,beta=2"},
		{"class:all,cap=0.9,beta=20", Spec{Kind: "class", Label: AllClasses, Beta: 20, Cap: 0.9}, "class:all,beta=20,cap=0.9"},
		{"class:4,cap=1", Spec{Kind: "class", Label: 4, Beta: 1, Cap: 1}, "class:4,beta=1"},
		{"inpaint:m.png", Spec{Kind: "inpaint", Mask: "m.png", Sigma: 0.1}, "inpaint:m.png,sigma=0.1,image=0"},
		{"inpaint:m.png,image=12,sigma=0.05", Spec{Kind: "inpaint", Mask: "m.png", Sigma: 0.05, Image: 12}, "inpaint:m.png,sigma=0.05,image=12"},
		{"wgsl:c.wgsl", Spec{Kind: "wgsl", File: "c.wgsl"}, "wgsl:c.wgsl"},
		{"wgsl:c.wgsl,step=0.02", Spec{Kind: "wgsl", File: "c.wgsl", Step: 0.02}, "wgsl:c.wgsl,step=0.02"},
	} {
		got, err := ParseSpec(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if got != c.want || got.String() != c.str {
			t.Fatalf("%q: parsed %+v (%s), want %+v (%s)", c.in, got, got, c.want, c.str)
		}
		again, err := ParseSpec(got.String())
		if err != nil || again != got {
			t.Fatalf("%q does not round-trip: %+v, %v", got.String(), again, err)
		}
		if got.Amortised() != strings.HasPrefix(c.in, "class:all") {
			t.Fatalf("%q: amortised %v", c.in, got.Amortised())
		}
	}
	for _, c := range []struct{ in, want string }{
		{"class", "want class:LABEL"},
		{"class:-1", "not a non-negative integer"},
		{"class:al", `not a non-negative integer or "all"`},
		{"class:1,beta=0", "beta=0 (want a positive number)"},
		{"class:1,sigma=2", `unknown option "sigma" for class`},
		{"class:1,beta=1,beta=2", "given twice"},
		{"class:1,cap=0", "cap=0 (want a positive number)"},
		{"class:1,cap=1.5", "cap=1.5 (want a probability in (0, 1]"},
		{"inpaint:m.png,cap=0.5", `unknown option "cap" for inpaint`},
		{"class:1,beta", "not KEY=VALUE"},
		{"inpaint:m.png,image=-3", "image=-3"},
		{"inpaint:,sigma=1", "no mask file"},
		{"wgsl:,step=0.1", "no .wgsl file"},
		{"wgsl:c.wgsl,beta=2", "beta"},
		{"blur:3", `unknown kind "blur"`},
	} {
		if _, err := ParseSpec(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSpec(%q): error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

func TestReadMask(t *testing.T) {
	dir := t.TempDir()
	img := image.NewGray(image.Rect(0, 0, 4, 3))
	img.SetGray(1, 0, color.Gray{Y: 255})
	img.SetGray(3, 2, color.Gray{Y: 200})
	img.SetGray(2, 1, color.Gray{Y: 100}) // darker than half: free
	path := filepath.Join(dir, "m.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m, err := ReadMask(path, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	for i := range want {
		if m[i] != want[i] {
			t.Fatalf("mask %v, want %v", m, want)
		}
	}
	if _, err := ReadMask(path, 28, 28); err == nil || !strings.Contains(err.Error(), "is 4×3 pixels but the prior makes 28×28 images") {
		t.Fatalf("wrong size: %v", err)
	}
}

// TestOpenCarriesCap: a parsed cap reaches the constraint Open builds, for one class and
// for the amortised family, and survives the spec's round trip through a checkpoint's
// metadata.
func TestOpenCarriesCap(t *testing.T) {
	l := testLibrary(t)
	for _, in := range []string{"class:3,beta=10,cap=0.9", "class:all,beta=10,cap=0.9"} {
		sp, err := ParseSpec(in)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(l, "mnist-vae", sp)
		if err != nil {
			t.Fatal(err)
		}
		var got float64
		switch {
		case s.Family != nil:
			got = s.Family.(ClassFamily).Cap
		default:
			got = s.Constraint.(Class).Cap
		}
		meta := s.Metadata()[MetaConstraint]
		s.Release()
		if got != 0.9 {
			t.Fatalf("%s: the constraint has cap %v, want 0.9", in, got)
		}
		back, err := ParseSpec(meta)
		if err != nil || back.Cap != 0.9 || back.Beta != 10 {
			t.Fatalf("%s: metadata %q parses to %+v (%v)", in, meta, back, err)
		}
	}
}
