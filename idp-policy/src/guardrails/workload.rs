//! Workload guardrails: resources, probes, replicas.

use idp_core::{Object, Policy, PolicyContext, Severity, Violation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::podspec::ContainerKind;
use crate::view::{
    NativePolicy, ObjectView, RESOURCE_LIMITS_CPU, RESOURCE_LIMITS_MEMORY, RESOURCE_REQUESTS_CPU,
    RESOURCE_REQUESTS_MEMORY, concat, evaluate_native, text, violation,
};

fn yes() -> bool {
    true
}

fn cpu_memory() -> Vec<String> {
    vec!["cpu".to_owned(), "memory".to_owned()]
}

/// Every container (init containers included) must request and limit resources.
///
/// Rules: `requests` and `limits`, one violation per missing resource with its path.
/// Ephemeral containers cannot have resources and are skipped.
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::RequireResources;
/// let deploy = Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
///     "spec": {"template": {"spec": {"containers": [{"name": "app",
///         "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1"}}}]}}}})).unwrap();
/// let v = RequireResources::default().evaluate(&deploy, &PolicyContext::new());
/// assert_eq!(v.len(), 1);
/// assert_eq!(v[0].path.as_deref(), Some("spec.template.spec.containers[0].resources.limits.memory"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequireResources {
    /// The resources to require (default `cpu` and `memory`).
    #[serde(default = "cpu_memory")]
    pub resources: Vec<String>,
    /// Require requests (default true).
    #[serde(default = "yes")]
    pub requests: bool,
    /// Require limits (default true).
    #[serde(default = "yes")]
    pub limits: bool,
    /// Also check init containers (default true).
    #[serde(default = "yes")]
    pub init_containers: bool,
}

impl Default for RequireResources {
    fn default() -> Self {
        Self {
            resources: cpu_memory(),
            requests: true,
            limits: true,
            init_containers: true,
        }
    }
}

impl RequireResources {
    /// The policy name.
    pub const NAME: &'static str = "require-resources";
}

impl Policy for RequireResources {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        evaluate_native(self, object, ctx)
    }
}

impl RequireResources {
    /// The `resources_set` bits of a container that has every request and limit this
    /// policy wants; `None` when it wants a resource other than cpu and memory (the
    /// container's fields are then read one by one).
    fn wanted_bits(&self) -> Option<u8> {
        let mut wanted = 0;
        for res in &self.resources {
            let (request, limit) = match res.as_str() {
                "cpu" => (RESOURCE_REQUESTS_CPU, RESOURCE_LIMITS_CPU),
                "memory" => (RESOURCE_REQUESTS_MEMORY, RESOURCE_LIMITS_MEMORY),
                _ => return None,
            };
            if self.requests {
                wanted |= request;
            }
            if self.limits {
                wanted |= limit;
            }
        }
        Some(wanted)
    }
}

/// The message after the container's name, and the field, of a missing cpu or memory
/// request or limit.
fn resource_texts(section: &str, resource: &str) -> Option<(&'static str, &'static str)> {
    Some(match (section, resource) {
        ("requests", "cpu") => (
            "\" has no cpu request; set resources.requests.cpu",
            "resources.requests.cpu",
        ),
        ("requests", "memory") => (
            "\" has no memory request; set resources.requests.memory",
            "resources.requests.memory",
        ),
        ("limits", "cpu") => (
            "\" has no cpu limit; set resources.limits.cpu",
            "resources.limits.cpu",
        ),
        ("limits", "memory") => (
            "\" has no memory limit; set resources.limits.memory",
            "resources.limits.memory",
        ),
        _ => return None,
    })
}

impl NativePolicy for RequireResources {
    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        let Some(pod) = &view.pod else {
            return;
        };
        let wanted = self.wanted_bits();
        for c in pod.containers() {
            match c.kind() {
                ContainerKind::Ephemeral => continue,
                ContainerKind::Init if !self.init_containers => continue,
                _ => {}
            }
            if wanted.is_some_and(|w| c.resources_set & w == w) {
                continue;
            }
            let resources = c.resources;
            for (section, wanted, noun) in [
                ("requests", self.requests, "request"),
                ("limits", self.limits, "limit"),
            ] {
                if !wanted {
                    continue;
                }
                let present = resources.and_then(|r| r.get(section));
                for res in &self.resources {
                    let set = present
                        .and_then(|p| p.get(res))
                        .is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
                    if !set {
                        // cpu and memory, the common case, are two constants; any other
                        // resource is joined from pieces.
                        let (message, path) = match resource_texts(section, res) {
                            Some((tail, field)) => {
                                (concat(&["container \"", c.name, tail]), c.field_path(field))
                            }
                            None => (
                                concat(&[
                                    "container \"",
                                    c.name,
                                    "\" has no ",
                                    res,
                                    " ",
                                    noun,
                                    "; set resources.",
                                    section,
                                    ".",
                                    res,
                                ]),
                                c.field_path_pieces(&["resources.", section, ".", res]),
                            ),
                        };
                        out.push(violation(
                            Self::NAME,
                            section,
                            message,
                            path,
                            Severity::default(),
                        ));
                    }
                }
            }
        }
    }
}

/// Long-running containers must have liveness and readiness probes.
///
/// Rules: `liveness`, `readiness`, `startup` (off by default). Only `containers` are
/// checked (not init or ephemeral containers); Jobs and CronJobs are skipped unless
/// `batch: true`, since their pods run to completion.
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::RequireProbes;
/// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
///     "spec": {"containers": [{"name": "app", "readinessProbe": {"httpGet": {"port": 8080}}}]}})).unwrap();
/// let v = RequireProbes::default().evaluate(&pod, &PolicyContext::new());
/// assert_eq!(v[0].rule, "liveness");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequireProbes {
    /// Require `livenessProbe` (default true).
    #[serde(default = "yes")]
    pub liveness: bool,
    /// Require `readinessProbe` (default true).
    #[serde(default = "yes")]
    pub readiness: bool,
    /// Require `startupProbe` (default false).
    #[serde(default)]
    pub startup: bool,
    /// Also check Jobs and CronJobs (default false).
    #[serde(default)]
    pub batch: bool,
}

impl Default for RequireProbes {
    fn default() -> Self {
        Self {
            liveness: true,
            readiness: true,
            startup: false,
            batch: false,
        }
    }
}

impl RequireProbes {
    /// The policy name.
    pub const NAME: &'static str = "require-probes";
}

impl Policy for RequireProbes {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        evaluate_native(self, object, ctx)
    }
}

impl NativePolicy for RequireProbes {
    fn applies(&self, view: &ObjectView<'_>) -> bool {
        view.pod.is_some() && (self.batch || !matches!(view.kind, "Job" | "CronJob"))
    }

    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        if !self.batch && matches!(view.kind, "Job" | "CronJob") {
            return;
        }
        let Some(pod) = &view.pod else {
            return;
        };
        for c in pod
            .containers()
            .iter()
            .filter(|c| c.kind() == ContainerKind::Regular)
        {
            for (wanted, field, rule, probe) in [
                (self.liveness, "livenessProbe", "liveness", c.liveness_probe),
                (
                    self.readiness,
                    "readinessProbe",
                    "readiness",
                    c.readiness_probe,
                ),
                (self.startup, "startupProbe", "startup", c.startup_probe),
            ] {
                if wanted && !probe.is_some_and(Value::is_object) {
                    out.push(violation(
                        Self::NAME,
                        rule,
                        concat(&["container \"", c.name, "\" has no ", field]),
                        c.field_path(field),
                        Severity::Low,
                    ));
                }
            }
        }
    }
}

fn two() -> u64 {
    2
}

fn production() -> Vec<String> {
    vec!["prod".to_owned(), "production".to_owned()]
}

/// Deployments, StatefulSets and ReplicaSets must run at least `min` replicas in the
/// named environments (from [`PolicyContext::environment`]). A missing `spec.replicas`
/// counts as 1, the API default; a workload scaled by a HorizontalPodAutoscaler should be
/// excluded through the policy's match rules.
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::MinReplicas;
/// let d = Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1}})).unwrap();
/// let prod = PolicyContext::new().with_environment("prod".parse().unwrap());
/// assert_eq!(MinReplicas::default().evaluate(&d, &prod).len(), 1);
/// let dev = PolicyContext::new().with_environment("dev".parse().unwrap());
/// assert!(MinReplicas::default().evaluate(&d, &dev).is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MinReplicas {
    /// The minimum (default 2).
    #[serde(default = "two")]
    pub min: u64,
    /// The environments it applies in (default `prod`, `production`); `*` for all.
    #[serde(default = "production")]
    pub environments: Vec<String>,
}

impl Default for MinReplicas {
    fn default() -> Self {
        Self {
            min: two(),
            environments: production(),
        }
    }
}

impl MinReplicas {
    /// The policy name.
    pub const NAME: &'static str = "min-replicas";
}

impl Policy for MinReplicas {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(&ObjectView::without_pod(object), ctx, &mut out);
        out
    }
}

impl NativePolicy for MinReplicas {
    fn applies(&self, view: &ObjectView<'_>) -> bool {
        matches!(view.kind, "Deployment" | "StatefulSet" | "ReplicaSet")
    }

    fn check(&self, view: &ObjectView<'_>, ctx: &PolicyContext, out: &mut Vec<Violation>) {
        let object = view.object;
        if !matches!(view.kind, "Deployment" | "StatefulSet" | "ReplicaSet") {
            return;
        }
        let Some(env) = ctx
            .environment
            .as_ref()
            .map(idp_core::EnvironmentName::as_str)
        else {
            return;
        };
        if !self.environments.iter().any(|e| e == "*" || e == env) {
            return;
        }
        let replicas = object
            .as_map()
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .map_or(Some(1), Value::as_u64);
        match replicas {
            Some(n) if n >= self.min => {}
            _ => out.push(
                Violation::from_static(
                    Self::NAME,
                    "replicas",
                    text!(
                        "{} runs {} replica(s) in environment \"{env}\"; at least {} are required there",
                        view.kind,
                        replicas.map_or_else(|| "an invalid number of".to_owned(), |n| n.to_string()),
                        self.min
                    ),
                )
                .with_path("spec.replicas"),
            ),
        }
    }
}
