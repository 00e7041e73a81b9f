//! `idpctl policy test`: run Kyverno CLI test suites (`kyverno-test.yaml`) with
//! idp-policy's Kyverno engine.
//!
//! A test file lists `policies` and `resources` (paths relative to it, optionally
//! `exceptions`) and the `results` expected: `policy`, `rule`, `resource` (or
//! `resources`), `kind`, optional `namespace`, and `result` (`pass`, `fail`, `skip`,
//! `error`). A rule named as written also matches its auto-generated form for
//! controllers (`autogen-<rule>`), as the Kyverno CLI reports it. A rule that does not
//! match the resource counts as `skip`.

use std::path::{Path, PathBuf};

use idp_core::{ManifestSet, Object, PolicyContext};
use idp_policy::kyverno::{KyvernoPolicy, RuleResult};
use serde::Serialize;
use serde_json::Value;

use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// The file name the Kyverno CLI looks for.
const TEST_FILE: &str = "kyverno-test.yaml";

/// One expected result, checked.
#[derive(Debug, Serialize)]
struct Row {
    test: String,
    policy: String,
    rule: String,
    kind: String,
    resource: String,
    expected: String,
    actual: String,
    ok: bool,
    /// Why, when the rule failed or could not run, or the row could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// Test files under `path`: the file itself, or every `kyverno-test.yaml` below a
/// directory (hidden directories such as `.kyverno-test` included), sorted.
fn find(path: &Path, found: &mut Vec<PathBuf>) -> Result<(), Failure> {
    if path.is_file() {
        found.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            find(&entry, found)?;
        } else if entry.file_name().and_then(|n| n.to_str()) == Some(TEST_FILE) {
            found.push(entry);
        }
    }
    Ok(())
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// One test file, loaded.
struct Suite {
    name: String,
    policy: KyvernoPolicy,
    resources: Vec<Object>,
    expected: Vec<Value>,
}

fn load(file: &Path) -> Result<Suite, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| format!("not YAML: {e}"))?;
    for unsupported in ["variables", "userinfo", "values"] {
        if doc.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(format!(
                "`{unsupported}` is not supported: results would depend on values idpctl does not set"
            ));
        }
    }
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    let name = doc
        .pointer("/metadata/name")
        .or_else(|| doc.get("name"))
        .and_then(Value::as_str)
        .map_or_else(|| file.display().to_string(), str::to_owned);
    let mut policy = KyvernoPolicy::new("kyverno");
    for key in ["policies", "exceptions"] {
        for rel in strings(doc.get(key)) {
            let path = dir.join(&rel);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))?;
            policy
                .add_yaml(&text, Some(&path))
                .map_err(|e| format!("{key}: {}", e.report()))?;
        }
    }
    let mut resources = Vec::new();
    for rel in strings(doc.get("resources")) {
        let path = dir.join(&rel);
        let set =
            ManifestSet::from_file(&path).map_err(|e| format!("resources: {}", e.report()))?;
        resources.extend(set.iter().cloned());
    }
    let expected = doc
        .get("results")
        .and_then(Value::as_array)
        .cloned()
        .ok_or("it has no `results` list")?;
    Ok(Suite {
        name,
        policy,
        resources,
        expected,
    })
}

/// What a rule gave a resource: the outcome word, and the messages behind a fail or
/// an error.
fn actual(results: &[RuleResult], policy: &str, rule: &str) -> (String, Option<String>) {
    // `namespace/name` names a namespaced Policy.
    let policy = policy.rsplit('/').next().unwrap_or(policy);
    let Some(r) = results
        .iter()
        .find(|r| r.policy == policy && (r.rule == rule || r.base_rule == rule))
    else {
        return (
            "skip".to_owned(),
            Some("the rule does not match this resource".to_owned()),
        );
    };
    let detail = match &r.outcome {
        idp_policy::kyverno::RuleOutcome::Fail(v) | idp_policy::kyverno::RuleOutcome::Error(v) => {
            Some(
                v.iter()
                    .map(|v| v.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }
        idp_policy::kyverno::RuleOutcome::Skip(why) => Some(why.clone()),
        idp_policy::kyverno::RuleOutcome::Pass => None,
    };
    (r.outcome.word().to_owned(), detail)
}

fn check_suite(file: &Path, rows: &mut Vec<Row>) {
    let suite = match load(file) {
        Ok(s) => s,
        Err(e) => {
            rows.push(Row {
                test: file.display().to_string(),
                policy: String::new(),
                rule: String::new(),
                kind: String::new(),
                resource: String::new(),
                expected: String::new(),
                actual: "error".to_owned(),
                ok: false,
                detail: Some(e),
            });
            return;
        }
    };
    let ctx = PolicyContext::new();
    let results: Vec<Result<Vec<RuleResult>, String>> = suite
        .resources
        .iter()
        .map(|o| suite.policy.results(o, &ctx).map_err(|e| e.report()))
        .collect();
    for expected in &suite.expected {
        let text = |key: &str| {
            expected
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (policy, rule, kind, namespace) = (
            text("policy"),
            text("rule"),
            text("kind"),
            text("namespace"),
        );
        let wanted = text("result").to_ascii_lowercase();
        let mut names = strings(expected.get("resources"));
        names.extend(strings(expected.get("resource")));
        for name in names {
            let found = suite.resources.iter().position(|o| {
                o.name() == name
                    && (kind.is_empty() || o.kind() == kind)
                    && (namespace.is_empty() || o.namespace().unwrap_or("default") == namespace)
            });
            let (got, detail) = match found.map(|i| &results[i]) {
                Some(Ok(r)) => actual(r, policy, rule),
                Some(Err(e)) => ("error".to_owned(), Some(e.clone())),
                None => (
                    "error".to_owned(),
                    Some(format!("no resource {kind}/{name} in the test's resources")),
                ),
            };
            rows.push(Row {
                test: suite.name.clone(),
                policy: policy.to_owned(),
                rule: rule.to_owned(),
                kind: kind.to_owned(),
                resource: name,
                ok: got == wanted,
                expected: wanted.clone(),
                actual: got,
                detail,
            });
        }
    }
}

/// `policy test`: exit 1 when any expected result differs.
pub fn test(paths: &[PathBuf], out: &Out) -> Result<ExitCode, Failure> {
    let mut files = Vec::new();
    for path in paths {
        find(path, &mut files)?;
    }
    if files.is_empty() {
        return Err(Failure::usage(format!(
            "no {TEST_FILE} found under the paths given"
        )));
    }
    let mut rows = Vec::new();
    for file in &files {
        check_suite(file, &mut rows);
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    match out.format {
        Format::Json | Format::Yaml => out.data(&rows)?,
        Format::Table => {
            for r in &rows {
                let mark = if r.ok {
                    out.paint("pass", Color::Green)
                } else {
                    out.paint("FAIL", Color::Red)
                };
                say!(
                    "{mark}  {}  {}/{} {}/{}: expected {}, got {}",
                    r.test,
                    r.policy,
                    r.rule,
                    r.kind,
                    r.resource,
                    r.expected,
                    r.actual
                );
                if !r.ok
                    && let Some(d) = &r.detail
                {
                    say!("      {d}");
                }
            }
            say!(
                "{} test file(s), {} result(s), {failed} not as expected",
                files.len(),
                rows.len()
            );
        }
    }
    Ok(if failed == 0 {
        ExitCode::Ok
    } else {
        ExitCode::Findings
    })
}
