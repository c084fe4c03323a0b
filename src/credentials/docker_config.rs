//! Docker `config.json` given as `source.docker_config`: `auths` and credential helpers.
//!
//! NOT BUILT YET: while `source.rs` rejects source.docker_config as "not supported yet", this module is
//! never configured ([`DockerConfig::from_source`] returns `None`).

use super::Found;
use crate::resource::Source;

/// The configured source.
#[derive(Debug)]
pub struct DockerConfig {}

impl DockerConfig {
    /// Reads the options; `None` when they are not given.
    pub fn from_source(source: &Source) -> anyhow::Result<Option<DockerConfig>> {
        let _ = source;
        Ok(None)
    }

    /// The credentials this source has for registry `host`, if any.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        let _ = host;
        Ok(None)
    }
}
