//! Hand-over manifests for teams that already run Argo CD or Flux: the objects that point
//! a cluster at one environment folder of the GitOps repository.

use idp_core::{EntityRef, EnvironmentName, Object, Result};
use serde_json::json;

use super::Layout;

/// What to generate next to each release, so an Argo CD or Flux installation syncs the
/// folder the [`GitOpsDeployer`](super::GitOpsDeployer) writes.
///
/// The hand-over file is written in the same commit as the release, at
/// `<folder>/<file>` where `<folder>` comes from [`Handover::layout`] (default
/// `clusters/{env}/{component}`, which must differ from the release layout: the release
/// folder holds the release's objects and nothing else).
///
/// ```
/// use idp_deploy::gitops::{Handover, ArgoCdOptions};
/// let h = Handover::argo_cd(ArgoCdOptions::new("https://git.example.com/platform/gitops.git"));
/// assert_eq!(h.file_name(), "argocd-application.yaml");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    kind: HandoverKind,
    layout: Layout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HandoverKind {
    ArgoCd(ArgoCdOptions),
    Flux(FluxOptions),
}

impl Handover {
    /// The default folder template for hand-over files.
    pub const DEFAULT_LAYOUT: &'static str = "clusters/{env}/{component}";

    /// Generate an Argo CD `Application` per component and environment.
    ///
    /// ```
    /// let h = idp_deploy::gitops::Handover::argo_cd(idp_deploy::gitops::ArgoCdOptions::new("file:///srv/gitops.git"));
    /// # let _ = h;
    /// ```
    pub fn argo_cd(options: ArgoCdOptions) -> Self {
        Self {
            kind: HandoverKind::ArgoCd(options),
            layout: Self::default_layout(),
        }
    }

    /// Generate a Flux `GitRepository` and `Kustomization` per component and environment.
    ///
    /// ```
    /// let h = idp_deploy::gitops::Handover::flux(idp_deploy::gitops::FluxOptions::new("https://git.example.com/gitops.git"));
    /// assert_eq!(h.file_name(), "flux-kustomization.yaml");
    /// ```
    pub fn flux(options: FluxOptions) -> Self {
        Self {
            kind: HandoverKind::Flux(options),
            layout: Self::default_layout(),
        }
    }

    fn default_layout() -> Layout {
        Layout::new(Self::DEFAULT_LAYOUT).unwrap_or_default()
    }

    /// Put hand-over files in folders from this template instead.
    ///
    /// ```
    /// use idp_deploy::gitops::{ArgoCdOptions, Handover, Layout};
    /// let h = Handover::argo_cd(ArgoCdOptions::new("u")).layout(Layout::new("argocd/{env}/{component}")?);
    /// # let _ = h;
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The folder template of hand-over files.
    ///
    /// ```
    /// # use idp_deploy::gitops::{ArgoCdOptions, Handover};
    /// assert_eq!(Handover::argo_cd(ArgoCdOptions::new("u")).folder_layout().template(), "clusters/{env}/{component}");
    /// ```
    pub fn folder_layout(&self) -> &Layout {
        &self.layout
    }

    /// The file name inside the hand-over folder.
    ///
    /// ```
    /// # use idp_deploy::gitops::{FluxOptions, Handover};
    /// assert_eq!(Handover::flux(FluxOptions::new("u")).file_name(), "flux-kustomization.yaml");
    /// ```
    pub fn file_name(&self) -> &'static str {
        match self.kind {
            HandoverKind::ArgoCd(_) => "argocd-application.yaml",
            HandoverKind::Flux(_) => "flux-kustomization.yaml",
        }
    }

    /// The objects for `component` in `environment` whose manifests are at `path`.
    ///
    /// ```
    /// # use idp_deploy::gitops::{ArgoCdOptions, Handover};
    /// let h = Handover::argo_cd(ArgoCdOptions::new("https://git.example.com/gitops.git"));
    /// let objects = h.objects(&"component:default/cart".parse()?, &"prod".parse()?, "envs/prod/cart", "main")?;
    /// assert_eq!(objects[0].kind(), "Application");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn objects(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        path: &str,
        branch: &str,
    ) -> Result<Vec<Object>> {
        match &self.kind {
            HandoverKind::ArgoCd(o) => Ok(vec![argo_cd_application(
                o,
                component,
                environment,
                path,
                branch,
            )?]),
            HandoverKind::Flux(o) => flux_objects(o, component, environment, path, branch),
        }
    }
}

/// Settings of a generated Argo CD `Application` (`argoproj.io/v1alpha1`).
///
/// ```
/// let o = idp_deploy::gitops::ArgoCdOptions::new("https://git.example.com/gitops.git");
/// assert_eq!(o.namespace, "argocd");
/// assert!(o.prune && o.self_heal);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArgoCdOptions {
    /// `spec.source.repoURL`: the GitOps repository as the cluster reaches it.
    pub repo_url: String,
    /// `spec.source.targetRevision`; `None`: the deployer's branch.
    pub target_revision: Option<String>,
    /// Namespace of the `Application` object (where Argo CD runs).
    pub namespace: String,
    /// `spec.project`.
    pub project: String,
    /// `spec.destination.server`.
    pub destination_server: String,
    /// `spec.destination.namespace` for objects without a namespace; `None` leaves it out.
    pub destination_namespace: Option<String>,
    /// `spec.syncPolicy.automated.prune`: delete objects removed from Git.
    pub prune: bool,
    /// `spec.syncPolicy.automated.selfHeal`: revert changes made in the cluster.
    pub self_heal: bool,
}

impl ArgoCdOptions {
    /// Defaults: namespace `argocd`, project `default`, the in-cluster API server, automated
    /// sync with prune and self-heal.
    ///
    /// ```
    /// let o = idp_deploy::gitops::ArgoCdOptions::new("u");
    /// assert_eq!(o.destination_server, "https://kubernetes.default.svc");
    /// ```
    pub fn new(repo_url: impl Into<String>) -> Self {
        Self {
            repo_url: repo_url.into(),
            target_revision: None,
            namespace: "argocd".into(),
            project: "default".into(),
            destination_server: "https://kubernetes.default.svc".into(),
            destination_namespace: None,
            prune: true,
            self_heal: true,
        }
    }
}

/// Settings of generated Flux objects (`source.toolkit.fluxcd.io/v1` `GitRepository` and
/// `kustomize.toolkit.fluxcd.io/v1` `Kustomization`).
///
/// ```
/// let o = idp_deploy::gitops::FluxOptions::new("https://git.example.com/gitops.git");
/// assert_eq!((o.namespace.as_str(), o.interval.as_str()), ("flux-system", "10m"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FluxOptions {
    /// `GitRepository.spec.url`.
    pub repo_url: String,
    /// `GitRepository.spec.ref.branch`; `None`: the deployer's branch.
    pub branch: Option<String>,
    /// Namespace of both objects.
    pub namespace: String,
    /// `GitRepository.spec.interval` (how often to fetch).
    pub source_interval: String,
    /// `Kustomization.spec.interval` (how often to reconcile).
    pub interval: String,
    /// `Kustomization.spec.prune`.
    pub prune: bool,
    /// `Kustomization.spec.targetNamespace`; `None` leaves it out.
    pub target_namespace: Option<String>,
}

impl FluxOptions {
    /// Defaults: namespace `flux-system`, fetch every `1m`, reconcile every `10m`, prune.
    ///
    /// ```
    /// assert!(idp_deploy::gitops::FluxOptions::new("u").prune);
    /// ```
    pub fn new(repo_url: impl Into<String>) -> Self {
        Self {
            repo_url: repo_url.into(),
            branch: None,
            namespace: "flux-system".into(),
            source_interval: "1m".into(),
            interval: "10m".into(),
            prune: true,
            target_namespace: None,
        }
    }
}

/// `<component>-<env>`, cut to a valid object name.
fn object_name(component: &EntityRef, environment: &EnvironmentName) -> String {
    idp_core::slugify(
        &format!("{}-{}", component.name(), environment.as_str()),
        63,
    )
}

/// An Argo CD `Application` syncing `path` of the repository into the cluster.
///
/// ```
/// use idp_deploy::gitops::{argo_cd_application, ArgoCdOptions};
/// let app = argo_cd_application(
///     &ArgoCdOptions::new("https://git.example.com/gitops.git"),
///     &"component:default/cart".parse()?, &"prod".parse()?, "envs/prod/cart", "main",
/// )?;
/// assert_eq!(app.api_version(), "argoproj.io/v1alpha1");
/// assert_eq!(app.pointer("/spec/source/path").unwrap(), "envs/prod/cart");
/// assert_eq!(app.pointer("/spec/syncPolicy/automated/selfHeal").unwrap(), true);
/// # Ok::<(), idp_core::Error>(())
/// ```
pub fn argo_cd_application(
    options: &ArgoCdOptions,
    component: &EntityRef,
    environment: &EnvironmentName,
    path: &str,
    branch: &str,
) -> Result<Object> {
    let mut destination = json!({"server": options.destination_server});
    if let Some(ns) = &options.destination_namespace {
        destination["namespace"] = ns.clone().into();
    }
    Object::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": object_name(component, environment),
            "namespace": options.namespace,
            "labels": labels(component, environment),
        },
        "spec": {
            "project": options.project,
            "source": {
                "repoURL": options.repo_url,
                "path": path,
                "targetRevision": options.target_revision.as_deref().unwrap_or(branch),
            },
            "destination": destination,
            "syncPolicy": {
                "automated": {"prune": options.prune, "selfHeal": options.self_heal},
            },
        },
    }))
}

/// A Flux `GitRepository` for the repository and a `Kustomization` applying `path`.
///
/// ```
/// use idp_deploy::gitops::{flux_objects, FluxOptions};
/// let objects = flux_objects(
///     &FluxOptions::new("https://git.example.com/gitops.git"),
///     &"component:default/cart".parse()?, &"prod".parse()?, "envs/prod/cart", "main",
/// )?;
/// assert_eq!(objects[0].kind(), "GitRepository");
/// assert_eq!(objects[1].pointer("/spec/path").unwrap(), "./envs/prod/cart");
/// assert_eq!(objects[1].pointer("/spec/sourceRef/kind").unwrap(), "GitRepository");
/// # Ok::<(), idp_core::Error>(())
/// ```
pub fn flux_objects(
    options: &FluxOptions,
    component: &EntityRef,
    environment: &EnvironmentName,
    path: &str,
    branch: &str,
) -> Result<Vec<Object>> {
    let name = object_name(component, environment);
    let source = Object::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": options.namespace, "labels": labels(component, environment)},
        "spec": {
            "interval": options.source_interval,
            "url": options.repo_url,
            "ref": {"branch": options.branch.as_deref().unwrap_or(branch)},
        },
    }))?;
    let mut spec = json!({
        "interval": options.interval,
        "path": format!("./{path}"),
        "prune": options.prune,
        "sourceRef": {"kind": "GitRepository", "name": name},
    });
    if let Some(ns) = &options.target_namespace {
        spec["targetNamespace"] = ns.clone().into();
    }
    let kustomization = Object::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": options.namespace, "labels": labels(component, environment)},
        "spec": spec,
    }))?;
    Ok(vec![source, kustomization])
}

fn labels(component: &EntityRef, environment: &EnvironmentName) -> serde_json::Value {
    json!({
        "app.kubernetes.io/managed-by": "idp",
        "app.kubernetes.io/name": component.name(),
        "idp.dev/environment": environment.as_str(),
    })
}
