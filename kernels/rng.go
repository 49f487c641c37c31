package kernels

import (
	"fmt"
	"math"

	"osds/gpu"
)

// Counter-based random numbers (Philox-4x32-10, shaders/philox.wgsl and shaders/rng.wgsl).
//
// Every random number in osds is a pure function of a 64-bit seed and a 128-bit counter,
// so a run is reproducible for a seed, any invocation can draw its numbers without state,
// and the Go functions below reproduce the GPU's bits exactly. The counter is laid out as
// (block, a, b, domain): block numbers the groups of four numbers inside one draw, a and b
// are free words chosen by the kernel (offset and stream here; step and stream in the SDE
// step), and domain keeps kernel families apart:
//
//	domain 0 (PhiloxDomainRand): RandUniform, RandNormal, RandIndex: counter (i/4, offset, stream, 0)
//	domain 1 (PhiloxDomainSDE):  SDEStep noise: counter (b·⌈d/4⌉ + j/4, step, stream, 1)

// Philox domains: the last counter word of each family of random draws.
const (
	PhiloxDomainRand uint32 = 0
	PhiloxDomainSDE  uint32 = 1
)

// Philox-4x32 constants (Salmon et al. 2011): round multipliers and the Weyl sequence
// that bumps the key between rounds.
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// Philox4x32 is Philox-4x32-10: ten rounds of
//
//	(c0, c1, c2, c3) ← (hi(M1·c2) ⊕ c1 ⊕ k0, lo(M1·c2), hi(M0·c0) ⊕ c3 ⊕ k1, lo(M0·c0))
//
// with the key bumped by (W0, W1) before every round but the first. It is the bit-exact
// reference of philox4x32_10 in shaders/philox.wgsl and matches Random123's known answers.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	c, k := ctr, key
	for r := 0; r < 10; r++ {
		if r > 0 {
			k[0] += philoxW0
			k[1] += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(c[0])
		p1 := uint64(philoxM1) * uint64(c[2])
		c = [4]uint32{uint32(p1>>32) ^ c[1] ^ k[0], uint32(p1), uint32(p0>>32) ^ c[3] ^ k[1], uint32(p0)}
	}
	return c
}

// PhiloxUniform maps 32 random bits to (0, 1): ((x >> 9) + 1/2)·2^-23, in
// [2^-24, 1 − 2^-24]. The value is exact in float32, so GPU and Go agree bit for bit.
func PhiloxUniform(x uint32) float32 {
	return (float32(x>>9) + 0.5) * (1.0 / (1 << 23))
}

// PhiloxNormal4 turns one Philox block into four standard normals by Box–Muller on its
// four uniforms u0..u3 (PhiloxUniform):
//
//	(n0, n1) = ρ(u0)·(cos θ(u1), sin θ(u1)),  (n2, n3) = ρ(u2)·(cos θ(u3), sin θ(u3)),
//	ρ(u) = sqrt(−2 ln u),  θ(u) = π·(2u − 1).
//
// It is the float64 reference of philox_normal4 (the GPU agrees to ~1e-6). Because
// u ≥ 2^-24, |n| ≤ 5.77: tails of mass 8e-9 are cut.
func PhiloxNormal4(r [4]uint32) [4]float64 {
	var out [4]float64
	for p := 0; p < 2; p++ {
		u := float64(PhiloxUniform(r[2*p]))
		a := 2*float64(PhiloxUniform(r[2*p+1])) - 1
		rho := math.Sqrt(-2 * math.Log(u))
		s, c := math.Sincos(math.Pi * a)
		out[2*p], out[2*p+1] = rho*c, rho*s
	}
	return out
}

// philoxKey splits a 64-bit seed into the two key words (low word first).
func philoxKey(seed uint64) [2]uint32 { return [2]uint32{uint32(seed), uint32(seed >> 32)} }

// RefRandUniform returns what RandUniform writes into n elements for (seed, stream,
// offset): element i is PhiloxUniform of lane i mod 4 of Philox4x32((i/4, offset, stream,
// 0), seed). Exact: the GPU's bits are the same.
func RefRandUniform(n int, seed uint64, stream, offset uint32) []float32 {
	out := make([]float32, n)
	key := philoxKey(seed)
	for j := 0; 4*j < n; j++ {
		r := Philox4x32([4]uint32{uint32(j), offset, stream, PhiloxDomainRand}, key)
		for l := 0; l < 4 && 4*j+l < n; l++ {
			out[4*j+l] = PhiloxUniform(r[l])
		}
	}
	return out
}

// RefRandNormal returns what RandNormal writes into n elements for (seed, stream,
// offset): element i is lane i mod 4 of PhiloxNormal4(Philox4x32((i/4, offset, stream,
// 0), seed)), in float64.
func RefRandNormal(n int, seed uint64, stream, offset uint32) []float64 {
	out := make([]float64, n)
	key := philoxKey(seed)
	for j := 0; 4*j < n; j++ {
		z := PhiloxNormal4(Philox4x32([4]uint32{uint32(j), offset, stream, PhiloxDomainRand}, key))
		for l := 0; l < 4 && 4*j+l < n; l++ {
			out[4*j+l] = z[l]
		}
	}
	return out
}

// RefRandIndex returns what RandIndex writes into n elements: element i is
// ⌊x·limit / 2^32⌋ for the 32 bits x of lane i mod 4 of Philox4x32((i/4, offset, stream,
// 0), seed), a value in [0, limit) (Lemire's multiply-shift; bias below limit/2^32).
func RefRandIndex(n, limit int, seed uint64, stream, offset uint32) []uint32 {
	out := make([]uint32, n)
	key := philoxKey(seed)
	for j := 0; 4*j < n; j++ {
		r := Philox4x32([4]uint32{uint32(j), offset, stream, PhiloxDomainRand}, key)
		for l := 0; l < 4 && 4*j+l < n; l++ {
			out[4*j+l] = uint32(uint64(r[l]) * uint64(limit) >> 32)
		}
	}
	return out
}

// RandParams are the uniform parameters of a RandUniform or RandNormal op filling n
// elements. Ops start at offset 0; to draw fresh numbers every iteration from the same
// op, rewrite its parameters before the submission:
//
//	op.SetParams(l.Device(), RandParams(out.Len(), seed, stream, uint32(iter)))
//
// (a uniform write applies to the whole next submission, so one op recorded twice in one
// command buffer draws the same numbers twice: build one op per draw instead).
func RandParams(n int, seed uint64, stream, offset uint32) Params {
	return RandIndexParams(n, 0, seed, stream, offset)
}

// RandIndexParams are the uniform parameters of a RandIndex op (see RandParams).
func RandIndexParams(n, limit int, seed uint64, stream, offset uint32) Params {
	k := philoxKey(seed)
	return Params{n, k[0], k[1], stream, offset, limit}
}

// RandUniform fills out with uniform numbers in (0, 1) (23 random bits each), a pure
// function of (seed, stream) and the counter offset (0; see RandParams to change it).
// The values equal RefRandUniform bit for bit.
func (l *Library) RandUniform(out *Tensor, seed uint64, stream uint32) (*Op, error) {
	return l.randOp("rand_uniform", out, seed, stream)
}

// RandNormal fills out with standard normal numbers (Box–Muller on Philox uniforms), a
// pure function of (seed, stream) and the counter offset (0; see RandParams). The values
// equal RefRandNormal to ~1e-6.
func (l *Library) RandNormal(out *Tensor, seed uint64, stream uint32) (*Op, error) {
	return l.randOp("rand_normal", out, seed, stream)
}

func (l *Library) randOp(entry string, out *Tensor, seed uint64, stream uint32) (*Op, error) {
	name := "kernels: " + entry
	if out == nil {
		return nil, fmt.Errorf("%s: nil output tensor", name)
	}
	n := out.Len()
	if err := checkRandLen(name, n); err != nil {
		return nil, err
	}
	if err := philoxCheckBinding(l, name, "out", out); err != nil {
		return nil, err
	}
	return l.build(opSpec{
		name:    entry,
		file:    "rng.wgsl",
		entry:   entry,
		buffers: []*gpu.Buffer{out.Buf},
		params:  RandParams(n, seed, stream, 0),
		grid:    Grid1D((n+3)/4, 64),
	})
}

// RandIndex fills out with indices drawn uniformly from [0, limit) (up to a bias below
// limit/2^32), e.g. replay-buffer rows to Gather. limit must not exceed out.Limit, so
// the indices stay valid for whatever out was made to index. Values equal RefRandIndex;
// change the offset per iteration with RandIndexParams.
func (l *Library) RandIndex(out *IndexTensor, limit int, seed uint64, stream uint32) (*Op, error) {
	const name = "kernels: rand_index"
	if out == nil {
		return nil, fmt.Errorf("%s: nil output index tensor", name)
	}
	if err := checkRandLen(name, out.Len()); err != nil {
		return nil, err
	}
	if limit < 1 || limit > math.MaxUint32 {
		return nil, fmt.Errorf("%s: limit %d (want 1..2^32-1)", name, limit)
	}
	if limit > out.Limit {
		return nil, fmt.Errorf("%s: limit %d exceeds index tensor %q's bound %d", name, limit, out.Label(), out.Limit)
	}
	return l.build(opSpec{
		name:    "rand_index",
		file:    "rng.wgsl",
		entry:   "rand_index",
		buffers: []*gpu.Buffer{out.Buf},
		params:  RandIndexParams(out.Len(), limit, seed, stream, 0),
		grid:    Grid1D((out.Len()+3)/4, 64),
	})
}

// checkRandLen rejects lengths whose Philox block numbers would not fit the u32 counter.
func checkRandLen(name string, n int) error {
	if n < 1 || n > math.MaxUint32 {
		return fmt.Errorf("%s: %d elements (want 1..2^32-1)", name, n)
	}
	return nil
}
