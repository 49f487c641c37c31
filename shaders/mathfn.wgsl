// mathfn.wgsl — elementwise functions of imported graphs that the activations of
// activations.wgsl do not cover (or cover with a fixed slope): negation, exp, log, sqrt,
// reciprocal, abs, erf, ELU and LeakyReLU with a parameter α, forward and backward.
//
// Bindings (group 0), per entry point; every array has n elements:
//   math_fwd  0: x  read         1: y  read_write   2: params     y = f(x)
//   math_bwd  0: dy read         1: x  read         2: dx read_write   3: params
//             dx = dy·f'(x), f' evaluated at the forward input x
// Uniform params: struct { n: u32, alpha: f32 } — α of ELU and LeakyReLU (0 otherwise).
// Overrides: FN (u32, a kernels.MathFn: 0 neg, 1 exp, 2 log, 3 sqrt, 4 reciprocal, 5 abs,
//   6 erf, 7 elu, 8 leakyrelu); wg (u32), the workgroup size: 256 on GPUs, the SIMD width
//   on CPU adapters.
// Dispatch: any grid of workgroups (folded into (x, y) beyond 65535: linear workgroup
//   index wid.x + wid.y·nwg.x); workgroup g owns the contiguous chunk of the n elements
//   that m_chunk() gives it. On GPUs Grid1D(n, 256); on CPU adapters a few per core.

struct MathParams {
	n: u32,
	alpha: f32,
}

override FN: u32 = 0u;
override wg: u32 = 256u;

@group(0) @binding(0) var<storage, read> m_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> m_y: array<f32>;
@group(0) @binding(2) var<uniform> m_p: MathParams;

// math_bwd: binding 0 is dy (m_x), binding 1 the forward input x.
@group(0) @binding(1) var<storage, read> mb_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mb_dx: array<f32>;
@group(0) @binding(3) var<uniform> mb_p: MathParams;

const TWO_OVER_SQRT_PI: f32 = 1.1283791670955126;

fn m_chunk(wid: vec3<u32>, nwg: vec3<u32>, n: u32) -> vec2<u32> {
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	return vec2<u32>(start, min(start + size, n));
}

// erf_f: WGSL has no erf. Below 0.5 the Maclaurin series (7 terms, truncation < 1e-9
// relative); above, 1 − erfc with the Chebyshev fit of Numerical Recipes' erfcc
// (fractional error < 1.2e-7), which keeps full relative accuracy near 0 where 1 − erfc
// would cancel.
fn erf_f(x: f32) -> f32 {
	let a = abs(x);
	if (a < 0.5) {
		let t = x * x;
		let s = 1.0 + t * (-1.0 / 3.0 + t * (1.0 / 10.0 + t * (-1.0 / 42.0 + t * (1.0 / 216.0 + t * (-1.0 / 1320.0 + t * (1.0 / 9360.0))))));
		return TWO_OVER_SQRT_PI * x * s;
	}
	let t = 1.0 / (1.0 + 0.5 * a);
	let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
	let erfc = t * exp(-a * a + poly);
	return sign(x) * (1.0 - erfc);
}

fn math_f(x: f32, alpha: f32) -> f32 {
	switch FN {
		case 0u: { return -x; }
		case 1u: { return exp(x); }
		case 2u: { return log(x); }
		case 3u: { return sqrt(x); }
		case 4u: { return 1.0 / x; }
		case 5u: { return abs(x); }
		case 6u: { return erf_f(x); }
		case 7u: { return select(alpha * (exp(x) - 1.0), x, x > 0.0); }
		default: { return select(alpha * x, x, x >= 0.0); }
	}
}

fn math_d(x: f32, alpha: f32) -> f32 {
	switch FN {
		case 0u: { return -1.0; }
		case 1u: { return exp(x); }
		case 2u: { return 1.0 / x; }
		case 3u: { return 0.5 / sqrt(x); }
		case 4u: { return -1.0 / (x * x); }
		case 5u: { return sign(x); }
		case 6u: { return TWO_OVER_SQRT_PI * exp(-x * x); }
		case 7u: { return select(alpha * exp(x), 1.0, x > 0.0); }
		default: { return select(alpha, 1.0, x > 0.0); }
	}
}

@compute @workgroup_size(wg)
fn math_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = m_chunk(wid, nwg, m_p.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		m_y[i] = math_f(m_x[i], m_p.alpha);
	}
}

@compute @workgroup_size(wg)
fn math_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = m_chunk(wid, nwg, mb_p.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		mb_dx[i] = m_x[i] * math_d(mb_x[i], mb_p.alpha);
	}
}
