//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for (`Accept: …;as=Table`),
//! with the columns kubectl users expect for the common kinds.

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// Whether an Accept header asks for a Table.
pub(crate) fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("as=Table"))
}

fn age(obj: &Value) -> String {
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let Some(created) = created else {
        return "<unknown>".to_owned();
    };
    let secs = jiff::Timestamp::now()
        .duration_since(created)
        .as_secs()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn count(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

fn condition(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == kind && c["status"] == "True")
        })
}

/// Column names and the cells of one object, per kind.
fn columns(rt: &ResourceType) -> Vec<&'static str> {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") => vec!["Name", "Ready", "Up-to-date", "Available", "Age"],
        ("apps", "statefulsets") => vec!["Name", "Ready", "Age"],
        ("apps", "daemonsets") => vec![
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
        ],
        ("apps", "replicasets") => vec!["Name", "Desired", "Current", "Ready", "Age"],
        ("batch", "jobs") => vec!["Name", "Status", "Completions", "Age"],
        ("", "configmaps") => vec!["Name", "Data", "Age"],
        ("", "secrets") => vec!["Name", "Type", "Data", "Age"],
        ("", "services") => vec!["Name", "Type", "Cluster-IP", "Age"],
        ("", "pods" | "namespaces") => vec!["Name", "Status", "Age"],
        _ => vec!["Name", "Age"],
    }
}

fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let name = json!(text(o, "/metadata/name"));
    let age = json!(age(o));
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") => vec![
            name,
            json!(format!(
                "{}/{}",
                int(o, "/status/readyReplicas"),
                int(o, "/spec/replicas")
            )),
            json!(int(o, "/status/updatedReplicas")),
            json!(int(o, "/status/availableReplicas")),
            age,
        ],
        ("apps", "statefulsets") => vec![
            name,
            json!(format!(
                "{}/{}",
                int(o, "/status/readyReplicas"),
                int(o, "/spec/replicas")
            )),
            age,
        ],
        ("apps", "daemonsets") => vec![
            name,
            json!(int(o, "/status/desiredNumberScheduled")),
            json!(int(o, "/status/currentNumberScheduled")),
            json!(int(o, "/status/numberReady")),
            json!(int(o, "/status/updatedNumberScheduled")),
            json!(int(o, "/status/numberAvailable")),
            age,
        ],
        ("apps", "replicasets") => vec![
            name,
            json!(int(o, "/spec/replicas")),
            json!(int(o, "/status/replicas")),
            json!(int(o, "/status/readyReplicas")),
            age,
        ],
        ("batch", "jobs") => {
            let status = if condition(o, "Complete") {
                "Complete"
            } else if condition(o, "Failed") {
                "Failed"
            } else {
                "Running"
            };
            let completions = o
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            vec![
                name,
                json!(status),
                json!(format!("{}/{completions}", int(o, "/status/succeeded"))),
                age,
            ]
        }
        ("", "configmaps") => vec![
            name,
            json!(count(o, "/data") + count(o, "/binaryData")),
            age,
        ],
        ("", "secrets") => {
            let kind = text(o, "/type");
            let kind = if kind.is_empty() {
                "Opaque".to_owned()
            } else {
                kind
            };
            vec![name, json!(kind), json!(count(o, "/data")), age]
        }
        ("", "services") => vec![
            name,
            json!(text(o, "/spec/type")),
            json!(text(o, "/spec/clusterIP")),
            age,
        ],
        ("", "pods" | "namespaces") => vec![name, json!(text(o, "/status/phase")), age],
        _ => vec![name, age],
    }
}

/// A Table of `objects`; `include_object` is the `includeObject` query parameter.
pub(crate) fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: &str,
    continue_token: Option<&Value>,
    include_object: Option<&str>,
) -> Value {
    let defs: Vec<Value> = columns(rt)
        .into_iter()
        .map(|c| {
            let (kind, format) = match c {
                "Name" => ("string", "name"),
                "Up-to-date" | "Available" | "Desired" | "Current" | "Data" => ("integer", ""),
                _ => ("string", ""),
            };
            json!({"name": c, "type": kind, "format": format, "description": c, "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include_object {
                Some("None") => Value::Null,
                Some("Object") => o.clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                }),
            };
            json!({"cells": cells(rt, o), "object": object})
        })
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_token {
        metadata["continue"] = c.clone();
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_rows_show_readiness() {
        let rt = ResourceType::new("apps", "v1", "Deployment", "deployments", true);
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
                       "spec": {"replicas": 3}, "status": {"readyReplicas": 2}});
        let t = table(&rt, &[d], "7", None, None);
        assert_eq!(t["rows"][0]["cells"][1], "2/3");
        assert!(t["rows"][0]["cells"][4].as_str().unwrap().ends_with('d'));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
    }
}
