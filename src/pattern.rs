//! Regular expressions users write in `source` (R's `label_regex`, `annotation_regex`, and
//! the tag patterns of `check`): compiled once, matched unanchored as Go's `MatchString`
//! does (users write `^...$` to anchor), and refused with an error that names the option,
//! the pattern and the character where it goes wrong.

use anyhow::anyhow;
use regex::Regex;

/// Compiles `pattern`, the value of `option` (e.g. `source.label_regex`).
pub fn compile(option: &str, pattern: &str) -> anyhow::Result<Regex> {
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) {
        let at = pattern[..e.span().start.offset.min(pattern.len())]
            .chars()
            .count()
            + 1;
        return Err(anyhow!(
            "{option} {pattern:?} is not a valid regular expression: {} at character {at}",
            e.kind()
        ));
    }
    Regex::new(pattern)
        .map_err(|e| anyhow!("{option} {pattern:?} is not a usable regular expression: {e}"))
}

/// Compiles an optional pattern; an empty one counts as unset (R's `!= ""`).
pub fn compile_optional(option: &str, pattern: Option<&str>) -> anyhow::Result<Option<Regex>> {
    match pattern {
        Some(pattern) if !pattern.is_empty() => compile(option, pattern).map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_option_pattern_and_position() {
        let e = compile("source.tag_regex", "^v(1\\.[0-9]+$").map_err(|e| e.to_string());
        assert_eq!(
            e.err().as_deref(),
            Some(
                "source.tag_regex \"^v(1\\\\.[0-9]+$\" is not a valid regular expression: \
                 unclosed group at character 3"
            )
        );
        let e = compile("source.label_regex", "é[z-a]").map_err(|e| e.to_string());
        let e = e.err().unwrap_or_default();
        assert!(
            e.contains("invalid character class range") && e.ends_with("at character 3"),
            "{e}"
        );
    }

    #[test]
    fn matching_is_unanchored_like_go() -> anyhow::Result<()> {
        let re = compile("x", "org\\.opencontainers")?;
        assert!(re.is_match("org.opencontainers.image.source"));
        assert!(re.is_match("com.example.org.opencontainers"));
        let anchored = compile("x", "^org\\.")?;
        assert!(!anchored.is_match("com.org.x"));
        assert!(compile_optional("x", Some(""))?.is_none());
        assert!(compile_optional("x", None)?.is_none());
        Ok(())
    }
}
