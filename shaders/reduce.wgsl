// reduce.wgsl — row reductions: out[r] = reduce(x[r*cols .. r*cols + cols)).
//
// Bindings (group 0):
//   0: x    array<f32>, n elements (rows×cols, row-major), read
//   1: out  array<f32>, rows elements, written: one value per row
//   2: params (uniform)
// Uniform params: struct { rows: u32, cols: u32, n: u32 } — row r covers the elements
//   [r*cols, min(r*cols + cols, n)); n = rows*cols except for the chunked first pass of
//   kernels.SumSquares, whose last chunk is short.
// Overrides: op (u32): 0 sum, 1 mean (sum / cols), 2 max, 3 logsumexp
//   (max-shifted: m + log Σ exp(x - m)), 4 sum of squares. The values match kernels.Reduction.
//   wg, fan (u32): reduce_wg's workgroup size and merge fan-in (fan divides wg): 256 and
//   16 on GPUs; 16 and 16 on CPU adapters, where every SIMD chunk of a workgroup is
//   switched at each barrier, so few chunks are better.
// Entry points and dispatch:
//   reduce_wg      one workgroup of wg invocations per row: Grid1D(rows, 1), folded into
//                  (x, y) past 65535 rows; row = wid.x + wid.y * nwg.x. For long rows.
//   reduce_thread  one invocation per row, workgroups of 64. On GPUs Grid1D(rows, 64),
//                  folded the same way; on CPU adapters a few workgroups per core, each
//                  looping over a contiguous block of rows. For short rows, or any rows
//                  on CPU adapters: no workgroup memory, no barriers.
//
// Determinism: every invocation visits its elements in a fixed order and partial results
// merge in a fixed tree; no atomics. The same inputs, (rows, cols, n, op) and entry
// point (with its wg, fan) therefore give the same bits on every run on one device.
//
// Cost on lavapipe: each workgroup is one task, and a barrier suspends and resumes every
// SIMD chunk of the workgroup. reduce_wg merges its partials with two barriers (wg/fan
// groups of fan, then the wg/fan group results) instead of the log2(wg) of a binary
// tree, and is only used there for a few long rows, too few to keep every core busy
// with reduce_thread.

override op: u32 = 0u;

const OP_SUM: u32 = 0u;
const OP_MEAN: u32 = 1u;
const OP_MAX: u32 = 2u;
const OP_LSE: u32 = 3u;
const OP_SUMSQ: u32 = 4u;

override wg: u32 = 256u;
override fan: u32 = 16u; // fan divides wg: the two merge levels of reduce_wg
const WG_THREAD: u32 = 64u;

// Lowest finite f32: the running max of an empty accumulator. Not -inf, so that merging
// two empty accumulators computes exp(0) * 0 rather than exp(-inf - -inf) = NaN.
const LOWEST: f32 = -3.40282346638528859812e+38;

struct Params {
	rows: u32,
	cols: u32,
	n: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// Acc is a partial reduction: m is the running max (max, logsumexp), s the running sum
// (sum, mean, sum of squares) or, for logsumexp, Σ exp(x - m).
struct Acc {
	m: f32,
	s: f32,
}

fn acc_empty() -> Acc {
	return Acc(LOWEST, 0.0);
}

fn acc_add(a: Acc, v: f32) -> Acc {
	switch op {
		case OP_MAX: {
			return Acc(max(a.m, v), 0.0);
		}
		case OP_LSE: {
			// Online rescaling: one exp per element. When v is the new max the old sum
			// shrinks by exp(m - v); otherwise v adds exp(v - m).
			let up = v > a.m;
			let e = exp(select(v - a.m, a.m - v, up));
			return Acc(max(a.m, v), select(a.s + e, fma(a.s, e, 1.0), up));
		}
		case OP_SUMSQ: {
			return Acc(a.m, fma(v, v, a.s));
		}
		default: {
			return Acc(a.m, a.s + v);
		}
	}
}

fn acc_merge(a: Acc, b: Acc) -> Acc {
	switch op {
		case OP_MAX: {
			return Acc(max(a.m, b.m), 0.0);
		}
		case OP_LSE: {
			let m = max(a.m, b.m);
			return Acc(m, a.s * exp(a.m - m) + b.s * exp(b.m - m));
		}
		default: {
			return Acc(a.m, a.s + b.s);
		}
	}
}

fn acc_result(a: Acc) -> f32 {
	switch op {
		case OP_MEAN: {
			return a.s / f32(p.cols);
		}
		case OP_MAX: {
			return a.m;
		}
		case OP_LSE: {
			return a.m + log(a.s);
		}
		default: {
			return a.s;
		}
	}
}

// reduce_range reduces x[start], x[start + stride], ... below end, always in the same
// order. Four loads are issued before their uses so that a GPU keeps several in flight
// (Tint does not unroll loops), and two accumulators alternate to shorten the
// dependency chain.
fn reduce_range(start: u32, end: u32, stride: u32) -> Acc {
	var a0 = acc_empty();
	var a1 = acc_empty();
	var i = start;
	loop {
		if (i + 3u * stride >= end) {
			break;
		}
		let v0 = x[i];
		let v1 = x[i + stride];
		let v2 = x[i + 2u * stride];
		let v3 = x[i + 3u * stride];
		a0 = acc_add(acc_add(a0, v0), v2);
		a1 = acc_add(acc_add(a1, v1), v3);
		i += 4u * stride;
	}
	for (; i < end; i += stride) {
		a0 = acc_add(a0, x[i]);
	}
	return acc_merge(a0, a1);
}

var<workgroup> wm: array<f32, wg>;
var<workgroup> ws: array<f32, wg>;

@compute @workgroup_size(wg)
fn reduce_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let row = wid.x + wid.y * nwg.x;
	// A folded grid can have a few workgroups past the last row; they still reach every
	// barrier (uniform control flow) and write nothing.
	let live = row < p.rows;
	var a = acc_empty();
	if (live) {
		let start = row * p.cols;
		a = reduce_range(start + lid, min(start + p.cols, p.n), wg);
	}
	wm[lid] = a.m;
	ws[lid] = a.s;
	workgroupBarrier();
	// Level 1: wg / fan invocations each merge fan neighbours, into the first one's slot.
	if (lid < wg / fan) {
		var g = Acc(wm[lid * fan], ws[lid * fan]);
		for (var k = 1u; k < fan; k++) {
			g = acc_merge(g, Acc(wm[lid * fan + k], ws[lid * fan + k]));
		}
		wm[lid * fan] = g.m;
		ws[lid * fan] = g.s;
	}
	workgroupBarrier();
	// Level 2: one invocation merges the wg / fan group results.
	if (lid == 0u && live) {
		var r = Acc(wm[0], ws[0]);
		for (var k = 1u; k < wg / fan; k++) {
			r = acc_merge(r, Acc(wm[k * fan], ws[k * fan]));
		}
		out[row] = acc_result(r);
	}
}

@compute @workgroup_size(WG_THREAD)
fn reduce_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	// Workgroup g owns the contiguous rows [g·per·64, (g+1)·per·64) clipped to rows,
	// per = ceil(rows / (G·64)) for G workgroups: 1 on GPU grids, more on CPU adapters.
	let threads = nwg.x * nwg.y * WG_THREAD;
	let size = (p.rows + threads - 1u) / threads * WG_THREAD;
	let first = (wid.x + wid.y * nwg.x) * size;
	let last = min(first + size, p.rows);
	for (var row = first + lid; row < last; row += WG_THREAD) {
		let start = row * p.cols;
		out[row] = acc_result(reduce_range(start, min(start + p.cols, p.n), 1u));
	}
}
