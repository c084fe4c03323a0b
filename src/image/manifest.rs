//! Manifests, indexes and configs as fetched (OCI and Docker media types), parsed with
//! `oci-spec` types while the raw bytes stay with the caller so digests hold; and platform
//! selection out of an index.

use anyhow::{bail, Context as _};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use std::fmt;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A parsed manifest or index.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A multi-platform index (OCI index or Docker manifest list).
    Index(Box<ImageIndex>),
    /// A single-platform image manifest.
    Manifest(Box<ImageManifest>),
}

/// Parses manifest bytes. `content_type` is the registry's `Content-Type`; the body's own
/// `mediaType`, or the presence of `manifests`, decides when it is missing or generic.
pub fn parse(content_type: &str, bytes: &[u8]) -> anyhow::Result<Parsed> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
        #[serde(default, rename = "schemaVersion")]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).context("the manifest is not valid JSON")?;
    if probe.schema_version == Some(1) {
        bail!("Docker schema 1 manifests are not supported (the image was pushed by a Docker older than 1.10); push it again with a current tool");
    }
    let media_type = probe.media_type.unwrap_or_else(|| {
        content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    });
    let is_index = match media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        _ => probe.manifests.is_some(),
    };
    if is_index {
        Ok(Parsed::Index(Box::new(
            serde_json::from_slice(bytes).context("parsing the image index")?,
        )))
    } else {
        Ok(Parsed::Manifest(Box::new(
            serde_json::from_slice(bytes).context("parsing the image manifest")?,
        )))
    }
}

/// Parses an image config blob.
pub fn parse_config(bytes: &[u8]) -> anyhow::Result<ImageConfiguration> {
    serde_json::from_slice(bytes).context("parsing the image config")
}

/// The media type of a descriptor, as a string.
pub fn media_type(descriptor: &Descriptor) -> String {
    descriptor.media_type().to_string()
}

/// A wanted platform: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// `linux`, `windows`...
    pub os: String,
    /// `amd64`, `arm64`...
    pub architecture: String,
    /// `v7`, `v8`...; `None` matches any.
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// The platform this binary runs on, in Go's names.
    pub fn host() -> PlatformSpec {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        PlatformSpec {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(str::to_string),
        }
    }

    /// The host platform with any of `os`, `architecture`, `variant` replaced.
    pub fn with_overrides(
        os: Option<&str>,
        architecture: Option<&str>,
        variant: Option<&str>,
    ) -> PlatformSpec {
        let host = PlatformSpec::host();
        let arch_changed = architecture.is_some_and(|a| a != host.architecture);
        PlatformSpec {
            os: os.unwrap_or(&host.os).to_string(),
            architecture: architecture.unwrap_or(&host.architecture).to_string(),
            variant: match variant {
                Some(v) => Some(v.to_string()),
                None if arch_changed => None,
                None => host.variant,
            },
        }
    }

    fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(want), Some(have)) => {
                normalize_variant(architecture, want) == normalize_variant(architecture, have)
            }
            (Some(want), None) => {
                normalize_variant(architecture, want) == normalize_variant(architecture, "")
            }
        }
    }
}

/// `arm64` without a variant is `v8`; `arm` without one is `v7` (containerd's rules).
fn normalize_variant<'a>(architecture: &str, variant: &'a str) -> &'a str {
    match (architecture, variant) {
        ("arm64", "") => "v8",
        ("arm", "") => "v7",
        _ => variant,
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// `os/architecture[/variant]` of an index entry, or `unknown`.
pub fn describe_platform(descriptor: &Descriptor) -> String {
    match descriptor.platform() {
        Some(p) => {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                if !v.is_empty() {
                    s.push('/');
                    s.push_str(v);
                }
            }
            s
        }
        None => "unknown".into(),
    }
}

/// Picks the manifest for `want` out of an index; the error lists what the index offers.
pub fn select_platform<'a>(
    index: &'a ImageIndex,
    want: &PlatformSpec,
) -> anyhow::Result<&'a Descriptor> {
    let found = index.manifests().iter().find(|d| {
        d.platform().as_ref().is_some_and(|p| {
            want.matches(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref().filter(|v| !v.is_empty()),
            )
        })
    });
    match found {
        Some(descriptor) => Ok(descriptor),
        None => {
            let available: Vec<String> = index
                .manifests()
                .iter()
                .map(describe_platform)
                .filter(|p| p != "unknown/unknown")
                .collect();
            bail!(
                "the image has no manifest for platform {want}; it has: {}. Set `platform` in params or source to one of these",
                if available.is_empty() { "none with a platform".to_string() } else { available.join(", ") }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v6"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":1,"platform":{"os":"unknown","architecture":"unknown"}}
    ]}"#;

    fn index() -> ImageIndex {
        match parse("", INDEX.as_bytes()) {
            Ok(Parsed::Index(i)) => *i,
            other => panic!("{other:?}"),
        }
    }

    fn pick(os: &str, arch: &str, variant: Option<&str>) -> anyhow::Result<String> {
        let want = PlatformSpec {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
        };
        let index = index();
        select_platform(&index, &want).map(|d| d.digest().to_string())
    }

    #[test]
    fn platform_selection() {
        assert!(pick("linux", "amd64", None).unwrap().ends_with("1111"));
        assert!(pick("linux", "arm64", None).unwrap().ends_with("2222"));
        assert!(pick("linux", "arm64", Some("v8"))
            .unwrap()
            .ends_with("2222"));
        assert!(pick("linux", "arm", Some("v6")).unwrap().ends_with("3333"));
        let err = pick("linux", "arm", Some("v7")).unwrap_err().to_string();
        assert!(
            err.contains("linux/arm/v7")
                && err.contains("linux/amd64, linux/arm64/v8, linux/arm/v6"),
            "{err}"
        );
        assert!(!err.contains("unknown"), "{err}");
        assert!(pick("windows", "amd64", None).is_err());
    }

    #[test]
    fn variant_defaults() {
        let want = PlatformSpec {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        assert!(want.matches("linux", "arm64", None));
        let want = PlatformSpec {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: Some("v7".into()),
        };
        assert!(want.matches("linux", "arm", None));
        assert!(!want.matches("linux", "arm", Some("v6")));
    }

    #[test]
    fn parse_by_media_type_or_shape() {
        let docker = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
          "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":3}]}"#;
        match parse(DOCKER_MANIFEST, docker.as_bytes()).unwrap() {
            Parsed::Manifest(m) => {
                assert_eq!(m.layers().len(), 1);
                assert_eq!(
                    media_type(&m.layers()[0]),
                    "application/vnd.docker.image.rootfs.diff.tar.gzip"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("application/json", INDEX.as_bytes()).unwrap(),
            Parsed::Index(_)
        ));
        let v1 = r#"{"schemaVersion":1,"name":"x"}"#;
        assert!(parse("", v1.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("schema 1"));
        assert!(parse("", b"nope").is_err());
    }

    #[test]
    fn host_overrides() {
        let p = PlatformSpec::with_overrides(None, Some("arm64"), None);
        assert_eq!(p.architecture, "arm64");
        assert_eq!(p.os, "linux");
        let p = PlatformSpec::with_overrides(Some("linux"), Some("arm"), Some("v6"));
        assert_eq!(p.to_string(), "linux/arm/v6");
    }
}
