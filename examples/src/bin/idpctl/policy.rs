//! `idpctl policy ...`: check manifests against Pod Security Standards, guardrails and
//! policy-set files, and apply the standard mutations. Thin layers over idp-policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use idp_core::model::Enforcement;
use idp_core::ports::Mutation;
use idp_core::{ManifestSet, Object, PolicyContext};
use idp_policy::config::PolicySetConfig;
use idp_policy::mutate::{DefaultResources, Mutations, OtelInjection, StandardLabels};
use idp_policy::pss::{PodSecurity, PssVersion};
use idp_policy::{PolicyOptions, PolicySet};
use serde::Serialize;

use crate::files::collect;
use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// A Pod Security Standards level for `--pss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PssLevel {
    /// Blocks known privilege escalations (host namespaces, privileged, hostPath...).
    Baseline,
    /// Baseline plus hardening (non-root, no capabilities, seccomp, read-only...).
    Restricted,
}

/// What `policy check` evaluates.
#[derive(Debug)]
pub struct CheckOptions<'a> {
    /// `--pss`.
    pub pss: Option<PssLevel>,
    /// `--pss-version`.
    pub pss_version: Option<&'a str>,
    /// `--guardrails`.
    pub guardrails: bool,
    /// `--policy FILE`.
    pub policies: &'a [PathBuf],
}

/// `v1.30`, `1.30` or `latest`.
fn parse_version(text: &str) -> Result<PssVersion, Failure> {
    let normalised = if text.starts_with(|c: char| c.is_ascii_digit()) {
        format!("v{text}")
    } else {
        text.to_owned()
    };
    normalised
        .parse()
        .map_err(|e: idp_core::Error| Failure::usage(format!("--pss-version: {}", e.report())))
}

/// Read a `--policy` file: only idp-policy's policy-set YAML is supported for now.
fn load_policy_file(path: &Path) -> Result<PolicySet, Failure> {
    let unsupported = |what: &str| {
        Failure::usage(format!(
            "{}: {what} files are not supported yet; --policy accepts an idp policy-set YAML file (kind: PolicySet, see idp_policy::config::PolicySetConfig)",
            path.display()
        ))
    };
    if path.extension().and_then(|e| e.to_str()) == Some("rego") {
        return Err(unsupported("Rego (.rego)"));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
    // Recognise admission-policy formats by their kind before parsing as a policy set.
    for line in text.lines() {
        if line.starts_with("apiVersion:") && line.contains("gatekeeper.sh/") {
            return Err(unsupported("Gatekeeper"));
        }
        if let Some(kind) = line.strip_prefix("kind:") {
            let kind = kind.trim().trim_matches(|c| c == '"' || c == '\'');
            match kind {
                "ConstraintTemplate" => {
                    return Err(unsupported("Gatekeeper ConstraintTemplate"));
                }
                "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding" => {
                    return Err(unsupported("ValidatingAdmissionPolicy"));
                }
                _ => {}
            }
        }
    }
    let config = PolicySetConfig::from_yaml(&text)
        .map_err(|e| Failure::usage(format!("{}: {}", path.display(), e.report())))?;
    Ok(config.build())
}

/// Build the policy set the flags ask for (`--pss baseline` when none is given).
fn build_set(options: &CheckOptions<'_>) -> Result<PolicySet, Failure> {
    let version = options.pss_version.map(parse_version).transpose()?;
    let nothing_chosen =
        options.pss.is_none() && !options.guardrails && options.policies.is_empty();
    let level = match options.pss {
        Some(level) => Some(level),
        None if nothing_chosen || version.is_some() => Some(PssLevel::Baseline),
        None => None,
    };
    let mut set = PolicySet::new().named("idpctl");
    if let Some(level) = level {
        let mut pss = match level {
            PssLevel::Baseline => PodSecurity::baseline(),
            PssLevel::Restricted => PodSecurity::restricted(),
        };
        if let Some(v) = version {
            pss = pss.at(v);
        }
        set = set.with_policy(pss);
    }
    if options.guardrails {
        for policy in idp_policy::guardrails::all() {
            set.push(policy, PolicyOptions::new());
        }
    }
    for file in options.policies {
        let loaded = load_policy_file(file)?;
        set.push(Arc::new(loaded), PolicyOptions::new());
    }
    Ok(set)
}

/// One violation (JSON shape).
#[derive(Debug, Serialize)]
struct ViolationRow {
    policy: String,
    rule: String,
    message: String,
    path: Option<String>,
    /// `deny`, `warn` or `audit`.
    action: Enforcement,
}

/// One object's verdict (the JSON shape of `policy check --format json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckRow {
    file: PathBuf,
    /// 0-based index of the YAML document in its file.
    document: usize,
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
    allowed: bool,
    violations: Vec<ViolationRow>,
}

fn read_objects(file: &Path) -> Result<ManifestSet, Failure> {
    ManifestSet::from_file(file).map_err(Failure::from)
}

/// `policy check`: exit 1 when any object is denied.
pub fn check(
    paths: &[PathBuf],
    options: &CheckOptions<'_>,
    out: &Out,
) -> Result<ExitCode, Failure> {
    let set = build_set(options)?;
    let files = collect(paths)?;
    if files.is_empty() {
        return Err(Failure::usage(
            "no manifest files found (looked for *.yaml, *.yml and *.json)",
        ));
    }
    let ctx = PolicyContext::new();
    let mut rows = Vec::new();
    for file in &files {
        for object in &read_objects(file)? {
            let result = set.check_object(object, &ctx);
            rows.push(CheckRow {
                file: file.clone(),
                document: object.source().map_or(0, |s| s.document),
                api_version: object.api_version().to_owned(),
                kind: object.kind().to_owned(),
                namespace: object.namespace().map(str::to_owned),
                name: object.name().to_owned(),
                allowed: result.allowed,
                violations: result
                    .violations
                    .into_iter()
                    .map(|v| ViolationRow {
                        policy: v.policy,
                        rule: v.rule,
                        message: v.message,
                        path: v.path,
                        action: v.enforcement,
                    })
                    .collect(),
            });
        }
    }
    let denied = rows.iter().filter(|r| !r.allowed).count();
    match out.format {
        Format::Json | Format::Yaml => out.data(&rows)?,
        Format::Table => {
            for r in &rows {
                let verdict = if r.allowed {
                    out.paint("allowed", Color::Green)
                } else {
                    out.paint("denied ", Color::Red)
                };
                let ns = r
                    .namespace
                    .as_deref()
                    .map_or(String::new(), |n| format!("{n}/"));
                say!(
                    "{verdict} {} (document {}) {} {ns}{}",
                    r.file.display(),
                    r.document,
                    r.kind,
                    r.name
                );
                for v in &r.violations {
                    let path = v
                        .path
                        .as_deref()
                        .map_or(String::new(), |p| format!(" at {p}"));
                    let action = match v.action {
                        Enforcement::Deny => "deny",
                        Enforcement::Warn => "warn",
                        Enforcement::Audit => "audit",
                    };
                    say!(
                        "    {action:<5} {}/{}{path}: {}",
                        v.policy,
                        v.rule,
                        v.message
                    );
                }
            }
            say!("{} object(s), {denied} denied", rows.len());
        }
    }
    Ok(if denied > 0 {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    })
}

/// `policy mutate`: print the objects with default resources and standard labels (and
/// OpenTelemetry settings with an endpoint).
pub fn mutate(
    paths: &[PathBuf],
    otel_endpoint: Option<&str>,
    out: &Out,
) -> Result<ExitCode, Failure> {
    let mut mutations = Mutations::new()
        .with(StandardLabels::default())
        .with(DefaultResources::default());
    if let Some(endpoint) = otel_endpoint {
        mutations = mutations.with(OtelInjection::new(endpoint));
    }
    let files = collect(paths)?;
    if files.is_empty() {
        return Err(Failure::usage(
            "no manifest files found (looked for *.yaml, *.yml and *.json)",
        ));
    }
    let ctx = PolicyContext::new();
    let mut objects: Vec<Object> = Vec::new();
    for file in &files {
        for object in &read_objects(file)? {
            let mut object = object.clone();
            mutations.mutate(&mut object, &ctx).map_err(|e| {
                Failure::io(format!(
                    "{}: cannot mutate {} {}: {}",
                    file.display(),
                    object.kind(),
                    object.name(),
                    e.report()
                ))
            })?;
            objects.push(object);
        }
    }
    match out.format {
        Format::Json => {
            let values: Vec<serde_json::Value> = objects.iter().map(Object::to_value).collect();
            out.data(&values)?;
        }
        Format::Yaml | Format::Table => {
            let set: ManifestSet = objects.into_iter().collect();
            let text = set.to_yaml()?;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
        }
    }
    Ok(ExitCode::Ok)
}
