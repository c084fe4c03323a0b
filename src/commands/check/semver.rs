//! [`SemVer`]: a tag read as a version the way R reads it, with
//! [Masterminds/semver](https://github.com/Masterminds/semver) v3.5's `NewVersion` (R's
//! `go.mod`), and ordered like its `Compare`.
//!
//! `NewVersion` is lenient ("coerce" mode, its default): it accepts
//! `v?MAJOR(.MINOR)?(.PATCH)?(-PRE)?(+META)?` where the numbers may have leading zeros
//! (`01.2` is `1.2.0`) and missing parts are 0 (`1` is `1.0.0`). Pre-release identifiers are
//! dot-separated `[0-9A-Za-z-]+`, and a numeric one may not start with `0` (`rc.01` is not a
//! version). Build metadata is kept but ignored by the ordering.

use std::cmp::Ordering;

/// A version parsed from a tag (after any `-variant` suffix is removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    /// The major number.
    pub major: u64,
    /// The minor number (0 when not written).
    pub minor: u64,
    /// The patch number (0 when not written).
    pub patch: u64,
    /// The pre-release, without its `-`; empty for a final release.
    pub pre: String,
    /// Build metadata, without its `+`; empty when none.
    pub metadata: String,
    /// The text that was parsed.
    pub original: String,
}

impl SemVer {
    /// Parses `text` as Masterminds' `NewVersion` does; `None` when it is not a version.
    pub fn parse(text: &str) -> Option<SemVer> {
        let rest = text.strip_prefix('v').unwrap_or(text);
        let (rest, metadata) = match rest.split_once('+') {
            Some((rest, metadata)) if valid_identifiers(metadata) => (rest, metadata),
            Some(_) => return None,
            None => (rest, ""),
        };
        let (numbers, pre) = match rest.split_once('-') {
            Some((numbers, pre)) if valid_identifiers(pre) => (numbers, pre),
            Some(_) => return None,
            None => (rest, ""),
        };
        if pre.split('.').any(|part| {
            part.len() > 1 && part.starts_with('0') && part.bytes().all(|b| b.is_ascii_digit())
        }) {
            return None;
        }
        let mut parts = numbers.split('.');
        let mut number = |required: bool| -> Option<Option<u64>> {
            match parts.next() {
                None if !required => Some(None),
                Some(part) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
                    part.parse::<u64>().ok().map(Some)
                }
                _ => None,
            }
        };
        let major = number(true)??;
        let minor = number(false)?.unwrap_or(0);
        let patch = number(false)?.unwrap_or(0);
        if parts.next().is_some() {
            return None;
        }
        Some(SemVer {
            major,
            minor,
            patch,
            pre: pre.to_string(),
            metadata: metadata.to_string(),
            original: text.to_string(),
        })
    }

    /// Whether this is a pre-release.
    pub fn is_pre_release(&self) -> bool {
        !self.pre.is_empty()
    }

    /// How specific the tag was written: its number of `.` (R prefers `3.2.1` over `3.2`).
    pub fn dots(&self) -> usize {
        self.original.matches('.').count()
    }

    /// Masterminds' `Compare`: numbers, then a final release above its pre-releases, then
    /// pre-releases identifier by identifier; metadata is ignored.
    pub fn precedence(&self, other: &SemVer) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre_releases(&self.pre, &other.pre),
            })
    }
}

/// Dot-separated, non-empty `[0-9A-Za-z-]+` identifiers.
fn valid_identifiers(text: &str) -> bool {
    text.split('.').all(|part| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Masterminds' `comparePrerelease`: identifier by identifier; a missing identifier is lower,
/// a numeric one is lower than an alphanumeric one, numbers compare as numbers and the rest
/// as bytes.
pub(super) fn compare_pre_releases(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        let ordering = match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) if x == y => Ordering::Equal,
            (Some(x), Some(y)) => match (numeric(x), numeric(y)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => x.cmp(y),
            },
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
}

/// An identifier Go's `strconv.ParseUint(s, 10, 64)` accepts.
fn numeric(identifier: &str) -> Option<u64> {
    if identifier.bytes().all(|b| b.is_ascii_digit()) {
        identifier.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Major, minor, patch, pre-release, metadata.
    type Parts<'a> = (u64, u64, u64, &'a str, &'a str);

    fn parsed(text: &str) -> Option<(u64, u64, u64, String, String)> {
        SemVer::parse(text).map(|v| (v.major, v.minor, v.patch, v.pre, v.metadata))
    }

    #[test]
    fn parses_like_masterminds_new_version() {
        let table: &[(&str, Option<Parts>)] = &[
            ("1.2.3", Some((1, 2, 3, "", ""))),
            ("1", Some((1, 0, 0, "", ""))),
            ("1.2", Some((1, 2, 0, "", ""))),
            ("v1.2.3", Some((1, 2, 3, "", ""))),
            ("01.002.3", Some((1, 2, 3, "", ""))),
            ("1.1.0-rc.1", Some((1, 1, 0, "rc.1", ""))),
            ("1.0-beta", Some((1, 0, 0, "beta", ""))),
            ("1-2", Some((1, 0, 0, "2", ""))),
            ("1.2.3-rc-1.x", Some((1, 2, 3, "rc-1.x", ""))),
            ("1.2.3+build.5", Some((1, 2, 3, "", "build.5"))),
            ("1.2.3-rc.1+b", Some((1, 2, 3, "rc.1", "b"))),
            ("1.2.3-alpine", Some((1, 2, 3, "alpine", ""))),
            ("latest", None),
            ("", None),
            ("v", None),
            ("V1.2.3", None),
            ("1.", None),
            ("1..2", None),
            (".1", None),
            ("1.2.3.4", None),
            ("1.2.3-", None),
            ("1.2.3-rc..1", None),
            ("1.2.3-rc.01", None),
            ("1.2.3-01", None),
            ("1.2.3+", None),
            ("1.2.3_x", None),
            ("1.2.3-rc_1", None),
            ("18446744073709551616", None),
            ("sha-abc123", None),
        ];
        for (text, expected) in table {
            let expected = expected.map(|(a, b, c, p, m)| (a, b, c, p.to_string(), m.to_string()));
            assert_eq!(parsed(text), expected, "{text}");
        }
        assert_eq!(SemVer::parse("v1.2").map(|v| v.dots()), Some(1));
        assert_eq!(SemVer::parse("1.0.0-rc.2").map(|v| v.dots()), Some(3));
    }

    #[test]
    fn orders_like_masterminds_compare() {
        // Ascending; each entry is above the one before.
        let ascending = [
            "0.9.9",
            "1.0.0-1",
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2",
        ];
        let versions: Vec<SemVer> = ascending
            .iter()
            .map(|t| SemVer::parse(t).unwrap_or_else(|| panic!("{t}")))
            .collect();
        for pair in versions.windows(2) {
            assert_eq!(
                pair[0].precedence(&pair[1]),
                Ordering::Less,
                "{} < {}",
                pair[0].original,
                pair[1].original
            );
            assert_eq!(pair[1].precedence(&pair[0]), Ordering::Greater);
        }
        let equal = [("1", "1.0.0"), ("v1.1", "1.1.0"), ("1.0.0+a", "1.0.0+b")];
        for (a, b) in equal {
            let (a, b) = (SemVer::parse(a), SemVer::parse(b));
            assert_eq!(
                a.zip(b).map(|(a, b)| a.precedence(&b)),
                Some(Ordering::Equal)
            );
        }
    }
}
