//! The requests `check`, `in` and `out` read, the version they carry, and which command runs.

use super::forms::{digest, nullable, optional_version};
use super::{GetParams, PutParams, Source};
use serde::{Deserialize, Serialize};

/// The request `check` reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The resource's configuration.
    pub source: Source,
    /// The last version emitted, if any (`{}`, as D sends it, is none).
    #[serde(default, deserialize_with = "optional_version")]
    pub version: Option<Version>,
}

/// The request `in` reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetRequest {
    /// The resource's configuration.
    pub source: Source,
    /// The version to fetch; `{}` (D sends it) means none: the source's tag as it is now.
    #[serde(deserialize_with = "optional_version")]
    pub version: Option<Version>,
    /// The step's `params` (default: none).
    #[serde(default, deserialize_with = "nullable")]
    pub params: GetParams,
}

/// The request `out` reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutRequest {
    /// The resource's configuration.
    pub source: Source,
    /// The step's `params` (default: none).
    #[serde(default, deserialize_with = "nullable")]
    pub params: PutParams,
}

/// A version: the manifest (or index) digest and, from R, the tag it was found under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// `sha256:...`.
    #[serde(deserialize_with = "digest")]
    pub digest: String,
    /// The tag; absent in D's versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The command that is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `check`.
    Check,
    /// `in`.
    Get,
    /// `out`.
    Put,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::parse_request;
    use crate::resource::tests::{with_source, DIGEST};

    #[test]
    fn versions() {
        let check = |version: &str| {
            let text = format!(r#"{{"source": {{"repository": "x"}}, "version": {version}}}"#);
            match parse_request::<CheckRequest>(text.replace("DIGEST", DIGEST).as_bytes()) {
                Ok(request) => request.version,
                Err(e) => panic!("{e:#}"),
            }
        };
        assert_eq!(check("null"), None);
        let d_form = Version {
            digest: DIGEST.into(),
            tag: None,
        };
        assert_eq!(check(r#"{"digest": "DIGEST"}"#), Some(d_form.clone()));
        let r_form = Version {
            tag: Some("1.7".into()),
            ..d_form.clone()
        };
        assert_eq!(
            check(r#"{"digest": "DIGEST", "tag": "1.7"}"#),
            Some(r_form.clone())
        );
        let json = |v: &Version| serde_json::to_string(v).unwrap_or_default();
        assert_eq!(json(&d_form), format!(r#"{{"digest":"{DIGEST}"}}"#));
        assert_eq!(
            json(&r_form),
            format!(r#"{{"digest":"{DIGEST}","tag":"1.7"}}"#)
        );
        let request = parse_request::<CheckRequest>(with_source("").as_bytes());
        assert_eq!(request.ok().and_then(|r| r.version), None);
    }
}
