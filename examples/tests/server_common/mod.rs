//! Start the real idp-server binary on a free port with a temporary data directory, and
//! a tiny blocking HTTP/1.1 client for the tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running server; killed on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The data directory.
    pub data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `idp-server --listen 127.0.0.1:0 --data <temp>` plus `extra` arguments, with no
/// kubeconfig reachable (so the cluster is simulated), and wait for its address.
pub fn start(extra: &[&str]) -> Server {
    let data = tempfile::tempdir().unwrap();
    let home = data.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_idp-server"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data.path().join("idp"))
        .args(extra)
        .env("HOME", &home)
        .env("KUBECONFIG", "")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("idp-server starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Ok(addr));
                }
            } else if let Some(t) = &tx {
                let _ = t.send(Err(line));
            }
        }
    });
    let mut log = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(addr)) => {
                return Server { child, addr, data };
            }
            Ok(Err(line)) => log.push(line),
            Err(e) => panic!(
                "idp-server did not report its address ({e}); log:\n{}",
                log.join("\n")
            ),
        }
    }
}

/// A response.
pub use idp_testkit::http::HttpResponse as Response;

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait up to `timeout` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Send one request (Connection: close) and read the whole response.
    pub fn request(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Response {
        let (headers, bytes): (&[(&str, &str)], &[u8]) = match body {
            Some((ct, bytes)) => (&[("Content-Type", ct)], bytes),
            None => (&[], b""),
        };
        idp_testkit::http::send_blocking(&self.addr, method, path, headers, bytes).unwrap()
    }

    /// GET.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    /// POST a JSON value.
    pub fn post_json(&self, path: &str, value: &serde_json::Value) -> Response {
        let bytes = serde_json::to_vec(value).unwrap();
        self.request("POST", path, Some(("application/json", &bytes)))
    }
}
