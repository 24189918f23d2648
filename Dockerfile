# argent's container image: a static binary on a distroless base, run as a
# non-root user. Build from the repository's top directory:
#   docker build -t argent .
#   docker build --build-arg VERSION=$(git describe --tags --always) -t argent .
# deploy/compose.yaml runs a small tree of it; docs/operations.md has more.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/argent ./cmd/argent \
 && mkdir -p /out/data

# distroless/static has no shell or package manager, CA certificates and a
# passwd entry for "nonroot" (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/argent /usr/local/bin/argent
COPY --from=build --chown=65532:65532 /out/data /var/lib/argent
USER 65532:65532
VOLUME /var/lib/argent
EXPOSE 7400
ENTRYPOINT ["/usr/local/bin/argent"]
CMD ["--help"]
