# ocrflow — the two commands: `make run` (OCR the samples on embedded
# defaults) and `make test` (every test, race detector on). Each installs
# what it needs.

SHELL    := bash
GO       ?= go
SAMPLES  := testdata/report.pdf testdata/scanned.pdf testdata/page.png testdata/page.jpg
# Building links libjpeg-turbo (shared/turbojpeg) and jemalloc (the C
# allocator, shared/render/malloc_linux.go): their -dev packages.
BUILD_APT := libturbojpeg0-dev libjemalloc-dev
APT_PKGS  := tesseract-ocr $(BUILD_APT)
LO_APT    := libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
TEST_APT  := tesseract-ocr poppler-utils postgresql $(BUILD_APT) $(LO_APT)

export OMP_THREAD_LIMIT := 1

FUZZ_TARGETS := shared/render:FuzzSniff shared/office:FuzzDOCX shared/office:FuzzPPTX \
	shared/textlayer:FuzzAnalyze shared/engine:FuzzParseGrounding shared/engine:FuzzFrontMatter \
	shared/failure:FuzzMessage
FUZZTIME ?= 5s
GOLANGCI_VERSION := v2.15.0
GOLANGCI_LINT    := bin/golangci-lint-$(GOLANGCI_VERSION)

.PHONY: run test test-race nomupdf fuzz lint bench build testdata deps-build deps-run deps-test libreoffice help docs-check chaos soak

help:
	@echo "make run    OCR the sample documents into ./out (installs tesseract-ocr if missing)"
	@echo "make test   run all tests with -race (installs what they need, LibreOffice included)"
	@echo "make libreoffice  install LibreOffice for OFFICE_MODE=auto|render (DOC/XLS/PPT/ODF)"
	@echo "make lint   gofmt, go mod tidy, go vet and golangci-lint (installs the pinned version)"
	@echo "make bench  benchmarks (see docs/performance.md)"
	@echo "make chaos  real processes under faults (docs/reliability.md)"
	@echo "make soak   a 20-minute stability run (SOAK_DURATION; docs/reliability.md)"
	@echo "make build  build ./bin/ocrflow"

## run: the main job on embedded defaults (NATS and simple-content in-process)
run: deps-run
	$(GO) run ./cmd/ocrflow run --content simple-content --out out $(SAMPLES)

## test: all tests, race detector on; the nomupdf build; every fuzz target briefly
test: test-race nomupdf fuzz

## test-race: go vet and every test with the race detector (TESTFLAGS adds flags, e.g. coverage)
test-race: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m $(TESTFLAGS) ./...

## nomupdf: the AGPL-free build renders PDFs with pdftoppm and links no go-fitz
nomupdf: deps-test
	$(GO) test -tags nomupdf -count=1 -run Pdftoppm ./shared/render/
	@if $(GO) list -deps -tags nomupdf ./cmd/ocrflow | grep -q go-fitz; then echo "nomupdf build still links go-fitz (AGPL)"; exit 1; fi

## fuzz: run every fuzz target briefly (FUZZTIME each; seeds also run in go test).
## A bare "context deadline exceeded" with no failing input written is Go's
## fuzz coordinator racing its own -fuzztime deadline (go.dev/issue/75804,
## fixed in Go 1.27), not a finding: that target runs once more.
fuzz: deps-build
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		log=$$(mktemp); \
		for try in 1 2; do \
			echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
			if $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1x ./$$pkg >$$log 2>&1; then break; fi; \
			if [ $$try = 1 ] && grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "fuzz $$fn: the coordinator's deadline race (go.dev/issue/75804), once more"; continue; fi; \
			cat $$log; ls -l ./$$pkg/testdata/fuzz/$$fn 2>/dev/null | tail -3; rm -f $$log; exit 1; \
		done; \
		rm -f $$log; \
	done

## lint: gofmt, go mod tidy leaving no diff, go vet and golangci-lint
## (.golangci.yml; the pinned version is installed on first use)
lint: deps-build $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@cp go.mod /tmp/ocrflow-go.mod.$$$$ && cp go.sum /tmp/ocrflow-go.sum.$$$$ && $(GO) mod tidy && \
		if ! cmp -s go.mod /tmp/ocrflow-go.mod.$$$$ || ! cmp -s go.sum /tmp/ocrflow-go.sum.$$$$; then \
			echo "go mod tidy changes go.mod or go.sum:"; diff -u /tmp/ocrflow-go.mod.$$$$ go.mod; \
			mv /tmp/ocrflow-go.mod.$$$$ go.mod; mv /tmp/ocrflow-go.sum.$$$$ go.sum; exit 1; fi; \
		rm -f /tmp/ocrflow-go.mod.$$$$ /tmp/ocrflow-go.sum.$$$$
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/bin/.install $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	mv bin/.install/golangci-lint $@ && rmdir bin/.install

## bench: the Go benchmarks (benchstat format) and the target table of
## docs/performance.md (cmd/ocrflow-bench), both kept in $(BENCH_OUT)
## for comparison across commits: benchstat old/micro.txt new/micro.txt
BENCH_OUT  ?= bench-results
BENCHTIME  ?= 3x
# Every package with a Go benchmark but LibreOffice's (2 s per document,
# not a target: docs/performance.md has its own command).
BENCH_PKGS := $(filter-out shared/libreoffice/,$(sort $(dir $(shell grep -rl --include='*_test.go' '^func Benchmark' shared internal functions cmd))))
bench: deps-test
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 1 $(addprefix ./,$(BENCH_PKGS)) | tee $(BENCH_OUT)/micro.txt
	set -o pipefail; $(GO) run ./cmd/ocrflow-bench -json $(BENCH_OUT)/bench.json | tee $(BENCH_OUT)/table.txt

## chaos: real ocrflow processes under faults (internal/chaos; a few
## minutes); writes its results table into docs/reliability.md
chaos: deps-test
	CHAOS_RESULTS=$(CURDIR)/docs/reliability.md $(GO) test -tags chaos -count=1 -timeout 40m -v -run '^TestChaos$$' ./internal/chaos/

## soak: hours-long stability run (not in CI; SOAK_DURATION, default 20m);
## writes a CSV and a chart next to docs/reliability.md
soak: deps-test
	SOAK_OUT=$(CURDIR)/docs/soak $(GO) test -tags soak -count=1 -timeout 0 -v -run '^TestSoak$$' ./internal/chaos/

build: deps-build
	CGO_ENABLED=1 $(GO) build -o bin/ocrflow ./cmd/ocrflow

## docs-check: run every shell block of README.md, docs/ and examples/
## (or check the annotation that covers it; see docs/README.md)
docs-check: deps-test
	DOCS_CHECK=run $(GO) test -count=1 -v -timeout 15m -run '^TestDocs$$' ./internal/docscheck/

## testdata: regenerate the sample documents (deterministic)
testdata: deps-build
	$(GO) run ./testdata/gen

deps-build:
	@scripts/ensure-apt.sh $(BUILD_APT)

deps-run:
	@scripts/ensure-apt.sh $(APT_PKGS)

deps-test:
	@scripts/ensure-apt.sh $(TEST_APT)

## libreoffice: what OFFICE_MODE=auto|render uses to read DOC/XLS/PPT/ODF
libreoffice:
	@scripts/ensure-apt.sh $(LO_APT)
