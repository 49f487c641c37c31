package kernels

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// lossLogits returns rows×cols logits of scale 3 with about one in eight set to ±40, so
// that exp would overflow or underflow without the stable forms.
func lossLogits(rng *rand.Rand, rows, cols int) []float32 {
	xs := randn(rng, rows*cols, 3)
	for i := range xs {
		if rng.IntN(8) == 0 {
			xs[i] = float32(40 * (2*float64(rng.IntN(2)) - 1))
		}
	}
	return xs
}

// lossRowMagnitude returns, per row of cols values, Σ_d f(x_d): the magnitude the
// rounding error of a row sum scales with (see assertReduceClose).
func lossRowMagnitude(x []float64, cols int, f func(i int) float64) []float64 {
	out := make([]float64, len(x)/cols)
	for i := range x {
		out[i/cols] += f(i)
	}
	return out
}

// lossDivide returns got / s and want / s, for comparing gradients scaled by s at
// their natural O(1) magnitude.
func lossDivide(got []float32, want []float64, s float64) ([]float32, []float64) {
	g := make([]float32, len(got))
	w := make([]float64, len(want))
	for i := range got {
		g[i] = float32(float64(got[i]) / s)
		w[i] = want[i] / s
	}
	return g, w
}

// lossCheckFD compares the gradient grad (of J) at a few random coordinates with central
// differences of the float64 function J; values are compared relative to max(s, |fd|)
// with s the gradient's scale.
func lossCheckFD(t *testing.T, rng *rand.Rand, what string, x []float64, grad []float32, s float64, J func([]float64) float64) {
	t.Helper()
	xp := append([]float64(nil), x...)
	for k := 0; k < 6; k++ {
		i := rng.IntN(len(x))
		h := 1e-5 * math.Max(1, math.Abs(x[i]))
		xp[i] = x[i] + h
		jp := J(xp)
		xp[i] = x[i] - h
		jm := J(xp)
		xp[i] = x[i]
		fd := (jp - jm) / (2 * h)
		if e := math.Abs(float64(grad[i])-fd) / math.Max(s, math.Abs(fd)); e > 1e-4 || math.IsNaN(e) {
			t.Fatalf("%s: element %d: gradient %v, central difference %v (error %.3g relative to %.3g)", what, i, grad[i], fd, e, math.Max(s, math.Abs(fd)))
		}
	}
}

// lossAt returns x[row, i] of a matrix of cols columns, or NaN where i ≥ cols (a
// poisoned or out-of-range index).
func lossAt(xs []float32, row, cols int, i uint32) float32 {
	if int(i) >= cols {
		return float32(math.NaN())
	}
	return xs[row*cols+int(i)]
}

func lossSum(xs []float64) float64 {
	var s float64
	for _, v := range xs {
		s += v
	}
	return s
}

// lossIndex returns an index tensor holding idx, released at the end of the test.
func lossIndex(t *testing.T, l *Library, label string, idx []uint32, limit int) *IndexTensor {
	t.Helper()
	ix, err := IndexFromSlice(l.Device(), label, idx, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ix.Release)
	return ix
}

var lossShapes = [][2]int{{37, 10}, {37, 13}, {37, 784}, {3, 1}}

func TestLossSoftmaxCrossEntropy(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range lossShapes {
			rows, cols := sh[0], sh[1]
			what := "softmax cross entropy " + ewShape([]int{rows, cols})
			xs := lossLogits(rng, rows, cols)
			labels := make([]uint32, rows)
			for i := range labels {
				labels[i] = uint32(rng.IntN(cols))
			}
			scale := 1 / float64(rows)
			x := mustTensor(t, l, "logits", xs, rows, cols)
			y := lossIndex(t, l, "labels", labels, cols)
			loss := poisoned(t, l, "loss", rows)
			dx := poisoned(t, l, "dlogits", rows, cols)
			op, err := l.SoftmaxCrossEntropy(loss, dx, x, y, float32(scale))
			ewRun(t, l, op, err)

			x64 := to64(xs)
			wantLoss, wantGrad := RefSoftmaxCrossEntropy(x64, labels, cols, scale)
			// Rounding scales with the logits' size (x − m), not with the loss.
			mag := lossRowMagnitude(x64, cols, func(i int) float64 { return math.Abs(x64[i]) / float64(cols) })
			for b := range mag {
				mag[b] += math.Abs(x64[b*cols+int(labels[b])])
			}
			gotLoss := readT(t, loss)
			assertReduceClose(t, what+" loss", gotLoss, wantLoss, mag, 1e-4)
			gotGrad := readT(t, dx)
			g, w := lossDivide(gotGrad, wantGrad, scale)
			assertClose(t, what+" dlogits/scale", g, w, 1e-5)
			lossCheckFD(t, rng, what+" dlogits", x64, gotGrad, scale, func(v []float64) float64 {
				lv, _ := RefSoftmaxCrossEntropy(v, labels, cols, scale)
				return scale * lossSum(lv)
			})

			// Forward only: the same losses, bit for bit (same reduction order).
			loss2 := poisoned(t, l, "loss", rows)
			op, err = l.SoftmaxCrossEntropy(loss2, nil, x, y, float32(scale))
			ewRun(t, l, op, err)
			for i, v := range readT(t, loss2) {
				if math.Float32bits(v) != math.Float32bits(gotLoss[i]) {
					t.Fatalf("%s forward only: row %d is %v, with gradient %v", what, i, v, gotLoss[i])
				}
			}
		}
	})
}

// TestLossFlooredSoftmaxCrossEntropy puts the floor between the rows' cross entropies, so
// that about half the rows sit on it (loss = floor, zero gradient) and half above it.
func TestLossFlooredSoftmaxCrossEntropy(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range lossShapes[:3] {
			rows, cols := sh[0], sh[1]
			what := "floored softmax cross entropy " + ewShape([]int{rows, cols})
			xs := lossLogits(rng, rows, cols)
			labels := make([]uint32, rows)
			for i := range labels {
				labels[i] = uint32(rng.IntN(cols))
			}
			x64 := to64(xs)
			plain, _ := RefSoftmaxCrossEntropy(x64, labels, cols, 1)
			sorted := append([]float64(nil), plain...)
			sort.Float64s(sorted)
			// Midway between two neighbouring losses: no row sits at the kink, where float32
			// rounding could put it on either side.
			floor := (sorted[rows/2-1] + sorted[rows/2]) / 2
			scale := -3.5
			x := mustTensor(t, l, "logits", xs, rows, cols)
			y := lossIndex(t, l, "labels", labels, cols)
			loss := poisoned(t, l, "loss", rows)
			dx := poisoned(t, l, "dlogits", rows, cols)
			op, err := l.FlooredSoftmaxCrossEntropy(loss, dx, x, y, float32(scale), float32(floor))
			ewRun(t, l, op, err)
			wantLoss, wantGrad := RefFlooredSoftmaxCrossEntropy(x64, labels, cols, scale, float64(float32(floor)))
			gotLoss, gotGrad := readT(t, loss), readT(t, dx)
			mag := make([]float64, rows)
			for b := range mag {
				mag[b] = 1 + math.Abs(plain[b])
			}
			assertReduceClose(t, what+" loss", gotLoss, wantLoss, mag, 1e-4)
			assertClose(t, what+" dlogits", gotGrad, wantGrad, 1e-5)
			onFloor := 0
			for b := 0; b < rows; b++ {
				if plain[b] < floor {
					onFloor++
					if gotLoss[b] != float32(floor) {
						t.Fatalf("%s: row %d has cross entropy %.6g below the floor %.6g but loss %v", what, b, plain[b], floor, gotLoss[b])
					}
				}
			}
			if onFloor == 0 || onFloor == rows {
				t.Fatalf("%s: %d of %d rows on the floor; the test wants both kinds", what, onFloor, rows)
			}
			lossCheckFD(t, rng, what+" dlogits", x64, gotGrad, math.Abs(scale), func(v []float64) float64 {
				lv, _ := RefFlooredSoftmaxCrossEntropy(v, labels, cols, scale, floor)
				return scale * lossSum(lv)
			})
			loss2 := poisoned(t, l, "loss", rows)
			op, err = l.FlooredSoftmaxCrossEntropy(loss2, nil, x, y, float32(scale), float32(floor))
			ewRun(t, l, op, err)
			for i, v := range readT(t, loss2) {
				if math.Float32bits(v) != math.Float32bits(gotLoss[i]) {
					t.Fatalf("%s forward only: row %d is %v, with gradient %v", what, i, v, gotLoss[i])
				}
			}
		}
		x := mustTensor(t, l, "logits", lossLogits(rng, 4, 3), 4, 3)
		y := lossIndex(t, l, "labels", []uint32{0, 1, 2, 0}, 3)
		for _, bad := range []float32{-0.5, float32(math.NaN()), float32(math.Inf(1))} {
			_, err := l.FlooredSoftmaxCrossEntropy(poisoned(t, l, "loss", 4), nil, x, y, 1, bad)
			if err == nil || !strings.Contains(err.Error(), "floor") {
				t.Fatalf("floor %v: error %v, want one naming the floor", bad, err)
			}
		}
	})
}

// TestLossSoftmaxCrossEntropyBadLabel writes a label ≥ D straight into the buffer (as a
// GPU kernel could): that row's loss and gradient are NaN, the others unaffected.
func TestLossSoftmaxCrossEntropyBadLabel(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	const rows, cols = 5, 7
	xs := lossLogits(rng, rows, cols)
	labels := []uint32{1, 6, 0, 3, 2}
	x := mustTensor(t, l, "logits", xs, rows, cols)
	y := lossIndex(t, l, "labels", labels, cols)
	bad := append([]uint32(nil), labels...)
	bad[2] = cols
	if err := l.Device().Queue().WriteUint32(y.Buf, 0, bad); err != nil {
		t.Fatal(err)
	}
	loss := poisoned(t, l, "loss", rows)
	dx := poisoned(t, l, "dlogits", rows, cols)
	op, err := l.SoftmaxCrossEntropy(loss, dx, x, y, 0.5)
	ewRun(t, l, op, err)
	wantLoss, wantGrad := RefSoftmaxCrossEntropy(to64(xs), labels, cols, 0.5)
	gotLoss, gotGrad := readT(t, loss), readT(t, dx)
	for b := 0; b < rows; b++ {
		if b == 2 {
			if !math.IsNaN(float64(gotLoss[b])) {
				t.Fatalf("row %d with label %d ≥ %d: loss %v, want NaN", b, bad[b], cols, gotLoss[b])
			}
			for d := 0; d < cols; d++ {
				if !math.IsNaN(float64(gotGrad[b*cols+d])) {
					t.Fatalf("row %d with label %d ≥ %d: dlogits[%d] = %v, want NaN", b, bad[b], cols, d, gotGrad[b*cols+d])
				}
			}
			continue
		}
		assertClose(t, "loss of a good row", gotLoss[b:b+1], wantLoss[b:b+1], 1e-4)
		assertClose(t, "dlogits of a good row", gotGrad[b*cols:(b+1)*cols], wantGrad[b*cols:(b+1)*cols], 1e-5)
	}
}

// TestLossSoftmaxCrossEntropyFoldedGrid runs the GPU plan on more than 65535 rows, so the
// grid folds into two dimensions and the shader's row index is exercised.
func TestLossSoftmaxCrossEntropyFoldedGrid(t *testing.T) {
	l, rng := testLib(t), testRNG(t)
	gpuPlan := ewGPU
	ewForceTarget = &gpuPlan
	defer func() { ewForceTarget = nil }()
	const rows, cols = 65539, 3
	if _, g := l.lossRowPlan(rows, cols); g[1] < 2 {
		t.Fatalf("lossRowPlan(%d, %d) grid %v: expected a folded grid", rows, cols, g)
	}
	xs := randn(rng, rows*cols, 2)
	labels := make([]uint32, rows)
	for i := range labels {
		labels[i] = uint32(rng.IntN(cols))
	}
	x := mustTensor(t, l, "logits", xs, rows, cols)
	y := lossIndex(t, l, "labels", labels, cols)
	loss := poisoned(t, l, "loss", rows)
	op, err := l.SoftmaxCrossEntropy(loss, nil, x, y, 1)
	ewRun(t, l, op, err)
	want, _ := RefSoftmaxCrossEntropy(to64(xs), labels, cols, 1)
	assertClose(t, "softmax cross entropy (folded grid)", readT(t, loss), want, 1e-4)
}

func TestLossArgmax(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range lossShapes {
			rows, cols := sh[0], sh[1]
			// Values rounded to integers tie often; the smallest index must win.
			xs := randn(rng, rows*cols, 1.5)
			for i := range xs {
				xs[i] = float32(math.Round(float64(xs[i])))
			}
			if rows > 2 && cols > 3 {
				// A row with a NaN after its maximum: the NaN wins (numpy, torch).
				xs[cols+1], xs[cols+2] = 100, float32(math.NaN())
			}
			if rows > 2 && cols > 64 {
				// Two NaNs, the later one in lane 0 of every plan: the first one wins.
				xs[2*cols+5], xs[2*cols+64] = float32(math.NaN()), float32(math.NaN())
			}
			x := mustTensor(t, l, "x", xs, rows, cols)
			out := lossIndex(t, l, "argmax", make([]uint32, rows), cols)
			poison := make([]uint32, rows)
			for i := range poison {
				poison[i] = 0xDEADBEEF
			}
			if err := l.Device().Queue().WriteUint32(out.Buf, 0, poison); err != nil {
				t.Fatal(err)
			}
			op, err := l.Argmax(out, x)
			ewRun(t, l, op, err)
			got, err := out.Read()
			if err != nil {
				t.Fatal(err)
			}
			want := RefArgmax(to64(xs), cols)
			for b := range want {
				if got[b] != want[b] {
					t.Fatalf("argmax %s: row %d is %d (x = %v), want %d (x = %v)", ewShape([]int{rows, cols}), b, got[b], lossAt(xs, b, cols, got[b]), want[b], xs[b*cols+int(want[b])])
				}
			}
		}
	})
}

func TestLossBernoulliLogitsNLL(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range lossShapes {
			rows, cols := sh[0], sh[1]
			what := "bernoulli logits nll " + ewShape([]int{rows, cols})
			xs := lossLogits(rng, rows, cols)
			ts := make([]float32, rows*cols)
			for i := range ts {
				// Grayscale targets, with the saturated 0 and 1 of MNIST backgrounds.
				switch rng.IntN(4) {
				case 0:
					ts[i] = 0
				case 1:
					ts[i] = 1
				default:
					ts[i] = float32(rng.Float64())
				}
			}
			scale := 1 / float64(rows)
			x := mustTensor(t, l, "logits", xs, rows, cols)
			tg := mustTensor(t, l, "target", ts, rows, cols)
			loss := poisoned(t, l, "loss", rows)
			dx := poisoned(t, l, "dlogits", rows, cols)
			op, err := l.BernoulliLogitsNLL(loss, dx, x, tg, float32(scale))
			ewRun(t, l, op, err)

			x64, t64 := to64(xs), to64(ts)
			wantLoss, wantGrad := RefBernoulliLogitsNLL(x64, t64, cols, scale)
			mag := lossRowMagnitude(x64, cols, func(i int) float64 {
				return math.Max(x64[i], 0) + math.Abs(t64[i]*x64[i]) + math.Log1p(math.Exp(-math.Abs(x64[i])))
			})
			gotLoss := readT(t, loss)
			assertReduceClose(t, what+" loss", gotLoss, wantLoss, mag, 1e-4)
			gotGrad := readT(t, dx)
			g, w := lossDivide(gotGrad, wantGrad, scale)
			assertClose(t, what+" dlogits/scale", g, w, 1e-5)
			lossCheckFD(t, rng, what+" dlogits", x64, gotGrad, scale, func(v []float64) float64 {
				lv, _ := RefBernoulliLogitsNLL(v, t64, cols, scale)
				return scale * lossSum(lv)
			})

			// Forward only, and a second run: the same bits (fixed reduction order).
			loss2 := poisoned(t, l, "loss", rows)
			op, err = l.BernoulliLogitsNLL(loss2, nil, x, tg, float32(scale))
			ewRun(t, l, op, err)
			if err := l.Run(op); err != nil {
				t.Fatal(err)
			}
			for i, v := range readT(t, loss2) {
				if math.Float32bits(v) != math.Float32bits(gotLoss[i]) {
					t.Fatalf("%s forward only: row %d is %v, with gradient %v", what, i, v, gotLoss[i])
				}
			}
		}
	})
}

// lossGaussian returns mu, logvar, eps and an upstream gradient dz of rows×cols.
func lossGaussian(rng *rand.Rand, rows, cols int) (mu, logvar, eps, dz []float32) {
	return randn(rng, rows*cols, 1.5), randn(rng, rows*cols, 1.5), randn(rng, rows*cols, 1), randn(rng, rows*cols, 0.1)
}

var lossLatentShapes = [][2]int{{37, 20}, {37, 7}, {1, 1}}

func TestLossReparameterize(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range lossLatentShapes {
			rows, cols := sh[0], sh[1]
			ms, lvs, es, _ := lossGaussian(rng, rows, cols)
			mu := mustTensor(t, l, "mu", ms, rows, cols)
			lv := mustTensor(t, l, "logvar", lvs, rows, cols)
			eps := mustTensor(t, l, "eps", es, rows, cols)
			z := poisoned(t, l, "z", rows, cols)
			op, err := l.Reparameterize(z, mu, lv, eps)
			ewRun(t, l, op, err)
			assertClose(t, "reparameterize "+ewShape([]int{rows, cols}), readT(t, z), RefReparameterize(to64(ms), to64(lvs), to64(es)), 1e-4)
		}
	})
}

func TestLossGaussianKL(t *testing.T) {
	forEachEwTarget(t, func(t *testing.T) {
		l, rng := testLib(t), testRNG(t)
		for _, sh := range lossLatentShapes {
			rows, cols := sh[0], sh[1]
			what := "gaussian kl " + ewShape([]int{rows, cols})
			ms, lvs, es, dzs := lossGaussian(rng, rows, cols)
			scale := 1 / float64(rows)
			mu := mustTensor(t, l, "mu", ms, rows, cols)
			lv := mustTensor(t, l, "logvar", lvs, rows, cols)
			eps := mustTensor(t, l, "eps", es, rows, cols)
			dz := mustTensor(t, l, "dz", dzs, rows, cols)
			m64, lv64, e64, dz64 := to64(ms), to64(lvs), to64(es), to64(dzs)
			mag := lossRowMagnitude(m64, cols, func(i int) float64 {
				return 0.5 * (m64[i]*m64[i] + math.Exp(lv64[i]) + 1 + math.Abs(lv64[i]))
			})
			// J(mu, logvar) = Σ dz·z(mu, logvar) + scale·Σ_b kl_b: a linear reconstruction
			// loss with gradient dz at z, plus the scaled KL. dmu and dlogvar are its
			// gradient.
			J := func(m, v []float64, withDz bool) float64 {
				kl, _, _ := RefGaussianKL(m, v, nil, nil, cols, scale)
				j := scale * lossSum(kl)
				if withDz {
					for i, zi := range RefReparameterize(m, v, e64) {
						j += dz64[i] * zi
					}
				}
				return j
			}
			for _, withDz := range []bool{true, false} {
				name := what
				var dzT, epsT *Tensor
				var dzRef, epsRef []float64
				if withDz {
					dzT, epsT, dzRef, epsRef = dz, eps, dz64, e64
				} else {
					name += " (no dz)"
				}
				kl := poisoned(t, l, "kl", rows)
				dmu := poisoned(t, l, "dmu", rows, cols)
				dlv := poisoned(t, l, "dlogvar", rows, cols)
				op, err := l.GaussianKL(kl, dmu, dlv, mu, lv, dzT, epsT, float32(scale))
				ewRun(t, l, op, err)
				wantKL, wantDmu, wantDlv := RefGaussianKL(m64, lv64, dzRef, epsRef, cols, scale)
				assertReduceClose(t, name+" kl", readT(t, kl), wantKL, mag, 1e-4)
				gotDmu, gotDlv := readT(t, dmu), readT(t, dlv)
				g, w := lossDivide(gotDmu, wantDmu, scale)
				assertClose(t, name+" dmu/scale", g, w, 1e-4)
				g, w = lossDivide(gotDlv, wantDlv, scale)
				assertClose(t, name+" dlogvar/scale", g, w, 1e-4)
				lossCheckFD(t, rng, name+" dmu", m64, gotDmu, scale, func(v []float64) float64 { return J(v, lv64, withDz) })
				lossCheckFD(t, rng, name+" dlogvar", lv64, gotDlv, scale, func(v []float64) float64 { return J(m64, v, withDz) })
			}
			// KL only (evaluation).
			kl := poisoned(t, l, "kl", rows)
			op, err := l.GaussianKL(kl, nil, nil, mu, lv, nil, nil, float32(scale))
			ewRun(t, l, op, err)
			wantKL, _, _ := RefGaussianKL(m64, lv64, nil, nil, cols, scale)
			assertReduceClose(t, what+" (forward) kl", readT(t, kl), wantKL, mag, 1e-4)
		}
	})
}

func TestLossErrors(t *testing.T) {
	l := testLib(t)
	ten := func(label string, shape ...int) *Tensor {
		x, err := NewTensor(l.Device(), label, shape...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Release)
		return x
	}
	x := ten("x", 37, 10)
	loss := ten("loss", 37)
	labels, err := NewIndexTensor(l.Device(), "labels", 37, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(labels.Release)
	mu := ten("mu", 37, 20)
	expect := func(what string, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("%s: error %q does not mention %q", what, err, p)
			}
		}
	}
	_, err = l.SoftmaxCrossEntropy(loss, ten("dx", 37, 11), x, labels, 1)
	expect("xent shape", err, "softmax cross entropy", "37×10", "37×11")
	_, err = l.SoftmaxCrossEntropy(ten("loss36", 36), nil, x, labels, 1)
	expect("xent loss length", err, "softmax cross entropy", "37×10", "36")
	wide, err := NewIndexTensor(l.Device(), "wide labels", 37, 11)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wide.Release)
	_, err = l.SoftmaxCrossEntropy(loss, nil, x, wide, 1)
	expect("xent label limit", err, "softmax cross entropy", "wide labels", "37×10")
	_, err = l.SoftmaxCrossEntropy(loss, x, x, labels, 1)
	expect("xent aliasing", err, "softmax cross entropy", "same tensor")
	_, err = l.SoftmaxCrossEntropy(loss, nil, x, labels, float32(math.NaN()))
	expect("xent scale", err, "softmax cross entropy", "scale")

	narrow, err := NewIndexTensor(l.Device(), "narrow", 37, 9)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(narrow.Release)
	_, err = l.Argmax(narrow, x)
	expect("argmax limit", err, "argmax", "narrow", "37×10")
	_, err = l.Argmax(labels, ten("x36", 36, 10))
	expect("argmax rows", err, "argmax", "36×10", "37")

	_, err = l.BernoulliLogitsNLL(loss, nil, x, ten("t", 37, 9), 1)
	expect("bce shape", err, "bernoulli logits nll", "37×10", "37×9")

	_, err = l.Reparameterize(ten("z", 37, 20), mu, ten("lv", 37, 7), ten("eps", 37, 20))
	expect("reparameterize shape", err, "reparameterize", "37×20", "37×7")

	_, err = l.GaussianKL(loss, ten("dmu", 37, 20), ten("dlv", 20, 37), mu, ten("lv", 37, 20), nil, nil, 1)
	expect("kl shape", err, "gaussian kl", "37×20", "20×37")
	_, err = l.GaussianKL(loss, ten("dmu", 37, 20), ten("dlv", 37, 20), mu, ten("lv", 37, 20), ten("dz", 37, 20), nil, 1)
	expect("kl dz without eps", err, "gaussian kl", "dz", "eps")
}
