//! [`Swappable`]: a policy that can be replaced while it is shared.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use idp_core::ports::Mutation;
use idp_core::{Object, Policy, PolicyContext, Result, Violation};

/// A [`Policy`] whose implementation can be replaced while it is shared: policy files
/// reloaded, or a Gatekeeper set rebuilt with a fresh `data.inventory` of what the
/// cluster holds. Every holder of the `Arc` sees the replacement from the next
/// evaluation on; an evaluation under way finishes with the policy it started with.
///
/// The name is the one given at creation, whatever replaces the policy. When the policy
/// mutates (a Kyverno set's mutate rules, Gatekeeper's mutators), the `Swappable` is a
/// [`Mutation`] as well, and mutates with the one in place at the time.
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

impl<P> Swappable<P> {
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

impl<P: fmt::Debug> fmt::Debug for Swappable<P> {
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

/// Mutates with the policy in place now: the replacement applies from the next object.
///
/// ```
/// use std::sync::Arc;
/// use idp_core::{Object, PolicyContext, ports::Mutation};
/// use idp_policy::Swappable;
/// use idp_policy::kyverno::KyvernoPolicy;
///
/// let labels = |team: &str| KyvernoPolicy::from_yaml("kyverno", &format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {{name: team}}\nspec:\n  rules:\n    - name: team\n      match: {{any: [{{resources: {{kinds: [ConfigMap]}}}}]}}\n      mutate: {{patchStrategicMerge: {{metadata: {{labels: {{team: {team}}}}}}}}}\n"), None).unwrap();
/// let shared = Arc::new(Swappable::new("kyverno", labels("a")));
/// let mut cm = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
/// let ctx = PolicyContext::new();
/// assert!(Mutation::mutate(shared.as_ref(), &mut cm, &ctx).unwrap());
/// assert_eq!(cm.labels().get("team").map(String::as_str), Some("a"));
/// shared.replace(labels("b"));
/// assert!(Mutation::mutate(shared.as_ref(), &mut cm, &ctx).unwrap());
/// assert_eq!(cm.labels().get("team").map(String::as_str), Some("b"));
/// ```
impl<P: Mutation> Mutation for Swappable<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn mutate(&self, object: &mut Object, ctx: &PolicyContext) -> Result<bool> {
        let policy = self.current();
        policy.mutate(object, ctx)
    }
}
