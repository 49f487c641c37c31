package kernels

import (
	"fmt"
	"math/rand/v2"
)

// ConvFLOPs is the arithmetic of one forward pass of the convolution or transposed
// convolution g: a multiply and an add per (input pixel, kernel tap, channel pair) inside
// the image — the matmul's 2·M·N·K, counting the padding taps as the matmul does.
func ConvFLOPs(g ConvGeom) float64 {
	cs := g.ColsShape()
	if g.Transposed {
		return 2 * float64(cs[0]) * float64(cs[1]) * float64(g.InC)
	}
	return 2 * float64(cs[0]) * float64(cs[1]) * float64(g.OutC)
}

// MeasureConv2D returns the mean seconds per forward pass (Im2Col, then the Matmul with
// bias) of the convolution g on random operands, over reps passes recorded into one
// compute pass (see TimeOps).
func MeasureConv2D(l *Library, g ConvGeom, reps int) (float64, error) {
	ct, err := newConvTimer(l, g)
	if err != nil {
		return 0, err
	}
	defer ct.release()
	return TimeOps(l, reps, ct.ops...)
}

// convTimer holds random operands and the built forward ops of one convolution.
type convTimer struct {
	ts  []*Tensor
	ops []*Op
}

func newConvTimer(l *Library, g ConvGeom) (*convTimer, error) {
	if g.Transposed {
		return nil, fmt.Errorf("kernels: timing %v: transposed (want a convolution)", g)
	}
	if err := g.Check(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(g.InLen()), uint64(g.OutC)))
	ws, cs := g.WeightShape(), g.ColsShape()
	ct := &convTimer{}
	alloc := func(label string, init bool, rows, cols int) (t *Tensor, err error) {
		if init {
			t, err = FromSlice(l.dev, label, matmulRandom(rng, rows*cols), rows, cols)
		} else {
			t, err = NewTensor(l.dev, label, rows, cols)
		}
		if err == nil {
			ct.ts = append(ct.ts, t)
		}
		return t, err
	}
	var x, w, b, cols, y *Tensor
	var err error
	for _, a := range []struct {
		t          **Tensor
		label      string
		init       bool
		rows, cols int
	}{
		{&x, "bench conv x", true, g.Batch, g.InLen()},
		{&w, "bench conv w", true, ws[0], ws[1]},
		{&b, "bench conv b", true, 1, g.OutC},
		{&cols, "bench conv cols", false, cs[0], cs[1]},
		{&y, "bench conv y", false, cs[0], g.OutC},
	} {
		if *a.t, err = alloc(a.label, a.init, a.rows, a.cols); err != nil {
			ct.release()
			return nil, err
		}
	}
	im, err := l.Im2Col(cols, x, g)
	if err != nil {
		ct.release()
		return nil, err
	}
	ct.ops = append(ct.ops, im)
	mm, err := l.Matmul(y, cols, w, MatmulOptions{Bias: b})
	if err != nil {
		ct.release()
		return nil, err
	}
	ct.ops = append(ct.ops, mm)
	return ct, nil
}

func (ct *convTimer) release() {
	for _, op := range ct.ops {
		op.Release()
	}
	for _, t := range ct.ts {
		t.Release()
	}
}
