//! `check`: resolves the source's tag to the digest of its manifest (the index digest for a
//! multi-arch tag) and emits versions after the given one.
//!
//! Single-tag mode: `HEAD /v2/<name>/manifests/<tag>` (GET and hash when the registry sends no
//! digest). With a given version that still exists and differs from the current one, the answer
//! is `[given, current]`; otherwise `[current]`. A missing tag is `[]`, not an error.

use crate::registry::Descriptor;
use crate::resource::{parse_request, CheckRequest, Command, Version};
use crate::settings::{first_success, Settings};
use anyhow::Context as _;

/// Runs `check` on a request; returns the JSON array of versions.
pub async fn run(input: &[u8]) -> anyhow::Result<serde_json::Value> {
    let request: CheckRequest = parse_request(input)?;
    request.source.reject_unsupported(Command::Check)?;
    let settings = Settings::from_source(&request.source)?;
    let versions = check(&settings, request.version.as_ref()).await?;
    Ok(serde_json::to_value(versions)?)
}

/// The versions to emit, oldest first.
pub async fn check(settings: &Settings, given: Option<&Version>) -> anyhow::Result<Vec<Version>> {
    let reference = &settings.reference;
    let tag = reference
        .tag()
        .map(str::to_string)
        .or_else(|| reference.digest().is_none().then(|| "latest".to_string()));
    let wanted = reference.reference_string();
    let endpoints = settings.pull_endpoints().await?;
    let (_, (current, given_exists)) = first_success(&endpoints, async |endpoint| {
        let client = &endpoint.client;
        let current: Option<Descriptor> = client
            .head_manifest(&endpoint.repository, &wanted)
            .await
            .with_context(|| format!("resolving {reference} on {}", endpoint.label))?;
        let Some(current) = current else {
            return Ok((None, false));
        };
        let given_exists = match given {
            Some(version) if version.digest != current.digest => client
                .head_manifest(&endpoint.repository, &version.digest)
                .await
                .with_context(|| {
                    format!(
                        "checking whether version {} of {reference} still exists on {}",
                        version.digest, endpoint.label
                    )
                })?
                .is_some(),
            _ => false,
        };
        Ok((Some(current), given_exists))
    })
    .await?;
    let Some(current) = current else {
        eprintln!(
            "{wanted} of {} does not exist (yet): no versions",
            reference.name()
        );
        return Ok(Vec::new());
    };
    let current = Version {
        digest: current.digest,
        tag: tag.clone(),
    };
    let mut versions = Vec::with_capacity(2);
    if let (Some(given), true) = (given, given_exists) {
        versions.push(Version {
            digest: given.digest.clone(),
            tag: given.tag.clone().or(tag),
        });
    }
    versions.push(current);
    Ok(versions)
}
