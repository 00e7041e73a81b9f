//! The delivery area's background work: one GitOps [`Reconciler`] per environment,
//! applying that environment's folder of the GitOps repository into the cluster, behind a
//! leader-election Lease so two replicas never both apply.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use idp_core::cluster::errors::from_kube;
use idp_core::cluster::{Cluster, Inventory};
use idp_core::{EnvironmentName, ErrorKind, PolicyContext};
use idp_deploy::ha::{LeaderElector, LeaderHandle, LeaseConfig};
use idp_deploy::reconcile::{
    GitSource, PlainYamlRenderer, ReconcileStatus, Reconciler, ReconcilerHandle,
};
use idp_policy::PolicySet;
use idp_policy::mutate::Mutations;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

/// What [`start`] needs for one environment.
#[derive(Debug, Clone)]
pub struct EnvTarget {
    /// The environment.
    pub name: EnvironmentName,
    /// Its namespace.
    pub namespace: String,
    /// Its folder in the GitOps repository.
    pub folder: String,
}

/// The running reconcilers and the leader election.
#[derive(Debug)]
pub struct Background {
    reconcilers: Mutex<BTreeMap<String, ReconcilerHandle>>,
    leader: Mutex<Option<LeaderHandle>>,
}

/// Everything [`start`] needs.
pub struct Settings<'a> {
    /// The cluster.
    pub client: kube::Client,
    /// Where the reconcilers fetch from (a path or URL).
    pub source_url: String,
    /// The GitOps branch.
    pub branch: String,
    /// The environments.
    pub environments: &'a [EnvTarget],
    /// Seconds between passes.
    pub interval: Duration,
    /// The Lease's namespace and name.
    pub lease: (String, String),
    /// Where the reconcilers keep their Git mirrors.
    pub workdir: &'a Path,
    /// The mutations and policies every object goes through again before it is applied.
    pub mutations: Arc<Mutations>,
    /// See `mutations`.
    pub policies: Arc<PolicySet>,
}

/// Create `name` unless it exists (a missing namespace makes every apply fail).
#[tracing::instrument(skip(client))]
pub async fn ensure_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "idp".to_owned(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = tokio::time::timeout(
        Duration::from_secs(5),
        api.create(&PostParams::default(), &ns),
    )
    .await;
    let Ok(created) = created else {
        tracing::warn!(
            namespace = name,
            "the cluster did not answer within 5 s; the reconciler retries on its own"
        );
        return;
    };
    match created {
        Ok(_) => tracing::info!(namespace = name, "created the namespace"),
        Err(e) => {
            let e = from_kube(e, format_args!("create namespace {name}"));
            if e.kind() != ErrorKind::AlreadyExists && e.kind() != ErrorKind::Conflict {
                tracing::warn!(namespace = name, error = %e.report(), "cannot create the namespace; create it yourself or grant the server that right");
            }
        }
    }
}

/// A unique identity for this replica in the Lease: the pod name when the downward API
/// gives one (`POD_NAME`), else host name, process id and start time.
fn identity() -> String {
    if let Some(pod) = std::env::var_os("POD_NAME").filter(|v| !v.is_empty()) {
        return pod.to_string_lossy().into_owned();
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "idp-server".to_owned());
    let nanos = jiff::Timestamp::now().as_nanosecond();
    format!("{host}-{}-{nanos}", std::process::id())
}

/// Start the leader election and one reconciler per environment, each following its
/// environment's folder.
///
/// # Errors
/// An invalid inventory name or workdir.
pub async fn start(settings: Settings<'_>) -> idp_core::Result<Background> {
    for env in settings.environments {
        ensure_namespace(&settings.client, &env.namespace).await;
    }
    ensure_namespace(&settings.client, &settings.lease.0).await;
    let leader = LeaderElector::new(
        settings.client.clone(),
        LeaseConfig::new(
            settings.lease.0.clone(),
            settings.lease.1.clone(),
            identity(),
        ),
    )?
    .spawn();
    let mut reconcilers = BTreeMap::new();
    for env in settings.environments {
        let inventory = Inventory::new(&env.namespace, &format!("idp-{}", env.name))?;
        let context = PolicyContext::new()
            .with_environment(env.name.clone())
            .with_namespace(env.namespace.clone());
        let reconciler = Reconciler::builder(
            Cluster::new(settings.client.clone()),
            GitSource::new(
                settings.source_url.clone(),
                settings.branch.clone(),
                env.folder.clone(),
            ),
            inventory,
        )
        .renderer(Arc::new(PlainYamlRenderer))
        .mutation(settings.mutations.clone())
        .policy(settings.policies.clone())
        .policy_context(context)
        .default_namespace(env.namespace.clone())
        // The environment folder is the whole truth: an empty one (nothing deployed yet,
        // or the last component removed) is a valid state, not a broken source. Only
        // objects this inventory applied are ever pruned, never after a fetch or render
        // error.
        .allow_empty_prune(true)
        .interval(settings.interval)
        .workdir(settings.workdir.join(env.name.as_str()))
        .leader(leader.subscribe())
        .build()?;
        tracing::info!(environment = %env.name, namespace = %env.namespace, folder = %env.folder, "starting the GitOps reconciler");
        reconcilers.insert(env.name.to_string(), reconciler.spawn());
    }
    Ok(Background {
        reconcilers: Mutex::new(reconcilers),
        leader: Mutex::new(Some(leader)),
    })
}

impl Background {
    fn with<T>(&self, environment: &str, f: impl FnOnce(&ReconcilerHandle) -> T) -> Option<T> {
        let map = self
            .reconcilers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(environment).map(f)
    }

    /// Ask the environment's reconciler for a pass now.
    pub fn reconcile_now(&self, environment: &str) {
        self.with(environment, ReconcilerHandle::reconcile_now);
    }

    /// The environment's last reconcile status.
    pub fn status(&self, environment: &str) -> Option<ReconcileStatus> {
        self.with(environment, ReconcilerHandle::status)
    }

    /// Whether this replica holds the Lease (and so applies).
    pub fn is_leader(&self) -> bool {
        self.leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(LeaderHandle::is_leader)
    }

    /// Wait up to `timeout` for the environment's reconciler to have applied `commit`
    /// and report it synced and healthy; the last status either way.
    pub async fn wait_for_revision(
        &self,
        environment: &str,
        commit: &str,
        timeout: Duration,
    ) -> Option<ReconcileStatus> {
        let mut rx = self.with(environment, ReconcilerHandle::subscribe)?;
        let wait = async {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if s.revision.as_deref() == Some(commit) && s.is_ready() {
                        return;
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.status(environment)
    }

    /// Stop every reconciler (each finishes its pass), then give the Lease up.
    pub async fn shutdown(&self) {
        let reconcilers = std::mem::take(
            &mut *self
                .reconcilers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (env, handle) in reconcilers {
            tracing::info!(environment = %env, "stopping the GitOps reconciler");
            handle.shutdown().await;
        }
        let leader = self
            .leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(leader) = leader {
            leader.shutdown().await;
            tracing::info!("released the reconciler Lease");
        }
    }
}
