// rng.wgsl — fill a buffer with counter-based random numbers (Philox-4x32-10).
//
// Bindings (group 0):
//   0: out  array<f32> (entries rand_uniform, rand_normal) or array<u32> (entry
//           rand_index), n elements, written
//   1: params  uniform RngParams (below)
// Params (uniform, in order): n u32 (elements), seed_lo u32, seed_hi u32 (the key),
//   stream u32, offset u32 (counter words, free for the caller to vary), limit u32 (entry
//   rand_index only: values are drawn from [0, limit)).
// Dispatch: one invocation per block of 4 outputs, 64 per workgroup: Grid1D(ceil(n/4), 64)
//   workgroups, folded into (x, y) when above 65535 (linear id = wid.x + wid.y·nwg.x).
//
// Element i is lane i % 4 of the Philox block with counter (i / 4, offset, stream, 0) and
// key (seed_lo, seed_hi); the last counter word 0 is the domain of these kernels (the SDE
// step uses 1), so no other osds kernel can draw the same bits. Entries:
//   rand_uniform: out[i] = philox_uniform(lane)                ∈ (0, 1)
//   rand_normal:  out[i] = philox_normal4(block)[lane]         ~ N(0, 1)
//   rand_index:   out[i] = (lane · limit) >> 32 (64-bit product) ∈ [0, limit), bias < limit/2^32
//
//!include philox.wgsl

struct RngParams {
	n: u32,
	seed_lo: u32,
	seed_hi: u32,
	stream: u32,
	offset: u32,
	limit: u32,
}

@group(0) @binding(0) var<storage, read_write> out_f: array<f32>;
@group(0) @binding(0) var<storage, read_write> out_u: array<u32>;
@group(0) @binding(1) var<uniform> P: RngParams;

const RNG_WG: u32 = 64u;

// rng_block returns the linear block index of this invocation (see the folded grid above).
fn rng_block(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
	return (wid.x + wid.y * nwg.x) * RNG_WG + lid.x;
}

fn rng_bits(j: u32) -> vec4<u32> {
	return philox4x32_10(vec4<u32>(j, P.offset, P.stream, 0u), vec2<u32>(P.seed_lo, P.seed_hi));
}

@compute @workgroup_size(64)
fn rand_uniform(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let j = rng_block(lid, wid, nwg);
	let i0 = 4u * j;
	if (i0 >= P.n) {
		return;
	}
	let r = rng_bits(j);
	let u = vec4<f32>(philox_uniform(r.x), philox_uniform(r.y), philox_uniform(r.z), philox_uniform(r.w));
	// The last block may be partial; a full one is the common case.
	if (i0 + 4u <= P.n) {
		out_f[i0] = u.x;
		out_f[i0 + 1u] = u.y;
		out_f[i0 + 2u] = u.z;
		out_f[i0 + 3u] = u.w;
		return;
	}
	for (var l = 0u; i0 + l < P.n; l = l + 1u) {
		out_f[i0 + l] = u[l];
	}
}

@compute @workgroup_size(64)
fn rand_normal(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let j = rng_block(lid, wid, nwg);
	let i0 = 4u * j;
	if (i0 >= P.n) {
		return;
	}
	let z = philox_normal4(rng_bits(j));
	if (i0 + 4u <= P.n) {
		out_f[i0] = z.x;
		out_f[i0 + 1u] = z.y;
		out_f[i0 + 2u] = z.z;
		out_f[i0 + 3u] = z.w;
		return;
	}
	for (var l = 0u; i0 + l < P.n; l = l + 1u) {
		out_f[i0 + l] = z[l];
	}
}

@compute @workgroup_size(64)
fn rand_index(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let j = rng_block(lid, wid, nwg);
	let i0 = 4u * j;
	if (i0 >= P.n) {
		return;
	}
	let r = rng_bits(j);
	// Lemire's multiply-shift: the high word of x·limit is uniform on [0, limit) up to a
	// bias below limit/2^32, without a division.
	let v = vec4<u32>(philox_mulhilo(r.x, P.limit).x, philox_mulhilo(r.y, P.limit).x,
		philox_mulhilo(r.z, P.limit).x, philox_mulhilo(r.w, P.limit).x);
	for (var l = 0u; l < 4u && i0 + l < P.n; l = l + 1u) {
		out_u[i0 + l] = v[l];
	}
}
