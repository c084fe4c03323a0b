//! A small in-process HTTP/1.1 server for unit tests of the registry client: each request
//! is answered by a handler (canned or scripted replies) and recorded. Plain HTTP on
//! 127.0.0.1 only; a TLS hello (the client tries HTTPS first) is hung up on.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// `GET`, `HEAD`…
    pub method: String,
    /// The target as sent: path and query.
    pub target: String,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p)
    }

    /// `METHOD target`, for asserting on sequences.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

/// An answer: status, headers and body (`Content-Length` is added).
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// A reply with `status` and no body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }

    /// 200 with a JSON body.
    pub fn json(body: &serde_json::Value) -> Reply {
        Reply::status(200)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// With a header added.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// With `body`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }
}

type Handler = dyn Fn(&Request, &str) -> Reply + Send + Sync;

/// A running server; stops when dropped.
pub(crate) struct TestServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Serves every request with `handler(request, "127.0.0.1:port")` on a new port.
    pub async fn start(
        handler: impl Fn(&Request, &str) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, recorded) = (Arc::clone(&handler), Arc::clone(&recorded));
                let host = addr.to_string();
                tokio::spawn(async move {
                    let _ = serve(stream, &*handler, &recorded, &host).await;
                });
            }
        });
        Ok(TestServer {
            addr,
            requests,
            task,
        })
    }

    /// `127.0.0.1:port`, the registry host to give a client.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request so far (TLS hellos not included), in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// `METHOD target` of every request so far.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Request::line).collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection: requests in turn (keep-alive) until the client closes it.
async fn serve(
    stream: TcpStream,
    handler: &Handler,
    recorded: &Mutex<Vec<Request>>,
    host: &str,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        // A TLS hello (first byte 0x16) or anything not a request line: hang up.
        let first = reader.fill_buf().await?;
        if first.is_empty() || !first[0].is_ascii_uppercase() {
            return Ok(());
        }
        let Some(request) = read_request(&mut reader).await? else {
            return Ok(());
        };
        if let Ok(mut all) = recorded.lock() {
            all.push(request.clone());
        }
        let reply = handler(&request, host);
        let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !reply
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            head.push_str(&format!("content-length: {}\r\n", reply.body.len()));
        }
        head.push_str("\r\n");
        write.write_all(head.as_bytes()).await?;
        if request.method != "HEAD" {
            write.write_all(&reply.body).await?;
        }
        write.flush().await?;
    }
}

/// Reads one request: line, headers, and a `Content-Length` or chunked body.
async fn read_request(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
) -> std::io::Result<Option<Request>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad("request line"));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| bad("header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim(), 16).map_err(|_| bad("chunk size"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = find("content-length") {
        let length: usize = length.parse().map_err(|_| bad("content-length"))?;
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    }
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests with a body, chunked or not, over one kept-alive connection.
    #[tokio::test]
    async fn records_requests_and_bodies() -> anyhow::Result<()> {
        let server = TestServer::start(|request, _| {
            Reply::status(201).body(format!("got {}", request.body.len()))
        })
        .await?;
        let mut stream = TcpStream::connect(server.host()).await?;
        stream
            .write_all(b"PUT /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
            .await?;
        stream
            .write_all(b"PATCH /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n")
            .await?;
        stream.shutdown().await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        assert_eq!(answer.matches("HTTP/1.1 201").count(), 2, "{answer}");
        assert!(answer.ends_with("got 3"), "{answer}");
        let requests = server.requests();
        assert_eq!(server.lines(), ["PUT /a?x=1", "PATCH /b"]);
        assert_eq!(requests[0].path(), "/a");
        assert_eq!(requests[0].header("host"), Some("h"));
        assert_eq!(requests[0].body, b"abc");
        assert_eq!(requests[1].body, b"def");
        Ok(())
    }
}
