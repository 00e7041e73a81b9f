//! The fields each Pod Security Standards check restricts, as pod-relative paths with
//! `[*]` for every index, and the machinery an exclusion with a `restrictedField` needs:
//! reading a finding's path back into the offending field and value.
//!
//! A finding's path is absolute (`spec.template.spec.containers[0].securityContext
//! .privileged` for a Deployment); a restricted field is written against the pod, as
//! Kyverno writes it (`spec.containers[*].securityContext.privileged`), so that one
//! exclusion covers Pods and every controller alike.

use serde_json::{Map, Value};

use super::checks::{self, Check};
use crate::view::PodView;

/// The three container lists, as pod-relative path prefixes.
const CONTAINERS: [&str; 3] = [
    "spec.containers[*]",
    "spec.initContainers[*]",
    "spec.ephemeralContainers[*]",
];

/// The probe and lifecycle handlers whose `host` the host probes check reads.
const HANDLERS: [&str; 5] = [
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle.postStart",
    "lifecycle.preStop",
];

/// `field` below every container.
fn in_containers(field: &str) -> impl Iterator<Item = String> + '_ {
    CONTAINERS.iter().map(move |c| format!("{c}.{field}"))
}

/// `field` below the pod's `securityContext` and every container's.
fn in_security_contexts(field: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(format!("spec.securityContext.{field}"))
        .chain(in_containers(&format!("securityContext.{field}")).collect::<Vec<_>>())
}

/// The fields `check` restricts, pod-relative with `[*]` indices: what a
/// `restrictedField` may name.
pub(crate) fn restricted_fields(check: Check) -> Vec<String> {
    match check {
        Check::HostNamespaces => ["spec.hostNetwork", "spec.hostPID", "spec.hostIPC"]
            .map(str::to_owned)
            .to_vec(),
        Check::Privileged => in_containers("securityContext.privileged").collect(),
        Check::CapabilitiesBaseline => in_containers("securityContext.capabilities.add").collect(),
        Check::CapabilitiesRestricted => in_containers("securityContext.capabilities.drop")
            .chain(in_containers("securityContext.capabilities.add"))
            .collect(),
        Check::HostPathVolumes => vec!["spec.volumes[*].hostPath".to_owned()],
        Check::RestrictedVolumes => vec!["spec.volumes[*]".to_owned()],
        Check::HostPorts => in_containers("ports[*].hostPort").collect(),
        Check::AppArmorProfile => std::iter::once("metadata.annotations".to_owned())
            .chain(in_security_contexts("appArmorProfile.type"))
            .collect(),
        Check::SeLinuxOptions => ["type", "user", "role"]
            .iter()
            .flat_map(|f| in_security_contexts(&format!("seLinuxOptions.{f}")).collect::<Vec<_>>())
            .collect(),
        Check::ProcMount | Check::ProcMountRestricted => {
            in_containers("securityContext.procMount").collect()
        }
        Check::SeccompProfileBaseline | Check::SeccompProfileRestricted => {
            std::iter::once("metadata.annotations".to_owned())
                .chain(in_security_contexts("seccompProfile.type"))
                .collect()
        }
        Check::Sysctls => vec!["spec.securityContext.sysctls[*].name".to_owned()],
        Check::WindowsHostProcess => in_security_contexts("windowsOptions.hostProcess").collect(),
        Check::HostProbesAndHostLifecycle => HANDLERS
            .iter()
            .flat_map(|h| {
                ["httpGet", "tcpSocket"]
                    .iter()
                    .flat_map(|a| in_containers(&format!("{h}.{a}.host")).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            })
            .collect(),
        Check::AllowPrivilegeEscalation => {
            in_containers("securityContext.allowPrivilegeEscalation").collect()
        }
        Check::RunAsNonRoot => in_security_contexts("runAsNonRoot").collect(),
        Check::RunAsUser => in_security_contexts("runAsUser").collect(),
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment<'p> {
    /// A mapping key (`.name`, or `["name"]` when it holds dots or slashes).
    Key(&'p str),
    /// A list index (`[3]`).
    Index(usize),
    /// Any list index (`[*]`).
    Any,
}

/// Split a path as this crate writes them (`spec.containers[0].ports[1].hostPort`,
/// `metadata.annotations["a/b.c"]`, `[*]` for any index). `None` when it is not one.
pub(crate) fn parse(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    let mut rest = path;
    let mut expect_key = true;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find("\"]")?;
                out.push(Segment::Key(&quoted[..end]));
                rest = &quoted[end + 2..];
            } else {
                let end = after.find(']')?;
                let inside = &after[..end];
                out.push(if inside == "*" {
                    Segment::Any
                } else {
                    Segment::Index(inside.parse().ok()?)
                });
                rest = &after[end + 1..];
            }
            expect_key = false;
            continue;
        }
        if !expect_key {
            rest = rest.strip_prefix('.')?;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        out.push(Segment::Key(&rest[..end]));
        rest = &rest[end..];
        expect_key = false;
    }
    (!out.is_empty()).then_some(out)
}

/// Write segments back as a path, every index as `[*]` (the form restricted fields are
/// compared in).
pub(crate) fn render_any(segments: &[Segment<'_>]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Key(k) if k.contains(['.', '[', ']', '"', '/']) => {
                out.push_str("[\"");
                out.push_str(k);
                out.push_str("\"]");
            }
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(_) | Segment::Any => out.push_str("[*]"),
        }
    }
    out
}

/// `path` with every index as `[*]`; `None` when it does not parse.
pub(crate) fn normalize(path: &str) -> Option<String> {
    parse(path.trim()).map(|s| render_any(&s))
}

/// Whether a finding's field (normalized) lies at or below the restricted field `field`.
fn covers(field: &str, finding: &str) -> bool {
    finding
        .strip_prefix(field)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The value at `segments` below `root`.
fn value_at<'a>(root: &'a Map<String, Value>, segments: &[Segment<'_>]) -> Option<&'a Value> {
    let (first, rest) = segments.split_first()?;
    let Segment::Key(k) = first else {
        return None;
    };
    let mut cur = root.get(*k)?;
    for s in rest {
        cur = match s {
            Segment::Key(k) => cur.as_object()?.get(*k)?,
            Segment::Index(i) => cur.as_array()?.get(*i)?,
            Segment::Any => return None,
        };
    }
    Some(cur)
}

/// A scalar as exclusion `values` spell it.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One offending field of a finding: its pod-relative path with `[*]` indices and its
/// value as text (`None` when absent or not a scalar: no `values` entry matches it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offense {
    pub field: String,
    pub value: Option<String>,
}

/// The offending fields behind a finding of `check` at `path` (absolute, as violations
/// carry it): one, the field itself, except for `seLinuxOptions`, whose finding names
/// the mapping and stands for each of its forbidden `type`, `user` and `role`. A
/// volume's offending value is its type (`nfs` at `spec.volumes[0].nfs`).
pub(crate) fn offenses(check: Check, path: &str, pod: &PodView<'_>, minor: u32) -> Vec<Offense> {
    let relative = if let Some(rest) = path.strip_prefix(pod.pod.path()) {
        format!("spec{rest}")
    } else if let Some(rest) = path.strip_prefix(pod.pod.metadata_path()) {
        format!("metadata{rest}")
    } else {
        return Vec::new();
    };
    let Some(segments) = parse(&relative) else {
        return Vec::new();
    };
    let root = match segments.first() {
        Some(Segment::Key("spec")) => Some(pod.pod.spec()),
        Some(Segment::Key("metadata")) => pod.pod.metadata(),
        _ => None,
    };
    // `value_at` starts below the root's key: `spec` and `metadata` are the roots.
    let value = root.and_then(|r| {
        let wrapped = segments.get(1..).unwrap_or_default();
        if wrapped.is_empty() {
            None
        } else {
            value_at(r, wrapped)
        }
    });
    let field = render_any(&segments);
    if check == Check::SeLinuxOptions
        && let Some(opts) = value.and_then(Value::as_object)
    {
        return checks::se_linux_offending(opts, minor)
            .map(|(key, v)| Offense {
                field: format!("{field}.{key}"),
                value: Some(v.to_owned()),
            })
            .collect();
    }
    let value = match value {
        Some(Value::Object(_)) => match segments.last() {
            Some(Segment::Key(k)) => Some((*k).to_owned()),
            _ => None,
        },
        Some(v) => text(v),
        None => None,
    };
    vec![Offense { field, value }]
}

/// Whether an exclusion for `field` with `values` waives `offense`. A volume type may
/// be given as its name (`nfs`) or as its path (`spec.volumes[*].nfs`).
pub(crate) fn waives(field: &str, values: &[String], offense: &Offense) -> bool {
    covers(field, &offense.field)
        && values
            .iter()
            .any(|v| offense.value.as_deref() == Some(v.as_str()) || *v == offense.field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_paths_findings_carry() {
        assert_eq!(
            parse("spec.containers[0].ports[12].hostPort").unwrap(),
            [
                Segment::Key("spec"),
                Segment::Key("containers"),
                Segment::Index(0),
                Segment::Key("ports"),
                Segment::Index(12),
                Segment::Key("hostPort"),
            ]
        );
        assert_eq!(
            parse(r#"metadata.annotations["container.apparmor.security.beta.kubernetes.io/app"]"#)
                .unwrap(),
            [
                Segment::Key("metadata"),
                Segment::Key("annotations"),
                Segment::Key("container.apparmor.security.beta.kubernetes.io/app"),
            ]
        );
        assert_eq!(
            normalize("spec.volumes[3].nfs").as_deref(),
            Some("spec.volumes[*].nfs")
        );
        for bad in ["", ".a", "a..b", "a[", "a[x]", "a[1]b", "a[\"k", "a.[1]"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_restricted_field_is_normal() {
        for check in checks::ALL {
            for f in restricted_fields(check) {
                assert_eq!(normalize(&f).as_deref(), Some(f.as_str()), "{check:?}");
            }
        }
    }

    fn segment() -> impl Strategy<Value = (String, Option<usize>)> {
        (
            prop_oneof![
                "[a-zA-Z][a-zA-Z0-9]{0,8}",
                "[a-z]{1,4}(\\.[a-z]{1,4}){0,2}/[a-z]{1,5}",
            ],
            prop::option::of(0usize..200),
        )
    }

    proptest! {
        /// A path written from keys and indices parses back to them; normalizing is
        /// idempotent; nothing panics on any input.
        #[test]
        fn paths_round_trip(parts in prop::collection::vec(segment(), 1..6)) {
            let mut path = String::new();
            let mut expected = Vec::new();
            for (key, index) in &parts {
                if key.contains(['.', '/']) {
                    path.push_str("[\"");
                    path.push_str(key);
                    path.push_str("\"]");
                } else {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                expected.push(Segment::Key(key.as_str()));
                if let Some(i) = index {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                    expected.push(Segment::Index(*i));
                }
            }
            prop_assert_eq!(parse(&path).unwrap(), expected);
            let once = normalize(&path).unwrap();
            prop_assert_eq!(normalize(&once).unwrap(), once.clone());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }
    }
}
