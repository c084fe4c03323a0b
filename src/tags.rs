//! The tags an `out` pushes: which ones, in what order, read from which files. Every tag is
//! checked against Docker's tag grammar (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) by [`plan`],
//! before anything is pushed.
//!
//! # Rules
//!
//! The first tag is the primary one (the `tag` of the version `out` emits):
//!
//! 1. D's `tag_file` (or its old name `tag`, also a path): the file's contents, trimmed,
//!    with `tag_prefix` in front. `source.tag` is not pushed (as in D). Giving both
//!    `tag_file` and `tag`, or either with `version`, is an error.
//! 2. Else R's `version`: `source.tag` first when it is set (R pushes both; `check` follows
//!    `source.tag`), then the version, written as R writes it (see below) with
//!    `-<variant>` appended when `source.variant` is set. With `bump_aliases` the aliases
//!    come right after it, once [`TagPlan::with_aliases`] has seen the repository's tags.
//! 3. Else `source.tag`.
//! 4. Else `latest`, but only when no tag is named anywhere: not with `additional_tags`
//!    (which then pushes only its own tags, as R) and not with `source.variant` (R has no
//!    such default and fails when nothing names a tag, and so does this module).
//!
//! Then `latest` when `tag_as_latest` is true, then every whitespace-separated word of the
//! `additional_tags` file (an empty file adds nothing). `tag_prefix` is put in front of the
//! additional tags only when no tag file is given: D prefixes only the tag file's tag, and
//! R (which has no tag file) prefixes only the additional tags. `tag_prefix` with neither a
//! tag file nor `additional_tags` is R's error. Repeated tags are pushed once, where they
//! first appear.
//!
//! Relative paths are relative to the `out` source directory (`argv[1]`); absolute paths
//! are used as written. Paths may lead outside that directory: the pipeline author controls
//! both the paths and the files, so there is nothing to guard.
//!
//! # Versions (R)
//!
//! `version` is read as R reads it (Masterminds/semver 1.5):
//! `[v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]`, and pushed in R's normal form: a
//! leading `v` is dropped and missing parts are `0`, so `v1.2` is pushed as `1.2.0`.
//! Anything else is an error, as in R. (`+BUILD` parses but is no valid tag character, so
//! such a version fails validation, where R failed at push time.)
//!
//! `bump_aliases` needs `version` (R ignored it silently). For a pre-release it adds
//! nothing, as in R. For a final version `M.m.p` it adds, with `-<variant>` appended when
//! a variant is set:
//! - `latest` (or just `<variant>`) when no existing final version is higher,
//! - `M` when no existing `M.x.y` is higher,
//! - `M.m` when no existing `M.m.z` is higher.
//!
//! An existing tag counts as a version only when it is a full `[v]MAJOR.MINOR.PATCH`
//! (after removing `-<variant>`; tags without that suffix are another variant's and are
//! skipped) and not a pre-release. This is stricter than R, which also read `2`, `1.3` or
//! a date tag such as `20240101` as versions (`20240101.0.0`), so a single numeric tag
//! stopped `latest` from ever moving again; partial tags are only aliases of full ones.

use crate::reference::validate_tag;
use crate::resource::PutParams;
use anyhow::{anyhow, bail, Context as _};
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Largest tag file read; tag files hold a line or a short list.
const FILE_LIMIT: u64 = 1 << 20;
/// The tag pushed when nothing else names one.
const LATEST: &str = "latest";

/// What the tags are computed from.
#[derive(Debug, Clone, Copy)]
pub struct TagRequest<'a> {
    /// `out`'s params.
    pub params: &'a PutParams,
    /// `source.tag` as written (`None` when absent: do not fill in a default).
    pub source_tag: Option<&'a str>,
    /// `source.variant` (R).
    pub variant: Option<&'a str>,
    /// The `out` source directory (`argv[1]`) that relative paths are relative to.
    pub base: &'a Path,
}

/// The tags to push, from [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPlan {
    /// The tags known without asking the registry: primary first, deduplicated, valid.
    /// [`TagPlan::with_aliases`] gives the final list.
    pub tags: Vec<String>,
    aliases: Option<Aliases>,
}

/// R's `bump_aliases`, waiting for the repository's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Aliases {
    version: Core,
    variant: Option<String>,
    /// Where in `tags` the aliases go (right after the version's tag).
    at: usize,
}

/// Works out the tags to push and checks every one of them.
///
/// Reads `tag_file` (or `tag`) and `additional_tags`. Fails on conflicting params, a
/// missing or empty tag file, a `version` that is no semantic version, and any invalid tag,
/// naming the param the tag came from. See the [module docs](self) for the rules.
pub fn plan(request: &TagRequest) -> anyhow::Result<TagPlan> {
    let params = request.params;
    let variant = given(request.variant);
    let source_tag = given(request.source_tag);
    let prefix = given(params.tag_prefix.as_deref()).unwrap_or("");
    let version = given(params.version.as_deref());
    let tag_file = match (
        given(params.tag_file.as_deref()),
        given(params.tag.as_deref()),
    ) {
        (Some(file), Some(old)) => bail!(
            "give the tag file as either `tag_file` ({file:?}) or its old name `tag` \
             ({old:?}), not both"
        ),
        (Some(file), None) => Some(("tag_file", file)),
        (None, Some(old)) => Some(("tag", old)),
        (None, None) => None,
    };
    if let (Some((param, path)), Some(version)) = (tag_file, version) {
        bail!(
            "`{param}` ({path:?}) and `version` ({version:?}) both name the tag to push; \
             give one of them"
        );
    }
    let additional = given(params.additional_tags.as_deref());
    if tag_file.is_none() && !prefix.is_empty() && additional.is_none() {
        bail!(
            "tag_prefix can only be used when additional_tags are specified (or, as in \
             docker-image-resource, with tag_file)"
        );
    }
    if params.bump_aliases && version.is_none() {
        bail!("`bump_aliases` needs `version`: the aliases are worked out from it");
    }

    let mut tags = Tags::default();
    let mut aliases = None;
    if let Some((param, path)) = tag_file {
        let file = ParamFile::read(param, path, request.base)?;
        let tag = file.text.trim();
        if tag.is_empty() {
            bail!("{file} is empty: it should hold the tag to push");
        }
        let origin = match prefix {
            "" => file.to_string(),
            _ => format!("tag_prefix {prefix:?} with {file}"),
        };
        tags.add(format!("{prefix}{tag}"), &origin)?;
    } else if let Some(version) = version {
        if let Some(tag) = source_tag {
            tags.add(tag.to_string(), "source.tag")?;
        }
        let parsed = SemVer::parse(version).ok_or_else(|| {
            anyhow!(
                "`version` {version:?} is not a semantic version: expected \
                 MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], optionally after a `v`"
            )
        })?;
        let origin = match variant {
            None => format!("version {version:?}"),
            Some(variant) => format!("version {version:?} with source.variant {variant:?}"),
        };
        tags.add(suffixed(&parsed.to_string(), variant), &origin)?;
        if params.bump_aliases && parsed.pre.is_none() {
            let pending = Aliases {
                version: parsed.core,
                variant: variant.map(str::to_string),
                at: tags.0.len(),
            };
            for alias in pending.names(true, true, true) {
                check(&alias, &format!("bump_aliases (for {origin})"))?;
            }
            aliases = Some(pending);
        }
    } else if let Some(tag) = source_tag {
        tags.add(tag.to_string(), "source.tag")?;
    } else if variant.is_none() && additional.is_none() {
        tags.add(LATEST.to_string(), "the default tag")?;
    }
    if params.tag_as_latest {
        tags.add(LATEST.to_string(), "tag_as_latest")?;
    }
    if let Some(path) = additional {
        let file = ParamFile::read("additional_tags", path, request.base)?;
        let extra_prefix = if tag_file.is_none() { prefix } else { "" };
        let origin = match extra_prefix {
            "" => file.to_string(),
            _ => format!("tag_prefix {extra_prefix:?} with {file}"),
        };
        for word in file.text.split_whitespace() {
            tags.add(format!("{extra_prefix}{word}"), &origin)?;
        }
    }
    if tags.0.is_empty() {
        bail!(
            "no tag to push: give `version` or `additional_tags` in params, or `tag` in \
             source (with `source.variant` there is no default `latest`)"
        );
    }
    Ok(TagPlan {
        tags: tags.0,
        aliases,
    })
}

impl TagPlan {
    /// Whether the caller must list the repository's tags (`GET /v2/<name>/tags/list`, all
    /// pages; a repository that does not exist yet has none) and pass them to
    /// [`TagPlan::with_aliases`]: true for `bump_aliases` with a final version.
    pub fn needs_tag_list(&self) -> bool {
        self.aliases.is_some()
    }

    /// Adds R's bump aliases given the repository's existing tags (ignored when not
    /// needed) and returns the final list, primary first, deduplicated.
    pub fn with_aliases(self, existing: &[String]) -> anyhow::Result<Vec<String>> {
        let Some(aliases) = self.aliases else {
            return Ok(self.tags);
        };
        let (mut latest, mut major, mut minor) = (true, true, true);
        let ours = aliases.version;
        for theirs in existing
            .iter()
            .filter_map(|tag| existing_version(tag, aliases.variant.as_deref()))
        {
            if theirs > ours {
                latest = false;
            }
            if theirs.major == ours.major && theirs.minor > ours.minor {
                major = false;
            }
            if (theirs.major, theirs.minor) == (ours.major, ours.minor) && theirs.patch > ours.patch
            {
                major = false;
                minor = false;
            }
        }
        let mut head = self.tags;
        let tail = head.split_off(aliases.at.min(head.len()));
        let mut tags = Tags(head);
        for alias in aliases.names(latest, major, minor) {
            tags.add(alias, "bump_aliases")?;
        }
        for tag in tail {
            tags.add(tag, "a planned tag")?;
        }
        Ok(tags.0)
    }
}

impl Aliases {
    /// The chosen aliases, in R's order: `latest` (or the variant), major, major.minor.
    fn names(&self, latest: bool, major: bool, minor: bool) -> Vec<String> {
        let variant = self.variant.as_deref();
        let Core {
            major: m, minor: n, ..
        } = self.version;
        let mut names = Vec::new();
        if latest {
            names.push(variant.unwrap_or(LATEST).to_string());
        }
        if major {
            names.push(suffixed(&m.to_string(), variant));
        }
        if minor {
            names.push(suffixed(&format!("{m}.{n}"), variant));
        }
        names
    }
}

/// An ordered set of valid tags.
#[derive(Default)]
struct Tags(Vec<String>);

impl Tags {
    /// Checks `tag` (naming `origin` when it is invalid) and appends it unless present.
    fn add(&mut self, tag: String, origin: &str) -> anyhow::Result<()> {
        check(&tag, origin)?;
        if !self.0.contains(&tag) {
            self.0.push(tag);
        }
        Ok(())
    }
}

fn check(tag: &str, origin: &str) -> anyhow::Result<()> {
    validate_tag(tag).map_err(|e| anyhow!("{origin} gives {tag:?}: {}", e.reason))
}

/// `None` for absent and empty values alike (D's `-n` tests, R's `!= ""`).
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn suffixed(tag: &str, variant: Option<&str>) -> String {
    match variant {
        Some(variant) => format!("{tag}-{variant}"),
        None => tag.to_string(),
    }
}

/// A small file named by a param, read as UTF-8 text.
struct ParamFile<'a> {
    param: &'static str,
    given: &'a str,
    path: PathBuf,
    text: String,
}

impl<'a> ParamFile<'a> {
    fn read(param: &'static str, given: &'a str, base: &Path) -> anyhow::Result<ParamFile<'a>> {
        let mut file = ParamFile {
            param,
            given,
            path: base.join(given),
            text: String::new(),
        };
        let mut bytes = Vec::new();
        std::fs::File::open(&file.path)
            .and_then(|f| f.take(FILE_LIMIT + 1).read_to_end(&mut bytes))
            .with_context(|| format!("reading {file}"))?;
        if bytes.len() as u64 > FILE_LIMIT {
            bail!("{file} is larger than {FILE_LIMIT} bytes; it should hold tags");
        }
        file.text = String::from_utf8(bytes).map_err(|_| anyhow!("{file} is not UTF-8 text"))?;
        Ok(file)
    }
}

impl fmt::Display for ParamFile<'_> {
    /// `tag_file "version/tag" (/tmp/build/version/tag)`; absolute paths are shown once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.param, self.given)?;
        if Path::new(self.given) != self.path {
            write!(f, " ({})", self.path.display())?;
        }
        Ok(())
    }
}

/// `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Core {
    major: u64,
    minor: u64,
    patch: u64,
}

/// A version as Masterminds/semver 1.5 (R's parser) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SemVer {
    core: Core,
    /// How many of the three numbers were written.
    parts: usize,
    pre: Option<String>,
    build: Option<String>,
}

impl SemVer {
    /// `[v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]`, where PRERELEASE and BUILD are
    /// dot-separated runs of `[0-9A-Za-z-]`.
    fn parse(text: &str) -> Option<SemVer> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let (text, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        let (numbers, pre) = match text.split_once('-') {
            Some((numbers, pre)) => (numbers, Some(pre)),
            None => (text, None),
        };
        if !pre.into_iter().chain(build).all(identifiers) {
            return None;
        }
        let mut core = [0u64; 3];
        let mut parts = 0;
        for number in numbers.split('.') {
            if parts == core.len()
                || number.is_empty()
                || !number.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            core[parts] = number.parse().ok()?;
            parts += 1;
        }
        let [major, minor, patch] = core;
        Some(SemVer {
            core: Core {
                major,
                minor,
                patch,
            },
            parts,
            pre: pre.map(str::to_string),
            build: build.map(str::to_string),
        })
    }
}

impl fmt::Display for SemVer {
    /// R's normal form: all three numbers, no `v`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Core {
            major,
            minor,
            patch,
        } = self.core;
        write!(f, "{major}.{minor}.{patch}")?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

fn identifiers(text: &str) -> bool {
    text.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// The final version an existing tag names, for the alias rules: a full
/// `[v]MAJOR.MINOR.PATCH` of the same variant, not a pre-release.
fn existing_version(tag: &str, variant: Option<&str>) -> Option<Core> {
    let text = match variant {
        Some(variant) => tag.strip_suffix(variant)?.strip_suffix('-')?,
        None => tag,
    };
    let version = SemVer::parse(text)?;
    (version.parts == 3 && version.pre.is_none() && version.build.is_none()).then_some(version.core)
}

#[cfg(test)]
#[path = "tags/tests.rs"]
mod tests;
