// Package osds embeds the WGSL sources of shaders/ so that every binary carries its kernels.
package osds

import (
	"embed"
	"fmt"
)

//go:embed shaders/*.wgsl
var shaderFiles embed.FS

// Shader returns the source of shaders/<name> (for example "selftest.wgsl").
func Shader(name string) (string, error) {
	b, err := shaderFiles.ReadFile("shaders/" + name)
	if err != nil {
		return "", fmt.Errorf("osds: no embedded shader %q: %w", name, err)
	}
	return string(b), nil
}
