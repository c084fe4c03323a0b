//! The `docker save` tarball: writing one image from its blobs, and reading one back.
//!
//! Layout (what `docker save` writes and `docker load` / `skopeo copy docker-archive:` read):
//!
//! ```text
//! <config hex>.json              the image config, byte for byte
//! <layer hex>/layer.tar          an uncompressed layer (named by its digest)
//! <layer hex>.tar.gz             a gzip layer, kept compressed (both tools decompress)
//! <layer hex>.tar.zst            a zstd layer, kept compressed
//! manifest.json                  [{"Config": ..., "RepoTags": [...], "Layers": [...]}]
//! repositories                   {"<repo>": {"<tag>": "<last layer hex>"}}
//! ```
//!
//! Reading scans the tar once, recording where each member's bytes are, then serves the
//! config and layers by seeking into the file: nothing is extracted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use tar::{Builder, EntryType, Header};

use super::{
    commit, digest_parts, open_blob, tmp_sibling, BlobFile, CountingReader, LocalImage,
    MAX_JSON_BYTES,
};
use crate::reference::Reference;

/// The archive's index of images.
const MANIFEST_JSON: &str = "manifest.json";
/// The legacy tag index.
const REPOSITORIES: &str = "repositories";
/// How many symlinks or hardlinks inside the archive are followed to reach a member.
const MAX_LINK_HOPS: usize = 16;

/// One entry of `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes `image` as a `docker save` tarball at `path`, tagged with each of `repo_tags`
/// (`repository:tag`). Layers are stored as fetched: compressed layers stay compressed,
/// under a name that says how. Works on `<path>.tmp` and renames it at the end.
pub fn write_docker_archive(path: &Path, image: &LocalImage, repo_tags: &[String]) -> Result<()> {
    let tmp = tmp_sibling(path)?;
    let written = write_tar(&tmp, image, repo_tags);
    commit(&tmp, path, written)
        .with_context(|| format!("writing docker archive {}", path.display()))
}

fn write_tar(tmp: &Path, image: &LocalImage, repo_tags: &[String]) -> Result<()> {
    let repositories = repositories_json(image, repo_tags)?;
    let (_, config_hex) = digest_parts(&image.config.digest)?;
    let config_name = format!("{config_hex}.json");
    let file = File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut tar = Builder::new(BufWriter::with_capacity(1 << 20, file));

    append_blob(&mut tar, &config_name, &image.config)?;
    let mut layer_names = Vec::with_capacity(image.layers.len());
    let mut written = HashSet::new();
    for layer in &image.layers {
        let name = layer_member_name(layer)?;
        if written.insert(name.clone()) {
            if let Some((dir, _)) = name.split_once('/') {
                append_dir(&mut tar, &format!("{dir}/"))?;
            }
            append_blob(&mut tar, &name, layer)?;
        }
        layer_names.push(name);
    }
    let manifest = [ManifestEntry {
        config: config_name,
        repo_tags: (!repo_tags.is_empty()).then(|| repo_tags.to_vec()),
        layers: layer_names,
    }];
    append_bytes(&mut tar, MANIFEST_JSON, &serde_json::to_vec(&manifest)?)?;
    if let Some(repositories) = repositories {
        append_bytes(&mut tar, REPOSITORIES, &repositories)?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(())
}

/// `repositories`: `{"repo": {"tag": "<last layer hex>"}}` as `docker save` writes it;
/// `None` for an untagged image or one without layers.
fn repositories_json(image: &LocalImage, repo_tags: &[String]) -> Result<Option<Vec<u8>>> {
    let mut repositories: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    let top = match image.layers.last() {
        Some(layer) => Some(digest_parts(&layer.digest)?.1),
        None => None,
    };
    for repo_tag in repo_tags {
        let (repo, tag) = split_repo_tag(repo_tag)
            .ok_or_else(|| anyhow!("{repo_tag:?} is not of the form repository:tag"))?;
        if let Some(top) = top {
            repositories.entry(repo).or_default().insert(tag, top);
        }
    }
    if repositories.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_vec(&repositories)?))
}

/// `repo:tag` → (`repo`, `tag`); the tag is after the last `:` that follows the last `/`.
fn split_repo_tag(repo_tag: &str) -> Option<(&str, &str)> {
    let (repo, tag) = repo_tag.rsplit_once(':')?;
    if repo.is_empty() || tag.is_empty() || tag.contains('/') || repo_tag.contains('@') {
        return None;
    }
    Some((repo, tag))
}

/// What a layer's bytes are, from their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

fn sniff_compression(path: &Path) -> Result<LayerCompression> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut filled = 0;
    while filled < magic.len() {
        let n = file
            .read(&mut magic[filled..])
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(match &magic[..filled] {
        [0x1f, 0x8b, ..] => LayerCompression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => LayerCompression::Zstd,
        _ => LayerCompression::None,
    })
}

/// The member name of a layer: `<hex>/layer.tar`, `<hex>.tar.gz` or `<hex>.tar.zst`.
fn layer_member_name(layer: &BlobFile) -> Result<String> {
    let (_, hex) = digest_parts(&layer.digest)?;
    Ok(match sniff_compression(&layer.path)? {
        LayerCompression::None => format!("{hex}/layer.tar"),
        LayerCompression::Gzip => format!("{hex}.tar.gz"),
        LayerCompression::Zstd => format!("{hex}.tar.zst"),
    })
}

/// A header for a member: root-owned, mtime 0, so the archive depends only on its blobs.
fn member_header(entry_type: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_dir<W: Write>(tar: &mut Builder<W>, name: &str) -> Result<()> {
    let mut header = member_header(EntryType::Directory, 0o755, 0);
    tar.append_data(&mut header, name, io::empty())
        .with_context(|| format!("writing {name}"))
}

fn append_bytes<W: Write>(tar: &mut Builder<W>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = member_header(EntryType::Regular, 0o644, bytes.len() as u64);
    tar.append_data(&mut header, name, bytes)
        .with_context(|| format!("writing {name}"))
}

/// Streams a blob's file into the tar as `name`.
fn append_blob<W: Write>(tar: &mut Builder<W>, name: &str, blob: &BlobFile) -> Result<()> {
    let file = open_blob(blob)?;
    let mut header = member_header(EntryType::Regular, 0o644, blob.size);
    let mut reader = CountingReader::new(file.take(blob.size));
    tar.append_data(&mut header, name, &mut reader)
        .with_context(|| format!("copying blob {} into {name}", blob.digest))?;
    if reader.count != blob.size {
        bail!(
            "blob {} at {} shrank to {} bytes while it was copied",
            blob.digest,
            blob.path.display(),
            reader.count
        );
    }
    Ok(())
}

/// A file inside a tar: where its bytes start and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMember {
    /// Its name in the archive, cleaned (`./a//b` is `a/b`).
    pub name: String,
    /// Offset of its first byte in the tar file.
    pub offset: u64,
    /// Its length in bytes.
    pub size: u64,
}

/// One image of a `docker save` tarball, located but not extracted.
#[derive(Debug, Clone)]
pub struct DockerArchive {
    path: PathBuf,
    repo_tags: Vec<String>,
    config: ArchiveMember,
    layers: Vec<ArchiveMember>,
}

impl DockerArchive {
    /// The tarball this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The image's `RepoTags` (possibly none).
    pub fn repo_tags(&self) -> &[String] {
        &self.repo_tags
    }

    /// The config member.
    pub fn config(&self) -> &ArchiveMember {
        &self.config
    }

    /// The layer members, bottom first, as stored (possibly compressed).
    pub fn layers(&self) -> &[ArchiveMember] {
        &self.layers
    }

    /// The image config, read into memory (at most 64 MiB).
    pub fn config_bytes(&self) -> Result<Vec<u8>> {
        read_member_bytes(&self.path, &self.config)
    }

    /// A reader over one member's bytes, straight from the tarball.
    pub fn open_member(&self, member: &ArchiveMember) -> Result<io::Take<File>> {
        open_member(&self.path, member)
    }

    /// A reader over layer `index` (as stored), straight from the tarball.
    pub fn open_layer(&self, index: usize) -> Result<io::Take<File>> {
        let member = self.layers.get(index).ok_or_else(|| {
            anyhow!(
                "{} has {} layers, not {}",
                self.path.display(),
                self.layers.len(),
                index + 1
            )
        })?;
        self.open_member(member)
    }
}

/// Reads the `docker save` tarball at `path` and picks one image: the one tagged `want`
/// (`repository:tag`, compared after Docker's normalisation, so `busybox` matches
/// `docker.io/library/busybox:latest`), or the only one when `want` is `None`.
pub fn read_docker_archive(path: &Path, want: Option<&str>) -> Result<DockerArchive> {
    read(path, want).with_context(|| format!("reading docker archive {}", path.display()))
}

fn read(path: &Path, want: Option<&str>) -> Result<DockerArchive> {
    let members = scan_members(path)?;
    let manifest = read_member_bytes(path, &resolve(&members, MANIFEST_JSON)?)?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&manifest).context("parsing manifest.json")?;
    let entry = select_entry(&entries, want)?;
    let layers = entry
        .layers
        .iter()
        .map(|name| resolve(&members, name))
        .collect::<Result<Vec<_>>>()?;
    Ok(DockerArchive {
        path: path.to_path_buf(),
        repo_tags: entry.repo_tags.clone().unwrap_or_default(),
        config: resolve(&members, &entry.config)?,
        layers,
    })
}

/// What a tar entry is, for finding members by name.
#[derive(Debug, Clone)]
enum MemberKind {
    Data { offset: u64, size: u64 },
    Sparse,
    Symlink(String),
    Hardlink(String),
}

/// One pass over the tar (seeking over data), recording every file and link by name.
fn scan_members(path: &Path) -> Result<HashMap<String, MemberKind>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 2];
    if file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b] {
        bail!("it is gzip-compressed; decompress it first (gunzip)");
    }
    file.seek(SeekFrom::Start(0))?;
    super::check_tar_start(&mut file, path)?;
    let mut archive = tar::Archive::new(file);
    let mut members = HashMap::new();
    for entry in archive.entries_with_seek().context("reading the tar")? {
        let entry = entry.context("reading the tar")?;
        let Ok(name) = std::str::from_utf8(&entry.path_bytes()).map(clean_name) else {
            continue;
        };
        let link =
            || String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default()).into_owned();
        let kind = match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => MemberKind::Data {
                offset: entry.raw_file_position(),
                size: entry.size(),
            },
            EntryType::GNUSparse => MemberKind::Sparse,
            EntryType::Symlink => MemberKind::Symlink(link()),
            EntryType::Link => MemberKind::Hardlink(link()),
            _ => continue,
        };
        members.insert(name, kind);
    }
    Ok(members)
}

/// `./a//b/../c` → `a/c`: the name as a path relative to the archive root.
fn clean_name(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// Finds the data of member `name`, following links inside the archive
/// (`skopeo` writes `<id>/layer.tar` as a symlink to `../<diff id>.tar`).
fn resolve(members: &HashMap<String, MemberKind>, name: &str) -> Result<ArchiveMember> {
    let mut current = clean_name(name);
    for _ in 0..MAX_LINK_HOPS {
        match members.get(&current) {
            Some(MemberKind::Data { offset, size }) => {
                return Ok(ArchiveMember {
                    name: current,
                    offset: *offset,
                    size: *size,
                })
            }
            Some(MemberKind::Sparse) => bail!("member {current} is a sparse file"),
            Some(MemberKind::Hardlink(target)) => current = clean_name(target),
            Some(MemberKind::Symlink(target)) => {
                let parent = current.rsplit_once('/').map_or("", |(dir, _)| dir);
                current = if target.starts_with('/') {
                    clean_name(target)
                } else {
                    clean_name(&format!("{parent}/{target}"))
                };
            }
            None if current == clean_name(name) => bail!("it has no member {name}"),
            None => bail!("member {name} links to {current}, which is missing"),
        }
    }
    bail!("member {name}: too many links")
}

fn open_member(path: &Path, member: &ArchiveMember) -> Result<io::Take<File>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.seek(SeekFrom::Start(member.offset))
        .with_context(|| format!("seeking to {} in {}", member.name, path.display()))?;
    Ok(file.take(member.size))
}

fn read_member_bytes(path: &Path, member: &ArchiveMember) -> Result<Vec<u8>> {
    if member.size > MAX_JSON_BYTES {
        bail!("{} is {} bytes, too large", member.name, member.size);
    }
    let mut bytes = Vec::new();
    open_member(path, member)?
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", member.name))?;
    if bytes.len() as u64 != member.size {
        bail!("{} is truncated", member.name);
    }
    Ok(bytes)
}

fn select_entry<'a>(entries: &'a [ManifestEntry], want: Option<&str>) -> Result<&'a ManifestEntry> {
    let tags = || {
        let all: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.repo_tags.iter().flatten())
            .map(String::as_str)
            .collect();
        if all.is_empty() {
            "no tags".to_string()
        } else {
            all.join(", ")
        }
    };
    match (want, entries) {
        (Some(want), _) => entries
            .iter()
            .find(|e| e.repo_tags.iter().flatten().any(|t| same_repo_tag(t, want)))
            .ok_or_else(|| anyhow!("it has no image tagged {want}; it has {}", tags())),
        (None, [only]) => Ok(only),
        (None, []) => bail!("its manifest.json lists no images"),
        (None, _) => bail!(
            "it holds {} images ({}); say which repository:tag to use",
            entries.len(),
            tags()
        ),
    }
}

/// Whether two `repository:tag` strings name the same thing after Docker's normalisation
/// (a missing tag is `latest`). Strings that do not parse must be equal.
fn same_repo_tag(a: &str, b: &str) -> bool {
    let normal = |s: &str| {
        Reference::parse(s)
            .ok()
            .filter(|r| r.digest().is_none())
            .map(|r| format!("{}:{}", r.name(), r.tag().unwrap_or("latest")))
    };
    match (normal(a), normal(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::Value;

    use super::super::test_support::{make_image, make_layer, run, sha256_digest, Compression};
    use super::*;

    fn read_all(mut reader: impl Read) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// An image with a gzip, a zstd and an uncompressed layer.
    fn mixed_image(dir: &Path) -> Result<(LocalImage, Vec<String>)> {
        let layers = [
            make_layer(dir, &[("hello.txt", b"hello\n")], Compression::Gzip)?,
            make_layer(dir, &[("etc/zstd", b"zstd\n")], Compression::Zstd)?,
            make_layer(dir, &[("plain", b"plain\n")], Compression::None)?,
        ];
        let diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
        Ok((make_image(dir, "amd64", &layers)?, diff_ids))
    }

    #[test]
    fn skopeo_reads_what_we_write() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, diff_ids) = mixed_image(dir.path())?;
        let archive = dir.path().join("image.tar");
        let tags = vec!["example.com/test/app:1.0".to_string()];
        write_docker_archive(&archive, &image, &tags)?;
        assert!(!dir.path().join("image.tar.tmp").exists());

        let transport = format!("docker-archive:{}", archive.display());
        let inspect: Value = serde_json::from_str(&run("skopeo", &["inspect", &transport])?)?;
        assert_eq!(inspect["Layers"], serde_json::to_value(&diff_ids)?);
        assert_eq!(inspect["Architecture"], "amd64");
        let config: Value =
            serde_json::from_str(&run("skopeo", &["inspect", "--config", &transport])?)?;
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::to_value(&diff_ids)?
        );

        // Picking the image by tag, and copying it to an OCI layout.
        let by_tag = format!("{transport}:example.com/test/app:1.0");
        let oci = dir.path().join("oci");
        run(
            "skopeo",
            &["copy", &by_tag, &format!("oci:{}:x", oci.display())],
        )?;
        let copied: Value = serde_json::from_str(&run(
            "skopeo",
            &["inspect", "--config", &format!("oci:{}:x", oci.display())],
        )?)?;
        assert_eq!(
            copied["rootfs"]["diff_ids"],
            serde_json::to_value(&diff_ids)?
        );
        Ok(())
    }

    #[test]
    fn members_are_named_by_digest_and_compression() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, _) = mixed_image(dir.path())?;
        let archive = dir.path().join("image.tar");
        write_docker_archive(&archive, &image, &["a/b:c".to_string()])?;
        let listing = run("tar", &[std::ffi::OsStr::new("-tf"), archive.as_os_str()])?;
        let hex = |blob: &BlobFile| blob.digest["sha256:".len()..].to_string();
        let want = [
            format!("{}.json", hex(&image.config)),
            format!("{}.tar.gz", hex(&image.layers[0])),
            format!("{}.tar.zst", hex(&image.layers[1])),
            format!("{}/", hex(&image.layers[2])),
            format!("{}/layer.tar", hex(&image.layers[2])),
            "manifest.json".to_string(),
            "repositories".to_string(),
        ];
        assert_eq!(listing.lines().collect::<Vec<_>>(), want);

        let read = read_docker_archive(&archive, None)?;
        let repositories =
            read_member_bytes(&archive, &resolve(&scan_members(&archive)?, REPOSITORIES)?)?;
        let repositories: Value = serde_json::from_slice(&repositories)?;
        assert_eq!(repositories["a/b"]["c"], hex(&image.layers[2]));
        assert_eq!(read.repo_tags(), ["a/b:c"]);
        Ok(())
    }

    #[test]
    fn reader_round_trips_config_and_layers() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, _) = mixed_image(dir.path())?;
        let archive = dir.path().join("image.tar");
        write_docker_archive(
            &archive,
            &image,
            &["docker.io/library/busybox:1".to_string()],
        )?;

        let read = read_docker_archive(&archive, Some("busybox:1"))?;
        assert_eq!(read.config_bytes()?, fs::read(&image.config.path)?);
        assert_eq!(read.layers().len(), 3);
        for (i, layer) in image.layers.iter().enumerate() {
            assert_eq!(read.layers()[i].size, layer.size);
            assert_eq!(sha256_digest(&read_all(read.open_layer(i)?)?), layer.digest);
        }
        assert!(read.open_layer(3).is_err());
        // The only image is chosen when none is asked for.
        assert_eq!(read_docker_archive(&archive, None)?.layers().len(), 3);

        let err = format!(
            "{:#}",
            read_docker_archive(&archive, Some("busybox:2"))
                .err()
                .context("found a missing tag")?
        );
        assert!(err.contains("no image tagged busybox:2"), "{err}");
        assert!(err.contains("docker.io/library/busybox:1"), "{err}");
        Ok(())
    }

    #[test]
    fn reader_reads_skopeo_archives() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, diff_ids) = mixed_image(dir.path())?;
        let ours = dir.path().join("ours.tar");
        write_docker_archive(&ours, &image, &["one:1".to_string()])?;
        let theirs = dir.path().join("theirs.tar");
        run(
            "skopeo",
            &[
                "copy".to_string(),
                format!("docker-archive:{}", ours.display()),
                format!("docker-archive:{}:two:2", theirs.display()),
            ],
        )?;
        let read = read_docker_archive(&theirs, Some("two:2"))?;
        assert_eq!(read.config_bytes()?, fs::read(&image.config.path)?);
        // skopeo stores layers uncompressed: each is its diff ID.
        for (i, diff_id) in diff_ids.iter().enumerate() {
            assert_eq!(&sha256_digest(&read_all(read.open_layer(i)?)?), diff_id);
        }
        Ok(())
    }

    #[test]
    fn reader_needs_a_choice_among_several_images() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, _) = mixed_image(dir.path())?;
        let archive = dir.path().join("image.tar");
        write_docker_archive(&archive, &image, &[])?;
        // Rewrite manifest.json with two entries by building a second tar around the members.
        let members = scan_members(&archive)?;
        let entry = ManifestEntry {
            config: format!("{}.json", &image.config.digest["sha256:".len()..]),
            repo_tags: Some(vec!["x:1".into()]),
            layers: vec![],
        };
        let second = ManifestEntry {
            repo_tags: Some(vec!["y:2".into()]),
            ..entry.clone()
        };
        let two = dir.path().join("two.tar");
        let mut tar = Builder::new(File::create(&two)?);
        let config = resolve(&members, &entry.config)?;
        append_bytes(
            &mut tar,
            &entry.config,
            &read_member_bytes(&archive, &config)?,
        )?;
        append_bytes(
            &mut tar,
            MANIFEST_JSON,
            &serde_json::to_vec(&[entry, second])?,
        )?;
        tar.into_inner()?.flush()?;

        let err = format!(
            "{:#}",
            read_docker_archive(&two, None)
                .err()
                .context("no choice needed")?
        );
        assert!(err.contains("2 images (x:1, y:2)"), "{err}");
        assert_eq!(read_docker_archive(&two, Some("y:2"))?.repo_tags(), ["y:2"]);
        Ok(())
    }

    #[test]
    fn untagged_archive_has_null_repo_tags_and_no_repositories() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, _) = mixed_image(dir.path())?;
        let archive = dir.path().join("image.tar");
        write_docker_archive(&archive, &image, &[])?;
        let members = scan_members(&archive)?;
        assert!(!members.contains_key(REPOSITORIES));
        let manifest: Value = serde_json::from_slice(&read_member_bytes(
            &archive,
            &resolve(&members, MANIFEST_JSON)?,
        )?)?;
        assert_eq!(manifest[0]["RepoTags"], Value::Null);
        Ok(())
    }

    #[test]
    fn failed_write_leaves_nothing() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (mut image, _) = mixed_image(dir.path())?;
        image.layers[1].size += 1;
        let archive = dir.path().join("image.tar");
        let err = format!(
            "{:#}",
            write_docker_archive(&archive, &image, &[])
                .err()
                .context("wrote a bad blob")?
        );
        assert!(err.contains("descriptor says"), "{err}");
        assert!(!archive.exists());
        assert!(!dir.path().join("image.tar.tmp").exists());
        assert!(write_docker_archive(&archive, &image, &["no-tag@x".into()]).is_err());
        Ok(())
    }

    #[test]
    fn gzip_archive_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("image.tar.gz");
        fs::write(&path, [0x1f, 0x8b, 0, 0])?;
        let err = format!(
            "{:#}",
            read_docker_archive(&path, None)
                .err()
                .context("read gzip")?
        );
        assert!(err.contains("gzip-compressed"), "{err}");
        Ok(())
    }

    #[test]
    fn names_and_links_resolve() -> Result<()> {
        assert_eq!(clean_name("./a//b/../c"), "a/c");
        assert_eq!(clean_name("manifest.json"), "manifest.json");
        let mut members = HashMap::new();
        members.insert(
            "d.tar".to_string(),
            MemberKind::Data {
                offset: 512,
                size: 3,
            },
        );
        members.insert(
            "id/layer.tar".to_string(),
            MemberKind::Symlink("../d.tar".into()),
        );
        members.insert(
            "hard".to_string(),
            MemberKind::Hardlink("id/layer.tar".into()),
        );
        members.insert("loop".to_string(), MemberKind::Symlink("loop".into()));
        members.insert(
            "dangling".to_string(),
            MemberKind::Symlink("nowhere".into()),
        );
        assert_eq!(resolve(&members, "./hard")?.name, "d.tar");
        assert_eq!(resolve(&members, "id/layer.tar")?.offset, 512);
        assert!(resolve(&members, "loop").is_err());
        let err = format!(
            "{:#}",
            resolve(&members, "dangling").err().context("dangling")?
        );
        assert!(err.contains("links to nowhere"), "{err}");
        Ok(())
    }

    #[test]
    fn repo_tags_compare_normalised() {
        for (a, b, same) in [
            ("docker.io/library/busybox:latest", "busybox", true),
            ("busybox:1", "index.docker.io/library/busybox:1", true),
            ("busybox:1", "busybox:2", false),
            ("localhost:5000/a:b", "localhost:5000/a:b", true),
            ("localhost:5000/a", "localhost:5000/a:latest", true),
            ("Not Valid", "Not Valid", true),
            ("Not Valid", "not valid", false),
        ] {
            assert_eq!(same_repo_tag(a, b), same, "{a} vs {b}");
        }
        assert_eq!(
            split_repo_tag("localhost:5000/a:b"),
            Some(("localhost:5000/a", "b"))
        );
        assert_eq!(split_repo_tag("localhost:5000/a"), None);
        assert_eq!(split_repo_tag("a@sha256:00"), None);
    }
}
