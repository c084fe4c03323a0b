//! Table tests for [`super::versions`]: R's `checkRepository` on made-up tag listings.

use super::*;
use std::collections::HashMap;
use std::sync::Mutex;

/// One case: the listing, each tag's digest (a tag missing from `digests` has vanished
/// since the listing), the given version, and the expected `(tag, digest)` list.
struct Case {
    name: &'static str,
    tags: &'static [&'static str],
    digests: &'static [(&'static str, &'static str)],
    given: Option<(&'static str, &'static str)>,
    variant: Option<&'static str>,
    pre_releases: bool,
    prefixes: &'static [&'static str],
    expected: &'static [(&'static str, &'static str)],
}

const CASE: Case = Case {
    name: "",
    tags: &[],
    digests: &[],
    given: None,
    variant: None,
    pre_releases: false,
    prefixes: &[],
    expected: &[],
};

/// Runs a case; returns the versions and every tag that was resolved, in order.
async fn run(
    case: &Case,
    constraint: Option<&dyn Fn(&SemVer) -> bool>,
) -> (Vec<(String, String)>, Vec<String>) {
    let tags: Vec<String> = case.tags.iter().map(|t| t.to_string()).collect();
    let digests: HashMap<&str, &str> = case.digests.iter().copied().collect();
    let given = case.given.map(|(tag, digest)| Version {
        digest: digest.to_string(),
        tag: Some(tag.to_string()),
    });
    let prefixes: Vec<String> = case.prefixes.iter().map(|p| p.to_string()).collect();
    let rules = Rules {
        variant: case.variant,
        pre_releases: case.pre_releases,
        pre_release_prefixes: &prefixes,
        constraint,
    };
    let asked = Mutex::new(Vec::new());
    let resolve = async |tags: Vec<String>| {
        let mut asked = asked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        asked.extend(tags.iter().cloned());
        Ok(tags
            .iter()
            .map(|t| digests.get(t.as_str()).map(|d| d.to_string()))
            .collect())
    };
    let versions = versions(&tags, given.as_ref(), &rules, resolve)
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
    let versions = versions
        .into_iter()
        .map(|v| (v.tag.unwrap_or_default(), v.digest))
        .collect();
    let asked = asked.into_inner().unwrap_or_default();
    (versions, asked)
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(t, d)| (t.to_string(), d.to_string()))
        .collect()
}

#[tokio::test]
async fn r_check_without_tag() {
    let cases = [
        Case {
            name: "semver ascending, rc filtered, latest shares 1.1.0's digest",
            tags: &["1.0.0", "1.1.0", "1.1.0-rc.1", "latest"],
            digests: &[
                ("1.0.0", "a"),
                ("1.1.0", "b"),
                ("1.1.0-rc.1", "c"),
                ("latest", "b"),
            ],
            expected: &[("1.0.0", "a"), ("1.1.0", "b")],
            ..CASE
        },
        Case {
            name: "only latest",
            tags: &["latest"],
            digests: &[("latest", "a")],
            expected: &[("latest", "a")],
            ..CASE
        },
        Case {
            name: "no tags",
            ..CASE
        },
        Case {
            name: "no semver tags, no latest",
            tags: &["main", "sha-1234"],
            digests: &[("main", "a"), ("sha-1234", "a")],
            ..CASE
        },
        Case {
            name: "latest on its own digest comes last",
            tags: &["2.0.0", "latest", "1.0.0"],
            digests: &[("1.0.0", "a"), ("2.0.0", "b"), ("latest", "c")],
            expected: &[("1.0.0", "a"), ("2.0.0", "b"), ("latest", "c")],
            ..CASE
        },
        Case {
            name: "numeric order, not text order; loose forms parse",
            tags: &["1.10.0", "1.9.0", "v1.2.3", "2", "0.1"],
            digests: &[
                ("1.10.0", "a"),
                ("1.9.0", "b"),
                ("v1.2.3", "c"),
                ("2", "d"),
                ("0.1", "e"),
            ],
            expected: &[
                ("0.1", "e"),
                ("v1.2.3", "c"),
                ("1.9.0", "b"),
                ("1.10.0", "a"),
                ("2", "d"),
            ],
            ..CASE
        },
        Case {
            name: "one digest: the more specific tag, whatever the listing order",
            tags: &["1.1.0", "1", "1.1"],
            digests: &[("1", "a"), ("1.1", "a"), ("1.1.0", "a")],
            expected: &[("1.1.0", "a")],
            ..CASE
        },
        Case {
            name: "one digest, listed the other way round",
            tags: &["1", "1.1", "1.1.0"],
            digests: &[("1", "a"), ("1.1", "a"), ("1.1.0", "a")],
            expected: &[("1.1.0", "a")],
            ..CASE
        },
        Case {
            name: "one digest, equally specific: the first listed",
            tags: &["1.1.0", "v1.1.0"],
            digests: &[("1.1.0", "a"), ("v1.1.0", "a")],
            expected: &[("1.1.0", "a")],
            ..CASE
        },
        Case {
            name: "one digest: a final release over a more specific pre-release",
            tags: &["2.0.0-rc.1.2", "2"],
            digests: &[("2", "a"), ("2.0.0-rc.1.2", "a")],
            pre_releases: true,
            expected: &[("2", "a")],
            ..CASE
        },
        Case {
            name: "one digest among pre-releases: the more specific",
            tags: &["1.0.0-rc", "1.0.0-rc.2"],
            digests: &[("1.0.0-rc", "a"), ("1.0.0-rc.2", "a")],
            pre_releases: true,
            expected: &[("1.0.0-rc.2", "a")],
            ..CASE
        },
        Case {
            name: "pre-releases with the default prefixes",
            tags: &[
                "1.0.0",
                "1.1.0-alpha.1",
                "1.1.0-beta",
                "1.1.0-rc.1",
                "1.1.0-dev",
                "1.1.0-rc-1",
                "1.1.0-alpine",
            ],
            digests: &[
                ("1.0.0", "a"),
                ("1.1.0-alpha.1", "b"),
                ("1.1.0-beta", "c"),
                ("1.1.0-rc.1", "d"),
                ("1.1.0-dev", "e"),
                ("1.1.0-rc-1", "f"),
                ("1.1.0-alpine", "g"),
            ],
            pre_releases: true,
            expected: &[
                ("1.0.0", "a"),
                ("1.1.0-alpha.1", "b"),
                ("1.1.0-beta", "c"),
                ("1.1.0-rc.1", "d"),
            ],
            ..CASE
        },
        Case {
            name: "custom prefixes add to the defaults and allow a `-`",
            tags: &["1.1.0-dev.1", "1.1.0-rc-1", "1.1.0-alpine", "1.1.0-beta"],
            digests: &[
                ("1.1.0-dev.1", "a"),
                ("1.1.0-rc-1", "b"),
                ("1.1.0-alpine", "c"),
                ("1.1.0-beta", "d"),
            ],
            pre_releases: true,
            prefixes: &["dev"],
            expected: &[
                ("1.1.0-beta", "d"),
                ("1.1.0-dev.1", "a"),
                ("1.1.0-rc-1", "b"),
            ],
            ..CASE
        },
        Case {
            name: "prefixes without pre_releases change nothing",
            tags: &["1.1.0-dev.1", "1.0.0"],
            digests: &[("1.1.0-dev.1", "a"), ("1.0.0", "b")],
            prefixes: &["dev"],
            expected: &[("1.0.0", "b")],
            ..CASE
        },
        Case {
            name: "variant: suffixed tags, and the variant as the bare tag",
            tags: &[
                "1.0.0",
                "1.0.0-alpine",
                "1.1.0-alpine",
                "1.2.0-rc.1-alpine",
                "alpine",
                "latest",
            ],
            digests: &[
                ("1.0.0", "a"),
                ("1.0.0-alpine", "b"),
                ("1.1.0-alpine", "c"),
                ("1.2.0-rc.1-alpine", "d"),
                ("alpine", "e"),
                ("latest", "a"),
            ],
            variant: Some("alpine"),
            expected: &[
                ("1.0.0-alpine", "b"),
                ("1.1.0-alpine", "c"),
                ("alpine", "e"),
            ],
            ..CASE
        },
        Case {
            name: "variant with pre-releases",
            tags: &["1.1.0-alpine", "1.2.0-rc.1-alpine", "alpine"],
            digests: &[
                ("1.1.0-alpine", "c"),
                ("1.2.0-rc.1-alpine", "d"),
                ("alpine", "d"),
            ],
            variant: Some("alpine"),
            pre_releases: true,
            expected: &[("1.1.0-alpine", "c"), ("1.2.0-rc.1-alpine", "d")],
            ..CASE
        },
        Case {
            name: "a tag gone since the listing is skipped",
            tags: &["1.0.0", "1.1.0", "latest"],
            digests: &[("1.0.0", "a")],
            expected: &[("1.0.0", "a")],
            ..CASE
        },
        Case {
            name: "cursor: the given version and newer",
            tags: &["1.0.0", "1.1", "1.1.0", "1.2.0", "latest"],
            digests: &[
                ("1.0.0", "a"),
                ("1.1", "b"),
                ("1.1.0", "b"),
                ("1.2.0", "c"),
                ("latest", "c"),
            ],
            given: Some(("1.1.0", "b")),
            expected: &[("1.1.0", "b"), ("1.2.0", "c")],
            ..CASE
        },
        Case {
            name: "cursor: the given tag moved, so no cursor",
            tags: &["1.0.0", "1.1.0", "latest"],
            digests: &[("1.0.0", "a"), ("1.1.0", "b"), ("latest", "b")],
            given: Some(("1.1.0", "old")),
            expected: &[("1.0.0", "a"), ("1.1.0", "b")],
            ..CASE
        },
        Case {
            name: "cursor on latest: no cursor",
            tags: &["1.0.0", "latest"],
            digests: &[("1.0.0", "a"), ("latest", "b")],
            given: Some(("latest", "b")),
            expected: &[("1.0.0", "a"), ("latest", "b")],
            ..CASE
        },
    ];
    for case in &cases {
        let (versions, _) = run(case, None).await;
        assert_eq!(versions, owned(case.expected), "{}", case.name);
    }
}

#[tokio::test]
async fn cursor_skips_resolving_lower_versions() {
    let case = Case {
        name: "cursor",
        tags: &["1.0.0", "1.1", "1.1.0", "1.2.0", "latest"],
        digests: &[
            ("1.0.0", "a"),
            ("1.1", "b"),
            ("1.1.0", "b"),
            ("1.2.0", "c"),
            ("latest", "c"),
        ],
        given: Some(("1.1.0", "b")),
        ..CASE
    };
    let (_, asked) = run(&case, None).await;
    assert_eq!(asked, ["1.1.0", "1.2.0", "latest"]);
    let no_cursor = Case {
        given: None,
        ..case
    };
    let (_, asked) = run(&no_cursor, None).await;
    assert_eq!(asked, ["1.0.0", "1.1", "1.1.0", "1.2.0", "latest"]);
}

#[tokio::test]
async fn a_constraint_filters_versions_and_drops_latest() {
    let case = Case {
        name: "constraint",
        tags: &["1.0.0", "2.0.0", "latest"],
        digests: &[("1.0.0", "a"), ("2.0.0", "b"), ("latest", "c")],
        ..CASE
    };
    let major_one = |v: &SemVer| v.major == 1;
    let (versions, asked) = run(&case, Some(&major_one)).await;
    assert_eq!(versions, owned(&[("1.0.0", "a")]));
    assert_eq!(asked, ["1.0.0", "latest"]);
}

/// R's `checkRepository` with a real `semver_constraint` ([`super::super::constraint`]): the
/// constraint is checked after the variant suffix is removed and before the pre-release
/// filter, with Masterminds' rule that a constraint without a pre-release refuses
/// pre-releases (`pre_releases: true` alone does not let them through; `-0` does).
#[tokio::test]
async fn r_check_with_a_semver_constraint() {
    use super::super::constraint::Constraints;
    let cases: [(&str, Case); 10] = [
        (
            "1.2.x",
            Case {
                name: "R's check_test.go \"semver constraint\": v prefix kept, no latest",
                tags: &["1.0.0", "1.2.1", "1.2.2", "v1.2.3", "2.0.0", "latest"],
                digests: &[
                    ("1.0.0", "a"),
                    ("1.2.1", "b"),
                    ("1.2.2", "c"),
                    ("v1.2.3", "d"),
                    ("2.0.0", "e"),
                    ("latest", "f"),
                ],
                expected: &[("1.2.1", "b"), ("1.2.2", "c"), ("v1.2.3", "d")],
                ..CASE
            },
        ),
        (
            ">= 1.1, < 2",
            Case {
                name: "range; latest on 1.5.0's digest is still not emitted",
                tags: &[
                    "0.9.0",
                    "1.0.0",
                    "1.1.0",
                    "1.2.0-rc.1",
                    "1.5.0",
                    "2.0.0",
                    "latest",
                ],
                digests: &[
                    ("0.9.0", "a"),
                    ("1.0.0", "b"),
                    ("1.1.0", "c"),
                    ("1.2.0-rc.1", "d"),
                    ("1.5.0", "e"),
                    ("2.0.0", "f"),
                    ("latest", "f"),
                ],
                expected: &[("1.1.0", "c"), ("1.5.0", "e")],
                ..CASE
            },
        ),
        (
            ">= 1.1, < 2",
            Case {
                name: "pre_releases: the constraint has no pre-release, so rc.1 stays out",
                tags: &["1.0.0", "1.1.0", "1.2.0-rc.1", "1.5.0"],
                digests: &[
                    ("1.0.0", "b"),
                    ("1.1.0", "c"),
                    ("1.2.0-rc.1", "d"),
                    ("1.5.0", "e"),
                ],
                pre_releases: true,
                expected: &[("1.1.0", "c"), ("1.5.0", "e")],
                ..CASE
            },
        ),
        (
            ">= 1.1-0, < 2",
            Case {
                name: "pre_releases and a -0 constraint: default prefixes, no `-` in them",
                tags: &[
                    "1.0.0",
                    "1.1.0",
                    "1.2.0-rc.1",
                    "1.2.0-rc-1",
                    "1.2.0-dev.1",
                    "1.2.0-alpine",
                    "1.5.0",
                    "2.0.0-rc.1",
                    "2.0.0",
                ],
                digests: &[
                    ("1.0.0", "b"),
                    ("1.1.0", "c"),
                    ("1.2.0-rc.1", "d"),
                    ("1.2.0-rc-1", "g"),
                    ("1.2.0-dev.1", "h"),
                    ("1.2.0-alpine", "i"),
                    ("1.5.0", "e"),
                    ("2.0.0-rc.1", "j"),
                    ("2.0.0", "f"),
                ],
                pre_releases: true,
                // 2.0.0-rc.1 is below 2.0.0, so `< 2` keeps it (Masterminds' order).
                expected: &[
                    ("1.1.0", "c"),
                    ("1.2.0-rc.1", "d"),
                    ("1.5.0", "e"),
                    ("2.0.0-rc.1", "j"),
                ],
                ..CASE
            },
        ),
        (
            ">= 1.1-0, < 2",
            Case {
                name: "a -0 constraint without pre_releases: R's pre-release filter drops them",
                tags: &["1.1.0", "1.2.0-rc.1", "1.5.0"],
                digests: &[("1.1.0", "c"), ("1.2.0-rc.1", "d"), ("1.5.0", "e")],
                expected: &[("1.1.0", "c"), ("1.5.0", "e")],
                ..CASE
            },
        ),
        (
            ">= 1.1-0, < 2",
            Case {
                name: "custom prefixes with a -0 constraint: dev and rc-1 count, alpine not",
                tags: &[
                    "1.2.0-rc-1",
                    "1.2.0-dev.1",
                    "1.2.0-alpine",
                    "1.5.0",
                    "3.0.0-dev.1",
                ],
                digests: &[
                    ("1.2.0-rc-1", "g"),
                    ("1.2.0-dev.1", "h"),
                    ("1.2.0-alpine", "i"),
                    ("1.5.0", "e"),
                    ("3.0.0-dev.1", "k"),
                ],
                pre_releases: true,
                prefixes: &["dev"],
                expected: &[("1.2.0-dev.1", "h"), ("1.2.0-rc-1", "g"), ("1.5.0", "e")],
                ..CASE
            },
        ),
        (
            "~1.1",
            Case {
                name: "variant: the constraint sees the version without its suffix",
                tags: &[
                    "1.0.0-alpine",
                    "1.1.0-alpine",
                    "1.1.5-alpine",
                    "1.2.0-alpine",
                    "1.1.7",
                    "alpine",
                ],
                digests: &[
                    ("1.0.0-alpine", "a"),
                    ("1.1.0-alpine", "b"),
                    ("1.1.5-alpine", "c"),
                    ("1.2.0-alpine", "d"),
                    ("1.1.7", "e"),
                    ("alpine", "f"),
                ],
                variant: Some("alpine"),
                expected: &[("1.1.0-alpine", "b"), ("1.1.5-alpine", "c")],
                ..CASE
            },
        ),
        (
            ">= 1.1-0",
            Case {
                name: "variant with pre-releases under a -0 constraint",
                tags: &["1.1.0-alpine", "1.2.0-rc.1-alpine", "1.2.0-rc.1", "alpine"],
                digests: &[
                    ("1.1.0-alpine", "b"),
                    ("1.2.0-rc.1-alpine", "c"),
                    ("1.2.0-rc.1", "d"),
                    ("alpine", "e"),
                ],
                variant: Some("alpine"),
                pre_releases: true,
                expected: &[("1.1.0-alpine", "b"), ("1.2.0-rc.1-alpine", "c")],
                ..CASE
            },
        ),
        (
            "^1.0 || >= 3",
            Case {
                name: "OR groups; the cursor still applies",
                tags: &["1.0.0", "1.4.0", "2.0.0", "3.0.0", "latest"],
                digests: &[
                    ("1.0.0", "a"),
                    ("1.4.0", "b"),
                    ("2.0.0", "c"),
                    ("3.0.0", "d"),
                    ("latest", "d"),
                ],
                given: Some(("1.4.0", "b")),
                expected: &[("1.4.0", "b"), ("3.0.0", "d")],
                ..CASE
            },
        ),
        (
            "> 5",
            Case {
                name: "nothing meets it: no versions, not even latest",
                tags: &["1.0.0", "latest"],
                digests: &[("1.0.0", "a"), ("latest", "b")],
                ..CASE
            },
        ),
    ];
    for (text, case) in &cases {
        let parsed = Constraints::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let allows = |v: &SemVer| parsed.check(v);
        let (versions, _) = run(case, Some(&allows)).await;
        assert_eq!(versions, owned(case.expected), "{} ({text})", case.name);
    }
}
