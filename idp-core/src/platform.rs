//! [`Platform`]: the ports composed into golden paths.
//!
//! A platform holds one implementation of each port and runs the golden paths as plain
//! async functions. [`Platform::deploy`] is the central one:
//! **mutate → policy check → deploy → record**. A release that any policy denies is
//! refused as a whole, with every violation in the error, and nothing is deployed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result};
use crate::ids::{EntityRef, EnvironmentName};
use crate::model::{
    Deployment, DeploymentId, Environment, EnvironmentSpec, PolicyContext, Release, Violation,
};
use crate::ports::{
    Catalog, Deployer, EnvironmentProvider, EventSink, Mutation, Policy, PolicyExt,
    TracingEventSink,
};

/// Something the platform did, as recorded in its [`EventSink`].
///
/// ```
/// use idp_core::PlatformEvent;
/// let e = PlatformEvent::EnvironmentDestroyed { name: "pr-42".parse().unwrap() };
/// assert_eq!(serde_json::to_value(&e).unwrap()["type"], "environmentDestroyed");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum PlatformEvent {
    /// A release was deployed.
    Deployed {
        /// The deployment record.
        deployment: Deployment,
        /// Violations that did not block it (warn/audit).
        warnings: Vec<Violation>,
    },
    /// A release was refused by policy; nothing was deployed.
    Denied {
        /// The component.
        component: EntityRef,
        /// The environment.
        environment: EnvironmentName,
        /// Every violation found.
        violations: Vec<Violation>,
    },
    /// A deployment or rollback failed in the deployer.
    Failed {
        /// The component.
        component: EntityRef,
        /// The environment.
        environment: EnvironmentName,
        /// The error kind.
        kind: ErrorKind,
        /// The error, with its causes.
        error: String,
    },
    /// A component was rolled back.
    RolledBack {
        /// The deployment the rollback created.
        deployment: Deployment,
        /// The deployment whose state was restored.
        to: DeploymentId,
    },
    /// An environment was created or updated.
    EnvironmentEnsured {
        /// The environment as it now is.
        environment: Environment,
    },
    /// An environment was destroyed.
    EnvironmentDestroyed {
        /// Its name.
        name: EnvironmentName,
    },
}

impl PlatformEvent {
    /// Whether the event reports a refusal or a failure.
    ///
    /// ```
    /// use idp_core::PlatformEvent;
    /// let e = PlatformEvent::EnvironmentDestroyed { name: "dev".parse().unwrap() };
    /// assert!(!e.is_failure());
    /// ```
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            PlatformEvent::Denied { .. } | PlatformEvent::Failed { .. }
        )
    }
}

/// The outcome of [`Platform::deploy`]: the deployment and the violations that were only
/// warnings.
///
/// ```
/// # fn f(outcome: idp_core::platform::DeployOutcome) {
/// println!("deployed {} with {} warning(s)", outcome.deployment.id, outcome.warnings.len());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DeployOutcome {
    /// The deployment record.
    pub deployment: Deployment,
    /// Violations whose enforcement did not block the release.
    pub warnings: Vec<Violation>,
}

/// Builds a [`Platform`]; see [`Platform::builder`].
///
/// ```
/// # use std::sync::Arc;
/// # use idp_core::{Platform, Deployer};
/// fn platform(deployer: Arc<dyn Deployer>) -> idp_core::Result<Platform> {
///     Platform::builder().deployer(deployer).build()
/// }
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct PlatformBuilder {
    catalog: Option<Arc<dyn Catalog>>,
    deployer: Option<Arc<dyn Deployer>>,
    policies: Vec<Arc<dyn Policy>>,
    mutations: Vec<Arc<dyn Mutation>>,
    environments: Option<Arc<dyn EnvironmentProvider>>,
    events: Option<Arc<dyn EventSink>>,
    require_registered: bool,
}

impl PlatformBuilder {
    /// The catalog. With one, [`Platform::deploy`] refuses components it does not know
    /// (see [`require_registered_components`](Self::require_registered_components)).
    pub fn catalog(mut self, catalog: Arc<dyn Catalog>) -> Self {
        self.catalog = Some(catalog);
        self.require_registered = true;
        self
    }

    /// The deployer (required).
    pub fn deployer(mut self, deployer: Arc<dyn Deployer>) -> Self {
        self.deployer = Some(deployer);
        self
    }

    /// Add a policy; every policy checks every object of every release.
    pub fn policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policies.push(policy);
        self
    }

    /// Add a mutation; mutations run in the order added, before the policies.
    pub fn mutation(mut self, mutation: Arc<dyn Mutation>) -> Self {
        self.mutations.push(mutation);
        self
    }

    /// The environment provider.
    pub fn environments(mut self, provider: Arc<dyn EnvironmentProvider>) -> Self {
        self.environments = Some(provider);
        self
    }

    /// Where events go (default: [`TracingEventSink`]).
    pub fn events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// Whether `deploy` refuses components that are not in the catalog (default: true
    /// when a catalog is set).
    pub fn require_registered_components(mut self, require: bool) -> Self {
        self.require_registered = require;
        self
    }

    /// Build the platform; fails when no deployer was given.
    pub fn build(self) -> Result<Platform> {
        let deployer = self.deployer.ok_or_else(|| {
            Error::invalid_input("a Platform needs a deployer: call PlatformBuilder::deployer")
        })?;
        Ok(Platform {
            catalog: self.catalog,
            deployer,
            policies: self.policies,
            mutations: self.mutations,
            environments: self.environments,
            events: self.events.unwrap_or_else(|| Arc::new(TracingEventSink)),
            require_registered: self.require_registered,
        })
    }
}

/// The ports composed into golden paths.
///
/// ```
/// use std::sync::Arc;
/// use idp_core::{Deployer, ManifestSet, Object, Platform, Policy, Release};
///
/// async fn ship(deployer: Arc<dyn Deployer>, guardrails: Arc<dyn Policy>) -> idp_core::Result<()> {
///     let platform = Platform::builder().deployer(deployer).policy(guardrails).build()?;
///     let manifests: ManifestSet = [Object::from_value(serde_json::json!({
///         "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cart", "namespace": "shop"}
///     }))?].into_iter().collect();
///     let release = Release::new("component:default/cart".parse()?, "dev".parse()?, manifests);
///     match platform.deploy(release).await {
///         Ok(outcome) => println!("deployed {}", outcome.deployment.id),
///         Err(e) if e.kind() == idp_core::ErrorKind::Denied => {
///             for v in e.violations() { eprintln!("{v}"); }
///         }
///         Err(e) => return Err(e),
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Platform {
    catalog: Option<Arc<dyn Catalog>>,
    deployer: Arc<dyn Deployer>,
    policies: Vec<Arc<dyn Policy>>,
    mutations: Vec<Arc<dyn Mutation>>,
    environments: Option<Arc<dyn EnvironmentProvider>>,
    events: Arc<dyn EventSink>,
    require_registered: bool,
}

impl Platform {
    /// Start building a platform.
    ///
    /// ```
    /// let err = idp_core::Platform::builder().build().unwrap_err();
    /// assert!(err.to_string().contains("deployer"));
    /// ```
    pub fn builder() -> PlatformBuilder {
        PlatformBuilder::default()
    }

    /// The catalog, if one was given.
    pub fn catalog(&self) -> Option<&Arc<dyn Catalog>> {
        self.catalog.as_ref()
    }

    /// The deployer.
    pub fn deployer(&self) -> &Arc<dyn Deployer> {
        &self.deployer
    }

    /// The environment provider, if one was given.
    pub fn environments(&self) -> Option<&Arc<dyn EnvironmentProvider>> {
        self.environments.as_ref()
    }

    /// Run the mutations and the policies over a release without deploying it: returns
    /// the release as it would be deployed and every violation (blocking or not).
    pub fn check(&self, release: Release) -> Result<(Release, Vec<Violation>)> {
        let ctx = PolicyContext::for_release(&release);
        self.check_in(release, &ctx)
    }

    /// [`check`](Self::check) in a given context (for example one enriched from the
    /// catalog, as [`deploy`](Self::deploy) does).
    pub fn check_in(
        &self,
        mut release: Release,
        ctx: &PolicyContext,
    ) -> Result<(Release, Vec<Violation>)> {
        let mut mutated = crate::manifest::ManifestSet::new();
        for mut object in release.manifests {
            for mutation in &self.mutations {
                let _span = tracing::debug_span!("mutation", name = mutation.name()).entered();
                mutation.mutate(&mut object, ctx).map_err(|e| {
                    e.context(format_args!(
                        "mutation {:?} on {}",
                        mutation.name(),
                        object.object_ref()
                    ))
                })?;
            }
            mutated.push(object);
        }
        release.manifests = mutated;
        let mut violations = Vec::new();
        for policy in &self.policies {
            let _span = tracing::debug_span!("policy", name = policy.name()).entered();
            violations.extend(policy.evaluate_set(&release.manifests, ctx));
        }
        Ok((release, violations))
    }

    /// The golden path: mutate → policy check → deploy → record.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] for a release with no objects,
    /// [`ErrorKind::NotFound`] for a component the catalog does not know (when a catalog
    /// is set), and [`ErrorKind::Denied`] — carrying every violation — when any policy
    /// denies any object; then nothing is deployed.
    pub async fn deploy(&self, release: Release) -> Result<DeployOutcome> {
        let span = tracing::info_span!(
            "platform.deploy",
            component = %release.component,
            environment = %release.environment,
        );
        self.deploy_inner(release).instrument(span).await
    }

    async fn deploy_inner(&self, release: Release) -> Result<DeployOutcome> {
        if release.manifests.is_empty() {
            return Err(Error::invalid_input(format!(
                "release of {} to {} has no Kubernetes objects; render the workload first",
                release.component, release.environment
            )));
        }
        let mut ctx = PolicyContext::for_release(&release);
        if let Some(catalog) = &self.catalog {
            let entity = catalog
                .get(&release.component)
                .instrument(tracing::debug_span!("catalog.get"))
                .await?;
            match entity {
                Some(entity) => enrich_from_catalog(&mut ctx, &entity),
                None if self.require_registered => {
                    return Err(Error::not_found(format!(
                        "component {} is not in the catalog; register its catalog-info.yaml before deploying it",
                        release.component
                    )));
                }
                None => {}
            }
        }
        let component = release.component.clone();
        let environment = release.environment.clone();
        let (release, violations) = self.check_in(release, &ctx)?;
        let (blocking, warnings): (Vec<_>, Vec<_>) =
            violations.into_iter().partition(|v| v.enforcement.blocks());
        if !blocking.is_empty() {
            let mut all = blocking;
            all.extend(warnings);
            self.events.record(&PlatformEvent::Denied {
                component,
                environment,
                violations: all.clone(),
            });
            return Err(Error::denied(all));
        }
        match self
            .deployer
            .deploy(&release)
            .instrument(tracing::info_span!("deployer.deploy"))
            .await
        {
            Ok(deployment) => {
                self.events.record(&PlatformEvent::Deployed {
                    deployment: deployment.clone(),
                    warnings: warnings.clone(),
                });
                Ok(DeployOutcome {
                    deployment,
                    warnings,
                })
            }
            Err(err) => {
                self.events.record(&PlatformEvent::Failed {
                    component,
                    environment,
                    kind: err.kind(),
                    error: err.report(),
                });
                Err(err)
            }
        }
    }

    /// Roll a component in an environment back to an earlier deployment, and record it.
    pub async fn rollback(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        to: &DeploymentId,
    ) -> Result<Deployment> {
        let span = tracing::info_span!("platform.rollback", %component, %environment, to = %to);
        let result = self
            .deployer
            .rollback(component, environment, to)
            .instrument(span)
            .await;
        match &result {
            Ok(deployment) => self.events.record(&PlatformEvent::RolledBack {
                deployment: deployment.clone(),
                to: to.clone(),
            }),
            Err(err) => self.events.record(&PlatformEvent::Failed {
                component: component.clone(),
                environment: environment.clone(),
                kind: err.kind(),
                error: err.report(),
            }),
        }
        result
    }

    fn environment_provider(&self) -> Result<&Arc<dyn EnvironmentProvider>> {
        self.environments.as_ref().ok_or_else(|| {
            Error::invalid_input(
                "this Platform has no environment provider: call PlatformBuilder::environments",
            )
        })
    }

    /// Create or update an environment, and record it.
    pub async fn ensure_environment(&self, spec: &EnvironmentSpec) -> Result<Environment> {
        let provider = self.environment_provider()?;
        let span = tracing::info_span!("platform.ensure_environment", name = %spec.name);
        let environment = provider.ensure(spec).instrument(span).await?;
        self.events.record(&PlatformEvent::EnvironmentEnsured {
            environment: environment.clone(),
        });
        Ok(environment)
    }

    /// Destroy an environment, and record it; `Ok(false)` when it did not exist.
    pub async fn destroy_environment(&self, name: &EnvironmentName) -> Result<bool> {
        let provider = self.environment_provider()?;
        let span = tracing::info_span!("platform.destroy_environment", %name);
        let existed = provider.destroy(name).instrument(span).await?;
        if existed {
            self.events
                .record(&PlatformEvent::EnvironmentDestroyed { name: name.clone() });
        }
        Ok(existed)
    }
}

/// Copy what policies and mutations need to know about a component from its catalog
/// entity into the context's attributes (keys already set are kept):
///
/// | attribute | value |
/// |---|---|
/// | `owner` | the owner's name (`team-shop`), fit for a label value |
/// | `owner-ref` | the owner's full reference (`group:default/team-shop`) |
/// | `system` | the system's name |
/// | `lifecycle` | `spec.lifecycle` |
///
/// References resolve as Backstage resolves them: default kinds `Group` and `System`,
/// relative to the entity's namespace.
fn enrich_from_catalog(ctx: &mut PolicyContext, entity: &crate::model::Entity) {
    let namespace = entity.namespace().to_owned();
    let resolve = |field: &str, default_kind: &str| {
        entity.spec_str(field).and_then(|text| {
            crate::ids::EntityRef::parse_with_defaults(text, Some(default_kind), &namespace).ok()
        })
    };
    let mut set = |key: &str, value: String| {
        ctx.attributes.entry(key.to_owned()).or_insert(value);
    };
    if let Some(owner) = resolve("owner", "Group") {
        set("owner", owner.name().to_owned());
        set("owner-ref", owner.to_string());
    }
    if let Some(system) = resolve("system", "System") {
        set("system", system.name().to_owned());
    }
    if let Some(lifecycle) = entity.spec_str("lifecycle") {
        set("lifecycle", lifecycle.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::manifest::{ManifestSet, Object};
    use crate::model::{DeploymentStatus, Enforcement};
    use crate::ports::HistoryQuery;

    #[derive(Debug, Default)]
    struct RecordingDeployer {
        deployed: Mutex<Vec<Release>>,
    }

    #[async_trait]
    impl Deployer for RecordingDeployer {
        async fn deploy(&self, release: &Release) -> Result<Deployment> {
            let mut deployed = self.deployed.lock().unwrap();
            deployed.push(release.clone());
            Ok(Deployment {
                id: DeploymentId::new(format!("d{}", deployed.len())),
                component: release.component.clone(),
                environment: release.environment.clone(),
                revision: format!("r{}", deployed.len()),
                source_revision: release.source_revision.clone(),
                author: release.author.clone(),
                message: release.message.clone(),
                status: DeploymentStatus::Succeeded,
                created_at: release.created_at,
            })
        }
        async fn history(&self, _: &HistoryQuery) -> Result<Vec<Deployment>> {
            Ok(vec![])
        }
        async fn rollback(
            &self,
            _: &EntityRef,
            _: &EnvironmentName,
            to: &DeploymentId,
        ) -> Result<Deployment> {
            Err(Error::not_found(format!("no deployment {to}")))
        }
    }

    #[derive(Debug)]
    struct DenyPrivileged(Enforcement);
    impl Policy for DenyPrivileged {
        fn name(&self) -> &str {
            "deny-privileged"
        }
        fn evaluate(&self, object: &Object, _: &PolicyContext) -> Vec<Violation> {
            let privileged = object
                .as_map()
                .get("spec")
                .and_then(|s| s.pointer("/containers/0/securityContext/privileged"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            if privileged {
                vec![
                    Violation::new(
                        self.name().to_owned(),
                        "privileged",
                        "must not be privileged",
                    )
                    .with_enforcement(self.0),
                ]
            } else {
                vec![]
            }
        }
    }

    #[derive(Debug)]
    struct Unprivilege;
    impl Mutation for Unprivilege {
        fn name(&self) -> &str {
            "unprivilege"
        }
        fn mutate(&self, object: &mut Object, _: &PolicyContext) -> Result<bool> {
            let Some(flag) = object
                .as_map_mut()
                .get_mut("spec")
                .and_then(|s| s.pointer_mut("/containers/0/securityContext/privileged"))
            else {
                return Ok(false);
            };
            let changed = flag != &serde_json::Value::Bool(false);
            *flag = serde_json::Value::Bool(false);
            Ok(changed)
        }
    }

    fn release(privileged: bool) -> Release {
        let pod = Object::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                "securityContext": {"privileged": privileged}}]}
        }))
        .unwrap();
        let cm = Object::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}
        }))
        .unwrap();
        Release::new(
            "component:default/cart".parse().unwrap(),
            "dev".parse().unwrap(),
            [pod, cm].into_iter().collect(),
        )
    }

    fn platform(
        enforcement: Enforcement,
        mutate: bool,
    ) -> (
        Platform,
        Arc<RecordingDeployer>,
        tokio::sync::broadcast::Receiver<PlatformEvent>,
    ) {
        let deployer = Arc::new(RecordingDeployer::default());
        let (tx, rx) = tokio::sync::broadcast::channel(16);
        let mut builder = Platform::builder()
            .deployer(deployer.clone())
            .policy(Arc::new(DenyPrivileged(enforcement)))
            .events(Arc::new(tx));
        if mutate {
            builder = builder.mutation(Arc::new(Unprivilege));
        }
        (builder.build().unwrap(), deployer, rx)
    }

    #[tokio::test]
    async fn denied_release_deploys_nothing_and_carries_violations() {
        let (platform, deployer, mut events) = platform(Enforcement::Deny, false);
        let err = platform.deploy(release(true)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied);
        assert_eq!(err.violations().len(), 1);
        assert_eq!(
            err.violations()[0].object.as_ref().unwrap().name,
            "p",
            "violation names its object"
        );
        assert!(deployer.deployed.lock().unwrap().is_empty());
        assert!(matches!(
            events.try_recv().unwrap(),
            PlatformEvent::Denied { .. }
        ));
    }

    #[tokio::test]
    async fn clean_release_is_deployed_and_recorded() {
        let (platform, deployer, mut events) = platform(Enforcement::Deny, false);
        let outcome = platform.deploy(release(false)).await.unwrap();
        assert_eq!(outcome.deployment.id.as_str(), "d1");
        assert_eq!(deployer.deployed.lock().unwrap()[0].manifests.len(), 2);
        assert!(matches!(
            events.try_recv().unwrap(),
            PlatformEvent::Deployed { .. }
        ));
    }

    #[tokio::test]
    async fn warnings_do_not_block() {
        let (platform, _, _) = platform(Enforcement::Warn, false);
        let outcome = platform.deploy(release(true)).await.unwrap();
        assert_eq!(outcome.warnings.len(), 1);
    }

    #[tokio::test]
    async fn mutations_run_before_policies() {
        let (platform, deployer, _) = platform(Enforcement::Deny, true);
        platform.deploy(release(true)).await.unwrap();
        let deployed = deployer.deployed.lock().unwrap();
        let pod = deployed[0].manifests.objects()[0].to_value();
        assert_eq!(
            pod.pointer("/spec/containers/0/securityContext/privileged"),
            Some(&serde_json::Value::Bool(false))
        );
    }

    #[test]
    fn catalog_entity_enriches_the_policy_context() {
        let entity = crate::model::Entity::from_value(serde_json::json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {"owner": "team-a", "system": "checkout", "lifecycle": "production"}
        }))
        .unwrap();
        let mut ctx = PolicyContext::new();
        ctx.attributes.insert("system".into(), "given".into());
        enrich_from_catalog(&mut ctx, &entity);
        assert_eq!(ctx.attributes["owner"], "team-a");
        assert_eq!(ctx.attributes["owner-ref"], "group:shop/team-a");
        assert_eq!(ctx.attributes["system"], "given", "explicit attributes win");
        assert_eq!(ctx.attributes["lifecycle"], "production");
    }

    #[tokio::test]
    async fn empty_release_is_invalid() {
        let (platform, _, _) = platform(Enforcement::Deny, false);
        let r = Release::new(
            "component:default/a".parse().unwrap(),
            "dev".parse().unwrap(),
            ManifestSet::new(),
        );
        assert_eq!(
            platform.deploy(r).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[tokio::test]
    async fn missing_environment_provider_is_a_clear_error() {
        let (platform, _, _) = platform(Enforcement::Deny, false);
        let err = platform
            .destroy_environment(&"dev".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("environment provider"));
    }
}
