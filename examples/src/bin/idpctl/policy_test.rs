//! `idpctl policy test`: run Kyverno CLI test suites (`kyverno-test.yaml`) with
//! idp-policy's Kyverno engine, and Gatekeeper `gator verify` suites (`kind: Suite`,
//! `apiVersion: test.gatekeeper.sh/v1alpha1`) with its Gatekeeper support.
//!
//! A gator suite's tests name a `template` and a `constraint`; each case an `object`
//! (and optional `inventory` files for `data.inventory`) and `assertions`: `violations`
//! (`yes`, `no` or a count, default `yes`) of the violations whose message matches
//! `message` (a regular expression; all when unset). A case's object may be an
//! `AdmissionReview`, whose request gives the object, the operation and the user.
//!
//! A test file lists `policies` and `resources` (paths relative to it, optionally
//! `exceptions`) and the `results` expected: `policy`, `rule`, `resource` (or
//! `resources`; `namespace/name` or a name), `kind`, optional `namespace`, and `result` (`pass`, `fail`, `skip`,
//! `error`). A rule named as written also matches its auto-generated form for
//! controllers (`autogen-<rule>`), as the Kyverno CLI reports it. A rule that does not
//! match the resource counts as `skip`. Mutate rules run before validate rules, as at
//! admission; a result with `patchedResource` (a file relative to the test) passes only
//! when the resource after the mutate rules equals that file's resource of the same
//! kind, name and namespace.
//!
//! Generate rules run on each resource as the mutate rules left it. A result with
//! `generatedResource` (a file) passes only when each object in that file equals the
//! object of the same kind, name and namespace the rule generated; as the Kyverno CLI
//! compares them, the `generate.kyverno.io/*` and `app.kubernetes.io/managed-by` labels
//! and empty values (`{}`, `[]`, `null`) are left out of the comparison on both sides.
//! The files a result names as `cloneSourceResource` are loaded with the policies, as
//! the objects `clone` and `cloneList` copy.
//!
//! A test's values — the file `variables` names (relative to the test file), or a
//! `values` mapping written in the test file — are read as
//! [`Values`] and given to the policies before they load, as
//! the Kyverno CLI applies them: `globalValues`, a policy's values for a resource (by
//! name) and for a rule give variables their value, and a `context` entry they name keeps
//! that value (how `apiCall`, `globalReference` and `imageRegistry` entries, which need
//! the cluster, get one); `request.operation` sets the operation; `namespaceSelector`
//! gives namespaces their labels. A malformed values file, `subresources`,
//! `foreachValues` and `userinfo` make the suite an error row naming the field.
//!
//! Kyverno's CEL policies (`ValidatingPolicy`, policies.kyverno.io) listed in `policies`
//! run through idp-policy's CEL engine, auto-generated for Pod controllers as Kyverno
//! does; their results are the rows with `isValidatingPolicy: true` and no `rule`: `pass`,
//! `fail`, `skip` (the policy does not apply, or a `PolicyException` exempts the
//! resource) or `error`. Their `PolicyException`s (policies.kyverno.io) may be listed in
//! `exceptions` or in `policies`; an exception with `reportResult: pass` makes it `pass`.

use std::path::{Path, PathBuf};

use idp_core::{ManifestSet, Object, PolicyContext};
use idp_policy::cel::{CelPolicy, PolicyResult};
use idp_policy::kyverno::{KyvernoPolicy, RuleResult, Values};
use idp_policy::rego::RegoPolicy;
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

/// Whether a YAML text declares a gator suite.
fn is_gator_suite(text: &str) -> bool {
    serde_saphyr::from_str::<Value>(text).is_ok_and(|doc| {
        doc.get("kind").and_then(Value::as_str) == Some("Suite")
            && doc
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("test.gatekeeper.sh/"))
    })
}

/// Test files under `path`: the file itself, or below a directory every
/// `kyverno-test.yaml` and every YAML file declaring a gator suite (hidden directories
/// such as `.kyverno-test` included), sorted.
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
        } else if entry.file_name().and_then(|n| n.to_str()) == Some(TEST_FILE)
            || (entry
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml")
                && std::fs::read_to_string(&entry).is_ok_and(|t| is_gator_suite(&t)))
        {
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
    /// The test file's directory, which its paths are relative to.
    dir: PathBuf,
    policy: KyvernoPolicy,
    /// The Kyverno `ValidatingPolicy` and policies.kyverno.io `PolicyException` files
    /// (CEL), for results with `isValidatingPolicy`.
    cel: Option<CelPolicy>,
    resources: Vec<Object>,
    expected: Vec<Value>,
}

/// Whether a policy or exception file (listed under `key`) holds Kyverno's CEL policies
/// or their exceptions (policies.kyverno.io); an error when it mixes them with other
/// Kyverno kinds, which are read by another engine.
fn holds_cel_policies(text: &str, path: &Path, key: &str) -> Result<bool, String> {
    let Ok(set) = ManifestSet::parse(text.as_bytes(), Some(path)) else {
        return Ok(false);
    };
    let group = |o: &Object| {
        o.api_version()
            .rsplit_once('/')
            .map_or("", |(g, _)| g)
            .to_owned()
    };
    let cel = set
        .iter()
        .filter(|o| group(o) == "policies.kyverno.io")
        .count();
    let other = set.iter().filter(|o| group(o) == "kyverno.io").count();
    if cel > 0 && other > 0 {
        return Err(format!(
            "{key}: {} mixes ValidatingPolicies or their PolicyExceptions (policies.kyverno.io) with ClusterPolicies, Policies or their PolicyExceptions (kyverno.io); put them in separate files",
            path.display()
        ));
    }
    Ok(cel > 0)
}

fn load(file: &Path) -> Result<Suite, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| format!("not YAML: {e}"))?;
    if doc.get("userinfo").is_some_and(|v| !v.is_null()) {
        return Err(
            "`userinfo` is not supported: results would depend on a user idpctl does not set"
                .to_owned(),
        );
    }
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    let values = values(&doc, dir, file)?;
    let name = doc
        .pointer("/metadata/name")
        .or_else(|| doc.get("name"))
        .and_then(Value::as_str)
        .map_or_else(|| file.display().to_string(), str::to_owned);
    // Values first: they decide which context entries that need the cluster may load.
    let mut policy = KyvernoPolicy::new("kyverno").with_values(values);
    let mut cel: Option<CelPolicy> = None;
    for key in ["policies", "exceptions"] {
        for rel in strings(doc.get(key)) {
            let path = dir.join(&rel);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))?;
            if holds_cel_policies(&text, &path, key)? {
                cel.get_or_insert_with(|| CelPolicy::new("kyverno"))
                    .add_yaml(&text, Some(&path))
                    .map_err(|e| format!("{key}: {}", e.report()))?;
                continue;
            }
            policy
                .add_yaml(&text, Some(&path))
                .map_err(|e| format!("{key}: {}", e.report()))?;
        }
    }
    let expected = doc
        .get("results")
        .and_then(Value::as_array)
        .cloned()
        .ok_or("it has no `results` list")?;
    // The objects generate rules clone, named by the results as the Kyverno CLI has them.
    let mut sources: Vec<String> = expected
        .iter()
        .flat_map(|r| strings(r.get("cloneSourceResource")))
        .collect();
    sources.sort();
    sources.dedup();
    for rel in sources {
        let path = dir.join(&rel);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cloneSourceResource: cannot read {}: {e}", path.display()))?;
        policy
            .add_yaml(&text, Some(&path))
            .map_err(|e| format!("cloneSourceResource: {}", e.report()))?;
    }
    let mut resources = Vec::new();
    for rel in strings(doc.get("resources")) {
        let path = dir.join(&rel);
        let set =
            ManifestSet::from_file(&path).map_err(|e| format!("resources: {}", e.report()))?;
        resources.extend(set.iter().cloned());
    }
    Ok(Suite {
        name,
        dir: dir.to_path_buf(),
        policy,
        cel,
        resources,
        expected,
    })
}

/// The suite's values: the file `variables` names (relative to the test file), or the
/// `values` mapping written in the test file; none without either.
fn values(doc: &Value, dir: &Path, file: &Path) -> Result<Values, String> {
    let given = |key: &str| doc.get(key).filter(|v| !v.is_null());
    match (given("variables"), given("values")) {
        (None, None) => Ok(Values::default()),
        (Some(_), Some(_)) => Err(
            "`variables` and `values` are both given: name a values file or write the values in the test file, not both"
                .to_owned(),
        ),
        (Some(Value::String(rel)), None) => {
            let path = dir.join(rel);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("variables: cannot read {}: {e}", path.display()))?;
            Values::from_yaml(&text, Some(&path)).map_err(|e| format!("variables: {}", e.report()))
        }
        (Some(other), None) => Err(format!(
            "variables: {other} is not a file name (the values file, relative to the test file)"
        )),
        (None, Some(inline)) => Values::from_value(inline, Some(file))
            .map_err(|e| format!("values: {}", e.report())),
    }
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

/// What a Kyverno `ValidatingPolicy` gave a resource: pass, fail (with the messages),
/// error (an expression failed under `failurePolicy: Fail`) or skip (it does not apply,
/// or a `PolicyException` exempts the resource; `pass` with `reportResult: pass`).
fn actual_cel(
    cel: Option<&CelPolicy>,
    object: &Object,
    ctx: &PolicyContext,
    policy: &str,
) -> (String, Option<String>) {
    let Some(cel) = cel else {
        return (
            "error".to_owned(),
            Some("the test loads no ValidatingPolicy (isValidatingPolicy: true)".to_owned()),
        );
    };
    let results = match cel.results(object, ctx) {
        Ok(r) => r,
        Err(e) => return ("error".to_owned(), Some(e.report())),
    };
    let policy = policy.rsplit('/').next().unwrap_or(policy);
    let word = |r: &PolicyResult| r.word().to_owned();
    match results.get(policy) {
        None => (
            "skip".to_owned(),
            Some("the policy does not apply to this resource".to_owned()),
        ),
        Some(r @ PolicyResult::Excepted(e)) => (
            word(r),
            Some(format!(
                "exempted by PolicyException {}",
                e.exceptions.join(", ")
            )),
        ),
        Some(r @ PolicyResult::Checked(v)) => {
            let messages = v
                .iter()
                .map(|v| v.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            (word(r), (!v.is_empty()).then_some(messages))
        }
        // `PolicyResult` may gain variants; report them by their word.
        Some(r) => (word(r), None),
    }
}

/// What the policies did with one resource.
struct Applied {
    /// The result of every rule that matches it: mutate, validate, then generate.
    results: Vec<RuleResult>,
    /// The resource after the mutate rules.
    mutated: Object,
    /// What the generate rules made of it.
    generated: Vec<Object>,
}

fn check_suite(file: &Path, rows: &mut Vec<Row>) {
    let suite = match load(file) {
        Ok(s) => s,
        Err(e) => {
            rows.push(error_row(file.display().to_string(), e));
            return;
        }
    };
    let ctx = PolicyContext::new();
    // Each resource's rule results, the resource after the mutate rules, and what the
    // generate rules make of it.
    let results: Vec<Result<Applied, String>> = suite
        .resources
        .iter()
        .map(|o| {
            let (mutated, mut results) = suite.policy.apply(o, &ctx).map_err(|e| e.report())?;
            let (generated, more) = suite
                .policy
                .generate_results(&mutated, &ctx)
                .map_err(|e| e.report())?;
            results.extend(more);
            Ok(Applied {
                results,
                mutated,
                generated,
            })
        })
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
            // `namespace/name` names a namespaced resource, as in newer suites.
            let (namespace, plain) = match name.split_once('/') {
                Some((ns, n)) => (ns, n),
                None => (namespace, name.as_str()),
            };
            let found = suite.resources.iter().position(|o| {
                o.name() == plain
                    && (kind.is_empty() || o.kind() == kind)
                    && (namespace.is_empty() || o.namespace().unwrap_or("default") == namespace)
            });
            let cel_row = expected.get("isValidatingPolicy").and_then(Value::as_bool) == Some(true);
            let (mut got, mut detail) = match found.map(|i| &results[i]) {
                Some(Ok(a)) if cel_row => actual_cel(suite.cel.as_ref(), &a.mutated, &ctx, policy),
                Some(Ok(a)) => actual(&a.results, policy, rule),
                Some(Err(e)) => ("error".to_owned(), Some(e.clone())),
                None => (
                    "error".to_owned(),
                    Some(format!("no resource {kind}/{name} in the test's resources")),
                ),
            };
            let patched = text("patchedResource");
            if !patched.is_empty()
                && got == wanted
                && let Some(Ok(a)) = found.map(|i| &results[i])
                && let Err(why) = same_as_patched(&suite.dir.join(patched), &a.mutated)
            {
                "fail".clone_into(&mut got);
                detail = Some(why);
            }
            let generated = text("generatedResource");
            if !generated.is_empty()
                && got == wanted
                && let Some(Ok(a)) = found.map(|i| &results[i])
                && let Err(why) =
                    same_as_generated(&suite.dir.join(generated), &a.generated, policy, rule)
            {
                "fail".clone_into(&mut got);
                detail = Some(why);
            }
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

/// Whether `mutated` equals the resource of the same kind, name and namespace in the
/// `patchedResource` file; the first difference otherwise.
fn same_as_patched(file: &Path, mutated: &Object) -> Result<(), String> {
    let set =
        ManifestSet::from_file(file).map_err(|e| format!("patchedResource: {}", e.report()))?;
    let wanted = set
        .iter()
        .find(|o| {
            o.kind() == mutated.kind()
                && o.name() == mutated.name()
                && o.namespace().unwrap_or("default") == mutated.namespace().unwrap_or("default")
        })
        .ok_or_else(|| {
            format!(
                "patchedResource {} has no {} {}",
                file.display(),
                mutated.kind(),
                mutated.name()
            )
        })?;
    compared(
        &wanted.to_value(),
        &mutated.to_value(),
        "after the mutate rules",
        file,
    )
}

/// `Ok` when `want` equals `got`; else the first difference, `when` it shows and in
/// which file the wanted value is.
fn compared(want: &Value, got: &Value, when: &str, file: &Path) -> Result<(), String> {
    match first_difference(want, got, String::new()) {
        None => Ok(()),
        Some((path, want, got)) => Err(format!(
            "{when}, {} is {got} where {} has {want}",
            if path.is_empty() {
                "the resource"
            } else {
                &path
            },
            file.display()
        )),
    }
}

/// Whether each object of the `generatedResource` file equals the object of the same
/// kind, name and namespace that the rule `policy`/`rule` generated (among `made`),
/// compared as the Kyverno CLI does (see [`tidy_generated`]); the first difference
/// otherwise.
fn same_as_generated(file: &Path, made: &[Object], policy: &str, rule: &str) -> Result<(), String> {
    let set =
        ManifestSet::from_file(file).map_err(|e| format!("generatedResource: {}", e.report()))?;
    // `namespace/name` names a namespaced Policy.
    let policy = policy.rsplit('/').next().unwrap_or(policy);
    let by_rule: Vec<&Object> = made
        .iter()
        .filter(|o| {
            let labels = o.labels();
            labels
                .get("generate.kyverno.io/policy-name")
                .map(String::as_str)
                == Some(policy)
                && labels
                    .get("generate.kyverno.io/rule-name")
                    .map(String::as_str)
                    == Some(rule)
        })
        .collect();
    for wanted in &set {
        let got = by_rule
            .iter()
            .find(|o| {
                o.kind() == wanted.kind()
                    && o.name() == wanted.name()
                    && o.namespace().unwrap_or_default() == wanted.namespace().unwrap_or_default()
            })
            .ok_or_else(|| {
                let names: Vec<String> = by_rule
                    .iter()
                    .map(|o| {
                        format!(
                            "{} {}/{}",
                            o.kind(),
                            o.namespace().unwrap_or_default(),
                            o.name()
                        )
                    })
                    .collect();
                format!(
                    "the rule generated no {} {}/{} (from {}); it generated {}",
                    wanted.kind(),
                    wanted.namespace().unwrap_or_default(),
                    wanted.name(),
                    file.display(),
                    if names.is_empty() {
                        "nothing".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            })?;
        compared(
            &tidy_generated(wanted.to_value()),
            &tidy_generated(got.to_value()),
            "in the generated resource",
            file,
        )?;
    }
    Ok(())
}

/// A generated object as the Kyverno CLI compares it: without the
/// `generate.kyverno.io/*` and `app.kubernetes.io/managed-by` labels Kyverno adds, and
/// without empty maps, empty lists and nulls.
fn tidy_generated(mut value: Value) -> Value {
    if let Some(Value::Object(labels)) = value.pointer_mut("/metadata/labels") {
        labels.retain(|k, _| {
            !k.starts_with("generate.kyverno.io/") && k != "app.kubernetes.io/managed-by"
        });
    }
    drop_empty(value).unwrap_or(Value::Null)
}

/// `value` without nulls, empty maps and empty lists; `None` when nothing is left.
fn drop_empty(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> = map
                .into_iter()
                .filter_map(|(k, v)| drop_empty(v).map(|v| (k, v)))
                .collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(drop_empty).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => Some(other),
    }
}

/// The first place two values differ: its path, the wanted and the actual value.
fn first_difference(want: &Value, got: &Value, path: String) -> Option<(String, String, String)> {
    let show = |v: Option<&Value>| v.map_or_else(|| "absent".to_owned(), Value::to_string);
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => a
            .keys()
            .chain(b.keys().filter(|k| !a.contains_key(*k)))
            .find_map(|k| {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_difference(x, y, here),
                    (x, y) => Some((here, show(x), show(y))),
                }
            }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{path}[{i}]"))),
        _ if want == got => None,
        _ => Some((path, want.to_string(), got.to_string())),
    }
}

fn error_row(test: String, detail: String) -> Row {
    Row {
        test,
        policy: String::new(),
        rule: String::new(),
        kind: String::new(),
        resource: String::new(),
        expected: String::new(),
        actual: "error".to_owned(),
        ok: false,
        detail: Some(detail),
    }
}

/// `yes`, `no` or a count (YAML may give `yes`/`no` as booleans).
#[derive(Debug, Clone, Copy)]
enum Wanted {
    Some,
    None,
    Exactly(u64),
}

fn wanted(value: Option<&Value>) -> Result<Wanted, String> {
    match value {
        None | Some(Value::Null | Value::Bool(true)) => Ok(Wanted::Some),
        Some(Value::Bool(false)) => Ok(Wanted::None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("yes") => Ok(Wanted::Some),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("no") => Ok(Wanted::None),
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            Ok(Wanted::Exactly(n.as_u64().unwrap_or_default()))
        }
        Some(other) => Err(format!(
            "violations: {other} is not yes, no or a count of 0 or more"
        )),
    }
}

/// One gator test: its template and constraint, loaded, and the constraint as
/// `Kind/name`.
fn gator_policy(dir: &Path, test: &Value) -> Result<(RegoPolicy, String), String> {
    let mut policy = RegoPolicy::new("gator");
    let mut constraint = String::new();
    for key in ["template", "constraint", "expansion"] {
        let rel = match test.get(key) {
            Some(Value::String(rel)) => rel,
            // The expansion templates (and the mutators shaping their mocks) are optional.
            None | Some(Value::Null) if key == "expansion" => continue,
            _ => return Err(format!("the test has no `{key}`")),
        };
        let path = dir.join(rel);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))?;
        policy = policy
            .with_gatekeeper_yaml(&text, Some(&path))
            .map_err(|e| format!("{key}: {}", e.report()))?;
        if key == "constraint"
            && let Ok(set) = ManifestSet::parse(text.as_bytes(), Some(&path))
            && let Some(c) = set.iter().next()
        {
            constraint = format!("{}/{}", c.kind(), c.name());
        }
    }
    Ok((policy, constraint))
}

fn check_gator(file: &Path, text: &str, rows: &mut Vec<Row>) {
    let suite_name = file.display().to_string();
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(d) => d,
        Err(e) => return rows.push(error_row(suite_name, format!("not YAML: {e}"))),
    };
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    for test in doc
        .get("tests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let test_name = format!(
            "{suite_name}/{}",
            test.get("name").and_then(Value::as_str).unwrap_or("test")
        );
        let (policy, constraint) = match gator_policy(dir, test) {
            Ok(p) => p,
            Err(e) => {
                rows.push(error_row(test_name, e));
                continue;
            }
        };
        for case in test
            .get("cases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let case_name = format!(
                "{test_name}/{}",
                case.get("name").and_then(Value::as_str).unwrap_or("case")
            );
            if let Err(e) = check_case(dir, &policy, &constraint, case, &case_name, rows) {
                let mut row = error_row(case_name, e);
                row.policy.clone_from(&constraint);
                row.expected = asked(case);
                rows.push(row);
            }
        }
    }
}

/// A case's object and the request it comes in: the first object of the file, or, for
/// an `AdmissionReview` (as gator takes them), its `request.object` (`oldObject` for a
/// delete) with its operation, namespace and user.
fn case_object(path: &Path) -> Result<(Object, PolicyContext), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("object: cannot read {}: {e}", path.display()))?;
    let review = serde_saphyr::from_str::<Value>(&text)
        .ok()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some("AdmissionReview"));
    let Some(review) = review else {
        let objects = ManifestSet::parse(text.as_bytes(), Some(path))
            .map_err(|e| format!("object: {}", e.report()))?;
        let object = objects
            .iter()
            .next()
            .ok_or("object: the file holds no object")?
            .clone();
        return Ok((object, PolicyContext::new()));
    };
    let request = review
        .get("request")
        .ok_or("object: the AdmissionReview has no request")?;
    let operation = match request.get("operation").and_then(Value::as_str) {
        Some("UPDATE") => idp_core::model::Operation::Update,
        Some("DELETE") => idp_core::model::Operation::Delete,
        _ => idp_core::model::Operation::Create,
    };
    let body = [request.get("object"), request.get("oldObject")]
        .into_iter()
        .flatten()
        .find(|o| !o.is_null())
        .cloned()
        .ok_or("object: the AdmissionReview's request has neither object nor oldObject")?;
    let object = Object::from_value(body).map_err(|e| format!("object: {}", e.report()))?;
    let mut ctx = PolicyContext::new().with_operation(operation);
    ctx.user = request
        .pointer("/userInfo/username")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(ns) = request.get("namespace").and_then(Value::as_str) {
        ctx.namespace = Some(ns.to_owned());
    }
    Ok((object, ctx))
}

/// What a case's assertions ask, for a row that could not check them.
fn asked(case: &Value) -> String {
    case.get("assertions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| {
            let count = match a.get("violations") {
                None | Some(Value::Null | Value::Bool(true)) => "yes".to_owned(),
                Some(Value::Bool(false)) => "no".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            match a.get("message").and_then(Value::as_str) {
                Some(m) if !m.is_empty() => format!("violations: {count} matching /{m}/"),
                _ => format!("violations: {count}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn check_case(
    dir: &Path,
    policy: &RegoPolicy,
    constraint: &str,
    case: &Value,
    name: &str,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let rel = case
        .get("object")
        .and_then(Value::as_str)
        .ok_or("the case has no `object`")?;
    let (object, ctx) = case_object(&dir.join(rel))?;
    let object = &object;
    let mut inventory = Vec::new();
    for rel in strings(case.get("inventory")) {
        let set = ManifestSet::from_file(dir.join(&rel))
            .map_err(|e| format!("inventory: {}", e.report()))?;
        inventory.extend(set.iter().cloned());
    }
    let policy = if inventory.is_empty() {
        policy.clone()
    } else {
        policy
            .clone()
            .with_inventory(inventory.iter())
            .map_err(|e| format!("inventory: {}", e.report()))?
    };
    let found = policy.try_evaluate(object, &ctx).map_err(|e| e.report())?;
    let assertions = case
        .get("assertions")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or("the case has no `assertions`")?;
    for assertion in assertions {
        let want = wanted(assertion.get("violations"))?;
        let pattern = assertion
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let re = regex::Regex::new(pattern).map_err(|e| format!("message {pattern:?}: {e}"))?;
        let matching = found.iter().filter(|v| re.is_match(&v.message)).count() as u64;
        let (expected, ok) = match want {
            Wanted::Some => ("violations: yes".to_owned(), matching > 0),
            Wanted::None => ("violations: no".to_owned(), matching == 0),
            Wanted::Exactly(n) => (format!("violations: {n}"), matching == n),
        };
        let expected = if pattern.is_empty() {
            expected
        } else {
            format!("{expected} matching /{pattern}/")
        };
        rows.push(Row {
            test: name.to_owned(),
            policy: constraint.to_owned(),
            rule: String::new(),
            kind: object.kind().to_owned(),
            resource: object.name().to_owned(),
            expected,
            actual: format!("{matching} matching violation(s)"),
            ok,
            detail: (!ok).then(|| {
                found
                    .iter()
                    .map(|v| v.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        });
    }
    Ok(())
}

/// `policy test`: exit 1 when any expected result differs.
pub fn test(paths: &[PathBuf], out: &Out) -> Result<ExitCode, Failure> {
    let mut files = Vec::new();
    for path in paths {
        find(path, &mut files)?;
    }
    if files.is_empty() {
        return Err(Failure::usage(format!(
            "no {TEST_FILE} or gator suite (kind: Suite, apiVersion: test.gatekeeper.sh/v1alpha1) found under the paths given"
        )));
    }
    let mut rows = Vec::new();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) if is_gator_suite(&text) => check_gator(file, &text, &mut rows),
            _ => check_suite(file, &mut rows),
        }
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
