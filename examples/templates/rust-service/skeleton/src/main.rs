//! ${{ values.description }}
//!
//! Created by ${{ values.createdBy }} from the rust-service golden path.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "${{ values.port }}".to_owned());
    let listener = TcpListener::bind(("0.0.0.0", port.parse().unwrap_or(${{ values.port }})))?;
    println!("${{ values.name }} listening on port {port}");
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line)?;
        let (status, body) = if request_line.starts_with("GET /healthz") {
            ("200 OK", "ok")
        } else {
            ("200 OK", "hello from ${{ values.name }}")
        };
        write!(stream, "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}", body.len())?;
    }
    Ok(())
}
