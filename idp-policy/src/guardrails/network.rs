//! Network guardrails: sensitive ports, Service types, Ingress TLS.

use idp_core::{Object, Policy, PolicyContext, Severity, Violation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::view::{NativePolicy, ObjectView, evaluate_native, text};

/// The ports [`ForbidSensitivePorts`] forbids by default: SSH, Telnet, the Docker
/// daemon, RDP, VNC, the Kubernetes API server, the kubelet and etcd.
///
/// ```
/// assert!(idp_policy::guardrails::SENSITIVE_PORTS.contains(&10250));
/// ```
pub const SENSITIVE_PORTS: &[u16] = &[
    22, 23, 2375, 2376, 3389, 5900, 6443, 10250, 10255, 2379, 2380,
];

fn default_ports() -> Vec<u16> {
    SENSITIVE_PORTS.to_vec()
}

/// Containers must not expose, and Services must not forward, sensitive ports.
///
/// Rules: `container-port` (`containerPort`/`hostPort` of any container) and
/// `service-port` (`port`, numeric `targetPort`, `nodePort` of a Service).
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::ForbidSensitivePorts;
/// let svc = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Service",
///     "spec": {"ports": [{"port": 80, "targetPort": 22}]}})).unwrap();
/// let v = ForbidSensitivePorts::default().evaluate(&svc, &PolicyContext::new());
/// assert_eq!(v[0].path.as_deref(), Some("spec.ports[0].targetPort"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ForbidSensitivePorts {
    /// The forbidden ports (default [`SENSITIVE_PORTS`]).
    #[serde(default = "default_ports")]
    pub ports: Vec<u16>,
}

impl Default for ForbidSensitivePorts {
    fn default() -> Self {
        Self {
            ports: default_ports(),
        }
    }
}

impl ForbidSensitivePorts {
    /// The policy name.
    pub const NAME: &'static str = "forbid-sensitive-ports";

    /// Forbid these ports instead.
    ///
    /// ```
    /// assert_eq!(idp_policy::guardrails::ForbidSensitivePorts::new([8081]).ports, [8081]);
    /// ```
    pub fn new(ports: impl IntoIterator<Item = u16>) -> Self {
        Self {
            ports: ports.into_iter().collect(),
        }
    }

    fn forbidden(&self, value: Option<&Value>) -> Option<u64> {
        let n = value?.as_u64()?;
        self.ports.iter().any(|p| u64::from(*p) == n).then_some(n)
    }
}

impl Policy for ForbidSensitivePorts {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        evaluate_native(self, object, ctx)
    }
}

impl NativePolicy for ForbidSensitivePorts {
    fn applies(&self, view: &ObjectView<'_>) -> bool {
        view.pod.is_some() || view.kind == "Service"
    }

    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        let object = view.object;
        if view.kind == "Service" {
            let ports = object
                .as_map()
                .get("spec")
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_array);
            for (i, port) in ports.into_iter().flatten().enumerate() {
                for field in ["port", "targetPort", "nodePort"] {
                    if let Some(n) = self.forbidden(port.get(field)) {
                        out.push(
                            Violation::from_static(
                                Self::NAME,
                                "service-port",
                                text!("Service {field} {n} is a sensitive port; do not expose it"),
                            )
                            .with_path(text!("spec.ports[{i}].{field}"))
                            .with_severity(Severity::High),
                        );
                    }
                }
            }
            return;
        }
        let Some(pod) = &view.pod else {
            return;
        };
        if !pod.port_numbers.may_include_any(&self.ports) {
            return;
        }
        for c in pod.containers() {
            for (j, port) in c.ports.into_iter().flatten().enumerate() {
                for field in ["containerPort", "hostPort"] {
                    if let Some(n) = self.forbidden(port.get(field)) {
                        out.push(
                            Violation::from_static(
                                Self::NAME,
                                "container-port",
                                text!(
                                    "container \"{}\" {field} {n} is a sensitive port; do not expose it",
                                    c.name
                                ),
                            )
                            .with_path(c.field_path_args(format_args!("ports[{j}].{field}")))
                            .with_severity(Severity::High),
                        );
                    }
                }
            }
        }
    }
}

fn exposed_types() -> Vec<String> {
    vec!["LoadBalancer".to_owned(), "NodePort".to_owned()]
}

/// Services must not be of the restricted types (default `LoadBalancer` and
/// `NodePort`): expose through the platform's ingress instead. Rule: `service-type`.
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::RestrictServiceTypes;
/// let svc = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "NodePort"}})).unwrap();
/// assert_eq!(RestrictServiceTypes::default().evaluate(&svc, &PolicyContext::new()).len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RestrictServiceTypes {
    /// The forbidden types (default `LoadBalancer`, `NodePort`).
    #[serde(default = "exposed_types")]
    pub forbidden: Vec<String>,
}

impl Default for RestrictServiceTypes {
    fn default() -> Self {
        Self {
            forbidden: exposed_types(),
        }
    }
}

impl RestrictServiceTypes {
    /// The policy name.
    pub const NAME: &'static str = "restrict-service-types";
}

impl Policy for RestrictServiceTypes {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(&ObjectView::without_pod(object), ctx, &mut out);
        out
    }
}

impl NativePolicy for RestrictServiceTypes {
    fn applies(&self, view: &ObjectView<'_>) -> bool {
        view.kind == "Service"
    }

    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        let object = view.object;
        if view.kind != "Service" {
            return;
        }
        let t = object
            .as_map()
            .get("spec")
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP");
        if self.forbidden.iter().any(|f| f == t) {
            out.push(
                Violation::from_static(
                    Self::NAME,
                    "service-type",
                    text!(
                        "Service type {t} is not allowed; use ClusterIP behind the platform ingress"
                    ),
                )
                .with_path("spec.type"),
            );
        }
    }
}

/// Ingresses must terminate TLS for every host they route. Rules: `tls` (no `spec.tls`
/// at all) and `host-without-tls` (a rule's host that no TLS entry covers; `*.example.com`
/// covers one label).
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::RequireIngressTls;
/// let ing = Object::from_value(serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
///     "spec": {"rules": [{"host": "shop.example.com"}]}})).unwrap();
/// assert_eq!(RequireIngressTls::default().evaluate(&ing, &PolicyContext::new())[0].rule, "tls");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RequireIngressTls {}

impl RequireIngressTls {
    /// The policy name.
    pub const NAME: &'static str = "require-ingress-tls";
}

fn host_covered(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

impl Policy for RequireIngressTls {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(&ObjectView::without_pod(object), ctx, &mut out);
        out
    }
}

impl NativePolicy for RequireIngressTls {
    fn applies(&self, view: &ObjectView<'_>) -> bool {
        view.kind == "Ingress"
    }

    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        let object = view.object;
        if view.kind != "Ingress" {
            return;
        }
        let spec = object.as_map().get("spec");
        let tls = spec
            .and_then(|s| s.get("tls"))
            .and_then(Value::as_array)
            .filter(|t| !t.is_empty());
        let Some(tls) = tls else {
            out.push(
                Violation::from_static(
                    Self::NAME,
                    "tls",
                    "Ingress has no spec.tls; serve it over HTTPS with a certificate",
                )
                .with_path("spec.tls")
                .with_severity(Severity::High),
            );
            return;
        };
        let tls_hosts: Vec<&str> = tls
            .iter()
            .filter_map(|t| t.get("hosts").and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let rules = spec.and_then(|s| s.get("rules")).and_then(Value::as_array);
        for (i, rule) in rules.into_iter().flatten().enumerate() {
            let Some(host) = rule.get("host").and_then(Value::as_str) else {
                continue;
            };
            if !tls_hosts.iter().any(|p| host_covered(p, host)) {
                out.push(
                    Violation::from_static(
                        Self::NAME,
                        "host-without-tls",
                        text!("Ingress host \"{host}\" is not listed in any spec.tls[].hosts"),
                    )
                    .with_path(text!("spec.rules[{i}].host")),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_covered;

    #[test]
    fn tls_host_coverage() {
        assert!(host_covered("a.example.com", "a.example.com"));
        assert!(host_covered("*.example.com", "a.example.com"));
        assert!(!host_covered("*.example.com", "a.b.example.com"));
        assert!(!host_covered("*.example.com", "example.com"));
        assert!(!host_covered("b.example.com", "a.example.com"));
    }
}
