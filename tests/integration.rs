//! Integration tests: our built executables against real registries started by the
//! harness in `util/`. One test binary (`autotests = false`).

mod util;

mod build;
mod build_cache;
mod build_pull;
mod check;
mod check_access;
mod check_git;
mod check_regex;
mod check_semver;
mod credentials_acr;
mod credentials_docker_config;
mod credentials_ecr;
mod credentials_extension;
mod digests;
mod drop_in;
mod faults;
mod faults_restart;
mod get;
mod get_hostile;
mod get_integrity;
mod get_outputs;
mod get_platform;
mod get_redirect;
mod get_rootfs;
mod harness;
mod load;
mod oci_layouts;
mod put;
mod put_bad_inputs;
mod put_compression;
mod put_images;
mod put_load_and_pull;
mod put_protocol;
mod put_source_choice;
mod put_sources;
mod put_tags;
mod secrets;
mod sign;
mod sign_interop;
