# osds — the two newcomer commands are `make demo` and `make test`; both set up the machine
# first (idempotent: a second run changes nothing and takes a second).
GO ?= go
GOFLAGS_TEST ?= -count=1
# Two cores on CI: the GPU work of lavapipe runs on the same cores as the test binaries, so
# packages are tested one at a time to keep timings and memory predictable.
TEST_PARALLEL ?= 1

.PHONY: setup build test demo bench clean

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build -o bin/osds ./cmd/osds

test: setup
	$(GO) vet ./...
	$(GO) test $(GOFLAGS_TEST) -p $(TEST_PARALLEL) -timeout 20m ./...

# The built-in demo: check the adapter, train a sampler on the 25-Gaussian mixture for a
# few minutes (a short run of the published benchmark configuration) and evaluate it.
demo: build
	./bin/osds info
	./bin/osds train --target gmm25 --iters 400 --explore 0.2 --out out/demo
	./bin/osds eval --checkpoint out/demo/checkpoint.safetensors

bench: build
	./bin/osds bench --json out/bench.jsonl

clean:
	rm -rf bin out
