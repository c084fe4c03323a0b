//! Property tests over every parser of input we do not control: references, manifests,
//! indexes and configs, `WWW-Authenticate` challenges, `docker_config` (config.json), and
//! the tar applier (random tar streams: never a panic, never a byte outside `rootfs/`).
//! Each property runs on generated input shaped like the real thing and on noise.

use proptest::prelude::*;
use serde_json::{json, Value};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9:./+_-]{0,20}".prop_map(Value::from),
        Just(json!(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(field_name(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names a manifest, config or config.json has, and some others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("schemaVersion".to_string()),
        Just("mediaType".to_string()),
        Just("manifests".to_string()),
        Just("layers".to_string()),
        Just("config".to_string()),
        Just("digest".to_string()),
        Just("size".to_string()),
        Just("platform".to_string()),
        Just("rootfs".to_string()),
        Just("diff_ids".to_string()),
        Just("auths".to_string()),
        Just("auth".to_string()),
        Just("credHelpers".to_string()),
        Just("credsStore".to_string()),
        Just("identitytoken".to_string()),
        "[a-z]{1,8}",
    ]
}

const MEDIA_TYPES: [&str; 6] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/json",
    "",
];

proptest! {
    #[test]
    fn references_never_panic_and_round_trip(input in "\\PC{0,80}") {
        if let Ok(reference) = crate::reference::Reference::parse(&input) {
            // The normalised form parses to itself (`a` shows as `docker.io/library/a:latest`).
            let shown = reference.to_string();
            let again = crate::reference::Reference::parse(&shown).map(|r| r.to_string());
            prop_assert_eq!(again.ok(), Some(shown));
        }
    }

    #[test]
    fn shaped_references_parse_and_round_trip(
        registry in prop::option::of("[a-z]{1,8}(\\.[a-z]{1,5})?(:[0-9]{2,5})?"),
        path in "[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?(/[a-z0-9]{1,6}){0,3}",
        tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        digest in prop::option::of("[0-9a-f]{64}"),
    ) {
        let mut input = match &registry {
            Some(r) if r.contains(['.', ':']) => format!("{r}/{path}"),
            _ => path.clone(),
        };
        if let Some(tag) = &tag {
            input.push(':');
            input.push_str(tag);
        }
        if let Some(hex) = &digest {
            input.push_str("@sha256:");
            input.push_str(hex);
        }
        let reference = crate::reference::Reference::parse(&input);
        prop_assert!(reference.is_ok(), "{input}: {reference:?}");
        if let Ok(reference) = reference {
            prop_assert_eq!(reference.tag(), tag.as_deref());
            let shown = reference.to_string();
            let again = crate::reference::Reference::parse(&shown).map(|r| r.to_string());
            prop_assert_eq!(again.ok(), Some(shown));
        }
    }

    #[test]
    fn manifests_and_configs_never_panic(
        value in json_value(),
        media_type in prop::sample::select(MEDIA_TYPES.to_vec()),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        let _ = crate::image::manifest::parse(media_type, &bytes);
        let _ = crate::image::manifest::parse(media_type, &noise);
        let _ = crate::image::manifest::parse_config(&bytes);
        let _ = crate::image::manifest::parse_config(&noise);
    }

    #[test]
    fn shaped_manifests_never_panic(
        layers in prop::collection::vec((json_value(), any::<i64>()), 0..4),
        media_type in prop::sample::select(MEDIA_TYPES.to_vec()),
        index in any::<bool>(),
    ) {
        let descriptors: Vec<Value> = layers
            .into_iter()
            .map(|(digest, size)| json!({ "mediaType": media_type, "digest": digest, "size": size }))
            .collect();
        let body = if index {
            json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": descriptors })
        } else {
            json!({ "schemaVersion": 2, "mediaType": media_type, "config": descriptors.first(), "layers": descriptors })
        };
        let _ = crate::image::manifest::parse(media_type, &serde_json::to_vec(&body).unwrap_or_default());
    }

    #[test]
    fn challenges_never_panic(header in "\\PC{0,120}") {
        let _ = crate::registry::challenge::parse(&header);
    }

    #[test]
    fn shaped_challenges_keep_their_parameters(
        realm in "[a-zA-Z0-9:/._-]{1,30}",
        service in "[a-zA-Z0-9 ,=._-]{0,20}",
        bearer in any::<bool>(),
    ) {
        let scheme = if bearer { "Bearer" } else { "Basic" };
        let header = format!("{scheme} realm=\"{realm}\",service=\"{service}\"");
        let parsed = crate::registry::challenge::parse(&header);
        prop_assert_eq!(parsed.len(), 1, "{}", header);
        prop_assert_eq!(parsed[0].param("realm"), Some(realm.as_str()));
        prop_assert_eq!(parsed[0].param("service"), Some(service.as_str()));
    }

    #[test]
    fn docker_configs_never_panic_nor_show_secrets(
        value in json_value(),
        secret in "[A-Za-z0-9]{12,20}",
        key in "[a-z]{1,8}(\\.[a-z]{2,4})?(:[0-9]{2,4})?",
        form in 0..4u8,
    ) {
        if let Value::Object(map) = &value {
            let _ = crate::credentials::docker_config::DockerConfig::parse(map);
        }
        // A config carrying `secret` somewhere, sometimes malformed around it.
        let entry = match form {
            0 => json!({ "auth": secret }),
            1 => json!({ "auth": base64_of(&format!("user{secret}")) }),
            2 => json!({ "username": 7, "password": secret }),
            _ => json!({ "identitytoken": secret, "auth": [secret] }),
        };
        let config = json!({ "auths": { key: entry } });
        if let Value::Object(map) = &config {
            match crate::credentials::docker_config::DockerConfig::parse(map) {
                Ok(parsed) => {
                    let shown = format!("{parsed:?}");
                    prop_assert!(!shown.contains(&secret), "{}", shown);
                }
                Err(e) => {
                    let shown = format!("{e:#}");
                    prop_assert!(!shown.contains(&secret), "{}", shown);
                }
            }
        }
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
