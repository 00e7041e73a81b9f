//! `idpctl`: the command-line face of the idp SDK.
//!
//! A starting point to copy: every subcommand is a thin layer over a library call, and the
//! conventions are the ones scripts rely on — `--format table|json|yaml`, no colour when
//! `NO_COLOR` is set or stdout is not a terminal, and exit codes 0 (ok), 1 (findings: a
//! lint error, an unhealthy object) and 2 (usage or I/O error).

mod lint;
mod output;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use output::{Format, Out};

/// idpctl — work with an Internal Developer Platform built on the idp SDK.
///
/// Every command reads local files or talks to the platform's Git repositories and
/// Kubernetes clusters; nothing is stored anywhere else.
#[derive(Debug, Parser)]
#[command(
    name = "idpctl",
    version,
    after_help = "EXIT CODES:\n  0  everything is fine\n  1  findings (a manifest error, an unhealthy object)\n  2  usage or I/O error\n\nEXAMPLES:\n  idpctl manifests lint deploy/               # check every *.yaml under deploy/\n  idpctl manifests lint app.yaml --format json\n  NO_COLOR=1 idpctl version"
)]
struct Cli {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    format: Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the versions of idpctl and the SDK crates it is built from.
    Version,
    /// Work with Kubernetes manifests.
    #[command(subcommand)]
    Manifests(ManifestsCommand),
}

#[derive(Debug, Subcommand)]
enum ManifestsCommand {
    /// Parse manifests and report every error with file, line and document.
    ///
    /// Accepts multi-document YAML, JSON objects, JSON arrays and `kind: List`.
    /// Directories are searched recursively for *.yaml, *.yml and *.json.
    /// Exits 1 when any file has an error.
    #[command(
        after_help = "EXAMPLES:\n  idpctl manifests lint k8s/\n  idpctl manifests lint a.yaml b.json --format json"
    )]
    Lint {
        /// Files or directories to check.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

/// What the process exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything is fine.
    Ok = 0,
    /// The command worked and found problems.
    Findings = 1,
    /// Bad usage or an I/O error.
    Error = 2,
}

/// A failure that stops the command (exit code 2).
#[derive(Debug)]
pub struct Failure {
    message: String,
}

impl Failure {
    /// An I/O problem (a file that cannot be read).
    pub fn io(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// A usage problem.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::io(e.to_string())
    }
}

impl From<idp_core::Error> for Failure {
    fn from(e: idp_core::Error) -> Self {
        Self::io(e.report())
    }
}

#[derive(serde::Serialize)]
struct Versions {
    idpctl: &'static str,
    #[serde(rename = "idp-core")]
    idp_core: &'static str,
    #[serde(rename = "kubernetesApi")]
    kubernetes_api: String,
}

/// The Kubernetes API version k8s-openapi was built for (the binary picks it).
#[allow(clippy::vec_init_then_push)] // each push exists only for the enabled version
fn kubernetes_api_version() -> &'static str {
    let mut versions: Vec<&'static str> = Vec::new();
    k8s_openapi::k8s_if_1_33! { versions.push("1.33"); }
    k8s_openapi::k8s_if_1_34! { versions.push("1.34"); }
    k8s_openapi::k8s_if_1_35! { versions.push("1.35"); }
    k8s_openapi::k8s_if_1_36! { versions.push("1.36"); }
    k8s_openapi::k8s_if_1_37! { versions.push("1.37"); }
    versions.first().copied().unwrap_or("unknown")
}

fn version(out: &Out) -> Result<ExitCode, Failure> {
    let versions = Versions {
        idpctl: env!("CARGO_PKG_VERSION"),
        idp_core: env!("CARGO_PKG_VERSION"),
        kubernetes_api: kubernetes_api_version().to_owned(),
    };
    match out.format {
        Format::Table => {
            println!("idpctl {}", versions.idpctl);
            println!("idp-core {}", versions.idp_core);
            println!("Kubernetes API {}", versions.kubernetes_api);
        }
        _ => out.data(&versions)?,
    }
    Ok(ExitCode::Ok)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.format);
    let result = match &cli.command {
        Command::Version => version(&out),
        Command::Manifests(ManifestsCommand::Lint { paths }) => lint::run(paths, &out),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(failure) => {
            eprintln!(
                "{} {}",
                out.paint("error:", output::Color::Red),
                failure.message
            );
            std::process::ExitCode::from(ExitCode::Error as u8)
        }
    }
}
