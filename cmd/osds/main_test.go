package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// buildOSDS compiles the command once per test binary.
func buildOSDS(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "osds")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestInfoWithoutRuntimeSaysHowToInstall(t *testing.T) {
	bin := buildOSDS(t)
	cmd := exec.Command(bin, "info")
	cmd.Env = append(os.Environ(), "OSDS_WEBGPU_LIB=/nonexistent")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("osds info with a missing runtime exited 0:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("unexpected error %v", err)
	}
	if !strings.Contains(string(out), "make setup") || !strings.Contains(string(out), "/nonexistent") {
		t.Fatalf("message does not name the missing library and `make setup`:\n%s", out)
	}
}

func TestInfoListsAdapterAndPassesSelfTest(t *testing.T) {
	bin := buildOSDS(t)
	out, err := exec.Command(bin, "info").CombinedOutput()
	if err != nil {
		t.Fatalf("osds info: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"runtime library:", "adapter 0:", "backend:", "type:", "driver:", "limits:", "features:", "self-test on adapter 0", ": ok ("} {
		if !strings.Contains(s, want) {
			t.Fatalf("osds info output lacks %q:\n%s", want, s)
		}
	}
	// On machines without a GPU (CI) the adapter is lavapipe: Vulkan backend, CPU type.
	if strings.Contains(s, "llvmpipe") && (!strings.Contains(s, "backend:  Vulkan") || !strings.Contains(s, "type:     CPU")) {
		t.Fatalf("lavapipe listed without Vulkan backend / CPU type:\n%s", s)
	}
}

func TestUnknownCommandAndBadFlags(t *testing.T) {
	bin := buildOSDS(t)
	out, err := exec.Command(bin, "frobnicate").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: err=%v\n%s", err, out)
	}
	out, err = exec.Command(bin, "info", "--bogus").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bogus") {
		t.Fatalf("bad flag: err=%v\n%s", err, out)
	}
}

// TestHelpArgumentNames guards against pflag's convention that the first `backquoted`
// word of a usage string becomes the flag's argument name: every name in every command's
// --help must be a type (string, int, ...) or an upper-case placeholder, never a word of
// the prose.
func TestHelpArgumentNames(t *testing.T) {
	bin := buildOSDS(t)
	flagLine := regexp.MustCompile(`^\s+(?:-\w, )?--[\w-]+ (\S+)\s{2,}`)
	allowed := regexp.MustCompile(`^(string|u?int(8|16|32|64)?|float(32|64)?|duration|strings|ints|[A-Z][A-Z0-9_]*)$`)
	invocations := [][]string{{"prior", "train"}, {"prior", "sample"}, {"prior", "eval"}}
	for _, c := range commands() {
		if c.name != "prior" {
			invocations = append(invocations, []string{c.name})
		}
	}
	for _, inv := range invocations {
		out, _ := exec.Command(bin, append(inv, "--help")...).CombinedOutput()
		flags := 0
		for _, line := range strings.Split(string(out), "\n") {
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			flags++
			if !allowed.MatchString(m[1]) {
				t.Errorf("osds %s --help: argument name %q (a backquoted word of the usage?):\n%s", strings.Join(inv, " "), m[1], line)
			}
		}
		if flags == 0 && !strings.Contains(string(out), "--") {
			t.Errorf("osds %s --help listed no flags:\n%s", strings.Join(inv, " "), out)
		}
	}
}
