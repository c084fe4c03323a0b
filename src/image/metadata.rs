//! The small files `in` writes from an image config: `metadata.json` (env, user, cmd,
//! entrypoint, as D and R write them), `labels.json`, and a `docker inspect`-shaped
//! `docker_inspect.json`.

use anyhow::Context as _;
use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde_json::{json, Map, Value};

/// `{"env": [...], "user": "...", "cmd": [...], "entrypoint": [...]}`; absent fields are
/// empty (`[]`, `""`), never null.
pub fn metadata_json(config: &ImageConfiguration) -> Value {
    let c = config.config().as_ref();
    let list = |v: Option<&Vec<String>>| json!(v.cloned().unwrap_or_default());
    json!({
        "env": list(c.and_then(|c| c.env().as_ref())),
        "user": c.and_then(|c| c.user().clone()).unwrap_or_default(),
        "cmd": list(c.and_then(|c| c.cmd().as_ref())),
        "entrypoint": list(c.and_then(|c| c.entrypoint().as_ref())),
    })
}

/// The config's labels, sorted by key.
pub fn labels(config: &ImageConfiguration) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = config
        .config()
        .as_ref()
        .and_then(|c| c.labels().as_ref())
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    labels.sort();
    labels
}

/// R's `label_regex` / `annotation_regex` metadata entries: the config's labels whose key
/// `label_matches`, sorted by key, then the manifest's annotations whose key
/// `annotation_matches`, sorted by key; each as `(key, value)`, with no prefix (as R).
pub fn matching_entries(
    config: &ImageConfiguration,
    manifest: &ImageManifest,
    label_matches: &dyn Fn(&str) -> bool,
    annotation_matches: &dyn Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = labels(config)
        .into_iter()
        .filter(|(k, _)| label_matches(k))
        .collect();
    let mut annotations: Vec<(String, String)> = manifest
        .annotations()
        .iter()
        .flatten()
        .filter(|(k, _)| annotation_matches(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.sort();
    entries.extend(annotations);
    entries
}

/// `labels.json`: the labels as an object (`{}` when there are none).
pub fn labels_json(config: &ImageConfiguration) -> Value {
    Value::Object(
        labels(config)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// A one-element array shaped like `docker inspect` output, from the raw config (so fields
/// oci-spec does not model, such as `container_config` or `docker_version`, carry over).
pub fn docker_inspect(
    config_raw: &[u8],
    config_digest: &str,
    uncompressed_size: Option<u64>,
    repo_tag: &str,
    repo_digest: &str,
) -> anyhow::Result<Value> {
    let config: Map<String, Value> = serde_json::from_slice(config_raw)
        .context("parsing the image config for docker_inspect.json")?;
    let field = |name: &str| config.get(name).cloned().unwrap_or(Value::Null);
    let text = |name: &str| config.get(name).cloned().unwrap_or(json!(""));
    let diff_ids = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .cloned()
        .unwrap_or(json!([]));
    let mut inspect = json!({
        "Id": config_digest,
        "RepoTags": [repo_tag],
        "RepoDigests": [repo_digest],
        "Parent": "",
        "Comment": text("comment"),
        "Created": text("created"),
        "DockerVersion": text("docker_version"),
        "Author": text("author"),
        "Config": field("config"),
        "Architecture": text("architecture"),
        "Os": text("os"),
        "Size": uncompressed_size.unwrap_or(0),
        "GraphDriver": {"Data": null, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    });
    if let Some(container_config) = config.get("container_config") {
        inspect["ContainerConfig"] = container_config.clone();
    }
    if let Some(variant) = config.get("variant") {
        inspect["Variant"] = variant.clone();
    }
    Ok(json!([inspect]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z",
      "config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"User":"1000","Labels":{"b":"2","a":"1"}},
      "rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
      "docker_version":"24.0.0"}"#;

    fn config() -> ImageConfiguration {
        serde_json::from_str(CONFIG).unwrap()
    }

    #[test]
    fn metadata_and_labels() {
        let m = metadata_json(&config());
        assert_eq!(
            m,
            json!({"env": ["PATH=/bin"], "user": "1000", "cmd": ["/bin/sh"], "entrypoint": []})
        );
        assert_eq!(labels_json(&config()), json!({"a": "1", "b": "2"}));
        let bare: ImageConfiguration = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert_eq!(
            metadata_json(&bare),
            json!({"env": [], "user": "", "cmd": [], "entrypoint": []})
        );
        assert_eq!(labels_json(&bare), json!({}));
    }

    #[test]
    fn inspect_shape() {
        let v = docker_inspect(
            CONFIG.as_bytes(),
            "sha256:cfg",
            Some(42),
            "r/x:1",
            "r/x@sha256:m",
        )
        .unwrap();
        let i = &v[0];
        assert_eq!(i["Id"], "sha256:cfg");
        assert_eq!(i["RepoTags"], json!(["r/x:1"]));
        assert_eq!(i["Config"]["Cmd"], json!(["/bin/sh"]));
        assert_eq!(i["Architecture"], "amd64");
        assert_eq!(i["DockerVersion"], "24.0.0");
        assert_eq!(i["Size"], 42);
        assert_eq!(
            i["RootFS"]["Layers"][0],
            "sha256:1111111111111111111111111111111111111111111111111111111111111111"
        );
        assert!(docker_inspect(b"[]", "x", None, "a", "b").is_err());
    }
}
