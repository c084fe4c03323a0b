//! The image model ([`model`]: digests, descriptors, manifests, images) and local formats: manifests and configs, layer streams (one
//! [`compression`] detector, one set of [`hashing`] readers and writers), the rootfs applier
//! and `in`'s layer pipeline into it ([`unpack`]), and the archive writers (docker-save
//! tarball, OCI layout, rootfs tarball). Nothing here speaks HTTP.

pub mod archive;
pub mod compress;
pub mod compression;
pub mod hashing;
pub(crate) mod json;
pub mod manifest;
pub mod metadata;
pub mod model;
pub mod reuse;
pub mod rootfs;
pub mod sources;
pub mod unpack;
pub mod whiteout;
pub mod zstd_layer;
