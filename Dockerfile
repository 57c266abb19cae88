# syntax=docker/dockerfile:1
# paybridge's container image: a static binary on distroless, as a non-root user, with no shell.
#
#   docker build --build-arg VERSION="$(git describe --tags --always)" -t paybridge .
#   docker run -p 8080:8080 -e PAYBRIDGE_MASTER_KEY=... \
#     -v "$PWD/paybridge.yaml:/etc/paybridge/paybridge.yaml:ro" -v paybridge-data:/var/lib/paybridge paybridge
#
# The configuration must listen on 0.0.0.0:8080 and keep its dataDir at /var/lib/paybridge
# (deploy/kubernetes/configmap.yaml is one). cmd/paybridge/deploy_test.go runs this file's
# `go build` line as it is written here, then starts the binary it made.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Set by buildx for the platform built; empty means the builder's own.
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/paybridge ./cmd/paybridge
# The data directory, created here because the final stage has no shell to create it.
RUN mkdir -p /out/data

# static: CA certificates, tzdata and /etc/passwd with nonroot (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/paybridge /paybridge
COPY --from=build --chown=65532:65532 /out/data /var/lib/paybridge
USER 65532:65532
EXPOSE 8080
VOLUME ["/var/lib/paybridge"]
ENTRYPOINT ["/paybridge"]
CMD ["serve","--config","/etc/paybridge/paybridge.yaml"]
