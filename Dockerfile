# syntax=docker/dockerfile:1
#
# popgate container image: a static binary on an empty base.
#
# `go tool task image` writes the same image without Docker (cmd/mkimage,
# into bin/popgate-image.tar); cmd/popgate/image_test.go keeps the two equal.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t popgate .
#   docker run -d --name popgate \
#     -p 25:25 -p 110:110 -p 465:465 -p 587:587 -p 995:995 \
#     -v popgate-data:/data -v "$PWD/popgate.toml:/etc/popgate/popgate.toml:ro" popgate
#
# The process runs as 65532:65532, never as root. It binds ports below
# 1024 without any capability because Docker (since 20.10) and Podman set
# net.ipv4.ip_unprivileged_port_start=0 inside a container's own network
# namespace. With --network host, or on Kubernetes, see docs/operations.md.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
# go.mod replaces go-smtp with a patched copy (see its PATCH.md).
COPY smtp/third_party/go-smtp ./smtp/third_party/go-smtp
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static and reproducible: no cgo (the access.db code is pure Go), no
# local paths, the version stamped into main.version.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/popgate ./cmd/popgate
# The volumes' mount points, owned by the runtime user so that a fresh
# named volume starts writable; a passwd entry so that ls and ps show a name.
RUN mkdir -p /out/data /out/etc/popgate \
    && echo 'popgate:x:65532:65532:popgate:/data:/nonexistent' > /out/passwd \
    && echo 'popgate:x:65532:' > /out/group

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/etc/popgate /etc/popgate
COPY contrib/docker/popgate.toml /etc/popgate/popgate.toml
COPY --from=build /out/popgate /popgate
USER 65532:65532
VOLUME ["/data", "/etc/popgate"]
# SMTP (MX), POP3, submissions (implicit TLS), submission, POP3S.
EXPOSE 25 110 465 587 995
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/popgate", "health", "--config", "/etc/popgate/popgate.toml"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/popgate"]
CMD ["serve", "--config", "/etc/popgate/popgate.toml"]
