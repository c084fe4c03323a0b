//! The integration-test harness: real registries (`docker-registry`) on 127.0.0.1,
//! a token server, a Drone registry-extension peer, a test CA, image fixtures built in
//! code, skopeo as the oracle, and a runner for our built `check`/`in`/`out`.
//!
//! Each test starts its own registries on free ports with their own temp dirs, so tests
//! run in parallel. Nothing here skips: a missing tool is a panic that names the package.
#![allow(dead_code, unused_imports)]

pub mod base_image;
pub mod bin;
pub mod extension;
pub mod faults;
pub mod front;
pub mod http;
pub mod image;
pub mod moto;
pub mod oracle;
pub mod registry;
pub mod sigstore;
pub mod sshd;
pub mod tls;
pub mod token;
pub mod tree;

pub use bin::{run, run_raw, run_with_env, Output};
pub use image::{
    multi_arch_index, push, push_with_args, random_image, skopeo, skopeo_inspect_raw,
    skopeo_raw_digest, try_skopeo_inspect_raw, Attrs, Compression, Image, ImageBuilder,
    LayerBuilder,
};
pub use registry::{free_port, Registry, RegistryConfig};
pub use tls::Ca;
pub use token::{TokenConfig, TokenServer};
