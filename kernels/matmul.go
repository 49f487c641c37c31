package kernels

import (
	"fmt"

	"osds/gpu"
)

// MatmulOptions select the form of a matrix product and its fused epilogue.
type MatmulOptions struct {
	// TransA and TransB multiply by Aᵀ or Bᵀ instead of A or B: with both false C = A·B,
	// TransA gives Aᵀ·B (weight gradients), TransB A·Bᵀ (input gradients), both Aᵀ·Bᵀ.
	TransA, TransB bool
	// Bias, when not nil, holds the N elements added to every row of the product: the
	// whole tensor when it has N elements, or else row BiasRow of a [R, N] table (a
	// per-step bias, e.g. a layer's bias plus the time embedding of step BiasRow).
	Bias    *Tensor
	BiasRow int
	// Act is applied to each element after the bias.
	Act Activation
	// Accumulate adds the result to C instead of overwriting it, C += act(op(A)·op(B) + bias)
	// (gradient accumulation).
	Accumulate bool
	// SavePre, when not nil, also receives the pre-activation op(A)·op(B) + bias (M×N):
	// a layer's forward pass keeps it for the backward pass while C gets act of it, in
	// one dispatch instead of a product and an activation.
	SavePre *Tensor
	// DerivOf, when not nil, multiplies the result elementwise by f'(DerivOf), with f the
	// activation DerivAct and DerivOf (M×N) the pre-activation f was applied to:
	// the input gradient through a layer and the activation before it,
	// dx = (dy·Wᵀ) ⊙ f'(h), in one dispatch. SavePre and DerivOf exclude each other.
	DerivOf  *Tensor
	DerivAct Activation

	// Kernel forces one implementation (tests and benchmarks compare them); the zero value
	// lets Matmul choose for the adapter.
	Kernel MatmulKernel
}

// MatmulKernel names an implementation of Matmul.
type MatmulKernel int

const (
	// MatmulAuto picks MatmulSubgroup on CPU adapters that have subgroups of ≥ 8
	// invocations (lavapipe) and MatmulTiled everywhere else.
	MatmulAuto MatmulKernel = iota
	// MatmulSubgroup is shaders/matmul.wgsl: 32×64 tiles of C per 16 invocations, A's loads
	// shared by subgroup broadcasts. Tuned for lavapipe, where every load is per lane.
	MatmulSubgroup
	// MatmulTiled is shaders/matmul_tiled.wgsl: 16×16 tiles of C per 256 invocations, both
	// operands staged in workgroup memory. Many more workgroups for the trainer's small
	// shapes, which is what a GPU needs.
	MatmulTiled
)

// String names the kernel as `osds bench` and the tests print it.
func (k MatmulKernel) String() string {
	switch k {
	case MatmulAuto:
		return "auto"
	case MatmulSubgroup:
		return "subgroup"
	case MatmulTiled:
		return "tiled"
	}
	return fmt.Sprintf("MatmulKernel(%d)", int(k))
}

// The tiles of C computed by one workgroup; the WGSL constants WG, ROWS of the kernels.
const (
	matmulTileCols  = 64 // matmul.wgsl: 16 invocations × 4 columns
	matmulTileRows  = 32 // matmul.wgsl: four subgroup broadcast groups of 8 rows
	matmulTiledSide = 16 // matmul_tiled.wgsl: 16×16 invocations, one element of C each
)

// Matmul returns an op computing
//
//	C = act(op(A)·op(B) + bias)        or, with opts.Accumulate,   C += act(op(A)·op(B) + bias)
//
// where op(X) is X, or Xᵀ when opts.TransA / opts.TransB is set. Every tensor is viewed as a
// matrix (Rows × Cols: the last dimension is Cols); op(A) must be M×K, op(B) K×N and C M×N,
// for any M, N, K ≥ 1. C must not share a buffer with A, B or the bias. opts.SavePre also
// writes the pre-activation op(A)·op(B) + bias; opts.DerivOf multiplies the result by
// DerivAct′(DerivOf) (a layer's forward and backward epilogues, see MatmulOptions).
//
// On CPU adapters with subgroups of at least 8 invocations (lavapipe) it runs
// shaders/matmul.wgsl, which shares A's loads across a subgroup; elsewhere (GPUs, and
// adapters without such subgroups) shaders/matmul_tiled.wgsl; opts.Kernel overrides the
// choice. The form, the presence of a bias, Accumulate and Act are compiled into the
// pipeline (one per combination in use, cached by the Library; about 0.6 s each on
// lavapipe the first time, then Mesa's disk cache answers).
func (l *Library) Matmul(c, a, b *Tensor, opts MatmulOptions) (*Op, error) {
	m, n, k, err := matmulShape(c, a, b, opts)
	if err != nil {
		return nil, err
	}
	if opts.Act.valid() != nil {
		return nil, fmt.Errorf("kernels: matmul: unknown activation %d", uint32(opts.Act))
	}
	biasBuf := a.Buf // bound but not read: a binding needs some buffer
	biasOff := 0
	if opts.Bias != nil {
		switch {
		case opts.Bias.Len() == n && opts.BiasRow == 0:
		case opts.Bias.Cols() == n && opts.BiasRow >= 0 && opts.BiasRow < opts.Bias.Rows():
			biasOff = opts.BiasRow * n
		case opts.Bias.Cols() == n:
			return nil, fmt.Errorf("kernels: matmul: bias row %d outside the %d rows of bias table %q", opts.BiasRow, opts.Bias.Rows(), opts.Bias.Label())
		default:
			return nil, fmt.Errorf("kernels: matmul: bias %q has %d elements (shape %v) but C has %d columns", opts.Bias.Label(), opts.Bias.Len(), opts.Bias.Shape, n)
		}
		if opts.Bias.Buf.Shares(c.Buf) {
			return nil, fmt.Errorf("kernels: matmul: C and the bias are the same tensor %q", c.Label())
		}
		biasBuf = opts.Bias.Buf
	}
	epilogue, aux, err := l.matmulEpilogue(c, a, b, m, n, opts)
	if err != nil {
		return nil, err
	}
	kernel := opts.Kernel
	switch kernel {
	case MatmulAuto:
		kernel = l.MatmulKernels()[0]
	case MatmulSubgroup:
		if !matmulSubgroups(l.dev) {
			return nil, fmt.Errorf("kernels: matmul: the subgroup kernel needs subgroups of at least 8 invocations; this adapter has %v (subgroups feature %v)", l.dev.AdapterInfo().SubgroupMinSize, l.dev.HasFeature(gpu.FeatureSubgroups))
		}
	case MatmulTiled:
	default:
		return nil, fmt.Errorf("kernels: matmul: unknown kernel %v", kernel)
	}
	file, grid := "matmul_tiled.wgsl", [3]uint32{uint32(matmulCeilDiv(n, matmulTiledSide)), uint32(matmulCeilDiv(m, matmulTiledSide)), 1}
	if kernel == MatmulSubgroup {
		file, grid = "matmul.wgsl", [3]uint32{uint32(matmulCeilDiv(n, matmulTileCols)), uint32(matmulCeilDiv(m, matmulTileRows)), 1}
	}
	return l.build(opSpec{
		name:  "matmul " + MatmulForm(opts),
		file:  file,
		entry: "main",
		consts: map[string]float64{
			"TRANS_A": overrideBool(opts.TransA), "TRANS_B": overrideBool(opts.TransB),
			"HAS_BIAS": overrideBool(opts.Bias != nil), "ACCUMULATE": overrideBool(opts.Accumulate),
			"ACT": float64(opts.Act), "EPILOGUE": float64(epilogue), "DERIV_ACT": float64(opts.DerivAct),
		},
		buffers: []*gpu.Buffer{a.Buf, b.Buf, biasBuf, c.Buf, aux},
		params:  Params{m, n, k, biasOff},
		grid:    grid,
	})
}

// matmulEpilogue checks SavePre and DerivOf and returns the EPILOGUE override of
// matmul_common.wgsl (0 none, 1 save the pre-activation, 2 through an activation's
// derivative) with the buffer to bind as aux.
func (l *Library) matmulEpilogue(c, a, b *Tensor, m, n int, opts MatmulOptions) (uint32, *gpu.Buffer, error) {
	aux, epilogue, what := opts.SavePre, uint32(1), "SavePre"
	switch {
	case opts.SavePre != nil && opts.DerivOf != nil:
		return 0, nil, fmt.Errorf("kernels: matmul: SavePre %q and DerivOf %q both set; a product takes one of them", opts.SavePre.Label(), opts.DerivOf.Label())
	case opts.DerivOf != nil:
		if err := opts.DerivAct.valid(); err != nil {
			return 0, nil, fmt.Errorf("kernels: matmul: unknown DerivAct %d", uint32(opts.DerivAct))
		}
		aux, epilogue, what = opts.DerivOf, 2, "DerivOf"
	case opts.SavePre == nil:
		buf, err := l.unusedBuffer()
		return 0, buf, err
	}
	if aux.Rows() != m || aux.Cols() != n {
		return 0, nil, fmt.Errorf("kernels: matmul: %s %q is %d×%d (shape %v) but C is %d×%d", what, aux.Label(), aux.Rows(), aux.Cols(), aux.Shape, m, n)
	}
	if aux.Buf.Shares(c.Buf) || aux.Buf.Shares(a.Buf) || aux.Buf.Shares(b.Buf) || opts.Bias != nil && aux.Buf.Shares(opts.Bias.Buf) {
		return 0, nil, fmt.Errorf("kernels: matmul: %s %q shares a buffer with C, A, B or the bias; give it its own tensor", what, aux.Label())
	}
	return epilogue, aux.Buf, nil
}

// matmulShape checks the operands of Matmul and returns M, N and K.
func matmulShape(c, a, b *Tensor, opts MatmulOptions) (m, n, k int, err error) {
	if c == nil || a == nil || b == nil {
		return 0, 0, 0, fmt.Errorf("kernels: matmul: nil tensor (C %v, A %v, B %v)", c != nil, a != nil, b != nil)
	}
	ar, ac := a.Rows(), a.Cols()
	br, bc := b.Rows(), b.Cols()
	m, k = ar, ac
	nameA := fmt.Sprintf("A is %d×%d", ar, ac)
	if opts.TransA {
		m, k = ac, ar
		nameA = fmt.Sprintf("Aᵀ is %d×%d (A is %d×%d)", ac, ar, ar, ac)
	}
	kb, n := br, bc
	nameB := fmt.Sprintf("B is %d×%d", br, bc)
	if opts.TransB {
		kb, n = bc, br
		nameB = fmt.Sprintf("Bᵀ is %d×%d (B is %d×%d)", bc, br, br, bc)
	}
	if k != kb {
		return 0, 0, 0, fmt.Errorf("kernels: matmul: %s but %s (inner dimensions %d and %d differ)", nameA, nameB, k, kb)
	}
	if c.Rows() != m || c.Cols() != n {
		return 0, 0, 0, fmt.Errorf("kernels: matmul: C is %d×%d (shape %v) but %s·%s is %d×%d", c.Rows(), c.Cols(), c.Shape, matmulOpName("A", opts.TransA), matmulOpName("B", opts.TransB), m, n)
	}
	if c.Buf.Shares(a.Buf) || c.Buf.Shares(b.Buf) {
		return 0, 0, 0, fmt.Errorf("kernels: matmul: C %q is also an input (A %q, B %q); write the product to another tensor", c.Label(), a.Label(), b.Label())
	}
	return m, n, k, nil
}

// MatmulKernels lists the implementations of Matmul this library's adapter can run, the one
// MatmulAuto picks first.
func (l *Library) MatmulKernels() []MatmulKernel {
	switch {
	case !matmulSubgroups(l.dev):
		return []MatmulKernel{MatmulTiled}
	case l.dev.AdapterInfo().Type == gpu.AdapterCPU:
		return []MatmulKernel{MatmulSubgroup, MatmulTiled}
	}
	return []MatmulKernel{MatmulTiled, MatmulSubgroup}
}

// matmulSubgroups reports whether matmul.wgsl can run on d: it broadcasts from lanes 0..7,
// so every subgroup must have at least 8 invocations.
func matmulSubgroups(d *gpu.Device) bool {
	return d.HasFeature(gpu.FeatureSubgroups) && d.AdapterInfo().SubgroupMinSize >= 8
}

// MatmulForm names the product opts selects, e.g. "Aᵀ·B", for op names and benchmarks.
func MatmulForm(opts MatmulOptions) string {
	return matmulOpName("A", opts.TransA) + "·" + matmulOpName("B", opts.TransB)
}

func matmulOpName(x string, trans bool) string {
	if trans {
		return x + "ᵀ"
	}
	return x
}

func matmulCeilDiv(a, b int) int { return (a + b - 1) / b }

// RefMatmul is the float64 reference of Matmul. With op(X) = X, or Xᵀ when transX is set,
// a an aRows×aCols and b a bRows×bCols row-major matrix, it returns the M×N matrix
//
//	C[i,j] = act( Σ_k op(A)[i,k]·op(B)[k,j] + bias[j] ) + C0[i,j]
//
// where bias (N elements) and c0 (M×N, the previous C of an accumulating Matmul) may be nil
// for zero. It panics if the shapes do not match.
func RefMatmul(a []float64, aRows, aCols int, b []float64, bRows, bCols int, transA, transB bool, bias, c0 []float64, act Activation) []float64 {
	if len(a) != aRows*aCols || len(b) != bRows*bCols {
		panic(fmt.Sprintf("kernels: RefMatmul: %d values for A of %d×%d, %d for B of %d×%d", len(a), aRows, aCols, len(b), bRows, bCols))
	}
	m, k := aRows, aCols
	if transA {
		m, k = aCols, aRows
	}
	kb, n := bRows, bCols
	if transB {
		kb, n = bCols, bRows
	}
	if k != kb {
		panic(fmt.Sprintf("kernels: RefMatmul: op(A) is %d×%d but op(B) is %d×%d", m, k, kb, n))
	}
	if bias != nil && len(bias) != n || c0 != nil && len(c0) != m*n {
		panic(fmt.Sprintf("kernels: RefMatmul: bias has %d values, C0 %d, for C of %d×%d", len(bias), len(c0), m, n))
	}
	opA := func(i, kk int) float64 {
		if transA {
			return a[kk*aCols+i]
		}
		return a[i*aCols+kk]
	}
	opB := func(kk, j int) float64 {
		if transB {
			return b[j*bCols+kk]
		}
		return b[kk*bCols+j]
	}
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for kk := 0; kk < k; kk++ {
				s += opA(i, kk) * opB(kk, j)
			}
			if bias != nil {
				s += bias[j]
			}
			s = RefActivate(act, s)
			if c0 != nil {
				s += c0[i*n+j]
			}
			out[i*n+j] = s
		}
	}
	return out
}
