//! image-resource: a Concourse resource type for container images that speaks the
//! [OCI distribution API](https://github.com/opencontainers/distribution-spec/blob/main/spec.md)
//! directly, with no Docker daemon.
//!
//! # Layout
//! - [`resource`]: the wire contract (request/response JSON), raw and validated.
//! - [`settings`]: the validated `source`: reference, TLS options, keychain, mirror order.
//! - [`mod@reference`]: image reference parsing and Docker's normalisation; pure, no I/O.
//! - [`secret`]: a string that never prints.
//! - [`digest`]: content digests: the validated [`digest::Digest`] (parsed once) and one
//!   streaming hasher for every algorithm we verify.
//! - [`pattern`]: user-written regular expressions, with errors naming option and position.
//! - [`time`]: calendar arithmetic for HTTP dates and RFC 3339 timestamps.
//! - [`registry`]: our own thin distribution client: per-registry transport (TLS, client
//!   certificates, insecure rules), auth (challenge, Basic, Bearer tokens) and the calls.
//! - [`credentials`]: which credentials each registry gets, from every source, in precedence.
//! - [`image`]: the image model ([`image::model`]), manifests, layers, the rootfs applier and
//!   `in`'s layer pipeline into it, archives and `out`'s image sources.
//! - [`fetch`]: `in`'s manifest walk and parallel blob downloads.
//! - [`push`]: `out`'s one pusher (blobs, mounts, manifests, tags) and where each blob's bytes
//!   are ([`push::BlobSource`]).
//! - [`repush`]: `out`'s re-push short-cut (same config digest under the tag) and the layers
//!   the repository already has, found by diff_id.
//! - [`upload_ahead`]: uploads each layer `out` compresses while the next one is made.
//! - [`sigstore`]: cosign signatures: keys, payloads, signing on `out`, verifying on `check`
//!   and `in`, copying them with an image.
//! - [`tags`]: the tags an `out` pushes.
//! - [`builder`]: `out`'s Dockerfile builds through buildah.
//! - [`log`]: where a command's messages go (stderr, or a buffer in tests).
//! - [`progress`]: progress lines on the log.
//! - [`commands`]: `check`, `in` (`get`) and `out` (`put`), each a `run` of request bytes,
//!   arguments and a [`log::Log`]; `commands::main` wires stdin, stdout and stderr.
#![warn(missing_docs)]

pub mod builder;
pub mod commands;
pub mod credentials;
pub mod digest;
pub mod fetch;
pub mod image;
pub mod log;
pub mod pattern;
pub mod progress;
pub mod push;
pub mod reference;
pub mod registry;
pub mod repush;
pub mod resource;
pub mod secret;
pub mod settings;
pub mod sigstore;
pub mod tags;
pub mod time;
pub mod upload_ahead;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod proptests_tar;
