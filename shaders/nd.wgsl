// nd.wgsl — strided N-d data movement, NumPy-broadcasting arithmetic and axis reductions
// (the tensor plumbing of imported ONNX graphs: Transpose, Slice, Concat, Expand, Add/Sub/
// Mul/Div/Pow with broadcasting and their gradients, ReduceSum/ReduceMean).
//
// Terms: an "index space" of rank r ≤ 8 and shape s (row-major, last axis fastest, linear
// index i); an operand "layout" maps index (i_0..i_{r-1}) to the flat element
// off + Σ_d i_d·str[d] of its array (strides may be 0: broadcasting; negative: reversed
// slices). Outputs written at their linear index are contiguous over the index space.
//
// Bindings (group 0), per entry point:
//   copy_nd       0: src  read         1: dst  read_write   2: params
//                 dst[off1 + Σ i·str1] = alpha·src[off0 + Σ i·str0]   (n = |s| elements)
//   fill_nd       0: dst  read_write   1: params            dst[i] = alpha, i < n
//   binary_nd     0: a    read         1: b    read         2: z  read_write  3: params
//                 z[i] = f(a[off0 + Σ i·str0], b[off1 + Σ i·str1])            (OP selects f)
//   binary_grad   0: dz   read         1: a    read         2: b  read        3: g read_write
//                 4: params   g[i] = dz[i]·∂f/∂(a or b, WRT) at the same a, b as binary_nd
//   reduce_nd     0: src  read         1: dst  read_write   2: params
//                 dst[i] = alpha·Σ_j src[off0 + Σ i·str0 + Σ j·rstr]: i over the kept
//                 index space s (rank), j over the reduced space rshape (rrank, nred elements)
// Entry points share binding slots with different types; WGSL allows that when no entry
// point uses both declarations of a slot.
// Uniform params: NDParams below (192 bytes); unused fields are 0.
// Overrides: OP (u32: 0 add, 1 sub, 2 mul, 3 div, 4 pow; kernels.BinaryOp) and WRT (u32:
//   0 ∂/∂a, 1 ∂/∂b) for binary_nd/binary_grad; wg (u32), the workgroup size: 256 on GPUs,
//   the SIMD width on CPU adapters.
// Dispatch: any grid of workgroups (folded into (x, y) beyond 65535: linear workgroup
//   index wid.x + wid.y·nwg.x); workgroup g owns the contiguous chunk of the n outputs that
//   nd_chunk() gives it. On GPUs Grid1D(n, 256); on CPU adapters a few workgroups per core.

struct NDParams {
	n: u32,
	rank: u32,
	rrank: u32,
	nred: u32,
	off0: i32,
	off1: i32,
	alpha: f32,
	pad0: u32,
	shape: array<vec4<u32>, 2>,
	str0: array<vec4<i32>, 2>,
	str1: array<vec4<i32>, 2>,
	rshape: array<vec4<u32>, 2>,
	rstr: array<vec4<i32>, 2>,
}

override OP: u32 = 0u;
override WRT: u32 = 0u;
override wg: u32 = 256u;

// copy_nd / reduce_nd
@group(0) @binding(0) var<storage, read> c_src: array<f32>;
@group(0) @binding(1) var<storage, read_write> c_dst: array<f32>;
@group(0) @binding(2) var<uniform> c_p: NDParams;

// fill_nd
@group(0) @binding(0) var<storage, read_write> f_dst: array<f32>;
@group(0) @binding(1) var<uniform> f_p: NDParams;

// binary_nd
@group(0) @binding(1) var<storage, read> b_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> b_z: array<f32>;
@group(0) @binding(3) var<uniform> b_p: NDParams;

// binary_grad (binding 0 is dz through c_src, binding 1 is a through b_b)
@group(0) @binding(2) var<storage, read> g_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> g_out: array<f32>;
@group(0) @binding(4) var<uniform> g_p: NDParams;

// nd_chunk returns the outputs [start, end) of this workgroup (see elementwise.wgsl chunk).
fn nd_chunk(wid: vec3<u32>, nwg: vec3<u32>, n: u32) -> vec2<u32> {
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	return vec2<u32>(start, min(start + size, n));
}

// nd_offsets returns the flat elements (operand 0, operand 1) of linear index i of the
// index space (p.shape, p.rank) under the layouts (off0, str0) and (off1, str1).
fn nd_offsets(i: u32, p: NDParams) -> vec2<i32> {
	var rem = i;
	var o = vec2<i32>(p.off0, p.off1);
	for (var d = i32(p.rank) - 1; d >= 0; d--) {
		let s = p.shape[d / 4][d % 4];
		let c = i32(rem % s);
		rem = rem / s;
		o += c * vec2<i32>(p.str0[d / 4][d % 4], p.str1[d / 4][d % 4]);
	}
	return o;
}

@compute @workgroup_size(wg)
fn copy_nd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = nd_chunk(wid, nwg, c_p.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		let o = nd_offsets(i, c_p);
		c_dst[o.y] = c_p.alpha * c_src[o.x];
	}
}

@compute @workgroup_size(wg)
fn fill_nd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = nd_chunk(wid, nwg, f_p.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		f_dst[i] = f_p.alpha;
	}
}

// pow_s is a^b with the sign rule of integer exponents (WGSL's pow is undefined for a < 0,
// PyTorch's x**2 is not), and exact squares.
fn pow_s(a: f32, b: f32) -> f32 {
	if (b == 1.0) {
		return a;
	}
	if (b == 2.0) {
		return a * a;
	}
	if (b == 0.0) {
		return 1.0;
	}
	if (a == 0.0 && b > 0.0) {
		return 0.0;
	}
	if (b == round(b)) {
		let r = pow(abs(a), b);
		let odd = abs(b - 2.0 * floor(b / 2.0)) == 1.0;
		return select(r, -r, a < 0.0 && odd);
	}
	return pow(a, b);
}

fn binary_f(a: f32, b: f32) -> f32 {
	switch OP {
		case 0u: { return a + b; }
		case 1u: { return a - b; }
		case 2u: { return a * b; }
		case 3u: { return a / b; }
		default: { return pow_s(a, b); }
	}
}

// binary_d is ∂f/∂a (WRT 0) or ∂f/∂b (WRT 1) at (a, b).
fn binary_d(a: f32, b: f32) -> f32 {
	if (WRT == 0u) {
		switch OP {
			case 2u: { return b; }
			case 3u: { return 1.0 / b; }
			case 4u: { return b * pow_s(a, b - 1.0); }
			default: { return 1.0; }
		}
	}
	switch OP {
		case 1u: { return -1.0; }
		case 2u: { return a; }
		case 3u: { return -a / (b * b); }
		case 4u: {
			// ∂(a^b)/∂b = ln(a)·a^b, real only for a > 0 (PyTorch gives NaN below).
			return log(a) * pow_s(a, b);
		}
		default: { return 1.0; }
	}
}

@compute @workgroup_size(wg)
fn binary_nd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = nd_chunk(wid, nwg, b_p.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		let o = nd_offsets(i, b_p);
		b_z[i] = binary_f(c_src[o.x], b_b[o.y]);
	}
}

@compute @workgroup_size(wg)
fn binary_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = nd_chunk(wid, nwg, g_p.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		let o = nd_offsets(i, g_p);
		g_out[i] = c_src[i] * binary_d(b_b[o.x], g_b[o.y]);
	}
}

@compute @workgroup_size(wg)
fn reduce_nd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = nd_chunk(wid, nwg, c_p.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		let base = nd_offsets(i, c_p).x;
		var s = 0.0;
		// Walk the reduced space with an odometer: no divisions per element.
		var idx: array<u32, 8>;
		var o = base;
		for (var j = 0u; j < c_p.nred; j++) {
			s += c_src[o];
			var d = i32(c_p.rrank) - 1;
			loop {
				if (d < 0) {
					break;
				}
				let st = c_p.rstr[d / 4][d % 4];
				idx[d] += 1u;
				o += st;
				if (idx[d] < c_p.rshape[d / 4][d % 4]) {
					break;
				}
				o -= i32(idx[d]) * st;
				idx[d] = 0u;
				d--;
			}
		}
		c_dst[i] = c_p.alpha * s;
	}
}
