use super::*;

/// A request over a fresh directory holding `files`.
struct Case {
    dir: tempfile::TempDir,
    params: PutParams,
    source_tag: Option<&'static str>,
    variant: Option<&'static str>,
}

impl Case {
    fn new(params: &str, files: Files) -> Case {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        let params =
            serde_json::from_str(params).unwrap_or_else(|e| panic!("params {params}: {e}"));
        Case {
            dir,
            params,
            source_tag: None,
            variant: None,
        }
    }

    fn source(mut self, source_tag: Option<&'static str>, variant: Option<&'static str>) -> Case {
        self.source_tag = source_tag;
        self.variant = variant;
        self
    }

    fn plan(&self) -> anyhow::Result<TagPlan> {
        plan(&TagRequest {
            params: &self.params,
            source_tag: self.source_tag,
            variant: self.variant,
            base: self.dir.path(),
        })
    }
}

/// Files to create: path and contents.
type Files<'a> = &'a [(&'a str, &'a [u8])];
/// `source.tag` or `source.variant`.
type Src = Option<&'static str>;

/// Name, params, files, `source.tag`, `source.variant`, tags, whether a tag list is needed.
type RuleRow = (
    &'static str,
    &'static str,
    Files<'static>,
    Src,
    Src,
    &'static [&'static str],
    bool,
);
/// Name, params, files, `source.tag`, `source.variant`, parts of the error message.
type ErrorRow = (
    &'static str,
    &'static str,
    Files<'static>,
    Src,
    Src,
    &'static [&'static str],
);

const NO_FILES: Files = &[];

#[test]
fn rules() {
    let tag = &[("tag", b"1.2.3\n" as &[u8])][..];
    let nested = &[("version/number", b"  7 \r\n" as &[u8])][..];
    let extra = &[("tag", b"1.2.3" as &[u8]), ("extra", b"a b\n\tc  a\n")][..];
    let empty_extra = &[("extra", b" \n" as &[u8])][..];
    #[rustfmt::skip]
    let cases: &[RuleRow] = &[
        ("default", "{}", NO_FILES, None, None, &["latest"], false),
        ("empty strings are unset", r#"{"tag_file": "", "tag": "", "version": "", "additional_tags": "", "tag_prefix": ""}"#, NO_FILES, Some(""), Some(""), &["latest"], false),
        ("source.tag", "{}", NO_FILES, Some("dev"), None, &["dev"], false),
        ("numeric source.tag", "{}", NO_FILES, Some("1.20"), None, &["1.20"], false),
        ("tag_file, trimmed", r#"{"tag_file": "tag"}"#, tag, None, None, &["1.2.3"], false),
        ("tag_file in a subdirectory", r#"{"tag_file": "version/number"}"#, nested, None, None, &["7"], false),
        ("D's old `tag`", r#"{"tag": "tag"}"#, tag, None, None, &["1.2.3"], false),
        ("tag_prefix on tag_file", r#"{"tag_file": "tag", "tag_prefix": "v"}"#, tag, None, None, &["v1.2.3"], false),
        ("tag_file replaces source.tag (D)", r#"{"tag_file": "tag"}"#, tag, Some("dev"), None, &["1.2.3"], false),
        ("tag_file is not a version", r#"{"tag_file": "t"}"#, &[("t", b"1.20")], None, None, &["1.20"], false),
        ("numeric-looking tag_file", r#"{"tag_file": "t"}"#, &[("t", b"0123")], None, None, &["0123"], false),
        ("tag_as_latest", r#"{"tag_file": "tag", "tag_as_latest": true}"#, tag, None, None, &["1.2.3", "latest"], false),
        ("tag_as_latest twice latest", r#"{"tag_as_latest": true}"#, NO_FILES, None, None, &["latest"], false),
        ("additional_tags, not prefixed with tag_file (D)", r#"{"tag_file": "tag", "tag_prefix": "v", "additional_tags": "extra"}"#, extra, None, None, &["v1.2.3", "a", "b", "c"], false),
        ("additional_tags prefixed without tag_file (R)", r#"{"tag_prefix": "v", "additional_tags": "extra"}"#, extra, Some("dev"), None, &["dev", "va", "vb", "vc"], false),
        ("additional_tags after the default", r#"{"additional_tags": "extra", "tag_as_latest": true}"#, extra, None, None, &["latest", "a", "b", "c"], false),
        ("additional_tags alone: no latest", r#"{"additional_tags": "extra"}"#, extra, None, None, &["a", "b", "c"], false),
        ("empty additional_tags with source.tag", r#"{"additional_tags": "extra"}"#, empty_extra, Some("dev"), None, &["dev"], false),
        ("version", r#"{"version": "1.2.3"}"#, NO_FILES, None, None, &["1.2.3"], false),
        ("version in R's form", r#"{"version": "v1.2"}"#, NO_FILES, None, None, &["1.2.0"], false),
        ("numeric version", r#"{"version": 1.20}"#, NO_FILES, None, None, &["1.20.0"], false),
        ("version with variant", r#"{"version": "1.2.3"}"#, NO_FILES, None, Some("lts"), &["1.2.3-lts"], false),
        ("version after source.tag (R)", r#"{"version": "1.2.3"}"#, NO_FILES, Some("dev"), None, &["dev", "1.2.3"], false),
        ("pre-release version", r#"{"version": "1.2.3-rc.1", "bump_aliases": true}"#, NO_FILES, None, Some("lts"), &["1.2.3-rc.1-lts"], false),
        ("bump_aliases", r#"{"version": "1.2.3", "bump_aliases": true}"#, NO_FILES, None, None, &["1.2.3"], true),
        ("variant leaves source.tag alone", "{}", NO_FILES, Some("dev"), Some("lts"), &["dev"], false),
        ("variant has no default latest", r#"{"additional_tags": "extra"}"#, extra, None, Some("lts"), &["a", "b", "c"], false),
        ("variant with tag_as_latest", r#"{"tag_as_latest": true}"#, NO_FILES, None, Some("lts"), &["latest"], false),
    ];
    for (name, params, files, source_tag, variant, tags, needs_list) in cases {
        let case = Case::new(params, files).source(*source_tag, *variant);
        let plan = case.plan().unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(plan.tags, *tags, "{name}");
        assert_eq!(plan.needs_tag_list(), *needs_list, "{name}");
        if !needs_list {
            assert_eq!(
                plan.with_aliases(&["9.9.9".into()]).unwrap(),
                *tags,
                "{name}"
            );
        }
    }
}

#[test]
fn absolute_paths_are_used_as_written() {
    let elsewhere = Case::new("{}", &[("tag", b"abs")]);
    let path = elsewhere.dir.path().join("tag");
    let params = format!(r#"{{"tag_file": {:?}}}"#, path.display().to_string());
    let plan = Case::new(&params, NO_FILES).plan().unwrap();
    assert_eq!(plan.tags, ["abs"]);
}

#[test]
fn errors() {
    const LONG: &[u8] = &[b'x'; 129];
    #[rustfmt::skip]
    let cases: &[ErrorRow] = &[
        ("missing tag_file", r#"{"tag_file": "nope"}"#, NO_FILES, None, None, &["reading tag_file \"nope\" (", "/nope)", "No such file"]),
        ("missing old tag", r#"{"tag": "nope"}"#, NO_FILES, None, None, &["reading tag \"nope\""]),
        ("missing additional_tags", r#"{"additional_tags": "nope"}"#, NO_FILES, None, None, &["reading additional_tags \"nope\""]),
        ("empty tag_file", r#"{"tag_file": "t"}"#, &[("t", b" \n\t")], None, None, &["tag_file \"t\"", "is empty"]),
        ("tag_file is a directory", r#"{"tag_file": "d"}"#, &[("d/x", b"1")], None, None, &["reading tag_file \"d\""]),
        ("tag_file is not text", r#"{"tag_file": "t"}"#, &[("t", b"\xff\xfe")], None, None, &["tag_file \"t\"", "not UTF-8"]),
        ("tag_file and tag", r#"{"tag_file": "a", "tag": "b"}"#, NO_FILES, None, None, &["`tag_file` (\"a\")", "`tag` (\"b\")", "not both"]),
        ("version and tag_file", r#"{"tag_file": "t", "version": "1.2.3"}"#, NO_FILES, None, None, &["`tag_file` (\"t\")", "`version` (\"1.2.3\")"]),
        ("version and old tag", r#"{"tag": "t", "version": "1.2.3"}"#, NO_FILES, None, None, &["`tag` (\"t\")", "`version`"]),
        ("bump_aliases without version", r#"{"bump_aliases": true}"#, NO_FILES, Some("dev"), None, &["`bump_aliases` needs `version`"]),
        ("version not semver", r#"{"version": "hoogily-boogily"}"#, NO_FILES, None, None, &["`version` \"hoogily-boogily\" is not a semantic version"]),
        ("version with four numbers", r#"{"version": "1.2.3.4"}"#, NO_FILES, None, None, &["\"1.2.3.4\" is not a semantic version"]),
        ("version with build metadata", r#"{"version": "1.2.3+b.5"}"#, NO_FILES, None, None, &["version \"1.2.3+b.5\" gives \"1.2.3+b.5\"", "'+'"]),
        ("bad tag in tag_file", r#"{"tag_file": "t"}"#, &[("t", b"Bad Tag!\n")], None, None, &["tag_file \"t\" (", "gives \"Bad Tag!\"", "invalid character ' '"]),
        ("bad prefix", r#"{"tag_file": "t", "tag_prefix": "-"}"#, &[("t", b"1.0")], None, None, &["tag_prefix \"-\" with tag_file \"t\"", "gives \"-1.0\"", "must start with"]),
        ("too long", r#"{"tag_file": "t"}"#, &[("t", LONG)], None, None, &["tag_file \"t\"", "longer than 128"]),
        ("bad additional tag", r#"{"additional_tags": "x"}"#, &[("x", b"ok b@d")], None, None, &["additional_tags \"x\" (", "gives \"b@d\""]),
        ("bad prefixed additional tag", r#"{"additional_tags": "x", "tag_prefix": "."}"#, &[("x", b"ok")], None, None, &["tag_prefix \".\" with additional_tags \"x\"", "gives \".ok\""]),
        ("bad source.tag", "{}", NO_FILES, Some("a/b"), None, &["source.tag gives \"a/b\""]),
        ("bad variant", r#"{"version": "1.2.3"}"#, NO_FILES, None, Some("a b"), &["version \"1.2.3\" with source.variant \"a b\" gives \"1.2.3-a b\""]),
        ("variant that is no alias", r#"{"version": "1.2.3", "bump_aliases": true}"#, NO_FILES, None, Some("-x"), &["bump_aliases (for version \"1.2.3\" with source.variant \"-x\") gives \"-x\""]),
        ("variant and nothing else", "{}", NO_FILES, None, Some("lts"), &["no tag to push"]),
        ("empty additional_tags alone", r#"{"additional_tags": "x"}"#, &[("x", b" \n")], None, None, &["no tag to push"]),
        ("tag_prefix alone (R's error)", r#"{"tag_prefix": "v"}"#, NO_FILES, Some("dev"), None, &["tag_prefix can only be used when additional_tags are specified"]),
    ];
    for (name, params, files, source_tag, variant, expected) in cases {
        let case = Case::new(params, files).source(*source_tag, *variant);
        let error = match case.plan() {
            Ok(plan) => panic!("{name}: expected an error, got {:?}", plan.tags),
            Err(e) => format!("{e:#}"),
        };
        for part in *expected {
            assert!(error.contains(part), "{name}: {error:?} lacks {part:?}");
        }
    }
}

#[test]
fn bump_aliases() {
    #[rustfmt::skip]
    let cases: &[(&str, &[&str], Src, &[&str])] = &[
        // R's out_test.go table.
        ("no existing tags", &[], None, &["1.2.3", "latest", "1", "1.2"]),
        ("only older versions", &["1.2.2"], None, &["1.2.3", "latest", "1", "1.2"]),
        ("newer patch", &["1.2.4"], None, &["1.2.3"]),
        ("newer minor", &["1.3.0"], None, &["1.2.3", "1.2"]),
        ("newer major", &["2.0.0"], None, &["1.2.3", "1", "1.2"]),
        ("newer non-variant minor", &["1.3.0"], Some("lts"), &["1.2.3-lts", "lts", "1-lts", "1.2-lts"]),
        ("only a pre-release", &["2.0.0-rc.1"], None, &["1.2.3", "latest", "1", "1.2"]),
        ("only another variant", &["2.0.0-goodbye"], Some("hello"), &["1.2.3-hello", "hello", "1-hello", "1.2-hello"]),
        ("no variant tags", &[], Some("hello"), &["1.2.3-hello", "hello", "1-hello", "1.2-hello"]),
        ("newer major, same variant", &["2.0.0-hello"], Some("hello"), &["1.2.3-hello", "1-hello", "1.2-hello"]),
        ("older, same variant", &["1.2.2-hello"], Some("hello"), &["1.2.3-hello", "hello", "1-hello", "1.2-hello"]),
        ("newer patch, same variant", &["1.2.4-hello"], Some("hello"), &["1.2.3-hello"]),
        ("newer minor, same variant", &["1.3.0-hello"], Some("hello"), &["1.2.3-hello", "1.2-hello"]),
        // Beyond R's table.
        ("the same version again", &["1.2.3", "1.2", "1", "latest"], None, &["1.2.3", "latest", "1", "1.2"]),
        ("a newer major elsewhere", &["1.2.2", "1.1.9", "3.0.0", "0.9.0"], None, &["1.2.3", "1", "1.2"]),
        ("newer pre-releases", &["1.2.4-rc.1", "2.0.0-alpha"], None, &["1.2.3", "latest", "1", "1.2"]),
        ("variant pre-releases", &["1.2.4-rc.1-hello"], Some("hello"), &["1.2.3-hello", "hello", "1-hello", "1.2-hello"]),
        ("variants of another variant", &["1.2.4-php-hello", "1.2.4-xhello", "1.2.4--hello"], Some("hello"), &["1.2.3-hello", "hello", "1-hello", "1.2-hello"]),
        ("v-prefixed versions count", &["v1.2.4"], None, &["1.2.3"]),
        ("numeric-looking tags do not count", &["20240101", "1234", "2", "1.3", "01", "latest", "sha-1"], None, &["1.2.3", "latest", "1", "1.2"]),
        ("numeric-looking variant tags do not count", &["20240101-hello", "2-hello", "1.3-hello"], Some("hello"), &["1.2.3-hello", "hello", "1-hello", "1.2-hello"]),
        ("a higher number with leading zeros", &["01.02.04"], None, &["1.2.3"]),
    ];
    for (name, existing, variant, expected) in cases {
        let case = Case::new(r#"{"version": "1.2.3", "bump_aliases": true}"#, NO_FILES)
            .source(None, *variant);
        let plan = case.plan().unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(plan.needs_tag_list(), "{name}");
        let existing: Vec<String> = existing.iter().map(|t| t.to_string()).collect();
        let tags = plan
            .with_aliases(&existing)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(tags, *expected, "{name}");
    }
}

#[test]
fn aliases_go_after_the_version_and_are_deduplicated() {
    let case = Case::new(
        r#"{"version": "v1.2.3", "bump_aliases": true, "tag_as_latest": true,
            "additional_tags": "extra"}"#,
        &[("extra", b"extra 1 1.2.3")],
    )
    .source(Some("dev"), None);
    let plan = case.plan().unwrap();
    assert_eq!(plan.tags, ["dev", "1.2.3", "latest", "extra", "1"]);
    let tags = plan.with_aliases(&[]).unwrap();
    assert_eq!(tags, ["dev", "1.2.3", "latest", "1", "1.2", "extra"]);
}

#[test]
fn versions() {
    #[rustfmt::skip]
    let cases: &[(&str, Option<(&str, usize)>)] = &[
        ("1", Some(("1.0.0", 1))),
        ("1.2", Some(("1.2.0", 2))),
        ("1.2.3", Some(("1.2.3", 3))),
        ("v1.2.3", Some(("1.2.3", 3))),
        ("01.002.3", Some(("1.2.3", 3))),
        ("1.2.3-rc.1", Some(("1.2.3-rc.1", 3))),
        ("1.2.3-x-y.z--", Some(("1.2.3-x-y.z--", 3))),
        ("1-alpha+build.7", Some(("1.0.0-alpha+build.7", 1))),
        ("18446744073709551615.0.0", Some(("18446744073709551615.0.0", 3))),
        ("", None),
        ("v", None),
        ("V1.2.3", None),
        ("vv1", None),
        ("1.", None),
        (".1", None),
        ("1..2", None),
        ("1.2.3.4", None),
        ("1.2.3-", None),
        ("1.2.3-a..b", None),
        ("1.2.3-a_b", None),
        ("1.2.3+", None),
        ("1.2.x", None),
        ("-1.2.3", None),
        (" 1.2.3", None),
        ("18446744073709551616", None),
        ("latest", None),
    ];
    for (text, expected) in cases {
        let parsed = SemVer::parse(text).map(|v| (v.to_string(), v.parts));
        let expected = expected.map(|(s, parts)| (s.to_string(), parts));
        assert_eq!(parsed, expected, "{text:?}");
    }
}
