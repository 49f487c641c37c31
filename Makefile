# osds — the two newcomer commands are `make demo` and `make test`; both set up the machine
# first (idempotent: a second run changes nothing and takes a second).
GO ?= go
GOFLAGS_TEST ?= -count=1
# Two cores on CI: the GPU work of lavapipe runs on the same cores as the test binaries, so
# packages are tested one at a time to keep timings and memory predictable.
TEST_PARALLEL ?= 1

.PHONY: setup build test test-slurm demo bench bench-peer clean onnx-fixtures onnx-examples

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build -o bin/osds ./cmd/osds

test: setup
	$(GO) vet ./...
	$(GO) test $(GOFLAGS_TEST) -p $(TEST_PARALLEL) -timeout 20m ./...

# `osds protocol --slurm` on a real Slurm (issue #23): installs Debian's slurm-wlm and munge
# when missing, starts a single-node cluster on localhost (scripts/slurm/local-cluster.sh;
# stopped again at the end), submits a small protocol as a job array, requeues one task while
# it trains and checks that the gathered table equals a one-process run's, byte for byte
# (3–5 minutes on 2 cores). make test never needs Slurm.
test-slurm: setup
	@bash scripts/slurm/local-cluster.sh install
	$(GO) test $(GOFLAGS_TEST) -tags slurm -timeout 40m -run '^TestSlurmProtocolArray$$' -v ./cmd/osds

# The built-in demo: check the adapter, then train a posterior sampler in the noise space
# of the shipped MNIST VAE under the shipped classifier's constraint "the digit is a 3"
# (a few minutes on lavapipe), draw a grid of its samples f(z) and evaluate it (log Ẑ,
# class rate). `make demo SHIPPED=1` skips training: it samples the shipped amortised
# sampler (one row per class) at once.
demo: build
	./bin/osds info
	mkdir -p out/demo
ifeq ($(SHIPPED),1)
	./bin/osds sample samplers/mnist-vae-classes.safetensors --out out/demo/shipped-samples.png
else
	./bin/osds train --prior mnist-vae --constraint class:3 --iters 300 --out out/demo --force
	./bin/osds sample out/demo/checkpoint.safetensors --n 64 --out out/demo/samples.png
	./bin/osds eval --checkpoint out/demo/checkpoint.safetensors
endif

bench: build
	./bin/osds bench --json out/bench.jsonl

# osds train against its eager PyTorch peer, bench/peer/peer.py (issue #17): alternating runs
# at d = 2 (25GMM) and d = 32 (Manywell), PyTorch on 1 thread and on every core; it/s of each
# and the ratio into out/bench-peer/table.md. Installs Debian's python3-torch (and OpenBLAS)
# when missing; make test never needs them. Iterations: OSDS_ITERS, PEER_ITERS, ROUNDS (see
# the script's header).
bench-peer:
	@bash scripts/bench-peer.sh

clean:
	rm -rf bin out

# The PyTorch fixtures of nn/onnx (issue #19): small models exported with torch.onnx.export
# and their float64 references, rewritten into nn/onnx/testdata/ (deterministic: fixed
# seeds). Installs Debian's python3-torch when missing; make test never needs it.
onnx-fixtures:
	@bash scripts/onnx-fixtures.sh

# The example models of examples/onnx (issue #19): a VAE decoder (z → x) and a conv
# classifier (x → log-probabilities) trained on MNIST in PyTorch and exported with
# torch.onnx.export, the kind of models users bring (about 10 minutes on one CPU thread;
# fixed seeds). Needs Debian's python3-torch (`make onnx-fixtures` installs it) and MNIST
# (`make setup`); make test never needs them (the models are committed).
onnx-examples:
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "onnx-examples: needs Debian's python3-torch: apt-get install python3-torch (make onnx-fixtures installs it)" >&2; exit 1; }
	/usr/bin/python3 examples/onnx/make_models.py
