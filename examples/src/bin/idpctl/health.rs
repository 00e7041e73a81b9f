//! `idpctl health`: how healthy each object in some files is, by Argo CD's rules.

use std::path::PathBuf;

use idp_core::ManifestSet;
use idp_core::cluster::health::{self, HealthStatus};
use serde::Serialize;

use crate::files::collect;
use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// One object's verdict (the JSON shape of `--format json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    file: PathBuf,
    /// 0-based index of the YAML document in its file.
    document: usize,
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
    /// `null` for kinds with no health rule.
    status: Option<HealthStatus>,
    message: Option<String>,
}

/// Whether a status makes the command exit 1.
fn is_finding(status: Option<HealthStatus>) -> bool {
    matches!(
        status,
        Some(HealthStatus::Degraded | HealthStatus::Missing | HealthStatus::Unknown)
    )
}

/// Read the objects (with their `status`) and assess each; exit 1 when any is Degraded,
/// Missing or Unknown.
pub fn run(paths: &[PathBuf], out: &Out) -> Result<ExitCode, Failure> {
    let files = collect(paths)?;
    let mut rows = Vec::new();
    for file in &files {
        let set = ManifestSet::from_file(file)?;
        for object in &set {
            let health = health::assess(object);
            rows.push(Row {
                file: file.clone(),
                document: object.source().map_or(0, |s| s.document),
                api_version: object.api_version().to_owned(),
                kind: object.kind().to_owned(),
                namespace: object.namespace().map(str::to_owned),
                name: object.name().to_owned(),
                status: health.as_ref().map(|h| h.status),
                message: health.map(|h| h.message).filter(|m| !m.is_empty()),
            });
        }
    }
    let findings = rows.iter().filter(|r| is_finding(r.status)).count();
    match out.format {
        Format::Json | Format::Yaml => out.data(&rows)?,
        Format::Table => {
            let place: Vec<String> = rows
                .iter()
                .map(|r| format!("{}#{}", r.file.display(), r.document))
                .collect();
            let object: Vec<String> = rows
                .iter()
                .map(|r| match &r.namespace {
                    Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
                    None => format!("{} {}", r.kind, r.name),
                })
                .collect();
            let w0 = place.iter().map(String::len).max().unwrap_or(0).max(4);
            let w1 = object.iter().map(String::len).max().unwrap_or(0).max(6);
            say!("{:w0$}  {:w1$}  {:11}  MESSAGE", "FILE", "OBJECT", "HEALTH");
            for ((row, place), object) in rows.iter().zip(&place).zip(&object) {
                let status = row.status.map_or("-", HealthStatus::as_str);
                let padded = format!("{status:11}");
                let painted = match row.status {
                    Some(HealthStatus::Healthy) => out.paint(&padded, Color::Green),
                    s if is_finding(s) => out.paint(&padded, Color::Red),
                    _ => padded,
                };
                say!(
                    "{place:w0$}  {object:w1$}  {painted}  {}",
                    row.message.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(if findings > 0 {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    })
}
