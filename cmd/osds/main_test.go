package main

import (
	"os"
	"os/exec"
	"path/filepath"
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
