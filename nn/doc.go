// Package nn holds neural-network building blocks on the GPU (layers with explicit
// forward and backward passes, parameters, gradients and optimizer state) and their
// serialisation as safetensors.
package nn
