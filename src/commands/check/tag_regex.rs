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
    versions.sort_by_key(|(_, created)| created.as_deref().and_then(timestamp));
}

/// RFC 3339 to (seconds since the epoch, nanoseconds), enough to order `created` fields.
fn timestamp(text: &str) -> Option<(i64, u32)> {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num =
        |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse::<i64>().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let mut scaled = frac[..digits.min(9)].to_string();
        while scaled.len() < 9 {
            scaled.push('0');
        }
        nanos = scaled.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
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
                .and_then(|image| image.config.created().clone());
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
    fn timestamps_order_like_go_times() {
        let t = |s: &str| timestamp(s);
        assert_eq!(t("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(t("2023-11-14T22:13:20Z"), Some((1_700_000_000, 0)));
        assert_eq!(t("2023-11-14T23:13:20+01:00"), Some((1_700_000_000, 0)));
        assert_eq!(
            t("2023-11-14T22:13:20.123456789123Z"),
            Some((1_700_000_000, 123_456_789))
        );
        assert_eq!(
            t("2023-11-14T22:13:20.5Z"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(t("2000-02-29T00:00:00-05:30"), Some((951_802_200, 0)));
        assert_eq!(t("yesterday"), None);
        assert_eq!(t("2023-11-14T22:13:20"), None);
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
