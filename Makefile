# ocrflow — the two commands: `make run` (OCR the samples on embedded
# defaults) and `make test` (every test, race detector on). Each installs
# what it needs.

GO       ?= go
SAMPLES  := testdata/report.pdf testdata/scanned.pdf testdata/page.png testdata/page.jpg
APT_PKGS := tesseract-ocr
LO_APT   := libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
TEST_APT := tesseract-ocr poppler-utils $(LO_APT)

export OMP_THREAD_LIMIT := 1

FUZZ_TARGETS := shared/render:FuzzSniff shared/office:FuzzDOCX shared/office:FuzzPPTX \
	shared/textlayer:FuzzAnalyze shared/engine:FuzzParseGrounding shared/engine:FuzzFrontMatter \
	shared/failure:FuzzMessage
FUZZTIME ?= 5s

.PHONY: run test fuzz lint bench build testdata deps-run deps-test libreoffice help

help:
	@echo "make run    OCR the sample documents into ./out (installs tesseract-ocr if missing)"
	@echo "make test   run all tests with -race (installs what they need, LibreOffice included)"
	@echo "make libreoffice  install LibreOffice for OFFICE_MODE=auto|render (DOC/XLS/PPT/ODF)"
	@echo "make lint   gofmt and go vet"
	@echo "make bench  benchmarks (see docs/performance.md)"
	@echo "make build  build ./bin/ocrflow"

## run: the main job on embedded defaults (NATS and simple-content in-process)
run: deps-run
	$(GO) run ./cmd/ocrflow run --content simple-content --out out $(SAMPLES)

## test: all tests, race detector on
test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -tags nomupdf -count=1 -run Pdftoppm ./shared/render/
	@if $(GO) list -deps -tags nomupdf ./cmd/ocrflow | grep -q go-fitz; then echo "nomupdf build still links go-fitz (AGPL)"; exit 1; fi
	$(MAKE) fuzz

## fuzz: run every fuzz target briefly (FUZZTIME each; seeds also run in go test)
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		log=$$(mktemp); \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1x ./$$pkg >$$log 2>&1 || \
			{ cat $$log; ls -l ./$$pkg/testdata/fuzz/$$fn 2>/dev/null | tail -3; rm -f $$log; exit 1; }; \
		rm -f $$log; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: deps-test
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

build:
	CGO_ENABLED=1 $(GO) build -o bin/ocrflow ./cmd/ocrflow

## testdata: regenerate the sample documents (deterministic)
testdata:
	$(GO) run ./testdata/gen

deps-run:
	@scripts/ensure-apt.sh $(APT_PKGS)

deps-test:
	@scripts/ensure-apt.sh $(TEST_APT)

## libreoffice: what OFFICE_MODE=auto|render uses to read DOC/XLS/PPT/ODF
libreoffice:
	@scripts/ensure-apt.sh $(LO_APT)
