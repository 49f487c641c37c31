// activations.wgsl — the activation functions shared by several kernel files.
//
// Not a kernel: the library appends this file to any shader containing the line
// `//!include activations.wgsl` (appended at the end, so line numbers in the including
// file stay true). `act` takes the values of kernels.Activation:
//   0 identity, 1 ReLU, 2 LeakyReLU (slope LEAKY_SLOPE), 3 SiLU, 4 GELU (tanh form),
//   5 tanh, 6 sigmoid, 7 softplus, 8 clip (clamp to ±CLIP_BOUND: the sampler's drift bound).
// act_fwd(x) is f(x); act_bwd(x) is f'(x) evaluated at the pre-activation x.

const LEAKY_SLOPE: f32 = 0.01;
const CLIP_BOUND: f32 = 1e4; // kernels.DriftClip
const GELU_C: f32 = 0.7978845608028654; // sqrt(2/pi)
const GELU_A: f32 = 0.044715;

fn sigmoid_f(x: f32) -> f32 {
	// Two branches keep exp() from overflowing for large |x|.
	if (x >= 0.0) {
		return 1.0 / (1.0 + exp(-x));
	}
	let e = exp(x);
	return e / (1.0 + e);
}

fn softplus_f(x: f32) -> f32 {
	// log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): exact for large |x|, no overflow.
	return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

fn tanh_f(x: f32) -> f32 {
	// WGSL's tanh returns NaN for large |x| on some backends; clamp first (tanh(±15) = ±1 in f32).
	return tanh(clamp(x, -15.0, 15.0));
}

fn act_fwd(x: f32, act: u32) -> f32 {
	switch act {
		case 1u: { return max(x, 0.0); }
		case 2u: { return select(LEAKY_SLOPE * x, x, x > 0.0); }
		case 3u: { return x * sigmoid_f(x); }
		case 4u: {
			let u = GELU_C * (x + GELU_A * x * x * x);
			return 0.5 * x * (1.0 + tanh_f(u));
		}
		case 5u: { return tanh_f(x); }
		case 6u: { return sigmoid_f(x); }
		case 7u: { return softplus_f(x); }
		case 8u: { return clamp(x, -CLIP_BOUND, CLIP_BOUND); }
		default: { return x; }
	}
}

fn act_bwd(x: f32, act: u32) -> f32 {
	switch act {
		case 1u: { return select(0.0, 1.0, x > 0.0); }
		case 2u: { return select(LEAKY_SLOPE, 1.0, x > 0.0); }
		case 3u: {
			let s = sigmoid_f(x);
			return s * (1.0 + x * (1.0 - s));
		}
		case 4u: {
			let u = GELU_C * (x + GELU_A * x * x * x);
			let th = tanh_f(u);
			let du = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
			return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
		}
		case 5u: {
			let th = tanh_f(x);
			return 1.0 - th * th;
		}
		case 6u: {
			let s = sigmoid_f(x);
			return s * (1.0 - s);
		}
		case 7u: { return sigmoid_f(x); }
		case 8u: { return select(0.0, 1.0, abs(x) < CLIP_BOUND); }
		default: { return 1.0; }
	}
}
