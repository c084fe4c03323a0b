//! Sigstore (cosign) signatures: `out` signs what it pushes (`params.sign`), `check` and `in`
//! accept only signed images (`source.verify`), and `pull_repository` copies keep theirs.
//!
//! The formats are cosign's, followed from its source (and sigstore's, and
//! go-securesystemslib's), so that what we sign verifies with `cosign verify` and
//! containers/image (`skopeo`, podman), and what they sign verifies here:
//!
//! - keys ([`keys`]): ECDSA P-256; private keys as PKCS#8 (`PRIVATE KEY`), SEC1
//!   (`EC PRIVATE KEY`) or cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`,
//!   `ENCRYPTED COSIGN PRIVATE KEY`: scrypt + NaCl secretbox, see [`encrypted`]); public keys
//!   as PKIX (`PUBLIC KEY`).
//! - the payload ([`payload`]): the "simple signing" JSON naming the repository and the
//!   manifest digest, signed with ECDSA P-256 over SHA-256, the signature ASN.1 DER in base64.
//! - where it lives ([`manifest`]): an OCI image manifest tagged `sha256-<hex>.sig` in the
//!   signed image's repository, one layer per signature (the payload, media type
//!   [`SIMPLE_SIGNING_MEDIA_TYPE`], the signature in the [`SIGNATURE_ANNOTATION`]
//!   annotation); a new signature is appended to the layers already there.
//! - copies ([`copy`], [`referrers`]): a `pull_repository` copy gets the source's `.sig`
//!   signatures and its OCI referrers (manifests whose `subject` is the image: cosign's
//!   `--registry-referrers-mode=oci-1-1` signatures, SBOMs, attestations), listed by the
//!   referrers API or, without one (CNCF distribution 2.8), the `sha256-<hex>` referrers tag.
//!
//! - verification ([`verify`]): the `.sig` tag first, then the OCI referrers whose `subject`
//!   is the image: cosign 2's `oci-1-1` signatures (the layers above) and cosign 3's
//!   Sigstore bundles ([`bundle`]: a DSSE envelope over an in-toto statement naming the
//!   digest).
//!
//! Not done: keyless (Fulcio certificates, Rekor bundles; such signatures are skipped as
//! unverifiable without a key), RSA and Ed25519 keys, attestations, and signing in the
//! bundle format.

pub mod bundle;
pub mod copy;
pub mod encrypted;
pub mod keys;
pub mod manifest;
pub mod options;
pub mod out;
pub mod payload;
pub mod referrers;
pub mod sign;
pub mod verify;

pub use options::{SignParams, VerifyOptions};

/// The media type of a signature layer (the payload): cosign's `SimpleSigningMediaType`.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The layer annotation holding the base64 signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The tag cosign keeps the signatures of `digest` under: `sha256:ab…` is `sha256-ab….sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_cosigns() {
        // cosign's README: reg.example.com/ubuntu@sha256:7032… has its signatures at
        // reg.example.com/ubuntu:sha256-7032….sig
        let hex = "703218c0465075f4425e58fac086e09e1de5c340b12976ab9eb8ad26615c3715";
        assert_eq!(
            signature_tag(&format!("sha256:{hex}")),
            format!("sha256-{hex}.sig")
        );
    }
}
