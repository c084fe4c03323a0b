//! The metadata of one tar entry, read from its header and PAX records.

use std::io::Read;

use anyhow::{bail, Context as _};
use rustix::fs::Timespec;

/// What an entry says about ownership, permissions, time and extended attributes.
pub(super) struct Meta {
    /// Permission bits, including setuid, setgid and sticky (`0o7777`).
    pub(super) mode: u32,
    /// Owner (PAX `uid` already applied by the tar reader).
    pub(super) uid: u32,
    /// Group (PAX `gid` already applied by the tar reader).
    pub(super) gid: u32,
    /// Modification time: PAX `mtime` (with its fraction) or the header's.
    pub(super) mtime: Timespec,
    /// Extended attributes from PAX `SCHILY.xattr.<name>` records, in order.
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The PAX record prefix for extended attributes.
const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Reads an entry's metadata.
pub(super) fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> anyhow::Result<Meta> {
    let header = entry.header();
    let fields = header.as_old();
    let mode = numeric(header.mode().map(u64::from), &fields.mode).context("reading the mode")?;
    let mode = (mode & 0o7777) as u32;
    let uid = numeric(header.uid(), &fields.uid).context("reading the uid")?;
    let uid = id(uid).with_context(|| format!("uid {uid} is out of range"))?;
    let gid = numeric(header.gid(), &fields.gid).context("reading the gid")?;
    let gid = id(gid).with_context(|| format!("gid {gid} is out of range"))?;
    let seconds = numeric(header.mtime(), &fields.mtime).context("reading the mtime")?;
    let mut mtime = Timespec {
        tv_sec: i64::try_from(seconds).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(records) = entry.pax_extensions().context("reading PAX records")? {
        for record in records {
            let record = record.context("reading PAX records")?;
            let key = record.key_bytes();
            if key == b"mtime" {
                mtime = parse_time(record.value_bytes()).with_context(|| {
                    format!(
                        "invalid PAX mtime {:?}",
                        String::from_utf8_lossy(record.value_bytes())
                    )
                })?;
            } else if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A numeric header field as the tar reader parsed it, except that a blank field (only
/// NULs and spaces, as some writers leave unused fields) is 0, as in Go's `archive/tar`.
fn numeric(parsed: std::io::Result<u64>, raw: &[u8]) -> std::io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        other => other,
    }
}

/// A user or group id; `u32::MAX` is not one (to `chown` it means "leave as is").
fn id(raw: u64) -> Option<u32> {
    u32::try_from(raw).ok().filter(|&id| id != u32::MAX)
}

/// Parses a PAX time: decimal seconds since the epoch, optionally negative, optionally
/// with a fraction (digits past nanoseconds are dropped).
fn parse_time(value: &[u8]) -> anyhow::Result<Timespec> {
    let (negative, value) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (whole, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, &value[..0]),
    };
    if whole.is_empty() || !whole.iter().chain(fraction).all(u8::is_ascii_digit) {
        bail!("not a decimal number");
    }
    let mut seconds: i64 = 0;
    for &digit in whole {
        seconds = seconds
            .checked_mul(10)
            .and_then(|s| s.checked_add(i64::from(digit - b'0')))
            .context("out of range")?;
    }
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + fraction.get(i).map_or(0, |&digit| i64::from(digit - b'0'));
    }
    if negative {
        seconds = -seconds;
        if nanos > 0 {
            seconds -= 1;
            nanos = 1_000_000_000 - nanos;
        }
    }
    Ok(Timespec {
        tv_sec: seconds,
        tv_nsec: nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_numeric_fields_are_zero() {
        let bad = || Err(std::io::Error::other("not a number"));
        assert_eq!(numeric(Ok(7), b"0000007\0").unwrap(), 7);
        assert_eq!(numeric(bad(), b"\0\0\0\0\0\0\0\0").unwrap(), 0);
        assert_eq!(numeric(bad(), b"        ").unwrap(), 0);
        assert!(numeric(bad(), b"12x\0\0\0\0\0").is_err());
        assert_eq!(id(0), Some(0));
        assert_eq!(id(u64::from(u32::MAX)), None);
        assert_eq!(id(1 << 40), None);
    }

    #[test]
    fn parse_time_table() {
        let cases: &[(&str, Option<(i64, i64)>)] = &[
            ("0", Some((0, 0))),
            ("1700000000", Some((1_700_000_000, 0))),
            ("1700000000.5", Some((1_700_000_000, 500_000_000))),
            ("1700000000.123456789", Some((1_700_000_000, 123_456_789))),
            ("1700000000.1234567891", Some((1_700_000_000, 123_456_789))),
            ("12.000000001", Some((12, 1))),
            ("12.", Some((12, 0))),
            ("-1", Some((-1, 0))),
            ("-1.5", Some((-2, 500_000_000))),
            ("-0.25", Some((-1, 750_000_000))),
            ("", None),
            ("-", None),
            (".5", None),
            ("1e9", None),
            ("1.2.3", None),
            (" 1", None),
            ("99999999999999999999", None),
        ];
        for (value, want) in cases {
            let got = parse_time(value.as_bytes())
                .ok()
                .map(|t| (t.tv_sec, t.tv_nsec));
            assert_eq!(got, *want, "parse_time({value:?})");
        }
    }
}
