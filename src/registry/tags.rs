//! Tag listing: `GET /v2/<name>/tags/list`, following the `Link` header from page to page
//! ([distribution spec, listing tags](https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags)).

use super::auth::repository_scope;
use super::client::Client;
use super::error::{diagnostics, Error};
use super::upload::parse_url;

/// Tags asked for per page (`n`). Registries may send fewer, and say where the rest is in a
/// `Link` header.
pub const TAG_PAGE_SIZE: usize = 1000;

/// Pages after which a listing that keeps linking on is an error.
const MAX_PAGES: usize = 10_000;

/// The largest tag-list page we read (a 1,000-tag page is some 100 KiB).
const MAX_PAGE_BYTES: u64 = 16 << 20;

impl Client {
    /// Every tag of `repository`, following `Link` pagination. A repository that does not
    /// exist has no tags.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let base = self.base_url().await?;
        let mut next = Some(format!(
            "{base}/v2/{repository}/tags/list?n={TAG_PAGE_SIZE}"
        ));
        let mut tags = Vec::new();
        let scopes = vec![repository_scope(repository, "pull")];
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(Error::Protocol {
                    registry: self.host().to_string(),
                    detail: format!("tag listing of {repository} does not end"),
                });
            }
            let what = format!("tag list of {repository}");
            let Some((headers, body)) = self
                .get_small(
                    &url,
                    Some("application/json"),
                    &scopes,
                    repository,
                    MAX_PAGE_BYTES,
                    &what,
                )
                .await?
            else {
                return Ok(tags);
            };
            next = headers
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|link| {
                    parse_url(self.host(), &base)
                        .and_then(|b| {
                            b.join(&link).map_err(|e| Error::Protocol {
                                registry: self.host().to_string(),
                                detail: format!("bad Link {link}: {e}"),
                            })
                        })
                        .map(|u| u.to_string())
                })
                .transpose()?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
                registry: self.host().to_string(),
                detail: format!(
                    "tag list of {repository} is not JSON ({e}): {}",
                    diagnostics(&body)
                ),
            })?;
            tags.extend(page.tags.unwrap_or_default());
        }
        Ok(tags)
    }
}

/// The target of a `Link: <url>; rel="next"` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/y>; rel=next"#).as_deref(),
            Some("https://x/y")
        );
        assert_eq!(next_link(r#"<https://x/y>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
