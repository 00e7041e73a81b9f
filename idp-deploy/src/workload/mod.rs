//! Workload specs and rendering: a developer's [Score](https://score.dev) file in,
//! Kubernetes objects for one environment out.
//!
//! Start with [`Workload::from_file`] and [`EnvironmentProfile::from_file`], then call
//! [`render`] with a [`ResourceProvisioner`] — [`CompositeProvisioner::with_defaults`]
//! serves the `environment` and `service` resource types; add [`StaticOutputs`] for
//! outputs your infrastructure templates produce. [`render_file`] does all three for one
//! Score file.
//!
//! - [`score`]: the Score v1b1 types, parsed strictly (unknown fields are errors with
//!   `file:line:column`).
//! - [`EnvironmentProfile`]: what differs per environment (replicas, resources, ingress,
//!   autoscaling, disruption budget, scheduling, labels).
//! - [`ResourceProvisioner`]: where `${resources.<name>.<output>}` values come from.
//! - [`render`]: Deployment, Service, ConfigMaps for files, and optional Ingress,
//!   HorizontalPodAutoscaler and PodDisruptionBudget, byte-identical for the same input.
//!
//! Placeholders follow Score: `${metadata.<key>}` and `${resources.<name>.<output>}` in
//! container `variables`, file contents (unless `noExpand`) and volume sources; `$$` is a
//! literal `$`, and `\.` a dot inside a key. A placeholder that cannot be resolved is an
//! error naming the container, the field and the placeholder.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use idp_deploy::workload::{render, CompositeProvisioner, EnvironmentProfile, RenderContext, Workload};
//!
//! let workload = Workload::from_yaml(
//!     "apiVersion: score.dev/v1b1\nmetadata: {name: hello}\ncontainers: {app: {image: nginx:1.27}}\n",
//!     None,
//! )?;
//! let set = render(&workload, &EnvironmentProfile::default(),
//!                  &CompositeProvisioner::with_defaults(), &RenderContext::new()).await?;
//! assert_eq!(set.objects()[0].kind(), "Deployment");
//! # Ok::<(), idp_core::Error>(())
//! # }).unwrap();
//! ```

mod placeholder;
mod profile;
mod provision;
mod render;
pub mod score;
mod yaml;

pub use placeholder::expand_placeholders;
pub use profile::{
    Autoscaling, ContainerOverride, DisruptionBudget, EnvironmentProfile, IngressProfile,
    ResourceOverride, Toleration,
};
pub use provision::{
    CompositeProvisioner, EnvironmentValues, Outputs, ProvisionRequest, ResourceProvisioner,
    ServiceDns, StaticOutputs,
};
pub use render::{CONFIG_HASH_ANNOTATION, RenderContext, render, render_file};
pub use score::{
    Container, ContainerResources, ExecProbe, File, HttpHeader, HttpProbe, Probe, Protocol,
    ResourceList, ResourceSpec, SCORE_API_VERSION, Service, ServicePort, Volume, Workload,
    WorkloadMetadata,
};
pub(crate) use yaml::parse as parse_yaml;
