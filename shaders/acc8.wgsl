// acc8.wgsl — eight rows of one vec4 column group held in named registers, shared by the
// kernels that give each invocation a block of 8 rows (matmul.wgsl, rollout.wgsl).
//
// Not a kernel: the library appends this file to any shader containing the line
// `//!include acc8.wgsl`. No bindings, overrides or dispatch of its own.

// Acc8 is 8 rows × 4 columns, named so that they stay registers (an array indexed in a
// loop may become memory on lavapipe).
struct Acc8 {
	r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
	r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
}

// row_of is row r < 8 of g, by a chain of selects: indexing a local array with the loop
// variable instead made lavapipe's compile of matmul.wgsl take 7 s instead of 0.6, and 32
// inlined copies of its epilogue twice as long.
fn row_of(g: Acc8, r: u32) -> vec4<f32> {
	var v = g.r0;
	v = select(v, g.r1, r == 1u);
	v = select(v, g.r2, r == 2u);
	v = select(v, g.r3, r == 3u);
	v = select(v, g.r4, r == 4u);
	v = select(v, g.r5, r == 5u);
	v = select(v, g.r6, r == 6u);
	v = select(v, g.r7, r == 7u);
	return v;
}
