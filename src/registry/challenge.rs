//! Parsing of `WWW-Authenticate` challenges (RFC 7235), as registries send them on `401`:
//! `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`
//! or `Basic realm="Registry Realm"`. Pure; no I/O.

use std::collections::BTreeMap;

/// The authentication scheme a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `Basic`: send the credentials with every request.
    Basic,
    /// `Bearer`: fetch a token from `realm` and send it.
    Bearer,
    /// Anything else, kept for the error message.
    Other(String),
}

/// One challenge: a scheme and its parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme.
    pub scheme: Scheme,
    /// Parameters such as `realm`, `service`, `scope`, `error`.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter by (lowercase) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges, in order.
///
/// Accepts several challenges in one value (`Basic realm="x", Bearer realm="y"`), quoted
/// values holding commas and escaped quotes, unquoted token values, and stray whitespace.
/// Returns an empty list for a value with no scheme.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        // A token: either a new scheme, or a parameter name of the current challenge.
        let token_len = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == ',')
            .unwrap_or(rest.len());
        let token = &rest[..token_len];
        let after = rest[token_len..].trim_start();
        if token.is_empty() {
            // Stray comma or '='.
            rest = rest[1..].trim_start();
            continue;
        }
        if let Some(value_part) = after.strip_prefix('=') {
            if value_part.starts_with('=') {
                // token68 such as "abc==": not a parameter; skip it.
                rest = value_part.trim_start_matches('=').trim_start();
                continue;
            }
            let (value, remaining) = parse_value(value_part.trim_start());
            if let Some(current) = out.last_mut() {
                current.params.insert(token.to_ascii_lowercase(), value);
            }
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        } else {
            let scheme = match token.to_ascii_lowercase().as_str() {
                "basic" => Scheme::Basic,
                "bearer" => Scheme::Bearer,
                _ => Scheme::Other(token.to_string()),
            };
            out.push(Challenge {
                scheme,
                params: BTreeMap::new(),
            });
            rest = after.trim_start_matches(',').trim_start();
        }
    }
    out
}

/// Parses a quoted-string or token value; returns it and the rest of the input.
fn parse_value(input: &str) -> (String, &str) {
    if let Some(quoted) = input.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                _ => value.push(c),
            }
        }
        // Unterminated: take everything.
        (value, "")
    } else {
        let end = input
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(input.len());
        (input[..end].to_string(), &input[end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Challenge {
        let mut all = parse(header);
        assert_eq!(all.len(), 1, "{header}: {all:?}");
        all.remove(0)
    }

    #[test]
    fn bearer_with_all_parameters() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/golang:pull""#,
        );
        assert_eq!(c.scheme, Scheme::Bearer);
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/golang:pull"));
    }

    #[test]
    fn quoted_values_keep_commas_and_escapes() {
        let c = one(
            r#"Bearer realm="http://127.0.0.1:1/token",scope="repository:a/b:pull,push",error="say \"no\"""#,
        );
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(c.param("error"), Some("say \"no\""));
    }

    #[test]
    fn basic_and_case_insensitive_names() {
        let c = one(r#"basic Realm="Registry Realm""#);
        assert_eq!(c.scheme, Scheme::Basic);
        assert_eq!(c.param("realm"), Some("Registry Realm"));
    }

    #[test]
    fn unquoted_values_and_spaces() {
        let c = one("Bearer realm = https://a/token , service=reg");
        assert_eq!(c.param("realm"), Some("https://a/token"));
        assert_eq!(c.param("service"), Some("reg"));
    }

    #[test]
    fn several_challenges() {
        let all = parse(r#"Basic realm="x", Bearer realm="https://y/token",service="s""#);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].scheme, Scheme::Basic);
        assert_eq!(all[1].scheme, Scheme::Bearer);
        assert_eq!(all[1].param("service"), Some("s"));
    }

    #[test]
    fn other_schemes_and_garbage() {
        assert_eq!(one("Negotiate").scheme, Scheme::Other("Negotiate".into()));
        assert!(parse("").is_empty());
        assert!(parse("   ").is_empty());
        let c = one(r#"Bearer realm="unterminated"#);
        assert_eq!(c.param("realm"), Some("unterminated"));
        let c = one("Bearer abc==, realm=\"r\"");
        assert_eq!(c.param("realm"), Some("r"));
    }
}
