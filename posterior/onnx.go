package posterior

import (
	"fmt"
	"math"

	"osds/kernels"
	"osds/nn"
	"osds/nn/onnx"
	"osds/priors"
)

// ONNX is the constraint of an imported PyTorch model (docs/onnx.md), as
// onnx:FILE[,label=L][,beta=B][,output=NAME]:
//
//	classifier (the output has a column per class, log-probabilities, e.g. LogSoftmax):
//	    log r(x) = β·out(x)[L],         ∇_x log r = β·J_outᵀ·e_L
//	reward model (one value per row):
//	    log r(x) = β·out(x),            ∇_x log r = β·J_outᵀ·1
//
// The output is taken as log r/β as it is: a classifier must be exported with its
// log-softmax (logits are not log-probabilities). x crosses into the model as the prior's
// NHWC rows, transposed to NCHW for colour images.
type ONNX struct {
	Layer *onnx.Layer
	// Label is the output column (classifiers); -1 for a reward model's single output.
	Label int
	Beta  float64
}

// NewONNXConstraint loads the model of spec (Kind "onnx") for images of h×w×c.
func NewONNXConstraint(spec Spec, h, w, c int) (*ONNX, error) {
	m, err := onnx.Load(spec.File)
	if err != nil {
		return nil, err
	}
	layer, err := onnx.NewLayer(m, spec.Output, nil)
	if err != nil {
		return nil, err
	}
	if c > 1 {
		layer.InImage = &[3]int{h, w, c}
	}
	o := &ONNX{Layer: layer, Label: spec.Label, Beta: spec.Beta}
	if _, err := layer.OutWidth(layer.InWidth()); err != nil {
		return nil, err
	}
	return o, o.checkOutput()
}

// outWidth is the width of the model's output rows.
func (o *ONNX) outWidth() int {
	n, _ := o.Layer.OutWidth(o.Layer.InWidth())
	return n
}

func (o *ONNX) checkOutput() error {
	n := o.outWidth()
	switch {
	case o.Label < 0 && n != 1:
		return fmt.Errorf("posterior: the ONNX model %s has %d outputs per row: give the class, onnx:%s,label=L (for a scalar reward model, export one value per row)", o.Layer.Model.Name, n, o.Layer.Model.Name)
	case o.Label >= n:
		return fmt.Errorf("posterior: label=%d, but the ONNX model %s has classes 0..%d", o.Label, o.Layer.Model.Name, n-1)
	case !(o.Beta > 0) || math.IsInf(o.Beta, 0):
		return fmt.Errorf("posterior: onnx constraint β = %v (want a positive finite value)", o.Beta)
	}
	return nil
}

// Check wants the prior's rows to be the model's input size.
func (o *ONNX) Check(width int) error {
	if width != o.Layer.InWidth() {
		return fmt.Errorf("posterior: the ONNX model %s reads %s (%d values per row) but the prior makes rows of %d", o.Layer.Model.Name, o.Layer.Model.Input, o.Layer.InWidth(), width)
	}
	return o.checkOutput()
}

// Build records the model's forward pass, the selection of log r, and the VJP.
func (o *ONNX) Build(l *kernels.Library, x *kernels.Tensor) (*Pass, error) {
	if err := o.Check(x.Cols()); err != nil {
		return nil, err
	}
	d, B, K := l.Device(), x.Rows(), o.outWidth()
	p := &Pass{}
	fail := func(err error) (*Pass, error) {
		p.Release()
		return nil, fmt.Errorf("posterior: onnx constraint: %w", err)
	}
	tensor := func(label string, shape ...int) (*kernels.Tensor, error) {
		t, err := kernels.NewTensor(d, label, shape...)
		if err == nil {
			p.own(t.Release)
		}
		return t, err
	}
	out, err := tensor("onnx constraint output", B, K)
	if err != nil {
		return fail(err)
	}
	cot, err := tensor("onnx constraint cotangent", B, K)
	if err != nil {
		return fail(err)
	}
	if p.DX, err = tensor("onnx constraint ∇x", B, x.Cols()); err != nil {
		return fail(err)
	}
	if p.LogR, err = tensor("onnx constraint log r", B); err != nil {
		return fail(err)
	}
	// The cotangent of log r = β·out[:, L] is constant: β at column L.
	col := max(o.Label, 0)
	seed := make([]float32, B*K)
	for b := 0; b < B; b++ {
		seed[b*K+col] = float32(o.Beta)
	}
	if err := cot.Write(seed); err != nil {
		return fail(err)
	}
	pass, err := o.Layer.Build(l, nn.LayerIO{X: x, Y: out, DY: cot, DX: p.DX})
	if err != nil {
		return fail(err)
	}
	p.own(pass.Release)
	pick, err := l.CopyND(p.LogR, kernels.Contiguous([]int{B}), out, kernels.Layout{Offset: col, Strides: []int{K}}, []int{B}, float32(o.Beta))
	if err != nil {
		return fail(err)
	}
	p.own(pick.Release)
	p.Value = append(append([]*kernels.Op(nil), pass.Forward...), pick)
	p.Grad = append([]*kernels.Op(nil), pass.Backward...)
	return p, nil
}

// score measures n samples xs: a classifier's share of argmax = Label ("class_rate"),
// a reward model's mean output ("mean_reward").
func (o *ONNX) score(l *kernels.Library, xs []float32, n int) (map[string]float64, error) {
	hit, sum := 0, 0.0
	err := forwardRows(l, o.Layer, xs, n, func(row []float32) {
		if o.Label < 0 {
			sum += float64(row[0])
		} else if argmax(row) == o.Label {
			hit++
		}
	})
	if err != nil {
		return nil, err
	}
	if o.Label < 0 {
		return map[string]float64{"mean_reward": sum / float64(n)}, nil
	}
	return map[string]float64{"class_rate": float64(hit) / float64(n)}, nil
}

// onnxPredict is the predicted class (the output's argmax) of each of the n rows of xs.
func onnxPredict(l *kernels.Library, layer *onnx.Layer, xs []float32, n int) ([]uint32, error) {
	pred := make([]uint32, 0, n)
	err := forwardRows(l, layer, xs, n, func(row []float32) { pred = append(pred, uint32(argmax(row))) })
	return pred, err
}

// forwardRows runs layer over the n rows of xs (priors.ForwardRows, in chunks) and calls
// each with its output row, in order.
func forwardRows(l *kernels.Library, layer *onnx.Layer, xs []float32, n int, each func(row []float32)) error {
	K, err := layer.OutWidth(layer.InWidth())
	if err != nil {
		return err
	}
	if len(xs) != n*layer.InWidth() || n < 1 {
		return fmt.Errorf("posterior: %d values for %d samples of %d", len(xs), n, layer.InWidth())
	}
	ys, err := priors.ForwardRows(l, &nn.Sequential{Layers: []*nn.Named{{Name: "onnx", Layer: layer}}}, xs, n)
	if err != nil {
		return err
	}
	for b := 0; b < n; b++ {
		each(ys[b*K : (b+1)*K])
	}
	return nil
}

func argmax(row []float32) int {
	best := 0
	for k := range row {
		if row[k] > row[best] {
			best = k
		}
	}
	return best
}
