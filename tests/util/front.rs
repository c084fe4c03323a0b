//! A forwarding front for a real registry, for what a real registry will not do on request:
//! answer with an error once, or ask for chunked uploads. It forwards each request (head
//! and `Content-Length` body) to the upstream registry unchanged, keeping the client's
//! `Host` so the registry's `Location` headers point back at the front, one request per
//! connection, and lets a rule rewrite or replace the answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

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
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the front");
        let address = listener.local_addr().expect("front address").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule = Arc::new(rule);
        let shared = Arc::clone(&seen);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, rule, seen) =
                    (upstream.clone(), Arc::clone(&rule), Arc::clone(&shared));
                thread::spawn(move || serve(client, &upstream, &*rule, &seen));
            }
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
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end().to_string();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        headers.push(header);
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let request = Seen {
        method: parts.next().unwrap_or("").to_string(),
        target: parts.next().unwrap_or("").to_string(),
        headers: headers.clone(),
        body: body.clone(),
    };
    seen.lock().expect("front log").push(request.clone());
    let extra = match rule(&request) {
        Action::Respond(status) => {
            respond(&mut client, &status, &[]);
            return;
        }
        Action::RespondWithHeaders(status, headers) => {
            respond(&mut client, &status, &headers);
            return;
        }
        Action::RespondWithBody(status, headers, body) => {
            respond_with_body(&mut client, &status, &headers, &body);
            return;
        }
        Action::Reset => {
            reset(client);
            return;
        }
        Action::Forward => None,
        Action::ForwardAddingHeader(header) => Some(header),
    };
    let mut server = TcpStream::connect(upstream).expect("connecting upstream");
    let mut head = format!("{}\r\n", line.trim_end());
    for header in &headers {
        if !header.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(header);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    server
        .write_all(head.as_bytes())
        .expect("forwarding the head");
    server.write_all(&body).expect("forwarding the body");
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
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

/// Answers with `status`, `headers` and no body, and closes.
fn respond(client: &mut TcpStream, status: &str, headers: &[String]) {
    respond_with_body(client, status, headers, b"");
}

/// Answers with `status`, `headers` and `body`, and closes.
fn respond_with_body(client: &mut TcpStream, status: &str, headers: &[String], body: &[u8]) {
    let mut answer = format!("HTTP/1.1 {status}\r\n");
    for header in headers {
        answer.push_str(header);
        answer.push_str("\r\n");
    }
    answer.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(body);
    let _ = client.write_all(&answer);
}

/// Closes `client` with a TCP reset: `SO_LINGER` on with a zero timeout, then close.
fn reset(client: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor, and a pointer to a live `linger` of the size given.
    unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(client);
}
