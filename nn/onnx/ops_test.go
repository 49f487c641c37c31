package onnx

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Hand-made graphs for what the PyTorch fixtures do not reach: Identity, Pad, a Slice
// with a negative step, Squeeze without axes, a value used twice (gradient accumulation),
// x·x and broadcasts where both operands depend on the input, Pow of two run-time values,
// Abs, Reciprocal, LeakyRelu on the engine's slope. The references are float64 Go code;
// their VJPs are central differences of the reference.

// graphCase is a one-input graph with its float64 reference.
type graphCase struct {
	name    string
	model   []byte
	in, out []int
	ref     func(x []float64) []float64
	domain  func(v float64) float64 // maps a normal draw into the input's domain
}

func TestHandGraphs(t *testing.T) {
	l := testLib(t)
	rng := rand.New(rand.NewPCG(7, 11))
	for _, gc := range []graphCase{movementGraph(), arithmeticGraph()} {
		t.Run(gc.name, func(t *testing.T) {
			m, err := Parse(gc.model)
			if err != nil {
				t.Fatal(err)
			}
			g, err := m.Build(l, gc.in[0], BuildOptions{Backward: true})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Release()
			if !sameShape(g.OutputShape, gc.out) {
				t.Fatalf("output shape %v, want %v", g.OutputShape, gc.out)
			}
			x := make([]float64, numel(gc.in))
			for i := range x {
				x[i] = gc.domain(rng.NormFloat64())
				x[i] = float64(float32(x[i]))
			}
			cot := make([]float64, numel(gc.out))
			for i := range cot {
				cot[i] = float64(float32(rng.NormFloat64()))
			}
			if err := g.InputGrad.Poison(); err != nil {
				t.Fatal(err)
			}
			y, dx, err := g.VJP(f32(x), f32(cot))
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "forward", y, gc.ref(x), 1e-5)
			assertClose(t, "VJP", dx, numericVJP(gc.ref, x, cot), 1e-5)
		})
	}
}

// numericVJP is Σ_i cot_i·∂y_i/∂x_j by central differences of a float64 function.
func numericVJP(f func([]float64) []float64, x, cot []float64) []float64 {
	out := make([]float64, len(x))
	for j := range x {
		h := 1e-6 * math.Max(1, math.Abs(x[j]))
		xp := append([]float64(nil), x...)
		xm := append([]float64(nil), x...)
		xp[j] += h
		xm[j] -= h
		yp, ym := f(xp), f(xm)
		for i := range cot {
			out[j] += cot[i] * (yp[i] - ym[i]) / (2 * h)
		}
	}
	return out
}

// movementGraph: x [2,3,4] → Identity → Transpose [2,0,1] → Slice(axis 0, 3:−100:−2) →
// Pad([0,1,0],[0,0,2], 0.5) → Concat(c, c; axis 1) → Mul(d, d) → ReduceSum(axis 2) →
// Unsqueeze(1) → Squeeze() → y [2,6].
func movementGraph() graphCase {
	g := testGraph{
		inputs:  [][]byte{encValueInfo("x", 2, 3, 4)},
		outputs: [][]byte{encValueInfo("y", 2, 6)},
		inits: [][]byte{
			encInt64s("starts", 3), encInt64s("ends", -100), encInt64s("axes", 0), encInt64s("steps", -2),
			encInt64s("pads", 0, 1, 0, 0, 0, 2), encTensor("padv", nil, []float32{0.5}),
			encInt64s("raxes", 2), encInt64s("uaxes", 1),
		},
		nodes: [][]byte{
			encNode("Identity", "id", []string{"x"}, []string{"i"}),
			encNode("Transpose", "tr", []string{"i"}, []string{"a"}, encAttrInts("perm", 2, 0, 1)),
			encNode("Slice", "sl", []string{"a", "starts", "ends", "axes", "steps"}, []string{"b"}),
			encNode("Pad", "pad", []string{"b", "pads", "padv"}, []string{"c"}, encAttrString("mode", "constant")),
			encNode("Concat", "cat", []string{"c", "c"}, []string{"d"}, encAttrInt("axis", 1)),
			encNode("Mul", "sq", []string{"d", "d"}, []string{"e"}),
			encNode("ReduceSum", "sum", []string{"e", "raxes"}, []string{"s"}, encAttrInt("keepdims", 0)),
			encNode("Unsqueeze", "un", []string{"s", "uaxes"}, []string{"u"}),
			encNode("Squeeze", "sq2", []string{"u"}, []string{"y"}),
		},
	}
	ref := func(x []float64) []float64 {
		X := func(i, j, k int) float64 { return x[(i*3+j)*4+k] }
		y := make([]float64, 12)
		for s := 0; s < 2; s++ {
			for r := 0; r < 6; r++ {
				for jj := 0; jj < 5; jj++ {
					c := 0.5 // Pad's value
					if i, j := r%3-1, jj; i >= 0 && j < 3 {
						c = X(i, j, 3-2*s) // b[s][i][j] = a[3−2s][i][j] = x[i][j][3−2s]
					}
					y[s*6+r] += c * c
				}
			}
		}
		return y
	}
	return graphCase{name: "movement", model: encModel(17, g.encode()), in: []int{2, 3, 4}, out: []int{2, 6}, ref: ref, domain: func(v float64) float64 { return v }}
}

// arithmeticGraph: x [3,4] (positive) with m = ReduceMean(x, axis 1, keepdims) [3,1]:
// y = x / (m·m + 1) − Pow(Abs(x) + 0.5, m) + Reciprocal(x) + LeakyRelu(−x) + Elu(x − 1, 0.6).
func arithmeticGraph() graphCase {
	g := testGraph{
		inputs:  [][]byte{encValueInfo("x", 3, 4)},
		outputs: [][]byte{encValueInfo("y", 3, 4)},
		inits:   [][]byte{encTensor("one", nil, []float32{1}), encTensor("half", []int64{1}, []float32{0.5})},
		nodes: [][]byte{
			encNode("ReduceMean", "mean", []string{"x"}, []string{"m"}, encAttrInts("axes", 1), encAttrInt("keepdims", 1)),
			encNode("Mul", "mm", []string{"m", "m"}, []string{"m2"}),
			encNode("Add", "den", []string{"m2", "one"}, []string{"den"}),
			encNode("Div", "div", []string{"x", "den"}, []string{"d"}),
			encNode("Abs", "abs", []string{"x"}, []string{"ax"}),
			encNode("Add", "base", []string{"ax", "half"}, []string{"base"}),
			encNode("Pow", "pow", []string{"base", "m"}, []string{"p"}),
			encNode("Sub", "sub", []string{"d", "p"}, []string{"t1"}),
			encNode("Reciprocal", "rec", []string{"x"}, []string{"r"}),
			encNode("Neg", "neg", []string{"x"}, []string{"nx"}),
			encNode("LeakyRelu", "lrelu", []string{"nx"}, []string{"lr"}),
			encNode("Sub", "xm1", []string{"x", "one"}, []string{"xm1"}),
			encNode("Elu", "elu", []string{"xm1"}, []string{"el"}, encAttrFloat("alpha", 0.6)),
			encNode("Add", "s1", []string{"t1", "r"}, []string{"t2"}),
			encNode("Add", "s2", []string{"t2", "lr"}, []string{"t3"}),
			encNode("Add", "s3", []string{"t3", "el"}, []string{"y"}),
		},
	}
	ref := func(x []float64) []float64 {
		y := make([]float64, 12)
		for i := 0; i < 3; i++ {
			m := 0.0
			for j := 0; j < 4; j++ {
				m += x[i*4+j] / 4
			}
			for j := 0; j < 4; j++ {
				v := x[i*4+j]
				lr := -v
				if lr < 0 {
					lr *= 0.01
				}
				el := v - 1
				if el <= 0 {
					el = float64(float32(0.6)) * (math.Exp(el) - 1)
				}
				y[i*4+j] = v/(m*m+1) - math.Pow(math.Abs(v)+0.5, m) + 1/v + lr + el
			}
		}
		return y
	}
	// Inputs in ±[0.5, 2.5]: away from the poles of the reciprocal and the kinks.
	dom := func(v float64) float64 { return math.Copysign(0.5+math.Mod(math.Abs(v), 2), v) }
	return graphCase{name: "arithmetic", model: encModel(13, g.encode()), in: []int{3, 4}, out: []int{3, 4}, ref: ref, domain: dom}
}
