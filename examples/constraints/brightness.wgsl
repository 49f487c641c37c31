// brightness.wgsl — an osds WGSL constraint: prefer images with a bright centre,
//
//   log r(x) = β · (mean of the central 8×8 pixels of x)
//
// for square grayscale priors (D = SIDE², e.g. 784 = 28×28 for mnist-vae).
//   osds train --prior mnist-vae --constraint wgsl:examples/constraints/brightness.wgsl
// See README.md for the contract: osds declares D and Sample = array<f32, D>; this file
// defines log_reward and, here, its exact gradient grad_log_reward.

const BETA: f32 = 20.0; // strength: log r ranges over [0, β] for pixels in [0, 1]
const BLOCK: u32 = 8u;  // side of the central block

const SIDE: u32 = u32(sqrt(f32(D)) + 0.5);
const_assert SIDE * SIDE == D; // the prior must make square grayscale images
const_assert SIDE >= BLOCK;
const FIRST: u32 = (SIDE - BLOCK) / 2u; // first row and column of the block

fn log_reward(x: Sample) -> f32 {
	var s = 0.0;
	for (var r = FIRST; r < FIRST + BLOCK; r++) {
		for (var c = FIRST; c < FIRST + BLOCK; c++) {
			s += x[r * SIDE + c];
		}
	}
	return BETA * s / f32(BLOCK * BLOCK);
}

// ∂log r/∂x_i = β/64 inside the block, 0 elsewhere.
fn grad_log_reward(x: Sample) -> Sample {
	var g: Sample; // zero-initialised
	for (var r = FIRST; r < FIRST + BLOCK; r++) {
		for (var c = FIRST; c < FIRST + BLOCK; c++) {
			g[r * SIDE + c] = BETA / f32(BLOCK * BLOCK);
		}
	}
	return g;
}
