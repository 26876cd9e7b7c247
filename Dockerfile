# AURAX image: multi-stage, non-root, HEALTHCHECK by `aurax healthcheck` (no
# curl in the image). Base images are build args, so it builds from a
# registry or from local images:
#
#   docker build -t aurax .
#       Go toolchain image → distroless glibc runtime. cgo on: NVML reads the
#       GPU where the NVIDIA runtime mounts libnvidia-ml (`--gpus all`).
#   docker build --build-arg RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot \
#                --build-arg CGO_ENABLED=0 -t aurax:cpu .
#       Fully static, smallest; no GPU metrics.
#   CGO_ENABLED=0 go build -o bin/aurax-static ./cmd/aurax
#   docker build --target prebuilt --build-arg RUNTIME_IMAGE=scratch -t aurax .
#       No registry at all (how the tests build it): a binary built on the
#       host, FROM scratch. The stages after `prebuilt` are not built.
ARG BUILD_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/base-debian12:nonroot

# base: everything the running image needs except the binary.
FROM ${RUNTIME_IMAGE} AS base
# /data holds the embedded RAG store; owned by the runtime user so a fresh
# named volume mounted there is writable.
COPY --chown=65532:65532 deploy/docker/data/ /data/
WORKDIR /data
ENV AURAX_SERVER_LISTEN=:8000 \
    AURAX_RAG_PATH=/data/rag.db \
    AURAX_SERVER_LOG_FORMAT=json
EXPOSE 8000
USER 65532:65532
# The seed's healthcheck, without curl: exit 0 iff /health/ready is 200.
HEALTHCHECK --interval=30s --timeout=10s --retries=3 --start-period=40s \
    CMD ["/usr/local/bin/aurax", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/aurax"]
CMD ["serve"]

# prebuilt: the image from a binary built outside Docker.
FROM base AS prebuilt
ARG PREBUILT=bin/aurax-static
COPY ${PREBUILT} /usr/local/bin/aurax

# build: compile from source.
FROM ${BUILD_IMAGE} AS build
ARG CGO_ENABLED=1
ARG VERSION=""
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=${CGO_ENABLED} go build -trimpath \
      -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/aurax ./cmd/aurax

# The default target: the binary built above on the runtime base.
FROM base
COPY --from=build /out/aurax /usr/local/bin/aurax
