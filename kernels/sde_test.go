package kernels

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// One step against RefSDEStep with the noise of the Go Philox reference, on awkward
// shapes, with each entry point (sde_row, sde_wg), step 0 (no bridge term), the last
// step, and exploration noise on and off.
func TestSDEStepMatchesReference(t *testing.T) {
	for _, entry := range []string{"sde_row", "sde_wg"} {
		t.Run(entry, func(t *testing.T) {
			sdeForceEntry = entry
			defer func() { sdeForceEntry = "" }()
			testSDEStepMatchesReference(t)
		})
	}
}

func testSDEStepMatchesReference(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	cases := []struct{ b, d, k, n int }{
		{1, 1, 0, 1},
		{7, 13, 0, 20},
		{7, 13, 19, 20},
		{64, 2, 5, 100},
		{129, 5, 1, 3},
		{3, 257, 7, 10},
		{17, 1031, 0, 4},
		{1000, 3, 50, 64},
	}
	for _, c := range cases {
		p := SDEParams{
			Step: c.k, Steps: c.n,
			Sigma:  0.3 + 2*rng.Float64(),
			Seed:   rng.Uint64(),
			Stream: rng.Uint32(),
		}
		if rng.IntN(2) == 0 {
			p.SigmaExplore = 0.1 + rng.Float64()
		}
		zk := randn(rng, c.b*c.d, 1)
		u := randn(rng, c.b*c.d, 2)
		pf0 := randn(rng, c.b, 10)
		pb0 := randn(rng, c.b, 10)
		zkT := mustTensor(t, l, "z_k", zk, c.b, c.d)
		uT := mustTensor(t, l, "u", u, c.b, c.d)
		zn := poisoned(t, l, "z_k+1", c.b, c.d)
		pfT := mustTensor(t, l, "log p_F", pf0, c.b)
		pbT := mustTensor(t, l, "log p_B", pb0, c.b)
		step, err := l.SDEStep(zkT, uT, zn, pfT, pbT, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Run(step.Op); err != nil {
			t.Fatal(err)
		}
		wantPF, wantPB := to64(pf0), to64(pb0)
		wantZ := RefSDEStep(to64(zk), to64(u), RefSDENoise(c.b, c.d, p), c.b, c.d, p, wantPF, wantPB)
		what := func(s string) string { return fmt.Sprintf("%s B=%d d=%d k=%d N=%d", s, c.b, c.d, c.k, c.n) }
		assertClose(t, what("z_{k+1}"), readT(t, zn), wantZ, 1e-4)
		assertClose(t, what("log p_F"), readT(t, pfT), wantPF, 1e-4)
		gotPB := readT(t, pbT)
		assertClose(t, what("log p_B"), gotPB, wantPB, 1e-4)
		if c.k == 0 {
			for i := range gotPB {
				if gotPB[i] != pb0[i] {
					t.Fatalf("%s: step 0 changed log p_B[%d] from %v to %v", what(""), i, pb0[i], gotPB[i])
				}
			}
		}
		step.Release()
	}
}

// Update rewrites the stream (new noise) and σ_explore; two runs with the same settings
// give the same bits (the per-sample sums have a fixed order), for both entries.
func TestSDEStepUpdateAndDeterminism(t *testing.T) {
	l := testLib(t)
	rng := testRNG(t)
	for _, entry := range []string{"sde_row", "sde_wg"} {
		sdeForceEntry = entry
		defer func() { sdeForceEntry = "" }()
		const b, d = 9, 300
		p := SDEParams{Step: 3, Steps: 8, Sigma: 1.3, Seed: rng.Uint64(), Stream: 1}
		zk := randn(rng, b*d, 1)
		u := randn(rng, b*d, 1)
		zkT := mustTensor(t, l, "z_k", zk, b, d)
		uT := mustTensor(t, l, "u", u, b, d)
		zn := poisoned(t, l, "z_k+1", b, d)
		pfT := poisoned(t, l, "log p_F", b)
		pbT := poisoned(t, l, "log p_B", b)
		step, err := l.SDEStep(zkT, uT, zn, pfT, pbT, p)
		if err != nil {
			t.Fatal(err)
		}
		defer step.Release()
		var first [][]float32
		for run := 0; run < 3; run++ {
			if run == 2 {
				p.Stream, p.SigmaExplore = 2, 0.7
				if err := step.Update(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := pfT.Fill(0.5); err != nil {
				t.Fatal(err)
			}
			if err := pbT.Fill(-0.5); err != nil {
				t.Fatal(err)
			}
			if err := zn.Poison(); err != nil {
				t.Fatal(err)
			}
			if err := l.Run(step.Op); err != nil {
				t.Fatal(err)
			}
			got := [][]float32{readT(t, zn), readT(t, pfT), readT(t, pbT)}
			switch run {
			case 0:
				first = got
			case 1:
				for i := range got {
					for j := range got[i] {
						if math.Float32bits(got[i][j]) != math.Float32bits(first[i][j]) {
							t.Fatalf("%s: output %d element %d differs between identical runs: %v vs %v", entry, i, j, first[i][j], got[i][j])
						}
					}
				}
			case 2:
				pf, pb := []float64{}, []float64{}
				for i := 0; i < b; i++ {
					pf, pb = append(pf, 0.5), append(pb, -0.5)
				}
				wz := RefSDEStep(to64(zk), to64(u), RefSDENoise(b, d, p), b, d, p, pf, pb)
				assertClose(t, "z_{k+1} after Update", got[0], wz, 1e-4)
				assertClose(t, "log p_F after Update", got[1], pf, 1e-4)
				assertClose(t, "log p_B after Update", got[2], pb, 1e-4)
			}
		}
	}
}

// With u = 0 the sampler is Brownian motion: after N steps z_N ~ N(0, σ²·t_N + N·σ_explore²)
// per coordinate (t_N = 1; exploration adds σ_explore² per step), and for every path
// Σ log p_F − Σ log p_B = log N(z_N; 0, σ²·I)
// exactly (the Brownian bridge factorises the policy's path density), whatever noise drew
// the path. The N steps are recorded into one command buffer, one op per step.
func TestSDEBrownianMotion(t *testing.T) {
	l := testLib(t)
	const b, d, n = 4096, 8, 16
	for _, explore := range []float64{0, 0.5} {
		zs := make([]*Tensor, n+1)
		zs[0] = mustTensor(t, l, "z_0", make([]float32, b*d), b, d) // z_0 = 0 exactly
		for k := 1; k <= n; k++ {
			zs[k] = poisoned(t, l, "z_k", b, d)
		}
		zero := mustTensor(t, l, "u", make([]float32, b*d), b, d)
		pf := mustTensor(t, l, "log p_F", make([]float32, b), b)
		pb := mustTensor(t, l, "log p_B", make([]float32, b), b)
		rec, err := l.NewRecorder("brownian")
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < n; k++ {
			p := SDEParams{Step: k, Steps: n, Sigma: 1, SigmaExplore: explore, Seed: 0x5eed0010, Stream: 4}
			s, err := l.SDEStep(zs[k], zero, zs[k+1], pf, pb, p)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release()
			rec.Record(s.Op)
		}
		if err := rec.Submit(); err != nil {
			t.Fatal(err)
		}
		z := readT(t, zs[n])
		mean, m2, _ := rngMoments(z)
		v := 1 + n*explore*explore
		cnt := float64(len(z))
		rngCheckStat(t, "z_N mean", mean, 0, 5*math.Sqrt(v/cnt))
		rngCheckStat(t, "z_N variance", m2, v, 5*v*math.Sqrt(2/cnt))
		gf, gb := readT(t, pf), readT(t, pb)
		diff := make([]float32, b)
		want := make([]float64, b)
		for s := 0; s < b; s++ {
			diff[s] = gf[s] - gb[s]
			for j := 0; j < d; j++ {
				x := float64(z[s*d+j])
				want[s] += -x*x/2 - 0.5*math.Log(2*math.Pi)
			}
		}
		assertClose(t, "Σ log p_F − Σ log p_B vs log N(z_N; 0, I)", diff, want, 1e-4)
	}
}

func TestSDEStepErrors(t *testing.T) {
	l := testLib(t)
	a := mustTensor(t, l, "a", []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	u := mustTensor(t, l, "u", []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	bad := mustTensor(t, l, "bad", []float32{1, 2, 3, 4, 5, 6}, 3, 2)
	zn := mustTensor(t, l, "zn", []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	pf := mustTensor(t, l, "pf", []float32{1, 2}, 2)
	pb := mustTensor(t, l, "pb", []float32{1, 2}, 2)
	pb3 := mustTensor(t, l, "pb3", []float32{1, 2, 3}, 3)
	ok := SDEParams{Step: 0, Steps: 4, Sigma: 1}
	cases := []struct {
		what              string
		zk, u, zn, pf, pb *Tensor
		p                 SDEParams
		want              string
	}{
		{"u shape", a, bad, zn, pf, pb, ok, "z_k is 2×3 but u is 3×2"},
		{"z_next shape", a, u, bad, pf, pb, ok, "z_k is 2×3 but z_{k+1} is 3×2"},
		{"log p_B length", a, u, zn, pf, pb3, ok, "log p_B is 3"},
		{"in place", a, u, a, pf, pb, ok, "z_{k+1} and z_k are the same tensor"},
		{"shared accumulator", a, u, zn, pf, pf, ok, "log p_F and log p_B are the same tensor"},
		{"step range", a, u, zn, pf, pb, SDEParams{Step: 4, Steps: 4, Sigma: 1}, "step 4 outside [0, 4)"},
		{"sigma", a, u, zn, pf, pb, SDEParams{Step: 0, Steps: 4, Sigma: 0}, "σ = 0"},
		{"explore", a, u, zn, pf, pb, SDEParams{Step: 0, Steps: 4, Sigma: 1, SigmaExplore: -1}, "σ_explore = -1"},
	}
	for _, c := range cases {
		s, err := l.SDEStep(c.zk, c.u, c.zn, c.pf, c.pb, c.p)
		if err == nil {
			s.Release()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.what, err, c.want)
		}
	}
}
