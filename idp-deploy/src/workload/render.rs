//! Rendering a Score workload for one environment into Kubernetes objects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use idp_core::cluster::labels;
use idp_core::{Error, ManifestSet, Object, Result};
use serde_json::{Map, Value, json};
use tracing::Instrument as _;

use super::placeholder::{Scope, expand_placeholders};
use super::profile::EnvironmentProfile;
use super::provision::{ProvisionRequest, ResourceProvisioner};
use super::score::{Container, File, Probe, Workload};

/// The annotation on the pod template that changes whenever a mounted file changes, so
/// the Deployment rolls its pods (the ConfigMaps are mounted with `subPath`, which
/// Kubernetes does not refresh in running pods).
///
/// ```
/// assert_eq!(idp_deploy::workload::CONFIG_HASH_ANNOTATION, "idp.dev/config-hash");
/// ```
pub const CONFIG_HASH_ANNOTATION: &str = "idp.dev/config-hash";

/// What the caller knows about a rendering besides the workload and the profile.
///
/// ```
/// let ctx = idp_deploy::workload::RenderContext::new()
///     .with_namespace("shop")
///     .with_owner("group:default/team-a")
///     .with_part_of("webshop")
///     .with_image("ghcr.io/acme/cart:1.4");
/// assert_eq!(ctx.namespace.as_deref(), Some("shop"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderContext {
    /// The namespace; wins over the profile's. `default` when neither sets one.
    pub namespace: Option<String>,
    /// The environment's name; wins over the profile's `name`.
    pub environment: Option<String>,
    /// The owning team (a name or a catalog ref such as `group:default/team-a`; the label
    /// `idp.dev/owner` gets its name part).
    pub owner: Option<String>,
    /// The larger application (`app.kubernetes.io/part-of`).
    pub part_of: Option<String>,
    /// The image for containers whose image is `.` (Score's "supplied at deploy time").
    pub image: Option<String>,
    /// Where `source` paths of files are relative to (the Score file's folder).
    pub base_dir: Option<PathBuf>,
}

impl RenderContext {
    /// Nothing known.
    ///
    /// ```
    /// assert!(idp_deploy::workload::RenderContext::new().owner.is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the namespace.
    ///
    /// ```
    /// let c = idp_deploy::workload::RenderContext::new().with_namespace("shop");
    /// assert_eq!(c.namespace.as_deref(), Some("shop"));
    /// ```
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Set the environment.
    ///
    /// ```
    /// let c = idp_deploy::workload::RenderContext::new().with_environment("prod");
    /// assert_eq!(c.environment.as_deref(), Some("prod"));
    /// ```
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Set the owner.
    ///
    /// ```
    /// let c = idp_deploy::workload::RenderContext::new().with_owner("team-a");
    /// assert_eq!(c.owner.as_deref(), Some("team-a"));
    /// ```
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Set the application the workload is part of.
    ///
    /// ```
    /// let c = idp_deploy::workload::RenderContext::new().with_part_of("webshop");
    /// assert_eq!(c.part_of.as_deref(), Some("webshop"));
    /// ```
    pub fn with_part_of(mut self, part_of: impl Into<String>) -> Self {
        self.part_of = Some(part_of.into());
        self
    }

    /// Set the image for `.` containers.
    ///
    /// ```
    /// let c = idp_deploy::workload::RenderContext::new().with_image("nginx:1.27");
    /// assert_eq!(c.image.as_deref(), Some("nginx:1.27"));
    /// ```
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Set the folder `source` files are read from.
    ///
    /// ```
    /// let c = idp_deploy::workload::RenderContext::new().with_base_dir("svc/cart");
    /// assert!(c.base_dir.is_some());
    /// ```
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }
}

/// Render `workload` for the environment `profile` describes.
///
/// Produces, in this order: one ConfigMap per container with `files`, the Deployment,
/// a Service (when `service.ports` is set), an Ingress (when the profile has ingress
/// hosts), a HorizontalPodAutoscaler (profile `autoscaling`) and a PodDisruptionBudget
/// (profile `podDisruptionBudget`). Every object carries `app.kubernetes.io/name`,
/// `instance`, `managed-by: idp`, and — when known — `part-of`, `idp.dev/environment`
/// and `idp.dev/owner`. Each declared resource is provisioned once, in name order, before
/// any placeholder is expanded. The same inputs always give byte-identical YAML.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_deploy::workload::{render, CompositeProvisioner, EnvironmentProfile, RenderContext, Workload};
///
/// let workload = Workload::from_yaml(r#"
/// apiVersion: score.dev/v1b1
/// metadata: {name: cart}
/// containers:
///   app:
///     image: ghcr.io/acme/cart:1.4
///     variables: {REGION: "${resources.env.REGION}"}
/// service:
///   ports: {web: {port: 80, targetPort: 8080}}
/// resources:
///   env: {type: environment}
/// "#, None)?;
/// let profile = EnvironmentProfile::from_yaml("name: prod\nreplicas: 2\nenv: {REGION: eu-west-1}\n", None)?;
/// let set = render(&workload, &profile, &CompositeProvisioner::with_defaults(),
///                  &RenderContext::new().with_namespace("shop")).await?;
/// let kinds: Vec<&str> = set.iter().map(|o| o.kind()).collect();
/// assert_eq!(kinds, ["Deployment", "Service"]);
/// let deploy = &set.objects()[0];
/// assert_eq!(deploy.pointer("/spec/replicas"), Some(&serde_json::json!(2)));
/// assert_eq!(deploy.pointer("/spec/template/spec/containers/0/env/0/value"), Some(&serde_json::json!("eu-west-1")));
/// # Ok::<(), idp_core::Error>(())
/// # }).unwrap();
/// ```
pub async fn render(
    workload: &Workload,
    profile: &EnvironmentProfile,
    provisioner: &dyn ResourceProvisioner,
    ctx: &RenderContext,
) -> Result<ManifestSet> {
    let span = tracing::info_span!(
        "render",
        workload = %workload.name(),
        environment = ctx.environment.as_deref().or(profile.name.as_deref()).unwrap_or(""),
    );
    render_inner(workload, profile, provisioner, ctx)
        .instrument(span)
        .await
        .map_err(|e| e.context(format!("render workload `{}`", workload.name())))
}

/// Read a Score file and [`render`] it, with `source` files read next to it.
///
/// ```no_run
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_deploy::workload::{render_file, CompositeProvisioner, EnvironmentProfile};
/// let profile = EnvironmentProfile::from_file("envs/prod.yaml")?;
/// let set = render_file("score.yaml", &profile, &CompositeProvisioner::with_defaults()).await?;
/// println!("{}", set.to_yaml()?);
/// # Ok::<(), idp_core::Error>(())
/// # }).unwrap();
/// ```
pub async fn render_file(
    path: impl AsRef<Path>,
    profile: &EnvironmentProfile,
    provisioner: &dyn ResourceProvisioner,
) -> Result<ManifestSet> {
    let path = path.as_ref();
    let workload = Workload::from_file(path)?;
    let mut ctx = RenderContext::new();
    ctx.base_dir = Some(
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    );
    render(&workload, profile, provisioner, &ctx).await
}

/// Where and as what the workload lands.
struct Target {
    namespace: String,
    selector: Map<String, Value>,
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
}

impl Target {
    fn metadata(&self, name: &str) -> Value {
        let mut meta = Map::new();
        meta.insert("name".into(), name.into());
        meta.insert("namespace".into(), self.namespace.clone().into());
        meta.insert("labels".into(), Value::Object(self.labels.clone()));
        if !self.annotations.is_empty() {
            meta.insert(
                "annotations".into(),
                Value::Object(self.annotations.clone()),
            );
        }
        Value::Object(meta)
    }
}

async fn render_inner(
    workload: &Workload,
    profile: &EnvironmentProfile,
    provisioner: &dyn ResourceProvisioner,
    ctx: &RenderContext,
) -> Result<ManifestSet> {
    let name = workload.name().to_owned();
    let namespace = ctx
        .namespace
        .clone()
        .or_else(|| profile.namespace.clone())
        .unwrap_or_else(|| idp_core::DEFAULT_NAMESPACE.to_owned());
    let environment = ctx.environment.clone().or_else(|| profile.name.clone());

    for container in profile.containers.keys() {
        if !workload.containers.contains_key(container) {
            return Err(Error::invalid_input(format!(
                "the environment profile overrides container `{container}`, which the workload \
                 does not have (containers: {})",
                workload
                    .containers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }

    // Provision every declared resource once, in name order.
    let mut outputs = BTreeMap::new();
    for (resource_name, resource) in &workload.resources {
        let mut request = ProvisionRequest::new(&name, resource_name, resource.clone(), &namespace)
            .with_env(profile.env.clone());
        request.environment.clone_from(&environment);
        let out = provisioner.provision(&request).await.map_err(|e| {
            e.context(format!(
                "provision resource `{resource_name}` (type `{}`)",
                resource.kind
            ))
        })?;
        outputs.insert(resource_name.clone(), Value::Object(out));
    }
    let scope = Scope {
        metadata: serde_json::to_value(&workload.metadata).unwrap_or(Value::Null),
        outputs: &outputs,
    };

    let target = target(workload, profile, ctx, &namespace, environment.as_deref());

    let mut config_maps = Vec::new();
    let mut containers = Vec::new();
    let mut volumes = Vec::new();
    for (index, (container_name, container)) in workload.containers.iter().enumerate() {
        let rendered = render_container(
            index,
            container_name,
            container,
            workload,
            profile,
            ctx,
            &scope,
            &target,
        )?;
        containers.push(rendered.container);
        volumes.extend(rendered.volumes);
        config_maps.extend(rendered.config_map);
    }

    let mut pod_annotations = target.annotations.clone();
    if !config_maps.is_empty() {
        let mut hasher = idp_core::hash::Fnv1a64::new();
        for cm in &config_maps {
            hasher.write(serde_json::to_string(cm).unwrap_or_default().as_bytes());
        }
        pod_annotations.insert(
            CONFIG_HASH_ANNOTATION.into(),
            format!("{:016x}", hasher.finish()).into(),
        );
    }

    let mut pod_spec = Map::new();
    pod_spec.insert("containers".into(), Value::Array(containers));
    if !profile.node_selector.is_empty() {
        pod_spec.insert("nodeSelector".into(), json!(profile.node_selector));
    }
    if !profile.tolerations.is_empty() {
        pod_spec.insert("tolerations".into(), json!(profile.tolerations));
    }
    if !volumes.is_empty() {
        pod_spec.insert("volumes".into(), Value::Array(volumes));
    }
    let mut template_meta = Map::new();
    template_meta.insert("labels".into(), Value::Object(target.labels.clone()));
    if !pod_annotations.is_empty() {
        template_meta.insert("annotations".into(), Value::Object(pod_annotations));
    }
    let mut spec = Map::new();
    if profile.autoscaling.is_none() {
        spec.insert("replicas".into(), profile.replicas.unwrap_or(1).into());
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": target.selector.clone()}),
    );
    spec.insert(
        "template".into(),
        json!({"metadata": template_meta, "spec": pod_spec}),
    );

    let mut objects = Vec::new();
    objects.extend(config_maps);
    objects.push(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": target.metadata(&name),
        "spec": spec,
    }));

    let ports = workload
        .service
        .as_ref()
        .map(|s| &s.ports)
        .filter(|p| !p.is_empty());
    if let Some(ports) = ports {
        let ports: Vec<Value> = ports
            .iter()
            .map(|(port_name, p)| {
                json!({
                    "name": port_name,
                    "port": p.port,
                    "targetPort": p.target_port(),
                    "protocol": p.protocol().as_str(),
                })
            })
            .collect();
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": target.metadata(&name),
            "spec": {"selector": target.selector.clone(), "ports": ports},
        }));
    }

    if let Some(ingress) = profile.ingress.as_ref().filter(|i| !i.hosts.is_empty()) {
        let Some(ports) = ports else {
            return Err(Error::invalid_input(
                "the environment profile asks for an ingress, but the workload publishes no \
                 ports; add `service.ports` to the Score file or remove `ingress`",
            ));
        };
        let port_name = match &ingress.port {
            Some(p) if ports.contains_key(p) => p.clone(),
            Some(p) => {
                return Err(Error::invalid_input(format!(
                    "ingress.port `{p}` is not a port of the workload (ports: {})",
                    ports.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            None => ports.keys().next().cloned().unwrap_or_default(),
        };
        let backend = json!({"service": {"name": name, "port": {"name": port_name}}});
        let rules: Vec<Value> = ingress
            .hosts
            .iter()
            .map(|host| {
                json!({"host": host, "http": {"paths": [
                    {"path": ingress.path(), "pathType": "Prefix", "backend": backend.clone()}
                ]}})
            })
            .collect();
        let mut spec = Map::new();
        if let Some(class) = &ingress.class_name {
            spec.insert("ingressClassName".into(), class.clone().into());
        }
        spec.insert("rules".into(), Value::Array(rules));
        if let Some(secret) = &ingress.tls_secret {
            spec.insert(
                "tls".into(),
                json!([{"hosts": ingress.hosts, "secretName": secret}]),
            );
        }
        let mut metadata = target.metadata(&name);
        if !ingress.annotations.is_empty()
            && let Some(meta) = metadata.as_object_mut()
        {
            let mut all = target.annotations.clone();
            all.extend(
                ingress
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.clone()))),
            );
            meta.insert("annotations".into(), Value::Object(all));
        }
        objects.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": metadata,
            "spec": spec,
        }));
    }

    if let Some(hpa) = &profile.autoscaling {
        objects.push(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": target.metadata(&name),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": hpa.min_replicas(),
                "maxReplicas": hpa.max_replicas,
                "metrics": [{"type": "Resource", "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": hpa.target_cpu()},
                }}],
            },
        }));
    }

    if let Some(pdb) = &profile.pod_disruption_budget {
        objects.push(json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": target.metadata(&name),
            "spec": {
                "minAvailable": pdb.min_available_value(),
                "selector": {"matchLabels": target.selector.clone()},
            },
        }));
    }

    objects
        .into_iter()
        .map(Object::from_value)
        .collect::<Result<ManifestSet>>()
}

/// The labels, selector and annotations every object shares.
fn target(
    workload: &Workload,
    profile: &EnvironmentProfile,
    ctx: &RenderContext,
    namespace: &str,
    environment: Option<&str>,
) -> Target {
    let name = workload.name().to_owned();
    let instance = match environment {
        Some(env) if name.len() + env.len() < 63 => format!("{name}-{}", label_value(env)),
        _ => name.clone(),
    };
    let mut selector = Map::new();
    selector.insert(labels::NAME.into(), name.clone().into());
    selector.insert(labels::INSTANCE.into(), instance.into());

    let mut all: Map<String, Value> = profile
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    all.extend(selector.clone());
    all.insert(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into());
    if let Some(part_of) = &ctx.part_of {
        all.insert(labels::PART_OF.into(), label_value(part_of).into());
    }
    if let Some(env) = environment {
        all.insert(labels::ENVIRONMENT.into(), label_value(env).into());
    }
    if let Some(owner) = &ctx.owner {
        all.insert(labels::OWNER.into(), owner_label(owner).into());
    }

    let mut annotations: Map<String, Value> = workload
        .metadata
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    annotations.extend(
        profile
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone()))),
    );
    Target {
        namespace: namespace.to_owned(),
        selector,
        labels: all,
        annotations,
    }
}

/// The name part of an owner (`group:default/team-a` → `team-a`), as a label value.
fn owner_label(owner: &str) -> String {
    let name = owner.rsplit(['/', ':']).next().unwrap_or(owner);
    label_value(name)
}

/// `s` made a valid label value: other characters become `-`, at most 63 characters,
/// starting and ending with an alphanumeric.
fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// One container, with the pod volumes and the ConfigMap it needs.
struct RenderedContainer {
    container: Value,
    volumes: Vec<Value>,
    config_map: Option<Value>,
}

#[allow(clippy::too_many_arguments)]
fn render_container(
    index: usize,
    container_name: &str,
    container: &Container,
    workload: &Workload,
    profile: &EnvironmentProfile,
    ctx: &RenderContext,
    scope: &Scope<'_>,
    target: &Target,
) -> Result<RenderedContainer> {
    let fail = |field: &str, problem: String| {
        Error::invalid_input(format!("container `{container_name}`: {field}: {problem}"))
    };
    let expand = |field: &str, text: &str| {
        expand_placeholders(text, &mut |path| scope.resolve(path)).map_err(|e| fail(field, e))
    };
    let overrides = profile.containers.get(container_name);

    let image = match overrides.and_then(|o| o.image.as_deref()) {
        Some(image) => image.to_owned(),
        None if container.image == "." => ctx.image.clone().ok_or_else(|| {
            fail(
                "image",
                "the image is `.` (supplied at deploy time) but none was given; pass the \
                 image (idpctl: --image) or set it in the Score file"
                    .to_owned(),
            )
        })?,
        None => container.image.clone(),
    };

    let mut c = Map::new();
    c.insert("name".into(), container_name.into());
    c.insert("image".into(), image.into());
    if !container.command.is_empty() {
        c.insert("command".into(), json!(container.command));
    }
    if !container.args.is_empty() {
        c.insert("args".into(), json!(container.args));
    }

    let mut env = BTreeMap::new();
    for (key, value) in &container.variables {
        env.insert(key.clone(), expand(&format!("variables.{key}"), value)?);
    }
    for (key, value) in &profile.variables {
        env.insert(
            key.clone(),
            expand(&format!("variables.{key} (from the profile)"), value)?,
        );
    }
    if !env.is_empty() {
        let list: Vec<Value> = env
            .into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        c.insert("env".into(), Value::Array(list));
    }

    let mut requests = container
        .resources
        .as_ref()
        .map(|r| r.requests.clone())
        .unwrap_or_default();
    let mut limits = container
        .resources
        .as_ref()
        .map(|r| r.limits.clone())
        .unwrap_or_default();
    if let Some(over) = overrides.and_then(|o| o.resources.as_ref()) {
        requests.extend(over.requests.clone());
        limits.extend(over.limits.clone());
    }
    if !requests.is_empty() || !limits.is_empty() {
        let mut resources = Map::new();
        if !limits.is_empty() {
            resources.insert("limits".into(), json!(limits));
        }
        if !requests.is_empty() {
            resources.insert("requests".into(), json!(requests));
        }
        c.insert("resources".into(), Value::Object(resources));
    }

    if let Some(probe) = &container.liveness_probe {
        c.insert("livenessProbe".into(), probe_json(probe));
    }
    if let Some(probe) = &container.readiness_probe {
        c.insert("readinessProbe".into(), probe_json(probe));
    }

    let mut mounts = Vec::new();
    let mut volumes = Vec::new();
    let mut config_map = None;
    if !container.files.is_empty() {
        let cm_name = format!("{}-{container_name}-files", workload.name());
        let volume_name = short_name(&format!("{container_name}-files"), || {
            format!("files-{index}")
        });
        let mut data = Map::new();
        let mut binary = Map::new();
        let mut items = Vec::new();
        let mut files: Vec<&File> = container.files.iter().collect();
        files.sort_by(|a, b| a.target.cmp(&b.target));
        for (i, file) in files.into_iter().enumerate() {
            let field = format!("files[{}]", file.target);
            let mut key = file_key(&file.target);
            if data.contains_key(&key) || binary.contains_key(&key) {
                key = format!("{key}-{i}");
            }
            if let Some(content) = &file.binary_content {
                binary.insert(key.clone(), content.clone().into());
            } else {
                let raw = match (&file.content, &file.source) {
                    (Some(content), _) => content.clone(),
                    (None, Some(source)) => read_source(ctx, source).map_err(|e| {
                        fail(
                            &field,
                            format!("cannot read source `{source}`: {}", e.report()),
                        )
                    })?,
                    (None, None) => String::new(),
                };
                let text = if file.no_expand {
                    raw
                } else {
                    expand(&format!("{field}.content"), &raw)?
                };
                data.insert(key.clone(), text.into());
            }
            let mut item = Map::new();
            item.insert("key".into(), key.clone().into());
            item.insert("path".into(), key.clone().into());
            if let Some(mode) = file.mode_bits() {
                item.insert("mode".into(), mode.into());
            }
            items.push(Value::Object(item));
            mounts.push(json!({
                "name": volume_name,
                "mountPath": file.target,
                "subPath": key,
                "readOnly": true,
            }));
        }
        let bytes: usize = data
            .values()
            .chain(binary.values())
            .filter_map(Value::as_str)
            .map(str::len)
            .sum();
        if bytes as u64 > MAX_FILE_BYTES {
            return Err(fail(
                "files",
                format!(
                    "the files add up to {bytes} bytes; a ConfigMap holds at most 1 MiB — \
                     mount large files from a volume instead"
                ),
            ));
        }
        let mut cm = Map::new();
        cm.insert("apiVersion".into(), "v1".into());
        cm.insert("kind".into(), "ConfigMap".into());
        cm.insert("metadata".into(), target.metadata(&cm_name));
        if !data.is_empty() {
            cm.insert("data".into(), Value::Object(data));
        }
        if !binary.is_empty() {
            cm.insert("binaryData".into(), Value::Object(binary));
        }
        config_map = Some(Value::Object(cm));
        volumes.push(json!({
            "name": volume_name,
            "configMap": {"name": cm_name, "items": items},
        }));
    }
    for (i, volume) in container.volumes.iter().enumerate() {
        let claim = expand(
            &format!("volumes[{}].source", volume.target),
            &volume.source,
        )?;
        let volume_name = short_name(&format!("{container_name}-volume-{i}"), || {
            format!("volume-{index}-{i}")
        });
        let mut mount = Map::new();
        mount.insert("name".into(), volume_name.clone().into());
        mount.insert("mountPath".into(), volume.target.clone().into());
        if let Some(path) = &volume.path {
            mount.insert("subPath".into(), path.trim_start_matches('/').into());
        }
        if volume.read_only {
            mount.insert("readOnly".into(), true.into());
        }
        mounts.push(Value::Object(mount));
        let mut pvc = Map::new();
        pvc.insert("claimName".into(), claim.into());
        if volume.read_only {
            pvc.insert("readOnly".into(), true.into());
        }
        volumes.push(json!({"name": volume_name, "persistentVolumeClaim": pvc}));
    }
    if !mounts.is_empty() {
        mounts.sort_by(|a, b| {
            a["mountPath"]
                .as_str()
                .unwrap_or_default()
                .cmp(b["mountPath"].as_str().unwrap_or_default())
        });
        c.insert("volumeMounts".into(), Value::Array(mounts));
    }

    Ok(RenderedContainer {
        container: Value::Object(c),
        volumes,
        config_map,
    })
}

/// `preferred` when it is a valid DNS label length, else `fallback()`.
fn short_name(preferred: &str, fallback: impl FnOnce() -> String) -> String {
    if preferred.len() <= 63 {
        preferred.to_owned()
    } else {
        fallback()
    }
}

/// A ConfigMap key for a file target: the path without its leading `/`, other
/// characters than `[-._a-zA-Z0-9]` replaced by `_`.
fn file_key(target: &str) -> String {
    let key: String = target
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let key = key.trim_start_matches('.').to_owned();
    if key.is_empty() {
        "file".to_owned()
    } else {
        key
    }
}

/// Largest `source` file read, and largest ConfigMap rendered: Kubernetes stores at most
/// 1 MiB per object.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Read a file's `source`, which must stay inside the base folder (the Score file's):
/// a Score file from a repository must not pull arbitrary files of the machine rendering
/// it into a ConfigMap.
fn read_source(ctx: &RenderContext, source: &str) -> Result<String> {
    let base = ctx.base_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let outside = || {
        Error::invalid_input(format!(
            "`{source}` is outside the Score file's folder; give a relative path inside it"
        ))
    };
    let path = Path::new(source);
    if path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(outside());
    }
    let full = base.join(path);
    let real_base = base
        .canonicalize()
        .map_err(|e| Error::from(e).context(base.display()))?;
    let real = full
        .canonicalize()
        .map_err(|e| Error::from(e).context(full.display()))?;
    if !real.starts_with(&real_base) {
        return Err(outside());
    }
    let size = std::fs::metadata(&real)
        .map_err(|e| Error::from(e).context(full.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(Error::invalid_input(format!(
            "{} is {size} bytes; a file mounted from a ConfigMap must be under 1 MiB",
            full.display()
        )));
    }
    std::fs::read_to_string(&real).map_err(|e| Error::from(e).context(full.display()))
}

fn probe_json(probe: &Probe) -> Value {
    if let Some(http) = &probe.http_get {
        let mut get = Map::new();
        get.insert("path".into(), http.path.clone().into());
        get.insert("port".into(), http.port.into());
        if let Some(scheme) = &http.scheme {
            get.insert("scheme".into(), scheme.clone().into());
        }
        if let Some(host) = &http.host {
            get.insert("host".into(), host.clone().into());
        }
        if !http.http_headers.is_empty() {
            get.insert("httpHeaders".into(), json!(http.http_headers));
        }
        json!({"httpGet": get})
    } else if let Some(exec) = &probe.exec {
        json!({"exec": {"command": exec.command}})
    } else {
        json!({})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_labels_take_the_name_part() {
        assert_eq!(owner_label("group:default/team-a"), "team-a");
        assert_eq!(owner_label("team-b"), "team-b");
        assert_eq!(label_value("a b/c"), "a-b-c");
    }

    #[test]
    fn file_keys_are_valid_config_map_keys() {
        assert_eq!(
            file_key("/etc/nginx/conf.d/app.conf"),
            "etc_nginx_conf.d_app.conf"
        );
        assert_eq!(file_key("/"), "file");
    }
}
