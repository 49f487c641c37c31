package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Strided N-d kernels (shaders/nd.wgsl): copies between strided views, NumPy-broadcasting
// arithmetic with its gradients, and reductions over axes. They are the tensor plumbing of
// imported graphs (package nn/onnx): Transpose, Slice and Concat are copies between
// layouts, Expand a copy with zero strides, ReduceSum a reduction, Add/Sub/Mul/Div/Pow a
// broadcast over the output's index space.

// NDMaxRank is the largest rank of an index space of the strided kernels.
const NDMaxRank = 8

// Layout maps index (i_0, …, i_{r−1}) of an index space to the flat element
// Offset + Σ_d i_d·Strides[d] of an array. Strides may be 0 (broadcasting) or negative (a
// reversed slice); Strides has one entry per axis of the index space.
type Layout struct {
	Offset  int
	Strides []int
}

// Contiguous returns the row-major layout of an array of the given shape.
func Contiguous(shape []int) Layout {
	st := make([]int, len(shape))
	s := 1
	for d := len(shape) - 1; d >= 0; d-- {
		st[d] = s
		s *= shape[d]
	}
	return Layout{Strides: st}
}

// BroadcastShapes returns the NumPy broadcast of the shapes a and b (right-aligned; each
// pair of sizes equal or one of them 1), or an error naming both.
func BroadcastShapes(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		x, y := 1, 1
		if j := len(a) - n + i; j >= 0 {
			x = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			y = b[j]
		}
		switch {
		case x == y, y == 1:
			out[i] = x
		case x == 1:
			out[i] = y
		default:
			return nil, fmt.Errorf("kernels: shapes %v and %v do not broadcast (axis %d: %d vs %d)", a, b, i, x, y)
		}
	}
	return out, nil
}

// BroadcastLayout returns the layout that reads a contiguous array of shape in at every
// index of the index space out under NumPy broadcasting: in is right-aligned with out, and
// its axes of size 1 (and the missing leading ones) get stride 0.
func BroadcastLayout(in, out []int) (Layout, error) {
	if len(in) > len(out) {
		return Layout{}, fmt.Errorf("kernels: shape %v does not broadcast to %v (higher rank)", in, out)
	}
	c := Contiguous(in)
	st := make([]int, len(out))
	for i := range out {
		j := len(in) - len(out) + i
		switch {
		case j < 0 || in[j] == 1 && out[i] != 1:
		case in[j] == out[i]:
			st[i] = c.Strides[j]
		default:
			return Layout{}, fmt.Errorf("kernels: shape %v does not broadcast to %v (axis %d: %d vs %d)", in, out, i, in[j], out[i])
		}
	}
	return Layout{Strides: st}, nil
}

// BinaryOp selects the arithmetic of BinaryND; the values match OP in shaders/nd.wgsl.
type BinaryOp uint32

// The broadcasting binary operations. Pow follows PyTorch for integer exponents of
// negative bases ((−2)³ = −8), which WGSL's pow leaves undefined.
const (
	BinaryAdd BinaryOp = iota
	BinarySub
	BinaryMul
	BinaryDiv
	BinaryPow
)

var binaryNames = []string{"add", "sub", "mul", "div", "pow"}

func (o BinaryOp) String() string {
	if int(o) < len(binaryNames) {
		return binaryNames[o]
	}
	return fmt.Sprintf("binary(%d)", uint32(o))
}

// CopyND returns the op dst[dl(i)] = α·src[sl(i)] for every index i of the index space
// shape. Distinct indices must map to distinct elements of dst (or the result is
// undefined); elements of dst outside the image of dl keep their values, so a Concat is
// one CopyND per input into its slab of dst, and a Slice's gradient a FillND then a CopyND.
func (l *Library) CopyND(dst *Tensor, dl Layout, src *Tensor, sl Layout, shape []int, alpha float32) (*Op, error) {
	const name = "copy nd"
	if err := l.ndTensors(name, []string{"dst", "src"}, dst, src); err != nil {
		return nil, err
	}
	if err := ewFinite(name, "alpha", alpha); err != nil {
		return nil, err
	}
	if err := ndCheck(name, shape, map[string]ndOperand{"dst": {dst, dl}, "src": {src, sl}}); err != nil {
		return nil, err
	}
	return l.ndBuild(name, "copy_nd", nil, []*Tensor{src, dst}, ndParams(shape, sl, dl, nil, nil, alpha), ndNumel(shape), 1)
}

// FillND returns the op dst[i] = v for every element of dst.
func (l *Library) FillND(dst *Tensor, v float32) (*Op, error) {
	const name = "fill nd"
	if err := l.ndTensors(name, []string{"dst"}, dst); err != nil {
		return nil, err
	}
	if math.IsNaN(float64(v)) {
		return nil, fmt.Errorf("kernels: %s: the value is NaN", name)
	}
	shape := []int{dst.Len()}
	return l.ndBuild(name, "fill_nd", nil, []*Tensor{dst}, ndParams(shape, Contiguous(shape), Contiguous(shape), nil, nil, v), dst.Len(), 1)
}

// BinaryND returns the op z[i] = f(a[al(i)], b[bl(i)]) over the index space shape, z
// contiguous over it (z.Len() = |shape|), f the operation op. With BroadcastLayout for a
// and b it is NumPy broadcasting.
func (l *Library) BinaryND(z *Tensor, op BinaryOp, a *Tensor, al Layout, b *Tensor, bl Layout, shape []int) (*Op, error) {
	name := "binary nd " + op.String()
	if int(op) >= len(binaryNames) {
		return nil, fmt.Errorf("kernels: binary nd: unknown operation %d", uint32(op))
	}
	if err := l.ndTensors(name, []string{"z", "a", "b"}, z, a, b); err != nil {
		return nil, err
	}
	if err := ndCheck(name, shape, map[string]ndOperand{"z": {z, Contiguous(shape)}, "a": {a, al}, "b": {b, bl}}); err != nil {
		return nil, err
	}
	consts := map[string]float64{"OP": float64(op)}
	return l.ndBuild(name, "binary_nd", consts, []*Tensor{a, b, z}, ndParams(shape, al, bl, nil, nil, 0), ndNumel(shape), 1)
}

// BinaryNDGrad returns the op g[i] = dz[i]·∂f/∂a (wrt 0) or dz[i]·∂f/∂b (wrt 1), the
// partial derivative of op evaluated at a[al(i)], b[bl(i)] as in BinaryND; dz and g are
// contiguous over the index space shape. Summing g over the broadcast axes (ReduceND)
// gives the gradient of the operand.
func (l *Library) BinaryNDGrad(g *Tensor, op BinaryOp, wrt int, dz, a *Tensor, al Layout, b *Tensor, bl Layout, shape []int) (*Op, error) {
	name := "binary nd grad " + op.String()
	if int(op) >= len(binaryNames) {
		return nil, fmt.Errorf("kernels: binary nd grad: unknown operation %d", uint32(op))
	}
	if wrt != 0 && wrt != 1 {
		return nil, fmt.Errorf("kernels: %s: wrt is %d (want 0 for a, 1 for b)", name, wrt)
	}
	if err := l.ndTensors(name, []string{"g", "dz", "a", "b"}, g, dz, a, b); err != nil {
		return nil, err
	}
	c := Contiguous(shape)
	if err := ndCheck(name, shape, map[string]ndOperand{"g": {g, c}, "dz": {dz, c}, "a": {a, al}, "b": {b, bl}}); err != nil {
		return nil, err
	}
	consts := map[string]float64{"OP": float64(op), "WRT": float64(wrt)}
	return l.ndBuild(name, "binary_grad", consts, []*Tensor{dz, a, b, g}, ndParams(shape, al, bl, nil, nil, 0), ndNumel(shape), 1)
}

// ReduceND returns the op dst[i] = α·Σ_j src[sl(i) + Σ_d j_d·rstrides[d]]: i over the
// kept index space shape (dst contiguous over it), j over the reduced index space rshape
// (rank ≤ NDMaxRank, strides rstrides). ReduceSum over axes, ReduceMean (α = 1/count) and
// the gradient of a broadcast operand are such reductions.
func (l *Library) ReduceND(dst, src *Tensor, sl Layout, shape, rshape, rstrides []int, alpha float32) (*Op, error) {
	const name = "reduce nd"
	if err := l.ndTensors(name, []string{"dst", "src"}, dst, src); err != nil {
		return nil, err
	}
	if err := ewFinite(name, "alpha", alpha); err != nil {
		return nil, err
	}
	if len(rshape) != len(rstrides) || len(rshape) > NDMaxRank {
		return nil, fmt.Errorf("kernels: %s: reduced shape %v with strides %v (want equal lengths ≤ %d)", name, rshape, rstrides, NDMaxRank)
	}
	if err := ndCheck(name, shape, map[string]ndOperand{"dst": {dst, Contiguous(shape)}}); err != nil {
		return nil, err
	}
	// The reduced offsets extend src's layout: check the combined index space.
	all := append(append([]int(nil), shape...), rshape...)
	if len(all) > 2*NDMaxRank {
		return nil, fmt.Errorf("kernels: %s: ranks %d + %d", name, len(shape), len(rshape))
	}
	lo, hi, err := ndRange(all, Layout{Offset: sl.Offset, Strides: append(append([]int(nil), sl.Strides...), rstrides...)})
	if err != nil || lo < 0 || hi >= src.Len() {
		return nil, fmt.Errorf("kernels: %s: src layout %+v over %v × reduced %v (strides %v) reaches elements %d..%d outside the %d of %q", name, sl, shape, rshape, rstrides, lo, hi, src.Len(), src.Label())
	}
	nred := ndNumel(rshape)
	return l.ndBuild(name, "reduce_nd", nil, []*Tensor{src, dst}, ndParams(shape, sl, Layout{Strides: make([]int, len(shape))}, rshape, rstrides, alpha), ndNumel(shape), nred)
}

type ndOperand struct {
	t *Tensor
	l Layout
}

// ndTensors checks that no tensor is nil, each fits one binding, and the output (the
// first) shares no buffer with the others.
func (l *Library) ndTensors(op string, names []string, ts ...*Tensor) error {
	for i, t := range ts {
		if t == nil {
			return fmt.Errorf("kernels: %s: %s is nil", op, names[i])
		}
		if err := l.ewCheckBindable(op, names[i], t); err != nil {
			return err
		}
	}
	for j := 1; j < len(ts); j++ {
		if ts[0].Buf.Shares(ts[j].Buf) {
			return fmt.Errorf("kernels: %s: output %s is the same buffer as %s (%q); write to a separate tensor", op, names[0], names[j], ts[0].Label())
		}
	}
	return nil
}

// ndCheck validates the index space and that each operand's layout stays inside it.
func ndCheck(op string, shape []int, ops map[string]ndOperand) error {
	if len(shape) == 0 || len(shape) > NDMaxRank {
		return fmt.Errorf("kernels: %s: index space %v has rank %d (want 1..%d)", op, shape, len(shape), NDMaxRank)
	}
	for _, s := range shape {
		if s < 1 {
			return fmt.Errorf("kernels: %s: index space %v has a dimension < 1", op, shape)
		}
	}
	if float64(ndNumel(shape)) > math.MaxInt32 {
		return fmt.Errorf("kernels: %s: index space %v exceeds 32-bit indexing", op, shape)
	}
	for name, o := range ops {
		lo, hi, err := ndRange(shape, o.l)
		if err != nil {
			return fmt.Errorf("kernels: %s: %s: %w", op, name, err)
		}
		if lo < 0 || hi >= o.t.Len() {
			return fmt.Errorf("kernels: %s: %s layout %+v over %v reaches elements %d..%d outside the %d of %q", op, name, o.l, shape, lo, hi, o.t.Len(), o.t.Label())
		}
	}
	return nil
}

// ndRange returns the smallest and largest flat element a layout reaches over shape.
func ndRange(shape []int, l Layout) (lo, hi int, err error) {
	if len(l.Strides) != len(shape) {
		return 0, 0, fmt.Errorf("layout has %d strides for an index space of rank %d", len(l.Strides), len(shape))
	}
	lo, hi = l.Offset, l.Offset
	for d, s := range shape {
		if st := l.Strides[d] * (s - 1); st > 0 {
			hi += st
		} else {
			lo += st
		}
	}
	return lo, hi, nil
}

func ndNumel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// ndParams packs NDParams of shaders/nd.wgsl.
func ndParams(shape []int, l0, l1 Layout, rshape, rstr []int, alpha float32) Params {
	ps := Params{ndNumel(shape), len(shape), len(rshape), ndNumel(rshape), int32(l0.Offset), int32(l1.Offset), alpha, 0}
	pad := func(xs []int, fill int, signed bool) {
		for d := 0; d < NDMaxRank; d++ {
			v := fill
			if d < len(xs) {
				v = xs[d]
			}
			if signed {
				ps = append(ps, int32(v))
			} else {
				ps = append(ps, v)
			}
		}
	}
	pad(shape, 1, false)
	pad(l0.Strides, 0, true)
	pad(l1.Strides, 0, true)
	pad(rshape, 1, false)
	pad(rstr, 0, true)
	return ps
}

// ndBuild builds an entry point of shaders/nd.wgsl writing n elements of about cost work
// each, with the grid and workgroup size the elementwise kernels plan for the adapter.
func (l *Library) ndBuild(name, entry string, consts map[string]float64, ts []*Tensor, ps Params, n, cost int) (*Op, error) {
	bufs := make([]*gpu.Buffer, len(ts))
	for i, t := range ts {
		bufs[i] = t.Buf
	}
	wg := l.ewWorkgroupSize()
	all := map[string]float64{"wg": float64(wg)}
	for k, v := range consts {
		all[k] = v
	}
	return l.build(opSpec{name: name, file: "nd.wgsl", entry: entry, consts: all, buffers: bufs, params: ps, grid: l.ewGrid(n, cost, wg)})
}

// ---------------------------------------------------------------------------------------
// float64 references

// ndEach calls f with the linear index and the multi-index of every point of shape.
func ndEach(shape []int, f func(i int, idx []int)) {
	idx := make([]int, len(shape))
	n := ndNumel(shape)
	for i := 0; i < n; i++ {
		f(i, idx)
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
}

func ndAt(l Layout, idx []int) int {
	o := l.Offset
	for d, v := range idx {
		o += v * l.Strides[d]
	}
	return o
}

// RefCopyND is the reference of CopyND: a copy of dst with dst[dl(i)] = α·src[sl(i)].
func RefCopyND(dst []float64, dl Layout, src []float64, sl Layout, shape []int, alpha float64) []float64 {
	out := append([]float64(nil), dst...)
	ndEach(shape, func(_ int, idx []int) { out[ndAt(dl, idx)] = alpha * src[ndAt(sl, idx)] })
	return out
}

// RefBinary is f(a, b) of BinaryND's operation op.
func RefBinary(op BinaryOp, a, b float64) float64 {
	switch op {
	case BinaryAdd:
		return a + b
	case BinarySub:
		return a - b
	case BinaryMul:
		return a * b
	case BinaryDiv:
		return a / b
	}
	return math.Pow(a, b)
}

// RefBinaryGrad is ∂f/∂a (wrt 0) or ∂f/∂b (wrt 1) of op at (a, b).
func RefBinaryGrad(op BinaryOp, wrt int, a, b float64) float64 {
	if wrt == 0 {
		switch op {
		case BinaryMul:
			return b
		case BinaryDiv:
			return 1 / b
		case BinaryPow:
			return b * math.Pow(a, b-1)
		}
		return 1
	}
	switch op {
	case BinarySub:
		return -1
	case BinaryMul:
		return a
	case BinaryDiv:
		return -a / (b * b)
	case BinaryPow:
		return math.Log(a) * math.Pow(a, b)
	}
	return 1
}

// RefBinaryND is the reference of BinaryND.
func RefBinaryND(op BinaryOp, a []float64, al Layout, b []float64, bl Layout, shape []int) []float64 {
	out := make([]float64, ndNumel(shape))
	ndEach(shape, func(i int, idx []int) { out[i] = RefBinary(op, a[ndAt(al, idx)], b[ndAt(bl, idx)]) })
	return out
}

// RefBinaryNDGrad is the reference of BinaryNDGrad.
func RefBinaryNDGrad(op BinaryOp, wrt int, dz, a []float64, al Layout, b []float64, bl Layout, shape []int) []float64 {
	out := make([]float64, ndNumel(shape))
	ndEach(shape, func(i int, idx []int) {
		out[i] = dz[i] * RefBinaryGrad(op, wrt, a[ndAt(al, idx)], b[ndAt(bl, idx)])
	})
	return out
}

// RefReduceND is the reference of ReduceND.
func RefReduceND(src []float64, sl Layout, shape, rshape, rstrides []int, alpha float64) []float64 {
	out := make([]float64, ndNumel(shape))
	rl := Layout{Strides: rstrides}
	ndEach(shape, func(i int, idx []int) {
		base, s := ndAt(sl, idx), 0.0
		ndEach(rshape, func(_ int, r []int) { s += src[base+ndAt(rl, r)] })
		out[i] = alpha * s
	})
	return out
}
