// softmax.wgsl — softmax and log-softmax along one axis of an N-d array, forward and
// backward (ONNX Softmax / LogSoftmax).
//
// Terms: the array is viewed as [outer, n, inner] (n the axis, inner the product of the
// axes after it); a "line" is one (o, j) pair, its elements base + k·inner for k < n,
// base = o·n·inner + j. There are outer·inner lines.
//
// Bindings (group 0), per entry point; every array has outer·n·inner elements:
//   softmax_fwd  0: x  read        1: y  read_write   2: params
//                y = exp(x − m) / Σ exp(x − m) along each line (LOG: y = x − m − log Σ exp(x − m)),
//                m the line's maximum
//   softmax_bwd  0: dy read        1: y  read         2: dx read_write   3: params
//                dx = y ⊙ (dy − Σ dy⊙y)        (softmax, y its output)
//                dx = dy − exp(y)·Σ dy         (LOG, y the log-softmax output)
// Uniform params: struct { lines: u32, n: u32, inner: u32 }.
// Overrides: LOG (bool) selects log-softmax; wg (u32), the workgroup size: 256 on GPUs,
//   the SIMD width on CPU adapters.
// Dispatch: any grid of workgroups (folded into (x, y) beyond 65535: linear workgroup
//   index wid.x + wid.y·nwg.x); one line per invocation, workgroup g owning the
//   contiguous chunk of lines that s_chunk() gives it. On GPUs Grid1D(lines, 256).

struct SoftmaxParams {
	lines: u32,
	n: u32,
	inner: u32,
}

override LOG: bool = false;
override wg: u32 = 256u;

@group(0) @binding(0) var<storage, read> s_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> s_y: array<f32>;
@group(0) @binding(2) var<uniform> s_p: SoftmaxParams;

// softmax_bwd: binding 0 is dy (s_x), binding 1 the forward output y.
@group(0) @binding(1) var<storage, read> sb_y: array<f32>;
@group(0) @binding(2) var<storage, read_write> sb_dx: array<f32>;
@group(0) @binding(3) var<uniform> sb_p: SoftmaxParams;

fn s_chunk(wid: vec3<u32>, nwg: vec3<u32>, n: u32) -> vec2<u32> {
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	return vec2<u32>(start, min(start + size, n));
}

fn line_base(r: u32, n: u32, inner: u32) -> u32 {
	return (r / inner) * n * inner + r % inner;
}

@compute @workgroup_size(wg)
fn softmax_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = s_chunk(wid, nwg, s_p.lines);
	let n = s_p.n;
	let st = s_p.inner;
	for (var r = c.x + lid; r < c.y; r += wg) {
		let base = line_base(r, n, st);
		var m = s_x[base];
		for (var k = 1u; k < n; k++) {
			m = max(m, s_x[base + k * st]);
		}
		var s = 0.0;
		for (var k = 0u; k < n; k++) {
			s += exp(s_x[base + k * st] - m);
		}
		if (LOG) {
			let ls = m + log(s);
			for (var k = 0u; k < n; k++) {
				s_y[base + k * st] = s_x[base + k * st] - ls;
			}
		} else {
			let inv = 1.0 / s;
			for (var k = 0u; k < n; k++) {
				s_y[base + k * st] = exp(s_x[base + k * st] - m) * inv;
			}
		}
	}
}

@compute @workgroup_size(wg)
fn softmax_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let c = s_chunk(wid, nwg, sb_p.lines);
	let n = sb_p.n;
	let st = sb_p.inner;
	for (var r = c.x + lid; r < c.y; r += wg) {
		let base = line_base(r, n, st);
		var s = 0.0;
		for (var k = 0u; k < n; k++) {
			let i = base + k * st;
			s += select(s_x[i] * sb_y[i], s_x[i], LOG);
		}
		for (var k = 0u; k < n; k++) {
			let i = base + k * st;
			if (LOG) {
				sb_dx[i] = s_x[i] - exp(sb_y[i]) * s;
			} else {
				sb_dx[i] = sb_y[i] * (s_x[i] - s);
			}
		}
	}
}
