//! The files in `assets/` that the resource image copies to `/etc/containers/` (see the
//! `Dockerfile`), compiled in: each build's private configuration is written from them, so
//! the tests run with what the image ships. [`set`] fills in a build's own values.

use anyhow::bail;

/// `assets/storage.conf`: the vfs driver; `graphroot` and `runroot` are set per build.
pub const STORAGE_CONF: &str = include_str!("../../assets/storage.conf");

/// `assets/containers.conf`: `default_ulimits` and `network_config_dir` are set per build.
pub const CONTAINERS_CONF: &str = include_str!("../../assets/containers.conf");

/// `assets/policy.json`: accept any image (signatures are checked by `verify`, not buildah).
pub const POLICY_JSON: &str = include_str!("../../assets/policy.json");

/// `assets/registries.conf`: the top-level settings; a build adds its `[[registry]]` tables.
pub const REGISTRIES_CONF: &str = include_str!("../../assets/registries.conf");

/// `file` (named `name`, for errors) with the value of each `key = ...` line of `values`
/// replaced by the given TOML value. Every key must be in the file exactly once: an asset
/// that lost a key is a bug, not something to write around.
pub fn set(name: &str, file: &str, values: &[(&str, String)]) -> anyhow::Result<String> {
    let mut found = vec![0usize; values.len()];
    let mut out = String::with_capacity(file.len());
    for line in file.lines() {
        let key = line.split('=').next().unwrap_or_default().trim();
        let matched = (!line.trim_start().starts_with('#') && line.contains('='))
            .then(|| values.iter().position(|(k, _)| *k == key))
            .flatten();
        match matched {
            Some(i) => {
                found[i] += 1;
                out.push_str(&format!("{key} = {}", values[i].1));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for ((key, _), count) in values.iter().zip(found) {
        if count != 1 {
            bail!("internal: assets/{name} has {count} `{key} =` lines, expected one");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_each_key_once_and_keeps_the_rest() {
        let file = "# graphroot = \"no\"\n[storage]\ndriver = \"vfs\"\ngraphroot = \"/a\"\n";
        let set_to = [("graphroot", "\"/b\"".to_string())];
        assert_eq!(
            set("x.conf", file, &set_to).ok().as_deref(),
            Some("# graphroot = \"no\"\n[storage]\ndriver = \"vfs\"\ngraphroot = \"/b\"\n")
        );
        let missing = set("x.conf", file, &[("runroot", "\"/r\"".to_string())]);
        assert_eq!(
            missing.map_err(|e| e.to_string()),
            Err("internal: assets/x.conf has 0 `runroot =` lines, expected one".to_string())
        );
    }

    #[test]
    fn the_assets_have_the_keys_a_build_sets() {
        let path = "\"/p\"".to_string();
        for (name, file, keys) in [
            ("storage.conf", STORAGE_CONF, &["graphroot", "runroot"][..]),
            (
                "containers.conf",
                CONTAINERS_CONF,
                &["default_ulimits", "network_config_dir"][..],
            ),
        ] {
            let values: Vec<(&str, String)> = keys.iter().map(|k| (*k, path.clone())).collect();
            assert!(set(name, file, &values).is_ok(), "{name}");
        }
        assert!(CONTAINERS_CONF.contains("network_backend = \"netavark\""));
        let policy: serde_json::Value = serde_json::from_str(POLICY_JSON).unwrap_or_default();
        assert_eq!(policy["default"][0]["type"], "insecureAcceptAnything");
        assert!(REGISTRIES_CONF.contains("unqualified-search-registries = [\"docker.io\"]"));
    }
}
