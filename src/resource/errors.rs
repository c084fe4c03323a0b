//! Serde's errors rewritten for people: where the problem is (`source.ca_certs[0]`), what was
//! expected, never the value (it may be a secret), and the closest known key for a typo.

use anyhow::anyhow;

/// The JSON library's message without its ` at line L column C` suffix, and where.
pub(super) fn split_position(error: &serde_json::Error) -> (String, String) {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
    let position = format!("line {}, column {}", error.line(), error.column());
    (message, position)
}

pub(super) fn describe_json(error: &serde_json::Error) -> anyhow::Error {
    let (message, position) = split_position(error);
    anyhow!("the request on stdin is not valid JSON: {message} ({position})")
}

pub(super) fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> anyhow::Error {
    use serde_path_to_error::Segment;
    let inner = error.inner();
    if inner.classify() != serde_json::error::Category::Data {
        return describe_json(inner);
    }
    let (message, position) = split_position(inner);
    let mut segments: Vec<&Segment> = error.path().iter().collect();
    // serde_path_to_error puts an unknown key into the path; the place is its object.
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next());
    if matches!(segments.last(), Some(Segment::Map { key }) if Some(key.as_str()) == unknown) {
        segments.pop();
    }
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                path.push_str(&format!("{}{key}", if path.is_empty() { "" } else { "." }))
            }
            Segment::Unknown => path.push_str(".?"),
        }
    }
    let place = match path.is_empty() {
        true => "the request".to_string(),
        false => path,
    };
    anyhow!(
        "invalid request on stdin: {} ({position})",
        explain(&place, &message)
    )
}

/// The key serde_json uses to pass a number through `visit_map` (`arbitrary_precision`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Rewrites serde's message: names the place, drops values (they may be secrets), and
/// suggests keys.
fn explain(place: &str, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let list = known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if key == NUMBER_TOKEN {
            return format!(
                "{place}: expected a string or an object with keys {list}, got a number"
            );
        }
        let hint = match closest(key, &known) {
            Some(best) => format!("did you mean `{best}`?"),
            None if known.is_empty() => "no keys are allowed there".into(),
            None => format!("known keys: {list}"),
        };
        return format!("unknown key `{key}` in {place}; {hint}");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.trim_end_matches('`');
        return format!("{place} is missing the required key `{key}`");
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (got, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, "?"));
            let expected = match expected {
                e if e.starts_with("struct ") || e == "a map" => "an object",
                "a sequence" => "a list",
                "usize" | "u64" | "u32" => "a positive integer",
                e => e,
            };
            return match (prefix, kind(got)) {
                ("invalid type: ", Some(got)) => format!("{place}: expected {expected}, got {got}"),
                _ => format!("{place}: expected {expected}"),
            };
        }
    }
    if message.starts_with("invalid length") && message.contains("expected struct") {
        return format!("{place}: expected an object, got a list");
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        return format!(
            "{place}: the key `{}` is given twice",
            rest.trim_end_matches('`')
        );
    }
    format!("{place}: {message}")
}

/// What kind of JSON value serde's "unexpected" text describes, without the value.
fn kind(unexpected: &str) -> Option<&'static str> {
    let word = unexpected.split([' ', '`']).next().unwrap_or("");
    Some(match word {
        "string" | "char" | "character" => "a string",
        "integer" | "floating" | "number" => "a number",
        "boolean" => "a boolean",
        "null" | "unit" => "null",
        "map" => "an object",
        "sequence" => "a list",
        _ => return None,
    })
}

/// The known key closest to a mistyped one, when it is close enough to be a typo.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let normal = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let key = normal(key);
    known
        .iter()
        .map(|&k| (k, edit_distance(&key, &normal(k))))
        .filter(|&(k, d)| d <= (key.len() / 3).max(2) || (key.len() >= 3 && k.starts_with(&key)))
        .min_by_key(|&(_, d)| d)
        .map(|(k, _)| k)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            [
                edit_distance("kitten", "sitting"),
                edit_distance("", "abc"),
                edit_distance("a", "a")
            ],
            [3, 3, 0]
        );
        let known = ["repository", "tag", "tag_regex", "username"];
        let cases = [
            ("Repository", Some("repository")),
            ("tags", Some("tag")),
            ("tag_regexp", Some("tag_regex")),
            ("user", Some("username")),
            ("completely_else", None),
        ];
        for (typo, expected) in cases {
            assert_eq!(closest(typo, &known), expected, "{typo}");
        }
    }
}
