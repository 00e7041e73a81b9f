//! [`Swappable`]: a policy that can be replaced while it is shared.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use idp_core::{Object, Policy, PolicyContext, Violation};

/// A [`Policy`] whose implementation can be replaced while it is shared: policy files
/// reloaded, or a Gatekeeper set rebuilt with a fresh `data.inventory` of what the
/// cluster holds. Every holder of the `Arc` sees the replacement from the next
/// evaluation on; an evaluation under way finishes with the policy it started with.
///
/// The name is the one given at creation, whatever replaces the policy.
///
/// ```
/// use std::sync::Arc;
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::{PolicySet, Swappable, pss::PodSecurity};
///
/// let shared = Arc::new(Swappable::new("pss", PolicySet::new().with_policy(PodSecurity::baseline())));
/// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
///     "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "nginx:1.27"}]}})).unwrap();
/// let ctx = PolicyContext::new();
/// assert_eq!(shared.evaluate(&pod, &ctx).len(), 1);
/// shared.replace(PolicySet::new());
/// assert!(shared.evaluate(&pod, &ctx).is_empty());
/// assert_eq!(shared.name(), "pss");
/// ```
pub struct Swappable<P> {
    name: String,
    current: RwLock<Arc<P>>,
}

impl<P: Policy> Swappable<P> {
    /// `policy`, under `name`.
    ///
    /// ```
    /// let s = idp_policy::Swappable::new("set", idp_policy::PolicySet::new());
    /// # let _ = s;
    /// ```
    pub fn new(name: impl Into<String>, policy: P) -> Self {
        Self {
            name: name.into(),
            current: RwLock::new(Arc::new(policy)),
        }
    }

    /// Put `policy` in place of the current one.
    ///
    /// ```
    /// use idp_core::Policy;
    /// let s = idp_policy::Swappable::new("set", idp_policy::PolicySet::new());
    /// s.replace(idp_policy::PolicySet::new().named("other"));
    /// assert_eq!(s.current().name(), "other");
    /// ```
    pub fn replace(&self, policy: P) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }

    /// The policy in place now.
    ///
    /// ```
    /// let s = idp_policy::Swappable::new("set", idp_policy::PolicySet::new());
    /// assert!(s.current().is_empty());
    /// ```
    pub fn current(&self) -> Arc<P> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<P: Policy> fmt::Debug for Swappable<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Swappable")
            .field("name", &self.name)
            .field("current", &self.current())
            .finish()
    }
}

impl<P: Policy> Policy for Swappable<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        // The lock is held only to take the `Arc`, not while evaluating.
        let policy = self.current();
        policy.evaluate(object, ctx)
    }
}
