//! `check`: the versions after the given one, oldest first.
//!
//! - With a tag (`tag`, or `repository` carrying `:tag` or `@digest`): the tag's digest from
//!   `HEAD /v2/<name>/manifests/<tag>` (GET and hash when the registry sends no digest; the
//!   index digest for a multi-arch tag). With a given version that still exists and differs
//!   from the current one, the answer is `[given, current]`; otherwise `[current]`. A missing
//!   tag is `[]`, not an error.
//! - Without one: R's semver listing ([`semver_tags`]) over the tags listed once, whose
//!   digests are resolved with at most [`RESOLVE_CONCURRENCY`] HEADs at a time, filtered by
//!   `semver_constraint` ([`constraint`]) when set.
//! - With `git_repo`: the tag is the head commit of `git_branch` ([`git`]).
//!
//! With a Docker Hub mirror, the whole check runs on the mirror first and on the origin when
//! the mirror fails or finds nothing (R's `Check.Execute`).

pub mod constraint;
pub mod git;
pub mod semver;
pub mod semver_tags;
pub mod tag_regex;

use crate::log::Log;
use crate::reference::Reference;
use crate::registry::Descriptor;
use crate::resource::{parse_request, CheckRequest, Command, Source, Version};
use crate::settings::{first_found, Endpoint, Settings};
use anyhow::Context as _;
use constraint::Constraints;
use futures_util::StreamExt as _;
use semver::SemVer;
use semver_tags::Rules;

/// Manifest HEADs in flight at once when resolving listed tags.
pub const RESOLVE_CONCURRENCY: usize = 8;

/// Runs `check` on a request; returns the JSON array of versions. Notes go to `log`.
pub async fn run(input: &[u8], log: &Log) -> anyhow::Result<serde_json::Value> {
    let request: CheckRequest = parse_request(input)?;
    request.source.reject_unsupported(Command::Check)?;
    let settings = Settings::from_source(&request.source, log)?;
    for note in request.source.notes(Command::Check) {
        log.line(note);
    }
    for note in ignored_options(&request.source, pins_a_tag(&settings)) {
        log.line(format_args!("note: {note}"));
    }
    let verify = request.source.verify.as_ref();
    let verifier = crate::sigstore::verify::Verifier::from_options(verify, &settings.reference)?;
    let given = request.version.as_ref();
    let mut versions = check(&settings, &request.source, given, log).await?;
    if let Some(verifier) = verifier {
        let endpoints = settings.pull_endpoints().await?;
        let (signed, notes) = verifier.signed_versions(&endpoints, versions).await?;
        notes.iter().for_each(|note| log.line(note));
        versions = signed;
    }
    Ok(serde_json::to_value(versions)?)
}

/// The versions to emit, oldest first.
pub async fn check(
    settings: &Settings,
    source: &Source,
    given: Option<&Version>,
    log: &Log,
) -> anyhow::Result<Vec<Version>> {
    // A pattern or a constraint that does not parse fails before any request.
    let pattern = match pins_a_tag(settings) {
        true => None,
        false => crate::pattern::compile_optional("source.tag_regex", source.tag_regex.as_deref())?,
    };
    let constraint = match (pins_a_tag(settings), &pattern, &source.git_repo) {
        (false, None, None) => semver_constraint(source)?,
        _ => None,
    };
    let endpoints = settings.pull_endpoints().await?;
    if let Some(options) = git::GitOptions::from_source(source, pins_a_tag(settings))? {
        return git::check(settings, &endpoints, &options, given, log).await;
    }
    if pins_a_tag(settings) {
        let versions = check_tag(&settings.reference, &endpoints, given, log).await?;
        return git::require_found(versions, source, &settings.reference);
    }
    if let Some(pattern) = &pattern {
        return check_regex(settings, source, &endpoints, pattern, log).await;
    }
    let allows = |version: &SemVer| constraint.as_ref().is_none_or(|c| c.check(version));
    let rules = listing_rules(source, constraint.is_some().then_some(&allows));
    check_repository(settings, &endpoints, &rules, given, log).await
}

/// The tag `check` would report for an image just pushed under `pushed` (all one digest),
/// when it would report it at all: the source's tag when it was pushed; with `tag_regex`, the
/// first pushed tag it matches; else the tag R's semver listing picks for that digest. `out`
/// emits it as its version, so that the next check finds the same version and downstream
/// jobs run once.
pub fn reported_tag(settings: &Settings, source: &Source, pushed: &[String]) -> Option<String> {
    if pins_a_tag(settings) {
        let tag = settings.reference.tag()?;
        return pushed.iter().find(|t| *t == tag).cloned();
    }
    if let Some(pattern) = source.tag_regex.as_deref().filter(|p| !p.is_empty()) {
        // Every matching tag is a version of its own: the first one pushed.
        let pattern = crate::pattern::compile("source.tag_regex", pattern).ok()?;
        return pushed.iter().find(|t| pattern.is_match(t)).cloned();
    }
    if source.git_repo.is_some() {
        // The tag is a commit SHA: the first pushed tag that looks like one.
        let is_sha =
            |t: &&String| matches!(t.len(), 40 | 64) && t.bytes().all(|b| b.is_ascii_hexdigit());
        return pushed.iter().find(is_sha).cloned();
    }
    // An invalid constraint makes check fail: it reports nothing.
    let constraint = semver_constraint(source).ok()?;
    let allows = |version: &SemVer| constraint.as_ref().is_none_or(|c| c.check(version));
    let rules = listing_rules(source, constraint.is_some().then_some(&allows));
    let candidates = rules.candidates(pushed, None);
    let resolved: Vec<(&semver_tags::Candidate, String)> =
        candidates.iter().map(|c| (c, String::new())).collect();
    semver_tags::select(&resolved, &rules)
        .into_iter()
        .next()
        .and_then(|version| version.tag)
}

/// The rules of R's listing from `source`, with `allows` as the constraint.
fn listing_rules<'a>(source: &'a Source, allows: Option<&'a dyn Fn(&SemVer) -> bool>) -> Rules<'a> {
    Rules {
        variant: source.variant.as_deref().filter(|v| !v.is_empty()),
        pre_releases: source.pre_releases,
        pre_release_prefixes: &source.pre_release_prefixes,
        constraint: allows,
    }
}

/// `source.semver_constraint`, parsed once; `None` when unset or empty (R: `!= ""`).
fn semver_constraint(source: &Source) -> anyhow::Result<Option<Constraints>> {
    match source.semver_constraint.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => Constraints::parse(text).map(Some).with_context(|| {
            format!(
                "source.semver_constraint {text:?} is not a constraint (Masterminds/semver v3 \
                 syntax, as R reads it)"
            )
        }),
    }
}

/// Whether the source names one tag (or digest); otherwise `check` lists the repository.
fn pins_a_tag(settings: &Settings) -> bool {
    settings.reference.tag().is_some() || settings.reference.digest().is_some()
}

/// Options R's `check` ignores in this mode: one line each for stderr.
fn ignored_options(source: &Source, pinned: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if pinned {
        let listing = [
            ("tag_regex", source.tag_regex.is_some()),
            ("semver_constraint", source.semver_constraint.is_some()),
            ("pre_releases", source.pre_releases),
            (
                "pre_release_prefixes",
                !source.pre_release_prefixes.is_empty(),
            ),
            ("created_at_sort", source.created_at_sort),
        ];
        for (option, _) in listing.iter().filter(|(_, set)| *set) {
            notes.push(format!(
                "`{option}` is ignored by check when a tag is given (as in R): the tag is checked"
            ));
        }
        if source.variant.is_some() {
            notes.push(
                "`variant` does not change check when a tag is given (as in R); it names the \
                 variant tags `out` pushes"
                    .to_string(),
            );
        }
    } else if source.tag_regex.is_some() {
        let semver = [
            ("semver_constraint", source.semver_constraint.is_some()),
            ("variant", source.variant.is_some()),
            ("pre_releases", source.pre_releases),
            (
                "pre_release_prefixes",
                !source.pre_release_prefixes.is_empty(),
            ),
        ];
        for (option, _) in semver.iter().filter(|(_, set)| *set) {
            notes.push(format!(
                "`{option}` is ignored by check with `tag_regex` (as in R): every matching tag \
                 is a version"
            ));
        }
    } else if source.created_at_sort {
        notes.push("`created_at_sort` is ignored without `tag_regex` (as in R)".to_string());
    }
    notes
}

/// One tag: `[given, current]` while the given version exists and differs, else `[current]`.
async fn check_tag(
    reference: &Reference,
    endpoints: &[Endpoint],
    given: Option<&Version>,
    log: &Log,
) -> anyhow::Result<Vec<Version>> {
    let tag = reference
        .tag()
        .map(str::to_string)
        .or_else(|| reference.digest().is_none().then(|| "latest".to_string()));
    let wanted = reference.reference_string();
    let found = |(current, _): &(Option<Descriptor>, bool)| current.is_some();
    let (_, (current, given_exists)) = first_found(
        endpoints,
        async |endpoint| {
            let client = &endpoint.client;
            let current: Option<Descriptor> = client
                .head_manifest(&endpoint.repository, &wanted)
                .await
                .with_context(|| format!("resolving {reference} on {}", endpoint.label))?;
            let Some(current) = current else {
                return Ok((None, false));
            };
            let given_exists = match given {
                Some(version) if current.digest != version.digest => client
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
        },
        found,
    )
    .await?;
    let Some(current) = current else {
        log.line(format_args!(
            "{wanted} of {} does not exist (yet): no versions",
            reference.name()
        ));
        return Ok(Vec::new());
    };
    let current = Version {
        digest: current.digest.to_string(),
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

/// `tag_regex`: every matching tag, as R lists them (see [`tag_regex`]).
async fn check_regex(
    settings: &Settings,
    source: &Source,
    endpoints: &[Endpoint],
    pattern: &regex::Regex,
    log: &Log,
) -> anyhow::Result<Vec<Version>> {
    let name = settings.reference.name();
    let platform = super::platform_spec(source.platform.as_ref());
    let mode = tag_regex::RegexMode {
        pattern,
        created_at_sort: source.created_at_sort,
        platform: &platform,
        name: &name,
    };
    let (_, versions) = first_found(
        endpoints,
        async |endpoint| tag_regex::versions(endpoint, &mode).await,
        |versions: &Vec<Version>| !versions.is_empty(),
    )
    .await?;
    if versions.is_empty() {
        log.line(format_args!(
            "no tag of {name} matches tag_regex {:?}: no versions",
            pattern.as_str()
        ));
    }
    Ok(versions)
}

/// No tag: list the tags once, resolve the candidates, and pick versions as R does.
async fn check_repository(
    settings: &Settings,
    endpoints: &[Endpoint],
    rules: &Rules<'_>,
    given: Option<&Version>,
    log: &Log,
) -> anyhow::Result<Vec<Version>> {
    let name = settings.reference.name();
    let (_, versions) = first_found(
        endpoints,
        async |endpoint| {
            let tags = endpoint
                .client
                .list_tags(&endpoint.repository)
                .await
                .with_context(|| format!("listing the tags of {name} on {}", endpoint.label))?;
            let resolve = async |tags: Vec<String>| resolve_digests(endpoint, &name, tags).await;
            semver_tags::versions(&tags, given, rules, resolve).await
        },
        |versions: &Vec<Version>| !versions.is_empty(),
    )
    .await?;
    if versions.is_empty() {
        log.line(format_args!(
            "{name} has no version tags and no `{}` tag: no versions",
            rules.bare_tag()
        ));
    }
    Ok(versions)
}

/// The digests of `tags` on `endpoint`, in order (`None` for a tag that is gone), with at
/// most [`RESOLVE_CONCURRENCY`] HEADs in flight.
async fn resolve_digests(
    endpoint: &Endpoint,
    name: &str,
    tags: Vec<String>,
) -> anyhow::Result<Vec<Option<String>>> {
    futures_util::stream::iter(tags)
        .map(|tag| async move {
            endpoint
                .client
                .head_manifest(&endpoint.repository, &tag)
                .await
                .map(|descriptor| descriptor.map(|d| d.digest.to_string()))
                .with_context(|| format!("resolving {name}:{tag} on {}", endpoint.label))
        })
        .buffered(RESOLVE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
