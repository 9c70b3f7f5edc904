# llmlab: build, test, benchmark. The fast numeric path is OpenBLAS through
# cgo (build tag openblas; scripts/deps.sh installs Debian's libopenblas-dev)
# plus our AVX2 kernels (GOEXPERIMENT=simd, Go 1.26); every target that builds
# the CLI uses it. `make test` tests both the fast and the pure-Go path.
GO        ?= go
FASTENV   := GOEXPERIMENT=simd CGO_ENABLED=1
FASTTAGS  := -tags openblas
BIN       := bin/llmlab
FUZZTIME  ?= 10s

.PHONY: deps build test test-fast test-pure fuzz bench demo lint clean

deps:
	./scripts/deps.sh

build: deps
	$(FASTENV) $(GO) build $(FASTTAGS) -o $(BIN) ./cmd/llmlab

# The whole suite: the pure-Go build, the SIMD build, short fuzz runs, lint.
test: lint test-pure test-fast fuzz

test-pure:
	$(GO) test -count=1 ./...

# The fast path: only packages whose numerics change with the backend.
test-fast: deps
	$(FASTENV) $(GO) test $(FASTTAGS) -count=1 ./ml/... ./stages/...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./dsl
	$(GO) test -run '^$$' -fuzz '^FuzzPlan$$' -fuzztime $(FUZZTIME) ./planner

bench: deps
	$(FASTENV) $(GO) test $(FASTTAGS) -run '^$$' -bench . -benchtime 3x ./planner ./store ./ledger ./ml/...

# The main example: word and character statistics of tinyshakespeare.
demo: build
	$(BIN) plan examples/wordstats/pipeline.hcl
	$(BIN) apply examples/wordstats/pipeline.hcl
	$(BIN) output examples/wordstats/pipeline.hcl

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin examples/*/.llmlab
