//! The one retry policy every registry request goes through ([`RetryPolicy`]), and the
//! timeouts every connection gets ([`Timeouts`]).
//!
//! A request is tried again after a connection error (refused, reset, cut, stalled) or an
//! HTTP 408, 429 or 5xx, with exponential backoff and jitter (0.5 s, 1 s, 2 s… up to 10 s,
//! each between half and all of that), waiting instead what `Retry-After` asks when that is
//! longer (at most a minute), for at most 6 tries and within a total budget per request
//! (3 minutes by default). Steps that cannot be repeated as they are (an upload session)
//! are restarted from their beginning by their caller instead.
//!
//! Requests to credential services (AWS STS and ECR, the EC2 and Azure instance metadata
//! services, container credentials, Entra ID, ACR's token exchange, a registry extension)
//! take the same policy through [`send_small`]; a service that may not exist where the
//! command runs (instance metadata) is probed without backoff ([`Expect::Probe`]).

use std::time::{Duration, Instant};

/// Environment variable: seconds a connection may take to open, TLS included (default 30).
pub const CONNECT_TIMEOUT_ENV: &str = "IMAGE_RESOURCE_CONNECT_TIMEOUT";
/// Environment variable: seconds a request may wait for any byte of its answer (default 30).
pub const STALL_TIMEOUT_ENV: &str = "IMAGE_RESOURCE_STALL_TIMEOUT";
/// Environment variable: seconds of retries one request may use in all (default 180).
pub const RETRY_BUDGET_ENV: &str = "IMAGE_RESOURCE_RETRY_BUDGET";

/// True for the statuses worth trying again: 408, 429 and 5xx.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// Connection timeouts. `Default`: 30 s each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection, TLS handshake included.
    pub connect: Duration,
    /// The longest wait for the next byte of an answer (headers or body); a slow but
    /// moving download never hits it.
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(30),
            stall: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// The defaults, lowered or raised by [`CONNECT_TIMEOUT_ENV`] and [`STALL_TIMEOUT_ENV`]
    /// (seconds, fractions allowed; unparsable or non-positive values are ignored).
    pub fn from_env() -> Timeouts {
        let default = Timeouts::default();
        Timeouts {
            connect: env_seconds(CONNECT_TIMEOUT_ENV).unwrap_or(default.connect),
            stall: env_seconds(STALL_TIMEOUT_ENV).unwrap_or(default.stall),
        }
    }
}

/// How requests are retried. `Default` is described in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (default 6).
    pub tries: u32,
    /// The first backoff (default 0.5 s); doubled each try.
    pub base: Duration,
    /// The longest backoff (default 10 s).
    pub max_backoff: Duration,
    /// The longest wait a `Retry-After` gets (default 60 s).
    pub max_retry_after: Duration,
    /// Time from the first try after which no new try starts (default 180 s).
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            tries: 6,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            budget: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// The default, with the budget from [`RETRY_BUDGET_ENV`] if set.
    pub fn from_env() -> RetryPolicy {
        let default = RetryPolicy::default();
        RetryPolicy {
            budget: env_seconds(RETRY_BUDGET_ENV).unwrap_or(default.budget),
            ..default
        }
    }

    /// A fresh count of tries for one request, starting now; retry notes go to `log`.
    pub fn start(&self, log: &crate::log::Log) -> Retry {
        Retry {
            log: log.clone(),
            policy: *self,
            started: Instant::now(),
            failures: 0,
        }
    }

    /// The backoff before try `failures + 1`, jitter included (between half and all of
    /// `base * 2^(failures-1)`, capped).
    fn backoff(&self, failures: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let full = exp.min(self.max_backoff);
        let half = full / 2;
        half + half.mul_f64(jitter())
    }
}

/// The tries of one request.
#[derive(Debug, Clone)]
pub struct Retry {
    log: crate::log::Log,
    policy: RetryPolicy,
    started: Instant,
    failures: u32,
}

impl Retry {
    /// After a failed try: the wait before the next one, or `None` when tries or budget
    /// are used up. `retry_after` is what the server asked for, if anything.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        self.failures += 1;
        if self.failures >= self.policy.tries {
            return None;
        }
        let backoff = self.policy.backoff(self.failures);
        let delay = match retry_after {
            Some(asked) => asked.min(self.policy.max_retry_after).max(backoff),
            None => backoff,
        };
        if self.started.elapsed() + delay > self.policy.budget {
            return None;
        }
        Some(delay)
    }

    /// Forgets earlier failures (a download that made progress starts counting again);
    /// the budget keeps running.
    pub fn progressed(&mut self) {
        self.failures = 0;
    }

    /// After `error` on `what`: if another try is allowed, says so on the log, waits, and
    /// returns true.
    pub async fn again(
        &mut self,
        what: &str,
        error: &(dyn std::error::Error + Sync + 'static),
        retry_after: Option<Duration>,
    ) -> bool {
        match self.next_delay(retry_after) {
            Some(delay) => {
                self.log.line(format_args!(
                    "retrying {what} in {:.1} s (try {} of {}) after: {}",
                    delay.as_secs_f64(),
                    self.failures + 1,
                    self.policy.tries,
                    super::transport::error_chain(error)
                ));
                tokio::time::sleep(delay).await;
                true
            }
            None => false,
        }
    }
}

/// How one try of a step made of several requests ended badly.
pub(crate) enum Failure {
    /// Already retried where it happened (an idempotent request), or not worth retrying.
    Final(super::Error),
    /// A step that cannot be repeated on its own broke: start the whole step again.
    Restart(super::Error),
}

impl Failure {
    /// `Restart` for a temporary error, else `Final`.
    pub(crate) fn of(error: super::Error) -> Failure {
        if error.is_temporary() {
            Failure::Restart(error)
        } else {
            Failure::Final(error)
        }
    }
}

/// Whether a credential service must be there, for [`send_small`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The service is configured and its answer is needed: every temporary failure
    /// (connection refused, reset or stalled, 408, 429, 5xx) is tried again.
    Service,
    /// The service may well not exist here (an instance metadata service off its cloud):
    /// a connection that cannot be made, or one that stays silent, fails at once, so a run
    /// without it spends no time on backoff; answers (408, 429, 5xx) and connections broken
    /// mid-answer are tried again, as something is there.
    Probe,
}

/// True when a failed try of a [`send_small`] request is worth another.
pub fn worth_retrying(error: &super::Error, expect: Expect) -> bool {
    match (expect, error) {
        (Expect::Probe, super::Error::Connect { .. } | super::Error::Stalled { .. }) => false,
        _ => error.is_temporary(),
    }
}

/// A small answer read whole (a credential service's).
#[derive(Debug)]
pub struct SmallAnswer {
    /// HTTP status.
    pub status: u16,
    /// The answer's headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl SmallAnswer {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The most a [`send_small`] answer may hold (credential answers are a few kilobytes).
pub const SMALL_ANSWER_LIMIT: u64 = 1 << 20;

/// Sends one request that is safe to repeat (a credential service's: a `GET`, an IMDS token
/// `PUT`, a token `POST`) through the policy, and reads its answer whole. `build` makes the
/// request anew for each try (fresh dates and signatures). `service` (e.g. `AWS STS`) and
/// the transport's host name the request in the retry notes; the notes carry no header, body
/// or URL. When the tries run out on a 408, 429 or 5xx, that answer is returned like any
/// other, so callers keep their own wording; a failure to connect or read is returned as it
/// is. See [`Expect`] for which failures are retried.
pub async fn send_small(
    transport: &super::transport::Transport,
    service: &str,
    expect: Expect,
    mut build: impl FnMut(&reqwest::Client) -> Result<reqwest::Request, super::Error>,
) -> Result<SmallAnswer, super::Error> {
    let what = format!("the {service} request to {}", transport.host());
    let mut retry = transport.retrying();
    loop {
        let request = build(transport.http())?;
        let error = match read_small(transport, request).await {
            Ok(answer) if !is_retryable_status(answer.status) => return Ok(answer),
            Ok(answer) => {
                let asked = retry_after(&answer.headers).map(Duration::from_secs);
                let note = Note(format!(
                    "{service} at {} answered HTTP {}",
                    transport.host(),
                    answer.status
                ));
                if retry.again(&what, &note, asked).await {
                    continue;
                }
                return Ok(answer);
            }
            Err(error) => error,
        };
        if !worth_retrying(&error, expect) {
            return Err(error);
        }
        let note = Note(format!(
            "{service} at {}: {}",
            transport.host(),
            failure_note(&error)
        ));
        if !retry.again(&what, &note, None).await {
            return Err(error);
        }
    }
}

/// One try of [`send_small`]: the request, then its body (at most [`SMALL_ANSWER_LIMIT`]).
async fn read_small(
    transport: &super::transport::Transport,
    request: reqwest::Request,
) -> Result<SmallAnswer, super::Error> {
    let response = transport.send(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = transport
        .read_body(response, SMALL_ANSWER_LIMIT, "the answer")
        .await?
        .ok_or_else(|| super::Error::TooLarge {
            registry: transport.host().to_string(),
            what: "an answer".into(),
            limit: SMALL_ANSWER_LIMIT,
        })?;
    Ok(SmallAnswer {
        status,
        headers,
        body,
    })
}

/// What went wrong with a try, for a retry note: the failure without the registry wording
/// of [`super::Error`]'s messages and without URLs.
fn failure_note(error: &super::Error) -> String {
    use super::Error;
    let chain = |source: &Option<reqwest::Error>| {
        source.as_ref().map_or_else(String::new, |e| {
            format!(": {}", without_urls(&super::transport::error_chain(e)))
        })
    };
    match error {
        Error::Connect { detail, source, .. } => {
            format!("cannot connect: {detail}{}", chain(source))
        }
        Error::Transport { source, .. } => format!("the connection broke{}", chain(source)),
        Error::Stalled { after, .. } => format!(
            "nothing came for {} s ({STALL_TIMEOUT_ENV} sets the limit)",
            after.as_secs_f64()
        ),
        other => without_urls(&super::transport::error_chain(other)),
    }
}

/// A retry note's cause, already worded.
#[derive(Debug)]
struct Note(String);

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Note {}

/// `text` without the ` for url (...)` the HTTP client adds to its errors (a credential
/// endpoint's URL may carry user info or a query the note has no need of).
pub fn without_urls(text: &str) -> String {
    const MARK: &str = " for url (";
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(MARK) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MARK.len()..];
        // The URL ends at the parenthesis that closes the one opened (URLs may hold some).
        let mut depth = 1usize;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `Retry-After` in seconds (the HTTP-date form is not used by registries and is ignored).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// A number in [0, 1), different each call (std's per-process random hash keys, stirred
/// with the time: jitter needs no cryptographic randomness).
fn jitter() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn env_seconds(name: &str) -> Option<Duration> {
    let value = std::env::var(name).ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_worth_retrying() {
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 409, 416] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops_after_the_tries() {
        let policy = RetryPolicy::default();
        let mut retry = policy.start(&crate::log::Log::default());
        let mut delays = Vec::new();
        while let Some(delay) = retry.next_delay(None) {
            delays.push(delay);
        }
        assert_eq!(delays.len(), 5, "{delays:?}");
        for (i, delay) in delays.iter().enumerate() {
            let full = (policy.base * (1 << i)).min(policy.max_backoff);
            assert!(*delay >= full / 2 && *delay <= full, "try {i}: {delay:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_but_capped_and_the_budget_ends_it() {
        let policy = RetryPolicy::default();
        let mut retry = policy.start(&crate::log::Log::default());
        assert_eq!(
            retry.next_delay(Some(Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry.next_delay(Some(Duration::from_secs(3600))),
            Some(policy.max_retry_after)
        );
        let tight = RetryPolicy {
            budget: Duration::from_secs(5),
            ..policy
        };
        assert_eq!(
            tight
                .start(&crate::log::Log::default())
                .next_delay(Some(Duration::from_secs(30))),
            None
        );
    }

    #[test]
    fn progress_resets_the_count_of_tries() {
        let mut retry = RetryPolicy::default().start(&crate::log::Log::default());
        for _ in 0..5 {
            retry.next_delay(None);
        }
        assert_eq!(retry.next_delay(None), None);
        retry.progressed();
        assert!(retry.next_delay(None).is_some());
    }
    #[test]
    fn urls_leave_notes() {
        assert_eq!(
            without_urls(
                "cannot connect: error sending request for url (http://u:p@h:1/x?a=(b)): refused"
            ),
            "cannot connect: error sending request: refused"
        );
        assert_eq!(without_urls("a for url (x) b for url (y)"), "a b");
        assert_eq!(without_urls("nothing to cut"), "nothing to cut");
        assert_eq!(without_urls("cut for url (unclosed"), "cut");
    }

    #[test]
    fn probes_give_up_on_absent_services_at_once() {
        let refused = crate::registry::Error::Connect {
            host: "169.254.169.254".into(),
            detail: "connection refused".into(),
            temporary: true,
            source: None,
        };
        let stalled = crate::registry::Error::Stalled {
            host: "169.254.169.254".into(),
            what: "waiting".into(),
            after: Duration::from_secs(1),
        };
        let broken = crate::registry::Error::Transport {
            host: "169.254.169.254".into(),
            detail: String::new(),
            source: None,
        };
        let unresolved = crate::registry::Error::Connect {
            host: "nowhere.invalid".into(),
            detail: "the host name does not resolve".into(),
            temporary: false,
            source: None,
        };
        assert!(worth_retrying(&refused, Expect::Service));
        assert!(worth_retrying(&stalled, Expect::Service));
        assert!(worth_retrying(&broken, Expect::Service));
        assert!(!worth_retrying(&unresolved, Expect::Service));
        assert!(!worth_retrying(&refused, Expect::Probe));
        assert!(!worth_retrying(&stalled, Expect::Probe));
        assert!(worth_retrying(&broken, Expect::Probe));
        assert!(!worth_retrying(&unresolved, Expect::Probe));
    }

    fn fast(log: crate::log::Log) -> super::super::transport::TransportOptions {
        super::super::transport::TransportOptions {
            retry: RetryPolicy {
                base: Duration::from_millis(1),
                max_backoff: Duration::from_millis(5),
                ..RetryPolicy::default()
            },
            log,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn small_requests_retry_busy_answers_and_return_the_rest() -> anyhow::Result<()> {
        use crate::registry::test_server::{Reply, TestServer};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = AtomicUsize::new(0);
        let server = TestServer::start(move |_, _| match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::status(503),
            1 => Reply::status(429).header("retry-after", "0"),
            _ => Reply::status(403).body("denied"),
        })
        .await?;
        let (log, captured) = crate::log::Captured::log();
        let transport = super::super::transport::Transport::new(&server.host(), &fast(log)).await?;
        let url = format!("http://{}/token?secret=s3cr3t", server.host());
        let answer = send_small(&transport, "Test STS", Expect::Service, |http| {
            http.post(&url)
                .header("authorization", "Bearer sensitive")
                .body("password=hunter2")
                .build()
                .map_err(|e| super::super::Error::Config(e.to_string()))
        })
        .await?;
        assert_eq!((answer.status, answer.text().as_str()), (403, "denied"));
        assert_eq!(server.requests().len(), 3);
        let text = captured.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let host = server.host();
        assert!(
            lines[0].starts_with(&format!("retrying the Test STS request to {host} in "))
                && lines[0].ends_with(&format!(
                    "(try 2 of 6) after: Test STS at {host} answered HTTP 503"
                )),
            "{text}"
        );
        assert!(lines[1].contains("answered HTTP 429"), "{text}");
        for secret in ["s3cr3t", "sensitive", "hunter2"] {
            assert!(!text.contains(secret), "{text}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn small_probes_of_nothing_fail_without_a_note() -> anyhow::Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let host = format!("127.0.0.1:{port}");
        for (expect, notes) in [(Expect::Probe, 0), (Expect::Service, 5)] {
            let (log, captured) = crate::log::Captured::log();
            let transport = super::super::transport::Transport::new(&host, &fast(log)).await?;
            let result = send_small(&transport, "Test IMDS", expect, |http| {
                http.put(format!("http://{host}/latest/api/token"))
                    .build()
                    .map_err(|e| super::super::Error::Config(e.to_string()))
            })
            .await;
            assert!(
                matches!(result, Err(super::super::Error::Connect { .. })),
                "{result:?}"
            );
            let text = captured.text();
            assert_eq!(text.lines().count(), notes, "{text}");
            assert!(
                notes == 0
                    || text.contains(&format!(
                        "after: Test IMDS at {host}: cannot connect: connection refused"
                    )),
                "{text}"
            );
            assert!(!text.contains("/latest/api/token"), "{text}");
        }
        Ok(())
    }
}
