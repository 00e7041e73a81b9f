//! A discovery cache: which resource (URL path) and scope serve a kind.
//!
//! [`DiscoveryCache::resolve`] maps `apiVersion` + `kind` to a [`Resolved`] resource
//! (an `ApiResource` for `kube::Api<DynamicObject>`, namespaced or cluster-scoped, and
//! the verbs it supports). It asks the API server for one group-version at a time
//! (`GET /apis/<group>/<version>`, one request however many kinds are used from it) and
//! keeps the answer. An unknown kind triggers one refresh of its group-version (a CRD may
//! have been installed since); if the kind is still unknown the answer is a
//! [`NotFound`](crate::ErrorKind::NotFound) error saying so.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> idp_core::Result<()> {
//! use idp_core::cluster::{discovery::DiscoveryCache, RetryPolicy};
//! let cache = DiscoveryCache::new(client, RetryPolicy::default());
//! let deployments = cache.resolve("apps/v1", "Deployment").await?;
//! assert!(deployments.namespaced);
//! assert_eq!(deployments.resource.plural, "deployments");
//! # Ok(()) }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use kube::discovery::{ApiCapabilities, ApiResource, Scope, verbs};

use super::retry::RetryPolicy;
use crate::error::{Error, ErrorKind, Result};

/// A resource type as discovered on the cluster.
///
/// ```
/// use idp_core::cluster::discovery::Resolved;
/// let gvk = kube::api::GroupVersionKind::gvk("", "v1", "ConfigMap");
/// let r = Resolved::new(kube::discovery::ApiResource::from_gvk(&gvk), true, vec!["list".into()]);
/// assert_eq!(r.group_kind().to_string(), "ConfigMap");
/// assert!(r.supports("list"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Group, version, kind and plural, ready for `Api::<DynamicObject>::*_with`.
    pub resource: ApiResource,
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
    /// The verbs the resource supports (`get`, `list`, `watch`, `patch`, `delete`, …).
    pub verbs: Vec<String>,
}

impl Resolved {
    /// A resolved resource from its parts.
    ///
    /// ```
    /// let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
    /// let r = idp_core::cluster::discovery::Resolved::new(kube::discovery::ApiResource::from_gvk(&gvk), true, vec![]);
    /// assert_eq!(r.resource.plural, "deployments");
    /// ```
    pub fn new(resource: ApiResource, namespaced: bool, verbs: Vec<String>) -> Self {
        Self {
            resource,
            namespaced,
            verbs,
        }
    }

    fn from_discovery(resource: ApiResource, caps: &ApiCapabilities) -> Self {
        Self {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
            verbs: caps.operations.clone(),
        }
    }

    /// Whether the resource supports `verb` (see `kube::discovery::verbs`).
    ///
    /// ```
    /// let gvk = kube::api::GroupVersionKind::gvk("", "v1", "Pod");
    /// let r = idp_core::cluster::discovery::Resolved::new(kube::discovery::ApiResource::from_gvk(&gvk), true, vec!["get".into()]);
    /// assert!(!r.supports("delete"));
    /// ```
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The group and kind, without the version.
    ///
    /// ```
    /// let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
    /// let r = idp_core::cluster::discovery::Resolved::new(kube::discovery::ApiResource::from_gvk(&gvk), true, vec![]);
    /// assert_eq!(r.group_kind().to_string(), "Deployment.apps");
    /// ```
    pub fn group_kind(&self) -> GroupKind {
        GroupKind::new(&self.resource.group, &self.resource.kind)
    }
}

/// What [`DiscoveryCache::listable_resources`] found: the resource types that support
/// `list`, and the group versions whose discovery failed, with the error.
///
/// ```
/// let l = idp_core::cluster::discovery::Listable::default();
/// assert!(l.resources.is_empty() && l.unavailable.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Listable {
    /// The resource types, sorted by group then kind.
    pub resources: Vec<Resolved>,
    /// `(group/version, error)` for each group that could not be discovered.
    pub unavailable: Vec<(String, Error)>,
}

/// An API group and kind, written the way ApplySet writes them: `Kind.group`, or just
/// `Kind` for the core group.
///
/// ```
/// use idp_core::cluster::discovery::GroupKind;
/// let gk: GroupKind = "Deployment.apps".parse()?;
/// assert_eq!((gk.group.as_str(), gk.kind.as_str()), ("apps", "Deployment"));
/// assert_eq!("Namespace".parse::<GroupKind>()?.group, "");
/// assert_eq!(GroupKind::new("networking.k8s.io", "Ingress").to_string(), "Ingress.networking.k8s.io");
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKind {
    /// The API group (`""` for core).
    pub group: String,
    /// The kind.
    pub kind: String,
}

impl GroupKind {
    /// A group-kind from its parts.
    ///
    /// ```
    /// assert_eq!(idp_core::cluster::discovery::GroupKind::new("", "Pod").to_string(), "Pod");
    /// ```
    pub fn new(group: &str, kind: &str) -> Self {
        Self {
            group: group.to_owned(),
            kind: kind.to_owned(),
        }
    }

    /// The group-kind of an `apiVersion` and `kind`.
    ///
    /// ```
    /// let gk = idp_core::cluster::discovery::GroupKind::of("batch/v1", "Job");
    /// assert_eq!(gk.to_string(), "Job.batch");
    /// ```
    pub fn of(api_version: &str, kind: &str) -> Self {
        Self::new(split_api_version(api_version).0, kind)
    }
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

impl std::str::FromStr for GroupKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (kind, group) = s.split_once('.').unwrap_or((s, ""));
        if kind.is_empty() || kind.contains(char::is_whitespace) {
            return Err(Error::invalid_input(format!(
                "{s:?} is not a group-kind; expected Kind.group or Kind (core group)"
            )));
        }
        Ok(Self::new(group, kind))
    }
}

/// Split `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

type GroupVersionResources = Arc<Vec<(ApiResource, ApiCapabilities)>>;

/// A cache of API discovery, shared by everything that talks to one cluster.
///
/// Cheap to share behind an `Arc` (the [`Cluster`](super::Cluster) does); lookups
/// that hit the cache take a short lock and make no request.
///
/// ```no_run
/// # async fn demo(client: kube::Client) -> idp_core::Result<()> {
/// let cache = idp_core::cluster::discovery::DiscoveryCache::new(client, Default::default());
/// let err = cache.resolve("example.com/v1", "Widget").await.unwrap_err();
/// assert_eq!(err.kind(), idp_core::ErrorKind::NotFound);
/// # Ok(()) }
/// ```
pub struct DiscoveryCache {
    client: kube::Client,
    retry: RetryPolicy,
    group_versions: Mutex<HashMap<String, GroupVersionResources>>,
    preferred: Mutex<HashMap<String, Option<String>>>,
}

impl fmt::Debug for DiscoveryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached: BTreeSet<String> = self
            .group_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        f.debug_struct("DiscoveryCache")
            .field("group_versions", &cached)
            .finish_non_exhaustive()
    }
}

impl DiscoveryCache {
    /// An empty cache that discovers through `client`, retrying with `retry`.
    ///
    /// ```no_run
    /// # async fn demo(client: kube::Client) {
    /// let cache = idp_core::cluster::discovery::DiscoveryCache::new(client, Default::default());
    /// # }
    /// ```
    pub fn new(client: kube::Client, retry: RetryPolicy) -> Self {
        Self {
            client,
            retry,
            group_versions: Mutex::new(HashMap::new()),
            preferred: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, api_version: &str) -> Option<GroupVersionResources> {
        self.group_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(api_version)
            .cloned()
    }

    /// Fetch one group-version from the server; `None` when it does not serve it.
    async fn fetch(&self, api_version: &str) -> Result<Option<GroupVersionResources>> {
        let (group, version) = split_api_version(api_version);
        let gv = kube::core::gvk::GroupVersion::gv(group, version);
        let what = format!("discover the resources of {api_version}");
        let fetched = self
            .retry
            .run(&what, || kube::discovery::pinned_group(&self.client, &gv))
            .await;
        match fetched {
            Ok(api_group) => {
                let resources = Arc::new(api_group.versioned_resources(version));
                self.group_versions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(api_version.to_owned(), Arc::clone(&resources));
                Ok(Some(resources))
            }
            Err(err) if err.kind() == ErrorKind::NotFound => {
                self.invalidate(api_version);
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// Resolve `kind` in `api_version`, refreshing the group-version once when the
    /// kind is not in the cache.
    ///
    /// Fails with [`NotFound`](ErrorKind::NotFound) when the cluster does not serve the
    /// kind ("no resource kind Widget in group example.com on this cluster; is its CRD
    /// installed?").
    ///
    /// ```no_run
    /// # async fn demo(cache: &idp_core::cluster::discovery::DiscoveryCache) -> idp_core::Result<()> {
    /// let ns = cache.resolve("v1", "Namespace").await?;
    /// assert!(!ns.namespaced);
    /// # Ok(()) }
    /// ```
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved> {
        if let Some(found) = self.cached(api_version).and_then(|r| find_kind(&r, kind)) {
            return Ok(found);
        }
        // A span entered across an await would make this future !Send.
        let span = tracing::debug_span!("discover", api_version, kind);
        if let Some(found) = tracing::Instrument::instrument(self.fetch(api_version), span)
            .await?
            .and_then(|r| find_kind(&r, kind))
        {
            return Ok(found);
        }
        Err(unknown_kind(api_version, kind))
    }

    /// Resolve a group-kind at the group's preferred version, or, for a kind served only
    /// at another version of its group, at the version discovery recommends for it;
    /// `Ok(None)` when the cluster no longer serves it (its CRD was deleted, say).
    ///
    /// ```no_run
    /// # async fn demo(cache: &idp_core::cluster::discovery::DiscoveryCache) -> idp_core::Result<()> {
    /// let gk: idp_core::cluster::discovery::GroupKind = "Deployment.apps".parse()?;
    /// let deployments = cache.resolve_group_kind(&gk).await?.expect("served");
    /// assert_eq!(deployments.resource.group, "apps");
    /// # Ok(()) }
    /// ```
    pub async fn resolve_group_kind(&self, group_kind: &GroupKind) -> Result<Option<Resolved>> {
        let cached_preferred = self
            .preferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&group_kind.group)
            .cloned();
        let preferred = if let Some(version) = cached_preferred {
            version
        } else {
            let group = group_kind.group.as_str();
            let what = format!("discover the API group {group:?}");
            let found = self
                .retry
                .run(&what, || kube::discovery::group(&self.client, group))
                .await;
            let version = match found {
                Ok(api_group) => Some(api_group.preferred_version_or_latest().to_owned()),
                Err(err) if err.kind() == ErrorKind::NotFound => None,
                Err(err) => return Err(err),
            };
            self.preferred
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(group_kind.group.clone(), version.clone());
            version
        };
        let Some(version) = preferred else {
            return Ok(None);
        };
        let api_version = if group_kind.group.is_empty() {
            version
        } else {
            format!("{}/{version}", group_kind.group)
        };
        match self.resolve(&api_version, &group_kind.kind).await {
            Ok(found) => Ok(Some(found)),
            Err(err) if err.kind() == ErrorKind::NotFound && !group_kind.group.is_empty() => {
                // Served at another version of the group only: Kyverno's
                // PolicyException is in kyverno.io/v2, its ClusterPolicy in v1.
                let group = group_kind.group.as_str();
                let what = format!("discover every version of the API group {group:?}");
                match self
                    .retry
                    .run(&what, || kube::discovery::group(&self.client, group))
                    .await
                {
                    // The most stable version that serves the kind.
                    Ok(api_group) => Ok(api_group
                        .resources_by_stability()
                        .into_iter()
                        .find(|(resource, _)| resource.kind == group_kind.kind)
                        .map(|(resource, caps)| Resolved::from_discovery(resource, &caps))),
                    Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
                    Err(err) => Err(err),
                }
            }
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every resource type the cluster serves that supports `list` and `delete`,
    /// at each group's preferred version (a full discovery: one request per group).
    ///
    /// ```no_run
    /// # async fn demo(cache: &idp_core::cluster::discovery::DiscoveryCache) -> idp_core::Result<()> {
    /// let all = cache.prunable_resources().await?;
    /// assert!(all.iter().any(|r| r.resource.kind == "ConfigMap"));
    /// # Ok(()) }
    /// ```
    pub async fn prunable_resources(&self) -> Result<Vec<Resolved>> {
        let discovery = self
            .retry
            .run("discover every API group", || {
                kube::discovery::Discovery::new(self.client.clone()).run()
            })
            .await?;
        let mut out = Vec::new();
        for group in discovery.groups() {
            for (resource, caps) in group.recommended_resources() {
                if caps.supports_operation(verbs::LIST) && caps.supports_operation(verbs::DELETE) {
                    out.push(Resolved::from_discovery(resource, &caps));
                }
            }
        }
        Ok(out)
    }

    /// Every resource type the cluster serves that supports `list`, at each group's
    /// preferred version (a kind served only at another version of its group at the
    /// first such version, as `kubectl api-resources` lists it), sorted by group then
    /// kind: what an audit of everything there is reads. One request lists the groups,
    /// then one per group version.
    ///
    /// A group whose discovery fails (an aggregated API such as `metrics.k8s.io` whose
    /// backing service is down, which real clusters often have) is recorded in
    /// [`Listable::unavailable`] with its error rather than failing the whole answer;
    /// only a failure to list the groups themselves is an error.
    ///
    /// ```no_run
    /// # async fn demo(cache: &idp_core::cluster::discovery::DiscoveryCache) -> idp_core::Result<()> {
    /// let all = cache.listable_resources().await?;
    /// assert!(all.resources.iter().any(|r| r.resource.kind == "Pod"));
    /// for (group_version, error) in &all.unavailable {
    ///     eprintln!("{group_version}: {error}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn listable_resources(&self) -> Result<Listable> {
        let groups = self
            .retry
            .run("list the API groups", || self.client.list_api_groups())
            .await?;
        // Each group's versions, the preferred first: a kind served only at another
        // version is listed there, as `kubectl api-resources` lists it.
        let mut by_group: Vec<Vec<String>> = vec![vec!["v1".to_owned()]];
        for group in groups.groups {
            let preferred = group
                .preferred_version
                .map(|v| v.group_version)
                .or_else(|| group.versions.first().map(|v| v.group_version.clone()));
            let mut versions: Vec<String> = preferred.into_iter().collect();
            for v in group.versions {
                if !versions.contains(&v.group_version) {
                    versions.push(v.group_version);
                }
            }
            by_group.push(versions);
        }
        let mut out = Listable::default();
        for versions in by_group {
            let mut kinds_seen: Vec<String> = Vec::new();
            for (i, group_version) in versions.into_iter().enumerate() {
                let gv: kube::core::GroupVersion = match group_version.parse() {
                    Ok(gv) => gv,
                    Err(e) => {
                        out.unavailable.push((
                            group_version.clone(),
                            Error::internal(format!(
                                "the API server lists a group version {group_version:?} that does not parse"
                            ))
                            .with_source(e),
                        ));
                        continue;
                    }
                };
                let what = format!("discover {group_version}");
                match self
                    .retry
                    .run(&what, || kube::discovery::pinned_group(&self.client, &gv))
                    .await
                {
                    Ok(group) => {
                        for (resource, caps) in group.recommended_resources() {
                            if caps.supports_operation(verbs::LIST)
                                && !kinds_seen.contains(&resource.kind)
                            {
                                kinds_seen.push(resource.kind.clone());
                                out.resources
                                    .push(Resolved::from_discovery(resource, &caps));
                            }
                        }
                    }
                    // The preferred version failing stands for the group.
                    Err(e) if i == 0 => {
                        out.unavailable.push((group_version, e));
                        break;
                    }
                    Err(e) => out.unavailable.push((group_version, e)),
                }
            }
        }
        out.resources.sort_by(|a, b| {
            (&a.resource.group, &a.resource.kind).cmp(&(&b.resource.group, &b.resource.kind))
        });
        Ok(out)
    }

    /// Forget what is cached for `api_version` (after a CRD changed).
    ///
    /// ```no_run
    /// # fn demo(cache: &idp_core::cluster::discovery::DiscoveryCache) {
    /// cache.invalidate("example.com/v1");
    /// # }
    /// ```
    pub fn invalidate(&self, api_version: &str) {
        self.group_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(api_version);
    }

    /// Forget everything cached about `group` (all its versions and its preferred one).
    ///
    /// ```no_run
    /// # fn demo(cache: &idp_core::cluster::discovery::DiscoveryCache) {
    /// cache.invalidate_group("example.com");
    /// # }
    /// ```
    pub fn invalidate_group(&self, group: &str) {
        self.group_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|api_version, _| split_api_version(api_version).0 != group);
        self.preferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(group);
    }
}

fn find_kind(resources: &[(ApiResource, ApiCapabilities)], kind: &str) -> Option<Resolved> {
    resources
        .iter()
        .find(|(r, _)| r.kind == kind && !r.plural.contains('/'))
        .map(|(r, caps)| Resolved::from_discovery(r.clone(), caps))
}

fn unknown_kind(api_version: &str, kind: &str) -> Error {
    let (group, version) = split_api_version(api_version);
    if group.is_empty() {
        Error::not_found(format!(
            "no resource kind {kind:?} in the core group (apiVersion {version:?}) on this cluster; check the kind and apiVersion"
        ))
    } else {
        Error::not_found(format!(
            "no resource kind {kind:?} in group {group:?} (apiVersion {api_version:?}) on this cluster; is its CRD installed?"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_kind_round_trips() {
        for text in ["Deployment.apps", "Namespace", "Widget.example.com"] {
            let gk: GroupKind = text.parse().unwrap();
            assert_eq!(gk.to_string(), text);
        }
        assert!("".parse::<GroupKind>().is_err());
        assert!(".apps".parse::<GroupKind>().is_err());
        assert_eq!(GroupKind::of("v1", "Pod"), GroupKind::new("", "Pod"));
    }

    #[test]
    fn unknown_kind_messages_say_what_to_check() {
        let e = unknown_kind("example.com/v1", "Widget");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.to_string()
                .contains("no resource kind \"Widget\" in group \"example.com\"")
        );
        assert!(e.to_string().contains("is its CRD installed?"));
        assert!(
            unknown_kind("v1", "Podd")
                .to_string()
                .contains("core group")
        );
    }
}
