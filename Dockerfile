# syntax=docker/dockerfile:1
# One image for every stage and both runtimes:
#   ocrflow function   the Knative function (func-go CloudEvents server, OCR_STAGES)
#   ocrflow serve      the standalone runtime on NATS JetStream
# cgo stays on: go-fitz links MuPDF (AGPL-3.0) statically, and jemalloc
# (the C allocator) too; libjpeg-turbo's TurboJPEG is linked dynamically
# (a static copy would clash with MuPDF's own libjpeg). The result needs
# glibc and libturbojpeg0, so the runtime stage is a slim Debian.
#
#   docker build -t ocrflow .                              # with tesseract (CPU fallback)
#   docker build --build-arg WITH_TESSERACT=false -t ocrflow:gpu-only .
#   docker build --build-arg WITH_LIBREOFFICE=true -t ocrflow:office .   # DOC/XLS/PPT/ODF, OFFICE_MODE=render
# (LibreOffice adds about 300 MB; without it OFFICE_MODE=auto reads
# DOCX/PPTX/XLSX natively and refuses the legacy formats with a message)
# (a gpu-only image must run with OCR_FALLBACK_ENGINE empty: the fallback
# engine is checked at start-up)

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libturbojpeg0-dev libjemalloc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/ocrflow ./cmd/ocrflow

FROM debian:bookworm-slim
ARG WITH_TESSERACT=true
ARG WITH_LIBREOFFICE=false
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libturbojpeg0 \
 && if [ "$WITH_TESSERACT" = "true" ]; then apt-get install -y --no-install-recommends tesseract-ocr; fi \
 && if [ "$WITH_LIBREOFFICE" = "true" ]; then apt-get install -y --no-install-recommends \
      libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui; fi \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin ocrflow
COPY --from=build /out/ocrflow /usr/local/bin/ocrflow
USER 65532:65532
ENV OMP_THREAD_LIMIT=1 \
    LISTEN_ADDRESS=[::]:8080 \
    BLOB_URL=file:///tmp/ocrflow/blobs \
    NATS_STORE_DIR=/tmp/ocrflow/nats
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ocrflow"]
CMD ["function"]
