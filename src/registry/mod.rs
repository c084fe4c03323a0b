//! Our own thin client for the [OCI distribution API](https://github.com/opencontainers/distribution-spec/blob/main/spec.md).
//!
//! Why not `oci-client` (formerly `oci-distribution`): it has no per-registry client
//! certificates, per-registry CAs or CIDR-matched insecure registries, and its cross-repository
//! mount asks for the wrong token scope. Each registry gets its own [`transport::Transport`]
//! (TLS roots, identity, insecure rules), its own [`auth`] state, and a [`Client`] on top.

pub mod auth;
pub mod blob;
pub mod challenge;
mod classify;
pub mod client;
pub mod error;
pub mod referrers;
pub mod retry;
pub mod tags;
pub mod tls;
pub mod transport;
pub mod upload;

pub use client::{Client, Descriptor};
pub use error::Error;

#[cfg(test)]
mod referrers_tests;
#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod verify_referrers_tests;
