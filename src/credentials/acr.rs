//! Azure ACR (`source.azure_*`): an AAD token exchanged at the registry's `/oauth2/exchange`.
//!
//! NOT BUILT YET: while `source.rs` rejects the azure_* options as "not supported yet", this module is
//! never configured ([`Acr::from_source`] returns `None`).

use super::Found;
use crate::resource::Source;

/// The configured source.
#[derive(Debug)]
pub struct Acr {}

impl Acr {
    /// Reads the options; `None` when they are not given.
    pub fn from_source(source: &Source, origin_host: &str) -> anyhow::Result<Option<Acr>> {
        let _ = (source, origin_host);
        Ok(None)
    }

    /// The credentials this source has for registry `host`, if any.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        let _ = host;
        Ok(None)
    }
}
