// patches.wgsl — im2col and col2im over NCHW images with separate strides, top/left
// padding and dilations per axis: the data movement of ONNX Conv and ConvTranspose (the
// arithmetic is the matmul of matmul.wgsl on the columns; see kernels/patches.go).
// conv.wgsl does the same for the engine's own NHWC layers with one stride and padding
// and no dilation.
//
// Terms: the image is [B, C, H, W]; a position (ph, pw) is one of PH×PW kernel placements;
// with kernel offset (kh, kw) it reads pixel
//   (ih, iw) = (ph·SH − PT + kh·DH, pw·SW − PL + kw·DW)      (outside the image: zero).
// The columns are cols [B·PH·PW, C·KH·KW]: row (b·PH + ph)·PW + pw, column (c·KH + kh)·KW + kw.
//
// Bindings (group 0), per entry point:
//   im2col_nchw  0: img  read:       [B, C, H, W]
//                1: cols read_write: [B·PH·PW, C·KH·KW], zeros where the kernel reads padding
//                2: params, n = B·PH·PW·C·KH·KW
//   col2im_nchw  0: cols read:       [B·PH·PW, C·KH·KW]
//                1: bias read:       [C] (bound but not read unless HAS_BIAS)
//                2: img  read_write: [B, C, H, W], overwritten with
//                   img[b, c, ih, iw] = Σ cols[(b, ph, pw), (c, kh, kw)] (+ bias[c]) over the
//                   (position, offset) pairs that read (ih, iw); no pair: bias[c] or 0
//                3: params, n = B·C·H·W
// Uniform params: PatchParams below (n, then the geometry).
// Overrides: HAS_BIAS (bool) for col2im_nchw; wg (u32), the workgroup size: 256 on GPUs,
//   the SIMD width on CPU adapters.
// Dispatch: any grid of workgroups (folded into (x, y) beyond 65535: linear workgroup
//   index wid.x + wid.y·nwg.x); workgroup g writes the contiguous chunk of the n elements
//   that p_chunk() gives it. col2im gathers each pixel's terms in a fixed order:
//   deterministic, no atomics.

struct PatchParams {
	n: u32,
	b: u32,
	c: u32,
	h: u32,
	w: u32,
	ph: u32,
	pw: u32,
	kh: u32,
	kw: u32,
	sh: u32,
	sw: u32,
	pt: u32,
	pl: u32,
	dh: u32,
	dw: u32,
}

override HAS_BIAS: bool = false;
override wg: u32 = 256u;

@group(0) @binding(0) var<storage, read> p_in: array<f32>;
@group(0) @binding(1) var<storage, read_write> p_cols: array<f32>;
@group(0) @binding(2) var<uniform> p_p: PatchParams;

@group(0) @binding(1) var<storage, read> p_bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> p_img: array<f32>;
@group(0) @binding(3) var<uniform> p_q: PatchParams;

fn p_chunk(wid: vec3<u32>, nwg: vec3<u32>, n: u32) -> vec2<u32> {
	let threads = nwg.x * nwg.y * wg;
	let size = (n + threads - 1u) / threads * wg;
	let start = (wid.x + wid.y * nwg.x) * size;
	return vec2<u32>(start, min(start + size, n));
}

@compute @workgroup_size(wg)
fn im2col_nchw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let g = p_p;
	let c = p_chunk(wid, nwg, g.n);
	let ncols = g.c * g.kh * g.kw;
	for (var i = c.x + lid; i < c.y; i += wg) {
		let row = i / ncols;
		let col = i % ncols;
		let pw = row % g.pw;
		let ph = (row / g.pw) % g.ph;
		let b = row / (g.pw * g.ph);
		let kw = col % g.kw;
		let kh = (col / g.kw) % g.kh;
		let ch = col / (g.kw * g.kh);
		let ih = i32(ph * g.sh + kh * g.dh) - i32(g.pt);
		let iw = i32(pw * g.sw + kw * g.dw) - i32(g.pl);
		var v = 0.0;
		if (ih >= 0 && ih < i32(g.h) && iw >= 0 && iw < i32(g.w)) {
			v = p_in[((b * g.c + ch) * g.h + u32(ih)) * g.w + u32(iw)];
		}
		p_cols[i] = v;
	}
}

@compute @workgroup_size(wg)
fn col2im_nchw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let g = p_q;
	let c = p_chunk(wid, nwg, g.n);
	let ncols = g.c * g.kh * g.kw;
	for (var i = c.x + lid; i < c.y; i += wg) {
		let iw = i % g.w;
		let ih = (i / g.w) % g.h;
		let ch = (i / (g.w * g.h)) % g.c;
		let b = i / (g.w * g.h * g.c);
		var s = 0.0;
		for (var kh = 0u; kh < g.kh; kh++) {
			let th = i32(ih + g.pt) - i32(kh * g.dh);
			if (th < 0 || u32(th) % g.sh != 0u || u32(th) / g.sh >= g.ph) {
				continue;
			}
			let ph = u32(th) / g.sh;
			for (var kw = 0u; kw < g.kw; kw++) {
				let tw = i32(iw + g.pl) - i32(kw * g.dw);
				if (tw < 0 || u32(tw) % g.sw != 0u || u32(tw) / g.sw >= g.pw) {
					continue;
				}
				let pw = u32(tw) / g.sw;
				let row = (b * g.ph + ph) * g.pw + pw;
				s += p_in[row * ncols + (ch * g.kh + kh) * g.kw + kw];
			}
		}
		if (HAS_BIAS) {
			s += p_bias[ch];
		}
		p_img[i] = s;
	}
}
