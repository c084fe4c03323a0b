//! [`Constraints`]: R's `semver_constraint`, parsed and checked as
//! [Masterminds/semver](https://github.com/Masterminds/semver) v3.5 does (`constraints.go`:
//! `NewConstraint`, `parseConstraint`, `rewriteRange` and one function per operator), since
//! R calls `semver.NewConstraint(source.SemverConstraint)` and then `Check` on every tag.
//!
//! The grammar, as Masterminds writes it:
//! - `||` separates OR groups; inside a group, spaces or commas separate constraints that must
//!   all hold (`>= 1.2, < 2` is `>= 1.2 < 2`).
//! - A constraint is an operator (`=` or none, `!=`, `>`, `<`, `>=`/`=>`, `<=`/`=<`,
//!   `~`/`~>`, `^`) and a version whose numbers may be `x`, `X` or `*` or left out
//!   (`1.2.x`, `1.2`, `*`): a wildcard makes `=` a tilde, and the comparisons work at the
//!   level that was written (`> 1.1` means 1.2 or above, `<= 1.1` includes 1.1.9).
//! - `A - B`, with spaces around the `-`, is rewritten to `>= A, <= B` first
//!   (`1.2-1.4.5`, without them, is 1.2.0 with the pre-release `1.4.5`).
//! - Pre-releases: a version with a pre-release passes an AND group only when a constraint
//!   of that group has one (`>= 1.2-0` lets `1.3.0-rc.1` through; `>= 1.2` does not), whatever
//!   R's `pre_releases` says.
//!
//! The regular expressions are Masterminds' own, with Go's ASCII `\s`; the `regex` crate
//! matches leftmost-first as Go's `regexp` does, so each part splits where Go splits it.
//! Versions are read with [`SemVer::parse`] (`NewVersion`) and compared with
//! [`SemVer::precedence`] (`Compare`). Nothing here does I/O.

use super::semver::{compare_pre_releases, SemVer};
use regex::Regex;
use std::cmp::Ordering;
use std::sync::LazyLock;

/// A parsed constraint string: OR groups of AND constraints.
#[derive(Debug, Clone)]
pub struct Constraints {
    groups: Vec<Group>,
}

/// Constraints that must all hold.
#[derive(Debug, Clone)]
struct Group {
    constraints: Vec<Constraint>,
    /// Whether one of them has a pre-release (Masterminds' `containsPre`): then pre-release
    /// versions are checked instead of refused.
    contains_pre: bool,
}

/// One operator and version (Masterminds' `constraint`).
#[derive(Debug, Clone)]
struct Constraint {
    op: Op,
    /// The version compared against, with wildcards and missing parts as 0.
    version: SemVer,
    /// Major, minor or patch was a wildcard or missing (`*`, `1.x`, `1.2`).
    dirty: bool,
    /// Minor (and so patch) was a wildcard or missing.
    minor_dirty: bool,
    /// Patch was a wildcard or missing.
    patch_dirty: bool,
}

/// The operators, by the Masterminds function that checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `=` or none: equal, or a tilde when a part is a wildcard or missing.
    TildeOrEqual,
    /// `!=`.
    NotEqual,
    /// `>`.
    GreaterThan,
    /// `<`.
    LessThan,
    /// `>=`, `=>`.
    GreaterThanEqual,
    /// `<=`, `=<`.
    LessThanEqual,
    /// `~`, `~>`: the same minor (or major, when the minor is not given).
    Tilde,
    /// `^`: the same major (the same minor below 1.0, the same patch below 0.1).
    Caret,
}

/// Why a constraint string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A part that is not operators and versions (Masterminds: `improper constraint: %q`).
    #[error(
        "improper constraint {part:?}: expected an operator (=, !=, >, <, >=, <=, ~, ^ or none) \
         and a version such as 1.2, 1.2.x or 1.2.3-rc.1, separated by spaces or commas (AND) \
         or || (OR), or a range A - B"
    )]
    Improper {
        /// The OR group or constraint as Masterminds sees it (ranges already rewritten).
        part: String,
    },
    /// A version in a constraint that Masterminds' `NewVersion` refuses (Masterminds:
    /// `constraint parser error`).
    #[error(
        "{} is not a version: each number is digits or a wildcard (x, X, *), and a numeric \
         pre-release identifier may not start with 0",
        quoted_in(.version, .part)
    )]
    Version {
        /// The constraint.
        part: String,
        /// The version as rewritten for parsing (wildcards as 0).
        version: String,
    },
    /// One of the fixed patterns below does not compile (a bug here, not in the input).
    #[error("internal: a constraint pattern does not compile: {0}")]
    Pattern(String),
}

/// `"1.xx.0" in ">= 1.xx"`, or just `"v1.2.3-beta.01"` when the constraint is the version.
fn quoted_in(version: &str, part: &str) -> String {
    if version == part {
        format!("{version:?}")
    } else {
        format!("{version:?} in {part:?}")
    }
}

/// Masterminds' `cvRegex`: a version with wildcards, in groups 1 to 9 of its own.
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
/// Masterminds' operators, in its order (leftmost-first matching depends on it).
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
/// Go's `\s`, which is ASCII only (no vertical tab, no Unicode spaces).
const S: &str = r"[\t\n\f\r ]";

/// Masterminds' four patterns, compiled once.
struct Grammar {
    /// `constraintRegex`: one whole constraint.
    constraint: Regex,
    /// `constraintRangeRegex`: `A - B`.
    range: Regex,
    /// `findConstraintRegex`: each constraint of an AND group.
    find: Regex,
    /// `validConstraintRegex`: a whole AND group.
    valid: Regex,
}

static GRAMMAR: LazyLock<Result<Grammar, regex::Error>> = LazyLock::new(|| {
    Ok(Grammar {
        constraint: Regex::new(&format!(r"^{S}*({OPS}){S}*({CV}){S}*$"))?,
        range: Regex::new(&format!(r"{S}*({CV}){S}+-{S}+({CV}){S}*"))?,
        find: Regex::new(&format!(r"({OPS}){S}*({CV})"))?,
        valid: Regex::new(&format!(
            r"^({S}*({OPS}){S}*({CV}){S}*)((?:{S}+|,{S}*)({OPS}){S}*({CV}){S}*)*$"
        ))?,
    })
});

fn grammar() -> Result<&'static Grammar, Error> {
    GRAMMAR.as_ref().map_err(|e| Error::Pattern(e.to_string()))
}

impl Constraints {
    /// Parses `text` as Masterminds' `NewConstraint` does. An empty string is an error there
    /// too; R treats an empty `semver_constraint` as unset before getting here.
    pub fn parse(text: &str) -> Result<Constraints, Error> {
        let grammar = grammar()?;
        let text = rewrite_ranges(grammar, text);
        let mut groups = Vec::new();
        for segment in text.split("||") {
            if !grammar.valid.is_match(segment) {
                return Err(Error::Improper {
                    part: segment.to_string(),
                });
            }
            let mut constraints = Vec::new();
            for found in grammar.find.find_iter(segment) {
                constraints.push(Constraint::parse(grammar, found.as_str())?);
            }
            if constraints.is_empty() {
                // Unreachable after `valid` matched; Masterminds parses the segment itself.
                constraints.push(Constraint::parse(grammar, segment)?);
            }
            let contains_pre = constraints.iter().any(|c| c.version.is_pre_release());
            groups.push(Group {
                constraints,
                contains_pre,
            });
        }
        Ok(Constraints { groups })
    }

    /// Masterminds' `Check` (with `IncludePrerelease` false, as R leaves it): whether one OR
    /// group's constraints all hold for `version`.
    pub fn check(&self, version: &SemVer) -> bool {
        self.groups.iter().any(|group| {
            group
                .constraints
                .iter()
                .all(|c| c.check(version, group.contains_pre))
        })
    }
}

/// Masterminds' `rewriteRange`: each `A - B` becomes `>= A, <= B ` in place (the first
/// occurrence of the matched text, as Go's `strings.Replace(o, match, t, 1)` does).
fn rewrite_ranges(grammar: &Grammar, text: &str) -> String {
    let mut rewritten = text.to_string();
    for captures in grammar.range.captures_iter(text) {
        let group = |i: usize| captures.get(i).map_or("", |m| m.as_str());
        let replacement = format!(">= {}, <= {} ", group(1), group(11));
        rewritten = rewritten.replacen(group(0), &replacement, 1);
    }
    rewritten
}

/// Masterminds' `isX`.
fn is_x(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

impl Constraint {
    /// Masterminds' `parseConstraint`: one operator and version; `""` is `*`.
    fn parse(grammar: &Grammar, text: &str) -> Result<Constraint, Error> {
        if text.is_empty() {
            return Ok(Constraint {
                op: Op::TildeOrEqual,
                version: zero(),
                dirty: true,
                minor_dirty: false,
                patch_dirty: false,
            });
        }
        let improper = || Error::Improper {
            part: text.to_string(),
        };
        let captures = grammar.constraint.captures(text).ok_or_else(improper)?;
        let group = |i: usize| captures.get(i).map_or("", |m| m.as_str());
        let op = match group(1) {
            "" | "=" => Op::TildeOrEqual,
            "!=" => Op::NotEqual,
            ">" => Op::GreaterThan,
            "<" => Op::LessThan,
            ">=" | "=>" => Op::GreaterThanEqual,
            "<=" | "=<" => Op::LessThanEqual,
            "~" | "~>" => Op::Tilde,
            "^" => Op::Caret,
            _ => return Err(improper()),
        };
        let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
        let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
        let written = if is_x(major) || major.is_empty() {
            dirty = true;
            format!("0.0.0{pre}")
        } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
            (dirty, minor_dirty) = (true, true);
            format!("{major}.0.0{pre}")
        } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
            (dirty, patch_dirty) = (true, true);
            format!("{major}{minor}.0{pre}")
        } else {
            group(2).to_string()
        };
        let version = SemVer::parse(&written).ok_or_else(|| Error::Version {
            part: text.trim().to_string(),
            version: written.clone(),
        })?;
        Ok(Constraint {
            op,
            version,
            dirty,
            minor_dirty,
            patch_dirty,
        })
    }

    /// Masterminds' `constraint.check` without the reason: whether `v` meets this
    /// constraint, with pre-release versions refused unless `include_pre`.
    fn check(&self, v: &SemVer, include_pre: bool) -> bool {
        // Every Masterminds operator starts with this.
        if v.is_pre_release() && !include_pre {
            return false;
        }
        match self.op {
            Op::TildeOrEqual if self.dirty => self.tilde(v),
            Op::TildeOrEqual => compare(v, &self.version) == Ordering::Equal,
            Op::NotEqual => self.not_equal(v),
            Op::GreaterThan => self.greater_than(v),
            Op::LessThan => compare(v, &self.version) == Ordering::Less,
            Op::GreaterThanEqual => compare(v, &self.version) != Ordering::Less,
            Op::LessThanEqual => self.less_than_equal(v),
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    /// `constraintNotEqual`: with a wildcard, not within the wildcard's range.
    fn not_equal(&self, v: &SemVer) -> bool {
        let c = &self.version;
        if self.dirty {
            if c.major != v.major {
                return true;
            }
            if c.minor != v.minor && !self.minor_dirty {
                return true;
            } else if self.minor_dirty {
                return false;
            } else if c.patch != v.patch && !self.patch_dirty {
                return true;
            } else if self.patch_dirty {
                if v.is_pre_release() || c.is_pre_release() {
                    return compare_pre_releases(&v.pre, &c.pre) != Ordering::Equal;
                }
                return false;
            }
        }
        compare(v, c) != Ordering::Equal
    }

    /// `constraintGreaterThan`: above the level written (`> 11` is 12 or above).
    fn greater_than(&self, v: &SemVer) -> bool {
        let c = &self.version;
        if !self.dirty {
            return compare(v, c) == Ordering::Greater;
        }
        if v.major > c.major {
            true
        } else if v.major < c.major || self.minor_dirty {
            false
        } else if self.patch_dirty {
            v.minor > c.minor
        } else {
            compare(v, c) == Ordering::Greater
        }
    }

    /// `constraintLessThanEqual`: up to the end of the level written (`<= 1.1` takes 1.1.9).
    fn less_than_equal(&self, v: &SemVer) -> bool {
        let c = &self.version;
        if !self.dirty {
            return compare(v, c) != Ordering::Greater;
        }
        !(v.major > c.major || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
    }

    /// `constraintTilde`: at least the version, with the same major and (unless the minor is
    /// a wildcard) minor; `~0.0.0` and `~*` take everything.
    fn tilde(&self, v: &SemVer) -> bool {
        let c = &self.version;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        if (c.major, c.minor, c.patch) == (0, 0, 0) && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }

    /// `constraintCaret`: at least the version, and the same major; below 1.0 the same minor;
    /// below 0.1 the same patch.
    fn caret(&self, v: &SemVer) -> bool {
        let c = &self.version;
        if compare(v, c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

/// Masterminds' `Version.Compare`.
fn compare(v: &SemVer, c: &SemVer) -> Ordering {
    v.precedence(c)
}

/// `0.0.0`, the version of an empty constraint.
fn zero() -> SemVer {
    SemVer {
        major: 0,
        minor: 0,
        patch: 0,
        pre: String::new(),
        metadata: String::new(),
        original: "0.0.0".to_string(),
    }
}

#[cfg(test)]
#[path = "constraint_tests.rs"]
mod tests;
