//! [`ApplyDeployer`]: a small [`Deployer`] that server-side applies a release's manifests
//! to a cluster (through `idp_core::cluster`), prunes what left the release and waits
//! until the objects are healthy. History lives in memory.
//!
//! It exists so tests of code that *uses* a deployer (the preview controller, say) can
//! see real objects in a [`FakeCluster`](crate::FakeCluster); production deployers live
//! in `idp-deploy`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use idp_core::cluster::{Applier, Cluster, Inventory, PruneOptions, wait_healthy};
use idp_core::ports::HistoryQuery;
use idp_core::{
    Deployer, Deployment, DeploymentId, DeploymentStatus, EntityRef, EnvironmentName, Error,
    ManifestSet, Release, Result,
};

type Key = (String, EnvironmentName);
type History = BTreeMap<Key, Vec<(Deployment, ManifestSet)>>;

/// A [`Deployer`] that server-side applies a release's manifests (through
/// `idp_core::cluster`), prunes what left the release and waits until the objects are
/// healthy; history lives in memory. For tests of code that *uses* a deployer; production
/// deployers live in `idp-deploy`.
///
/// Each release of a component in an environment is one inventory, whose parent
/// ConfigMap `idp-release-<component name>` lives in the namespace of the release's
/// first namespaced object (or the environment's name). Objects without a namespace go
/// to the environment's name.
///
/// ```no_run
/// # async fn demo(cluster: idp_core::cluster::Cluster) {
/// let deployer = idp_testkit::doubles::ApplyDeployer::new(cluster)
///     .with_timeout(std::time::Duration::from_secs(30));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ApplyDeployer {
    cluster: Cluster,
    timeout: Duration,
    history: Arc<Mutex<History>>,
    next: Arc<Mutex<u64>>,
}

impl ApplyDeployer {
    /// A deployer applying to `cluster`, waiting up to 60 s for health.
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// let d = idp_testkit::doubles::ApplyDeployer::new(cluster);
    /// # }
    /// ```
    pub fn new(cluster: Cluster) -> Self {
        Self {
            cluster,
            timeout: Duration::from_secs(60),
            history: Arc::default(),
            next: Arc::default(),
        }
    }

    /// Wait at most this long for the objects to become healthy.
    ///
    /// ```no_run
    /// # fn demo(d: idp_testkit::doubles::ApplyDeployer) {
    /// let d = d.with_timeout(std::time::Duration::from_secs(5));
    /// # }
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn put(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        manifests: &ManifestSet,
        release: Option<&Release>,
        message: Option<String>,
    ) -> Result<Deployment> {
        let namespace = manifests
            .iter()
            .find_map(|o| o.namespace().map(str::to_owned))
            .unwrap_or_else(|| environment.as_str().to_owned());
        let name = idp_core::slugify(&format!("idp-release-{}", component.name()), 63);
        let applier = Applier::new(self.cluster.clone(), Inventory::new(&namespace, &name)?)
            .with_default_namespace(environment.as_str())
            .with_force(true);
        let report = applier.apply(manifests).await?;
        applier
            .prune(manifests, &PruneOptions::default().allow_empty(true))
            .await?;
        let status = match wait_healthy(&self.cluster, &report.refs(), self.timeout).await {
            Ok(_) => DeploymentStatus::Succeeded,
            Err(err) => {
                tracing::warn!(error = %err.report(), "release did not become healthy");
                DeploymentStatus::Failed
            }
        };
        let id = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *next += 1;
            DeploymentId::new(format!("apply-{next}"))
        };
        let deployment = Deployment {
            revision: id.to_string(),
            id,
            component: component.clone(),
            environment: environment.clone(),
            source_revision: release.and_then(|r| r.source_revision.clone()),
            author: release.and_then(|r| r.author.clone()),
            message: message.or_else(|| release.and_then(|r| r.message.clone())),
            status,
            created_at: jiff::Timestamp::now(),
        };
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entries = history
            .entry((component.key(), environment.clone()))
            .or_default();
        if let Some((previous, _)) = entries.last_mut()
            && previous.status == DeploymentStatus::Succeeded
        {
            previous.status = DeploymentStatus::Superseded;
        }
        entries.push((deployment.clone(), manifests.clone()));
        Ok(deployment)
    }
}

#[async_trait]
impl Deployer for ApplyDeployer {
    #[tracing::instrument(name = "testkit.apply_deployer.deploy", skip_all, fields(component = %release.component, environment = %release.environment))]
    async fn deploy(&self, release: &Release) -> Result<Deployment> {
        self.put(
            &release.component,
            &release.environment,
            &release.manifests,
            Some(release),
            None,
        )
        .await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<Deployment>> {
        let history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(history
            .get(&(query.component.key(), query.environment.clone()))
            .map(|h| {
                h.iter()
                    .rev()
                    .take(query.limit.unwrap_or(usize::MAX))
                    .map(|(d, _)| d.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn rollback(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        to: &DeploymentId,
    ) -> Result<Deployment> {
        let target = {
            let history = self
                .history
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            history
                .get(&(component.key(), environment.clone()))
                .and_then(|h| h.iter().find(|(d, _)| &d.id == to).cloned())
        };
        let Some((_, manifests)) = target else {
            return Err(Error::not_found(format!(
                "deployment {to} of {component} in {environment} does not exist"
            )));
        };
        self.put(
            component,
            environment,
            &manifests,
            None,
            Some(format!("rollback to {to}")),
        )
        .await
    }
}
