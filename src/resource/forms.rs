//! Custom deserializers for the value forms D and R accept beyond serde's defaults: `null` as
//! the default, a tag as a string or a number, build arguments as text, `docker_config` as an
//! object or a string, `ca_certs` as `{domain, cert}` or PEM, `registry_mirror` as a URL or an
//! object.

use super::errors::split_position;
use super::{CaCert, DockerConfigJson, RegistryMirror, Version};
use crate::reference;
use crate::secret::Secret;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// `null` is the default, for options that are lists, maps or booleans.
pub(super) fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub(super) fn required_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if value.trim().is_empty() {
        return Err(de::Error::custom(
            "must not be empty; give an image such as `golang` or `registry.example.com/team/app`",
        ));
    }
    Ok(value)
}

/// A string or a number, kept as written; `""` and `null` count as unset.
pub(super) fn string_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(de::Error::custom(format!(
            "expected a string or a number, got {}",
            value_kind(&other)
        ))),
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

pub(super) fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match Option::<usize>::deserialize(d)? {
        Some(0) => Err(de::Error::custom("must be at least 1")),
        n => Ok(n),
    }
}

pub(super) fn digest<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    reference::validate_digest(&value).map_err(|e| de::Error::custom(e.reason))?;
    Ok(value)
}

/// A version as Concourse sends it; `null` and `{}` (D's empty version) are no version.
pub(super) fn optional_version<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Version>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawVersion {
        #[serde(default, deserialize_with = "optional_digest")]
        digest: Option<String>,
        #[serde(default)]
        tag: Option<String>,
    }
    match Option::<RawVersion>::deserialize(d)? {
        None => Ok(None),
        Some(RawVersion {
            digest: Some(digest),
            tag,
        }) => Ok(Some(Version { digest, tag })),
        Some(RawVersion {
            digest: None,
            tag: None,
        }) => Ok(None),
        Some(RawVersion { digest: None, .. }) => Err(de::Error::missing_field("digest")),
    }
}

fn optional_digest<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    digest(d).map(Some)
}

pub(super) fn format<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    match value.as_deref() {
        None | Some("rootfs" | "oci" | "oci-layout") => Ok(value),
        Some(other) => Err(de::Error::custom(format!(
            "unknown format {other:?}; use `rootfs` (the default), `oci` or `oci-layout`"
        ))),
    }
}

/// A build argument's value: a string, number or boolean, as text.
struct BuildArg(String);

impl<'de> Deserialize<'de> for BuildArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(BuildArg(s)),
            Value::Number(n) => Ok(BuildArg(n.to_string())),
            Value::Bool(b) => Ok(BuildArg(b.to_string())),
            other => Err(de::Error::custom(format!(
                "expected a string, number or boolean, got {}",
                value_kind(&other)
            ))),
        }
    }
}

pub(super) fn build_args<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, BuildArg> = nullable(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k, v.0)).collect())
}

impl<'de> Deserialize<'de> for DockerConfigJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let object = match Value::deserialize(d)? {
            Value::Object(object) => object,
            Value::String(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(object)) => object,
                Ok(other) => {
                    return Err(de::Error::custom(format!(
                        "the string must hold a JSON object, not {}",
                        value_kind(&other)
                    )))
                }
                Err(e) => {
                    let (message, position) = split_position(&e);
                    return Err(de::Error::custom(format!(
                        "the string is not valid JSON: {message} ({position} of the string)"
                    )));
                }
            },
            other => {
                return Err(de::Error::custom(format!(
                    "expected an object or a string holding one, got {}",
                    value_kind(&other)
                )))
            }
        };
        Ok(DockerConfigJson::new(object))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaCert {
    domain: String,
    cert: String,
}

impl<'de> Deserialize<'de> for CaCert {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> Visitor<'de> for Form {
            type Value = CaCert;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a PEM string or an object with `domain` and `cert`")
            }
            fn visit_str<E: de::Error>(self, pem: &str) -> Result<CaCert, E> {
                if pem.trim().is_empty() {
                    return Err(E::custom("the certificate is empty"));
                }
                Ok(CaCert {
                    domain: None,
                    cert: pem.to_string(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CaCert, A::Error> {
                let raw = RawCaCert::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if raw.domain.trim().is_empty() || raw.cert.trim().is_empty() {
                    return Err(de::Error::custom("`domain` and `cert` must not be empty"));
                }
                Ok(CaCert {
                    domain: Some(raw.domain),
                    cert: raw.cert,
                })
            }
        }
        d.deserialize_any(Form)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirror {
    host: String,
    username: Option<String>,
    password: Option<Secret>,
}

impl<'de> Deserialize<'de> for RegistryMirror {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> Visitor<'de> for Form {
            type Value = RegistryMirror;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a URL string or an object with `host`, `username` and `password`")
            }
            fn visit_str<E: de::Error>(self, url: &str) -> Result<RegistryMirror, E> {
                mirror_from_url(url).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RegistryMirror, A::Error> {
                let raw = RawMirror::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let host = raw.host.trim();
                if host.is_empty() || host.contains('/') {
                    return Err(de::Error::custom(
                        "`host` must be `host[:port]`, with no scheme or path",
                    ));
                }
                Ok(RegistryMirror {
                    scheme: None,
                    host: host.to_string(),
                    username: raw.username,
                    password: raw.password,
                })
            }
        }
        d.deserialize_any(Form)
    }
}

/// D's mirror URL: `http(s)://host[:port][/]`. Errors never repeat the URL (it may hold
/// credentials).
fn mirror_from_url(text: &str) -> Result<RegistryMirror, String> {
    let usage = "give a URL such as `https://mirror.example.com:5000`";
    if !text.contains("://") {
        return Err(format!("the URL has no `http://` or `https://`; {usage}"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("not a valid URL ({e}); {usage}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported scheme `{}`; {usage}", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed; use the form \
                    {host, username, password}"
            .into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "a mirror URL has no path, query or fragment; {usage}"
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("the URL has no host; {usage}"))?;
    Ok(RegistryMirror {
        scheme: Some(url.scheme().to_string()),
        host: match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        },
        username: None,
        password: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::source;
    use crate::resource::Source;

    #[test]
    fn source_forms() {
        assert_eq!(source(r#""tag": 1.10"#).tag.as_deref(), Some("1.10"));
        assert_eq!(source(r#""tag": 7"#).tag.as_deref(), Some("7"));
        assert_eq!(
            source(r#""tag": "1.7-alpine""#).tag.as_deref(),
            Some("1.7-alpine")
        );
        assert_eq!(source(r#""tag": """#).tag, None);
        assert_eq!(source(r#""tag": null"#).tag, None);
        let nulls = source(
            r#""insecure_registries": null, "insecure": null, "ca_certs": null, "debug": null"#,
        );
        assert_eq!(
            nulls,
            Source {
                repository: "golang".into(),
                ..Source::default()
            }
        );
        let config = r#"{"auths": {"r.io": {"auth": "c2VjcmV0"}}}"#;
        let from_string = source(&format!(r#""docker_config": {:?}"#, config));
        assert_eq!(
            from_string,
            source(&format!(r#""docker_config": {config}"#))
        );
        let shown = format!("{from_string:?}");
        assert!(
            shown.contains(r#"DockerConfigJson { keys: ["auths"], .. }"#),
            "{shown}"
        );
        let s = source(r#""ca_certs": [{"domain": "r:5000", "cert": "PEM1"}, "PEM2"]"#);
        assert_eq!(
            s.ca_certs[0],
            CaCert {
                domain: Some("r:5000".into()),
                cert: "PEM1".into()
            }
        );
        assert_eq!(
            s.ca_certs[1],
            CaCert {
                domain: None,
                cert: "PEM2".into()
            }
        );
        let mirror =
            |value: &str| source(&format!(r#""registry_mirror": {value}"#)).registry_mirror;
        let m = mirror(r#""https://mirror.example.com:5000""#).unwrap_or_else(|| panic!());
        assert_eq!(
            (m.scheme.as_deref(), m.host.as_str()),
            (Some("https"), "mirror.example.com:5000")
        );
        let m = mirror(r#""http://10.0.0.1/""#).unwrap_or_else(|| panic!());
        assert_eq!(
            (m.scheme.as_deref(), m.host.as_str()),
            (Some("http"), "10.0.0.1")
        );
        assert_eq!(
            mirror(r#""http://[::1]:5000""#).map(|m| m.host).as_deref(),
            Some("[::1]:5000")
        );
        let m = mirror(r#"{"host": "mirror:5000", "username": "u", "password": "p"}"#)
            .unwrap_or_else(|| panic!());
        assert_eq!(
            (m.scheme, m.host.as_str(), m.username.as_deref()),
            (None, "mirror:5000", Some("u"))
        );
        assert_eq!(m.password.as_ref().map(Secret::expose), Some("p"));
    }
}
