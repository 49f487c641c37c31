// matmul_common.wgsl — bindings, loads and the epilogue shared by the matmul kernels.
//
// Not a kernel: matmul.wgsl and matmul_tiled.wgsl include it with `//!include matmul_common.wgsl`
// (and activations.wgsl, which act_fwd comes from).
//
// Computes C = act(op(A)·op(B) + bias), or C += act(op(A)·op(B) + bias) when accumulating,
// where op(X) is X or Xᵀ. M×N is the shape of C and K the inner dimension. Two epilogues
// fuse the elementwise work of a layer's forward and backward pass into its product:
//   EPILOGUE 1 (save the pre-activation): aux = op(A)·op(B) + bias as well, C = act(aux);
//   EPILOGUE 2 (through an activation):   C = act(op(A)·op(B) + bias) ⊙ f'(aux), with f the
//                                           activation DERIV_ACT and aux its pre-activation.
//
// Bindings (group 0):
//   0: a     array<f32>, read: A, M×K row-major (K×M when TRANS_A)
//   1: b     array<f32>, read: B, K×N row-major (N×K when TRANS_B)
//   2: bias  array<f32>, read: N elements from bias_off on, added to every row (read only
//            when HAS_BIAS; the launcher binds A here otherwise)
//   3: c     array<f32>, M×N row-major, written (and read first when ACCUMULATE)
//   4: aux   array<f32>, M×N row-major: written by EPILOGUE 1, read by EPILOGUE 2 (the
//            launcher binds a placeholder otherwise)
//   5: p     uniform Params { m, n, k, bias_off: u32 }
// Overrides: TRANS_A, TRANS_B, HAS_BIAS, ACCUMULATE (bool), ACT, EPILOGUE, DERIV_ACT (u32;
// ACT and DERIV_ACT are kernels.Activation values). All are compile-time. The epilogue's
// options were uniforms at first; that cost 15–20% at the trainer's 300×64×64 on lavapipe,
// which evidently ran the activation switch's cases and both branches for every element
// even when the activation was the identity.

struct Params {
	m: u32,
	n: u32,
	k: u32,
	bias_off: u32, // the bias is bias[bias_off .. bias_off + N): one row of a table
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override ACT: u32 = 0u;
override EPILOGUE: u32 = 0u;
override DERIV_ACT: u32 = 0u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> aux: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

// op(A)[i, kk] for a row i < M and kk < K.
fn a_at(i: u32, kk: u32) -> f32 {
	if (TRANS_A) {
		return a[kk * p.m + i];
	}
	return a[i * p.k + kk];
}

// op(B)[kk, j] for kk < K and a column j < N.
fn b_at(kk: u32, j: u32) -> f32 {
	if (TRANS_B) {
		return b[j * p.k + kk];
	}
	return b[kk * p.n + j];
}

// op(A)[i, kk..kk+3]: the k past the first kn are read as 0, so a last partial step of the
// K loop adds nothing for them (their clamped index keeps the read inside A).
fn a_k4(i: u32, kk: u32, kn: u32) -> vec4<f32> {
	let last = p.k - 1u;
	return vec4<f32>(
		a_at(i, kk),
		select(0.0, a_at(i, min(kk + 1u, last)), kn > 1u),
		select(0.0, a_at(i, min(kk + 2u, last)), kn > 2u),
		select(0.0, a_at(i, min(kk + 3u, last)), kn > 3u));
}

// op(B)[kk, cols.x], ..., op(B)[kk, cols.w]: one row of B restricted to 4 columns.
fn b_row4(kk: u32, cols: vec4<u32>) -> vec4<f32> {
	return vec4<f32>(b_at(kk, cols.x), b_at(kk, cols.y), b_at(kk, cols.z), b_at(kk, cols.w));
}

// op(B)[kk+t, cols] for t = 0..3 as the columns of a matrix, zero for t ≥ kn (see a_k4).
fn b_k4(kk: u32, kn: u32, cols: vec4<u32>) -> mat4x4<f32> {
	let last = p.k - 1u;
	let z = vec4<f32>(0.0);
	return mat4x4<f32>(
		b_row4(kk, cols),
		select(z, b_row4(min(kk + 1u, last), cols), kn > 1u),
		select(z, b_row4(min(kk + 2u, last), cols), kn > 2u),
		select(z, b_row4(min(kk + 3u, last), cols), kn > 3u));
}

// The clamped column indices of the 4 columns starting at col: columns past N load column
// N-1 (in bounds, never stored).
fn cols4(col: u32) -> vec4<u32> {
	return min(vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u));
}

// Writes act(x + bias) (+ the old C) to C[row, col], with the EPILOGUE's use of aux,
// skipping what lies outside C. bias and aux are statically used even when the options
// leave them out, so that they stay in the default layout.
fn store1(row: u32, col: u32, x: f32) {
	if (row >= p.m || col >= p.n) {
		return;
	}
	var y = x;
	if (HAS_BIAS) {
		y += bias[p.bias_off + col];
	}
	let at = row * p.n + col;
	if (EPILOGUE == 1u) {
		aux[at] = y;
	}
	y = act_fwd(y, ACT);
	if (EPILOGUE == 2u) {
		y *= act_bwd(aux[at], DERIV_ACT);
	}
	if (ACCUMULATE) {
		y += c[at];
	}
	c[at] = y;
}

// Writes act(v + bias) (+ the old C) to C[row, col..col+3], skipping what lies outside C.
fn store4(row: u32, col: u32, v: vec4<f32>) {
	for (var j = 0u; j < 4u; j++) {
		store1(row, col + j, v[j]);
	}
}
