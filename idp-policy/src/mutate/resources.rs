//! Default resource requests and limits.

use std::collections::BTreeMap;

use idp_core::ports::Mutation;
use idp_core::{Object, PolicyContext, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::insert_missing;
use crate::podspec::pod_spec_mut;

/// Parse a Kubernetes quantity (`100m`, `1.5`, `128Mi`, `1G`, `2e3`) into a number of
/// base units; `None` when it is not one.
///
/// ```
/// use idp_policy::mutate::parse_quantity;
/// assert_eq!(parse_quantity("100m"), Some(0.1));
/// assert_eq!(parse_quantity("128Mi"), Some(134217728.0));
/// assert_eq!(parse_quantity("1G"), Some(1e9));
/// assert_eq!(parse_quantity("lots"), None);
/// ```
pub fn parse_quantity(q: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let q = q.trim();
    if q.is_empty() || q.len() > 64 {
        return None;
    }
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    if number.is_empty()
        || !number
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-' | b'e' | b'E'))
    {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n * factor)
}

fn quantity(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn default_requests() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cpu".to_owned(), "100m".to_owned()),
        ("memory".to_owned(), "128Mi".to_owned()),
    ])
}

fn default_limits() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cpu".to_owned(), "500m".to_owned()),
        ("memory".to_owned(), "256Mi".to_owned()),
    ])
}

fn yes() -> bool {
    true
}

/// Fill in resource requests and limits a container does not name.
///
/// Only missing entries are added, and never in a way that makes the container invalid:
/// a missing limit is never below the container's own request (it becomes the request),
/// and a missing request is never above its own limit (it becomes the limit) — as the
/// API server would do. Applies to containers and init containers of every pod-bearing
/// object.
///
/// ```
/// use idp_core::{Object, PolicyContext, ports::Mutation};
/// use idp_policy::mutate::DefaultResources;
/// let mut pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
///     "spec": {"containers": [{"name": "a", "resources": {"requests": {"memory": "1Gi"}}}]}})).unwrap();
/// DefaultResources::default().mutate(&mut pod, &PolicyContext::new()).unwrap();
/// let r = &pod.as_map()["spec"]["containers"][0]["resources"];
/// assert_eq!(r["requests"]["cpu"], "100m");
/// assert_eq!(r["limits"]["memory"], "1Gi"); // not the 256Mi default: below the request
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultResources {
    /// Default requests (default cpu 100m, memory 128Mi).
    #[serde(default = "default_requests")]
    pub requests: BTreeMap<String, String>,
    /// Default limits (default cpu 500m, memory 256Mi).
    #[serde(default = "default_limits")]
    pub limits: BTreeMap<String, String>,
    /// Also fill init containers (default true).
    #[serde(default = "yes")]
    pub init_containers: bool,
}

impl Default for DefaultResources {
    fn default() -> Self {
        Self {
            requests: default_requests(),
            limits: default_limits(),
            init_containers: true,
        }
    }
}

impl DefaultResources {
    fn fill(&self, container: &mut Map<String, Value>) -> bool {
        let mut resources = match container.get("resources") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return false,
        };
        let section = |name: &str| match resources.get(name) {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => None,
        };
        let (Some(mut requests), Some(mut limits)) = (section("requests"), section("limits"))
        else {
            return false;
        };
        let mut changed = false;
        // Requests first: a missing request is at most the container's own limit.
        for (res, default) in &self.requests {
            let value = match limits.get(res) {
                Some(limit)
                    if quantity(limit)
                        .zip(parse_quantity(default))
                        .is_none_or(|(l, d)| l < d) =>
                {
                    limit.clone()
                }
                _ => Value::String(default.clone()),
            };
            changed |= insert_missing(&mut requests, res, value);
        }
        // A missing limit is at least the container's request.
        for (res, default) in &self.limits {
            let value = match requests.get(res) {
                Some(req)
                    if quantity(req)
                        .zip(parse_quantity(default))
                        .is_none_or(|(r, d)| r > d) =>
                {
                    req.clone()
                }
                _ => Value::String(default.clone()),
            };
            changed |= insert_missing(&mut limits, res, value);
        }
        if !changed {
            return false;
        }
        if !requests.is_empty() {
            resources.insert("requests".to_owned(), Value::Object(requests));
        }
        if !limits.is_empty() {
            resources.insert("limits".to_owned(), Value::Object(limits));
        }
        container.insert("resources".to_owned(), Value::Object(resources));
        true
    }
}

impl Mutation for DefaultResources {
    fn name(&self) -> &str {
        "default-resources"
    }

    fn mutate(&self, object: &mut Object, _ctx: &PolicyContext) -> Result<bool> {
        let Some(spec) = pod_spec_mut(object) else {
            return Ok(false);
        };
        let mut changed = false;
        let lists: &[&str] = if self.init_containers {
            &["initContainers", "containers"]
        } else {
            &["containers"]
        };
        for list in lists {
            let Some(containers) = spec.get_mut(*list).and_then(Value::as_array_mut) else {
                continue;
            };
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                changed |= self.fill(c);
            }
        }
        Ok(changed)
    }
}
