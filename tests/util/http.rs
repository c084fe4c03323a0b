//! The HTTP/1.1 pieces every hand-made server of the tests shares: the accept loop (a
//! thread per connection), reading a request head, answering with a canned response,
//! forwarding one request to an upstream, and closing with a reset. The HTTP-level front
//! ([`super::front`]), the byte-level fault front ([`super::faults`]), the extension peer
//! ([`super::extension`]) and the redirect test's servers are built from these.

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

/// Listens on a free port of 127.0.0.1 and hands each connection to `handler` on a thread
/// of its own; returns `127.0.0.1:PORT`. The threads end with the test process.
pub fn serve(what: &str, handler: impl Fn(TcpStream) + Send + Sync + 'static) -> String {
    let listener =
        TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding the {what}: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("the {what}'s address: {e}"))
        .to_string();
    let handler = Arc::new(handler);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = Arc::clone(&handler);
            thread::spawn(move || handler(stream));
        }
    });
    address
}

/// A request's first line and headers.
#[derive(Debug, Clone)]
pub struct Head {
    /// The request line, without its CRLF.
    pub line: String,
    /// `GET`, `PUT`...
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header lines, without their CRLF.
    pub headers: Vec<String>,
}

impl Head {
    /// The value of header `name` (case-insensitive), trimmed, if sent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// `Content-Length`, 0 when absent or unparsable.
    pub fn content_length(&self) -> usize {
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// True for a `GET` of blob `digest`.
    pub fn is_blob_get(&self, digest: &str) -> bool {
        self.method == "GET" && self.target.ends_with(&format!("/blobs/{digest}"))
    }

    /// The head as sent upstream: the request line, the headers `keep` accepts (given
    /// lowercased), then `extra` lines, and `Connection: close`.
    pub fn forwarded(&self, keep: impl Fn(&str) -> bool, extra: &[String]) -> String {
        let mut head = format!("{}\r\n", self.line);
        for header in &self.headers {
            let lower = header.to_ascii_lowercase();
            if !lower.starts_with("connection:") && keep(&lower) {
                head.push_str(header);
                head.push_str("\r\n");
            }
        }
        for header in extra {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("Connection: close\r\n\r\n");
        head
    }
}

/// Reads a request head; `None` at end of stream, on a read error, or when the connection
/// does not start like HTTP/1 (a TLS ClientHello starts with 0x16: closing at once makes
/// a client that tries HTTPS first fall back to plain HTTP without waiting).
pub fn read_head(reader: &mut impl BufRead) -> Option<Head> {
    match reader.fill_buf() {
        Ok(bytes) if bytes.first().is_some_and(u8::is_ascii_uppercase) => {}
        _ => return None,
    }
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end_matches(['\r', '\n']).to_string();
        if header.is_empty() {
            break;
        }
        headers.push(header);
    }
    let line = line.trim_end().to_string();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    Some(Head {
        line,
        method,
        target,
        headers,
    })
}

/// Reads a head and its `Content-Length` body.
pub fn read_request(reader: &mut impl BufRead) -> Option<(Head, Vec<u8>)> {
    let head = read_head(reader)?;
    let mut body = vec![0u8; head.content_length()];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Answers with `status` (`200 OK`), `headers`, `Content-Length` and `body`, and
/// `Connection: close`.
pub fn respond(to: &mut impl Write, status: &str, headers: &[String], body: &[u8]) {
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
    let _ = to.write_all(&answer);
    let _ = to.flush();
}

/// Sends `head` and `body` to `upstream` on a new connection and returns the whole answer
/// (the head asks for `Connection: close`).
pub fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut server = TcpStream::connect(upstream).expect("connecting upstream");
    server
        .write_all(head.as_bytes())
        .expect("forwarding the head");
    server.write_all(body).expect("forwarding the body");
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
    answer
}

/// Closes `stream` with a TCP reset: `SO_LINGER` on with a zero timeout, then close.
pub fn reset(stream: TcpStream) {
    set_linger_zero(&stream);
    drop(stream);
}

/// Makes the close of `stream`'s last handle a reset (RST) instead of a FIN.
pub fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor, and a pointer to a live `linger` of the size given.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
