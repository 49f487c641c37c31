// viewer.wgsl — draws posterior samples straight from a storage buffer, in one of two modes,
// above an optional status line.
//
// Bindings (group 0):
//   0: images  array<f32>, read. Mode 0 (images): [n, h, w, c] row-major (channel fastest),
//              values in [0, 1] (clamped); c = 1 is gray, c = 3 is RGB. Mode 1 (density):
//              n points, point i at (images[i·w], images[i·w+1]) (w is the row stride,
//              e.g. the sampler's dimension d).
//   1: p       uniform Grid { n, h, w, cols, rows, width, height, linear, mode: u32,
//              x0, x1, y0, y1, radius: f32, c, text_len, scale, strip: u32 }
//              width × height is the plot area in pixels: the framebuffer less the status
//              strip, `strip` pixels high, along its bottom. Images: the plot area is split
//              into cols × rows equal cells, image k in cell (k % cols, k / cols); linear = 1
//              selects bilinear instead of nearest scaling. Density: the plot area shows
//              [x0, x1] × [y0, y1] (y up); each pixel is the kernel density of the points
//              with a Gaussian of `radius` pixels, scaled so one isolated point peaks at 1.
//   2: font    array<u32>, read: 5×7 glyphs, two words per glyph; row r (top to bottom) is
//              byte r % 4 of word 2g + r / 4, its bit 4 the leftmost pixel.
//   3: text    array<u32>, read: the status line's glyph indices, text_len of them.
// The status line: glyphs in 6×8 cells scaled by `scale`, starting 2·scale pixels from the
// strip's left edge and 2·scale pixels below its top; characters past text_len are not drawn
// (the host cuts the text to the characters that fit).
// Draw: 3 vertices (one triangle covering the screen), 1 instance.

struct Grid {
	n: u32,
	h: u32,
	w: u32,
	cols: u32,
	rows: u32,
	width: u32,
	height: u32,
	linear: u32,
	mode: u32,
	x0: f32,
	x1: f32,
	y0: f32,
	y1: f32,
	radius: f32,
	c: u32,
	text_len: u32,
	scale: u32,
	strip: u32,
}

@group(0) @binding(0) var<storage, read> images: array<f32>;
@group(0) @binding(1) var<uniform> p: Grid;
@group(0) @binding(2) var<storage, read> font: array<u32>;
@group(0) @binding(3) var<storage, read> text: array<u32>;

const STRIP_BG = vec4<f32>(0.16, 0.16, 0.2, 1.0);
const STRIP_FG = vec4<f32>(1.0, 0.9, 0.5, 1.0);
const EMPTY_CELL = vec4<f32>(0.1, 0.1, 0.12, 1.0);

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
	// The triangle (-1,-1), (3,-1), (-1,3) covers the whole clip square.
	let x = f32(i32(i & 1u) * 4 - 1);
	let y = f32(i32(i >> 1u) * 4 - 1);
	return vec4<f32>(x, y, 0.0, 1.0);
}

fn pixel(k: u32, x: i32, y: i32) -> vec3<f32> {
	let xc = u32(clamp(x, 0, i32(p.w) - 1));
	let yc = u32(clamp(y, 0, i32(p.h) - 1));
	let i = ((k * p.h + yc) * p.w + xc) * p.c;
	if (p.c == 3u) {
		return clamp(vec3<f32>(images[i], images[i + 1u], images[i + 2u]), vec3<f32>(0.0), vec3<f32>(1.0));
	}
	return vec3<f32>(clamp(images[i], 0.0, 1.0));
}

// density is the scatter view of low-dimensional samples (25GMM and friends).
fn density(pos: vec2<f32>) -> vec4<f32> {
	let sx = f32(p.width) / (p.x1 - p.x0);
	let sy = f32(p.height) / (p.y1 - p.y0);
	var acc = 0.0;
	let inv = 1.0 / (2.0 * p.radius * p.radius);
	for (var i = 0u; i < p.n; i++) {
		let px = (images[i * p.w] - p.x0) * sx;
		let py = (p.y1 - images[i * p.w + 1u]) * sy;
		let dx = px - pos.x;
		let dy = py - pos.y;
		acc += exp(-(dx * dx + dy * dy) * inv);
	}
	let g = clamp(acc, 0.0, 1.0);
	return vec4<f32>(g, g, g, 1.0);
}

// status draws the status strip; (x, y) is the pixel relative to the strip's top-left.
fn status(x: u32, y: u32) -> vec4<f32> {
	let s = p.scale;
	let margin = 2u * s;
	if (x < margin || y < margin) {
		return STRIP_BG;
	}
	let gy = (y - margin) / s;
	let i = (x - margin) / (6u * s);
	let gx = ((x - margin) % (6u * s)) / s;
	if (gy >= 7u || gx >= 5u || i >= p.text_len) {
		return STRIP_BG;
	}
	let g = text[i];
	let bits = (font[2u * g + gy / 4u] >> (8u * (gy % 4u))) & 0x1fu;
	if (((bits >> (4u - gx)) & 1u) == 1u) {
		return STRIP_FG;
	}
	return STRIP_BG;
}

@fragment
fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
	if (pos.y >= f32(p.height)) {
		return status(u32(pos.x), u32(pos.y) - p.height);
	}
	if (p.mode == 1u) {
		return density(pos.xy);
	}
	let cell_w = f32(p.width) / f32(p.cols);
	let cell_h = f32(p.height) / f32(p.rows);
	let col = u32(pos.x / cell_w);
	let row = u32(pos.y / cell_h);
	let k = row * p.cols + col;
	if (col >= p.cols || row >= p.rows || k >= p.n) {
		return EMPTY_CELL;
	}
	// Position inside the cell in image pixels (pixel centres at +0.5).
	let u = (pos.x - f32(col) * cell_w) / cell_w * f32(p.w);
	let v = (pos.y - f32(row) * cell_h) / cell_h * f32(p.h);
	var rgb: vec3<f32>;
	if (p.linear == 1u) {
		let fx = u - 0.5;
		let fy = v - 0.5;
		let x0 = i32(floor(fx));
		let y0 = i32(floor(fy));
		let ax = fx - floor(fx);
		let ay = fy - floor(fy);
		let top = mix(pixel(k, x0, y0), pixel(k, x0 + 1, y0), ax);
		let bot = mix(pixel(k, x0, y0 + 1), pixel(k, x0 + 1, y0 + 1), ax);
		rgb = mix(top, bot, ay);
	} else {
		rgb = pixel(k, i32(floor(u)), i32(floor(v)));
	}
	return vec4<f32>(rgb, 1.0);
}
