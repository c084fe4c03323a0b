//! A fault-injecting TCP front for a real upstream (a registry or a token server): the one
//! proxy the fault tests share. Per connection it reads the first request head to decide
//! (through the test's rule) what to do, then works at the byte level: it forwards the head
//! with `Connection: close` (so every request gets its own connection and its own fault)
//! and pipes the rest both ways, passing only so many bytes of the answer before cutting
//! (FIN), resetting (RST) or going silent, throttling, or answering a canned status itself.
//! A connection that does not start like HTTP (a TLS ClientHello) is closed at once, and
//! an upstream that is down gets the client's connection reset.

use super::http::{self, reset, set_linger_zero};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A request the front received (its first line and headers).
pub type Seen = http::Head;

/// What the front does with one connection.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward it untouched.
    Forward,
    /// Forward it without this request header (e.g. `Range`).
    ForwardWithout(String),
    /// Do not forward; answer this status line and header lines, with no body.
    Respond(String, Vec<String>),
    /// Do not forward; answer this status line, header lines and body, then close.
    RespondWithBody(String, Vec<String>, Vec<u8>),
    /// Do not forward; answer this status line, header lines (`Content-Length` included,
    /// which may claim more than is sent) and body, then send nothing more until the client
    /// leaves.
    RespondThenStall(String, Vec<String>, Vec<u8>),
    /// Pass this many bytes of the answer (head included), then close (FIN).
    CutAfter(usize),
    /// Pass this many bytes of the answer, then reset (RST).
    ResetAfter(usize),
    /// Pass this many bytes of the answer, then send nothing more until the client leaves.
    StallAfter(usize),
    /// Forward at this many bytes per second, both ways.
    Throttle(usize),
}

/// A running front; its threads end with the test process.
pub struct FaultFront {
    address: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultFront {
    /// Starts a front for `upstream` (`host:port`), asking `rule` about every connection.
    pub fn start(
        upstream: impl Into<String>,
        rule: impl Fn(&Seen) -> Fault + Send + Sync + 'static,
    ) -> FaultFront {
        let upstream = upstream.into();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&seen);
        let address = http::serve("fault front", move |client| {
            serve(client, &upstream, &rule, &shared)
        });
        FaultFront { address, seen }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.address
    }

    /// Every request so far, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("front log").clone()
    }

    /// Waits (up to `timeout`) until a request matching `matches` has arrived.
    pub fn wait_for(&self, timeout: Duration, matches: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.seen().iter().any(&matches) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

fn serve(
    client: TcpStream,
    upstream: &str,
    rule: &dyn Fn(&Seen) -> Fault,
    seen: &Mutex<Vec<Seen>>,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut client = client;
    // Only HTTP/1 is spoken here; a TLS ClientHello (0x16) is closed at once.
    let Some(request) = http::read_head(&mut reader) else {
        return;
    };
    seen.lock().expect("front log").push(request.clone());
    let fault = rule(&request);
    if let Fault::Respond(status, extra) = &fault {
        // Read the body (if any) first, so the client sees the answer and not a reset.
        let length = request.content_length() as u64;
        let _ = std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink());
        http::respond(&mut client, status, extra, b"");
        return;
    }
    if let Fault::RespondWithBody(status, extra, body) = &fault {
        http::respond(&mut client, status, extra, body);
        let _ = client.shutdown(Shutdown::Write);
        return;
    }
    if let Fault::RespondThenStall(status, extra, body) = &fault {
        let mut answer = format!("HTTP/1.1 {status}\r\n");
        for header in extra {
            answer.push_str(header);
            answer.push_str("\r\n");
        }
        answer.push_str("\r\n");
        let mut answer = answer.into_bytes();
        answer.extend_from_slice(body);
        let _ = client.write_all(&answer);
        let mut sink = [0u8; 4096];
        while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream) else {
        // The upstream is down: so are we, for this client.
        reset(client);
        return;
    };
    let dropped = match &fault {
        Fault::ForwardWithout(name) => Some(name.to_ascii_lowercase()),
        _ => None,
    };
    let head = request.forwarded(
        |lower| {
            let name = lower.split(':').next().unwrap_or("").trim();
            dropped.as_deref() != Some(name)
        },
        &[],
    );
    if server.write_all(head.as_bytes()).is_err() {
        reset(client);
        return;
    }
    let rate = match fault {
        Fault::Throttle(rate) => Some(rate),
        _ => None,
    };
    // Client to upstream: the body and anything after it, raw.
    let mut to_server = server.try_clone().expect("clone");
    let upload = thread::spawn(move || {
        let buffered = reader.buffer().to_vec();
        if to_server.write_all(&buffered).is_ok() {
            reader.consume(buffered.len());
            let _ = pipe(reader.get_mut(), &mut to_server, rate, None);
        }
        let _ = to_server.shutdown(Shutdown::Write);
    });
    // Upstream to client, with the fault.
    let limit = match fault {
        Fault::CutAfter(n) | Fault::ResetAfter(n) | Fault::StallAfter(n) => Some(n),
        _ => None,
    };
    let _ = pipe(&mut server, &mut client, rate, limit);
    if let Fault::StallAfter(_) = fault {
        // Silent until the client gives up (or two minutes pass).
        let _ = upload.join();
        let mut sink = [0u8; 4096];
        while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
        return;
    }
    if let Fault::ResetAfter(_) = fault {
        set_linger_zero(&client);
    }
    // End the upload thread (it holds a handle on both sockets), then close: the last
    // handle to go sends the FIN, or the RST.
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Read);
    let _ = upload.join();
    if !matches!(fault, Fault::ResetAfter(_)) {
        let _ = client.shutdown(Shutdown::Write);
    }
    drop(client);
}

/// Copies `from` to `to` until EOF, an error, or `limit` bytes; at most `rate` bytes a
/// second when given.
fn pipe(
    from: &mut TcpStream,
    to: &mut TcpStream,
    rate: Option<usize>,
    limit: Option<usize>,
) -> std::io::Result<()> {
    let chunk = rate.map_or(64 << 10, |r| (r / 20).max(1));
    let mut buf = vec![0u8; chunk];
    let mut passed = 0usize;
    loop {
        let room = limit.map_or(buf.len(), |l| (l - passed).min(buf.len()));
        if room == 0 {
            return Ok(());
        }
        let n = from.read(&mut buf[..room])?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
        passed += n;
        if let Some(rate) = rate {
            thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
        }
    }
}
