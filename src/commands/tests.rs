//! The commands in-process: request bytes, arguments and a captured log in, the response
//! (or error) out; registries are the in-process test server, so these need no registry.
use super::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;

#[test]
fn repository_as_written_less_its_tag_or_digest() {
    let digest = format!("sha256:{}", "a".repeat(64));
    for (written, expected) in [
        ("golang", "golang"),
        ("golang:1.7", "golang"),
        ("localhost:5000/team/app", "localhost:5000/team/app"),
        ("localhost:5000/team/app:2.5", "localhost:5000/team/app"),
        (
            &*format!("registry.local/app@{digest}"),
            "registry.local/app",
        ),
        (
            &*format!("registry.local:443/app:1@{digest}"),
            "registry.local:443/app",
        ),
    ] {
        assert_eq!(without_tag_or_digest(written), expected, "{written}");
    }
}

#[test]
fn non_utf8_arguments_are_errors() {
    let good = arguments([OsString::from("/tmp/dest")].into_iter());
    assert_eq!(good.ok(), Some(vec!["/tmp/dest".to_string()]));
    let bad = OsString::from_vec(b"/tmp/d\xffst".to_vec());
    let e = arguments([bad].into_iter()).map_err(|e| e.to_string());
    assert_eq!(
        e.err().as_deref(),
        Some(
            "argument 1 (/tmp/d\u{FFFD}st) is not valid UTF-8; give the directory by a UTF-8 path"
        )
    );
}

mod in_process {
    use crate::commands::{check, get, put, run, Executable};
    use crate::log::Captured;
    use crate::registry::test_server::{Reply, Request, TestServer};
    use serde_json::{json, Value};

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    fn digest_of(tag: &str) -> String {
        crate::digest::sha256(format!("manifest of {tag}").as_bytes())
    }

    /// An open registry holding `tags` of `app` (each with its own manifest digest).
    async fn registry(tags: &'static [&'static str]) -> anyhow::Result<TestServer> {
        Ok(TestServer::start(move |request: &Request, _: &str| {
            let path = request.path();
            if path == "/v2/" {
                return Reply::status(200);
            }
            if path == "/v2/app/tags/list" {
                return Reply::json(&json!({"name": "app", "tags": tags}));
            }
            match path.strip_prefix("/v2/app/manifests/") {
                Some(tag) if tags.contains(&tag) => {
                    let body = format!("manifest of {tag}");
                    Reply::status(200)
                        .header("content-type", OCI_MANIFEST)
                        .header("docker-content-digest", digest_of(tag))
                        .header("content-length", body.len().to_string())
                        .body(body)
                }
                _ => Reply::status(404),
            }
        })
        .await?)
    }

    fn request(server: &TestServer, source: Value, rest: Value) -> Vec<u8> {
        let mut source = source;
        source["repository"] = json!(format!("{}/app", server.host()));
        let mut request = json!({ "source": source });
        if let (Some(request), Some(rest)) = (request.as_object_mut(), rest.as_object()) {
            request.extend(rest.clone());
        }
        request.to_string().into_bytes()
    }

    #[test]
    fn an_empty_request_is_an_error_before_anything_runs() {
        let (log, captured) = Captured::log();
        for executable in [Executable::Check, Executable::In, Executable::Out] {
            let e =
                run(executable, b"", &["/nonexistent".into()], &log).map_err(|e| format!("{e:#}"));
            assert!(
                e.as_ref().is_err_and(|e| e.starts_with("stdin was empty")),
                "{executable:?}: {e:?}"
            );
        }
        assert_eq!(captured.text(), "");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn check_pinned_tag_reports_its_digest_and_notes_ignored_options() -> anyhow::Result<()> {
        let server = registry(&["1.0"]).await?;
        let (log, captured) = Captured::log();
        let input = request(
            &server,
            json!({"tag": "1.0", "pre_releases": true}),
            json!({}),
        );
        let versions = check::run(&input, &log).await?;
        assert_eq!(
            versions,
            json!([{"digest": digest_of("1.0"), "tag": "1.0"}])
        );
        assert_eq!(
            captured.text(),
            "note: `pre_releases` is ignored by check when a tag is given (as in R): the tag is checked\n"
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn check_of_a_missing_tag_is_no_versions_and_says_so() -> anyhow::Result<()> {
        let server = registry(&[]).await?;
        let (log, captured) = Captured::log();
        let input = request(&server, json!({"tag": "2.0"}), json!({}));
        assert_eq!(check::run(&input, &log).await?, json!([]));
        let text = captured.text();
        assert!(
            text.ends_with("/app does not exist (yet): no versions\n"),
            "{text}"
        );
        assert!(text.starts_with("2.0 of "), "{text}");
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn check_without_a_tag_lists_semver_tags_in_order() -> anyhow::Result<()> {
        let server = registry(&["1.1.0", "latest", "1.0.0", "1.2.0-rc.1"]).await?;
        let (log, _) = Captured::log();
        let input = request(&server, json!({}), json!({}));
        let versions = check::run(&input, &log).await?;
        // Oldest first, the pre-release left out, then `latest` (its own digest here).
        let all = json!([
            {"digest": digest_of("1.0.0"), "tag": "1.0.0"},
            {"digest": digest_of("1.1.0"), "tag": "1.1.0"},
            {"digest": digest_of("latest"), "tag": "latest"},
        ]);
        assert_eq!(versions, all);
        let given = json!({"version": {"digest": digest_of("1.1.0"), "tag": "1.1.0"}});
        let versions = check::run(&request(&server, json!({}), given), &log).await?;
        assert_eq!(versions, json!(all.as_array().map(|a| &a[1..])));
        Ok(())
    }

    /// The registry client's notes (a retry, the `debug` trace) and the credentials line go
    /// to the command's log, not to the process's stderr.
    #[tokio::test(flavor = "multi_thread")]
    async fn check_says_retries_and_its_debug_trace_on_its_log() -> anyhow::Result<()> {
        let busy = std::sync::atomic::AtomicBool::new(true);
        let server = TestServer::start(move |request: &Request, _: &str| match request.path() {
            "/v2/" => Reply::status(200),
            "/v2/app/tags/list" if busy.swap(false, std::sync::atomic::Ordering::SeqCst) => {
                Reply::status(503).header("retry-after", "0")
            }
            "/v2/app/tags/list" => Reply::json(&json!({"name": "app", "tags": []})),
            _ => Reply::status(404),
        })
        .await?;
        let (log, captured) = Captured::log();
        let input = request(&server, json!({"debug": true}), json!({}));
        assert_eq!(check::run(&input, &log).await?, json!([]));
        let text = captured.text();
        let host = server.host();
        assert!(
            text.contains(&format!("credentials for {host}: none (anonymous)\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("debug: --> GET http://{host}/v2/app/tags/list")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "debug: <-- 503 GET http://{host}/v2/app/tags/list"
            )),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("retrying GET http://{host}/v2/app/tags/list"))),
            "{text}"
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn check_refuses_a_bad_pattern_before_any_request() -> anyhow::Result<()> {
        let server = registry(&["1.0"]).await?;
        let (log, _) = Captured::log();
        for (source, option) in [
            (json!({"tag_regex": "v(1"}), "source.tag_regex"),
            (
                json!({"semver_constraint": ">= one"}),
                "source.semver_constraint",
            ),
        ] {
            let e = check::run(&request(&server, source, json!({})), &log)
                .await
                .map_err(|e| format!("{e:#}"));
            assert!(e.as_ref().is_err_and(|e| e.contains(option)), "{e:?}");
        }
        assert_eq!(server.requests(), Vec::new());
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn get_skip_download_writes_the_reference_files_only() -> anyhow::Result<()> {
        let server = registry(&[]).await?;
        let (log, _) = Captured::log();
        let dest = tempfile::tempdir()?;
        let digest = digest_of("1.0");
        let input = request(
            &server,
            json!({"tag": "1.0"}),
            json!({"version": {"digest": digest}, "params": {"skip_download": true}}),
        );
        let args = [dest.path().display().to_string()];
        let response = get::run(&input, &args, &log).await?;
        let repository = format!("{}/app", server.host());
        assert_eq!(response["version"], json!({"digest": digest, "tag": "1.0"}));
        assert_eq!(
            response["metadata"],
            json!([{"name": "repository", "value": repository}, {"name": "tag", "value": "1.0"}])
        );
        let mut files: Vec<String> = std::fs::read_dir(dest.path())?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        files.sort();
        assert_eq!(files, ["digest", "repository", "tag"]);
        assert_eq!(std::fs::read_to_string(dest.path().join("digest"))?, digest);
        assert_eq!(
            std::fs::read_to_string(dest.path().join("repository"))?,
            repository
        );
        assert_eq!(server.requests(), Vec::new(), "nothing is fetched");
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_get_leaves_nothing_behind() -> anyhow::Result<()> {
        let server = registry(&[]).await?;
        let (log, _) = Captured::log();
        let dest = tempfile::tempdir()?;
        let input = request(
            &server,
            json!({}),
            json!({"version": {"digest": digest_of("gone")}}),
        );
        let args = [dest.path().display().to_string()];
        let e = get::run(&input, &args, &log)
            .await
            .map_err(|e| format!("{e:#}"));
        assert!(e.is_err(), "{e:?}");
        assert_eq!(std::fs::read_dir(dest.path())?.count(), 0, "{e:?}");
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn get_needs_its_destination() -> anyhow::Result<()> {
        let (log, _) = Captured::log();
        let e = get::run(br#"{"source": {"repository": "app"}}"#, &[], &log)
            .await
            .map_err(|e| e.to_string());
        assert_eq!(
            e.err().as_deref(),
            Some("`in` needs the destination directory as its first argument")
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn put_refuses_requests_without_one_clear_source() -> anyhow::Result<()> {
        let server = registry(&[]).await?;
        let (log, _) = Captured::log();
        let dir = tempfile::tempdir()?;
        let args = [dir.path().display().to_string()];
        for (params, message) in [
            (json!({}), "no image to push: set one of load, build, load_file, import_file, pull_repository, image in params (or images, one image per platform)"),
            (json!({"images": ["a.tar"], "load_file": "image.tar", "pull_repository": "x"}), "params.images cannot be combined with params.load_file, params.pull_repository: images pushes its own multi-platform index; give one image source"),
            (json!({"load_file": "image.tar", "load_tag": "1"}), "params.load_tag is set without params.load_repository; give both (or neither, for an archive holding one image)"),
        ] {
            let input = request(&server, json!({"tag": "1"}), json!({ "params": params }));
            let e = put::run(&input, &args, &log).await.map_err(|e| format!("{e:#}"));
            assert_eq!(e.err().as_deref(), Some(message));
        }
        let mut input: Value = serde_json::from_slice(&request(
            &server,
            json!({}),
            json!({"params": {"image": "x"}}),
        ))?;
        input["source"]["repository"] = json!(format!("{}/app@{}", server.host(), digest_of("1")));
        let e = put::run(input.to_string().as_bytes(), &args, &log)
            .await
            .map_err(|e| format!("{e:#}"));
        assert!(
            e.as_ref().is_err_and(|e| e.contains("names a digest")),
            "{e:?}"
        );
        assert_eq!(server.requests(), Vec::new());
        Ok(())
    }
}
