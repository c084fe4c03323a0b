//! Which `config.json` key is a registry's: pure matching of keys written as `host`,
//! `host:port`, `https://host/v1/` or `http://host` against a registry's API host.
//!
//! Ranks, best first: 0, the key is the host as written (ASCII case aside); 1, a bare
//! `host[:port]` key equal after normalisation (`:443` dropped, Docker Hub's names
//! `docker.io`, `index.docker.io`, `registry-1.docker.io` made one); 2, a URL key
//! (`scheme://host/path`) equal after normalisation. Ties go to the key that sorts first,
//! so the choice never depends on the JSON's order or a hash.

use crate::reference::{DOCKER_HUB, DOCKER_HUB_API};

/// Docker Hub's names in `config.json` keys (`docker login` writes the last one).
const DOCKER_HUB_NAMES: [&str; 4] = [
    DOCKER_HUB,
    "index.docker.io",
    DOCKER_HUB_API,
    "https://index.docker.io/v1/",
];

/// The server URL Docker gives credential helpers for Docker Hub.
pub const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";

/// A key that matched, and how well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'k> {
    /// The key as written in the config.
    pub key: &'k str,
    /// 0 exact, 1 normalised bare host, 2 normalised URL.
    pub rank: u8,
}

/// A registry to look up: its API host, and whether it is Docker Hub (its API host, or the
/// host that stands in for it).
#[derive(Debug, Clone, Copy)]
pub struct Target<'h> {
    /// `host[:port]` as the client contacts it.
    pub host: &'h str,
    /// True for Docker Hub.
    pub docker_hub: bool,
}

/// `key` as `host[:port]`: no scheme, no path, lower case, no `:443`, Docker Hub as
/// `docker.io`.
pub fn normalise(key: &str) -> String {
    let key = key.trim();
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or(without_scheme)
        .to_ascii_lowercase();
    let host = host.strip_suffix(":443").unwrap_or(&host).to_string();
    if DOCKER_HUB_NAMES.contains(&host.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// True when `key` is written as a URL (a scheme or a path).
fn is_url_form(key: &str) -> bool {
    key.contains("://") || key.trim().trim_end_matches('/').contains('/')
}

/// How well `key` matches `target`, if at all.
pub fn rank(key: &str, target: Target<'_>) -> Option<u8> {
    if key.trim().eq_ignore_ascii_case(target.host) {
        return Some(0);
    }
    let normalised = normalise(key);
    let matches =
        normalised == normalise(target.host) || (target.docker_hub && normalised == DOCKER_HUB);
    match (matches, is_url_form(key)) {
        (false, _) => None,
        (true, false) => Some(1),
        (true, true) => Some(2),
    }
}

/// Every key of `keys` that matches `target`, best first (see the module doc).
pub fn matches<'k>(keys: impl IntoIterator<Item = &'k str>, target: Target<'_>) -> Vec<Match<'k>> {
    let mut found: Vec<Match<'k>> = keys
        .into_iter()
        .filter_map(|key| rank(key, target).map(|rank| Match { key, rank }))
        .collect();
    found.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.key.cmp(b.key)));
    found
}

/// The line said on the log when more than one key matches (key names only, no secret).
pub fn choice_note(section: &str, host: &str, found: &[Match<'_>]) -> Option<String> {
    let (first, rest) = found.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let others: Vec<String> = rest.iter().map(|m| format!("{:?}", m.key)).collect();
    Some(format!(
        "docker_config: {section} has {} keys for registry {host}; using {:?} (an exact key wins \
         over a normalised one, a bare host over a URL, then the first in sort order), not {}",
        found.len(),
        first.key,
        others.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: Target<'static> = Target {
        host: DOCKER_HUB_API,
        docker_hub: true,
    };

    fn target(host: &str) -> Target<'_> {
        Target {
            host,
            docker_hub: false,
        }
    }

    #[test]
    fn key_shapes_match_their_registry() {
        let table: &[(&str, &str, Option<u8>)] = &[
            ("gcr.io", "gcr.io", Some(0)),
            ("GCR.io", "gcr.io", Some(0)),
            ("gcr.io:443", "gcr.io", Some(1)),
            ("https://gcr.io", "gcr.io", Some(2)),
            ("https://gcr.io/v1/", "gcr.io", Some(2)),
            ("http://gcr.io", "gcr.io", Some(2)),
            ("gcr.io/", "gcr.io", Some(1)),
            ("127.0.0.1:5000", "127.0.0.1:5000", Some(0)),
            ("http://127.0.0.1:5000", "127.0.0.1:5000", Some(2)),
            ("https://127.0.0.1:5000/v2/", "127.0.0.1:5000", Some(2)),
            ("127.0.0.1", "127.0.0.1:5000", None),
            ("127.0.0.1:5001", "127.0.0.1:5000", None),
            ("eu.gcr.io", "gcr.io", None),
            ("gcr.io.evil", "gcr.io", None),
            ("https://evil.example/gcr.io", "gcr.io", None),
            ("docker.io", "gcr.io", None),
        ];
        for (key, host, expected) in table {
            assert_eq!(rank(key, target(host)), *expected, "{key} for {host}");
        }
    }

    #[test]
    fn docker_hub_names_are_one_registry() {
        let table: &[(&str, Option<u8>)] = &[
            ("registry-1.docker.io", Some(0)),
            ("docker.io", Some(1)),
            ("index.docker.io", Some(1)),
            ("https://index.docker.io/v1/", Some(2)),
            ("https://registry-1.docker.io/v2/", Some(2)),
            ("http://docker.io", Some(2)),
            ("quay.io", None),
        ];
        for (key, expected) in table {
            assert_eq!(rank(key, HUB), *expected, "{key}");
        }
        // A stand-in for Docker Hub finds Docker Hub's entries and its own.
        let stand_in = Target {
            host: "127.0.0.1:5001",
            docker_hub: true,
        };
        assert_eq!(rank("https://index.docker.io/v1/", stand_in), Some(2));
        assert_eq!(rank("127.0.0.1:5001", stand_in), Some(0));
        // Not Docker Hub: Docker Hub's keys do not match the same host.
        assert_eq!(rank("docker.io", target("127.0.0.1:5001")), None);
    }

    #[test]
    fn the_choice_is_exact_then_bare_then_url_then_sorted() {
        let keys = [
            "https://gcr.io",
            "http://gcr.io",
            "gcr.io:443",
            "gcr.io",
            "quay.io",
        ];
        let found = matches(keys, target("gcr.io"));
        let order: Vec<&str> = found.iter().map(|m| m.key).collect();
        assert_eq!(
            order,
            ["gcr.io", "gcr.io:443", "http://gcr.io", "https://gcr.io"]
        );
        // Whatever the order the keys come in.
        let mut reversed = keys;
        reversed.reverse();
        assert_eq!(matches(reversed, target("gcr.io")), found);

        let hub = matches(
            [
                "https://index.docker.io/v1/",
                "index.docker.io",
                "docker.io",
            ],
            HUB,
        );
        let order: Vec<&str> = hub.iter().map(|m| m.key).collect();
        assert_eq!(
            order,
            [
                "docker.io",
                "index.docker.io",
                "https://index.docker.io/v1/"
            ]
        );

        let note = choice_note("auths", "gcr.io", &found).unwrap_or_default();
        assert!(note.contains(r#"using "gcr.io""#), "{note}");
        assert!(note.contains(r#""https://gcr.io""#), "{note}");
        assert_eq!(choice_note("auths", "gcr.io", &found[..1]), None);
    }
}
