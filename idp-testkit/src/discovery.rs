//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis` and `/apis/{group}/{version}`,
//! the legacy (non-aggregated) JSON forms kubectl and kube-rs both understand.

use serde_json::{Value, json};

use crate::registry::Registry;

/// The Kubernetes version the fake cluster reports.
pub(crate) const MINOR: &str = "32";

pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": MINOR,
        "gitVersion": format!("v1.{MINOR}.0-idp-testkit"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`: the core group's versions.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `/apis`: every named group with its versions.
pub(crate) fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(name, versions)| group(&name, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn group(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().map_or_else(String::new, Clone::clone);
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{name}/{preferred}"), "version": preferred},
    })
}

/// `/apis/{group}`: one group, if served.
pub(crate) fn group_doc(registry: &Registry, name: &str) -> Option<Value> {
    let groups = registry.groups();
    let versions = groups.get(name).filter(|_| !name.is_empty())?;
    let mut g = group(name, versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// `/api/v1` or `/apis/{group}/{version}`: the resources of one group version.
pub(crate) fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = registry
        .all()
        .filter(|t| t.group == group && t.version == version)
        .flat_map(crate::registry::ResourceType::discovery_entries)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let r = Registry::new();
        let groups = group_list(&r);
        assert!(
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "apps")
        );
        let apps = resource_list(&r, "apps", "v1").unwrap();
        assert!(
            apps["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "deployments/status")
        );
        assert!(resource_list(&r, "apps", "v9").is_none());
        assert_eq!(
            group_doc(&r, "batch").unwrap()["preferredVersion"]["version"],
            "v1"
        );
        assert_eq!(version()["major"], "1");
    }
}
