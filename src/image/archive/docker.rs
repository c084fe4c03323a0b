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

use super::{commit, open_blob, tmp_sibling, MAX_JSON_BYTES};
use crate::image::compression::{self, Compression};
use crate::image::hashing::CountingReader;
use crate::image::model::{Blob, Image};
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
pub fn write_docker_archive(path: &Path, image: &Image, repo_tags: &[String]) -> Result<()> {
    let tmp = tmp_sibling(path)?;
    let written = write_tar(&tmp, image, repo_tags);
    commit(&tmp, path, written)
        .with_context(|| format!("writing docker archive {}", path.display()))
}

fn write_tar(tmp: &Path, image: &Image, repo_tags: &[String]) -> Result<()> {
    let repositories = repositories_json(image, repo_tags)?;
    let config_hex = image.config.digest.hex();
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
fn repositories_json(image: &Image, repo_tags: &[String]) -> Result<Option<Vec<u8>>> {
    let mut repositories: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    let top = image.layers.last().map(|layer| layer.digest.hex());
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

/// The member name of a layer: `<hex>/layer.tar`, `<hex>.tar.gz` or `<hex>.tar.zst`.
fn layer_member_name(layer: &Blob) -> Result<String> {
    let hex = layer.digest.hex();
    let path = layer.path()?;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let compression =
        compression::sniff_start(file).with_context(|| format!("reading {}", path.display()))?;
    Ok(match compression {
        Compression::None => format!("{hex}/layer.tar"),
        Compression::Gzip => format!("{hex}.tar.gz"),
        Compression::Zstd => format!("{hex}.tar.zst"),
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
fn append_blob<W: Write>(tar: &mut Builder<W>, name: &str, blob: &Blob) -> Result<()> {
    let file = open_blob(blob)?;
    let mut header = member_header(EntryType::Regular, 0o644, blob.size);
    let mut reader = CountingReader::new(file.take(blob.size));
    tar.append_data(&mut header, name, &mut reader)
        .with_context(|| format!("copying blob {} into {name}", blob.digest))?;
    if reader.count() != blob.size {
        bail!(
            "blob {} at {} shrank to {} bytes while it was copied",
            blob.digest,
            blob.source.describe(),
            reader.count()
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
    if compression::sniff_start(&mut file).ok() == Some(Compression::Gzip) {
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
pub fn clean_name(name: &str) -> String {
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

/// A reader over `member`'s bytes in the tarball at `path`.
pub fn open_member(path: &Path, member: &ArchiveMember) -> Result<io::Take<File>> {
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
mod tests;
