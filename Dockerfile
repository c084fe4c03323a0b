# syntax=docker/dockerfile:1
# The resource image: /opt/resource/{check,in,out} on Debian trixie, with
# buildah 1.39 (and netavark, the network backend it starts with) for `out`'s
# `build`, and git/ssh for `source.git_repo`. buildah's configuration is the
# files in assets/, copied to /etc/containers/ (`out` writes each build's own
# from the same files).
#
#   docker build -t image-resource .        (or: buildah build -t image-resource .)
#
# ci/image builds this file with buildah 1.39 on stand-ins for both bases made
# from Debian packages (a debootstrap minbase trixie root as debian:trixie-slim;
# that plus gcc/libc6-dev and the host's Rust toolchain as rust:1-slim-trixie),
# then runs check, in and out (with a build, nested buildah) inside the image
# against a loopback registry.

FROM rust:1-slim-trixie AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/check target/release/in target/release/out /out/

FROM debian:trixie-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      buildah netavark git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY assets/storage.conf assets/containers.conf assets/policy.json assets/registries.conf \
     /etc/containers/
# buildah inside a (privileged) Concourse container: no overlay-on-overlay, no
# nested namespaces. (`out` sets its own; these are for buildah run by hand.)
ENV STORAGE_DRIVER=vfs \
    BUILDAH_ISOLATION=chroot
COPY --from=builder /out/ /opt/resource/
LABEL org.opencontainers.image.title="image-resource" \
      org.opencontainers.image.description="Concourse resource type for container images (OCI distribution API, no Docker daemon)" \
      org.opencontainers.image.licenses="Apache-2.0"
