// philox.wgsl — the counter-based Philox-4x32-10 generator (Salmon, Moraes, Dror & Shaw,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011) and its uniform and normal
// transforms, shared by every kernel that draws random numbers.
//
// Not a kernel: the library appends this file to any shader containing the line
// `//!include philox.wgsl`. No bindings, overrides or dispatch of its own.
//
// philox4x32_10(ctr, key) maps a 128-bit counter and a 64-bit key to 128 random bits; the
// same (ctr, key) always gives the same bits, so any invocation can draw its numbers
// without state. kernels.Philox4x32 in Go is the bit-exact reference.
//
// Transforms (kernels.PhiloxUniform / PhiloxNormal give the same values in Go):
//   philox_uniform(x) = ((x >> 9) + 0.5) · 2^-23, in [2^-24, 1 − 2^-24]: 23 random bits,
//     exactly representable in f32 (so GPU and Go agree bit for bit) and never 0 or 1.
//   philox_normal4(r) = two Box–Muller pairs from the four uniforms of one Philox block:
//     (n0, n1) = ρ(u0)·(cos θ(u1), sin θ(u1)), (n2, n3) = ρ(u2)·(cos θ(u3), sin θ(u3)),
//     ρ(u) = sqrt(−2 ln u), θ(u) = π·(2u − 1) ∈ (−π, π). Since u ≥ 2^-24, ρ ≤ 5.77: the
//     tails beyond |n| > 5.77 (mass 8e-9) are cut, as in every float32 Box–Muller.
//     ln, sin and cos are evaluated by our own series near the points where the Vulkan
//     accuracy rules for the builtins are loose, so every GPU agrees with Go to ~1e-6.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// philox_mulhilo returns (high, low) 32-bit halves of the 64-bit product a·b. WGSL has no
// 64-bit integers, so the high half is assembled from 16-bit partial products; the low
// half is the ordinary wrapping u32 product.
fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
	let al = a & 0xFFFFu;
	let ah = a >> 16u;
	let bl = b & 0xFFFFu;
	let bh = b >> 16u;
	let ll = al * bl;
	let lh = al * bh;
	let hl = ah * bl;
	let hh = ah * bh;
	// Bits 16..31 of the product with their carry: at most 3·(2^16 − 1) + 2^16, no overflow.
	let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
	let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
	return vec2<u32>(hi, a * b);
}

// philox_round is one Philox S-box/P-box round.
fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
	let p0 = philox_mulhilo(PHILOX_M0, c.x);
	let p1 = philox_mulhilo(PHILOX_M1, c.z);
	return vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
}

// philox4x32_10 is Philox-4x32 with 10 rounds, the key bumped by the Weyl constants
// between rounds (Random123's philox4x32_R(10, ctr, key)).
fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
	var c = ctr;
	var k = key;
	// Written as a loop of 10; the compiler is free to unroll it.
	for (var r = 0u; r < 10u; r = r + 1u) {
		if (r > 0u) {
			k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
		}
		c = philox_round(c, k);
	}
	return c;
}

// philox_uniform maps 32 random bits to (0, 1) using the top 23 bits; exact in f32.
fn philox_uniform(x: u32) -> f32 {
	return (f32(x >> 9u) + 0.5) * 1.1920928955078125e-7; // 2^-23
}

// philox_neg2log returns −2·ln(u) for u = philox_uniform(·) ∈ (0, 1). For u ≥ 1/2 it uses
// the series −ln(1 − v) = 2·atanh(s), s = v / (2 − v), v = 1 − u (exact in f32): the
// builtin log is only required to be accurate to 2^-21 absolute near 1 (Vulkan), which
// would make the small radii of Box–Muller wrong in the 3rd digit on some GPUs.
fn philox_neg2log(u: f32) -> f32 {
	if (u < 0.5) {
		return -2.0 * log(u);
	}
	let v = 1.0 - u;
	let s = v / (2.0 - v); // s ∈ (0, 1/3]
	let s2 = s * s;
	// 2·atanh(s) = 2·(s + s³/3 + s⁵/5 + …); the terms after s^17/17 are below 2^-24·s.
	var p = 1.0 / 17.0;
	p = p * s2 + 1.0 / 15.0;
	p = p * s2 + 1.0 / 13.0;
	p = p * s2 + 1.0 / 11.0;
	p = p * s2 + 1.0 / 9.0;
	p = p * s2 + 1.0 / 7.0;
	p = p * s2 + 1.0 / 5.0;
	p = p * s2 + 1.0 / 3.0;
	p = p * s2 + 1.0;
	return 4.0 * s * p;
}

// philox_sincospi returns (sin πa, cos πa) for a ∈ [−1, 1]. Reduced exactly to
// r = a − q/2 ∈ [−1/4, 1/4] (a is a multiple of 2^-23, so the subtraction is exact), then
// Taylor polynomials on |πr| ≤ π/4 (error < 2e-9) and a quarter-turn rotation: the
// builtin sin/cos are only required to be accurate to 2^-11 absolute (Vulkan).
fn philox_sincospi(a: f32) -> vec2<f32> {
	let q = round(2.0 * a); // −2 … 2
	let x = 3.14159265358979323846 * (a - 0.5 * q);
	let x2 = x * x;
	var s = 1.0 / 362880.0;
	s = s * x2 - 1.0 / 5040.0;
	s = s * x2 + 1.0 / 120.0;
	s = s * x2 - 1.0 / 6.0;
	s = s * x2 + 1.0;
	s = s * x;
	var c = -1.0 / 3628800.0;
	c = c * x2 + 1.0 / 40320.0;
	c = c * x2 - 1.0 / 720.0;
	c = c * x2 + 1.0 / 24.0;
	c = c * x2 - 0.5;
	c = c * x2 + 1.0;
	// Rotate by q quarter turns: sin(x + qπ/2), cos(x + qπ/2).
	let qi = (i32(q) + 4) % 4;
	switch qi {
		case 1: { return vec2<f32>(c, -s); }
		case 2: { return vec2<f32>(-s, -c); }
		case 3: { return vec2<f32>(-c, s); }
		default: { return vec2<f32>(s, c); }
	}
}

// philox_normal4 turns one Philox block into four independent standard normals.
fn philox_normal4(r: vec4<u32>) -> vec4<f32> {
	let rho0 = sqrt(philox_neg2log(philox_uniform(r.x)));
	let sc0 = philox_sincospi(2.0 * philox_uniform(r.y) - 1.0);
	let rho1 = sqrt(philox_neg2log(philox_uniform(r.z)));
	let sc1 = philox_sincospi(2.0 * philox_uniform(r.w) - 1.0);
	return vec4<f32>(rho0 * sc0.y, rho0 * sc0.x, rho1 * sc1.y, rho1 * sc1.x);
}
