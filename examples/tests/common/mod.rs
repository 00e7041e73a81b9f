//! Helpers shared by the idpctl tests: run the real binary, write files, read JSON.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

/// The path of the idpctl binary cargo built for these tests.
pub const IDPCTL: &str = env!("CARGO_BIN_EXE_idpctl");

/// Run idpctl with `args`, without colour.
pub fn idpctl(args: &[&str]) -> Output {
    Command::new(IDPCTL)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("idpctl runs")
}

/// stdout as JSON, or a panic that shows both streams.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Write `text` to `dir/name` (creating folders) and return the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A referential Gatekeeper template and its constraint: an Ingress host must not be
/// served by another Ingress (it reads `data.inventory`).
pub const UNIQUE_INGRESS_HOST: &str =
    include_str!("../../../idp-policy/tests/fixtures/rego/unique-ingress-host.yaml");
