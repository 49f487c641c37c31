// Package train trains diffusion samplers with trajectory-balance objectives (DESIGN.md
// §1): targets log R, the sampler's SDE and its Brownian-bridge reference, objectives,
// exploration, replay buffers, local search, log Z estimation, checkpoints and metrics.
//
// This file set starts with the float64 side: the synthetic targets of the diffusion-
// sampler benchmarks (25GMM, Funnel, Manywell) with their exact log Z and ground-truth
// samplers, and the evaluation metrics (ELBO, importance-weighted log Ẑ, W2 by exact
// optimal transport). The GPU trainer builds on them.
package train
