//! R's `tag_regex` mode of `check` (`checkRepositoryRegex`): every listed tag that the
//! pattern matches (unanchored, as Go's `MatchString`) is one version, in the registry's
//! listing order; with `created_at_sort`, ordered by the image config's `created` instead,
//! oldest first (R sorts with `Before`, ascending, whatever its README says). No version per
//! digest here: two tags on one image are two versions, as in R.
//!
//! Requests: the listing once, one `HEAD` per matching tag (at most
//! [`super::RESOLVE_CONCURRENCY`] at a time), and with `created_at_sort` the manifest and
//! config of each distinct digest (not of each tag).

use super::resolve_digests;
use crate::fetch;
use crate::image::manifest::PlatformSpec;
use crate::resource::Version;
use crate::settings::Endpoint;
use anyhow::Context as _;
use futures_util::StreamExt as _;
use regex::Regex;
use std::collections::HashMap;

/// What the mode needs besides the endpoint.
pub struct RegexMode<'a> {
    /// The compiled `tag_regex`.
    pub pattern: &'a Regex,
    /// `created_at_sort`.
    pub created_at_sort: bool,
    /// The platform whose config gives `created` for a multi-platform tag.
    pub platform: &'a PlatformSpec,
    /// The repository's name, for messages.
    pub name: &'a str,
}

/// The listed tags the pattern matches, in listing order.
pub fn matching(tags: &[String], pattern: &Regex) -> Vec<String> {
    tags.iter()
        .filter(|t| pattern.is_match(t))
        .cloned()
        .collect()
}

/// Orders versions by their `created` time, oldest first; a version without one (or one
/// that does not parse) counts as the oldest, as Go's zero time does. Stable: equal times
/// keep the listing order.
pub fn sort_by_created(versions: &mut [(Version, Option<String>)]) {
    versions.sort_by_key(|(_, created)| created.as_deref().and_then(crate::time::parse_rfc3339));
}

/// The versions on one endpoint: list, match, resolve, and sort when asked.
pub async fn versions(endpoint: &Endpoint, mode: &RegexMode<'_>) -> anyhow::Result<Vec<Version>> {
    let name = mode.name;
    let tags = endpoint
        .client
        .list_tags(&endpoint.repository)
        .await
        .with_context(|| format!("listing the tags of {name} on {}", endpoint.label))?;
    let matched = matching(&tags, mode.pattern);
    let digests = resolve_digests(endpoint, name, matched.clone()).await?;
    let found: Vec<Version> = matched
        .into_iter()
        .zip(digests)
        .filter_map(|(tag, digest)| {
            digest.map(|digest| Version {
                digest,
                tag: Some(tag),
            })
        })
        .collect();
    if !mode.created_at_sort {
        return Ok(found);
    }
    let mut distinct: Vec<&str> = Vec::new();
    for version in &found {
        if !distinct.contains(&version.digest.as_str()) {
            distinct.push(&version.digest);
        }
    }
    let created: HashMap<String, Option<String>> = futures_util::stream::iter(distinct)
        .map(|digest| async move {
            let resolved = fetch::resolve(
                &endpoint.client,
                &endpoint.repository,
                digest,
                mode.platform,
                false,
            )
            .await
            .with_context(|| {
                format!(
                    "reading the creation time of {name}@{digest} on {} (created_at_sort)",
                    endpoint.label
                )
            })?;
            let created = resolved
                .images
                .first()
                .and_then(|image| image.config.parsed.created().clone());
            anyhow::Ok((digest.to_string(), created))
        })
        .buffered(super::RESOLVE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let mut dated: Vec<(Version, Option<String>)> = found
        .into_iter()
        .map(|v| {
            let created = created.get(&v.digest).cloned().flatten();
            (v, created)
        })
        .collect();
    sort_by_created(&mut dated);
    Ok(dated.into_iter().map(|(v, _)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(tag: &str) -> Version {
        Version {
            digest: format!("sha256:{}", "0".repeat(64)),
            tag: Some(tag.to_string()),
        }
    }

    #[test]
    fn matching_is_unanchored_and_keeps_listing_order() -> anyhow::Result<()> {
        let tags: Vec<String> = ["v1.2", "build-7", "1.2", "latest", "v1.10", "xv1.3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let loose = crate::pattern::compile("source.tag_regex", "v1\\.")?;
        assert_eq!(matching(&tags, &loose), ["v1.2", "v1.10", "xv1.3"]);
        let anchored = crate::pattern::compile("source.tag_regex", "^v1\\.[0-9]+$")?;
        assert_eq!(matching(&tags, &anchored), ["v1.2", "v1.10"]);
        Ok(())
    }

    #[test]
    fn created_at_sort_is_oldest_first_stable_and_undated_first() {
        let mut versions = vec![
            (version("c"), Some("2024-03-01T00:00:00Z".to_string())),
            (version("a"), Some("2024-01-01T00:00:00+02:00".to_string())),
            (version("undated"), None),
            (version("b"), Some("2024-01-01T00:00:00Z".to_string())),
            (version("a2"), Some("2023-12-31T22:00:00Z".to_string())),
            (version("bad"), Some("not a time".to_string())),
        ];
        sort_by_created(&mut versions);
        let order: Vec<&str> = versions
            .iter()
            .map(|(v, _)| v.tag.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(order, ["undated", "bad", "a", "a2", "b", "c"]);
    }
}
