// conv.wgsl — im2col and col2im, the data movement of 2-D convolutions (the arithmetic is
// the matmul of matmul.wgsl on the columns; see kernels/conv.go).
//
// Terms: an "image" is an NHWC batch [B, H, W, C] (stored as [B, H·W·C]); a "position" is
// one of PH×PW kernel placements per image; the kernel is KH×KW with stride S and padding P,
// so position (oh, ow) with kernel offset (kh, kw) reads image pixel
//   (ih, iw) = (oh·S − P + kh, ow·S − P + kw)     (outside the image: zero padding).
// The columns are cols [B·PH·PW, KH·KW·C]: row (b·PH + oh)·PW + ow, column (kh·KW + kw)·C + c.
// For a convolution the image is its input and the positions its output pixels; for a
// transposed convolution the image is its output and the positions its input pixels.
//
// Bindings (group 0), per entry point:
//   im2col  0: img  array<f32>, read:    [B, H·W·C]
//           1: cols array<f32>, written: [B·PH·PW, KH·KW·C] (zeros where the kernel
//              reads padding)
//           2: params uniform ConvParams, n = B·PH·PW·KH·KW·C
//   col2im  0: cols array<f32>, read:    [B·PH·PW, KH·KW·C]
//           1: bias array<f32>, read:    [C] (bound but not read unless HAS_BIAS)
//           2: img  array<f32>, written: [B, H·W·C], overwritten with
//              img[b, ih, iw, c] = act( Σ cols[(b, oh, ow), (kh, kw, c)] + bias[c] )
//              over every (position, kernel offset) pair that reads pixel (ih, iw);
//              a pixel no pair reads gets act(bias[c]) (or act(0))
//           3: params uniform ConvParams, n = B·H·W·C
// Entry points of different arity share binding slots (WGSL allows two declarations at
// one slot when no entry point uses both).
// Uniform params: ConvParams { n: u32 }, the number of elements written.
// Overrides: the geometry H, W, C, PH, PW, KH, KW, S, P (u32), so that every division
//   is by a constant (a multiply and shift instead of a scalarised integer division:
//   im2col 2.4× faster on lavapipe; walking segments, below, another 1.6×); one pipeline
//   per layer geometry, any batch. col2im also takes
//   HAS_BIAS (bool) and ACT (u32, a kernels.Activation). wg (u32) is the workgroup size:
//   256 on GPUs, the SIMD width on CPU adapters.
// Dispatch: any grid of workgroups (folded into (x, y) beyond 65535: linear workgroup
//   index wid.x + wid.y·nwg.x); workgroup g writes the contiguous chunk of the n elements
//   that conv_chunk() gives it, one element per invocation per step. On GPUs
//   Grid1D(n, 256) (one element per invocation); on CPU adapters a few workgroups per core.
//   col2im gathers (each invocation sums its own pixel's terms in a fixed order):
//   deterministic, no atomics.

//!include activations.wgsl

struct ConvParams {
	n: u32,
}

override H: u32 = 1u;
override W: u32 = 1u;
override C: u32 = 1u;
override PH: u32 = 1u;
override PW: u32 = 1u;
override KH: u32 = 1u;
override KW: u32 = 1u;
override S: u32 = 1u;
override P: u32 = 0u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;
override wg: u32 = 256u;

// im2col
@group(0) @binding(0) var<storage, read> im_img: array<f32>;
@group(0) @binding(1) var<storage, read_write> im_cols: array<f32>;
@group(0) @binding(2) var<uniform> im_p: ConvParams;

// col2im
@group(0) @binding(0) var<storage, read> co_cols: array<f32>;
@group(0) @binding(1) var<storage, read> co_bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> co_img: array<f32>;
@group(0) @binding(3) var<uniform> co_p: ConvParams;

// conv_chunk returns the elements [start, end) of this workgroup: with G workgroups in
// the grid, workgroup g owns [g·size, (g+1)·size) clipped to n, size = ceil(n / (G·wg))·wg.
fn conv_chunk(wid: vec3<u32>, nwg: vec3<u32>, n: u32) -> vec2<u32> {
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	return vec2<u32>(min(start, n), min(start + size, n));
}

// The columns are segments of L = KW·C elements, one per (position row, kernel row kh):
// segment s = row·KH + kh reads the image contiguously from pixel (ih, ow·S − P), i.e.
// element j of the segment is img[base + j], valid for j in [lo, hi) (the kernel
// columns inside the image; none when kernel row kh falls in the padding).
struct Seg {
	base: u32, // wraps below 0 (left padding); only base + j with j ≥ lo is read
	lo: u32,
	hi: u32,
}

fn im2col_seg(s: u32) -> Seg {
	let row = s / KH;
	let kh = s - row * KH;
	let b = row / (PH * PW);
	let pos = row - b * (PH * PW);
	let oh = pos / PW;
	let ow = pos - oh * PW;
	let ihp = oh * S + kh; // padded-frame coordinates (ih + P, iw + P)
	let iwp = ow * S;      // ... of kernel column 0
	var seg: Seg;
	// Kernel columns kw with P ≤ iwp + kw < W + P lie inside the image.
	seg.lo = select(0u, P - iwp, iwp < P) * C;
	seg.hi = min(KW, select(0u, W + P - iwp, iwp < W + P)) * C;
	if (ihp < P || ihp - P >= H) {
		seg.hi = 0u;
	}
	seg.base = ((b * H + ihp - P) * W + iwp) * C - P * C;
	return seg;
}

@compute @workgroup_size(wg)
fn im2col(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let ch = conv_chunk(wid, nwg, im_p.n);
	let L = KW * C;
	var e = ch.x + lid;
	if (e >= ch.y) {
		return;
	}
	// Walk the chunk with segment coordinates (s, j), recomputing the segment only when
	// j leaves it: the divisions run once per segment, not once per element.
	var s = e / L;
	var j = e - s * L;
	var seg = im2col_seg(s);
	loop {
		var v = 0.0;
		if (j >= seg.lo && j < seg.hi) {
			v = im_img[seg.base + j];
		}
		im_cols[e] = v;
		e += wg;
		if (e >= ch.y) {
			break;
		}
		j += wg;
		if (j >= L) {
			s += j / L;
			j = j % L;
			seg = im2col_seg(s);
		}
	}
}

@compute @workgroup_size(wg)
fn col2im(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let ch = conv_chunk(wid, nwg, co_p.n);
	for (var e = ch.x + lid; e < ch.y; e += wg) {
		let pix = e / C;
		let c = e - pix * C;
		let b = pix / (H * W);
		let rem = pix - b * (H * W);
		let ih = rem / W;
		let iw = rem - ih * W;
		let ihp = ih + P; // padded-frame coordinates: ihp = oh·S + kh
		let iwp = iw + P;
		var s = 0.0;
		// Only kernel rows kh ≡ ihp (mod S) with kh ≤ ihp land on a position row
		// oh = (ihp − kh)/S, which must also be < PH. Same for columns.
		for (var kh = ihp % S; kh < KH && kh <= ihp; kh += S) {
			let oh = (ihp - kh) / S;
			if (oh >= PH) {
				continue;
			}
			for (var kw = iwp % S; kw < KW && kw <= iwp; kw += S) {
				let ow = (iwp - kw) / S;
				if (ow >= PW) {
					continue;
				}
				let row = (b * PH + oh) * PW + ow;
				s += co_cols[row * (KH * KW * C) + (kh * KW + kw) * C + c];
			}
		}
		if (HAS_BIAS) {
			s += co_bias[c];
		}
		co_img[e] = act_fwd(s, ACT);
	}
}
