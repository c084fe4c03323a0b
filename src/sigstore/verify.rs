//! `source.verify`: an image is accepted when its `sha256-<hex>.sig` manifest, or one of its
//! OCI referrers with cosign's signature artifact type, holds a signature layer whose payload
//! one of the public keys verifies and that names this repository (or one of
//! `source.verify.repositories`) and this digest; or when one of its referrers holds a
//! Sigstore bundle (cosign 3) that one of the keys verifies for this digest
//! ([`super::bundle`]). Signature manifests
//! are read within the registry client's manifest bound and at most
//! [`manifest::MAX_SIGNATURES`] layers; payloads above [`manifest::MAX_PAYLOAD_BYTES`] are
//! not fetched; every blob is digest-checked.

use super::keys::PublicKey;
use super::manifest::{self, Layer};
use super::{bundle, payload, signature_tag, VerifyOptions};
use crate::log::Log;
use crate::reference::Reference;
use crate::registry::referrers::Listed;
use crate::registry::{Client, Error};
use crate::resource::Version;
use crate::settings::{first_found, Endpoint};
use anyhow::{bail, Context as _};
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde_json::Value;

/// The artifact type of a cosign signature stored as an OCI referrer (cosign's
/// `--registry-referrers-mode=oci-1-1`; `ArtifactType("sig")` in cosign's source).
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// The artifact type of an OCI empty config (`application/vnd.oci.empty.v1+json`).
const EMPTY_ARTIFACT_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The most signature referrers of one digest read before it counts as unsigned.
pub const MAX_SIGNATURE_REFERRERS: usize = 16;

/// Versions whose signatures `check` reads at once.
pub const VERIFY_CONCURRENCY: usize = 8;

/// What the signatures of one digest say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid signature by the key at this index of `public_keys`.
    Signed(usize),
    /// None valid: why, for messages.
    Unsigned(String),
}

impl Verdict {
    /// True for [`Verdict::Signed`].
    pub fn is_signed(&self) -> bool {
        matches!(self, Verdict::Signed(_))
    }
}

/// The keys and the names a payload may give.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<PublicKey>,
    names: Vec<String>,
}

impl Verifier {
    /// From `source.verify` for the repository `reference`; `None` when `verify` is unset.
    /// A key that does not parse, or no key at all, is an error (naming the option).
    pub fn from_options(
        options: Option<&VerifyOptions>,
        reference: &Reference,
    ) -> anyhow::Result<Option<Verifier>> {
        let Some(options) = options else {
            return Ok(None);
        };
        if options.public_keys.is_empty() {
            bail!("source.verify.public_keys is empty: give the PEM public keys (cosign.pub) whose signatures are accepted");
        }
        let keys = options
            .public_keys
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                PublicKey::from_pem(pem).with_context(|| format!("source.verify.public_keys[{i}]"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut names = vec![payload::normalised_name(&reference.name())?];
        for (i, other) in options.repositories.iter().enumerate() {
            names.push(
                payload::normalised_name(other)
                    .with_context(|| format!("source.verify.repositories[{i}]"))?,
            );
        }
        Ok(Some(Verifier { keys, names }))
    }

    /// The verdict on `digest` in `repository` on `client`: the `.sig` tag first, then the
    /// OCI referrers. Registry failures are errors; no signature, or signatures that do not
    /// verify, are [`Verdict::Unsigned`].
    pub async fn verdict(
        &self,
        client: &Client,
        repository: &str,
        digest: &str,
    ) -> anyhow::Result<Verdict> {
        let mut reasons = Vec::new();
        for found in [
            self.in_tag(client, repository, digest).await?,
            self.in_referrers(client, repository, digest).await?,
        ] {
            match found {
                Ok(key) => return Ok(Verdict::Signed(key)),
                Err(reason) => reasons.push(reason),
            }
        }
        Ok(Verdict::Unsigned(reasons.join("; ")))
    }

    /// The signatures under cosign's `sha256-<hex>.sig` tag.
    async fn in_tag(
        &self,
        client: &Client,
        repository: &str,
        digest: &str,
    ) -> anyhow::Result<Result<usize, String>> {
        let tag = signature_tag(digest);
        let Some((_, raw)) = client
            .get_manifest(repository, &tag)
            .await
            .with_context(|| format!("reading the signatures {repository}:{tag}"))?
        else {
            return Ok(Err(format!("no signature tag {tag}")));
        };
        self.in_manifest(client, repository, digest, &tag, &raw)
            .await
    }

    /// The signatures stored as OCI referrers of `digest`: cosign 2's
    /// `--registry-referrers-mode=oci-1-1` signatures and cosign 3's Sigstore bundles. Each
    /// referrer listed with a type that may hold one (see `might_be_a_signature`), at most
    /// [`MAX_SIGNATURE_REFERRERS`], is read; its `subject` must be `digest`.
    async fn in_referrers(
        &self,
        client: &Client,
        repository: &str,
        digest: &str,
    ) -> anyhow::Result<Result<usize, String>> {
        let listing = match client.list_referrers(repository, digest).await {
            Ok(listing) => listing,
            // A listing that is not what the spec says is no signature (reported); a
            // registry that cannot be read is an error.
            Err(e @ Error::Protocol { .. }) => return Ok(Err(format!("OCI referrers: {e}"))),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading the OCI referrers of {repository}@{digest}"))
            }
        };
        let candidates: Vec<&str> = listing
            .descriptors
            .iter()
            .filter(|d| {
                d.get("artifactType")
                    .and_then(Value::as_str)
                    .is_none_or(might_be_a_signature)
            })
            .filter_map(|d| d.get("digest").and_then(Value::as_str))
            .collect();
        if candidates.is_empty() {
            return Ok(Err(match listing.listed {
                Listed::Nothing => "no OCI referrers".to_string(),
                _ => format!(
                    "no cosign signature among its {} OCI referrer(s)",
                    listing.descriptors.len()
                ),
            }));
        }
        let mut reasons = Vec::new();
        for referrer in candidates.iter().take(MAX_SIGNATURE_REFERRERS) {
            let what = format!("referrer {}", short(referrer));
            let raw = match client.get_manifest(repository, referrer).await {
                Ok(Some((_, raw))) => raw,
                Ok(None) => {
                    reasons.push(format!("{what} is listed but missing"));
                    continue;
                }
                Err(e @ Error::DigestMismatch { .. }) => {
                    reasons.push(format!("{what}: {e}"));
                    continue;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("reading the OCI referrer {repository}@{referrer}")
                    })
                }
            };
            let subject = serde_json::from_slice::<Value>(&raw).ok().and_then(|m| {
                m.get("subject")
                    .and_then(|s| s.get("digest"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            if subject.as_deref() != Some(digest) {
                reasons.push(format!("{what} is not a referrer of {}", short(digest)));
                continue;
            }
            match self
                .in_manifest(client, repository, digest, &what, &raw)
                .await?
            {
                Ok(key) => return Ok(Ok(key)),
                Err(reason) => reasons.push(reason),
            }
        }
        if candidates.len() > MAX_SIGNATURE_REFERRERS {
            reasons.push(format!(
                "{} more signature referrers not read (at most {MAX_SIGNATURE_REFERRERS} are)",
                candidates.len() - MAX_SIGNATURE_REFERRERS
            ));
        }
        Ok(Err(reasons.join("; ")))
    }

    /// The signature layers of one signature manifest (`raw`, called `what` in reasons):
    /// cosign's simple-signing layers and Sigstore bundles.
    async fn in_manifest(
        &self,
        client: &Client,
        repository: &str,
        digest: &str,
        what: &str,
        raw: &[u8],
    ) -> anyhow::Result<Result<usize, String>> {
        let layers = match manifest::layers(raw) {
            Ok(layers) => layers,
            Err(e) => return Ok(Err(format!("{what}: {e:#}"))),
        };
        let mut reasons: Vec<String> = Vec::new();
        for layer in &layers {
            let checked = if layer.is_signature() {
                self.check_layer(client, repository, digest, layer).await?
            } else if bundle::is_bundle(&layer.media_type) {
                self.check_bundle(client, repository, digest, layer).await?
            } else {
                continue;
            };
            match checked {
                Ok(key) => return Ok(Ok(key)),
                Err(reason) => reasons.push(format!("{}: {reason}", short(&layer.digest))),
            }
        }
        if reasons.is_empty() {
            reasons.push(format!("{what} holds no cosign signature layer"));
        }
        Ok(Err(reasons.join("; ")))
    }

    /// A Sigstore bundle layer (cosign 3): `Ok(Ok(key index))` when [`bundle::check`]
    /// accepts it (key and digest; a bundle names no repository), `Ok(Err(why not))`
    /// otherwise.
    async fn check_bundle(
        &self,
        client: &Client,
        repository: &str,
        digest: &str,
        layer: &Layer,
    ) -> anyhow::Result<Result<usize, String>> {
        Ok(match self.small_blob(client, repository, layer).await? {
            Ok(raw) => bundle::check(&raw, digest, &self.keys),
            Err(why) => Err(why),
        })
    }

    /// A signature's payload blob (cosign's simple-signing payload, or a bundle), at most
    /// [`manifest::MAX_PAYLOAD_BYTES`]:
    /// `Ok(Err(why))` when it is too big, missing or not what its digest says (a bad
    /// signature; another may still be good); an error when the registry cannot be read.
    async fn small_blob(
        &self,
        client: &Client,
        repository: &str,
        layer: &Layer,
    ) -> anyhow::Result<Result<Vec<u8>, String>> {
        if layer.size > manifest::MAX_PAYLOAD_BYTES {
            return Ok(Err(format!(
                "a payload of {} bytes (more than {} are not read)",
                layer.size,
                manifest::MAX_PAYLOAD_BYTES
            )));
        }
        let blob_digest = match crate::digest::Digest::parse(&layer.digest) {
            Ok(digest) => digest,
            Err(e) => return Ok(Err(format!("the payload blob: {e}"))),
        };
        match client
            .fetch_small_blob(repository, &blob_digest, layer.size)
            .await
        {
            Ok(blob) => Ok(Ok(blob)),
            Err(e @ (Error::NotFound { .. } | Error::DigestMismatch { .. })) => {
                Ok(Err(format!("the payload blob: {e}")))
            }
            Err(e) => {
                Err(e).with_context(|| format!("fetching the signature blob {}", layer.digest))
            }
        }
    }

    /// One signature layer: `Ok(Ok(key index))` when valid, `Ok(Err(why not))` otherwise.
    async fn check_layer(
        &self,
        client: &Client,
        repository: &str,
        digest: &str,
        layer: &Layer,
    ) -> anyhow::Result<Result<usize, String>> {
        let Some(signature) = layer.signature.as_deref() else {
            return Ok(Err("no signature annotation".into()));
        };
        let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature.trim())
        else {
            return Ok(Err("the signature is not base64".into()));
        };
        let payload = match self.small_blob(client, repository, layer).await? {
            Ok(payload) => payload,
            Err(why) => return Ok(Err(why)),
        };
        let Some(key) = self
            .keys
            .iter()
            .position(|k| k.verifies(&payload, &signature))
        else {
            return Ok(Err("not signed by any of source.verify.public_keys".into()));
        };
        Ok(match payload::check(&payload, digest, &self.names) {
            Ok(()) => Ok(key),
            Err(e) => Err(format!("{e:#}")),
        })
    }

    /// The verdict from the first endpoint (mirror, then origin) that finds a valid
    /// signature; else the last endpoint's.
    pub async fn verdict_on(
        &self,
        endpoints: &[Endpoint],
        digest: &str,
    ) -> anyhow::Result<Verdict> {
        let (_, verdict) = first_found(
            endpoints,
            async |endpoint| {
                self.verdict(&endpoint.client, &endpoint.repository, digest)
                    .await
                    .with_context(|| endpoint.label.clone())
            },
            Verdict::is_signed,
        )
        .await?;
        Ok(verdict)
    }

    /// `check`: the versions with a valid signature, in their order, and a note for each one
    /// left out. At most [`VERIFY_CONCURRENCY`] versions are looked at at once.
    pub async fn signed_versions(
        &self,
        endpoints: &[Endpoint],
        versions: Vec<Version>,
    ) -> anyhow::Result<(Vec<Version>, Vec<String>)> {
        let verdicts: Vec<anyhow::Result<Verdict>> = futures_util::stream::iter(&versions)
            .map(|version| self.verdict_on(endpoints, &version.digest))
            .buffered(VERIFY_CONCURRENCY)
            .collect()
            .await;
        let mut kept = Vec::new();
        let mut notes = Vec::new();
        for (version, verdict) in versions.into_iter().zip(verdicts) {
            match verdict? {
                Verdict::Signed(_) => kept.push(version),
                Verdict::Unsigned(why) => notes.push(format!(
                    "note: skipping {}{} (source.verify): {why}",
                    version.digest,
                    version
                        .tag
                        .as_deref()
                        .map(|t| format!(" (tag {t})"))
                        .unwrap_or_default()
                )),
            }
        }
        Ok((kept, notes))
    }

    /// `in`: an error naming the digest unless it has a valid signature.
    pub async fn require(
        &self,
        endpoints: &[Endpoint],
        name: &str,
        digest: &str,
        log: &Log,
    ) -> anyhow::Result<()> {
        match self.verdict_on(endpoints, digest).await? {
            Verdict::Signed(key) => {
                log.line(format_args!(
                    "{name}@{digest}: signature verified (source.verify.public_keys[{key}])"
                ));
                Ok(())
            }
            Verdict::Unsigned(why) => bail!(
                "{name}@{digest} has no valid signature from source.verify.public_keys: {why}"
            ),
        }
    }
}

/// Whether a referrer listed with `artifact_type` may hold a signature: cosign 2's
/// `oci-1-1` signatures, Sigstore bundles (cosign 3), and the empty config type (cosign 3
/// lists its bundles so in the referrers tag).
fn might_be_a_signature(artifact_type: &str) -> bool {
    artifact_type == SIGNATURE_ARTIFACT_TYPE
        || artifact_type == EMPTY_ARTIFACT_TYPE
        || bundle::is_bundle(artifact_type)
}

/// `sha256:0123456789ab` for messages.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_before_any_request() {
        let reference = Reference::parse("127.0.0.1:5000/app").unwrap();
        assert!(Verifier::from_options(None, &reference).unwrap().is_none());
        let empty = VerifyOptions::default();
        let err = Verifier::from_options(Some(&empty), &reference).unwrap_err();
        assert!(format!("{err:#}").contains("source.verify.public_keys is empty"));
        let bad = VerifyOptions {
            public_keys: vec!["not a key".into()],
            repositories: vec![],
        };
        let err = Verifier::from_options(Some(&bad), &reference).unwrap_err();
        assert!(
            format!("{err:#}").contains("source.verify.public_keys[0]"),
            "{err:#}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn check_and_in_refuse_a_bad_key_before_any_request() -> anyhow::Result<()> {
        use crate::registry::test_server::{Reply, Request, TestServer};
        let server = TestServer::start(|_: &Request, _: &str| Reply::status(200)).await?;
        let (log, _) = crate::log::Captured::log();
        let digest = format!("sha256:{}", "a".repeat(64));
        let input = serde_json::json!({
            "source": {
                "repository": format!("{}/app", server.host()),
                "tag": "1.0",
                "verify": {"public_keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"]},
            },
            "version": {"digest": digest},
        })
        .to_string()
        .into_bytes();
        let dest = tempfile::tempdir()?;
        let args = [dest.path().display().to_string()];
        let checked = crate::commands::check::run(&input, &log).await;
        let got = crate::commands::get::run(&input, &args, &log).await;
        for result in [checked.map(|_| ()), got.map(|_| ())] {
            let e = result.map_err(|e| format!("{e:#}"));
            assert!(
                e.as_ref()
                    .is_err_and(|e| e.contains("source.verify.public_keys[0]")),
                "{e:?}"
            );
        }
        assert_eq!(server.requests(), Vec::new());
        Ok(())
    }
}
