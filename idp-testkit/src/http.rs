//! A small HTTP/1.1 client for tests of HTTP servers on a local address: one request per
//! connection (`Connection: close`), the whole response read, chunked bodies decoded. It
//! sends exactly the bytes a test asks for, which a full client would not let a test do
//! (malformed paths, odd methods, missing headers).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap().to_string();
//! tokio::spawn(async move {
//!     let (mut socket, _) = listener.accept().await.unwrap();
//!     let mut buf = [0u8; 1024];
//!     let _ = socket.read(&mut buf).await.unwrap();
//!     socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ok\":true}").await.unwrap();
//! });
//! let r = idp_testkit::http::send(&addr, "GET", "/", &[], b"").await.unwrap();
//! assert_eq!(r.status, 200);
//! assert_eq!(r.header("content-type"), Some("application/json"));
//! assert_eq!(r.json()["ok"], true);
//! # });
//! ```

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a response may take before the request fails.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// A response.
///
/// ```
/// let r = idp_testkit::http::parse_response(b"HTTP/1.1 404 Not Found\r\n\r\nnope").unwrap();
/// assert_eq!((r.status, r.text()), (404, "nope".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) with their values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value (the name in any case).
    ///
    /// ```
    /// let r = idp_testkit::http::parse_response(b"HTTP/1.1 200 OK\r\nETag: \"1\"\r\n\r\n").unwrap();
    /// assert_eq!(r.header("ETag"), Some("\"1\""));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    ///
    /// ```
    /// let r = idp_testkit::http::parse_response(b"HTTP/1.1 200 OK\r\n\r\nhi").unwrap();
    /// assert_eq!(r.text(), "hi");
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON, with the status and the body in the message: this is a
    /// test helper, and a test wants to see what came back.
    ///
    /// ```
    /// let r = idp_testkit::http::parse_response(b"HTTP/1.1 200 OK\r\n\r\n[1]").unwrap();
    /// assert_eq!(r.json()[0], 1);
    /// ```
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            ),
        }
    }
}

/// The request head: method, path, `Host`, `Connection: close`, `Content-Length` and the
/// given headers.
fn head(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Send one request to `addr` (`host:port`) and read the whole response.
///
/// # Errors
///
/// The connection fails, the response takes longer than [`TIMEOUT`], or it is not an
/// HTTP/1.1 response.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let r = idp_testkit::http::send("127.0.0.1:7007", "POST", "/api/policy/check",
///     &[("Content-Type", "application/yaml")], b"kind: Pod\n").await?;
/// println!("{}", r.status);
/// # Ok(()) }
/// ```
pub async fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(head(addr, method, path, headers, body).as_bytes())
            .await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{method} {path}: no complete response within {TIMEOUT:?}"),
            )
        })??;
    parse_response(&raw)
}

/// [`send`] on a blocking socket, for tests without a runtime.
///
/// # Errors
///
/// As [`send`].
///
/// ```no_run
/// let r = idp_testkit::http::send_blocking("127.0.0.1:7007", "GET", "/healthz", &[], b"").unwrap();
/// assert_eq!(r.status, 200);
/// ```
pub fn send_blocking(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(head(addr, method, path, headers, body).as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Parse a whole HTTP/1.1 response (head and body; a chunked body is decoded).
///
/// # Errors
///
/// The head is incomplete or its status line has no status code.
///
/// ```
/// let r = idp_testkit::http::parse_response(
///     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
/// assert_eq!(r.body, b"abcde");
/// assert!(idp_testkit::http::parse_response(b"HTTP/1.1 200").is_err());
/// ```
pub fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let invalid = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{what}: {}",
                String::from_utf8_lossy(&raw[..raw.len().min(200)])
            ),
        )
    };
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("the response head is incomplete"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("the status line has no status code"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Decode a chunked body (chunk extensions ignored; a truncated chunk keeps what came).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
                .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        let stop = (start + size).min(data.len());
        out.extend_from_slice(&data[start..stop]);
        data = data.get(stop + 2..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_with_extensions_and_truncation() {
        assert_eq!(dechunk(b"4;x=y\r\nwiki\r\n0\r\n\r\n"), b"wiki");
        assert_eq!(dechunk(b"a\r\nshort"), b"short");
        assert!(dechunk(b"").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_response(&raw);
            let _ = dechunk(&raw);
        }
    }
}
