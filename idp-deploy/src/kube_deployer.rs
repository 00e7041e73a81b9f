//! [`KubeDeployer`]: the `Deployer` port applied straight to a cluster with server-side
//! apply, with a bounded release history kept in the cluster.
//!
//! Each deploy applies the release's manifests with idp-core's
//! [`Applier`] (one inventory per component and
//! environment), prunes what the previous release had and this one does not, waits until
//! everything is healthy (or the timeout passes: the deployment is then `Failed`), and
//! records the release — like Helm's release Secrets — as **one Secret per release** in
//! the deployer's namespace: type `idp.dev/release.v1`, labelled with the component and
//! environment key and the version, holding the deployment record and the manifests as
//! gzip-compressed JSON. Only the newest [`keep_history`](KubeDeployer::keep_history)
//! records are kept. `history` reads them back (newest first) and `rollback(to)`
//! re-applies that record's manifests as a new release, pruning what it did not have.
//!
//! ```no_run
//! # async fn demo(client: kube::Client, release: idp_core::Release) -> idp_core::Result<()> {
//! use idp_core::Deployer;
//! use idp_deploy::KubeDeployer;
//! let deployer = KubeDeployer::new(idp_core::cluster::Cluster::new(client), "platform")
//!     .default_namespace("shop")
//!     .keep_history(10);
//! let deployment = deployer.deploy(&release).await?;
//! println!("{} is {:?}", deployment.id, deployment.status);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use async_trait::async_trait;
use idp_core::cluster::errors::from_kube;
use idp_core::cluster::{Applier, Cluster, Inventory, PruneOptions, labels, wait_healthy};
use idp_core::ports::HistoryQuery;
use idp_core::{
    Deployer, Deployment, DeploymentId, DeploymentStatus, EntityRef, EnvironmentName, Error,
    ErrorKind, ManifestSet, Object, Release, Result,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::{Deserialize, Serialize};

/// The Secret type of release records.
pub const RELEASE_SECRET_TYPE: &str = "idp.dev/release.v1";
/// Label: which component and environment a record belongs to (a hash-suffixed key).
pub const RELEASE_OF_LABEL: &str = "idp.dev/release-of";
/// Label: the record's version (1, 2, …).
pub const RELEASE_VERSION_LABEL: &str = "idp.dev/release-version";

/// Deploys releases straight to a cluster; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct KubeDeployer {
    cluster: Cluster,
    namespace: String,
    default_namespace: Option<String>,
    keep: usize,
    timeout: Duration,
    field_manager: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    version: u64,
    deployment: Deployment,
    manifests: Vec<serde_json::Value>,
}

impl KubeDeployer {
    /// A deployer keeping its records (and inventories) in `namespace`.
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// let d = idp_deploy::KubeDeployer::new(cluster, "platform");
    /// # }
    /// ```
    pub fn new(cluster: Cluster, namespace: impl Into<String>) -> Self {
        Self {
            cluster,
            namespace: namespace.into(),
            default_namespace: None,
            keep: 10,
            timeout: Duration::from_secs(300),
            field_manager: "idp-deployer".to_owned(),
        }
    }

    /// Namespace for namespaced objects that name none (default `default`).
    ///
    /// ```no_run
    /// # fn demo(d: idp_deploy::KubeDeployer) {
    /// let d = d.default_namespace("shop");
    /// # }
    /// ```
    pub fn default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = Some(namespace.into());
        self
    }

    /// Keep the newest `n` release records per component and environment (default 10,
    /// at least 1).
    ///
    /// ```no_run
    /// # fn demo(d: idp_deploy::KubeDeployer) {
    /// let d = d.keep_history(5);
    /// # }
    /// ```
    pub fn keep_history(mut self, n: usize) -> Self {
        self.keep = n.max(1);
        self
    }

    /// How long to wait for health before the deployment is `Failed` (default 300 s).
    ///
    /// ```no_run
    /// # fn demo(d: idp_deploy::KubeDeployer) {
    /// let d = d.health_timeout(std::time::Duration::from_secs(60));
    /// # }
    /// ```
    pub fn health_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server-side apply field manager (default `idp-deployer`).
    ///
    /// ```no_run
    /// # fn demo(d: idp_deploy::KubeDeployer) {
    /// let d = d.field_manager("platform");
    /// # }
    /// ```
    pub fn field_manager(mut self, manager: impl Into<String>) -> Self {
        self.field_manager = manager.into();
        self
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.cluster.client().clone(), &self.namespace)
    }

    fn applier(&self, key: &str) -> Result<Applier> {
        let inventory = Inventory::new(&self.namespace, &format!("release-{key}"))?;
        let mut applier = Applier::new(self.cluster.clone(), inventory)
            .with_field_manager(self.field_manager.clone())
            .with_force(true);
        if let Some(ns) = &self.default_namespace {
            applier = applier.with_default_namespace(ns.clone());
        }
        Ok(applier)
    }

    /// Records of one component and environment with their Secrets, newest first.
    async fn load(&self, key: &str) -> Result<Vec<(Secret, Record)>> {
        let params = ListParams::default().labels(&format!("{RELEASE_OF_LABEL}={key}"));
        let what = format!("list release records in namespace {}", self.namespace);
        let api = self.secrets();
        let list = self
            .cluster
            .retry()
            .run(&what, || api.list(&params))
            .await?;
        let mut out = Vec::new();
        for secret in list.items {
            let name = secret.metadata.name.clone().unwrap_or_default();
            let Some(bytes) = secret.data.as_ref().and_then(|d| d.get("release")) else {
                tracing::warn!(secret = %name, "release record without data; skipped");
                continue;
            };
            match decode(&bytes.0) {
                Ok(record) => out.push((secret, record)),
                Err(e) => {
                    tracing::warn!(secret = %name, error = %e.report(), "unreadable release record; skipped");
                }
            }
        }
        out.sort_by_key(|(_, r)| std::cmp::Reverse(r.version));
        Ok(out)
    }

    async fn save(&self, key: &str, record: &Record, existing: Option<&Secret>) -> Result<()> {
        let name = format!("idp.release.v1.{key}.v{}", record.version);
        let mut data = BTreeMap::new();
        data.insert("release".to_owned(), ByteString(encode(record)?));
        let labels: BTreeMap<String, String> = [
            (RELEASE_OF_LABEL.to_owned(), key.to_owned()),
            (RELEASE_VERSION_LABEL.to_owned(), record.version.to_string()),
            (
                labels::MANAGED_BY.to_owned(),
                labels::MANAGED_BY_VALUE.to_owned(),
            ),
            (
                labels::ENVIRONMENT.to_owned(),
                record.deployment.environment.to_string(),
            ),
            ("owner".to_owned(), "idp".to_owned()),
        ]
        .into();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                resource_version: existing.and_then(|s| s.metadata.resource_version.clone()),
                ..ObjectMeta::default()
            },
            type_: Some(RELEASE_SECRET_TYPE.to_owned()),
            data: Some(data),
            ..Secret::default()
        };
        let what = format!("write release record {}/{name}", self.namespace);
        let api = self.secrets();
        let result = if existing.is_some() {
            api.replace(&name, &PostParams::default(), &secret).await
        } else {
            api.create(&PostParams::default(), &secret).await
        };
        result.map(|_| ()).map_err(|e| from_kube(e, &what))
    }

    async fn set_status(
        &self,
        key: &str,
        secret: &Secret,
        record: &Record,
        status: DeploymentStatus,
    ) -> Result<()> {
        if record.deployment.status == status {
            return Ok(());
        }
        let mut record = record.clone();
        record.deployment.status = status;
        self.save(key, &record, Some(secret)).await
    }

    #[tracing::instrument(name = "kube_deployer.deploy", skip_all, fields(component = %release.component, environment = %release.environment))]
    async fn deploy_as(&self, release: &Release, replaces: DeploymentStatus) -> Result<Deployment> {
        let key = release_key(&release.component, &release.environment);
        let records = self.load(&key).await?;
        let version = records.first().map_or(1, |(_, r)| r.version + 1);
        let applier = self.applier(&key)?;
        let mut deployment = Deployment {
            id: DeploymentId::new(format!("{key}.v{version}")),
            component: release.component.clone(),
            environment: release.environment.clone(),
            revision: format!("idp.release.v1.{key}.v{version}"),
            source_revision: release.source_revision.clone(),
            author: release.author.clone(),
            message: release.message.clone(),
            status: DeploymentStatus::Progressing,
            created_at: release.created_at,
        };
        // Applying or pruning failed: recorded as failed, returned as an error. Not
        // healthy in time (or Degraded): recorded and returned as a failed deployment.
        let applied: Result<Vec<idp_core::ObjectRef>> = async {
            let report = applier.apply(&release.manifests).await?;
            if !release.manifests.is_empty() {
                applier
                    .prune(&release.manifests, &PruneOptions::default())
                    .await?;
            }
            Ok(report.refs())
        }
        .await;
        let outcome = match &applied {
            Ok(refs) => match wait_healthy(&self.cluster, refs, self.timeout).await {
                Ok(_) => DeploymentStatus::Succeeded,
                Err(e) => {
                    tracing::warn!(error = %e.report(), "release did not become healthy");
                    DeploymentStatus::Failed
                }
            },
            Err(_) => DeploymentStatus::Failed,
        };
        deployment.status = outcome;
        let record = Record {
            version,
            deployment: deployment.clone(),
            manifests: release.manifests.iter().map(Object::to_value).collect(),
        };
        self.save(&key, &record, None).await?;
        if let Some((secret, previous)) = records.first()
            && previous.deployment.status == DeploymentStatus::Succeeded
        {
            self.set_status(&key, secret, previous, replaces).await?;
        }
        for (secret, _) in records.iter().skip(self.keep.saturating_sub(1)) {
            if let Some(name) = &secret.metadata.name {
                let what = format!("delete old release record {}/{name}", self.namespace);
                match self.secrets().delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) => {
                        let e = from_kube(e, &what);
                        if e.kind() != ErrorKind::NotFound {
                            return Err(e);
                        }
                    }
                }
            }
        }
        match applied {
            Ok(_) => Ok(deployment),
            Err(e) => Err(e.context(format_args!(
                "deploy {} (recorded as failed: {})",
                release.component, deployment.id
            ))),
        }
    }
}

#[async_trait]
impl Deployer for KubeDeployer {
    async fn deploy(&self, release: &Release) -> Result<Deployment> {
        self.deploy_as(release, DeploymentStatus::Superseded).await
    }

    #[tracing::instrument(name = "kube_deployer.history", skip_all, fields(component = %query.component, environment = %query.environment))]
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<Deployment>> {
        let key = release_key(&query.component, &query.environment);
        let records = self.load(&key).await?;
        let limit = query.limit.unwrap_or(usize::MAX);
        Ok(records
            .into_iter()
            .take(limit)
            .map(|(_, r)| r.deployment)
            .collect())
    }

    #[tracing::instrument(name = "kube_deployer.rollback", skip_all, fields(component = %component, environment = %environment, to = %to))]
    async fn rollback(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        to: &DeploymentId,
    ) -> Result<Deployment> {
        let key = release_key(component, environment);
        let records = self.load(&key).await?;
        let Some((_, target)) = records.iter().find(|(_, r)| &r.deployment.id == to) else {
            return Err(Error::not_found(format!(
                "no release {to} of {component} in {environment}: the history keeps the newest records only; list them with history()"
            )));
        };
        let mut manifests = ManifestSet::new();
        for value in &target.manifests {
            manifests.push(Object::from_value(value.clone())?);
        }
        let mut release = Release::new(component.clone(), environment.clone(), manifests)
            .with_message(format!("rollback to {to}"));
        if let Some(rev) = &target.deployment.source_revision {
            release = release.with_source_revision(rev.clone());
        }
        if let Some(author) = &target.deployment.author {
            release = release.with_author(author.clone());
        }
        self.deploy_as(&release, DeploymentStatus::RolledBack).await
    }
}

/// A label-safe key for a component in an environment: a readable slug plus a hash.
fn release_key(component: &EntityRef, environment: &EnvironmentName) -> String {
    let full = format!("{component}|{environment}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in full.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let slug = idp_core::slugify(&format!("{}-{environment}", component.name()), 40);
    format!("{slug}-{:010x}", hash & 0xff_ffff_ffff)
}

fn encode(record: &Record) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(record)
        .map_err(|e| Error::internal("encode release record").with_source(e))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json)?;
    Ok(gz.finish()?)
}

fn decode(bytes: &[u8]) -> Result<Record> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut json)?;
    serde_json::from_slice(&json)
        .map_err(|e| Error::invalid_input("release record is not valid JSON").with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_label_values_and_distinct() {
        let a = release_key(
            &"component:default/cart".parse().unwrap(),
            &"prod".parse().unwrap(),
        );
        let b = release_key(
            &"component:other/cart".parse().unwrap(),
            &"prod".parse().unwrap(),
        );
        assert_ne!(a, b);
        assert!(
            a.len() <= 63 && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{a}"
        );
    }
}
