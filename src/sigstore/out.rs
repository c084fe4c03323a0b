//! `out`'s part: after the image is pushed, copy the signatures and OCI referrers of a
//! `pull_repository` source, then sign with `params.sign`.

use super::copy::{copy_signatures, Copying};
use super::referrers::copy_referrers;
use super::sign::Signer;
use super::signature_tag;
use crate::reference::Reference;
use crate::registry::referrers::fallback_tag;
use crate::registry::Client;
use crate::resource::PutParams;
use crate::settings::Settings;
use anyhow::Context as _;
use std::path::Path;
use std::sync::Arc;

/// What `out` does with signatures, decided (and the key loaded) before the push.
#[derive(Debug)]
pub struct Signing {
    signer: Option<Signer>,
    pulled_from: Option<String>,
}

impl Signing {
    /// From `params`: the key of `params.sign` loaded and decrypted (paths relative to
    /// `dir`), so a wrong password fails before anything is pushed; `pulled` when the image
    /// comes from `params.pull_repository`, whose signatures are then copied.
    pub fn new(params: &PutParams, dir: &Path, pulled: bool) -> anyhow::Result<Signing> {
        let signer = params
            .sign
            .as_ref()
            .map(|s| Signer::load(s, dir))
            .transpose()?;
        let pulled_from = params.pull_repository.clone().filter(|_| pulled);
        Ok(Signing {
            signer,
            pulled_from,
        })
    }

    /// After `digest` was pushed to `repository` on `target`: copies the pulled image's
    /// signatures and referrers, then signs; returns lines for stderr.
    pub async fn after_push(
        &self,
        settings: &Settings,
        target: &Arc<Client>,
        repository: &str,
        digest: &str,
        scratch: &Path,
    ) -> anyhow::Result<Vec<String>> {
        after_push(
            settings,
            target,
            repository,
            digest,
            self.pulled_from.as_deref(),
            self.signer.as_ref(),
            scratch,
        )
        .await
    }
}

/// Copies the signatures and referrers of `digest` from `pulled_from`
/// (`params.pull_repository`, when it was the source) and signs `digest` with `signer`;
/// returns lines for stderr.
async fn after_push(
    settings: &Settings,
    target: &Arc<Client>,
    repository: &str,
    digest: &str,
    pulled_from: Option<&str>,
    signer: Option<&Signer>,
    scratch: &Path,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let name = settings.reference.name();
    let tag = signature_tag(digest);
    if let Some(from) = pulled_from {
        let reference =
            Reference::parse(from).with_context(|| format!("params.pull_repository {from:?}"))?;
        let client = if settings.api_host_of(&reference) == target.host() {
            Arc::clone(target)
        } else {
            Arc::new(settings.client_for(&reference).await?)
        };
        let copying = Copying {
            source: &client,
            from: reference.repository(),
            target,
            repository,
            digest,
            scratch,
        };
        let copied = copy_signatures(&copying)
            .await
            .with_context(|| format!("copying the signatures of {}@{digest}", reference.name()))?;
        if copied > 0 {
            lines.push(format!(
                "copied {copied} signature(s) of {}@{digest} to {name}:{tag}",
                reference.name()
            ));
        }
        let referrers = copy_referrers(&copying)
            .await
            .with_context(|| format!("copying the referrers of {}@{digest}", reference.name()))?;
        if referrers.copied > 0 {
            let tagged = match referrers.tagged {
                0 => String::new(),
                n => format!(" ({n} added to {name}:{})", fallback_tag(digest)),
            };
            lines.push(format!(
                "copied {} referrer(s) of {}@{digest} to {name}{tagged}",
                referrers.copied,
                reference.name()
            ));
        }
        lines.extend(referrers.skipped);
    }
    if let Some(signer) = signer {
        signer
            .sign_pushed(target, repository, &name, digest, scratch)
            .await?;
        lines.push(format!("signed {name}@{digest}: {name}:{tag}"));
    }
    Ok(lines)
}
