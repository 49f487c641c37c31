// langevin_grad.wgsl — gradient of langevin.wgsl's scale:
//   dscale[k] += Σ_i du[i] · clamp(g[i], −c, c)       (NaN gradients count as 0)
// (the network's drift receives du unchanged).
//
// Bindings (group 0):
//   0: du      array<f32>, [B, d], read
//   1: g       array<f32>, [B, d], read
//   2: dscale  array<f32>, [T], read-write
//   3: p       uniform { n = B·d, k: u32, clip c: f32 }
// Dispatch: exactly 1 workgroup of 256; each invocation sums a fixed stride, then a fixed
// tree combines the partial sums, so the result is deterministic.

struct Params {
	n: u32,
	k: u32,
	clip: f32,
}

@group(0) @binding(0) var<storage, read> du: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dscale: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
	var s = 0.0;
	for (var i = lid; i < p.n; i += 256u) {
		let gi = finite_clamp(g[i], p.clip);
		s += du[i] * gi;
	}
	part[lid] = s;
	for (var h = 128u; h > 0u; h >>= 1u) {
		workgroupBarrier();
		if (lid < h) {
			part[lid] += part[lid + h];
		}
	}
	if (lid == 0u) {
		dscale[p.k] += part[0];
	}
}

// finite_clamp clamps x to ±c and maps NaN to 0. The NaN test looks at the bits: compilers
// may fold x != x to false, and clamp(NaN) is implementation-defined.
fn finite_clamp(x: f32, c: f32) -> f32 {
	if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) {
		return 0.0;
	}
	return clamp(x, -c, c);
}
