//! `cache: true` across puts (issue 12): with buildah 1.39 every step of a Dockerfile with
//! `ARG`, `ENV`, `COPY`, several stages and `target_name` is reused from the cache images, and
//! a changed build argument reruns exactly the steps after its `ARG`. Asserted on the layer
//! digests the registry holds; every `RUN` writes a random UUID, so a step that ran again has
//! a new digest.

use serde_json::{json, Value};

use crate::build::{built, file_in, layers, put_build, registry_with_base};
use crate::get::source_for;
use crate::put::{merged, work_dir, write_file};
use crate::util::oracle::repository_tags;
use crate::util::*;

/// Stage `deps` (ARG before RUN), then `app`: ENV, COPY, RUN, ARG NUM, RUN, COPY --from,
/// RUN; stage `unused` must never run (`target_name: app`).
fn dockerfile(base: &str) -> String {
    format!(
        "FROM {base} AS deps\n\
         ARG DEPS_VERSION=0\n\
         RUN echo \"deps $DEPS_VERSION $(cat /proc/sys/kernel/random/uuid)\" > /deps\n\
         FROM {base} AS app\n\
         ENV APP_HOME=/app\n\
         COPY input.txt /app/input.txt\n\
         RUN cat /proc/sys/kernel/random/uuid > /app/stamp1\n\
         ARG NUM=0\n\
         RUN echo \"num $NUM $(cat /proc/sys/kernel/random/uuid)\" > /app/stamp2\n\
         COPY --from=deps /deps /app/deps\n\
         RUN cat /proc/sys/kernel/random/uuid > /app/stamp3\n\
         FROM {base} AS unused\n\
         RUN echo stage-unused-ran > /unused\n"
    )
}

fn is_cache_tag(tag: &str) -> bool {
    tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit())
}

fn params(num: u32, cache_repository: Option<&str>) -> Value {
    let mut params = json!({
        "build": "src",
        "target_name": "app",
        "cache": true,
        "build_args": {"NUM": num, "DEPS_VERSION": 1},
    });
    if let Some(repository) = cache_repository {
        params["cache_repository"] = json!(repository);
    }
    params
}

fn cached_builds_reuse_every_step_and_a_changed_arg_reruns_only_what_follows(
    cache_registry: Option<&Registry>,
) {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    write_file(work.path(), "src/input.txt", "input\n");
    write_file(work.path(), "src/Dockerfile", dockerfile(&base));
    let source = merged(&source_for(&registry, "built/args"), json!({"tag": "1"}));
    let cache_repository = cache_registry.map(|r| format!("{}/cache/args", r.host()));
    let put = |num| {
        put_build(
            work.path(),
            &source,
            params(num, cache_repository.as_deref()),
            &[],
        )
    };
    let files = ["app/stamp1", "app/stamp2", "app/stamp3", "app/deps"];

    let first = put(1);
    let first_digest = built(&first).digest;
    let first_layers = layers(&registry, "built/args:1");
    // base, COPY, RUN stamp1, RUN stamp2, COPY --from, RUN stamp3 (ENV and ARG add none).
    assert_eq!(first_layers.len(), 6, "{first_layers:?}\n{}", first.stderr);
    assert!(
        !first.stderr.contains("stage-unused-ran"),
        "{}",
        first.stderr
    );
    let first_files = file_in(&registry, "built/args:1", &files);

    let second = put(1);
    assert_eq!(
        layers(&registry, "built/args:1"),
        first_layers,
        "a rebuild with cache pushes the same layers; stderr:\n{}",
        second.stderr
    );
    assert_eq!(built(&second).digest, first_digest, "and the same image");
    for step in ["ARG NUM=0", "RUN echo \"num $NUM", "RUN echo \"deps"] {
        let mut after = second.stderr.lines().skip_while(|l| !l.contains(step));
        let reused = after
            .nth(1)
            .into_iter()
            .chain(after)
            .take_while(|l| !l.contains("STEP "))
            .any(|l| l.contains("Using cache"));
        assert!(
            reused,
            "{step} was not taken from the cache:\n{}",
            second.stderr
        );
    }

    // NUM changes: what comes before `ARG NUM` (and the deps stage) is reused, what follows
    // it runs again.
    let third = put(2);
    built(&third);
    let third_layers = layers(&registry, "built/args:1");
    assert_eq!(
        third_layers[..3],
        first_layers[..3],
        "base, COPY and the RUN before ARG NUM are reused; stderr:\n{}",
        third.stderr
    );
    assert_ne!(
        third_layers[3], first_layers[3],
        "the RUN after ARG NUM ran again"
    );
    assert_ne!(third_layers[5], first_layers[5], "and so did the last RUN");
    let third_files = file_in(&registry, "built/args:1", &files);
    assert_eq!(third_files[0], first_files[0]);
    assert_eq!(third_files[3], first_files[3], "the deps stage is reused");
    assert_ne!(third_files[1], first_files[1]);
    assert!(
        third_files[1]
            .as_deref()
            .is_some_and(|s| s.starts_with("num 2 ")),
        "{third_files:?}"
    );

    // Where the cache images are: 64-hex tags in the pushed repository, or only in
    // cache_repository when it is given.
    let own_tags = repository_tags(&registry, "built/args").unwrap_or_default();
    match cache_registry {
        None => assert!(own_tags.iter().any(|t| is_cache_tag(t)), "{own_tags:?}"),
        Some(cache) => {
            assert_eq!(own_tags, ["1"], "no cache images beside the image");
            let tags = repository_tags(cache, "cache/args").unwrap_or_default();
            assert!(
                tags.iter().all(|t| is_cache_tag(t)) && !tags.is_empty(),
                "{tags:?}"
            );
        }
    }
}

#[test]
fn build_cache_with_args_stages_and_target_reuses_every_step_across_puts() {
    cached_builds_reuse_every_step_and_a_changed_arg_reruns_only_what_follows(None);
}

#[test]
fn build_cache_repository_on_another_registry_holds_the_cache_images() {
    let cache = Registry::start(RegistryConfig::new());
    cached_builds_reuse_every_step_and_a_changed_arg_reruns_only_what_follows(Some(&cache));
}

#[test]
fn build_cache_repository_without_cache_or_with_a_tag_is_an_error() {
    let (registry, _) = registry_with_base();
    let work = work_dir();
    write_file(work.path(), "src/Dockerfile", "FROM scratch\n");
    let source = source_for(&registry, "built/bad-cache");
    for (params, expected) in [
        (
            json!({"build": "src", "cache_repository": "x/y"}),
            "params.cache_repository (x/y) is only used with params.cache: true",
        ),
        (
            json!({"build": "src", "cache": true, "cache_repository": "x/y:1"}),
            "params.cache_repository \"x/y:1\": give a repository without a tag",
        ),
    ] {
        let out = put_build(work.path(), &source, params, &[]);
        let stderr = out.expect_failure();
        assert!(stderr.contains(expected), "{stderr}");
    }
}
