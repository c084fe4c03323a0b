//! R's `check` without a tag (`checkRepository` in concourse/registry-image-resource's
//! `commands/check.go`): which of a repository's tags become versions, and in what order.
//!
//! Step by step, as R does it:
//! 1. The tags, as listed, with the given version's tag moved first.
//! 2. Each tag is classified ([`Rules::classify`]): the bare tag (`latest`, or the `variant`
//!    itself) is always kept; any other tag must end in `-<variant>` when a variant is set
//!    (and loses that suffix), parse as a version ([`SemVer`]), meet the constraint, and be a
//!    final release unless `pre_releases` is on, in which case the pre-release must start
//!    with `alpha`, `beta`, `rc` or one of `pre_release_prefixes` (and, without custom
//!    prefixes, contain no `-`).
//! 3. The given version's tag is resolved first; if it still has the given digest its version
//!    is the cursor, and versions at or below it are not resolved at all.
//! 4. The rest are resolved (their digests; a tag gone since the listing is skipped).
//! 5. One version per digest: a final release beats a pre-release, then the tag with more `.`
//!    (`1.1.0` over `1.1` over `1`), then the first one seen.
//! 6. Versions ascending; the bare tag last, only if no version shares its digest and there is
//!    no constraint.
//!
//! Where R leaves an order to Go's map iteration and unstable sort (equal versions on
//! different digests, equally specific tags on one digest), we keep the listing order, so the
//! answer is the same on every run.

use super::semver::SemVer;
use crate::resource::Version;
use std::cmp::Ordering;

/// The pre-release prefixes R always accepts when `pre_releases` is on.
pub const DEFAULT_PRE_RELEASE_PREFIXES: &[&str] = &["alpha", "beta", "rc"];

/// Which tags count, from `source`.
#[derive(Default)]
pub struct Rules<'a> {
    /// `variant`: only tags ending in `-<variant>`, and the bare tag is the variant itself.
    pub variant: Option<&'a str>,
    /// `pre_releases`: accept pre-releases with a known prefix.
    pub pre_releases: bool,
    /// `pre_release_prefixes`: accepted in addition to [`DEFAULT_PRE_RELEASE_PREFIXES`].
    pub pre_release_prefixes: &'a [String],
    /// A filter on versions (R's `semver_constraint`); with one, the bare tag is never
    /// emitted.
    pub constraint: Option<&'a dyn Fn(&SemVer) -> bool>,
}

/// What a kept tag is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The bare tag: `latest`, or the variant's name.
    Bare,
    /// A version tag.
    Version(SemVer),
}

/// A tag that is kept, before its digest is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The tag as listed.
    pub tag: String,
    /// Bare or a version.
    pub kind: Kind,
}

impl Candidate {
    fn version(&self) -> Option<&SemVer> {
        match &self.kind {
            Kind::Bare => None,
            Kind::Version(version) => Some(version),
        }
    }
}

impl Rules<'_> {
    /// The tag that stands for "the newest" (`latest`, or the variant).
    pub fn bare_tag(&self) -> &str {
        self.variant.unwrap_or("latest")
    }

    /// Step 2: whether `tag` is kept, and as what.
    pub fn classify(&self, tag: &str) -> Option<Kind> {
        if tag == self.bare_tag() {
            return Some(Kind::Bare);
        }
        let text = match self.variant {
            Some(variant) => tag.strip_suffix(variant)?.strip_suffix('-')?,
            None => tag,
        };
        let version = SemVer::parse(text)?;
        if self.constraint.is_some_and(|allows| !allows(&version)) {
            return None;
        }
        if version.is_pre_release() && !self.accepts_pre_release(&version.pre) {
            return None;
        }
        Some(Kind::Version(version))
    }

    fn accepts_pre_release(&self, pre: &str) -> bool {
        if !self.pre_releases {
            return false;
        }
        // R: without custom prefixes a `-` in the pre-release is "an additional variant".
        if self.pre_release_prefixes.is_empty() && pre.contains('-') {
            return false;
        }
        DEFAULT_PRE_RELEASE_PREFIXES
            .iter()
            .copied()
            .chain(self.pre_release_prefixes.iter().map(String::as_str))
            .any(|prefix| pre.starts_with(prefix))
    }

    /// Steps 1 and 2: the kept tags in the order R walks them.
    pub fn candidates(&self, tags: &[String], given: Option<&Version>) -> Vec<Candidate> {
        let given_tag = given.and_then(|v| v.tag.as_deref());
        let (first, rest): (Vec<&String>, Vec<&String>) =
            tags.iter().partition(|tag| Some(tag.as_str()) == given_tag);
        first
            .into_iter()
            .chain(rest)
            .filter_map(|tag| {
                self.classify(tag).map(|kind| Candidate {
                    tag: tag.clone(),
                    kind,
                })
            })
            .collect()
    }
}

/// Steps 3 to 6, with `resolve` looking up the digests of tags (in order; `None` for a tag
/// that no longer exists). It is called at most twice: for the given version's tag, then for
/// the rest.
pub async fn versions(
    tags: &[String],
    given: Option<&Version>,
    rules: &Rules<'_>,
    resolve: impl AsyncFn(Vec<String>) -> anyhow::Result<Vec<Option<String>>>,
) -> anyhow::Result<Vec<Version>> {
    let candidates = rules.candidates(tags, given);
    let mut resolved: Vec<(&Candidate, String)> = Vec::with_capacity(candidates.len());
    let mut rest = &candidates[..];
    let mut cursor: Option<&SemVer> = None;
    if let (Some(given), Some(first)) = (given, candidates.first()) {
        if given.tag.as_deref() == Some(first.tag.as_str()) {
            rest = &candidates[1..];
            if let Some(digest) = resolve(vec![first.tag.clone()]).await?.pop().flatten() {
                if digest == given.digest {
                    cursor = first.version();
                }
                resolved.push((first, digest));
            }
        }
    }
    let todo: Vec<&Candidate> = rest
        .iter()
        .filter(|candidate| match (cursor, candidate.version()) {
            (Some(cursor), Some(version)) => cursor.precedence(version) == Ordering::Less,
            _ => true,
        })
        .collect();
    let digests = resolve(todo.iter().map(|c| c.tag.clone()).collect()).await?;
    anyhow::ensure!(
        digests.len() == todo.len(),
        "internal: {} digests for {} tags",
        digests.len(),
        todo.len()
    );
    resolved.extend(
        todo.into_iter()
            .zip(digests)
            .filter_map(|(candidate, digest)| digest.map(|digest| (candidate, digest))),
    );
    Ok(select(&resolved, rules))
}

/// Steps 5 and 6 on the resolved tags, in the order they were walked.
pub fn select(resolved: &[(&Candidate, String)], rules: &Rules<'_>) -> Vec<Version> {
    // (digest, chosen tag, its version), in the order digests were first seen.
    let mut chosen: Vec<(&str, &str, &SemVer)> = Vec::new();
    let mut bare: Option<&(&Candidate, String)> = None;
    for entry in resolved {
        let (candidate, digest) = entry;
        let Some(version) = candidate.version() else {
            bare = Some(entry);
            continue;
        };
        match chosen.iter_mut().find(|(d, _, _)| d == digest) {
            None => chosen.push((digest, &candidate.tag, version)),
            Some(existing) => {
                if prefer(version, existing.2) {
                    *existing = (digest, &candidate.tag, version);
                }
            }
        }
    }
    chosen.sort_by(|a, b| a.2.precedence(b.2));
    let mut versions: Vec<Version> = chosen
        .iter()
        .map(|(digest, tag, _)| Version {
            digest: digest.to_string(),
            tag: Some(tag.to_string()),
        })
        .collect();
    if let Some((candidate, digest)) = bare {
        if rules.constraint.is_none() && !chosen.iter().any(|(d, _, _)| d == digest) {
            versions.push(Version {
                digest: digest.clone(),
                tag: Some(candidate.tag.clone()),
            });
        }
    }
    versions
}

/// Step 5: whether `new` replaces `existing` for the same digest.
fn prefer(new: &SemVer, existing: &SemVer) -> bool {
    match (existing.is_pre_release(), new.is_pre_release()) {
        (false, true) => false,
        (true, false) => true,
        _ => new.dots() > existing.dots(),
    }
}

#[cfg(test)]
#[path = "semver_tags_tests.rs"]
mod tests;
