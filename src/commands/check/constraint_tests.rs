//! Masterminds/semver v3.5's own constraint tests (`constraints_test.go`), their vectors
//! copied as tables, each table citing the Go test it comes from; the README's tables of
//! equivalent ranges; and our error messages. R's listing with a constraint is tested in
//! `semver_tags_tests.rs` (`r_check_with_a_semver_constraint`).

use super::*;

fn version(text: &str) -> SemVer {
    SemVer::parse(text).unwrap_or_else(|| panic!("{text} is not a version"))
}

fn constraints(text: &str) -> Constraints {
    Constraints::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn single(text: &str) -> Result<Constraint, Error> {
    Constraint::parse(grammar()?, text)
}

/// `TestParseConstraint`: the operator and the version compared against (`None`: an error).
#[test]
fn parse_constraint() {
    let table: &[(&str, Option<(Op, &str)>)] = &[
        (">= 1.2", Some((Op::GreaterThanEqual, "1.2.0"))),
        ("1.0", Some((Op::TildeOrEqual, "1.0.0"))),
        ("foo", None),
        ("<= 1.2", Some((Op::LessThanEqual, "1.2.0"))),
        ("=< 1.2", Some((Op::LessThanEqual, "1.2.0"))),
        ("=> 1.2", Some((Op::GreaterThanEqual, "1.2.0"))),
        ("v1.2", Some((Op::TildeOrEqual, "1.2.0"))),
        ("=1.5", Some((Op::TildeOrEqual, "1.5.0"))),
        ("> 1.3", Some((Op::GreaterThan, "1.3.0"))),
        ("< 1.4.1", Some((Op::LessThan, "1.4.1"))),
        ("< 40.50.10", Some((Op::LessThan, "40.50.10"))),
    ];
    for (text, expected) in table {
        let parsed = single(text).ok().map(|c| {
            let v = &c.version;
            (c.op, format!("{}.{}.{}", v.major, v.minor, v.patch))
        });
        let expected = expected.map(|(op, v)| (op, v.to_string()));
        assert_eq!(parsed, expected, "{text}");
    }
}

/// `TestConstraintCheck`: one constraint (`parseConstraint`), pre-releases included when the
/// constraint has one.
#[test]
fn constraint_check() {
    let table: &[(&str, &str, bool)] = &[
        ("=2.0.0", "1.2.3", false),
        ("=2.0.0", "2.0.0", true),
        ("=2.0", "1.2.3", false),
        ("=2.0", "2.0.0", true),
        ("=2.0", "2.0.1", true),
        ("4.1", "4.1.0", true),
        ("!=4.1.0", "4.1.0", false),
        ("!=4.1.0", "4.1.1", true),
        ("!=4.1", "4.1.0", false),
        ("!=4.1", "4.1.1", false),
        ("!=4.1", "5.1.0-alpha.1", false),
        ("!=4.1.0", "5.1.0-alpha.1", false),
        ("!=4.1-alpha", "4.1.0", true),
        ("!=4.1", "5.1.0", true),
        ("<11", "0.1.0", true),
        ("<11", "11.1.0", false),
        ("<1.1", "0.1.0", true),
        ("<1.1", "1.1.0", false),
        ("<1.1", "1.1.1", false),
        ("<=11", "1.2.3", true),
        ("<=11", "12.2.3", false),
        ("<=11", "11.2.3", true),
        ("<=1.1", "1.2.3", false),
        ("<=1.1", "0.1.0", true),
        ("<=1.1", "1.1.0", true),
        ("<=1.1", "1.1.1", true),
        (">1.1", "4.1.0", true),
        (">1.1", "1.1.0", false),
        (">0", "0", false),
        (">0", "1", true),
        (">0", "0.0.1-alpha", false),
        (">0.0", "0.0.1-alpha", false),
        (">0-0", "0.0.1-alpha", false),
        (">0.0-0", "0.0.1-alpha", false),
        (">0", "0.0.0-alpha", false),
        (">0-0", "0.0.0-alpha", false),
        (">0.0.0-0", "0.0.0-alpha", true),
        (">1.2.3-alpha.1", "1.2.3-alpha.2", true),
        (">1.2.3-alpha.1", "1.3.3-alpha.2", true),
        (">11", "11.1.0", false),
        (">11.1", "11.1.0", false),
        (">11.1", "11.1.1", false),
        (">11.1", "11.2.1", true),
        (">=11", "11.1.2", true),
        (">=11.1", "11.1.2", true),
        (">=11.1", "11.0.2", false),
        (">=1.1", "4.1.0", true),
        (">=1.1", "1.1.0", true),
        (">=1.1", "0.0.9", false),
        (">=0", "0.0.1-alpha", false),
        (">=0.0", "0.0.1-alpha", false),
        (">=0-0", "0.0.1-alpha", true),
        (">=0.0-0", "0.0.1-alpha", true),
        (">=0", "0.0.0-alpha", false),
        (">=0-0", "0.0.0-alpha", true),
        (">=0.0.0-0", "0.0.0-alpha", true),
        (">=0.0.0-0", "1.2.3", true),
        (">=0.0.0-0", "3.4.5-beta.1", true),
        ("<0", "0.0.0-alpha", false),
        ("<0-z", "0.0.0-alpha", true),
        (">=0", "0", true),
        ("=0", "1", false),
        ("*", "1", true),
        ("*", "4.5.6", true),
        ("*", "1.2.3-alpha.1", false),
        ("*-0", "1.2.3-alpha.1", true),
        ("2.*", "1", false),
        ("2.*", "3.4.5", false),
        ("2.*", "2.1.1", true),
        ("2.1.*", "2.1.1", true),
        ("2.1.*", "2.2.1", false),
        ("", "1", true), // An empty string is treated as * or wild card
        ("", "4.5.6", true),
        ("", "1.2.3-alpha.1", false),
        ("2", "1", false),
        ("2", "3.4.5", false),
        ("2", "2.1.1", true),
        ("2.1", "2.1.1", true),
        ("2.1", "2.2.1", false),
        ("~1.2.3", "1.2.4", true),
        ("~1.2.3", "1.3.4", false),
        ("~1.2", "1.2.4", true),
        ("~1.2", "1.3.4", false),
        ("~1", "1.2.4", true),
        ("~1", "2.3.4", false),
        ("~0.2.3", "0.2.5", true),
        ("~0.2.3", "0.3.5", false),
        ("~1.2.3-beta.2", "1.2.3-beta.4", true),
        // This next test is a case that is different from npm/js semver handling.
        // Their prereleases are only range scoped to patch releases. This is
        // technically not following semver as docs note. In our case we are
        // following semver.
        ("~1.2.3-beta.2", "1.2.4-beta.2", true),
        ("~1.2.3-beta.2", "1.3.4-beta.2", false),
        ("^1.2.3", "1.8.9", true),
        ("^1.2.3", "2.8.9", false),
        ("^1.2.3", "1.2.1", false),
        ("^1.1.0", "2.1.0", false),
        ("^1.2.0", "2.2.1", false),
        ("^1.2.0", "1.2.1-alpha.1", false),
        ("^1.2.0-alpha.0", "1.2.1-alpha.1", true),
        ("^1.2.0-alpha.0", "1.2.1-alpha.0", true),
        ("^1.2.0-alpha.2", "1.2.0-alpha.1", false),
        ("^1.2", "1.8.9", true),
        ("^1.2", "2.8.9", false),
        ("^1", "1.8.9", true),
        ("^1", "2.8.9", false),
        ("^0.2.3", "0.2.5", true),
        ("^0.2.3", "0.5.6", false),
        ("^0.2", "0.2.5", true),
        ("^0.2", "0.5.6", false),
        ("^0.0.3", "0.0.3", true),
        ("^0.0.3", "0.0.4", false),
        ("^0.0", "0.0.3", true),
        ("^0.0", "0.1.4", false),
        ("^0.0", "1.0.4", false),
        ("^0", "0.2.3", true),
        ("^0", "1.1.4", false),
        ("^0.2.3-beta.2", "0.2.3-beta.4", true),
        // This next test is a case that is different from npm/js semver handling.
        // Their prereleases are only range scoped to patch releases. This is
        // technically not following semver as docs note. In our case we are
        // following semver.
        ("^0.2.3-beta.2", "0.2.4-beta.2", true),
        ("^0.2.3-beta.2", "0.3.4-beta.2", false),
        ("^0.2.3-beta.2", "0.2.3-beta.2", true),
    ];
    for (text, v, expected) in table {
        let constraint = single(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let include_pre = constraint.version.is_pre_release();
        assert_eq!(
            constraint.check(&version(v), include_pre),
            *expected,
            "{text:?} with {v}"
        );
    }
}

/// `TestNewConstraint`: (input, OR groups, constraints in the first group, error).
#[test]
fn new_constraint() {
    let table: &[(&str, usize, usize, bool)] = &[
        (">= 1.1", 1, 1, false),
        (">40.50.60, < 50.70", 1, 2, false),
        ("2.0", 1, 1, false),
        ("v2.3.5-20161202202307-sha.e8fc5e5", 1, 1, false),
        ("v1.2.3-0abc", 1, 1, false),
        ("v1.2.3-beta.01", 1, 1, true),
        (">= bar", 0, 0, true),
        ("BAR >= 1.2.3", 0, 0, true),
        // Test with space separated AND
        (">= 1.2.3 < 2.0", 1, 2, false),
        (">= 1.2.3 < 2.0 || => 3.0 < 4", 2, 2, false),
        // Test with commas separating AND
        (">= 1.2.3, < 2.0", 1, 2, false),
        (">= 1.2.3, < 2.0 || => 3.0, < 4", 2, 2, false),
        // The 3 - 4 should be broken into 2 by the range rewriting
        ("3 - 4 || => 3.0, < 4", 2, 2, false),
        // Due to having 4 parts these should produce an error. See
        // https://github.com/Masterminds/semver/issues/185 for the reason for
        // these tests.
        ("12.3.4.1234", 0, 0, true),
        ("12.23.4.1234", 0, 0, true),
        ("12.3.34.1234", 0, 0, true),
        ("12.3.34 ~1.2.3", 1, 2, false),
        ("12.3.34~ 1.2.3", 0, 0, true),
        ("1.0.0 - 2.0.0, <=2.0.0", 1, 3, false),
    ];
    for (text, ors, count, err) in table {
        match Constraints::parse(text) {
            Ok(_) if *err => panic!("{text:?} should be refused"),
            Err(e) if !*err => panic!("{text:?}: {e}"),
            Err(_) => {}
            Ok(parsed) => {
                assert_eq!(parsed.groups.len(), *ors, "{text:?} OR groups");
                assert_eq!(parsed.groups[0].constraints.len(), *count, "{text:?} ANDs");
            }
        }
    }
}

/// `TestConstraintsCheck`: whole constraint strings (`NewConstraint` then `Check`).
#[test]
fn constraints_check() {
    let table: &[(&str, &str, bool)] = &[
        ("*", "1.2.3", true),
        ("~0.0.0", "1.2.3", true),
        ("0.x.x", "1.2.3", false),
        ("0.0.x", "1.2.3", false),
        ("0.0.0", "1.2.3", false),
        ("*", "1.2.3", true),
        ("^0.0.0", "1.2.3", false),
        ("= 2.0", "1.2.3", false),
        ("= 2.0", "2.0.0", true),
        ("4.1", "4.1.0", true),
        ("4.1.x", "4.1.3", true),
        ("1.x", "1.4", true),
        ("!=4.1", "4.1.0", false),
        ("!=4.1-alpha", "4.1.0-alpha", false),
        ("!=4.1-alpha", "4.1.1-alpha", false),
        ("!=4.1-alpha", "4.1.0", true),
        ("!=4.1", "5.1.0", true),
        ("!=4.x", "5.1.0", true),
        ("!=4.x", "4.1.0", false),
        ("!=4.1.x", "4.2.0", true),
        ("!=4.2.x", "4.2.3", false),
        (">1.1", "4.1.0", true),
        (">1.1", "1.1.0", false),
        ("<1.1", "0.1.0", true),
        ("<1.1", "1.1.0", false),
        ("<1.1", "1.1.1", false),
        ("<1.x", "1.1.1", false),
        ("<1.x", "0.1.1", true),
        ("<1.x", "2.0.0", false),
        ("<1.1.x", "1.2.1", false),
        ("<1.1.x", "1.1.500", false),
        ("<1.1.x", "1.0.500", true),
        ("<1.2.x", "1.1.1", true),
        (">=1.1", "4.1.0", true),
        (">=1.1", "4.1.0-beta", false),
        (">=1.1", "1.1.0", true),
        (">=1.1", "0.0.9", false),
        ("<=1.1", "0.1.0", true),
        ("<=1.1", "0.1.0-alpha", false),
        ("<=1.1-a", "0.1.0-alpha", true),
        ("<=1.1", "1.1.0", true),
        ("<=1.x", "1.1.0", true),
        ("<=2.x", "3.0.0", false),
        ("<=1.1", "1.1.1", true),
        ("<=1.1.x", "1.2.500", false),
        ("<=4.5", "3.4.0", true),
        ("<=4.5", "3.7.0", true),
        ("<=4.5", "4.6.3", false),
        (">1.1, <2", "1.1.1", false),
        (">1.1, <2", "1.2.1", true),
        (">1.1, <3", "4.3.2", false),
        (">=1.1, <2, !=1.2.3", "1.2.3", false),
        (">1.1 <2", "1.1.1", false),
        (">1.1 <2", "1.2.1", true),
        (">1.1    <3", "4.3.2", false),
        (">=1.1    <2    !=1.2.3", "1.2.3", false),
        (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
        (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
        (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
        (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
        (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
        (">=1.1 <2 !=1.2.3", "1.2.3", false),
        (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", true),
        (">=1.1 <2 !=1.2.3 || > 3", "3.1.2", false),
        (">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", true),
        (">=1.1 <2 !=1.2.3 || > 3", "3.0.0", false),
        (">=1.1 <2 !=1.2.3 || > 3", "1.2.3", false),
        ("> 1.1, <     2", "1.1.1", false),
        (">   1.1, <2", "1.2.1", true),
        (">1.1, <  3", "4.3.2", false),
        (">= 1.1, <     2, !=1.2.3", "1.2.3", false),
        ("> 1.1 < 2", "1.1.1", false),
        (">1.1 < 2", "1.2.1", true),
        ("> 1.1    <3", "4.3.2", false),
        (">=1.1    < 2    != 1.2.3", "1.2.3", false),
        (">= 1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
        (">= 1.1, <2, != 1.2.3 || > 3", "3.1.2", false),
        (">= 1.1, <2, != 1.2.3 || >= 3", "3.0.0", true),
        (">= 1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
        (">= 1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
        (">= 1.1 <2 != 1.2.3", "1.2.3", false),
        (">= 1.1 <2 != 1.2.3 || > 3", "4.1.2", true),
        (">= 1.1 <2 != 1.2.3 || > 3", "3.1.2", false),
        (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", true),
        (">= 1.1 < 2 !=1.2.3 || > 3", "3.0.0", false),
        (">=1.1 < 2 !=1.2.3 || > 3", "1.2.3", false),
        (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true),
        (">= 1.0.0  <= 2.0.0-beta", "1.0.1", true),
        (">= 1.0.0  <= 2.0.0-beta", "3.0.0", false),
        (">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", true),
        (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false),
        (
            ">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3",
            "1.0.1-beta",
            true,
        ),
        (
            ">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3",
            "1.0.1-beta",
            false,
        ),
        (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true),
        ("1.1 - 2", "1.1.1", true),
        ("1.5.0 - 4.5", "3.7.0", true),
        ("1.1-3", "4.3.2", false),
        ("^1.1", "1.1.1", true),
        ("^1.1", "4.3.2", false),
        ("^1.x", "1.1.1", true),
        ("^2.x", "1.1.1", false),
        ("^1.x", "2.1.1", false),
        ("^1.x", "1.1.1-beta1", false),
        ("^1.1.2-alpha", "1.2.1-beta1", true),
        ("^1.2.x-alpha", "1.1.1-beta1", false),
        ("^0.0.1", "0.0.1", true),
        ("^0.0.1", "0.3.1", false),
        ("~*", "2.1.1", true),
        ("~1", "2.1.1", false),
        ("~1", "1.3.5", true),
        ("~1", "1.4", true),
        ("~1.x", "2.1.1", false),
        ("~1.x", "1.3.5", true),
        ("~1.x", "1.4", true),
        ("~1.1", "1.1.1", true),
        ("~1.1", "1.1.1-alpha", false),
        ("~1.1-alpha", "1.1.1-beta", true),
        ("~1.1.1-beta", "1.1.1-alpha", false),
        ("~1.1.1-beta", "1.1.1", true),
        ("~1.2.3", "1.2.5", true),
        ("~1.2.3", "1.2.2", false),
        ("~1.2.3", "1.3.2", false),
        ("~1.1", "1.2.3", false),
        ("~1.3", "2.4.5", false),
        // Ranges should work in conjunction with other constraints anded together.
        ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true),
        ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true),
    ];
    for (text, v, expected) in table {
        assert_eq!(
            constraints(text).check(&version(v)),
            *expected,
            "{text:?} with {v}"
        );
    }
}

/// `TestRewriteRange`: hyphen ranges rewritten, spacing and all.
#[test]
fn rewrite_range() {
    let table: &[(&str, &str)] = &[
        ("2 - 3", ">= 2, <= 3 "),
        ("2 - 3, 2 - 3", ">= 2, <= 3 ,>= 2, <= 3 "),
        ("2 - 3, 4.0.0 - 5.1", ">= 2, <= 3 ,>= 4.0.0, <= 5.1 "),
        ("2 - 3 4.0.0 - 5.1", ">= 2, <= 3 >= 4.0.0, <= 5.1 "),
        ("1.0.0 - 2.0.0 <=2.0.0", ">= 1.0.0, <= 2.0.0 <=2.0.0"),
    ];
    let grammar = grammar().unwrap_or_else(|e| panic!("{e}"));
    for (text, expected) in table {
        assert_eq!(rewrite_ranges(grammar, text), *expected, "{text:?}");
    }
}

/// `TestIsX`.
#[test]
fn wildcards() {
    for (part, expected) in [
        ("A", false),
        ("%", false),
        ("X", true),
        ("x", true),
        ("*", true),
    ] {
        assert_eq!(is_x(part), expected, "{part}");
    }
}

/// Versions to compare two constraints on: every `x.y.z` up to 5.5.5, a few beyond, and
/// pre-releases (refused by both sides when neither has a pre-release).
fn probes() -> Vec<SemVer> {
    let mut texts: Vec<String> = Vec::new();
    for major in 0..=5 {
        for minor in 0..=5 {
            for patch in 0..=5 {
                texts.push(format!("{major}.{minor}.{patch}"));
            }
        }
    }
    texts.extend(
        [
            "10.0.0",
            "1.4.6",
            "1.2.3-rc.1",
            "2.0.0-alpha",
            "0.2.3-beta.1",
        ]
        .map(String::from),
    );
    texts.iter().map(|t| version(t)).collect()
}

/// Masterminds' README, "Hyphen Range Comparisons", "Wildcards In Comparisons", "Tilde Range
/// Comparisons (Patch)" and "Caret Range Comparisons (Major)": each shorthand accepts exactly
/// what its spelled-out equivalent accepts.
#[test]
fn readme_equivalences() {
    let table: &[(&str, &str)] = &[
        // Hyphen Range Comparisons
        ("1.2 - 1.4.5", ">= 1.2 <= 1.4.5"),
        ("2.3.4 - 4.5", ">= 2.3.4 <= 4.5"),
        // Wildcards In Comparisons
        ("1.2.x", ">= 1.2.0, < 1.3.0"),
        (">= 1.2.x", ">= 1.2.0"),
        ("<= 2.x", "< 3"),
        ("*", ">= 0.0.0"),
        // Tilde Range Comparisons (Patch)
        ("~1.2.3", ">= 1.2.3, < 1.3.0"),
        ("~1", ">= 1, < 2"),
        ("~2.3", ">= 2.3, < 2.4"),
        ("~1.2.x", ">= 1.2.0, < 1.3.0"),
        ("~1.x", ">= 1, < 2"),
        // Caret Range Comparisons (Major)
        ("^1.2.3", ">= 1.2.3, < 2.0.0"),
        ("^1.2.x", ">= 1.2.0, < 2.0.0"),
        ("^2.3", ">= 2.3, < 3"),
        ("^2.x", ">= 2.0.0, < 3"),
        ("^0.2.3", ">=0.2.3 <0.3.0"),
        ("^0.2", ">=0.2.0 <0.3.0"),
        ("^0.0.3", ">=0.0.3 <0.0.4"),
        ("^0.0", ">=0.0.0 <0.1.0"),
        ("^0", ">=0.0.0 <1.0.0"),
    ];
    let probes = probes();
    for (short, long) in table {
        let (short_c, long_c) = (constraints(short), constraints(long));
        let mut accepted = 0;
        for v in &probes {
            let short_says = short_c.check(v);
            assert_eq!(
                short_says,
                long_c.check(v),
                "{short:?} vs {long:?} on {}",
                v.original
            );
            accepted += usize::from(short_says);
        }
        assert!(accepted > 0, "{short:?} accepts no probe");
    }
    // "`1.2-1.4.5` without whitespace is ... a single constraint `1.2.0` with prerelease
    // `1.4.5`".
    let glued = constraints("1.2-1.4.5");
    assert_eq!(glued.groups.len(), 1);
    let only = &glued.groups[0].constraints;
    assert_eq!(only.len(), 1);
    assert_eq!(
        (
            only[0].version.major,
            only[0].version.minor,
            only[0].version.pre.as_str()
        ),
        (1, 2, "1.4.5")
    );
}

/// Masterminds' README, "Working With Prerelease Versions".
#[test]
fn readme_pre_releases() {
    let pre = version("1.2.4-beta.1");
    assert!(!constraints(">=1.2.3").check(&pre));
    assert!(constraints(">=1.2.3-0").check(&pre));
    // ASCII order: `BETA` < `alpha`.
    assert!(constraints(">=1.2.3-BETA").check(&version("1.2.3-alpha")));
    // The pre-release opt-in is per OR group.
    assert!(!constraints(">= 3 || >= 1.0.0-0, < 2").check(&version("2.1.0-rc.1")));
    assert!(constraints(">= 3 || >= 1.0.0-0, < 2").check(&version("1.5.0-rc.1")));
    // A pre-release of 2.0.0 is below 2.0.0.
    assert!(constraints(">= 1.0.0-0, < 2").check(&version("2.0.0-rc.1")));
    assert!(!constraints(">= 1.0.0-0, < 2 || >= 3").check(&version("3.1.0-rc.1")));
}

/// Errors name the part that is wrong and say what a constraint looks like.
#[test]
fn errors_name_the_part() {
    let improper = |part: &str| Err(Error::Improper { part: part.into() });
    let table: &[(&str, Result<(), Error>)] = &[
        (">= bar", improper(">= bar")),
        ("", improper("")),
        ("1.2.3 || >= x.y", improper(" >= x.y")),
        ("12.3.4.1234", improper("12.3.4.1234")),
        (">> 1", improper(">> 1")),
        (
            "v1.2.3-beta.01",
            Err(Error::Version {
                part: "v1.2.3-beta.01".into(),
                version: "v1.2.3-beta.01".into(),
            }),
        ),
        (
            ">= 1.xx",
            Err(Error::Version {
                part: ">= 1.xx".into(),
                version: "1.xx.0".into(),
            }),
        ),
        (">= 1.2, < 2", Ok(())),
    ];
    for (text, expected) in table {
        assert_eq!(&Constraints::parse(text).map(|_| ()), expected, "{text:?}");
    }
    let message = Constraints::parse(">= bar")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("improper constraint \">= bar\": expected an operator"),
        "{message}"
    );
    let message = Constraints::parse("v1.2.3-beta.01")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(message.contains("may not start with 0"), "{message}");
}
