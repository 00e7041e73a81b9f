//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! The protocol is the one client-go's leader election uses, so our replicas and
//! `kubectl get lease` agree on who leads: the holder writes its identity in
//! `spec.holderIdentity` and refreshes `spec.renewTime` every retry period; a candidate
//! takes the Lease over only when `renewTime + leaseDurationSeconds` has passed,
//! incrementing `spec.leaseTransitions` and setting `spec.acquireTime`. Every write is a
//! `replace` carrying the `resourceVersion` it read, so two candidates racing for an
//! expired Lease cannot both win (the loser gets `409 Conflict`). A holder that cannot
//! renew for `renew_deadline` (shorter than the lease duration) stops leading before
//! anyone else may start; on shutdown it releases the Lease (empty holder) so a
//! successor need not wait for expiry.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use idp_core::cluster::errors::from_kube;
use idp_core::{Error, ErrorKind, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// Which Lease to hold, as whom, and the timings.
///
/// ```
/// let c = idp_deploy::ha::LeaseConfig::new("platform", "idp-reconciler", "pod-a");
/// assert!(c.renew_deadline < c.lease_duration);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (the pod name is a good choice); must be unique.
    pub identity: String,
    /// How long a holder's claim lasts after its last renewal (default 15 s).
    pub lease_duration: Duration,
    /// How long the holder keeps leading while renewals fail (default 10 s; must be
    /// shorter than `lease_duration`).
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew (default 2 s).
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// A config with client-go's default timings (15 s / 10 s / 2 s).
    ///
    /// ```
    /// let c = idp_deploy::ha::LeaseConfig::new("platform", "lock", "me");
    /// assert_eq!(c.lease_duration.as_secs(), 15);
    /// ```
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Set the three timings at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = idp_deploy::ha::LeaseConfig::new("p", "l", "me")
    ///     .with_timings(Duration::from_secs(3), Duration::from_secs(2), Duration::from_millis(200));
    /// assert_eq!(c.retry_period, Duration::from_millis(200));
    /// ```
    pub fn with_timings(
        mut self,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Self {
        self.lease_duration = lease_duration;
        self.renew_deadline = renew_deadline;
        self.retry_period = retry_period;
        self
    }
}

/// Campaigns for one Lease; see the [`ha` module docs](crate::ha).
#[derive(Debug, Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl LeaderElector {
    /// An elector for `config` through `client`.
    ///
    /// ```no_run
    /// # fn demo(client: kube::Client) -> idp_core::Result<()> {
    /// use idp_deploy::ha::{LeaderElector, LeaseConfig};
    /// let elector = LeaderElector::new(client, LeaseConfig::new("platform", "idp-reconciler", "pod-a"))?;
    /// # Ok(()) }
    /// ```
    pub fn new(client: kube::Client, config: LeaseConfig) -> Result<Self> {
        if config.renew_deadline >= config.lease_duration {
            return Err(Error::invalid_input(format!(
                "lease {}/{}: renew_deadline ({:?}) must be shorter than lease_duration ({:?}), or two replicas could lead at once",
                config.namespace, config.name, config.renew_deadline, config.lease_duration
            )));
        }
        if config.identity.is_empty() {
            return Err(Error::invalid_input(format!(
                "lease {}/{}: the identity is empty; use the pod name",
                config.namespace, config.name
            )));
        }
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        })
    }

    /// The config.
    ///
    /// ```no_run
    /// # fn demo(e: idp_deploy::ha::LeaderElector) {
    /// println!("{}", e.config().identity);
    /// # }
    /// ```
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn what(&self) -> String {
        format!("lease {}/{}", self.config.namespace, self.config.name)
    }

    /// One attempt: create the Lease, renew it if we hold it, or take it over if it
    /// expired. `Ok(true)` when we hold it afterwards.
    ///
    /// ```no_run
    /// # async fn demo(e: idp_deploy::ha::LeaderElector) -> idp_core::Result<()> {
    /// if e.try_acquire_or_renew().await? { println!("leading"); }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "lease.acquire_or_renew", skip_all, fields(lease = %self.config.name, identity = %self.config.identity))]
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let what = self.what();
        let now = MicroTime(jiff::Timestamp::now());
        let me = &self.config.identity;
        let duration =
            i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let existing = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| from_kube(e, &what))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    tracing::info!("acquired a new lease");
                    Ok(true)
                }
                Err(e) => lost_race(from_kube(e, &what)),
            };
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() != Some(me.as_str()) {
            let held_for = i64::from(spec.lease_duration_seconds.unwrap_or(duration));
            let expires = spec
                .renew_time
                .as_ref()
                .map(|t| t.0 + jiff::SignedDuration::from_secs(held_for));
            let expired = expires.is_none_or(|e| e <= now.0);
            if holder.is_some() && !expired {
                return Ok(false);
            }
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.acquire_time = Some(now.clone());
            spec.holder_identity = Some(me.clone());
            tracing::info!(
                previous = holder.as_deref().unwrap_or("-"),
                "taking over the lease"
            );
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(duration);
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => lost_race(from_kube(e, &what)),
        }
    }

    /// Give the Lease up if we hold it (empty holder), so a successor need not wait.
    ///
    /// ```no_run
    /// # async fn demo(e: idp_deploy::ha::LeaderElector) -> idp_core::Result<()> {
    /// e.release().await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "lease.release", skip_all, fields(lease = %self.config.name, identity = %self.config.identity))]
    pub async fn release(&self) -> Result<()> {
        let what = self.what();
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| from_kube(e, &what))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match lost_race(from_kube(e, &what)) {
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
        }
    }

    /// Campaign in the background until [`LeaderHandle::shutdown`].
    ///
    /// ```no_run
    /// # async fn demo(e: idp_deploy::ha::LeaderElector) {
    /// let handle = e.spawn();
    /// let mut leading = handle.subscribe();
    /// leading.wait_for(|l| *l).await.ok();
    /// handle.shutdown().await;
    /// # }
    /// ```
    pub fn spawn(self) -> LeaderHandle {
        let (tx, rx) = watch::channel(false);
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let span = tracing::info_span!("leader_election", lease = %self.config.name, identity = %self.config.identity);
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let mut last_renew: Option<Instant> = None;
                loop {
                    match self.try_acquire_or_renew().await {
                        Ok(true) => {
                            last_renew = Some(Instant::now());
                            if !*tx.borrow() {
                                tracing::info!("started leading");
                            }
                            tx.send_replace(true);
                        }
                        Ok(false) => {
                            if *tx.borrow() {
                                tracing::warn!("lost the lease to another replica");
                            }
                            tx.send_replace(false);
                        }
                        Err(e) => {
                            let overdue = last_renew
                                .is_none_or(|t| t.elapsed() >= self.config.renew_deadline);
                            if *tx.borrow() && overdue {
                                tracing::warn!(error = %e.report(), "could not renew the lease before the deadline; stopped leading");
                                tx.send_replace(false);
                            } else {
                                tracing::debug!(error = %e.report(), "lease attempt failed");
                            }
                        }
                    }
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        () = tokio::time::sleep(self.config.retry_period) => {}
                    }
                }
                tx.send_replace(false);
                if let Err(e) = self.release().await {
                    tracing::warn!(error = %e.report(), "could not release the lease; it expires by itself");
                }
            },
            span,
        ));
        LeaderHandle {
            leading: rx,
            stop: stop_tx,
            task: Mutex::new(Some(task)),
        }
    }
}

/// A lost race (conflict, already exists) means someone else holds the Lease.
fn lost_race(e: Error) -> Result<bool> {
    if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::AlreadyExists) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// A running election; see [`LeaderElector::spawn`].
#[derive(Debug)]
pub struct LeaderHandle {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl LeaderHandle {
    /// Whether this replica leads now.
    ///
    /// ```no_run
    /// # fn demo(h: idp_deploy::ha::LeaderHandle) {
    /// if h.is_leader() { println!("leading"); }
    /// # }
    /// ```
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// A receiver that follows leadership (give it to a reconciler).
    ///
    /// ```no_run
    /// # fn demo(h: idp_deploy::ha::LeaderHandle) {
    /// let rx = h.subscribe();
    /// # }
    /// ```
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stop campaigning, release the Lease if held, and wait for that.
    ///
    /// ```no_run
    /// # async fn demo(h: idp_deploy::ha::LeaderHandle) {
    /// h.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for LeaderHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
