package priors

import (
	"fmt"
	"math"
	"math/rand/v2"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// ClassifierArch is a small convolutional classifier for 28×28 grayscale images:
//
//	conv 3×3 stride 2 pad 1, 1→C1, ReLU     28×28×1  → 14×14×C1
//	conv 3×3 stride 2 pad 1, C1→C2, ReLU    14×14×C1 → 7×7×C2
//	linear 49·C2 → Hidden, ReLU             features (the Fréchet feature layer)
//	linear Hidden → Classes                 logits
//
// Strided convolutions replace pooling, so the whole network is matmuls, im2col and
// activations.
type ClassifierArch struct {
	Side, C1, C2, Hidden, Classes int
}

// DefaultClassifierArch is 32 and 64 channels and 128 features.
var DefaultClassifierArch = ClassifierArch{Side: 28, C1: 32, C2: 64, Hidden: 128, Classes: 10}

// Classifier is the network of ClassifierArch. Parameter names: cls.conv1, cls.conv2,
// cls.fc1, cls.fc2 (".weight", ".bias"); conv weights are [KH·KW·InC, OutC] and linear
// weights [in, out] (see docs/priors.md for PyTorch layouts).
type Classifier struct {
	Arch         ClassifierArch
	Conv1, Conv2 *nn.Conv2D
	FC1, FC2     *nn.Linear
}

func init() {
	Register("classifier", KindSpec{
		Build: BuildFrom(DefaultClassifierArch, NewClassifier),
		Train: func(l *kernels.Library, m Model, s TrainSpec) error { return TrainClassifier(l, m.(*Classifier), s) },
		Eval: func(l *kernels.Library, m Model, test *Dataset) (map[string]float64, error) {
			acc, err := EvalClassifier(l, m.(*Classifier), test)
			return map[string]float64{"test_accuracy": acc}, err
		},
		DefaultEpochs: 8,
	})
}

// NewClassifier creates a classifier with PyTorch-like initialisation.
func NewClassifier(d *gpu.Device, a ClassifierArch, seed uint64) (*Classifier, error) {
	if a.Side < 4 || a.C1 < 1 || a.C2 < 1 || a.Hidden < 1 || a.Classes < 2 {
		return nil, fmt.Errorf("priors: classifier architecture %+v (want side ≥ 4, positive widths, ≥ 2 classes)", a)
	}
	rng := rand.New(rand.NewPCG(seed, 0xc1a55))
	c := &Classifier{Arch: a}
	g1 := kernels.ConvGeom{InH: a.Side, InW: a.Side, InC: 1, OutC: a.C1, KH: 3, KW: 3, Stride: 2, Pad: 1}
	g2 := kernels.ConvGeom{InH: g1.OutH(), InW: g1.OutW(), InC: a.C1, OutC: a.C2, KH: 3, KW: 3, Stride: 2, Pad: 1}
	var err error
	if c.Conv1, err = nn.NewConv2D(d, "cls.conv1", g1, rng); err != nil {
		return nil, err
	}
	if c.Conv2, err = nn.NewConv2D(d, "cls.conv2", g2, rng); err != nil {
		c.Release()
		return nil, err
	}
	if c.FC1, err = nn.NewLinear(d, "cls.fc1", g2.OutLen(), a.Hidden, rng, false); err != nil {
		c.Release()
		return nil, err
	}
	if c.FC2, err = nn.NewLinear(d, "cls.fc2", a.Hidden, a.Classes, rng, false); err != nil {
		c.Release()
		return nil, err
	}
	return c, nil
}

// Kind is "classifier".
func (c *Classifier) Kind() string { return "classifier" }

// Architecture is the ClassifierArch.
func (c *Classifier) Architecture() any { return c.Arch }

// Params lists the parameters in layer order.
func (c *Classifier) Params() []*nn.Param {
	var ps []*nn.Param
	if c.Conv1 != nil {
		ps = append(ps, c.Conv1.Params()...)
	}
	if c.Conv2 != nil {
		ps = append(ps, c.Conv2.Params()...)
	}
	if c.FC1 != nil {
		ps = append(ps, c.FC1.Params()...)
	}
	if c.FC2 != nil {
		ps = append(ps, c.FC2.Params()...)
	}
	return ps
}

// Release frees the parameters.
func (c *Classifier) Release() {
	for _, p := range c.Params() {
		p.Release()
	}
}

// Features is the network up to the feature layer: x [B, Side²] → ReLU(fc1) [B, Hidden].
func (c *Classifier) Features() *nn.Sequential {
	return &nn.Sequential{Layers: []*nn.Named{
		{Name: "cls.conv1", Layer: c.Conv1},
		{Name: "cls.relu1", Layer: nn.Act{Fn: kernels.ReLU}},
		{Name: "cls.conv2", Layer: c.Conv2},
		{Name: "cls.relu2", Layer: nn.Act{Fn: kernels.ReLU}},
		{Name: "cls.fc1", Layer: c.FC1},
		{Name: "cls.relu3", Layer: nn.Act{Fn: kernels.ReLU}},
	}}
}

// Logits is the whole network: x → class logits [B, Classes].
func (c *Classifier) Logits() *nn.Sequential {
	s := c.Features()
	s.Layers = append(s.Layers, &nn.Named{Name: "cls.fc2", Layer: c.FC2})
	return s
}

// TrainClassifier minimises the batch-mean softmax cross-entropy with Adam. The loss is
// read back every 100 steps; NaN or Inf stops training with the step named.
func TrainClassifier(l *kernels.Library, c *Classifier, s TrainSpec) error {
	if err := s.check("classifier"); err != nil {
		return err
	}
	d := l.Device()
	bs, err := NewBatches(d, s.Train, s.Batch, true, s.Seed)
	if err != nil {
		return err
	}
	defer bs.Release()
	net, err := c.Logits().Build(l, bs.X, nn.NetOptions{Backward: true, ParamGrads: true})
	if err != nil {
		return err
	}
	defer net.Release()
	loss, err := kernels.NewTensor(d, "classifier loss", s.Batch)
	if err != nil {
		return err
	}
	defer loss.Release()
	xent, err := l.SoftmaxCrossEntropy(loss, net.DY, net.Y, bs.Y, float32(1/float64(s.Batch)))
	if err != nil {
		return err
	}
	defer xent.Release()
	params := c.Params()
	opt, err := nn.NewOptimizer(l, params, kernels.DefaultAdamConfig())
	if err != nil {
		return err
	}
	defer opt.Release()
	perEpoch := s.Train.N / s.Batch
	step := 0
	for epoch := 1; epoch <= s.Epochs; epoch++ {
		// Cosine decay to 0 over the whole run: late epochs settle into a minimum.
		sum, seen := 0.0, 0
		for i := 0; i < perEpoch; i++ {
			step++
			lr := s.LR * 0.5 * (1 + math.Cos(math.Pi*float64(step-1)/float64(s.Epochs*perEpoch)))
			if err := bs.Next(); err != nil {
				return err
			}
			if err := opt.SetStep(step, lr); err != nil {
				return err
			}
			r, err := l.NewRecorder("classifier step")
			if err != nil {
				return err
			}
			nn.ZeroGrads(r, params)
			r.Record(net.Forward...)
			r.Record(xent)
			r.Record(net.Backward...)
			r.Record(opt.Ops()...)
			if err := r.Submit(); err != nil {
				return fmt.Errorf("priors: classifier step %d: %w", step, err)
			}
			if step%100 == 0 || i == perEpoch-1 {
				v, err := loss.Read()
				if err != nil {
					return err
				}
				for j, x := range v {
					if !finite32(x) {
						return fmt.Errorf("priors: classifier step %d: cross-entropy of row %d is %v; stopping", step, j, x)
					}
					sum += float64(x)
				}
				seen += len(v)
				s.logf("epoch %d step %d: cross-entropy %.4f (lr %.2g)", epoch, step, sum/float64(seen), lr)
			}
		}
		if s.EpochDone != nil {
			if err := s.EpochDone(epoch); err != nil {
				return err
			}
		}
	}
	return nil
}

// Predict returns the argmax class of every image of xs (rows of Side² pixels).
func Predict(l *kernels.Library, c *Classifier, xs []float32) ([]uint32, error) {
	n := len(xs) / (c.Arch.Side * c.Arch.Side)
	if n*c.Arch.Side*c.Arch.Side != len(xs) || n == 0 {
		return nil, fmt.Errorf("priors: predict: %d pixels is not a whole number of %d×%d images", len(xs), c.Arch.Side, c.Arch.Side)
	}
	out := make([]uint32, 0, n)
	err := forBatches(l, c.Logits(), xs, n, func(logits *kernels.Tensor, rows int) error {
		idx, err := kernels.NewIndexTensor(l.Device(), "predictions", logits.Rows(), c.Arch.Classes)
		if err != nil {
			return err
		}
		defer idx.Release()
		op, err := l.Argmax(idx, logits)
		if err != nil {
			return err
		}
		defer op.Release()
		if err := l.Run(op); err != nil {
			return err
		}
		v, err := idx.Read()
		if err != nil {
			return err
		}
		out = append(out, v[:rows]...)
		return nil
	})
	return out, err
}

// FeaturesOf returns the feature-layer activations [n, Hidden] of xs.
func FeaturesOf(l *kernels.Library, c *Classifier, xs []float32) ([]float32, error) {
	n := len(xs) / (c.Arch.Side * c.Arch.Side)
	if n*c.Arch.Side*c.Arch.Side != len(xs) || n == 0 {
		return nil, fmt.Errorf("priors: features: %d pixels is not a whole number of %d×%d images", len(xs), c.Arch.Side, c.Arch.Side)
	}
	out := make([]float32, 0, n*c.Arch.Hidden)
	err := forBatches(l, c.Features(), xs, n, func(f *kernels.Tensor, rows int) error {
		v, err := f.Read()
		if err != nil {
			return err
		}
		out = append(out, v[:rows*c.Arch.Hidden]...)
		return nil
	})
	return out, err
}

// forBatches runs net forward over n rows of xs in batches of up to 500 (the last one
// zero-padded) and hands each output with its number of real rows to use.
func forBatches(l *kernels.Library, s *nn.Sequential, xs []float32, n int, use func(y *kernels.Tensor, rows int) error) error {
	width := len(xs) / n
	batch := min(n, 500)
	x, err := kernels.NewTensor(l.Device(), "batch input", batch, width)
	if err != nil {
		return err
	}
	defer x.Release()
	net, err := s.Build(l, x, nn.NetOptions{})
	if err != nil {
		return err
	}
	defer net.Release()
	buf := make([]float32, batch*width)
	for start := 0; start < n; start += batch {
		rows := min(batch, n-start)
		clear(buf)
		copy(buf, xs[start*width:(start+rows)*width])
		if err := x.Write(buf); err != nil {
			return err
		}
		if err := l.Run(net.Forward...); err != nil {
			return err
		}
		if err := use(net.Y, rows); err != nil {
			return err
		}
	}
	return nil
}

// EvalClassifier returns the accuracy on a labelled dataset.
func EvalClassifier(l *kernels.Library, c *Classifier, ds *Dataset) (float64, error) {
	pred, err := Predict(l, c, ds.Images)
	if err != nil {
		return 0, err
	}
	right := 0
	for i, p := range pred {
		if p == uint32(ds.Labels[i]) {
			right++
		}
	}
	return float64(right) / float64(ds.N), nil
}

var _ Model = (*Classifier)(nil)
