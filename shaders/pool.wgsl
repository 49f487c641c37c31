// pool.wgsl — 2-D max and average pooling over NCHW planes, forward and backward (ONNX
// MaxPool, AveragePool), with strides, padding and dilations per axis.
//
// Terms: N = B·C planes of H×W pixels in, OH×OW out; output (oh, ow) pools the window of
// taps (kh, kw) < (KH, KW) at pixel (oh·SH − PT + kh·DH, ow·SW − PL + kw·DW); taps outside
// the image are padding: skipped by max pooling; average pooling divides the sum of the
// in-image taps by their count (COUNT_PAD false) or by the count of taps inside the padded
// image [−PT, H + PB) × [−PL, W + PR) (COUNT_PAD true; PyTorch's count_include_pad).
//
// Bindings (group 0), per entry point:
//   max_fwd  0: x  read [N, H, W]    1: y read_write [N, OH, OW]
//            2: idx read_write (u32) [N, OH, OW], the in-plane index ih·W + iw of each
//               window's maximum (first on ties; 0xffffffff for a window of padding only)
//            3: params
//   max_bwd  0: dy read [N, OH, OW]  1: idx read (u32)   2: dx read_write [N, H, W]
//            3: params       dx[pixel] = Σ dy over the windows whose maximum it is
//   avg_fwd  0: x  read              1: y  read_write    2: params
//   avg_bwd  0: dy read              1: dx read_write    2: params
//            dx[pixel] = Σ dy[window] / count(window) over the windows that contain it
// Uniform params: PoolParams below (n = elements written, then the geometry).
// Overrides: COUNT_PAD (bool) for the average entries; wg (u32), the workgroup size: 256
//   on GPUs, the SIMD width on CPU adapters.
// Dispatch: any grid of workgroups (folded into (x, y) beyond 65535: linear workgroup
//   index wid.x + wid.y·nwg.x); workgroup g writes the contiguous chunk of the n elements
//   that q_chunk() gives it. The backward entries gather (each input pixel sums its own
//   windows): deterministic, no atomics.

struct PoolParams {
	n: u32,
	h: u32,
	w: u32,
	oh: u32,
	ow: u32,
	kh: u32,
	kw: u32,
	sh: u32,
	sw: u32,
	pt: u32,
	pl: u32,
	pb: u32,
	pr: u32,
	dh: u32,
	dw: u32,
}

override COUNT_PAD: bool = false;
override wg: u32 = 256u;

const NO_INDEX: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> q_in: array<f32>;
@group(0) @binding(1) var<storage, read_write> q_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> q_idx: array<u32>;
@group(0) @binding(3) var<uniform> q_p: PoolParams;

// max_bwd
@group(0) @binding(1) var<storage, read> qb_idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> qb_dx: array<f32>;

// avg_fwd / avg_bwd
@group(0) @binding(2) var<uniform> qa_p: PoolParams;

fn q_chunk(wid: vec3<u32>, nwg: vec3<u32>, n: u32) -> vec2<u32> {
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	return vec2<u32>(start, min(start + size, n));
}

// avg_count is the divisor of output (oh, ow).
fn avg_count(oh: u32, ow: u32, g: PoolParams) -> f32 {
	var ch = 0;
	for (var kh = 0u; kh < g.kh; kh++) {
		let ih = i32(oh * g.sh + kh * g.dh) - i32(g.pt);
		if (COUNT_PAD) {
			ch += select(0, 1, ih < i32(g.h + g.pb));
		} else {
			ch += select(0, 1, ih >= 0 && ih < i32(g.h));
		}
	}
	var cw = 0;
	for (var kw = 0u; kw < g.kw; kw++) {
		let iw = i32(ow * g.sw + kw * g.dw) - i32(g.pl);
		if (COUNT_PAD) {
			cw += select(0, 1, iw < i32(g.w + g.pr));
		} else {
			cw += select(0, 1, iw >= 0 && iw < i32(g.w));
		}
	}
	return f32(max(ch * cw, 1));
}

@compute @workgroup_size(wg)
fn max_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let g = q_p;
	let c = q_chunk(wid, nwg, g.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		let ow = i % g.ow;
		let oh = (i / g.ow) % g.oh;
		let plane = i / (g.ow * g.oh);
		var m = 0.0;
		var at = NO_INDEX;
		for (var kh = 0u; kh < g.kh; kh++) {
			let ih = i32(oh * g.sh + kh * g.dh) - i32(g.pt);
			if (ih < 0 || ih >= i32(g.h)) {
				continue;
			}
			for (var kw = 0u; kw < g.kw; kw++) {
				let iw = i32(ow * g.sw + kw * g.dw) - i32(g.pl);
				if (iw < 0 || iw >= i32(g.w)) {
					continue;
				}
				let k = u32(ih) * g.w + u32(iw);
				let v = q_in[plane * g.h * g.w + k];
				if (at == NO_INDEX || v > m) {
					m = v;
					at = k;
				}
			}
		}
		q_out[i] = m;
		q_idx[i] = at;
	}
}

@compute @workgroup_size(wg)
fn max_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let g = q_p;
	let c = q_chunk(wid, nwg, g.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		let k = i % (g.h * g.w);
		let iw = k % g.w;
		let ih = k / g.w;
		let plane = i / (g.h * g.w);
		var s = 0.0;
		for (var kh = 0u; kh < g.kh; kh++) {
			let th = i32(ih + g.pt) - i32(kh * g.dh);
			if (th < 0 || u32(th) % g.sh != 0u || u32(th) / g.sh >= g.oh) {
				continue;
			}
			for (var kw = 0u; kw < g.kw; kw++) {
				let tw = i32(iw + g.pl) - i32(kw * g.dw);
				if (tw < 0 || u32(tw) % g.sw != 0u || u32(tw) / g.sw >= g.ow) {
					continue;
				}
				let o = (plane * g.oh + u32(th) / g.sh) * g.ow + u32(tw) / g.sw;
				if (qb_idx[o] == k) {
					s += q_in[o];
				}
			}
		}
		qb_dx[i] = s;
	}
}

@compute @workgroup_size(wg)
fn avg_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let g = qa_p;
	let c = q_chunk(wid, nwg, g.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		let ow = i % g.ow;
		let oh = (i / g.ow) % g.oh;
		let plane = i / (g.ow * g.oh);
		var s = 0.0;
		for (var kh = 0u; kh < g.kh; kh++) {
			let ih = i32(oh * g.sh + kh * g.dh) - i32(g.pt);
			if (ih < 0 || ih >= i32(g.h)) {
				continue;
			}
			for (var kw = 0u; kw < g.kw; kw++) {
				let iw = i32(ow * g.sw + kw * g.dw) - i32(g.pl);
				if (iw < 0 || iw >= i32(g.w)) {
					continue;
				}
				s += q_in[(plane * g.h + u32(ih)) * g.w + u32(iw)];
			}
		}
		q_out[i] = s / avg_count(oh, ow, g);
	}
}

@compute @workgroup_size(wg)
fn avg_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let g = qa_p;
	let c = q_chunk(wid, nwg, g.n);
	for (var i = c.x + lid; i < c.y; i += wg) {
		let iw = i % g.w;
		let ih = (i / g.w) % g.h;
		let plane = i / (g.h * g.w);
		var s = 0.0;
		for (var kh = 0u; kh < g.kh; kh++) {
			let th = i32(ih + g.pt) - i32(kh * g.dh);
			if (th < 0 || u32(th) % g.sh != 0u || u32(th) / g.sh >= g.oh) {
				continue;
			}
			let oh = u32(th) / g.sh;
			for (var kw = 0u; kw < g.kw; kw++) {
				let tw = i32(iw + g.pl) - i32(kw * g.dw);
				if (tw < 0 || u32(tw) % g.sw != 0u || u32(tw) / g.sw >= g.ow) {
					continue;
				}
				let ow = u32(tw) / g.sw;
				s += q_in[(plane * g.oh + oh) * g.ow + ow] / avg_count(oh, ow, g);
			}
		}
		q_out[i] = s;
	}
}
