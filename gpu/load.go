package gpu

/*
#cgo linux LDFLAGS: -ldl -lpthread
#include "procs.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"
)

// DawnPackage and DawnVersion name the npm package `make setup` unpacks into .runtime/.
const (
	DawnPackage = "bun-webgpu"
	DawnVersion = "0.1.7"
)

// ErrNoRuntime is wrapped by the error returned when no WebGPU runtime library can be loaded.
var ErrNoRuntime = errors.New("WebGPU runtime not available")

var (
	loadOnce sync.Once
	loadErr  error
	libPath  string
)

// runtimeLibName is the file name of the Dawn library inside the npm package for this OS.
func runtimeLibName() string {
	switch runtime.GOOS {
	case "darwin":
		return "libwebgpu_wrapper.dylib"
	case "windows":
		return "webgpu_wrapper.dll"
	default:
		return "libwebgpu_wrapper.so"
	}
}

// npmPlatform is the <os>-<arch> suffix of the npm package that carries the runtime.
func npmPlatform() string {
	osName := runtime.GOOS
	if osName == "windows" {
		osName = "win32"
	}
	arch := runtime.GOARCH
	if arch == "amd64" {
		arch = "x64"
	}
	return osName + "-" + arch
}

// candidatePaths lists where the runtime library is looked for, in order.
func candidatePaths() []string {
	if p := os.Getenv("OSDS_WEBGPU_LIB"); p != "" {
		return []string{p}
	}
	rel := filepath.Join(".runtime", DawnPackage+"-"+npmPlatform()+"-"+DawnVersion, runtimeLibName())
	var dirs []string
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, wd)
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		for {
			p := filepath.Join(d, rel)
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return out
}

// load opens the runtime library once per process.
func load() error {
	loadOnce.Do(func() {
		paths := candidatePaths()
		var tried []string
		for _, p := range paths {
			if os.Getenv("OSDS_WEBGPU_LIB") == "" {
				if _, err := os.Stat(p); err != nil {
					continue
				}
			}
			cpath := C.CString(p)
			var buf [512]C.char
			rc := C.osds_load(cpath, &buf[0], C.size_t(len(buf)))
			C.free(unsafe.Pointer(cpath))
			if rc == 0 {
				libPath = p
				return
			}
			tried = append(tried, fmt.Sprintf("%s: %s", p, C.GoString(&buf[0])))
		}
		if len(tried) == 0 {
			loadErr = fmt.Errorf("%w: %s not found (looked for .runtime/%s-%s-%s/ above the working directory and the executable); run `make setup`, or set OSDS_WEBGPU_LIB to a webgpu.h runtime library (Dawn or wgpu-native)",
				ErrNoRuntime, runtimeLibName(), DawnPackage, npmPlatform(), DawnVersion)
			return
		}
		loadErr = fmt.Errorf("%w: could not load %v; run `make setup` to install the Dawn runtime, or point OSDS_WEBGPU_LIB at a webgpu.h runtime library", ErrNoRuntime, tried)
	})
	return loadErr
}

// LibraryPath returns the path of the loaded runtime library, loading it if needed.
func LibraryPath() (string, error) {
	if err := load(); err != nil {
		return "", err
	}
	return libPath, nil
}

// getenv is os.Getenv; a variable keeps the package's environment reads greppable.
var getenv = os.Getenv

// isDawn reports whether the loaded runtime is Dawn (it exports wgpuDeviceTick, which
// wgpu-native does not); Dawn-only descriptors are chained only then.
func isDawn() bool { return C.osds_is_dawn != 0 }
