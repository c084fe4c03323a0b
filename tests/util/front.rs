//! A forwarding front for a real registry, for what a real registry will not do on request:
//! answer with an error once, or ask for chunked uploads. It forwards each request (head
//! and `Content-Length` body) to the upstream registry unchanged, keeping the client's
//! `Host` so the registry's `Location` headers point back at the front, one request per
//! connection, and lets a rule rewrite or replace the answer.

use super::http;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// A request the front received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `PUT`, `PATCH`...
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header lines.
    pub headers: Vec<String>,
    /// The body (`Content-Length` bodies only).
    pub body: Vec<u8>,
}

/// What to do with a request.
pub enum Action {
    /// Forward it and return the registry's answer.
    Forward,
    /// Forward it and add this header line to the answer.
    ForwardAddingHeader(String),
    /// Do not forward; answer with this status line and no body.
    Respond(String),
    /// Do not forward; answer with this status line, these header lines and no body.
    RespondWithHeaders(String, Vec<String>),
    /// Do not forward; answer with this status line, these header lines and this body.
    RespondWithBody(String, Vec<String>, Vec<u8>),
    /// Do not forward or answer: reset the connection (TCP RST).
    Reset,
}

/// A running front; its threads end with the test process.
pub struct Front {
    address: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Front {
    /// Starts a front for `upstream` (`host:port`) applying `rule` to every request.
    pub fn start(
        upstream: String,
        rule: impl Fn(&Seen) -> Action + Send + Sync + 'static,
    ) -> Front {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&seen);
        let address = http::serve("front", move |client| {
            serve(client, &upstream, &rule, &shared)
        });
        Front { address, seen }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.address
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("front log").clone()
    }
}

fn serve(
    client: TcpStream,
    upstream: &str,
    rule: &dyn Fn(&Seen) -> Action,
    seen: &Mutex<Vec<Seen>>,
) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut client = client;
    let Some((head, body)) = http::read_request(&mut reader) else {
        return;
    };
    let request = Seen {
        method: head.method.clone(),
        target: head.target.clone(),
        headers: head.headers.clone(),
        body: body.clone(),
    };
    seen.lock().expect("front log").push(request.clone());
    let extra = match rule(&request) {
        Action::Respond(status) => {
            http::respond(&mut client, &status, &[], b"");
            return;
        }
        Action::RespondWithHeaders(status, headers) => {
            http::respond(&mut client, &status, &headers, b"");
            return;
        }
        Action::RespondWithBody(status, headers, body) => {
            http::respond(&mut client, &status, &headers, &body);
            return;
        }
        Action::Reset => {
            http::reset(client);
            return;
        }
        Action::Forward => None,
        Action::ForwardAddingHeader(header) => Some(header),
    };
    let forwarded = head.forwarded(|_| true, &[]);
    let mut answer = http::forward(upstream, &forwarded, &body);
    if let Some(header) = extra {
        if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
            let mut with = answer[..end + 2].to_vec();
            with.extend_from_slice(header.as_bytes());
            with.extend_from_slice(b"\r\n");
            with.extend_from_slice(&answer[end + 2..]);
            answer = with;
        }
    }
    let _ = client.write_all(&answer);
}
