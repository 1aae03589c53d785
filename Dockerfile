# syntax=docker/dockerfile:1
# The image of the reference agent service (`slo-check agent`), deployed by stack/.
#
#   docker build -t slo-check:dev .
#   kind load docker-image slo-check:dev
#
# Build: the official Rust image (Debian bookworm). Runtime: distroless `cc` for
# bookworm (glibc, libgcc, CA certificates; no shell, no package manager) as its
# `nonroot` user (65532), which stack/base/deployment.yaml also names. The binary is
# dynamically linked against glibc: a fully static musl build would need the musl
# target and musl-tools in the builder, and gains nothing on a distroless glibc base.
#
# Not built in this project's CI (no Docker engine there): tests/stack.rs checks only
# its shape (two stages, non-root USER, entrypoint and default command).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds; the binary is
# copied out of the cached target directory inside the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin slo-check \
    && install -D -m 0755 target/release/slo-check /out/slo-check

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/slo-check /usr/local/bin/slo-check
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/slo-check"]
# The container's default: serve on all interfaces (stack/ passes the same args).
CMD ["agent", "--listen", "0.0.0.0:8080", "--allow-non-loopback"]
