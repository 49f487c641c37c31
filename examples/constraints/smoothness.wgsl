// smoothness.wgsl — an osds WGSL constraint without a gradient: prefer smooth images,
//
//   log r(x) = −λ · Σ (x[r, c+1] − x[r, c])² + (x[r+1, c] − x[r, c])²
//
// over the neighbouring pixels of a square grayscale image (D = SIDE²). It defines no
// grad_log_reward, so osds takes central finite differences of log_reward when a
// gradient is needed (2·D evaluations per sample; see README.md).

const LAMBDA: f32 = 2.0;

const SIDE: u32 = u32(sqrt(f32(D)) + 0.5);
const_assert SIDE * SIDE == D;

fn log_reward(x: Sample) -> f32 {
	var s = 0.0;
	for (var r = 0u; r < SIDE; r++) {
		for (var c = 0u; c < SIDE; c++) {
			let v = x[r * SIDE + c];
			if (c + 1u < SIDE) {
				let d = x[r * SIDE + c + 1u] - v;
				s += d * d;
			}
			if (r + 1u < SIDE) {
				let d = x[(r + 1u) * SIDE + c] - v;
				s += d * d;
			}
		}
	}
	return -LAMBDA * s;
}
