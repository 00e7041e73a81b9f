//! Minimal OpenAPI v3 documents (`/openapi/v3` and `/openapi/v3/{api/v1|apis/g/v}`).
//!
//! They carry no schemas: only each resource's paths with the
//! `x-kubernetes-group-version-kind` extension and the `fieldValidation` query parameter,
//! which is what kubectl checks before trusting the server with field validation
//! (`kubectl apply`, `kubectl create -f`). Schemas are not served, so client-side
//! validation and `kubectl explain` do not work.

use serde_json::{Map, Value, json};

use crate::registry::Registry;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(text: &str) -> String {
    format!("{:016X}", idp_core::hash::fnv1a64(text.as_bytes()))
}

/// `/openapi/v3`: where each group version's document lives.
pub(crate) fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for v in versions {
            let p = gv_path(&group, &v);
            let doc = group_version(registry, &group, &v)
                .map(|d| d.to_string())
                .unwrap_or_default();
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

/// The document of one group version, or `None` if it is not served.
pub(crate) fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    let params = |names: &[&str]| -> Vec<Value> {
        names
            .iter()
            .map(|n| match *n {
                "name" | "namespace" => json!({"name": n, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}}),
                other => json!({"name": other, "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
            })
            .collect()
    };
    for t in registry
        .all()
        .filter(|t| t.group == group && t.version == version)
    {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let base = format!("/{}", gv_path(group, version));
        let (collection, item) = if t.namespaced {
            (
                format!("{base}/namespaces/{{namespace}}/{}", t.plural),
                format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural),
            )
        } else {
            (
                format!("{base}/{}", t.plural),
                format!("{base}/{}/{{name}}", t.plural),
            )
        };
        let write_params = params(&["dryRun", "fieldManager", "fieldValidation", "force"]);
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", t.kind),
                "parameters": if matches!(action, "post" | "put" | "patch") { write_params.clone() } else { Vec::new() },
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        let mut coll_params = params(&["dryRun", "fieldManager", "fieldValidation"]);
        if t.namespaced {
            coll_params.insert(0, params(&["namespace"]).remove(0));
        }
        paths.insert(
            collection,
            json!({"parameters": coll_params, "get": op("list"), "post": op("post"), "delete": op("deletecollection")}),
        );
        let mut item_params =
            params(&["name", "dryRun", "fieldManager", "fieldValidation", "force"]);
        if t.namespaced {
            item_params.insert(1, params(&["namespace"]).remove(0));
        }
        paths.insert(
            item,
            json!({"parameters": item_params, "get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (idp-testkit fake cluster)", "version": format!("v1.{}.0", crate::discovery::MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_lists_group_versions_and_docs_carry_gvk() {
        let r = Registry::new();
        let root = root(&r);
        assert!(
            root["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        let doc = group_version(&r, "apps", "v1").unwrap();
        let p = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        assert_eq!(
            p["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            p["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == "fieldValidation")
        );
        assert!(group_version(&r, "nope", "v1").is_none());
    }
}
