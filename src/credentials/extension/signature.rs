//! The request signature of Drone's extension protocol: a draft-cavage HTTP signature
//! (<https://tools.ietf.org/html/draft-cavage-http-signatures>) with HMAC-SHA256, written
//! exactly as `99designs/httpsignatures-go` (commit 88528bf, the version `drone/drone-go`
//! pins) writes it, since that is also what an extension built on Drone's starter project
//! verifies with. Also the `Digest` and `Date` header values Drone's client sends.
//!
//! Pure functions, no I/O. The signing string is one `name: value` line per signed header,
//! in the listed order, joined by `\n` (no trailing newline); names are lower case, values
//! as sent. The `Signature` header is `keyId="…",algorithm="hmac-sha256",signature="…"`
//! followed by `,headers="…"` (httpsignatures-go's order: `signature` before `headers`).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

/// The `keyId` Drone's client signs with.
pub const KEY_ID: &str = "hmac-key";

/// The only algorithm Drone's client uses.
pub const ALGORITHM: &str = "hmac-sha256";

/// The headers Drone's client signs, in order (`(request-target)` is left out on purpose:
/// "reverse proxies, including aws lambda with api gateway, fail verification").
pub const SIGNED_HEADERS: [&str; 5] = [
    "accept",
    "accept-encoding",
    "content-type",
    "date",
    "digest",
];

/// The signing string for `headers`, each looked up (by its lower-case name) with `value`.
/// A header that is missing or empty is an error, as in httpsignatures-go
/// (`Missing required header 'foo'`).
pub fn signing_string<'a>(
    headers: &[&str],
    value: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, String> {
    let mut lines = Vec::with_capacity(headers.len());
    for header in headers {
        let name = header.to_ascii_lowercase();
        match value(&name) {
            Some(v) if !v.is_empty() => lines.push(format!("{name}: {v}")),
            _ => return Err(format!("Missing required header '{name}'")),
        }
    }
    Ok(lines.join("\n"))
}

/// Base64 (standard, padded) of HMAC-SHA256 of `signing_string` under `key`.
pub fn hmac_sha256(key: &[u8], signing_string: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(signing_string.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Signature` header value, in httpsignatures-go's `Signature.String()` form.
pub fn header_value(key_id: &str, algorithm: &str, signature: &str, headers: &[&str]) -> String {
    let mut value = format!(r#"keyId="{key_id}",algorithm="{algorithm}",signature="{signature}""#);
    if !headers.is_empty() {
        let list: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
        value.push_str(&format!(r#",headers="{}""#, list.join(" ")));
    }
    value
}

/// The `Digest` header value Drone's client sends: `SHA-256=` and the base64 of the body's
/// SHA-256.
pub fn digest(body: &[u8]) -> String {
    let hash = Sha256::digest(body);
    format!(
        "SHA-256={}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// An HTTP date (RFC 7231 IMF-fixdate, Go's `http.TimeFormat`) for seconds since the epoch:
/// `Thu, 05 Jan 2012 21:31:40 GMT`.
pub fn http_date(unix_seconds: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds / 86_400;
    let second_of_day = unix_seconds % 86_400;
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[((days + 4) % 7) as usize];
    let (year, month, day) = crate::time::civil_from_days(days);
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(month - 1) as usize],
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    //! httpsignatures-go's published vectors (`signature_test.go`, `signer_test.go` at
    //! 88528bf): key `SomethingRandom`, keyId `Test`, `Date: Thu, 05 Jan 2012 21:31:40 GMT`,
    //! the default signers' headers `(request-target) date`. The Go tests sign an
    //! `http.Request` with no method and no URL, so the request-target line is
    //! `(request-target): ` + `"" + " " + ""`: a value of one space.
    use super::*;

    const TEST_KEY: &str = "SomethingRandom";
    const TEST_KEY_ID: &str = "Test";
    const TEST_DATE: &str = "Thu, 05 Jan 2012 21:31:40 GMT";
    const TEST_SIGNATURE: &str = r#"keyId="Test",algorithm="hmac-sha256",signature="JldXnt8W9t643M2Sce10gqCh/+E7QIYLiI+bSjnFBGCti7s+mPPvOjVb72sbd1FjeOUwPTDpKbrQQORrm+xBYfAwCxF3LBSSzORvyJ5nRFCFxfJ3nlQD6Kdxhw8wrVZX5nSem4A/W3C8qH5uhFTRwF4ruRjh+ENHWuovPgO/HGQ=""#;
    const TEST_HASH: &str = "JldXnt8W9t643M2Sce10gqCh/+E7QIYLiI+bSjnFBGCti7s+mPPvOjVb72sbd1FjeOUwPTDpKbrQQORrm+xBYfAwCxF3LBSSzORvyJ5nRFCFxfJ3nlQD6Kdxhw8wrVZX5nSem4A/W3C8qH5uhFTRwF4ruRjh+ENHWuovPgO/HGQ=";

    /// The Go tests' request: only a Date header (and the pseudo-header for the
    /// request-target line of a request without method and URL).
    fn go_test_request(date: &'static str) -> impl Fn(&str) -> Option<&'static str> {
        move |name| match name {
            "date" => Some(date),
            "(request-target)" => Some(" "),
            _ => None,
        }
    }

    const DEFAULT_HEADERS: [&str; 2] = ["(request-target)", "date"];

    #[test]
    fn default_signer_signing_string() {
        let s = signing_string(&DEFAULT_HEADERS, go_test_request(TEST_DATE)).unwrap();
        assert_eq!(
            s,
            "(request-target):  \ndate: Thu, 05 Jan 2012 21:31:40 GMT"
        );
    }

    #[test]
    fn sign_sha256_vector() {
        // signer_test.go TestSignSha256.
        let s = signing_string(&DEFAULT_HEADERS, go_test_request(TEST_DATE)).unwrap();
        assert_eq!(
            hmac_sha256(TEST_KEY.as_bytes(), &s),
            "mIX1nFtRDhvv8HIUSNpE3NQZZ6EIY98ObNkJM+Oq7AU="
        );
    }

    #[test]
    fn sign_sha1_vector_checks_the_signing_string() {
        // signer_test.go TestSignSha1: the same signing string under HMAC-SHA1 (ring's, as
        // we only sign with SHA-256), so the string itself is checked by a second vector.
        let s = signing_string(&DEFAULT_HEADERS, go_test_request(TEST_DATE)).unwrap();
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            TEST_KEY.as_bytes(),
        );
        let tag = ring::hmac::sign(&key, s.as_bytes());
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref()),
            "RIdBXxLb6gWsu3bZtq3rQWSR1nk="
        );
    }

    #[test]
    fn signature_header_is_written_as_go_writes_it() {
        // signature_test.go: String() of the parsed TEST_SIGNATURE (no headers) gives it back.
        assert_eq!(
            header_value(TEST_KEY_ID, ALGORITHM, TEST_HASH, &[]),
            TEST_SIGNATURE
        );
        // With headers, they come last, lower case, space-separated.
        assert_eq!(
            header_value(KEY_ID, ALGORITHM, "c2ln", &["Accept", "Date"]),
            r#"keyId="hmac-key",algorithm="hmac-sha256",signature="c2ln",headers="accept date""#
        );
    }

    #[test]
    fn a_changed_date_changes_the_signature() {
        // signature_test.go TestNotValidIfRequestHeadersChange.
        let a = signing_string(&DEFAULT_HEADERS, go_test_request(TEST_DATE)).unwrap();
        let b = signing_string(
            &DEFAULT_HEADERS,
            go_test_request("Thu, 05 Jan 2012 21:31:41 GMT"),
        )
        .unwrap();
        assert_ne!(
            hmac_sha256(TEST_KEY.as_bytes(), &a),
            hmac_sha256(TEST_KEY.as_bytes(), &b)
        );
    }

    #[test]
    fn a_missing_header_is_an_error() {
        // signer_test.go TestSignWithMissingHeader.
        assert_eq!(
            signing_string(&["foo"], go_test_request(TEST_DATE)).unwrap_err(),
            "Missing required header 'foo'"
        );
        assert!(signing_string(&["date"], |_| Some("")).is_err());
    }

    #[test]
    fn drone_signing_string_lists_the_five_headers_in_order() {
        let values = [
            ("accept", "application/vnd.drone.registry.v1+json"),
            ("accept-encoding", "identity"),
            ("content-type", "application/json"),
            ("date", TEST_DATE),
            ("digest", "SHA-256=abc="),
        ];
        let lookup = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        assert_eq!(
            signing_string(&SIGNED_HEADERS, lookup).unwrap(),
            "accept: application/vnd.drone.registry.v1+json\naccept-encoding: identity\n\
             content-type: application/json\ndate: Thu, 05 Jan 2012 21:31:40 GMT\n\
             digest: SHA-256=abc="
        );
    }

    #[test]
    fn digest_header() {
        // sha256("") and sha256("{}"), base64 as Go's base64.StdEncoding writes them.
        assert_eq!(
            digest(b""),
            "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            digest(b"{}"),
            "SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_325_799_100), TEST_DATE);
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(4_133_980_799), "Fri, 31 Dec 2100 23:59:59 GMT");
    }
}
