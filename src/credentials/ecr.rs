//! Amazon ECR (`source.aws_*`): `GetAuthorizationToken`, roles assumed through STS.
//!
//! NOT BUILT YET: while `source.rs` rejects the aws_* options as "not supported yet", this module is
//! never configured ([`Ecr::from_source`] returns `None`).

use super::Found;
use crate::resource::Source;

/// The configured source.
#[derive(Debug)]
pub struct Ecr {}

impl Ecr {
    /// Reads the options; `None` when they are not given.
    pub fn from_source(source: &Source, origin_host: &str) -> anyhow::Result<Option<Ecr>> {
        let _ = (source, origin_host);
        Ok(None)
    }

    /// The credentials this source has for registry `host`, if any.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        let _ = host;
        Ok(None)
    }
}
