package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// matmulForms are the three products a forward and backward pass need.
var matmulForms = []MatmulOptions{
	{},             // A·B:  forward
	{TransA: true}, // Aᵀ·B: weight gradient Xᵀ·dY
	{TransB: true}, // A·Bᵀ: input gradient dY·Wᵀ
}

// matmulSizes are M×N×K: degenerate, awkward (not multiples of either kernel's tiles or K
// steps), one exact tile, vectors, the trainer's weight gradient (K = batch 300) and two
// that need many workgroups.
var matmulSizes = [][3]int{
	{1, 1, 1}, {7, 13, 5}, {129, 257, 65}, {64, 64, 64}, {1, 300, 64}, {300, 1, 64}, {64, 64, 300}, {257, 130, 301},
}

// matmulKernelForms are matmulForms once per kernel the adapter can run, so that every
// test over them checks each implementation.
func matmulKernelForms(l *Library) []MatmulOptions {
	var out []MatmulOptions
	for _, kernel := range l.MatmulKernels() {
		for _, form := range matmulForms {
			form.Kernel = kernel
			out = append(out, form)
		}
	}
	return out
}

// matmulCase is one product to check against RefMatmul.
type matmulCase struct {
	m, n, k    int
	opts       MatmulOptions // Bias is replaced by a random vector when bias is set
	bias       bool
	biasTable  bool // the bias is row 2 of a random [3, N] table (opts.BiasRow)
	tensorRank int  // 0 or 2: plain matrices; 3: A and C as [2, rows/2, cols] tensors
	savePre    bool // opts.SavePre gets a poisoned tensor, checked too
	derivOf    bool // opts.DerivOf gets random pre-activations (opts.DerivAct says of what)
}

func (mc matmulCase) String() string {
	s := fmt.Sprintf("%s_%dx%dx%d", matmulTag(mc.opts), mc.m, mc.n, mc.k)
	if mc.bias {
		s += "+bias"
	}
	if mc.biasTable {
		s += "_row2"
	}
	if mc.opts.Act != Identity {
		s += "_" + mc.opts.Act.String()
	}
	if mc.opts.Accumulate {
		s += "_accumulate"
	}
	if mc.savePre {
		s += "_savepre"
	}
	if mc.derivOf {
		s += "_deriv_" + mc.opts.DerivAct.String()
	}
	if mc.opts.Kernel != MatmulAuto {
		s += "_" + mc.opts.Kernel.String()
	}
	return s
}

// matmulTag names a form in ASCII for test and benchmark names (-run, -bench patterns):
// AB, AtB or ABt.
func matmulTag(opts MatmulOptions) string {
	s := "A"
	if opts.TransA {
		s += "t"
	}
	s += "B"
	if opts.TransB {
		s += "t"
	}
	return s
}

// checkMatmul runs one case on fresh random inputs (C poisoned with NaN, or random when
// accumulating) and compares with RefMatmul.
func checkMatmul(t *testing.T, l *Library, rng *rand.Rand, mc matmulCase) {
	t.Helper()
	m, n, k := mc.m, mc.n, mc.k
	aShape, bShape := []int{m, k}, []int{k, n}
	if mc.opts.TransA {
		aShape = []int{k, m}
	}
	if mc.opts.TransB {
		bShape = []int{n, k}
	}
	cShape := []int{m, n}
	if mc.tensorRank == 3 {
		aShape = append([]int{2, aShape[0] / 2}, aShape[1:]...)
		cShape = []int{2, m / 2, n}
	}
	av, bv := randn(rng, m*k, 1), randn(rng, k*n, 1)
	a := mustTensor(t, l, "A", av, aShape...)
	b := mustTensor(t, l, "B", bv, bShape...)
	opts := mc.opts
	var bias64, c064 []float64
	if mc.bias && mc.biasTable {
		bb := randn(rng, 3*n, 1)
		opts.Bias, opts.BiasRow = mustTensor(t, l, "bias table", bb, 3, n), 2
		bias64 = to64(bb[2*n:])
	} else if mc.bias {
		bb := randn(rng, n, 1)
		opts.Bias = mustTensor(t, l, "bias", bb, n)
		bias64 = to64(bb)
	}
	var c *Tensor
	if opts.Accumulate {
		c0 := randn(rng, m*n, 1)
		c = mustTensor(t, l, "C", c0, cShape...)
		c064 = to64(c0)
	} else {
		c = poisoned(t, l, "C", cShape...)
	}
	var pre *Tensor
	if mc.savePre {
		pre = poisoned(t, l, "pre", m, n)
		opts.SavePre = pre
	}
	var h []float32
	if mc.derivOf {
		h = randn(rng, m*n, 1.5)
		opts.DerivOf = mustTensor(t, l, "h", h, m, n)
	}
	op, err := l.Matmul(c, a, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Release()
	if err := l.Run(op); err != nil {
		t.Fatal(err)
	}
	a64, b64 := to64(av), to64(bv)
	ar, ac := m, k
	if opts.TransA {
		ar, ac = k, m
	}
	br, bc := k, n
	if opts.TransB {
		br, bc = n, k
	}
	// The scale of each element's rounding error: Σ_k |op(A)[i,k]·op(B)[k,j]| + |bias| + |C0|.
	scale := RefMatmul(absAll(a64), ar, ac, absAll(b64), br, bc, opts.TransA, opts.TransB, absAll(bias64), absAll(c064), Identity)
	if mc.savePre {
		want := RefMatmul(a64, ar, ac, b64, br, bc, opts.TransA, opts.TransB, bias64, nil, Identity)
		assertMatmulClose(t, mc.String()+" pre-activation", readT(t, pre), want, scale, 1e-4)
	}
	if !mc.derivOf {
		want := RefMatmul(a64, ar, ac, b64, br, bc, opts.TransA, opts.TransB, bias64, c064, opts.Act)
		assertMatmulClose(t, mc.String(), readT(t, c), want, scale, opts.Act.Tolerance())
		return
	}
	// C = act(op(A)·op(B) + bias) ⊙ f'(h) (+ C0): the rounding of the product scales by |f'(h)|.
	want := RefMatmul(a64, ar, ac, b64, br, bc, opts.TransA, opts.TransB, bias64, nil, opts.Act)
	for i := range want {
		g := RefActivateGrad(opts.DerivAct, float64(h[i]))
		want[i] *= g
		if c064 != nil {
			want[i] += c064[i]
		}
		scale[i] *= math.Max(1, math.Abs(g))
	}
	assertMatmulClose(t, mc.String(), readT(t, c), want, scale, math.Max(opts.Act.Tolerance(), opts.DerivAct.Tolerance()))
}

// assertMatmulClose checks |got − want| ≤ tol · max(1, scale) per element, where scale is
// Σ_k |op(A)[i,k]·op(B)[k,j]| + |bias[j]| + |C0[i,j]|. A float32 dot product of length K
// is off by up to ~K·2⁻²⁴ times that sum (~√K·2⁻²⁴ typically), which relative error
// against |want| would misjudge where terms cancel; with K ≤ 301 here the bound is below
// 2e-5, so tol = 1e-4 (1e-3 for activations built on f32 transcendentals, whose error
// Activation.Tolerance states and whose slopes are ≤ 1.13) still catches a single missing
// or doubled term (~scale/K ≥ 3e-3·scale).
func assertMatmulClose(t *testing.T, what string, got []float32, want, scale []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, -1
	for i, g := range got {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, g, want[i])
		}
		e := math.Abs(float64(g)-want[i]) / math.Max(1, scale[i])
		if e > worst {
			worst, at = e, i
		}
	}
	if worst > tol {
		t.Fatalf("%s: element %d: got %v, want %v (error %.3g of the scale %.3g > %.3g)", what, at, got[at], want[at], worst, scale[at], tol)
	}
}

func absAll(xs []float64) []float64 {
	if xs == nil {
		return nil
	}
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Abs(x)
	}
	return out
}

// TestMatmul runs every form, size and kernel, with and without a bias.
func TestMatmul(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, form := range matmulKernelForms(l) {
		for _, sz := range matmulSizes {
			for _, bias := range []bool{false, true} {
				mc := matmulCase{m: sz[0], n: sz[1], k: sz[2], opts: form, bias: bias}
				t.Run(mc.String(), func(t *testing.T) { checkMatmul(t, l, rng, mc) })
			}
		}
	}
}

// TestMatmulActivations runs every activation in the epilogue of every form and kernel.
func TestMatmulActivations(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, form := range matmulKernelForms(l) {
		for act := Identity; int(act) < len(activationNames); act++ {
			opts := form
			opts.Act = act
			mc := matmulCase{m: 45, n: 70, k: 19, opts: opts, bias: true}
			t.Run(mc.String(), func(t *testing.T) { checkMatmul(t, l, rng, mc) })
		}
	}
}

// TestMatmulAccumulate checks C += act(op(A)·op(B) + bias) on random previous contents, and
// that recording the op twice adds twice.
func TestMatmulAccumulate(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, form := range matmulForms {
		for _, sz := range [][3]int{{7, 13, 5}, {129, 257, 65}} {
			opts := form
			opts.Accumulate = true
			mc := matmulCase{m: sz[0], n: sz[1], k: sz[2], opts: opts}
			t.Run(mc.String(), func(t *testing.T) { checkMatmul(t, l, rng, mc) })
		}
	}
	opts := MatmulOptions{TransA: true, Accumulate: true, Act: Tanh}
	mc := matmulCase{m: 33, n: 40, k: 9, opts: opts, bias: true}
	t.Run(mc.String(), func(t *testing.T) { checkMatmul(t, l, rng, mc) })

	t.Run("twice", func(t *testing.T) {
		m, n, k := 37, 21, 11
		av, bv, c0 := randn(rng, m*k, 1), randn(rng, k*n, 1), randn(rng, m*n, 1)
		a := mustTensor(t, l, "A", av, m, k)
		b := mustTensor(t, l, "B", bv, k, n)
		c := mustTensor(t, l, "C", c0, m, n)
		op, err := l.Matmul(c, a, b, MatmulOptions{Accumulate: true})
		if err != nil {
			t.Fatal(err)
		}
		defer op.Release()
		if err := l.Run(op, op); err != nil {
			t.Fatal(err)
		}
		a64, b64 := to64(av), to64(bv)
		want := RefMatmul(a64, m, k, b64, k, n, false, false, nil, RefMatmul(a64, m, k, b64, k, n, false, false, nil, to64(c0), Identity), Identity)
		scale := RefMatmul(absAll(a64), m, k, absAll(b64), k, n, false, false, nil, absAll(to64(c0)), Identity)
		for i := range scale {
			scale[i] *= 2
		}
		assertMatmulClose(t, "C + 2·A·B", readT(t, c), want, scale, 1e-4)
	})
}

// TestMatmulKernelsAccumulate runs each kernel with the whole epilogue (bias, GELU,
// accumulation) on every form.
func TestMatmulKernelsAccumulate(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, form := range matmulKernelForms(l) {
		opts := form
		opts.Act, opts.Accumulate = GELU, true
		mc := matmulCase{m: 30, n: 66, k: 7, opts: opts, bias: true}
		t.Run(mc.String(), func(t *testing.T) { checkMatmul(t, l, rng, mc) })
	}
}

// TestMatmulEpilogues checks the fused forward and backward epilogues on every form and
// kernel: the pre-activation saved beside act of it, and the product through an
// activation's derivative (also accumulating and with an activation of its own).
func TestMatmulEpilogues(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, form := range matmulKernelForms(l) {
		save, deriv, both := form, form, form
		save.Act = GELU
		deriv.DerivAct = GELU
		both.Accumulate, both.Act, both.DerivAct = true, Tanh, SiLU
		for _, mc := range []matmulCase{
			{m: 37, n: 70, k: 19, opts: save, bias: true, savePre: true},
			{m: 300, n: 64, k: 64, opts: save, bias: true, savePre: true},
			{m: 300, n: 64, k: 2, opts: save, bias: true, biasTable: true, savePre: true},
			{m: 37, n: 70, k: 19, opts: deriv, derivOf: true},
			{m: 300, n: 64, k: 64, opts: deriv, derivOf: true},
			{m: 21, n: 9, k: 33, opts: both, bias: true, derivOf: true},
		} {
			t.Run(mc.String(), func(t *testing.T) { checkMatmul(t, l, rng, mc) })
		}
	}
}

// TestMatmulTensorViews multiplies rank-3 tensors, viewed as matrices by Rows and Cols.
func TestMatmulTensorViews(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	mc := matmulCase{m: 40, n: 24, k: 12, bias: true, tensorRank: 3}
	checkMatmul(t, l, rng, mc)
}

// TestMatmulBothTransposed covers Aᵀ·Bᵀ, which no layer needs but the options allow.
func TestMatmulBothTransposed(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	mc := matmulCase{m: 45, n: 70, k: 19, opts: MatmulOptions{TransA: true, TransB: true}, bias: true}
	checkMatmul(t, l, rng, mc)
}

func TestMatmulErrors(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	tensor := func(label string, shape ...int) *Tensor {
		n := 1
		for _, s := range shape {
			n *= s
		}
		return mustTensor(t, l, label, randn(rng, n, 1), shape...)
	}
	a34, b52, b42 := tensor("A", 3, 4), tensor("B", 5, 2), tensor("B", 4, 2)
	c32, c33, c12 := tensor("C", 3, 2), tensor("C", 3, 3), tensor("C", 1, 2)
	cases := []struct {
		name    string
		c, a, b *Tensor
		opts    MatmulOptions
		want    []string
	}{
		{"inner", c32, a34, b52, MatmulOptions{}, []string{"matmul", "A is 3×4", "B is 5×2", "inner dimensions"}},
		{"inner transA", c32, a34, b42, MatmulOptions{TransA: true}, []string{"Aᵀ is 4×3 (A is 3×4)", "B is 4×2", "inner dimensions 3 and 4"}},
		{"inner transB", c32, a34, b42, MatmulOptions{TransB: true}, []string{"A is 3×4", "Bᵀ is 2×4 (B is 4×2)"}},
		{"output", c33, a34, b42, MatmulOptions{}, []string{"C is 3×3", "A·B is 3×2"}},
		{"bias", c32, a34, b42, MatmulOptions{Bias: tensor("bias", 3)}, []string{"bias", "3 elements", "2 columns"}},
		{"bias row", c32, a34, b42, MatmulOptions{Bias: tensor("bias table", 4, 2), BiasRow: 4}, []string{"bias row 4", "4 rows", "bias table"}},
		{"bias table", c32, a34, b42, MatmulOptions{Bias: tensor("bias table", 2, 3), BiasRow: 1}, []string{"bias", "6 elements", "2 columns"}},
		{"activation", c32, a34, b42, MatmulOptions{Act: Activation(99)}, []string{"matmul", "activation"}},
		{"alias", a34, a34, tensor("B", 4, 4), MatmulOptions{}, []string{"matmul", "also an input"}},
		{"alias bias", c12, tensor("A", 1, 4), b42, MatmulOptions{Bias: c12}, []string{"matmul", "same tensor"}},
		{"nil", nil, a34, b42, MatmulOptions{}, []string{"matmul", "nil tensor"}},
		{"kernel", c32, a34, b42, MatmulOptions{Kernel: MatmulKernel(7)}, []string{"matmul", "unknown kernel", "MatmulKernel(7)"}},
		{"both epilogues", c32, a34, b42, MatmulOptions{SavePre: tensor("pre", 3, 2), DerivOf: tensor("h", 3, 2)}, []string{"SavePre", "DerivOf", "one of them"}},
		{"pre shape", c32, a34, b42, MatmulOptions{SavePre: tensor("pre", 2, 3)}, []string{"SavePre", "is 2×3", "C is 3×2"}},
		{"deriv alias", c32, a34, b42, MatmulOptions{DerivOf: c32}, []string{"DerivOf", "shares a buffer"}},
		{"deriv act", c32, a34, b42, MatmulOptions{DerivOf: tensor("h", 3, 2), DerivAct: Activation(42)}, []string{"unknown DerivAct 42"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op, err := l.Matmul(tc.c, tc.a, tc.b, tc.opts)
			if err == nil {
				op.Release()
				t.Fatalf("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestRefMatmul pins the reference itself on a product worked by hand.
func TestRefMatmul(t *testing.T) {
	// A = [1 2; 3 4], B = [5 6; 7 8]: A·B = [19 22; 43 50], Aᵀ·B = [26 30; 38 44],
	// A·Bᵀ = [17 23; 39 53].
	a, b := []float64{1, 2, 3, 4}, []float64{5, 6, 7, 8}
	for _, tc := range []struct {
		transA, transB bool
		want           []float64
	}{
		{false, false, []float64{19, 22, 43, 50}},
		{true, false, []float64{26, 30, 38, 44}},
		{false, true, []float64{17, 23, 39, 53}},
	} {
		got := RefMatmul(a, 2, 2, b, 2, 2, tc.transA, tc.transB, nil, nil, Identity)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("transA %v transB %v: got %v, want %v", tc.transA, tc.transB, got, tc.want)
			}
		}
	}
	// ReLU(A·B + bias) + C0 with bias = [-20, 0], C0 = 1.
	got := RefMatmul(a, 2, 2, b, 2, 2, false, false, []float64{-20, 0}, []float64{1, 1, 1, 1}, ReLU)
	want := []float64{1, 23, 24, 51}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("epilogue: got %v, want %v", got, want)
		}
	}
}

// TestMatmulSlices runs products on slices of larger tensors, as the trainer does with its
// per-step activations: T steps of Y_k = X_k·W, each reading and writing its own slice
// (B rows at a row stride R ≥ B that keeps every slice aligned), then one Aᵀ·B over the
// whole stacks, which must equal Σ_k X_kᵀ·Y_k: the padding rows stay zero and add nothing.
func TestMatmulSlices(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	const steps, b, k, n = 3, 13, 5, 7
	align := int(l.Device().Limits().MinStorageBufferOffsetAlignment) / 4
	r := b
	for (r*k)%align != 0 || (r*n)%align != 0 {
		r++
	}
	xs := make([]float32, steps*r*k)
	for s := 0; s < steps; s++ {
		copy(xs[s*r*k:], randn(rng, b*k, 1))
	}
	ws := randn(rng, k*n, 1)
	x := mustTensor(t, l, "X", xs, steps*r, k)
	w := mustTensor(t, l, "W", ws, k, n)
	y := mustTensor(t, l, "Y", make([]float32, steps*r*n), steps*r, n)
	var ops []*Op
	for s := 0; s < steps; s++ {
		xk, err := x.Slice(fmt.Sprintf("X%d", s), s*r*k, b, k)
		if err != nil {
			t.Fatal(err)
		}
		yk, err := y.Slice(fmt.Sprintf("Y%d", s), s*r*n, b, n)
		if err != nil {
			t.Fatal(err)
		}
		op, err := l.Matmul(yk, xk, w, MatmulOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	g := poisoned(t, l, "G", k, n)
	op, err := l.Matmul(g, x, y, MatmulOptions{TransA: true})
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, op)
	defer func() {
		for _, op := range ops {
			op.Release()
		}
	}()
	if err := l.Run(ops...); err != nil {
		t.Fatal(err)
	}
	x64, w64 := to64(xs), to64(ws)
	wantY := RefMatmul(x64, steps*r, k, w64, k, n, false, false, nil, nil, Identity)
	scaleY := RefMatmul(absAll(x64), steps*r, k, absAll(w64), k, n, false, false, nil, nil, Identity)
	gotY := readT(t, y)
	assertMatmulClose(t, "per-step slices of Y", gotY, wantY, scaleY, 1e-4)
	for s := 0; s < steps; s++ {
		for i := b * n; i < r*n; i++ {
			if gotY[s*r*n+i] != 0 {
				t.Fatalf("padding row of step %d written: Y[%d] = %v", s, s*r*n+i, gotY[s*r*n+i])
			}
		}
	}
	wantG := RefMatmul(x64, steps*r, k, wantY, steps*r, n, true, false, nil, nil, Identity)
	scaleG := RefMatmul(absAll(x64), steps*r, k, absAll(wantY), steps*r, n, true, false, nil, nil, Identity)
	assertMatmulClose(t, "Xᵀ·Y over all steps", readT(t, g), wantG, scaleG, 1e-4)
}
