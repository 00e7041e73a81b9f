//! `idpctl manifests lint`: parse manifests and report every problem with file:line.

use std::path::{Path, PathBuf};

use idp_core::ManifestSet;
use idp_core::manifest::ParseError;
use serde::Serialize;

use crate::files::collect;
use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// The verdict on one file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileReport {
    file: PathBuf,
    /// Objects found (0 when the file failed).
    objects: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Finding>,
}

/// One problem, located.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Finding {
    /// 0-based document index in the file.
    document: Option<usize>,
    /// 1-based line.
    line: Option<usize>,
    column: Option<usize>,
    field: Option<String>,
    message: String,
}

fn lint_file(file: &Path) -> Result<FileReport, Failure> {
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", file.display())))?;
    Ok(match ManifestSet::parse(&bytes, Some(file)) {
        Ok(set) => FileReport {
            file: file.to_owned(),
            objects: set.len(),
            error: None,
        },
        Err(err) => {
            let parse =
                std::error::Error::source(&err).and_then(|e| e.downcast_ref::<ParseError>());
            let finding = match parse {
                Some(p) => Finding {
                    document: Some(p.location().document),
                    line: Some(p.location().line),
                    column: p.column(),
                    field: p.field().map(str::to_owned),
                    message: p.problem().to_owned(),
                },
                None => Finding {
                    document: None,
                    line: None,
                    column: None,
                    field: None,
                    message: err.report(),
                },
            };
            FileReport {
                file: file.to_owned(),
                objects: 0,
                error: Some(finding),
            }
        }
    })
}

/// Run the lint; exit 1 when any file has a problem.
pub fn run(paths: &[PathBuf], out: &Out) -> Result<ExitCode, Failure> {
    let files = collect(paths)?;
    if files.is_empty() {
        return Err(Failure::usage(
            "no manifest files found (looked for *.yaml, *.yml and *.json)",
        ));
    }
    let reports = files
        .iter()
        .map(|f| lint_file(f))
        .collect::<Result<Vec<_>, _>>()?;
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    match out.format {
        Format::Json | Format::Yaml => out.data(&reports).map_err(Failure::from)?,
        Format::Table => {
            for r in &reports {
                match &r.error {
                    None => say!(
                        "{} {} ({} object{})",
                        out.paint("ok   ", Color::Green),
                        r.file.display(),
                        r.objects,
                        if r.objects == 1 { "" } else { "s" }
                    ),
                    Some(f) => {
                        let place = match (f.line, f.column) {
                            (Some(line), Some(col)) => format!("{}:{line}:{col}", r.file.display()),
                            (Some(line), None) => format!("{}:{line}", r.file.display()),
                            _ => r.file.display().to_string(),
                        };
                        let doc = f
                            .document
                            .map(|d| format!(" (document {d})"))
                            .unwrap_or_default();
                        say!(
                            "{} {place}{doc}: {}",
                            out.paint("error", Color::Red),
                            f.message
                        );
                    }
                }
            }
            let total: usize = reports.iter().map(|r| r.objects).sum();
            say!(
                "{} file(s), {total} object(s), {failed} with errors",
                reports.len()
            );
        }
    }
    Ok(if failed > 0 {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    })
}
