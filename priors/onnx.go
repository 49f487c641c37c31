package priors

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
	"osds/nn/onnx"
)

// ONNXPrior is a generator x = f(z) imported from an ONNX file (exported from PyTorch,
// see docs/onnx.md): z ~ N(0, I) of the graph input's size, x its output as images in
// [0, 1]. It is frozen (no parameters to train) and runs on osds's kernels like any
// other prior.
type ONNXPrior struct {
	ref     ONNXRef
	model   *onnx.Model
	layer   *onnx.Layer
	h, w, c int
}

// ONNXRef is a prior reference of the form PATH.onnx[,latent=N][,shape=CxHxW]
// [,data=DATASET][,output=NAME]: the options fill in what the file cannot say (a
// symbolic output shape, the dataset whose classifier is the default) and check what it
// does (latent must equal the input's size).
type ONNXRef struct {
	Path    string
	Latent  int    // 0: the input's size
	Shape   []int  // C, H, W of the output images (nil: the output's shape)
	Dataset string // "" unless given
	Output  string // "" : the first output
}

// IsONNXRef reports whether ref names an ONNX file (with or without options).
func IsONNXRef(ref string) bool {
	path, _, _ := strings.Cut(ref, ",")
	return strings.EqualFold(filepath.Ext(strings.TrimSpace(path)), ".onnx")
}

// ParseONNXRef parses PATH.onnx[,key=value...].
func ParseONNXRef(ref string) (ONNXRef, error) {
	parts := strings.Split(ref, ",")
	r := ONNXRef{Path: strings.TrimSpace(parts[0])}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return r, fmt.Errorf("prior %q: option %q is not KEY=VALUE (want latent=N, shape=CxHxW, data=NAME, output=NAME)", ref, p)
		}
		switch k {
		case "latent":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return r, fmt.Errorf("prior %q: latent=%s (want a positive integer)", ref, v)
			}
			r.Latent = n
		case "shape":
			dims := strings.Split(v, "x")
			if len(dims) != 3 {
				return r, fmt.Errorf("prior %q: shape=%s (want CxHxW, e.g. 1x28x28)", ref, v)
			}
			for _, d := range dims {
				n, err := strconv.Atoi(d)
				if err != nil || n < 1 {
					return r, fmt.Errorf("prior %q: shape=%s (want CxHxW of positive integers, e.g. 1x28x28)", ref, v)
				}
				r.Shape = append(r.Shape, n)
			}
		case "data":
			r.Dataset = v
		case "output":
			r.Output = v
		default:
			return r, fmt.Errorf("prior %q: unknown option %q (want latent=N, shape=CxHxW, data=NAME, output=NAME)", ref, k)
		}
	}
	return r, nil
}

// String is the reference with its options, the path as given.
func (r ONNXRef) String() string {
	s := r.Path
	if r.Latent > 0 {
		s += fmt.Sprintf(",latent=%d", r.Latent)
	}
	if r.Shape != nil {
		s += fmt.Sprintf(",shape=%dx%dx%d", r.Shape[0], r.Shape[1], r.Shape[2])
	}
	if r.Dataset != "" {
		s += ",data=" + r.Dataset
	}
	if r.Output != "" {
		s += ",output=" + r.Output
	}
	return s
}

// LoadONNXPrior imports the generator ref names. The image shape comes from shape= or
// from the output: [B, C, H, W] (NCHW, as PyTorch's convolutions make it), [B, H, W]
// (grayscale) or [B, N] with N a square (a flat grayscale image). Where the file leaves
// the output's axes symbolic (the exporter often does after a ConvTranspose), the
// graph is built once for a batch of 1 on d to find them.
func LoadONNXPrior(d *gpu.Device, ref string) (*ONNXPrior, error) {
	r, err := ParseONNXRef(ref)
	if err != nil {
		return nil, err
	}
	m, err := onnx.Load(r.Path)
	if err != nil {
		return nil, err
	}
	p := &ONNXPrior{ref: r, model: m}
	o := m.Outputs[0]
	if r.Output != "" {
		found := false
		for _, v := range m.Outputs {
			if v.Name == r.Output {
				o, found = v, true
			}
		}
		if !found {
			return nil, fmt.Errorf("no output %q", r.Output)
		}
	}
	dims := o.Shape
	if len(dims) > 0 {
		dims = dims[1:]
	}
	if r.Shape == nil && slices.Contains(dims, -1) {
		l := kernels.NewLibrary(d)
		g, err := m.Build(l, 1, onnx.BuildOptions{Output: r.Output})
		if err != nil {
			l.Release()
			return nil, err
		}
		dims = append([]int(nil), g.OutputShape[1:]...)
		g.Release()
		l.Release()
	}
	switch {
	case r.Shape != nil:
		p.c, p.h, p.w = r.Shape[0], r.Shape[1], r.Shape[2]
	case len(dims) == 3 && dims[0] > 0 && dims[1] > 0 && dims[2] > 0:
		p.c, p.h, p.w = dims[0], dims[1], dims[2]
	case len(dims) == 2 && dims[0] > 0 && dims[1] > 0:
		p.c, p.h, p.w = 1, dims[0], dims[1]
	case len(dims) == 1 && dims[0] > 0 && isSquare(dims[0]):
		side := intSqrt(dims[0])
		p.c, p.h, p.w = 1, side, side
	default:
		return nil, fmt.Errorf("cannot tell the image shape from the output %s of shape %v: give it as %s,shape=CxHxW", o, dims, r.Path)
	}
	shape := []int{p.c, p.h, p.w}
	if p.layer, err = onnx.NewLayer(m, r.Output, shape); err != nil {
		return nil, err
	}
	if r.Latent > 0 && r.Latent != p.layer.InWidth() {
		return nil, fmt.Errorf("latent=%d, but the model's input %s has %d values per row", r.Latent, m.Input, p.layer.InWidth())
	}
	if p.c > 1 {
		p.layer.OutImage = &[3]int{p.h, p.w, p.c}
	}
	return p, nil
}

func isSquare(n int) bool { s := intSqrt(n); return s*s == n }

var _ Prior = (*ONNXPrior)(nil)

// Kind is "onnx".
func (p *ONNXPrior) Kind() string { return "onnx" }

// Architecture describes the imported graph.
func (p *ONNXPrior) Architecture() any {
	return map[string]any{"file": p.ref.Path, "opset": p.model.Opset, "producer": p.model.Producer, "input": p.model.Input.String()}
}

// Params returns nil: the imported generator is frozen.
func (p *ONNXPrior) Params() []*nn.Param { return nil }

// Release frees nothing: the graph's GPU state lives in the passes built from it.
func (p *ONNXPrior) Release() {}

// LatentDim is the size of the graph input's rows.
func (p *ONNXPrior) LatentDim() int { return p.layer.InWidth() }

// Image is the shape of x.
func (p *ONNXPrior) Image() (h, w, c int) { return p.h, p.w, p.c }

// Generator is the imported graph as a one-layer network.
func (p *ONNXPrior) Generator() *nn.Sequential {
	return &nn.Sequential{Layers: []*nn.Named{{Name: "onnx", Layer: p.layer}}}
}

// Dataset is the data= option ("" when not given).
func (p *ONNXPrior) Dataset() string { return p.ref.Dataset }
