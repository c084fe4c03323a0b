//! Property tests of the tar applier ([`crate::image::rootfs::Rootfs`]) on random tar
//! streams: entries of every type with hostile names (`..`, absolute paths, whiteouts, PAX
//! and GNU long names) and links aimed at a sibling of `rootfs/`, and raw noise. Whatever
//! the stream, applying it never panics and never touches anything outside `rootfs/`.

use proptest::prelude::*;
use std::path::Path;

/// One raw tar entry: type flag, name, link name, data.
#[derive(Debug, Clone)]
struct RawEntry {
    kind: u8,
    name: Vec<u8>,
    link: Vec<u8>,
    data: Vec<u8>,
}

/// Path components worth trying, `OUTSIDE` standing for the absolute path of the sibling.
const COMPONENTS: [&str; 12] = [
    "a",
    "b",
    "etc",
    "..",
    ".",
    "",
    ".wh.a",
    ".wh..wh..opq",
    ".wh.",
    "outside",
    "OUTSIDE",
    "c d",
];

fn path_of(outside: &str, parts: &[&str], absolute: bool) -> Vec<u8> {
    let mut joined = parts
        .join("/")
        .replace("OUTSIDE", outside.trim_start_matches('/'));
    if absolute {
        joined.insert(0, '/');
    }
    joined.into_bytes()
}

fn entry(outside: String) -> impl Strategy<Value = RawEntry> {
    let path = (
        prop::collection::vec(prop::sample::select(COMPONENTS.to_vec()), 1..5),
        any::<bool>(),
    );
    (
        prop::sample::select(b"0125673xLK".to_vec()),
        path.clone(),
        path,
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(move |(kind, (name, abs_name), (link, abs_link), data)| {
            let name = path_of(&outside, &name, abs_name && name.len() < 3);
            let link = path_of(&outside, &link, abs_link);
            let data = match kind {
                // PAX records naming a path or a link (the next entry's).
                b'x' => pax(&[("path", &name), ("linkpath", &link)]),
                // GNU long names: the next entry's name or link name.
                b'L' | b'K' => {
                    let mut long = name.clone();
                    long.push(0);
                    long
                }
                b'0' | b'7' => data,
                _ => Vec::new(),
            };
            RawEntry {
                kind,
                name,
                link,
                data,
            }
        })
}

/// PAX extended-header records.
fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body_len = key.len() + value.len() + 3;
        // The length counts itself.
        let mut len = body_len + 1;
        while len.to_string().len() + body_len != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The stream: 512-byte GNU headers written field by field (so names the `tar` crate
/// would refuse to write still go in), data padded to 512, two zero blocks.
fn tar_stream(entries: &[RawEntry], truncate_to: Option<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_gnu();
        {
            let old = header.as_old_mut();
            let n = e.name.len().min(100);
            old.name[..n].copy_from_slice(&e.name[..n]);
            let l = e.link.len().min(100);
            old.linkname[..l].copy_from_slice(&e.link[..l]);
        }
        header.set_mode(0o755);
        header.set_size(e.data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::new(e.kind));
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    if let Some(len) = truncate_to {
        out.truncate(len.min(out.len()));
    }
    out
}

/// Every path under `dir`, with its kind and, for files, contents.
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let what = if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
            format!("dir {:o}", meta.permissions().mode_bits())
        } else if meta.is_file() {
            format!("file {:?}", std::fs::read(&path).unwrap_or_default())
        } else {
            "other".to_string()
        };
        found.push((path.display().to_string(), what));
    }
    found.sort();
    found
}

trait ModeBits {
    fn mode_bits(&self) -> u32;
}

impl ModeBits for std::fs::Permissions {
    fn mode_bits(&self) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        self.mode() & 0o7777
    }
}

/// Applies the stream `build` makes (given the absolute path of `rootfs/`'s sibling) and
/// checks that nothing but `rootfs/` changed.
fn apply_and_check(build: impl Fn(&str) -> Vec<u8>) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let outside = tmp.path().join("outside");
    let stream = build(&outside.display().to_string());
    let stream = stream.as_slice();
    std::fs::create_dir(&outside).map_err(|e| TestCaseError::fail(e.to_string()))?;
    std::fs::write(outside.join("sentinel"), b"x")
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let before = snapshot(&outside);
    let rootfs_path = tmp.path().join("rootfs");
    let mut rootfs = crate::image::rootfs::Rootfs::create(&rootfs_path)
        .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    // Errors are fine (hostile layers are refused); panics and escapes are not.
    if rootfs.apply_layer(stream, "random").is_ok() {
        let _ = rootfs.finish();
    }
    let siblings: Vec<String> = std::fs::read_dir(tmp.path())
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut siblings = siblings;
    siblings.sort();
    prop_assert_eq!(siblings, vec!["outside".to_string(), "rootfs".to_string()]);
    prop_assert_eq!(snapshot(&outside), before);
    Ok(())
}

fn entries_and_outside() -> impl Strategy<Value = (Vec<RawEntry>, Option<usize>)> {
    // The sibling's absolute path is only known once the case's temp dir exists: a marker
    // stands for it until then (see `localise`).
    (
        prop::collection::vec(entry("/OUTSIDE_ABS".to_string()), 1..12),
        prop::option::of(0usize..8192),
    )
}

/// Points the marker at this case's real sibling directory.
fn localise(entries: &[RawEntry], outside: &str) -> Vec<RawEntry> {
    let swap = |bytes: &[u8]| -> Vec<u8> {
        String::from_utf8_lossy(bytes)
            .replace("OUTSIDE_ABS", outside.trim_start_matches('/'))
            .into_bytes()
    };
    entries
        .iter()
        .map(|e| RawEntry {
            kind: e.kind,
            name: swap(&e.name),
            link: swap(&e.link),
            data: swap(&e.data),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_tar_streams_stay_inside_rootfs((entries, truncate) in entries_and_outside()) {
        apply_and_check(|outside| tar_stream(&localise(&entries, outside), truncate))?;
    }

    #[test]
    fn tar_noise_never_panics(noise in prop::collection::vec(any::<u8>(), 0..4096)) {
        apply_and_check(|_| noise.clone())?;
    }
}
