//! Standard labels.

use idp_core::ports::Mutation;
use idp_core::{Object, PolicyContext, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ATTR_OWNER, ATTR_SYSTEM, insert_missing};
use crate::podspec::{pod_metadata_mut, walk_create};

fn idp() -> String {
    "idp".to_owned()
}

fn yes() -> bool {
    true
}

/// Add the standard labels an object lacks:
///
/// | label | value |
/// |---|---|
/// | `app.kubernetes.io/name` | the component's name, else the object's name |
/// | `app.kubernetes.io/instance` | `<name>-<environment>`, or `<name>` without an environment |
/// | `app.kubernetes.io/part-of` | the context attribute [`ATTR_SYSTEM`](super::ATTR_SYSTEM), when set |
/// | `app.kubernetes.io/managed-by` | `managed_by` (default `idp`) |
/// | `idp.dev/owner` | the context attribute [`ATTR_OWNER`](super::ATTR_OWNER), when set |
/// | `idp.dev/environment` | the context's environment, when set |
///
/// Labels already present are never changed. With `pod_template` (the default) the
/// same labels go on the pod template of pod controllers, never on their selector.
///
/// ```
/// use idp_core::{Object, PolicyContext, ports::Mutation};
/// use idp_policy::mutate::StandardLabels;
/// let mut svc = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart"}})).unwrap();
/// let mut ctx = PolicyContext::new()
///     .with_environment("staging".parse().unwrap())
///     .with_component("component:default/cart".parse().unwrap());
/// ctx.attributes.insert("owner".into(), "team-payments".into());
/// StandardLabels::default().mutate(&mut svc, &ctx).unwrap();
/// let labels = svc.labels();
/// assert_eq!(labels["app.kubernetes.io/instance"], "cart-staging");
/// assert_eq!(labels["idp.dev/owner"], "team-payments");
/// assert_eq!(labels["app.kubernetes.io/managed-by"], "idp");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StandardLabels {
    /// Value of `app.kubernetes.io/managed-by` (default `idp`).
    #[serde(default = "idp")]
    pub managed_by: String,
    /// Also label pod templates (default true).
    #[serde(default = "yes")]
    pub pod_template: bool,
}

impl Default for StandardLabels {
    fn default() -> Self {
        Self {
            managed_by: idp(),
            pod_template: true,
        }
    }
}

impl StandardLabels {
    fn labels(&self, object: &Object, ctx: &PolicyContext) -> Vec<(&'static str, String)> {
        let name = ctx
            .component
            .as_ref()
            .map(|c| c.name().to_owned())
            .or_else(|| object.labels().get("app.kubernetes.io/name").cloned())
            .unwrap_or_else(|| object.name().to_owned());
        let env = ctx.environment.as_ref().map(|e| e.as_str().to_owned());
        let mut out = vec![
            (
                "app.kubernetes.io/instance",
                env.as_ref()
                    .map_or_else(|| name.clone(), |e| format!("{name}-{e}")),
            ),
            ("app.kubernetes.io/name", name),
            ("app.kubernetes.io/managed-by", self.managed_by.clone()),
        ];
        if let Some(system) = ctx.attributes.get(ATTR_SYSTEM) {
            out.push(("app.kubernetes.io/part-of", system.clone()));
        }
        if let Some(owner) = ctx.attributes.get(ATTR_OWNER) {
            out.push(("idp.dev/owner", owner.clone()));
        }
        if let Some(env) = env {
            out.push(("idp.dev/environment", env));
        }
        out.retain(|(_, v)| !v.is_empty());
        out
    }
}

fn add_labels(metadata: &mut Map<String, Value>, labels: &[(&'static str, String)]) -> bool {
    let Some(map) = walk_create(metadata, &["labels"]) else {
        return false;
    };
    let mut changed = false;
    for (k, v) in labels {
        changed |= insert_missing(map, k, Value::String(v.clone()));
    }
    changed
}

impl Mutation for StandardLabels {
    fn name(&self) -> &str {
        "standard-labels"
    }

    fn mutate(&self, object: &mut Object, ctx: &PolicyContext) -> Result<bool> {
        let labels = self.labels(object, ctx);
        let mut changed = false;
        if let Some(meta) = walk_create(object.as_map_mut(), &["metadata"]) {
            if meta.get("labels").is_some_and(Value::is_null) {
                meta.remove("labels");
            }
            changed |= add_labels(meta, &labels);
        }
        if self.pod_template
            && object.kind() != "Pod"
            && let Some(meta) = pod_metadata_mut(object)
        {
            if meta.get("labels").is_some_and(Value::is_null) {
                meta.remove("labels");
            }
            changed |= add_labels(meta, &labels);
        }
        Ok(changed)
    }
}
