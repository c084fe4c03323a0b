//! OCI referrers ([distribution spec 1.1, listing referrers](https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers)):
//! the manifests whose `subject` is a given digest (signatures, SBOMs, attestations).
//!
//! A registry with the referrers API lists them at `GET /v2/<name>/referrers/<digest>` (an
//! OCI image index). One without it (CNCF distribution 2.8 answers 404) leaves the listing
//! to clients: the [referrers tag schema](https://github.com/opencontainers/distribution-spec/blob/main/spec.md#referrers-tag-schema)
//! keeps the same index under the tag [`fallback_tag`] (`sha256-<hex>`), which whoever
//! pushes a referrer there updates ([`Client::add_to_referrers_tag`]). As go-containerregistry
//! (cosign's client) does, a 404, 400 or 406, or a 200 that is not an image index, means
//! "no API": the tag is read instead; so does any other client error but 429 (405 or 403
//! from a registry or proxy that does not know the path), where go-containerregistry fails.

use super::auth::repository_scope;
use super::client::{header_str, Client, Request};
use super::error::{diagnostics, Error};
use super::tags::next_link;
use super::upload::parse_url;
use crate::digest::Digest;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The media type of an OCI image index: what the referrers API and tag hold.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// The most referrers of one digest we read (and the most a referrers tag may list).
pub const MAX_REFERRERS: usize = 1000;

/// Pages of a referrers listing after which it is an error.
const MAX_PAGES: usize = 100;

/// The largest referrers page we read.
const MAX_PAGE_BYTES: u64 = super::client::MAX_MANIFEST_BYTES;

/// Where a listing came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// The referrers API answered.
    Api,
    /// No API: the referrers tag was read.
    Tag,
    /// No API and no referrers tag: nothing refers to the digest (that we can know of).
    Nothing,
}

/// The referrers of a digest: their descriptors, as listed, and where the list came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrers {
    /// The descriptors (`mediaType`, `digest`, `size`, `artifactType`, `annotations`).
    pub descriptors: Vec<Value>,
    /// The API, the tag, or neither.
    pub listed: Listed,
}

/// The referrers tag of `digest`: `<alg>-<hex>`, the algorithm cut to 32 characters and the
/// hex to 64, as the spec's tag schema says (`sha256:ab…` is `sha256-ab…`).
pub fn fallback_tag(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("", digest));
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    format!("{}-{}", cut(algorithm, 32), cut(hex, 64))
}

/// The descriptor a referrers index lists for the manifest `raw` (whose digest is
/// `digest`): its `mediaType`, `digest` and `size`; its `artifactType`, else (an image
/// manifest) its config's media type; and its annotations.
pub fn descriptor_of(raw: &[u8], digest: &str, media_type: &str) -> Result<Value, String> {
    let manifest: Value = serde_json::from_slice(raw).map_err(|e| format!("not JSON: {e}"))?;
    let mut descriptor = json!({
        "mediaType": manifest.get("mediaType").and_then(Value::as_str).unwrap_or(media_type),
        "digest": digest,
        "size": raw.len(),
    });
    let artifact_type = manifest
        .get("artifactType")
        .or_else(|| manifest.get("config").and_then(|c| c.get("mediaType")))
        .and_then(Value::as_str);
    if let Some(artifact_type) = artifact_type {
        descriptor["artifactType"] = json!(artifact_type);
    }
    if let Some(annotations) = manifest.get("annotations").filter(|a| a.is_object()) {
        descriptor["annotations"] = annotations.clone();
    }
    Ok(descriptor)
}

/// The `manifests` of a referrers index, each checked to have a valid `digest`, a `size`
/// and a `mediaType`.
pub fn index_descriptors(body: &[u8]) -> Result<Vec<Value>, String> {
    let index: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    if !index.is_object() {
        return Err("not a JSON object".into());
    }
    let media_type = index.get("mediaType").and_then(Value::as_str);
    if media_type.is_some_and(|t| t != INDEX_MEDIA_TYPE) || index.get("layers").is_some() {
        return Err(format!(
            "it is not an image index (media type {})",
            media_type.unwrap_or("none")
        ));
    }
    let manifests = match index.get("manifests") {
        Some(Value::Array(manifests)) => manifests,
        // An empty index may leave the list out, or give it as null.
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(_) => return Err("its manifests is not a list".into()),
    };
    if manifests.len() > MAX_REFERRERS {
        return Err(format!(
            "it lists {} manifests; more than {MAX_REFERRERS} are refused",
            manifests.len()
        ));
    }
    for (i, descriptor) in manifests.iter().enumerate() {
        let digest = descriptor
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("manifests[{i}] has no digest"))?;
        Digest::parse(digest).map_err(|e| format!("manifests[{i}]: {e}"))?;
        if descriptor.get("size").and_then(Value::as_u64).is_none() {
            return Err(format!("manifests[{i}] has no size"));
        }
        if descriptor
            .get("mediaType")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(format!("manifests[{i}] has no mediaType"));
        }
    }
    Ok(manifests.clone())
}

/// `existing` (a referrers index, or `None` for none yet) with each of `new` whose digest
/// it does not list appended; `None` when every one is there already.
pub fn index_with(existing: Option<&[u8]>, new: &[Value]) -> Result<Option<Vec<u8>>, String> {
    let mut index = match existing {
        Some(raw) => {
            index_descriptors(raw)?;
            serde_json::from_slice::<Value>(raw).map_err(|e| format!("not JSON ({e})"))?
        }
        None => json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []}),
    };
    if !index.get("manifests").is_some_and(Value::is_array) {
        index["manifests"] = json!([]);
    }
    let Some(manifests) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Err("its manifests is not a list".into());
    };
    let before = manifests.len();
    for descriptor in new {
        let digest = descriptor.get("digest");
        if !manifests.iter().any(|m| m.get("digest") == digest) {
            manifests.push(descriptor.clone());
        }
    }
    if manifests.len() == before {
        return Ok(None);
    }
    if manifests.len() > MAX_REFERRERS {
        return Err(format!("it would list more than {MAX_REFERRERS} manifests"));
    }
    Ok(Some(index.to_string().into_bytes()))
}

/// Whether a `Content-Type` is the image index's (parameters ignored).
fn is_index(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(INDEX_MEDIA_TYPE))
}

impl Client {
    /// The referrers of `digest` in `repository`: from the referrers API when the registry
    /// has it (every page, following `Link`), else from the referrers tag, else none.
    pub async fn list_referrers(&self, repository: &str, digest: &str) -> Result<Referrers, Error> {
        let protocol = |detail: String| Error::Protocol {
            registry: self.host().to_string(),
            detail,
        };
        Digest::parse(digest).map_err(|e| protocol(format!("referrers of {digest}: {e}")))?;
        let base = self.base_url().await?;
        let scopes = vec![repository_scope(repository, "pull")];
        let what = format!("referrers of {repository}@{digest}");
        let mut next = Some(format!("{base}/v2/{repository}/referrers/{digest}"));
        let mut descriptors = Vec::new();
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(protocol(format!("the listing of {what} does not end")));
            }
            let sent = self
                .send_with(Request {
                    method: Method::GET,
                    url: &url,
                    accept: Some(INDEX_MEDIA_TYPE),
                    scopes: &scopes,
                    repository,
                    headers: &[],
                    body: &|| None,
                    idempotent: true,
                })
                .await;
            let response = match sent {
                // A 403 for the listing alone (a proxy that refuses paths it does not
                // know): the tag says; if the repository is denied, reading it says so.
                Err(Error::Denied { .. }) if pages == 1 => {
                    return self.referrers_from_tag(repository, digest).await
                }
                other => other?,
            };
            let status = response.status();
            let api = status == StatusCode::OK
                && is_index(header_str(response.headers(), "content-type"));
            if !api && pages == 1 {
                // go-containerregistry falls back on 404, 400 and 406 and fails on any other
                // status; registries and proxies without the API also answer 405 and the
                // like for a path they do not know, and the tag is as good a source for
                // them, so every client error but 429 falls back here.
                let no_api = status == StatusCode::OK
                    || (status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS);
                if !no_api {
                    return Err(self.status_error("GET", response).await);
                }
                return self.referrers_from_tag(repository, digest).await;
            }
            if !api {
                return Err(self.status_error("GET", response).await);
            }
            next = header_str(response.headers(), "link")
                .and_then(next_link)
                .map(|link| {
                    parse_url(self.host(), &base)?
                        .join(&link)
                        .map(|u| u.to_string())
                        .map_err(|e| protocol(format!("bad Link {link}: {e}")))
                })
                .transpose()?;
            let body = self
                .transport()
                .read_body(response, MAX_PAGE_BYTES, &what)
                .await?
                .ok_or_else(|| Error::TooLarge {
                    registry: self.host().to_string(),
                    what: what.clone(),
                    limit: MAX_PAGE_BYTES,
                })?;
            let page = index_descriptors(&body).map_err(|e| {
                protocol(format!(
                    "the {what} is not a valid image index: {e}: {}",
                    diagnostics(&body)
                ))
            })?;
            descriptors.extend(page);
            if descriptors.len() > MAX_REFERRERS {
                return Err(protocol(format!(
                    "{what}: more than {MAX_REFERRERS} are refused"
                )));
            }
        }
        Ok(Referrers {
            descriptors,
            listed: Listed::Api,
        })
    }

    /// The referrers of `digest` as the referrers tag lists them (no tag: none).
    async fn referrers_from_tag(&self, repository: &str, digest: &str) -> Result<Referrers, Error> {
        let tag = fallback_tag(digest);
        let Some((_, raw)) = self.get_manifest(repository, &tag).await? else {
            return Ok(Referrers {
                descriptors: Vec::new(),
                listed: Listed::Nothing,
            });
        };
        let descriptors = index_descriptors(&raw).map_err(|e| Error::Protocol {
            registry: self.host().to_string(),
            detail: format!("the referrers tag {repository}:{tag} is not a valid image index: {e}"),
        })?;
        Ok(Referrers {
            descriptors,
            listed: Listed::Tag,
        })
    }

    /// Adds `descriptors` to the referrers tag of `subject` in `repository` (the index
    /// already there keeps what it lists; none there: a new one), for a registry without
    /// the referrers API. Returns how many were added (0: all were listed, nothing pushed).
    pub async fn add_to_referrers_tag(
        &self,
        repository: &str,
        subject: &str,
        descriptors: &[Value],
    ) -> Result<usize, Error> {
        let tag = fallback_tag(subject);
        let existing = self.get_manifest(repository, &tag).await?;
        let invalid = |e: String| Error::Protocol {
            registry: self.host().to_string(),
            detail: format!("the referrers tag {repository}:{tag} is not a valid image index: {e}"),
        };
        let before = match &existing {
            Some((_, raw)) => index_descriptors(raw).map_err(invalid)?.len(),
            None => 0,
        };
        let Some(index) = index_with(
            existing.as_ref().map(|(_, raw)| raw.as_slice()),
            descriptors,
        )
        .map_err(invalid)?
        else {
            return Ok(0);
        };
        let after = index_descriptors(&index).map_err(invalid)?.len();
        self.put_manifest(repository, &tag, INDEX_MEDIA_TYPE, &index)
            .await?;
        Ok(after - before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    fn referrer(n: u8) -> Value {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(n), "size": 10})
    }

    #[test]
    fn the_tag_is_the_spec_schema() {
        let hex = "a".repeat(64);
        assert_eq!(
            fallback_tag(&format!("sha256:{hex}")),
            format!("sha256-{hex}")
        );
        let long = "b".repeat(128);
        assert_eq!(
            fallback_tag(&format!("sha512:{long}")),
            format!("sha512-{}", &long[..64])
        );
    }

    #[test]
    fn an_index_gets_new_descriptors_once_and_keeps_the_rest() {
        let first = index_with(None, &[referrer(1)]).unwrap().unwrap();
        let index: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(index["mediaType"], INDEX_MEDIA_TYPE);
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index_descriptors(&first).unwrap(), vec![referrer(1)]);
        assert_eq!(index_with(Some(&first), &[referrer(1)]).unwrap(), None);
        // Someone else's entry and the index's own fields stay.
        let mut theirs = index.clone();
        theirs["annotations"] = json!({"x": "y"});
        let theirs = theirs.to_string().into_bytes();
        let both = index_with(Some(&theirs), &[referrer(2), referrer(1), referrer(2)])
            .unwrap()
            .unwrap();
        assert_eq!(
            index_descriptors(&both).unwrap(),
            vec![referrer(1), referrer(2)]
        );
        let both: Value = serde_json::from_slice(&both).unwrap();
        assert_eq!(both["annotations"], json!({"x": "y"}));
    }

    #[test]
    fn bad_indexes_are_refused() {
        assert!(index_descriptors(b"{}").is_ok_and(|d| d.is_empty()));
        assert!(index_descriptors(b"[]").is_err());
        let image =
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []});
        assert!(index_descriptors(image.to_string().as_bytes()).is_err());
        assert!(index_descriptors(br#"{"manifests": {}}"#).is_err());
        assert!(index_descriptors(
            br#"{"manifests": [{"digest": "sha256:zz", "size": 1, "mediaType": "x"}]}"#
        )
        .is_err());
        assert!(index_descriptors(
            format!(
                r#"{{"manifests": [{{"digest": "{}", "mediaType": "x"}}]}}"#,
                digest(1)
            )
            .as_bytes()
        )
        .is_err());
        assert!(index_descriptors(b"not json").is_err());
        assert!(index_with(Some(b"not json"), &[referrer(1)]).is_err());
    }

    #[test]
    fn a_descriptor_carries_artifact_type_and_annotations() {
        let cosigns = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.dev.cosign.artifact.sig.v1+json", "size": 2, "digest": digest(3)},
            "layers": [],
            "subject": referrer(4),
        })
        .to_string();
        let d = descriptor_of(cosigns.as_bytes(), &digest(5), "ignored").unwrap();
        assert_eq!(
            d,
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(5),
                "size": cosigns.len(),
                "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            })
        );
        let sbom = json!({
            "schemaVersion": 2,
            "artifactType": "application/spdx+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": digest(3)},
            "layers": [],
            "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        })
        .to_string();
        let d = descriptor_of(
            sbom.as_bytes(),
            &digest(6),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .unwrap();
        assert_eq!(d["artifactType"], "application/spdx+json");
        assert_eq!(d["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(
            d["annotations"]["org.opencontainers.image.created"],
            "2024-01-01T00:00:00Z"
        );
    }
}
