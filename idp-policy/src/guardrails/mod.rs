//! Guardrails: named, configurable policies a platform team switches on.
//!
//! | policy | rules | what |
//! |---|---|---|
//! | [`RequireResources`] `require-resources` | `requests`, `limits` | cpu/memory requests and limits on every container (init included) |
//! | [`ForbidSensitivePorts`] `forbid-sensitive-ports` | `container-port`, `service-port` | no SSH, RDP, Docker, kubelet, etcd… ports |
//! | [`AllowedRegistries`] `allowed-registries` | `registry` | images only from allowed registries |
//! | [`DisallowLatestTag`] `disallow-latest-tag` | `latest-tag`, `untagged`, `digest` | pinned images |
//! | [`RequireLabels`] `require-labels` | `missing-label` | ownership labels |
//! | [`RestrictServiceTypes`] `restrict-service-types` | `service-type` | no LoadBalancer/NodePort Services |
//! | [`RequireIngressTls`] `require-ingress-tls` | `tls`, `host-without-tls` | HTTPS Ingresses |
//! | [`RequireProbes`] `require-probes` | `liveness`, `readiness`, `startup` | health probes |
//! | [`MinReplicas`] `min-replicas` | `replicas` | enough replicas in named environments |
//!
//! Pod-level guardrails apply to Pods and every pod controller's template
//! ([autogen](crate::podspec)). Each is serde-configurable; [`all`] gives every one with
//! its defaults.
//!
//! ```
//! use idp_core::{Object, PolicyContext};
//! use idp_policy::{PolicySet, guardrails};
//!
//! let mut set = PolicySet::new();
//! for g in guardrails::all() {
//!     set.push(g, Default::default());
//! }
//! let svc = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Service",
//!     "metadata": {"name": "s", "labels": {"idp.dev/owner": "team-a"}},
//!     "spec": {"type": "LoadBalancer", "ports": [{"port": 22}]}})).unwrap();
//! let result = set.check_object(&svc, &PolicyContext::new());
//! let rules: Vec<_> = result.violations.iter().map(|v| v.rule.as_ref()).collect();
//! assert_eq!(rules, ["service-port", "service-type"]);
//! ```

mod images;
mod metadata;
mod network;
mod workload;

use std::sync::Arc;

use idp_core::Policy;

pub(crate) use images::ImageParts;
pub use images::{AllowedRegistries, DisallowLatestTag, ImageRef};
pub use metadata::RequireLabels;
pub use network::{ForbidSensitivePorts, RequireIngressTls, RestrictServiceTypes, SENSITIVE_PORTS};
pub use workload::{MinReplicas, RequireProbes, RequireResources};

/// Every guardrail with its default configuration (the registry allowlist is empty, so
/// it allows everything until configured).
///
/// ```
/// assert_eq!(idp_policy::guardrails::all().len(), 9);
/// ```
pub fn all() -> Vec<Arc<dyn Policy>> {
    vec![
        Arc::new(RequireResources::default()),
        Arc::new(ForbidSensitivePorts::default()),
        Arc::new(AllowedRegistries::default()),
        Arc::new(DisallowLatestTag::default()),
        Arc::new(RequireLabels::default()),
        Arc::new(RestrictServiceTypes::default()),
        Arc::new(RequireIngressTls::default()),
        Arc::new(RequireProbes::default()),
        Arc::new(MinReplicas::default()),
    ]
}
