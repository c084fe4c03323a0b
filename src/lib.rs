//! image-resource: a Concourse resource type for container images that speaks the
//! [OCI distribution API](https://github.com/opencontainers/distribution-spec/blob/main/spec.md)
//! directly, with no Docker daemon.
//!
//! # Layout
//! - [`resource`]: the wire contract (request/response JSON), raw and validated.
//! - [`mod@reference`]: image reference parsing and Docker's normalisation; pure, no I/O.
//! - [`secret`]: a string that never prints.
//! - [`registry`]: our own thin distribution client: per-registry transport (TLS, client
//!   certificates, insecure rules, mirrors), auth (challenge, Basic, Bearer tokens) and the
//!   calls the commands need.
//! - [`credentials`]: which credentials each registry gets, from every source, in precedence.
//! - [`commands`]: `check`, `in` (`get`) and `out` (`put`), each a `run` over stdin/stdout.
#![warn(missing_docs)]

pub mod build;
pub mod commands;
pub mod credentials;
pub mod fetch;
pub mod image;
pub mod pattern;
pub mod progress;
pub mod push;
pub mod reference;
pub mod registry;
pub mod resource;
pub mod secret;
pub mod settings;
pub mod tags;
