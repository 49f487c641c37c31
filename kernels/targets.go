package kernels

import (
	"fmt"

	"osds/gpu"
)

// TargetKind names a synthetic benchmark target with a WGSL log R kernel.
type TargetKind string

// The targets of shaders/targets.wgsl and their dimensions.
const (
	TargetGMM25    TargetKind = "gmm25"
	TargetFunnel   TargetKind = "funnel"
	TargetManywell TargetKind = "manywell"
)

var targetDims = map[TargetKind]int{TargetGMM25: 2, TargetFunnel: 10, TargetManywell: 32}

// LogReward computes logr[b] = log R(x_b) for a batch x [B, d] of the given target and,
// when grad is non-nil, grad[b] = ∇log R(x_b) [B, d]. The float64 references are the
// targets of package osds/train (GMM25, Funnel, Manywell).
func (l *Library) LogReward(logr, grad, x *Tensor, target TargetKind) (*Op, error) {
	d, ok := targetDims[target]
	if !ok {
		return nil, fmt.Errorf("kernels: log reward: unknown target %q (want gmm25, funnel or manywell)", target)
	}
	if x.Cols() != d {
		return nil, fmt.Errorf("kernels: log reward %s: x is %d×%d, want d = %d columns", target, x.Rows(), x.Cols(), d)
	}
	batch := x.Rows()
	if logr.Len() != batch {
		return nil, fmt.Errorf("kernels: log reward %s: logr has %d elements for a batch of %d", target, logr.Len(), batch)
	}
	wantGrad := 0
	var gradBuf, scratch *gpu.Buffer
	if grad != nil {
		if grad.Rows() != batch || grad.Cols() != d {
			return nil, fmt.Errorf("kernels: log reward %s: grad is %d×%d, want %d×%d", target, grad.Rows(), grad.Cols(), batch, d)
		}
		wantGrad, gradBuf = 1, grad.Buf
	} else {
		// The binding must hold some buffer; a writable alias of logr would be rejected.
		var err error
		scratch, err = l.dev.CreateBuffer("log reward grad (unused)", 16, gpu.StorageUsage)
		if err != nil {
			return nil, err
		}
		gradBuf = scratch
	}
	op, err := l.build(opSpec{
		name:    "log reward " + string(target),
		file:    "targets.wgsl",
		entry:   string(target),
		buffers: []*gpu.Buffer{x.Buf, logr.Buf, gradBuf},
		params:  Params{batch, d, wantGrad},
		grid:    Grid1D(batch, 64),
	})
	if err != nil {
		scratch.Release()
		return nil, err
	}
	if scratch != nil {
		op.owned = append(op.owned, scratch)
	}
	return op, nil
}

// GaussianLogReward computes logr[b] = −½ (x_b − m)ᵀ P (x_b − m) + c for x [B, d], mean
// [d] and precision P [d, d], and ∇log R into grad when it is not nil: the analytic test
// target (shaders/target_gaussian.wgsl).
func (l *Library) GaussianLogReward(logr, grad, x, mean, prec *Tensor, c float64) (*Op, error) {
	b, d := x.Rows(), x.Cols()
	if mean.Len() != d || prec.Rows() != d || prec.Cols() != d || logr.Len() != b {
		return nil, fmt.Errorf("kernels: gaussian log reward: x %v needs mean [%d], precision [%d, %d] and logr [%d]; got %v, %v, %v", x.Shape, d, d, d, b, mean.Shape, prec.Shape, logr.Shape)
	}
	want, gradBuf := 0, (*gpu.Buffer)(nil)
	var scratch *gpu.Buffer
	if grad != nil {
		if grad.Rows() != b || grad.Cols() != d {
			return nil, fmt.Errorf("kernels: gaussian log reward: grad is %v, want [%d, %d]", grad.Shape, b, d)
		}
		want, gradBuf = 1, grad.Buf
	} else {
		var err error
		if scratch, err = l.dev.CreateBuffer("gaussian grad (unused)", 16, gpu.StorageUsage); err != nil {
			return nil, err
		}
		gradBuf = scratch
	}
	op, err := l.build(opSpec{
		name: "gaussian log reward", file: "target_gaussian.wgsl", entry: "main",
		buffers: []*gpu.Buffer{x.Buf, mean.Buf, prec.Buf, logr.Buf, gradBuf},
		params:  Params{b, d, want, float32(c)},
		grid:    Grid1D(b, 64),
	})
	if err != nil {
		scratch.Release()
		return nil, err
	}
	if scratch != nil {
		op.owned = append(op.owned, scratch)
	}
	return op, nil
}
