//! R's `image`: a path or glob that must match exactly one path, which is an OCI image
//! tarball, a docker-save tarball or an OCI layout directory, told apart by content (a
//! tarball with `manifest.json` is read as docker-save, as `docker load` would, even when
//! it also holds an OCI layout, as `docker save` writes since Docker 25).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{docker, oci};
use crate::image::compress::LayerOptions;
use crate::image::compression;
use crate::image::model::ImageOrIndex;

/// What a matched path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DockerSave,
    OciTarball,
    OciLayout,
}

/// See [`super::from_image_path`].
pub(super) fn from_image_path(
    base: &Path,
    pattern: &str,
    scratch: &Path,
    options: &LayerOptions,
) -> Result<ImageOrIndex> {
    from_path(&resolve(base, pattern)?, scratch, options)
}

/// What `path` (an OCI layout tarball, a docker-save tarball or an OCI layout directory)
/// holds, told apart by content.
pub(super) fn from_path(
    path: &Path,
    scratch: &Path,
    options: &LayerOptions,
) -> Result<ImageOrIndex> {
    match kind(path)? {
        Kind::DockerSave => docker::from_archive(path, None, scratch, options),
        Kind::OciTarball => oci::from_tarball(path, scratch, options.encoding),
        Kind::OciLayout => oci::from_layout(path, None, scratch, options.encoding),
    }
}

/// The one path `pattern` matches, relative to `base` unless absolute.
fn resolve(base: &Path, pattern: &str) -> Result<PathBuf> {
    let (full, mut matched) = matches(base, pattern)?;
    match matched.len() {
        0 => bail!("it matches nothing (looked for {full})"),
        1 => Ok(matched.remove(0)),
        n => {
            let list: Vec<String> = matched.iter().map(|p| p.display().to_string()).collect();
            bail!(
                "it matches {n} paths, but must match exactly one: {}",
                list.join(", ")
            )
        }
    }
}

/// Every path `pattern` matches (relative to `base` unless absolute), sorted, and the
/// glob looked for (`base` escaped), for messages.
pub(super) fn matches(base: &Path, pattern: &str) -> Result<(String, Vec<PathBuf>)> {
    if pattern.is_empty() {
        bail!("the pattern is empty");
    }
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_string()
    } else {
        let Some(base) = base.to_str() else {
            bail!("the directory {} is not valid UTF-8", base.display());
        };
        format!(
            "{}/{pattern}",
            glob::Pattern::escape(base.trim_end_matches('/'))
        )
    };
    let mut matched = Vec::new();
    for path in glob::glob(&full).with_context(|| format!("{pattern:?} is not a valid glob"))? {
        matched.push(path.context("listing matches")?);
    }
    matched.sort();
    Ok((full, matched))
}

/// Tells an OCI layout directory, an OCI layout tarball and a docker-save tarball apart.
fn kind(path: &Path) -> Result<Kind> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        if path.join("oci-layout").is_file() {
            return Ok(Kind::OciLayout);
        }
        bail!(
            "{} is a directory but not an OCI image layout (it has no oci-layout file)",
            path.display()
        );
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let compressed =
        compression::sniff_start(file).with_context(|| format!("reading {}", path.display()))?;
    if let Some(compressed) = compressed.name() {
        bail!(
            "{} is {compressed}-compressed; give the uncompressed tarball (an OCI image \
             tarball or a docker-save tarball)",
            path.display()
        );
    }
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    crate::image::archive::check_tar_start(&mut file, path).context(
        "expected an OCI layout tarball, a docker-save tarball or an OCI layout directory",
    )?;
    let mut archive = tar::Archive::new(file);
    let (mut docker, mut oci, mut names) = (false, false, Vec::new());
    let entries = archive.entries_with_seek().and_then(|entries| {
        for entry in entries {
            let entry = entry?;
            let name = String::from_utf8_lossy(&entry.path_bytes())
                .trim_start_matches("./")
                .to_string();
            match name.as_str() {
                "manifest.json" => docker = true,
                "oci-layout" => oci = true,
                _ => {}
            }
            if names.len() < 5 {
                names.push(name);
            }
        }
        Ok(())
    });
    match (docker, oci, entries) {
        (true, _, _) => Ok(Kind::DockerSave),
        (false, true, _) => Ok(Kind::OciTarball),
        (false, false, Err(e)) => bail!(
            "{} is not a tarball (an OCI layout tarball or a docker-save tarball), nor an OCI \
             layout directory: {e}",
            path.display()
        ),
        (false, false, Ok(())) => bail!(
            "{} is a tarball, but neither an OCI layout tarball (no oci-layout) nor a \
             docker-save tarball (no manifest.json); it starts with: {}",
            path.display(),
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::test_support::{
        docker_save, expect_err, gunzip_digest, layout_of, plain_layer,
    };
    use super::*;
    use crate::image::archive::test_support::{make_image, make_layer, Compression as Fixture};
    use crate::image::sources::{from_image_path, from_oci_layout};

    /// A tar of the directory `layout` (its contents at the root).
    fn tar_dir(layout: &Path, out: &Path) -> Result<()> {
        let mut tar = tar::Builder::new(File::create(out)?);
        tar.append_dir_all(".", layout)?;
        tar.into_inner()?.flush()?;
        Ok(())
    }

    #[test]
    fn oci_tarball_layout_and_docker_save_are_told_apart() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let layers = [
            make_layer(dir.path(), &[("a", b"gzip\n")], Fixture::Gzip)?,
            make_layer(dir.path(), &[("b", b"plain\n")], Fixture::None)?,
        ];
        let source = make_image(dir.path(), "amd64", &layers)?;
        let layout = layout_of(dir.path(), &source)?;
        let base = dir.path().join("inputs");
        fs::create_dir_all(base.join("built"))?;
        tar_dir(&layout, &base.join("built/image.tar"))?;
        let scratch = tempfile::tempdir()?;

        let from_dir = from_oci_layout(&layout, None, scratch.path())?;
        let from_tar = from_image_path(&base, "built/*.tar", scratch.path())?;
        assert_eq!(from_tar.digest(), from_dir.digest());
        let image = from_tar.images()[0].clone();
        assert_eq!(gunzip_digest(image.layers[1].path()?)?, layers[1].diff_id);
        // The gzip layer was extracted into scratch and is used from there.
        assert!(image.layers[0].path()?.starts_with(scratch.path()));
        assert_eq!(image.layers[0].digest, source.layers[0].digest);

        // The layout directory itself, by an absolute glob.
        let pattern = format!("{}/layout-*", dir.path().display());
        assert_eq!(
            from_image_path(&base, &pattern, scratch.path())?.digest(),
            from_dir.digest()
        );

        let saved = base.join("saved.tar");
        docker_save(&saved, &[(&["x:1"], vec![plain_layer(&[("f", b"x")])?])])?;
        let docker = from_image_path(&base, "saved.tar", scratch.path())?;
        assert_eq!(
            docker.images()[0].manifest.media_type,
            crate::image::manifest::DOCKER_MANIFEST
        );
        Ok(())
    }

    #[test]
    fn glob_must_match_exactly_one() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let scratch = tempfile::tempdir()?;
        for name in ["a.tar", "b.tar"] {
            docker_save(
                &dir.path().join(name),
                &[(&["x:1"], vec![plain_layer(&[("f", b"x")])?])],
            )?;
        }
        let err = expect_err(from_image_path(dir.path(), "*.tar", scratch.path()))?;
        assert!(err.contains("image *.tar: it matches 2 paths"), "{err}");
        assert!(err.contains("a.tar, ") && err.contains("b.tar"), "{err}");
        let err = expect_err(from_image_path(dir.path(), "c*.tar", scratch.path()))?;
        assert!(err.contains("matches nothing"), "{err}");
        assert!(
            err.contains(&format!("{}/c*.tar", dir.path().display())),
            "{err}"
        );
        assert!(from_image_path(dir.path(), "a*", scratch.path()).is_ok());
        assert!(expect_err(from_image_path(dir.path(), "[", scratch.path()))?.contains("glob"));
        Ok(())
    }

    #[test]
    fn base_with_glob_characters_is_literal() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let base = dir.path().join("odd[1]");
        fs::create_dir(&base)?;
        docker_save(
            &base.join("i.tar"),
            &[(&["x:1"], vec![plain_layer(&[("f", b"x")])?])],
        )?;
        let scratch = tempfile::tempdir()?;
        assert!(from_image_path(&base, "i.tar", scratch.path()).is_ok());
        Ok(())
    }

    #[test]
    fn other_inputs_are_refused_clearly() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let scratch = tempfile::tempdir()?;
        fs::write(dir.path().join("notes.txt"), b"hello\n".repeat(200))?;
        let err = expect_err(from_image_path(dir.path(), "notes.txt", scratch.path()))?;
        assert!(
            err.contains("image notes.txt") && err.contains("is not a tarball"),
            "{err}"
        );

        let plain = dir.path().join("rootfs.tar");
        fs::write(&plain, plain_layer(&[("etc/x", b"x")])?)?;
        let err = expect_err(from_image_path(dir.path(), "rootfs.tar", scratch.path()))?;
        assert!(
            err.contains("no manifest.json") && err.contains("etc/x"),
            "{err}"
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"x")?;
        fs::write(dir.path().join("i.tgz"), gz.finish()?)?;
        let err = expect_err(from_image_path(dir.path(), "i.tgz", scratch.path()))?;
        assert!(err.contains("gzip-compressed"), "{err}");

        fs::create_dir(dir.path().join("empty"))?;
        let err = expect_err(from_image_path(dir.path(), "empty", scratch.path()))?;
        assert!(err.contains("no oci-layout file"), "{err}");
        Ok(())
    }
}
