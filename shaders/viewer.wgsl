// viewer.wgsl — draws posterior samples straight from a storage buffer, in one of two modes.
//
// Bindings (group 0):
//   0: images  array<f32>, read. Mode 0 (images): [n, h, w] row-major, values in [0, 1]
//              (clamped). Mode 1 (density): n points, point i at (images[i·w], images[i·w+1])
//              (w is the row stride, e.g. the sampler's dimension d).
//   1: p       uniform Grid { n, h, w, cols, rows, width, height, linear, mode: u32,
//              x0, x1, y0, y1, radius: f32 }
//              width × height is the framebuffer in pixels. Images: the window is split into
//              cols × rows equal cells, image k in cell (k % cols, k / cols); linear = 1
//              selects bilinear instead of nearest scaling. Density: the window shows
//              [x0, x1] × [y0, y1] (y up); each pixel is the kernel density of the points
//              with a Gaussian of `radius` pixels, scaled so one isolated point peaks at 1.
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
}

@group(0) @binding(0) var<storage, read> images: array<f32>;
@group(0) @binding(1) var<uniform> p: Grid;

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
	// The triangle (-1,-1), (3,-1), (-1,3) covers the whole clip square.
	let x = f32(i32(i & 1u) * 4 - 1);
	let y = f32(i32(i >> 1u) * 4 - 1);
	return vec4<f32>(x, y, 0.0, 1.0);
}

fn pixel(k: u32, x: i32, y: i32) -> f32 {
	let xc = u32(clamp(x, 0, i32(p.w) - 1));
	let yc = u32(clamp(y, 0, i32(p.h) - 1));
	return clamp(images[(k * p.h + yc) * p.w + xc], 0.0, 1.0);
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

@fragment
fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
	if (p.mode == 1u) {
		return density(pos.xy);
	}
	let cell_w = f32(p.width) / f32(p.cols);
	let cell_h = f32(p.height) / f32(p.rows);
	let col = u32(pos.x / cell_w);
	let row = u32(pos.y / cell_h);
	let k = row * p.cols + col;
	if (col >= p.cols || row >= p.rows || k >= p.n) {
		return vec4<f32>(0.1, 0.1, 0.12, 1.0);
	}
	// Position inside the cell in image pixels (pixel centres at +0.5).
	let u = (pos.x - f32(col) * cell_w) / cell_w * f32(p.w);
	let v = (pos.y - f32(row) * cell_h) / cell_h * f32(p.h);
	var g: f32;
	if (p.linear == 1u) {
		let fx = u - 0.5;
		let fy = v - 0.5;
		let x0 = i32(floor(fx));
		let y0 = i32(floor(fy));
		let ax = fx - floor(fx);
		let ay = fy - floor(fy);
		let top = mix(pixel(k, x0, y0), pixel(k, x0 + 1, y0), ax);
		let bot = mix(pixel(k, x0, y0 + 1), pixel(k, x0 + 1, y0 + 1), ax);
		g = mix(top, bot, ay);
	} else {
		g = pixel(k, i32(floor(u)), i32(floor(v)));
	}
	return vec4<f32>(g, g, g, 1.0);
}
