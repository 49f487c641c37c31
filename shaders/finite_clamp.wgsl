// finite_clamp.wgsl — the clamp of ∇log R that the Langevin drift applies, shared by the
// kernels that form or differentiate that drift (langevin.wgsl, langevin_grad.wgsl,
// rollout.wgsl).
//
// Not a kernel: the library appends this file to any shader containing the line
// `//!include finite_clamp.wgsl`. No bindings, overrides or dispatch of its own.

// finite_clamp clamps x to ±c and maps NaN to 0 (a gradient outside the target's support
// contributes nothing, as torch.nan_to_num does in the reference implementation). The NaN
// test looks at the bits: compilers may fold x != x to false, and clamp(NaN) is
// implementation-defined.
fn finite_clamp(x: f32, c: f32) -> f32 {
	if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) {
		return 0.0;
	}
	return clamp(x, -c, c);
}
