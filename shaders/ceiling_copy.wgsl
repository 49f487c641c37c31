// ceiling_copy.wgsl — a shader copy dst = src in vec4s: the memory-bandwidth ceiling that
// compute kernels can reach, for `osds bench` (beside the buffer-to-buffer copy, whose
// host-clocked time on a fast GPU is mostly submission overhead).
//
// Bindings (group 0):
//   0: src  array<vec4<f32>>, n elements, read
//   1: dst  array<vec4<f32>>, n elements, written
//   2: p    uniform Params { n: u32 }
// Work: 32·n bytes moved (16 read and 16 written per element).
// Dispatch: ceil(n / 256) workgroups of 256 along x, folded into y beyond 65535 (Grid1D).

struct Params {
	n: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
	let i = (wid.x + wid.y * nwg.x) * 256u + lid;
	if (i < p.n) {
		dst[i] = src[i];
	}
}
