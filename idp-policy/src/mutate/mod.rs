//! Mutations: rewrite objects before policies check them. Every one is idempotent —
//! applying it twice gives the same object as once — and only fills in what is missing,
//! so a developer's explicit choice always wins.
//!
//! - [`DefaultResources`]: requests and limits for containers that name none.
//! - [`OtelInjection`]: OpenTelemetry SDK environment (`OTEL_SERVICE_NAME`,
//!   `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_RESOURCE_ATTRIBUTES`) and an optional collector
//!   sidecar; opt out with the annotation `idp.dev/otel-inject: "false"`.
//! - [`StandardLabels`]: `app.kubernetes.io/*`, `idp.dev/owner`, `idp.dev/environment`.
//! - [`SecureDefaults`]: the restricted security context (non-root, seccomp, no privilege
//!   escalation, no capabilities) where a pod spec names none.
//! - [`Mutations`]: several in order, itself a [`Mutation`].
//!
//! Catalog data the [`PolicyContext`] has no field for is passed in its `attributes`:
//! [`ATTR_OWNER`] (the owning team) and [`ATTR_SYSTEM`] (the system the component is part
//! of).
//!
//! ```
//! use idp_core::{Object, PolicyContext, ports::Mutation};
//! use idp_policy::mutate::{DefaultResources, Mutations, OtelInjection, StandardLabels};
//!
//! let all = Mutations::new()
//!     .with(StandardLabels::default())
//!     .with(DefaultResources::default())
//!     .with(OtelInjection::new("http://otel-collector.observability:4317"));
//! let mut deploy = Object::from_value(serde_json::json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
//!     "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "acme/cart:1"}]}}}
//! })).unwrap();
//! let ctx = PolicyContext::new().with_environment("prod".parse().unwrap());
//! assert!(all.mutate(&mut deploy, &ctx).unwrap());
//! let once = deploy.clone();
//! assert!(!all.mutate(&mut deploy, &ctx).unwrap());
//! assert_eq!(deploy, once);
//! ```
//!
//! [`Mutation`]: idp_core::ports::Mutation
//! [`PolicyContext`]: idp_core::PolicyContext

mod labels;
mod otel;
mod resources;
mod security;

use std::fmt;
use std::sync::Arc;

use idp_core::ports::Mutation;
use idp_core::{Object, PolicyContext, Result};
use serde_json::{Map, Value};

pub use labels::StandardLabels;
pub use otel::{CollectorSidecar, OtelInjection};
pub use resources::{DefaultResources, parse_quantity};
pub use security::SecureDefaults;

/// `PolicyContext::attributes` key holding the owning team.
///
/// ```
/// assert_eq!(idp_policy::mutate::ATTR_OWNER, "owner");
/// ```
pub const ATTR_OWNER: &str = "owner";

/// `PolicyContext::attributes` key holding the system the component is part of.
///
/// ```
/// assert_eq!(idp_policy::mutate::ATTR_SYSTEM, "system");
/// ```
pub const ATTR_SYSTEM: &str = "system";

/// Several mutations applied in order; changed when any of them changed the object.
///
/// ```
/// use idp_core::ports::Mutation;
/// let m = idp_policy::mutate::Mutations::new().with(idp_policy::mutate::StandardLabels::default());
/// assert_eq!(m.len(), 1);
/// assert_eq!(m.name(), "mutations");
/// ```
#[derive(Clone, Default)]
pub struct Mutations {
    list: Vec<Arc<dyn Mutation>>,
}

impl fmt::Debug for Mutations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|m| m.name()))
            .finish()
    }
}

impl Mutations {
    /// No mutation.
    ///
    /// ```
    /// assert!(idp_policy::mutate::Mutations::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a mutation.
    ///
    /// ```
    /// let m = idp_policy::mutate::Mutations::new().with(idp_policy::mutate::DefaultResources::default());
    /// assert!(!m.is_empty());
    /// ```
    pub fn with(mut self, mutation: impl Mutation + 'static) -> Self {
        self.list.push(Arc::new(mutation));
        self
    }

    /// Append a shared mutation.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let mut m = idp_policy::mutate::Mutations::new();
    /// m.push(Arc::new(idp_policy::mutate::StandardLabels::default()));
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn push(&mut self, mutation: Arc<dyn Mutation>) {
        self.list.push(mutation);
    }

    /// Number of mutations.
    ///
    /// ```
    /// assert_eq!(idp_policy::mutate::Mutations::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is none.
    ///
    /// ```
    /// assert!(idp_policy::mutate::Mutations::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl Mutation for Mutations {
    fn name(&self) -> &str {
        "mutations"
    }

    fn mutate(&self, object: &mut Object, ctx: &PolicyContext) -> Result<bool> {
        let span = tracing::debug_span!("mutations", kind = object.kind(), name = object.name());
        let _guard = span.enter();
        let mut changed = false;
        for m in &self.list {
            let c = m.mutate(object, ctx)?;
            if c {
                tracing::trace!(mutation = m.name(), "changed the object");
            }
            changed |= c;
        }
        Ok(changed)
    }
}

/// Insert `key: value` into `map` when `key` is absent; whether it inserted.
fn insert_missing(map: &mut Map<String, Value>, key: &str, value: Value) -> bool {
    if map.contains_key(key) {
        false
    } else {
        map.insert(key.to_owned(), value);
        true
    }
}
