//! Image references (`[registry/]path[:tag][@digest]`) and Docker's normalisation rules.
//!
//! Pure: no I/O. The grammar is the one of
//! [distribution/reference](https://github.com/distribution/reference/blob/main/reference.go),
//! written out by hand:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ registry "/" ] path            (at most 255 characters, normalised)
//! registry         := host [ ":" port ]
//! host             := domain-name | "[" ipv6 "]"
//! path             := component ( "/" component )*
//! component        := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag              := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ":" hex
//! algorithm        := [A-Za-z][A-Za-z0-9]* ( [+._-] [A-Za-z][A-Za-z0-9]* )*
//! hex              := [0-9a-fA-F]{32,}   (sha256: 64, sha384: 96, sha512: 128 lowercase)
//! ```
//!
//! Normalisation: the first path component is a registry when it contains `.` or `:` or is
//! `localhost`; otherwise the registry is Docker Hub (`docker.io`). `index.docker.io` is
//! written `docker.io`; Docker Hub names with a single component get `library/`.
//! (`registry-1.docker.io` is left as written, as Docker does.)

use std::fmt;

/// The registry name Docker Hub references normalise to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The legacy name of Docker Hub, normalised to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// Prefix of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";
/// Longest allowed name (`registry/path`), as in distribution/reference.
const NAME_MAX: usize = 255;
/// Longest allowed tag.
const TAG_MAX: usize = 128;

/// A reference that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct Error {
    /// What was given.
    pub input: String,
    /// Why it is wrong.
    pub reason: String,
}

impl Error {
    fn new(input: &str, reason: impl Into<String>) -> Error {
        Error {
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a reference: `golang` is `docker.io/library/golang`,
    /// `localhost:5000/a/b:1@sha256:...` keeps its registry, tag and digest.
    pub fn parse(input: &str) -> Result<Reference, Error> {
        let fail = |reason: String| Error::new(input, reason);
        if input.is_empty() {
            return Err(fail("the reference is empty".into()));
        }
        if input.chars().any(char::is_whitespace) {
            return Err(fail("it contains whitespace".into()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (input, None),
        };
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(i) if last_slash.is_none_or(|s| i > s) => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if name.is_empty() {
            return Err(fail("the repository name is missing".into()));
        }
        if name.len() == 64 && is_lower_hex(name) {
            return Err(fail(
                "a 64-character hexadecimal string is an image ID, not a repository name".into(),
            ));
        }
        let (written_registry, path) = split_registry(name);
        if let Some(host) = written_registry {
            check_registry(host).map_err(fail)?;
        }
        let registry = match written_registry {
            None | Some(LEGACY_DOCKER_HUB) => DOCKER_HUB,
            Some(host) => host,
        };
        if path.is_empty() {
            return Err(fail(
                "the repository path after the registry is missing".into(),
            ));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            let mut suggestion = String::new();
            if let Some(host) = written_registry {
                suggestion.push_str(host);
                suggestion.push('/');
            }
            suggestion.push_str(&path.to_ascii_lowercase());
            suggestion.push_str(&input[name.len()..]);
            return Err(fail(format!(
                "repository names must be lowercase; did you mean {suggestion:?}?"
            )));
        }
        check_path(path).map_err(fail)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_string()
        };
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(fail(format!(
                "the name {registry}/{repository} is longer than {NAME_MAX} characters"
            )));
        }
        if let Some(tag) = tag {
            check_tag(tag).map_err(fail)?;
        }
        if let Some(digest) = digest {
            crate::digest::check_reference_digest(digest).map_err(fail)?;
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// Registry name as users write it: `docker.io`, `localhost:5000`, `gcr.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Host (and port) that serves the registry API: `registry-1.docker.io` for Docker Hub.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Repository path inside the registry: `library/golang`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// True for Docker Hub repositories.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// `registry/repository`, without tag or digest: `docker.io/library/golang`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same reference with `tag` (validated) in place of its tag; the digest is kept.
    pub fn with_tag(self, tag: &str) -> Result<Reference, Error> {
        validate_tag(tag)?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self
        })
    }

    /// What goes after `/manifests/` in the API: the digest if there is one, else the tag,
    /// else `latest`.
    pub fn reference_string(&self) -> String {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
            .to_string()
    }
}

impl fmt::Display for Reference {
    /// The normalised form `registry/repository[:tag][@digest]`; a reference with neither a
    /// tag nor a digest shows `:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match (&self.tag, &self.digest) {
            (None, None) => f.write_str(":latest"),
            (tag, digest) => {
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                if let Some(digest) = digest {
                    write!(f, "@{digest}")?;
                }
                Ok(())
            }
        }
    }
}

/// Checks a tag against `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), Error> {
    check_tag(tag).map_err(|reason| Error::new(tag, reason))
}

/// Checks a digest (`algorithm:hex`); `sha256`, `sha384` and `sha512` need their exact
/// length in lowercase hex.
pub fn validate_digest(digest: &str) -> Result<(), Error> {
    crate::digest::check_reference_digest(digest).map_err(|reason| Error::new(digest, reason))
}

/// Splits `name` into the registry (when its first component names one) and the path.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), path)
        }
        _ => (None, name),
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `host[:port]`, where host is a domain name, an IPv4 address or `[ipv6]`.
fn check_registry(registry: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid registry {registry:?}: {why}"));
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return bad("`[` without a closing `]`");
        };
        if address.is_empty() || !address.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()) {
            return bad("not an IPv6 address between `[` and `]`");
        }
        match after {
            "" => (registry, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (registry, Some(port)),
                None => return bad("only `:port` may follow `]`"),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return bad("the port must be a number");
        }
    }
    if !host.starts_with('[') {
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b == b'-' || b.is_ascii_alphanumeric())
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return bad("host names are letters, digits and `-`, in labels separated by `.`");
            }
        }
    }
    Ok(())
}

/// Components separated by `/`, each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        check_component(component)?;
    }
    Ok(())
}

fn check_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err("empty path component (a `//`, or a `/` at the start or end)".into());
    }
    if let Some(c) = component
        .chars()
        .find(|&c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
    {
        return Err(format!(
            "invalid character {c:?} in path component {component:?}: use lowercase letters, \
             digits and the separators `.`, `_`, `__` and `-`"
        ));
    }
    let is_separator = |c: char| matches!(c, '.' | '_' | '-');
    if component.starts_with(is_separator) || component.ends_with(is_separator) {
        return Err(format!(
            "path component {component:?} must start and end with a letter or digit"
        ));
    }
    for run in component.split(|c: char| c.is_ascii_alphanumeric()) {
        let ok = matches!(run, "" | "." | "_" | "__") || run.bytes().all(|b| b == b'-');
        if !ok {
            return Err(format!(
                "invalid separator {run:?} in path component {component:?}: use one of `.`, \
                 `_`, `__` or dashes"
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let Some(first) = tag.chars().next() else {
        return Err("the tag is empty (nothing after `:`)".into());
    };
    if !is_word(first) {
        return Err(format!(
            "tag {tag:?} must start with a letter, digit or `_`"
        ));
    }
    if let Some(c) = tag.chars().find(|&c| !(is_word(c) || c == '.' || c == '-')) {
        return Err(format!(
            "invalid character {c:?} in tag {tag:?}: use letters, digits, `_`, `.` and `-`"
        ));
    }
    if tag.len() > TAG_MAX {
        return Err(format!("tag is longer than {TAG_MAX} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
