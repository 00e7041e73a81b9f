//! The rollout simulator: stands in for the Deployment, StatefulSet, DaemonSet and Job
//! controllers by writing the status they would report once a change has rolled out.
//!
//! Images matching the broken-image glob (default `*:broken`) never become ready: the
//! Deployment reports `Progressing=False` with reason `ProgressDeadlineExceeded`, the
//! Job fails with `BackoffLimitExceeded`.

use serde_json::{Value, json};

use crate::meta::{self, str_at};
use crate::shared::RolloutOptions;
use crate::ssa::{self, Scope, Writer};
use crate::store::{EventType, ObjKey, Store};

/// The field manager the simulated controllers write status as.
pub(crate) const MANAGER: &str = "kube-controller-manager";

/// Whether `text` matches a glob where `*` matches any run of characters.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == t[ti] || p[pi] == '?') {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn pod_spec<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    match kind {
        "cronjobs" => obj.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => obj.pointer("/spec/template/spec"),
    }
}

fn is_broken(obj: &Value, plural: &str, pattern: &str) -> bool {
    let Some(spec) = pod_spec(obj, plural) else {
        return false;
    };
    ["containers", "initContainers"].iter().any(|k| {
        spec.get(*k).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("image")
                    .and_then(Value::as_str)
                    .is_some_and(|i| glob_match(pattern, i))
            })
        })
    })
}

/// A short stable hash of the pod template, like the controllers' pod-template-hash.
fn template_hash(obj: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let text = obj
        .pointer("/spec/template")
        .map(Value::to_string)
        .unwrap_or_default();
    let mut h: u32 = 2_166_136_261;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(16_777_619);
    }
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 3)) as usize + i) % ALPHABET.len()] as char)
        .collect()
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastUpdateTime": now, "lastTransitionTime": now})
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn deployment_status(obj: &Value, generation: i64, broken: bool, now: &str) -> Value {
    let n = replicas(obj);
    let name = str_at(obj, "/metadata/name");
    let rs = format!("{name}-{}", template_hash(obj));
    if broken {
        return json!({
            "observedGeneration": generation,
            "replicas": n,
            "updatedReplicas": n,
            "unavailableReplicas": n,
            "conditions": [
                condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now),
                condition("Progressing", "False", "ProgressDeadlineExceeded", &format!("ReplicaSet {rs:?} has timed out progressing."), now),
            ],
        });
    }
    json!({
        "observedGeneration": generation,
        "replicas": n,
        "updatedReplicas": n,
        "readyReplicas": n,
        "availableReplicas": n,
        "conditions": [
            condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now),
            condition("Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet {rs:?} has successfully progressed."), now),
        ],
    })
}

fn statefulset_status(obj: &Value, generation: i64, broken: bool) -> Value {
    let n = replicas(obj);
    let revision = format!("{}-{}", str_at(obj, "/metadata/name"), template_hash(obj));
    let ready = if broken { 0 } else { n };
    json!({
        "observedGeneration": generation,
        "replicas": n,
        "readyReplicas": ready,
        "currentReplicas": ready,
        "updatedReplicas": n,
        "availableReplicas": ready,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    })
}

fn daemonset_status(generation: i64, broken: bool, nodes: u32) -> Value {
    let n = i64::from(nodes);
    let ready = if broken { 0 } else { n };
    json!({
        "observedGeneration": generation,
        "desiredNumberScheduled": n,
        "currentNumberScheduled": n,
        "updatedNumberScheduled": n,
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": n - ready,
        "numberMisscheduled": 0,
    })
}

fn job_status(obj: &Value, broken: bool, now: &str) -> Value {
    let start = obj
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or_else(|| json!(now));
    if broken {
        let backoff = obj
            .pointer("/spec/backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        return json!({
            "startTime": start,
            "failed": backoff + 1,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
            ],
        });
    }
    let completions = obj
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    json!({
        "startTime": start,
        "completionTime": now,
        "succeeded": completions,
        "ready": 0,
        "terminating": 0,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
        ],
    })
}

/// Writes the status a controller would report for the workload at `key`, if it changed.
pub(crate) fn reconcile(store: &mut Store, key: &ObjKey, opts: &RolloutOptions) {
    let Some(obj) = store.get(key).cloned() else {
        return;
    };
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let broken = is_broken(&obj, &key.1, &opts.broken_image);
    let now = meta::now();
    let status = match (key.0.as_str(), key.1.as_str()) {
        ("apps", "deployments") => deployment_status(&obj, generation, broken, &now),
        ("apps", "statefulsets") => statefulset_status(&obj, generation, broken),
        ("apps", "daemonsets") => daemonset_status(generation, broken, opts.nodes),
        ("batch", "jobs") => {
            // A finished Job stays finished.
            if obj.pointer("/status/completionTime").is_some() {
                return;
            }
            job_status(&obj, broken, &now)
        }
        _ => return,
    };
    if same_ignoring_times(obj.get("status"), &status) {
        return;
    }
    let mut new = obj.clone();
    new["status"] = status;
    let api_version = match key.0.as_str() {
        "" => "v1".to_owned(),
        g => format!("{g}/v1"),
    };
    let writer = Writer {
        manager: MANAGER,
        api_version: &api_version,
        scope: Scope::Status,
        now: &now,
    };
    ssa::track_update(Some(&obj), &mut new, &writer);
    store.put(key.clone(), new, EventType::Modified);
}

fn strip_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.ends_with("Time"))
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}

fn same_ignoring_times(old: Option<&Value>, new: &Value) -> bool {
    old.is_some_and(|o| strip_times(o) == strip_times(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*:broken", "nginx:broken"));
        assert!(!glob_match("*:broken", "nginx:1.27"));
        assert!(glob_match("registry/*/app:*", "registry/team/app:v1"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a", ""));
    }

    #[test]
    fn deployment_status_shapes() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "x:broken"}]}}}});
        assert!(is_broken(&d, "deployments", "*:broken"));
        let s = deployment_status(&d, 2, true, "t");
        assert_eq!(s["conditions"][1]["reason"], "ProgressDeadlineExceeded");
        let s = deployment_status(&d, 2, false, "t");
        assert_eq!(s["readyReplicas"], 3);
        assert_eq!(s["observedGeneration"], 2);
    }
}
