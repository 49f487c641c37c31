// viewer.wgsl — draws a grid of grayscale images straight from a storage buffer.
//
// Bindings (group 0):
//   0: images  array<f32>, [n, h, w] row-major, values in [0, 1] (clamped), read
//   1: p       uniform Grid { n, h, w, cols, rows, width, height, linear: u32 }
//              width × height is the framebuffer in pixels; the window is split into
//              cols × rows equal cells, image k in cell (k % cols, k / cols); linear = 1
//              selects bilinear instead of nearest scaling.
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

@fragment
fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
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
