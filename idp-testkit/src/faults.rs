//! Fault injection: make chosen requests fail, slow down, or lose their watch
//! connection, deterministically for a given seed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::requests::Verb;
use crate::status::ApiError;

/// What a fault does to a matching request.
///
/// ```
/// use idp_testkit::{Fault, FaultAction};
/// assert_eq!(Fault::status(503).action(), &FaultAction::Status(503));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a `Status` body (409, 429, 500, 503, …).
    Status(u16),
    /// Answer 429 Too Many Requests with a `Retry-After` of this many seconds.
    TooManyRequests {
        /// Seconds for the `Retry-After` header.
        retry_after_secs: u64,
    },
    /// Delay the request by this long before serving it normally.
    Latency(Duration),
    /// For watches: close the connection abruptly after this many events.
    DropWatch {
        /// Events sent before the connection is dropped.
        after_events: usize,
    },
}

/// When a matching request is affected.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trigger {
    Always,
    Times(u64),
    Fraction(f64),
}

/// One fault rule: an action, which requests it matches, and how often it fires.
///
/// ```
/// use idp_testkit::{Fault, Verb};
/// let f = Fault::status(503).verb(Verb::Patch).resource("deployments").times(2);
/// let g = Fault::too_many_requests(1).fraction(0.5);
/// let h = Fault::latency(std::time::Duration::from_millis(5)).namespace("slow");
/// # let _ = (f, g, h);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    action: FaultAction,
    verb: Option<Verb>,
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    path: Option<String>,
    trigger: Trigger,
}

impl Fault {
    fn new(action: FaultAction) -> Self {
        Self {
            action,
            verb: None,
            resource: None,
            namespace: None,
            name: None,
            path: None,
            trigger: Trigger::Always,
        }
    }

    /// Fail matching requests with this HTTP status (and a matching `Status` reason).
    ///
    /// ```
    /// let f = idp_testkit::Fault::status(500);
    /// # let _ = f;
    /// ```
    pub fn status(code: u16) -> Self {
        Self::new(FaultAction::Status(code))
    }

    /// Fail matching requests with 429 and `Retry-After: secs`.
    ///
    /// ```
    /// let f = idp_testkit::Fault::too_many_requests(1);
    /// # let _ = f;
    /// ```
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(FaultAction::TooManyRequests { retry_after_secs })
    }

    /// Delay matching requests.
    ///
    /// ```
    /// let f = idp_testkit::Fault::latency(std::time::Duration::from_millis(20));
    /// # let _ = f;
    /// ```
    pub fn latency(delay: Duration) -> Self {
        Self::new(FaultAction::Latency(delay))
    }

    /// Drop matching watch connections after `after_events` events.
    ///
    /// ```
    /// let f = idp_testkit::Fault::drop_watch(1).resource("configmaps");
    /// # let _ = f;
    /// ```
    pub fn drop_watch(after_events: usize) -> Self {
        Self::new(FaultAction::DropWatch { after_events }).verb(Verb::Watch)
    }

    /// What the fault does.
    ///
    /// ```
    /// let f = idp_testkit::Fault::too_many_requests(2);
    /// assert_eq!(f.action(), &idp_testkit::FaultAction::TooManyRequests { retry_after_secs: 2 });
    /// ```
    pub fn action(&self) -> &FaultAction {
        &self.action
    }

    /// Only requests with this verb.
    /// ```
    /// let f = idp_testkit::Fault::status(500).verb(idp_testkit::Verb::Create);
    /// # let _ = f;
    /// ```
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Only requests for this resource (plural, e.g. `deployments`).
    /// ```
    /// let f = idp_testkit::Fault::status(500).resource("deployments");
    /// # let _ = f;
    /// ```
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_owned());
        self
    }

    /// Only requests in this namespace.
    /// ```
    /// let f = idp_testkit::Fault::status(500).namespace("team-a");
    /// # let _ = f;
    /// ```
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Only requests for this object name.
    /// ```
    /// let f = idp_testkit::Fault::status(409).name("web");
    /// # let _ = f;
    /// ```
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Only requests whose URL path starts with `prefix`: a discovery document
    /// (`/apis/metrics.k8s.io`), which has no resource to match by.
    /// ```
    /// let f = idp_testkit::Fault::status(503).path("/apis/metrics.k8s.io");
    /// # let _ = f;
    /// ```
    pub fn path(mut self, prefix: &str) -> Self {
        self.path = Some(prefix.to_owned());
        self
    }

    /// Fire on the next `n` matching requests only.
    /// ```
    /// let f = idp_testkit::Fault::status(503).times(3);
    /// # let _ = f;
    /// ```
    pub fn times(mut self, n: u64) -> Self {
        self.trigger = Trigger::Times(n);
        self
    }

    /// Fire on this fraction (0.0–1.0) of matching requests, drawn from the cluster's
    /// seeded random generator (same seed and request sequence → same failures).
    /// ```
    /// let f = idp_testkit::Fault::status(500).fraction(0.25);
    /// # let _ = f;
    /// ```
    pub fn fraction(mut self, p: f64) -> Self {
        self.trigger = Trigger::Fraction(p.clamp(0.0, 1.0));
        self
    }

    fn matches(&self, r: &RequestInfo<'_>) -> bool {
        self.verb.is_none_or(|v| v == r.verb)
            && self.resource.as_deref().is_none_or(|x| x == r.resource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|x| Some(x) == r.namespace)
            && self.name.as_deref().is_none_or(|x| Some(x) == r.name)
            && self.path.as_deref().is_none_or(|x| r.path.starts_with(x))
    }
}

/// Identifies an injected fault so it can be removed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let c = idp_testkit::FakeCluster::start().await?;
/// let a = c.faults().inject(idp_testkit::Fault::status(500));
/// let b = c.faults().inject(idp_testkit::Fault::status(500));
/// assert_ne!(a, b);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

/// What the server knows about a request when it consults the faults.
pub(crate) struct RequestInfo<'a> {
    pub(crate) verb: Verb,
    pub(crate) resource: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) path: &'a str,
}

/// The combined effect of all faults on one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub(crate) latency: Duration,
    pub(crate) error: Option<ApiError>,
    pub(crate) drop_watch_after: Option<usize>,
}

#[derive(Debug)]
struct Inner {
    rng: StdRng,
    next_id: u64,
    rules: Vec<(FaultId, Fault)>,
}

/// The fault injector of a cluster; get it from [`FakeCluster::faults`](crate::FakeCluster::faults).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// use idp_testkit::{FakeCluster, Fault, Verb};
/// let cluster = FakeCluster::start().await?;
/// let id = cluster.faults().inject(Fault::status(503).verb(Verb::Get).times(1));
/// cluster.faults().remove(id);
/// cluster.faults().clear();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Mutex<Inner>>,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                rng: StdRng::seed_from_u64(seed),
                next_id: 0,
                rules: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a fault; it applies to requests that arrive from now on.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let id = c.faults().inject(idp_testkit::Fault::status(500));
    /// # let _ = id;
    /// # Ok(()) }
    /// ```
    pub fn inject(&self, fault: Fault) -> FaultId {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = FaultId(inner.next_id);
        inner.rules.push((id, fault));
        id
    }

    /// Removes one fault.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let id = c.faults().inject(idp_testkit::Fault::status(500));
    /// c.faults().remove(id);
    /// # Ok(()) }
    /// ```
    pub fn remove(&self, id: FaultId) {
        self.lock().rules.retain(|(i, _)| *i != id);
    }

    /// Removes all faults.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// c.faults().clear();
    /// # Ok(()) }
    /// ```
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Decides what happens to a request.
    pub(crate) fn decide(&self, r: &RequestInfo<'_>) -> Decision {
        let mut inner = self.lock();
        let Inner { rng, rules, .. } = &mut *inner;
        let mut d = Decision::default();
        for (_, f) in rules.iter_mut() {
            if !f.matches(r) {
                continue;
            }
            let fire = match &mut f.trigger {
                Trigger::Always => true,
                Trigger::Times(0) => false,
                Trigger::Times(n) => {
                    *n -= 1;
                    true
                }
                Trigger::Fraction(p) => rng.random::<f64>() < *p,
            };
            if !fire {
                continue;
            }
            match &f.action {
                FaultAction::Latency(l) => d.latency += *l,
                FaultAction::DropWatch { after_events } => {
                    d.drop_watch_after = Some(*after_events);
                }
                FaultAction::Status(code) if d.error.is_none() => {
                    d.error = Some(ApiError::injected(*code));
                }
                FaultAction::TooManyRequests { retry_after_secs } if d.error.is_none() => {
                    let mut e = ApiError::injected(429);
                    e.retry_after = Some(*retry_after_secs);
                    d.error = Some(e);
                }
                _ => {}
            }
        }
        rules.retain(|(_, f)| f.trigger != Trigger::Times(0));
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RequestInfo<'static> {
        RequestInfo {
            verb: Verb::Get,
            resource: "configmaps",
            namespace: Some("default"),
            name: Some("a"),
            path: "/api/v1/namespaces/default/configmaps/a",
        }
    }

    #[test]
    fn times_fires_n_times_then_disappears() {
        let f = Faults::new(1);
        f.inject(Fault::status(503).times(2));
        assert!(f.decide(&info()).error.is_some());
        assert!(f.decide(&info()).error.is_some());
        assert!(f.decide(&info()).error.is_none());
    }

    #[test]
    fn matchers_filter() {
        let f = Faults::new(1);
        f.inject(Fault::status(500).resource("secrets"));
        assert!(f.decide(&info()).error.is_none());
        f.inject(Fault::status(500).namespace("default").verb(Verb::Get));
        assert_eq!(f.decide(&info()).error.unwrap().code, 500);
    }

    #[test]
    fn fraction_is_repeatable_for_a_seed() {
        let run = |seed| {
            let f = Faults::new(seed);
            f.inject(Fault::status(500).fraction(0.5));
            (0..64)
                .map(|_| f.decide(&info()).error.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        let hits = run(9).into_iter().filter(|x| *x).count();
        assert!(hits > 10 && hits < 54, "{hits}");
    }
}
