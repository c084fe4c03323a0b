//! The AWS side of ECR: where the credentials come from (static keys, the environment, web
//! identity), SigV4-signed calls (signed by the maintained `aws-sigv4` crate; we only build
//! requests and read answers), STS `AssumeRole` / `AssumeRoleWithWebIdentity` (Query
//! protocol, XML answers) and the service endpoints, overridable for tests and private
//! setups by `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL`, as the AWS SDKs do.

use crate::registry::error::Error as RegistryError;
use crate::registry::retry::{send_small, Expect};
use crate::registry::transport::{Transport, TransportOptions};
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use std::time::SystemTime;

/// Access keys to sign with. `Debug` redacts the secret parts ([`Secret`]).
#[derive(Debug, Clone)]
pub struct Keys {
    /// `AKIA...` / `ASIA...`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
}

/// An AWS service we call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon ECR's API (`GetAuthorizationToken`).
    Ecr,
    /// AWS STS (`AssumeRole`, `AssumeRoleWithWebIdentity`).
    Sts,
}

impl Service {
    /// The SigV4 signing name.
    fn signing_name(self) -> &'static str {
        match self {
            Service::Ecr => "ecr",
            Service::Sts => "sts",
        }
    }

    /// The service's name in retry notes.
    fn name(self) -> &'static str {
        match self {
            Service::Ecr => "Amazon ECR",
            Service::Sts => "AWS STS",
        }
    }

    /// The service-specific endpoint variable (`AWS_ENDPOINT_URL_<service id>`).
    fn endpoint_variable(self) -> &'static str {
        match self {
            Service::Ecr => "AWS_ENDPOINT_URL_ECR",
            Service::Sts => "AWS_ENDPOINT_URL_STS",
        }
    }

    /// The endpoint for `region`: `AWS_ENDPOINT_URL_<service>`, then `AWS_ENDPOINT_URL`, then
    /// AWS's regional endpoint (`.amazonaws.com.cn` in the China regions).
    pub fn endpoint(self, region: &str) -> anyhow::Result<url::Url> {
        self.endpoint_with(region, |name| std::env::var(name).ok())
    }

    /// [`Service::endpoint`] with the environment given as a function.
    fn endpoint_with(
        self,
        region: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<url::Url> {
        let configured = [self.endpoint_variable(), "AWS_ENDPOINT_URL"]
            .into_iter()
            .find_map(|name| {
                env(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v))
            });
        if let Some((name, value)) = configured {
            return url::Url::parse(value.trim())
                .map_err(|e| anyhow!("environment variable {name} ({value:?}) is not a URL: {e}"));
        }
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let host = match self {
            Service::Ecr => format!("api.ecr.{region}.{suffix}"),
            Service::Sts => format!("sts.{region}.{suffix}"),
        };
        url::Url::parse(&format!("https://{host}/"))
            .map_err(|e| anyhow!("region {region:?} gives no valid endpoint host {host}: {e}"))
    }
}

/// One AWS API client: the endpoint's transport (the source's `ca_certs` and `debug` trace
/// apply) and the region to sign for.
#[derive(Debug)]
pub struct Caller {
    region: String,
    options: TransportOptions,
}

/// One request for [`Caller::send`] (its headers apart).
pub struct Call<'a> {
    /// `GET`, `PUT`, `POST`.
    pub method: reqwest::Method,
    /// Where.
    pub url: &'a url::Url,
    /// The body (empty for none).
    pub body: &'a [u8],
    /// Replaces the connection timeout of the transport options when given.
    pub connect_timeout: Option<std::time::Duration>,
    /// Which failures are tried again.
    pub expect: Expect,
}

/// An answer: status and body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as text (AWS answers in JSON or XML).
    pub body: String,
}

impl Caller {
    /// A caller for `region` with the source's transport options.
    pub fn new(region: &str, options: TransportOptions) -> Caller {
        Caller {
            region: region.to_string(),
            options,
        }
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// POSTs `body` to `service`, signed with `keys` when given (web identity is unsigned),
    /// signed anew for each try. Every call we make is safe to repeat (`AssumeRole*`,
    /// `GetAuthorizationToken` only read), so all go through the retry policy.
    pub async fn post(
        &self,
        service: Service,
        headers: &[(&str, &str)],
        body: &[u8],
        keys: Option<&Keys>,
    ) -> anyhow::Result<(url::Url, Answer)> {
        let url = service.endpoint(&self.region)?;
        let sign = || -> anyhow::Result<Vec<(String, String)>> {
            let mut all: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            if let Some(keys) = keys {
                all.extend(self.sign(service, &url, headers, body, keys)?);
            }
            Ok(all)
        };
        let call = Call {
            method: reqwest::Method::POST,
            url: &url,
            body,
            connect_timeout: None,
            expect: Expect::Service,
        };
        let answer = self.send_with(service.name(), &call, sign).await?;
        Ok((url, answer))
    }

    /// Sends one request to `url` (`service` names it in retry notes) with the source's
    /// transport options (`connect_timeout` replaces theirs when given), through the retry
    /// policy as `expect` says.
    pub async fn send(
        &self,
        service: &str,
        call: &Call<'_>,
        headers: &[(String, String)],
    ) -> anyhow::Result<Answer> {
        self.send_with(service, call, || Ok(headers.to_vec())).await
    }

    /// [`Caller::send`] with the headers made anew for each try by `headers`.
    async fn send_with(
        &self,
        service: &str,
        call: &Call<'_>,
        headers: impl Fn() -> anyhow::Result<Vec<(String, String)>>,
    ) -> anyhow::Result<Answer> {
        let url = call.url;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => bail!("endpoint {url} has no host"),
        };
        let mut options = self.options.clone();
        if let Some(timeout) = call.connect_timeout {
            options.timeouts.connect = timeout;
        }
        let transport = Transport::new(&host, &options).await?;
        let answer = send_small(&transport, service, call.expect, |http| {
            let headers = headers().map_err(|e| RegistryError::Config(format!("{e:#}")))?;
            let mut request = http
                .request(call.method.clone(), url.clone())
                .body(call.body.to_vec());
            for (name, value) in &headers {
                request = request.header(name.as_str(), value.as_str());
            }
            request
                .build()
                .map_err(|e| RegistryError::Config(format!("building the request to {url}: {e}")))
        })
        .await?;
        Ok(Answer {
            status: answer.status,
            body: answer.text(),
        })
    }

    /// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`) for a request.
    fn sign(
        &self,
        service: Service,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: &[u8],
        keys: &Keys,
    ) -> anyhow::Result<Vec<(String, String)>> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let credentials = aws_credential_types::Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose().to_string(),
            keys.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "image-resource",
        );
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service.signing_name())
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| anyhow!("preparing the AWS signature: {e}"))?
            .into();
        let request = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| anyhow!("preparing the AWS signature for {url}: {e}"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| anyhow!("signing the request to {url}: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect())
    }

    /// STS `AssumeRole` with `keys`: the role's temporary keys.
    pub async fn assume_role(&self, keys: &Keys, role_arn: &str) -> anyhow::Result<Keys> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRole")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", role_arn)
            .append_pair("RoleSessionName", SESSION_NAME)
            .finish();
        self.sts(form, Some(keys), "AssumeRole").await
    }

    /// STS `AssumeRoleWithWebIdentity` (unsigned: the token is the proof).
    pub async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &Secret,
    ) -> anyhow::Result<Keys> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", role_arn)
            .append_pair("RoleSessionName", session_name)
            .append_pair("WebIdentityToken", token.expose())
            .finish();
        self.sts(form, None, "AssumeRoleWithWebIdentity").await
    }

    async fn sts(&self, form: String, keys: Option<&Keys>, action: &str) -> anyhow::Result<Keys> {
        let headers = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let (url, answer) = self
            .post(Service::Sts, &headers, form.as_bytes(), keys)
            .await
            .with_context(|| format!("AWS STS {action} (region {})", self.region))?;
        if !(200..300).contains(&answer.status) {
            bail!(
                "AWS STS {action} at {url} answered HTTP {}: {}",
                answer.status,
                xml_error(&answer.body)
            );
        }
        let field = |name: &str| {
            xml_text(&answer.body, name).ok_or_else(|| {
                anyhow!(
                    "AWS STS {action} at {url}: the answer has no <{name}> (not an STS answer?)"
                )
            })
        };
        Ok(Keys {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: Secret::new(field("SecretAccessKey")?),
            session_token: Some(Secret::new(field("SessionToken")?)),
        })
    }
}

/// The `RoleSessionName` of our `AssumeRole` calls (shows in CloudTrail).
pub const SESSION_NAME: &str = "concourse-image-resource";

/// The text of the first `<name>…</name>` element, XML entities decoded. STS answers are
/// flat enough that this is all the XML we need.
pub fn xml_text(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(
        body[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// `Code: Message` of an STS (XML) error answer, or its first 300 characters.
fn xml_error(body: &str) -> String {
    match (xml_text(body, "Code"), xml_text(body, "Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => body.chars().take(300).collect(),
    }
}

/// `type: message` of a JSON-protocol error answer (`__type` carries a `prefix#` AWS adds).
pub fn json_error(body: &str) -> String {
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let kind = parsed["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
    let message = parsed["message"]
        .as_str()
        .or(parsed["Message"].as_str())
        .map(str::to_string);
    match (kind, message) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (Some(kind), None) => kind,
        _ => body.chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_fields_and_errors() {
        let ok = "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
                  <AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s/e+c=</SecretAccessKey>\
                  <SessionToken>t&amp;k</SessionToken></Credentials></AssumeRoleResult>\
                  </AssumeRoleResponse>";
        assert_eq!(xml_text(ok, "AccessKeyId").as_deref(), Some("ASIA1"));
        assert_eq!(xml_text(ok, "SecretAccessKey").as_deref(), Some("s/e+c="));
        assert_eq!(xml_text(ok, "SessionToken").as_deref(), Some("t&k"));
        assert_eq!(xml_text(ok, "Expiration"), None);
        let err = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                   <Message>not authorized to perform sts:AssumeRole</Message></Error></ErrorResponse>";
        assert_eq!(
            xml_error(err),
            "AccessDenied: not authorized to perform sts:AssumeRole"
        );
        assert_eq!(xml_error("oops"), "oops");
    }

    #[test]
    fn json_errors() {
        let body =
            r#"{"__type":"com.amazon.coral#UnrecognizedClientException","message":"bad token"}"#;
        assert_eq!(json_error(body), "UnrecognizedClientException: bad token");
        assert_eq!(json_error("<html>"), "<html>");
    }

    #[test]
    fn endpoints_by_region_and_environment() {
        let none = |_: &str| None;
        let url = |s: Service, r: &str| s.endpoint_with(r, none).map(|u| u.to_string()).ok();
        assert_eq!(
            url(Service::Ecr, "eu-west-1").as_deref(),
            Some("https://api.ecr.eu-west-1.amazonaws.com/")
        );
        assert_eq!(
            url(Service::Sts, "cn-north-1").as_deref(),
            Some("https://sts.cn-north-1.amazonaws.com.cn/")
        );
        let env = |name: &str| match name {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:1".to_string()),
            "AWS_ENDPOINT_URL_STS" => Some("http://127.0.0.1:2".to_string()),
            _ => None,
        };
        let ecr = Service::Ecr
            .endpoint_with("us-east-1", env)
            .map(|u| u.to_string());
        let sts = Service::Sts
            .endpoint_with("us-east-1", env)
            .map(|u| u.to_string());
        assert_eq!(ecr.ok().as_deref(), Some("http://127.0.0.1:1/"));
        assert_eq!(sts.ok().as_deref(), Some("http://127.0.0.1:2/"));
        let bad = Service::Ecr.endpoint_with("us-east-1", |_| Some("not a url".into()));
        assert!(bad.is_err_and(|e| e.to_string().contains("AWS_ENDPOINT_URL_ECR")));
    }

    #[test]
    fn keys_debug_redacts() {
        let keys = Keys {
            access_key_id: "AKIAX".into(),
            secret_access_key: Secret::new("very-secret"),
            session_token: Some(Secret::new("session-secret")),
        };
        let shown = format!("{keys:?}");
        assert!(shown.contains("AKIAX"), "{shown}");
        assert!(!shown.contains("very-secret") && !shown.contains("session-secret"));
    }
}
