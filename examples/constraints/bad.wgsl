// bad.wgsl — a constraint with a syntax error, for the error-message test: osds must
// report it as examples/constraints/bad.wgsl:LINE:COL with the line and a caret.

const BETA: f32 = 20.0;

fn log_reward(x: Sample) -> f32 {
	let m = (x[0] + x[1] / 2.0;
	return BETA * m;
}
