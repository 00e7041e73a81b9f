//! Health assessment of live Kubernetes objects, with Argo CD's statuses and semantics.
//!
//! [`assess`] looks at one live object (its `spec`, `status` and `metadata`) and says
//! whether it is [`Healthy`](HealthStatus::Healthy), still
//! [`Progressing`](HealthStatus::Progressing), [`Degraded`](HealthStatus::Degraded),
//! [`Suspended`](HealthStatus::Suspended) or in an [`Unknown`](HealthStatus::Unknown)
//! state. Kinds without a rule get `None`: like Argo CD, we do not guess (a ConfigMap
//! is neither healthy nor unhealthy, it just is). [`HealthStatus::Missing`] is never
//! returned by [`assess`]; [`wait_healthy`](super::wait_healthy) uses it for objects
//! that do not exist.
//!
//! The rules follow the health checks Argo CD documents for its built-in kinds
//! (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod, Service, Ingress,
//! PersistentVolumeClaim, HorizontalPodAutoscaler, APIService) plus the
//! CustomResourceDefinition check it ships as a resource customization; they mirror
//! `kubectl rollout status` for the workload kinds. Where this module deliberately
//! differs, the rule's doc says so. Every function here is pure: no cluster needed.
//!
//! ```
//! use idp_core::cluster::health::{assess, HealthStatus};
//! use idp_core::Object;
//!
//! let svc = Object::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Service",
//!     "metadata": {"name": "web", "namespace": "shop"},
//!     "spec": {"type": "LoadBalancer"},
//! }))?;
//! let health = assess(&svc).expect("Services have a rule");
//! assert_eq!(health.status, HealthStatus::Progressing);
//! # Ok::<(), idp_core::Error>(())
//! ```

use std::fmt;

use serde_json::Value;

use crate::manifest::Object;

/// The health of an object, as Argo CD names it.
///
/// The variants are ordered from best to worst the way Argo CD aggregates an
/// application's health ([`HealthStatus::worst`]): Healthy < Suspended < Progressing <
/// Missing < Degraded < Unknown.
///
/// ```
/// use idp_core::cluster::health::HealthStatus;
/// assert!(HealthStatus::Degraded > HealthStatus::Progressing);
/// assert_eq!(HealthStatus::Suspended.to_string(), "Suspended");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum HealthStatus {
    /// The object is fully rolled out and serving.
    Healthy,
    /// The object is paused or suspended on purpose (a paused Deployment, a suspended Job).
    Suspended,
    /// The object is on its way to healthy (a rollout in progress, a volume being bound).
    Progressing,
    /// The object does not exist in the cluster.
    Missing,
    /// The object failed or cannot make progress (a crash loop, a missed progress deadline).
    Degraded,
    /// The health could not be determined from the object's status.
    Unknown,
}

impl HealthStatus {
    /// The status name as Argo CD prints it.
    ///
    /// ```
    /// assert_eq!(idp_core::cluster::health::HealthStatus::Healthy.as_str(), "Healthy");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "Healthy",
            HealthStatus::Suspended => "Suspended",
            HealthStatus::Progressing => "Progressing",
            HealthStatus::Missing => "Missing",
            HealthStatus::Degraded => "Degraded",
            HealthStatus::Unknown => "Unknown",
        }
    }

    /// The worst of several statuses (Argo CD's aggregation of an application's
    /// resources); `Healthy` for none.
    ///
    /// ```
    /// use idp_core::cluster::health::HealthStatus::*;
    /// assert_eq!(idp_core::cluster::health::HealthStatus::worst([Healthy, Progressing, Suspended]), Progressing);
    /// ```
    pub fn worst(statuses: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
        statuses.into_iter().max().unwrap_or(HealthStatus::Healthy)
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A health status with the human message that explains it (may be empty).
///
/// ```
/// use idp_core::cluster::health::{Health, HealthStatus};
/// let h = Health::new(HealthStatus::Progressing, "Waiting for rollout to finish");
/// assert_eq!(h.to_string(), "Progressing: Waiting for rollout to finish");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// Why, in words (empty when there is nothing to add).
    pub message: String,
}

impl Health {
    /// A health with a status and a message.
    ///
    /// ```
    /// let h = idp_core::cluster::health::Health::new(idp_core::cluster::health::HealthStatus::Healthy, "");
    /// assert!(h.message.is_empty());
    /// ```
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn healthy() -> Self {
        Self::new(HealthStatus::Healthy, "")
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{}: {}", self.status, self.message)
        }
    }
}

/// Whether [`assess`] has a rule for objects of this API group and kind.
///
/// ```
/// use idp_core::cluster::health::has_rule;
/// assert!(has_rule("apps", "Deployment"));
/// assert!(!has_rule("", "ConfigMap"));
/// ```
pub fn has_rule(group: &str, kind: &str) -> bool {
    rule_for(group, kind).is_some()
}

type Rule = fn(&Value) -> Health;

fn rule_for(group: &str, kind: &str) -> Option<Rule> {
    let rule: Rule = match (group, kind) {
        ("apps" | "extensions", "Deployment") => deployment,
        ("apps", "StatefulSet") => stateful_set,
        ("apps" | "extensions", "DaemonSet") => daemon_set,
        ("apps" | "extensions", "ReplicaSet") => replica_set,
        ("batch", "Job") => job,
        ("", "Pod") => pod,
        ("", "Service") => service,
        ("networking.k8s.io" | "extensions", "Ingress") => ingress,
        ("", "PersistentVolumeClaim") => persistent_volume_claim,
        ("autoscaling", "HorizontalPodAutoscaler") => horizontal_pod_autoscaler,
        ("apiregistration.k8s.io", "APIService") => api_service,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => custom_resource_definition,
        _ => return None,
    };
    Some(rule)
}

/// Assess the health of one live object; `None` when its kind has no health rule.
///
/// An object being deleted (`metadata.deletionTimestamp` set) is `Progressing` with
/// the message "Pending deletion", whatever its kind, as in Argo CD.
///
/// ```
/// use idp_core::cluster::health::{assess, HealthStatus};
/// let pvc = idp_core::Object::from_value(serde_json::json!({
///     "apiVersion": "v1", "kind": "PersistentVolumeClaim",
///     "metadata": {"name": "data"},
///     "status": {"phase": "Bound"},
/// }))?;
/// assert_eq!(assess(&pvc).unwrap().status, HealthStatus::Healthy);
/// let cm = idp_core::Object::from_value(serde_json::json!({
///     "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
/// }))?;
/// assert!(assess(&cm).is_none());
/// # Ok::<(), idp_core::Error>(())
/// ```
pub fn assess(object: &Object) -> Option<Health> {
    let value = object.as_map();
    let being_deleted = value
        .get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|t| !t.is_null());
    if being_deleted {
        return Some(Health::new(HealthStatus::Progressing, "Pending deletion"));
    }
    let group = object
        .api_version()
        .rsplit_once('/')
        .map_or("", |(group, _)| group);
    let rule = rule_for(group, object.kind())?;
    // Rules read through `Value` paths; wrapping costs one clone of the map, which
    // keeps the rules simple functions of plain JSON.
    Some(rule(&object.to_value()))
}

// ---------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn int(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path).and_then(Value::as_i64)
}

/// An integer status counter; absent counters are zero, as in the typed API.
fn count(value: &Value, path: &[&str]) -> i64 {
    int(value, path).unwrap_or(0)
}

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).and_then(Value::as_str).unwrap_or_default()
}

fn name(value: &Value) -> &str {
    text(value, &["metadata", "name"])
}

struct Condition<'a> {
    kind: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

fn condition_of(c: &Value) -> Condition<'_> {
    Condition {
        kind: text(c, &["type"]),
        status: text(c, &["status"]),
        reason: text(c, &["reason"]),
        message: text(c, &["message"]),
    }
}

fn conditions(value: &Value) -> Vec<Condition<'_>> {
    at(value, &["status", "conditions"])
        .and_then(Value::as_array)
        .map(|list| list.iter().map(condition_of).collect())
        .unwrap_or_default()
}

fn find_condition<'a>(value: &'a Value, kind: &str) -> Option<Condition<'a>> {
    conditions(value).into_iter().find(|c| c.kind == kind)
}

/// `metadata.generation` is at most `status.observedGeneration`: the controller has
/// seen the latest spec.
fn generation_observed(value: &Value) -> bool {
    count(value, &["metadata", "generation"]) <= count(value, &["status", "observedGeneration"])
}

// ---------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------

/// Deployment: paused → Suspended; spec not yet observed → Progressing; a
/// `Progressing` condition with reason `ProgressDeadlineExceeded` → Degraded; new
/// replicas not all updated, old replicas still terminating or updated replicas not all
/// available → Progressing; otherwise Healthy.
fn deployment(d: &Value) -> Health {
    if at(d, &["spec", "paused"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(HealthStatus::Suspended, "Deployment is paused");
    }
    if !generation_observed(d) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    if find_condition(d, "Progressing").is_some_and(|c| c.reason == "ProgressDeadlineExceeded") {
        return Health::new(
            HealthStatus::Degraded,
            format!("Deployment {:?} exceeded its progress deadline", name(d)),
        );
    }
    let updated = count(d, &["status", "updatedReplicas"]);
    let replicas = count(d, &["status", "replicas"]);
    let available = count(d, &["status", "availableReplicas"]);
    if let Some(desired) = int(d, &["spec", "replicas"])
        && updated < desired
    {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated..."
            ),
        );
    }
    if replicas > updated {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
        );
    }
    if available < updated {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        );
    }
    Health::healthy()
}

/// StatefulSet: spec not yet observed → Progressing; fewer ready pods than desired →
/// Progressing; RollingUpdate with a partition → Progressing until the pods above the
/// partition are updated, then Healthy; OnDelete → Healthy (the controller will not
/// replace pods by itself); otherwise Healthy once the update revision is current.
fn stateful_set(s: &Value) -> Health {
    let observed = count(s, &["status", "observedGeneration"]);
    if observed == 0 || count(s, &["metadata", "generation"]) > observed {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for statefulset spec update to be observed...",
        );
    }
    let desired = int(s, &["spec", "replicas"]);
    let ready = count(s, &["status", "readyReplicas"]);
    if let Some(desired) = desired
        && ready < desired
    {
        return Health::new(
            HealthStatus::Progressing,
            format!("Waiting for {} pods to be ready...", desired - ready),
        );
    }
    let strategy = text(s, &["spec", "updateStrategy", "type"]);
    let updated = count(s, &["status", "updatedReplicas"]);
    let rolling = at(s, &["spec", "updateStrategy", "rollingUpdate"]).filter(|v| !v.is_null());
    if (strategy == "RollingUpdate" || strategy.is_empty())
        && let Some(rolling) = rolling
    {
        if let (Some(desired), Some(partition)) = (desired, int(rolling, &["partition"]))
            && updated < desired - partition
        {
            return Health::new(
                HealthStatus::Progressing,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                    desired - partition
                ),
            );
        }
        return Health::new(
            HealthStatus::Healthy,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        );
    }
    if strategy == "OnDelete" {
        return Health::new(
            HealthStatus::Healthy,
            format!("statefulset has {ready} ready pods"),
        );
    }
    let update_revision = text(s, &["status", "updateRevision"]);
    let current_revision = text(s, &["status", "currentRevision"]);
    if update_revision != current_revision {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
            ),
        );
    }
    Health::new(
        HealthStatus::Healthy,
        format!(
            "statefulset rolling update complete {} pods at revision {current_revision}...",
            count(s, &["status", "currentReplicas"])
        ),
    )
}

/// DaemonSet: spec not yet observed → Progressing; OnDelete → Healthy with a count;
/// fewer updated or available pods than desired → Progressing; otherwise Healthy.
fn daemon_set(d: &Value) -> Health {
    if !generation_observed(d) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        );
    }
    let desired = count(d, &["status", "desiredNumberScheduled"]);
    let updated = count(d, &["status", "updatedNumberScheduled"]);
    let available = count(d, &["status", "numberAvailable"]);
    if text(d, &["spec", "updateStrategy", "type"]) == "OnDelete" {
        return Health::new(
            HealthStatus::Healthy,
            format!("daemon set {updated} out of {desired} new pods have been updated"),
        );
    }
    if updated < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {updated} out of {desired} new pods have been updated...",
                name(d)
            ),
        );
    }
    if available < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {available} of {desired} updated pods are available...",
                name(d)
            ),
        );
    }
    Health::healthy()
}

/// ReplicaSet: spec not yet observed → Progressing; a true `ReplicaFailure` condition
/// → Degraded; fewer available replicas than desired → Progressing; otherwise Healthy.
fn replica_set(r: &Value) -> Health {
    if !generation_observed(r) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        );
    }
    if let Some(c) = find_condition(r, "ReplicaFailure").filter(|c| c.status == "True") {
        return Health::new(HealthStatus::Degraded, c.message);
    }
    let available = count(r, &["status", "availableReplicas"]);
    if let Some(desired) = int(r, &["spec", "replicas"])
        && available < desired
    {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {desired} new replicas are available..."
            ),
        );
    }
    Health::healthy()
}

/// Job: a true `Failed` condition → Degraded with its message; a true `Complete`
/// condition → Healthy; a true `Suspended` condition (or `spec.suspend` before the
/// controller reported one) → Suspended; otherwise Progressing.
///
/// Unlike Argo CD, conditions count only when their status is `True` (a `Suspended`
/// condition turns `False` when the Job is resumed, and the Job is running again).
fn job(j: &Value) -> Health {
    let all = conditions(j);
    let is_true = |kind: &str| all.iter().find(|c| c.kind == kind && c.status == "True");
    if let Some(c) = is_true("Failed") {
        return Health::new(HealthStatus::Degraded, c.message);
    }
    if let Some(c) = is_true("Complete") {
        return Health::new(HealthStatus::Healthy, c.message);
    }
    if let Some(c) = is_true("Suspended") {
        return Health::new(HealthStatus::Suspended, c.message);
    }
    if at(j, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        return Health::new(HealthStatus::Suspended, "Job is suspended");
    }
    let message = all
        .iter()
        .find(|c| c.status == "True")
        .map(|c| c.message)
        .unwrap_or_default();
    Health::new(HealthStatus::Progressing, message)
}

/// Pod: with restart policy Always, a container waiting for a reason that starts with
/// `Err` or ends with `Error` or `BackOff` (`ErrImagePull`, `CrashLoopBackOff`,
/// `ImagePullBackOff`, `CreateContainerConfigError`) → Degraded. Then by phase: Pending
/// → Progressing; Succeeded → Healthy; Failed → Degraded with the pod's or the failed
/// container's message; Running → Healthy when restart policy is Always and the pod is
/// ready, Degraded when a container has terminated before, Progressing otherwise (pods
/// that run to completion, restart policy OnFailure or Never, stay Progressing while
/// running); anything else → Unknown.
fn pod(p: &Value) -> Health {
    let restart_policy = match text(p, &["spec", "restartPolicy"]) {
        "" => "Always",
        other => other,
    };
    let status_message = text(p, &["status", "message"]);
    let container_statuses = |field: &str| -> Vec<&Value> {
        at(p, &["status", field])
            .and_then(Value::as_array)
            .map(|l| l.iter().collect())
            .unwrap_or_default()
    };
    let containers = container_statuses("containerStatuses");
    if restart_policy == "Always" {
        let mut messages = Vec::new();
        for c in &containers {
            if let Some(waiting) = at(c, &["state", "waiting"]) {
                let reason = text(waiting, &["reason"]);
                if reason.starts_with("Err")
                    || reason.ends_with("Error")
                    || reason.ends_with("BackOff")
                {
                    let message = text(waiting, &["message"]);
                    messages.push(if message.is_empty() {
                        format!("container {:?}: {reason}", text(c, &["name"]))
                    } else {
                        message.to_owned()
                    });
                }
            }
        }
        if !messages.is_empty() {
            return Health::new(HealthStatus::Degraded, messages.join(", "));
        }
    }
    match text(p, &["status", "phase"]) {
        "Pending" => Health::new(HealthStatus::Progressing, status_message),
        "Succeeded" => Health::new(HealthStatus::Healthy, status_message),
        "Failed" => {
            if !status_message.is_empty() {
                return Health::new(HealthStatus::Degraded, status_message);
            }
            let mut all = container_statuses("initContainerStatuses");
            all.extend(containers);
            let message = all
                .iter()
                .find_map(|c| failure_message(c))
                .unwrap_or_default();
            Health::new(HealthStatus::Degraded, message)
        }
        "Running" => {
            if restart_policy != "Always" {
                return Health::new(HealthStatus::Progressing, status_message);
            }
            let ready_condition = find_condition(p, "Ready").map(|c| c.status == "True");
            let all_containers_ready = !containers.is_empty()
                && containers
                    .iter()
                    .all(|c| at(c, &["ready"]).and_then(Value::as_bool) == Some(true));
            if ready_condition.unwrap_or(all_containers_ready) {
                return Health::new(HealthStatus::Healthy, status_message);
            }
            if containers
                .iter()
                .any(|c| at(c, &["lastState", "terminated"]).is_some_and(|t| !t.is_null()))
            {
                return Health::new(HealthStatus::Degraded, status_message);
            }
            Health::new(HealthStatus::Progressing, status_message)
        }
        _ => Health::new(HealthStatus::Unknown, status_message),
    }
}

fn failure_message(container: &Value) -> Option<String> {
    let terminated = at(container, &["state", "terminated"])?;
    let message = text(terminated, &["message"]);
    if !message.is_empty() {
        return Some(message.to_owned());
    }
    let reason = text(terminated, &["reason"]);
    if reason == "OOMKilled" {
        return Some(reason.to_owned());
    }
    let exit_code = count(terminated, &["exitCode"]);
    (exit_code != 0).then(|| {
        format!(
            "container {:?} failed with exit code {exit_code}",
            text(container, &["name"])
        )
    })
}

// ---------------------------------------------------------------------------------------
// Networking and storage
// ---------------------------------------------------------------------------------------

fn has_load_balancer_ingress(v: &Value) -> bool {
    at(v, &["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty())
}

/// Service: type LoadBalancer → Healthy once `status.loadBalancer.ingress` has an
/// entry, Progressing before; every other type → Healthy.
fn service(s: &Value) -> Health {
    if text(s, &["spec", "type"]) == "LoadBalancer" && !has_load_balancer_ingress(s) {
        return Health::new(
            HealthStatus::Progressing,
            "Waiting for the load balancer to be provisioned",
        );
    }
    Health::healthy()
}

/// Ingress: Healthy once `status.loadBalancer.ingress` has an entry, Progressing before.
fn ingress(i: &Value) -> Health {
    if has_load_balancer_ingress(i) {
        Health::healthy()
    } else {
        Health::new(
            HealthStatus::Progressing,
            "Waiting for the ingress controller to assign an address",
        )
    }
}

/// PersistentVolumeClaim: Bound → Healthy, Pending → Progressing, Lost → Degraded,
/// anything else → Unknown.
fn persistent_volume_claim(p: &Value) -> Health {
    match text(p, &["status", "phase"]) {
        "Bound" => Health::healthy(),
        "Pending" => Health::new(
            HealthStatus::Progressing,
            "Waiting for the volume to be bound",
        ),
        "Lost" => Health::new(
            HealthStatus::Degraded,
            "The volume bound to this claim is lost",
        ),
        other => Health::new(
            HealthStatus::Unknown,
            format!("Unknown claim phase {other:?}"),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Autoscaling and API machinery
// ---------------------------------------------------------------------------------------

/// The annotation where `autoscaling/v1` HorizontalPodAutoscalers carry their
/// conditions (a JSON list), since v1 has no `status.conditions`.
pub const HPA_V1_CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";

/// HorizontalPodAutoscaler (v1 through its conditions annotation, v2 through
/// `status.conditions`): a condition saying the autoscaler cannot read its target's
/// scale or update it (`AbleToScale` with reason `FailedGetScale` or
/// `FailedUpdateScale`), or cannot compute metrics (`ScalingActive` false with a
/// `FailedGet…Metric`, `InvalidSelector` or `InvalidMetricSourceType` reason) →
/// Degraded with its message. No conditions yet → Progressing "Waiting to Autoscale".
/// Otherwise Healthy, with the message of the condition that says why (the scaling
/// limit, a successful rescale).
///
/// Argo CD answers Progressing when no condition matches its list of healthy reasons;
/// we answer Healthy once the controller reports conditions and none is a failure,
/// so that an autoscaler with a reason Argo CD does not list yet is not stuck.
fn horizontal_pod_autoscaler(h: &Value) -> Health {
    let annotation: Option<Vec<Value>> = at(h, &["metadata", "annotations"])
        .and_then(|a| a.get(HPA_V1_CONDITIONS_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|json| serde_json::from_str(json).ok());
    let owned;
    let list: Vec<Condition<'_>> = if let Some(from_annotation) = annotation {
        owned = from_annotation;
        owned.iter().map(condition_of).collect()
    } else {
        conditions(h)
    };
    if list.is_empty() {
        return Health::new(HealthStatus::Progressing, "Waiting to Autoscale");
    }
    let degraded = list.iter().find(|c| match c.kind {
        "AbleToScale" => matches!(c.reason, "FailedGetScale" | "FailedUpdateScale"),
        "ScalingActive" => {
            c.status == "False"
                && (c.reason.starts_with("FailedGet")
                    || matches!(c.reason, "InvalidSelector" | "InvalidMetricSourceType"))
        }
        _ => false,
    });
    if let Some(c) = degraded {
        return Health::new(HealthStatus::Degraded, c.message);
    }
    let why = list.iter().find(|c| {
        matches!(
            (c.kind, c.reason),
            ("AbleToScale", "SucceededRescale")
                | (
                    "ScalingLimited",
                    "DesiredWithinRange" | "TooFewReplicas" | "TooManyReplicas"
                )
        )
    });
    Health::new(
        HealthStatus::Healthy,
        why.map(|c| c.message).unwrap_or_default(),
    )
}

/// APIService: condition `Available` true → Healthy, false → Progressing (both with
/// "reason: message"); no such condition yet → Progressing "Waiting to be processed".
fn api_service(a: &Value) -> Health {
    match find_condition(a, "Available") {
        Some(c) => {
            let message = format!("{}: {}", c.reason, c.message);
            if c.status == "True" {
                Health::new(HealthStatus::Healthy, message)
            } else {
                Health::new(HealthStatus::Progressing, message)
            }
        }
        None => Health::new(HealthStatus::Progressing, "Waiting to be processed"),
    }
}

/// CustomResourceDefinition: a true `NonStructuralSchema` condition or a false
/// `NamesAccepted` condition → Degraded; `Established` not yet true → Progressing;
/// otherwise Healthy. The applier waits on this rule before it applies custom
/// resources of a freshly created definition.
fn custom_resource_definition(c: &Value) -> Health {
    if let Some(cond) = find_condition(c, "NonStructuralSchema").filter(|c| c.status == "True") {
        return Health::new(HealthStatus::Degraded, cond.message);
    }
    if let Some(cond) = find_condition(c, "NamesAccepted").filter(|c| c.status == "False") {
        return Health::new(HealthStatus::Degraded, cond.message);
    }
    match find_condition(c, "Established") {
        Some(cond) if cond.status == "True" => {
            Health::new(HealthStatus::Healthy, "CRD is established")
        }
        Some(cond) if !cond.message.is_empty() => {
            Health::new(HealthStatus::Progressing, cond.message)
        }
        _ => Health::new(
            HealthStatus::Progressing,
            "Waiting for the CRD to be established",
        ),
    }
}

#[cfg(test)]
mod tests;
