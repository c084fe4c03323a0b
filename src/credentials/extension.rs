//! A Drone registry-extension service (`source.registry_extension`).
//!
//! NOT BUILT YET: while `source.rs` rejects source.registry_extension as "not supported yet", this module is
//! never configured ([`Extension::from_source`] returns `None`).

use super::Found;
use crate::resource::Source;

/// The configured source.
#[derive(Debug)]
pub struct Extension {}

impl Extension {
    /// Reads the options; `None` when they are not given.
    pub fn from_source(source: &Source) -> anyhow::Result<Option<Extension>> {
        let _ = source;
        Ok(None)
    }

    /// The credentials this source has for registry `host`, if any.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        let _ = host;
        Ok(None)
    }
}
