//! The Score workload specification (`apiVersion: score.dev/v1b1`), read strictly.
//!
//! The types follow the published Score v1b1 JSON schema: a workload has `metadata`
//! (with a `name`), named `containers`, an optional `service` with named `ports`, and
//! named `resources` it depends on. Unknown fields are rejected with the field's name and
//! the line, as the schema's `additionalProperties: false` asks. Both forms of
//! `files` and `volumes` are accepted: the original list (`- target: /etc/app.conf`) and
//! the newer mapping keyed by the target path (`/etc/app.conf: {content: ...}`).
//!
//! Two deliberate extensions, both for AI and batch workloads: container `resources`
//! accept extended resources whose name has a `/` (`nvidia.com/gpu: "1"`), not only `cpu`
//! and `memory`, and probes accept `exec: {command: [...]}` as well as `httpGet`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use idp_core::{Error, Result};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::yaml;

/// The only `apiVersion` this reader accepts.
///
/// ```
/// assert_eq!(idp_deploy::workload::SCORE_API_VERSION, "score.dev/v1b1");
/// ```
pub const SCORE_API_VERSION: &str = "score.dev/v1b1";

/// A Score workload: what a developer writes once and the platform renders per environment.
///
/// Start with [`Workload::from_yaml`] or [`Workload::from_file`], then
/// [`render`](super::render()).
///
/// ```
/// use idp_deploy::workload::Workload;
///
/// let w = Workload::from_yaml(
///     "apiVersion: score.dev/v1b1\n\
///      metadata: {name: cart}\n\
///      containers:\n  app: {image: ghcr.io/acme/cart:1.4}\n",
///     None,
/// )?;
/// assert_eq!(w.name(), "cart");
/// assert_eq!(w.containers["app"].image, "ghcr.io/acme/cart:1.4");
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    /// Always `score.dev/v1b1`.
    pub api_version: String,
    /// The workload's name and annotations.
    pub metadata: WorkloadMetadata,
    /// The ports the workload publishes, when it is a network service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// The containers, by name (at least one).
    pub containers: BTreeMap<String, Container>,
    /// The resources the workload depends on, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, ResourceSpec>,
}

/// A workload's `metadata`: a `name`, optional `annotations`, and any other keys (Score
/// allows them; they are reachable as `${metadata.<key>}`).
///
/// ```
/// let m: idp_deploy::workload::WorkloadMetadata =
///     serde_json::from_value(serde_json::json!({"name": "cart", "tier": "web"})).unwrap();
/// assert_eq!(m.extra["tier"], "web");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadMetadata {
    /// An RFC 1123 label of 2 to 63 characters.
    pub name: String,
    /// Annotations for the workload; they are copied to the Deployment and its pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Any other keys.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `service`: the ports a workload publishes.
///
/// ```
/// let s: idp_deploy::workload::Service =
///     serde_json::from_value(serde_json::json!({"ports": {"web": {"port": 80, "targetPort": 8080}}})).unwrap();
/// assert_eq!(s.ports["web"].target_port(), 8080);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// The ports, by name.
    #[serde(default)]
    pub ports: BTreeMap<String, ServicePort>,
}

/// One published port.
///
/// ```
/// let p: idp_deploy::workload::ServicePort = serde_json::from_value(serde_json::json!({"port": 80})).unwrap();
/// assert_eq!(p.target_port(), 80);
/// assert_eq!(p.protocol(), idp_deploy::workload::Protocol::Tcp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// The port the Service listens on (1–65535).
    pub port: u16,
    /// The container port traffic goes to; defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u16>,
    /// TCP (the default) or UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

impl ServicePort {
    /// `targetPort`, or `port` when it is not set.
    ///
    /// ```
    /// let p = idp_deploy::workload::ServicePort { port: 80, target_port: None, protocol: None };
    /// assert_eq!(p.target_port(), 80);
    /// ```
    pub fn target_port(&self) -> u16 {
        self.target_port.unwrap_or(self.port)
    }

    /// The protocol, TCP when not set.
    ///
    /// ```
    /// let p = idp_deploy::workload::ServicePort { port: 53, target_port: None, protocol: None };
    /// assert_eq!(p.protocol().as_str(), "TCP");
    /// ```
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or(Protocol::Tcp)
    }
}

/// A transport protocol.
///
/// ```
/// assert_eq!(idp_deploy::workload::Protocol::Udp.as_str(), "UDP");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    /// `TCP` or `UDP`, as Kubernetes spells it.
    ///
    /// ```
    /// assert_eq!(idp_deploy::workload::Protocol::Tcp.as_str(), "TCP");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// One container of a workload.
///
/// ```
/// let c: idp_deploy::workload::Container =
///     serde_json::from_value(serde_json::json!({"image": "nginx:1.27", "args": ["-g", "daemon off;"]})).unwrap();
/// assert_eq!(c.args.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// The image; `.` means "the image the deploy command supplies"
    /// ([`RenderContext::image`](super::RenderContext::image)).
    pub image: String,
    /// Overrides the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Overrides the image's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables; values may hold `${...}` placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Files to mount (a list, or a mapping keyed by target path).
    #[serde(
        default,
        deserialize_with = "deserialize_files",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub files: Vec<File>,
    /// Volumes to mount (a list, or a mapping keyed by target path).
    #[serde(
        default,
        deserialize_with = "deserialize_volumes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volumes: Vec<Volume>,
    /// Compute requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ContainerResources>,
    /// Restart the container when this fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Take the container out of load balancing while this fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
}

/// A file mounted into a container: inline `content` (or base64 `binaryContent`), or the
/// content of a local `source` file (relative to the Score file).
///
/// ```
/// let f: idp_deploy::workload::File =
///     serde_json::from_value(serde_json::json!({"target": "/etc/app.conf", "content": "x=1", "mode": "0644"})).unwrap();
/// assert_eq!(f.mode_bits(), Some(0o644));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, try_from = "RawFile")]
pub struct File {
    /// Absolute path in the container.
    pub target: String,
    /// Octal access mode (`0600`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Path of a local file holding the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Inline content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Inline binary content, base64-encoded (never expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_content: Option<String>,
    /// When true, `${...}` placeholders in the content are left as they are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_expand: bool,
}

impl File {
    /// The mode as permission bits, when set.
    ///
    /// ```
    /// let f: idp_deploy::workload::File =
    ///     serde_json::from_value(serde_json::json!({"target": "/a", "content": "", "mode": "600"})).unwrap();
    /// assert_eq!(f.mode_bits(), Some(0o600));
    /// ```
    pub fn mode_bits(&self) -> Option<u32> {
        self.mode
            .as_deref()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
    }
}

/// What a file entry looks like on the wire (validated into [`File`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFile {
    target: Option<String>,
    mode: Option<String>,
    source: Option<String>,
    content: Option<String>,
    binary_content: Option<String>,
    #[serde(default)]
    no_expand: bool,
}

impl TryFrom<RawFile> for File {
    type Error = String;

    fn try_from(raw: RawFile) -> Result<Self, String> {
        let target = raw
            .target
            .filter(|t| !t.is_empty())
            .ok_or("a file needs a non-empty `target` (the path in the container)")?;
        if !target.starts_with('/') {
            return Err(format!(
                "file target `{target}` must be an absolute path (start with `/`)"
            ));
        }
        let given = [&raw.source, &raw.content, &raw.binary_content]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if given != 1 {
            return Err(format!(
                "file `{target}` needs exactly one of `content`, `binaryContent` or `source`"
            ));
        }
        if let Some(mode) = &raw.mode {
            let digits = mode.strip_prefix('0').unwrap_or(mode);
            if digits.len() != 3 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(format!(
                    "file `{target}`: mode `{mode}` is not an octal mode like `0644`"
                ));
            }
        }
        Ok(File {
            target,
            mode: raw.mode,
            source: raw.source,
            content: raw.content,
            binary_content: raw.binary_content,
            no_expand: raw.no_expand,
        })
    }
}

/// A volume mounted into a container.
///
/// `source` names the volume; after placeholder expansion it is used as the name of a
/// PersistentVolumeClaim in the workload's namespace.
///
/// ```
/// let v: idp_deploy::workload::Volume =
///     serde_json::from_value(serde_json::json!({"source": "data", "target": "/data"})).unwrap();
/// assert!(!v.read_only);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// The volume (a PersistentVolumeClaim name, or a placeholder resolving to one).
    pub source: String,
    /// A sub-path inside the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where to mount it in the container.
    pub target: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A volume in the mapping form (keyed by target).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VolumeEntry {
    source: String,
    path: Option<String>,
    #[serde(default)]
    read_only: bool,
}

/// A file in the mapping form (keyed by target).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileEntry {
    mode: Option<String>,
    source: Option<String>,
    content: Option<String>,
    binary_content: Option<String>,
    #[serde(default)]
    no_expand: bool,
}

fn deserialize_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<File>, D::Error> {
    struct Files;
    impl<'de> Visitor<'de> for Files {
        type Value = Vec<File>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of files or a mapping from target path to file")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<File>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<File>, A::Error> {
            let mut out = Vec::new();
            while let Some(file) = seq.next_element::<File>()? {
                out.push(file);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<File>, A::Error> {
            let mut out = Vec::new();
            while let Some((target, e)) = map.next_entry::<String, FileEntry>()? {
                let raw = RawFile {
                    target: Some(target),
                    mode: e.mode,
                    source: e.source,
                    content: e.content,
                    binary_content: e.binary_content,
                    no_expand: e.no_expand,
                };
                out.push(File::try_from(raw).map_err(de::Error::custom)?);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Files)
}

fn deserialize_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Volume>, D::Error> {
    struct Volumes;
    impl<'de> Visitor<'de> for Volumes {
        type Value = Vec<Volume>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of volumes or a mapping from target path to volume")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<Volume>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Volume>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<Volume>()? {
                out.push(v);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Volume>, A::Error> {
            let mut out = Vec::new();
            while let Some((target, e)) = map.next_entry::<String, VolumeEntry>()? {
                out.push(Volume {
                    source: e.source,
                    path: e.path,
                    target,
                    read_only: e.read_only,
                });
            }
            Ok(out)
        }
    }
    d.deserialize_any(Volumes)
}

/// A container's compute `requests` and `limits`.
///
/// ```
/// let r: idp_deploy::workload::ContainerResources = serde_json::from_value(
///     serde_json::json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"nvidia.com/gpu": "1"}})).unwrap();
/// assert_eq!(r.limits["nvidia.com/gpu"], "1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerResources {
    /// The most the container may use.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: ResourceList,
    /// What the scheduler reserves for the container.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: ResourceList,
}

/// Resource name → quantity (`cpu`, `memory`, or an extended resource such as
/// `nvidia.com/gpu`).
///
/// ```
/// let r: idp_deploy::workload::ResourceList = [("cpu".to_owned(), "250m".to_owned())].into();
/// assert_eq!(r["cpu"], "250m");
/// ```
pub type ResourceList = BTreeMap<String, String>;

/// A health probe: an HTTP GET or a command.
///
/// ```
/// let p: idp_deploy::workload::Probe = serde_json::from_value(
///     serde_json::json!({"httpGet": {"path": "/healthz", "port": 8080}})).unwrap();
/// assert_eq!(p.http_get.unwrap().port, 8080);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, try_from = "RawProbe")]
pub struct Probe {
    /// Probe with an HTTP GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpProbe>,
    /// Probe by running a command in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecProbe>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProbe {
    http_get: Option<HttpProbe>,
    exec: Option<ExecProbe>,
}

impl TryFrom<RawProbe> for Probe {
    type Error = &'static str;

    fn try_from(raw: RawProbe) -> Result<Self, &'static str> {
        match (&raw.http_get, &raw.exec) {
            (Some(_), None) | (None, Some(_)) => Ok(Probe {
                http_get: raw.http_get,
                exec: raw.exec,
            }),
            _ => Err("a probe needs exactly one of `httpGet` or `exec`"),
        }
    }
}

/// An HTTP GET probe.
///
/// ```
/// let h: idp_deploy::workload::HttpProbe = serde_json::from_value(
///     serde_json::json!({"path": "/", "port": 80, "scheme": "HTTPS"})).unwrap();
/// assert_eq!(h.scheme.as_deref(), Some("HTTPS"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    /// The path to request.
    pub path: String,
    /// The container port.
    pub port: u16,
    /// `HTTP` (the default) or `HTTPS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The host to connect to (defaults to the pod IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// One HTTP header of a probe.
///
/// ```
/// let h = idp_deploy::workload::HttpHeader { name: "X-Probe".into(), value: "1".into() };
/// assert_eq!(h.name, "X-Probe");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A probe that runs a command.
///
/// ```
/// let e = idp_deploy::workload::ExecProbe { command: vec!["pg_isready".into()] };
/// assert_eq!(e.command[0], "pg_isready");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecProbe {
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// A resource the workload depends on (a database, a bucket, another service). Its
/// outputs are reached with `${resources.<name>.<output>}` and supplied by a
/// [`ResourceProvisioner`](super::ResourceProvisioner) chosen by `type`.
///
/// ```
/// let r: idp_deploy::workload::ResourceSpec = serde_json::from_value(
///     serde_json::json!({"type": "postgres", "class": "large", "params": {"version": 16}})).unwrap();
/// assert_eq!(r.kind, "postgres");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    /// The resource type (`postgres`, `environment`, `service`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// A specialisation of the type (`large`, `ha`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// An identifier shared by workloads that use the same resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Annotations and other metadata of the resource.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Parameters for the provisioner.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
}

impl Workload {
    /// Parse a Score file (YAML or JSON). Errors give `file:line:column` and name the
    /// field at fault.
    ///
    /// ```
    /// use idp_deploy::workload::Workload;
    /// let err = Workload::from_yaml(
    ///     "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app: {image: x, imagePullPolicy: Always}\n",
    ///     Some("score.yaml".as_ref()),
    /// ).unwrap_err();
    /// assert!(err.to_string().starts_with("score.yaml:4:"), "{err}");
    /// assert!(err.to_string().contains("imagePullPolicy"), "{err}");
    /// ```
    pub fn from_yaml(text: &str, file: Option<&Path>) -> Result<Self> {
        let workload: Workload = yaml::parse(text, file, "Score file")?;
        workload.validate(text, file)?;
        Ok(workload)
    }

    /// Read and parse a Score file.
    ///
    /// ```no_run
    /// let w = idp_deploy::workload::Workload::from_file("score.yaml")?;
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = yaml::read(path, "Score file")?;
        Self::from_yaml(&text, Some(path))
    }

    /// The workload's name (`metadata.name`).
    ///
    /// ```
    /// # let w = idp_deploy::workload::Workload::from_yaml("apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers: {app: {image: x}}\n", None).unwrap();
    /// assert_eq!(w.name(), "cart");
    /// ```
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The workload as JSON, for [`Release::with_workload`](idp_core::Release::with_workload).
    ///
    /// ```
    /// # let w = idp_deploy::workload::Workload::from_yaml("apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers: {app: {image: x}}\n", None).unwrap();
    /// assert_eq!(w.to_json()["metadata"]["name"], "cart");
    /// ```
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Checks the schema's value rules that types alone do not express.
    fn validate(&self, text: &str, file: Option<&Path>) -> Result<()> {
        let place = file.map_or_else(|| "<input>".to_owned(), |f| f.display().to_string());
        let fail = |key: &str, field: &str, problem: String| {
            Error::invalid_input(format!(
                "{place}:{}: invalid Score file: {field}: {problem}",
                yaml::line_of_key(text, key)
            ))
        };
        if self.api_version != SCORE_API_VERSION {
            return Err(fail(
                "apiVersion",
                "apiVersion",
                format!(
                    "`{}` is not supported; use `{SCORE_API_VERSION}`",
                    self.api_version
                ),
            ));
        }
        if !yaml::is_score_name(&self.metadata.name) {
            return Err(fail(
                "name",
                "metadata.name",
                format!(
                    "`{}` is not a valid name: use 2 to 63 lower-case letters, digits and `-`, \
                     not starting or ending with `-`",
                    self.metadata.name
                ),
            ));
        }
        if self.containers.is_empty() {
            return Err(fail(
                "containers",
                "containers",
                "a workload needs at least one container".to_owned(),
            ));
        }
        for (name, container) in &self.containers {
            if !yaml::is_score_name(name) {
                return Err(fail(
                    name,
                    &format!("containers.{name}"),
                    "a container name must be 2 to 63 lower-case letters, digits and `-`, \
                     not starting or ending with `-`"
                        .to_owned(),
                ));
            }
            if container.image.is_empty() {
                return Err(fail(
                    name,
                    &format!("containers.{name}.image"),
                    "the image must not be empty (use `.` for the image given at deploy time)"
                        .to_owned(),
                ));
            }
            for key in container.variables.keys() {
                if key.is_empty() || key.contains('=') {
                    return Err(fail(
                        "variables",
                        &format!("containers.{name}.variables"),
                        format!("`{key}` is not a valid variable name (empty, or contains `=`)"),
                    ));
                }
            }
            let probes = [
                ("livenessProbe", &container.liveness_probe),
                ("readinessProbe", &container.readiness_probe),
            ];
            for (which, probe) in probes {
                let scheme = probe
                    .as_ref()
                    .and_then(|p| p.http_get.as_ref())
                    .and_then(|h| h.scheme.as_deref());
                if let Some(scheme) = scheme.filter(|s| !matches!(*s, "HTTP" | "HTTPS")) {
                    return Err(fail(
                        "scheme",
                        &format!("containers.{name}.{which}.httpGet.scheme"),
                        format!("`{scheme}` is not `HTTP` or `HTTPS`"),
                    ));
                }
            }
            if let Some(resources) = &container.resources {
                for (which, list) in [
                    ("limits", &resources.limits),
                    ("requests", &resources.requests),
                ] {
                    for key in list.keys() {
                        if !matches!(key.as_str(), "cpu" | "memory") && !key.contains('/') {
                            return Err(fail(
                                key,
                                &format!("containers.{name}.resources.{which}.{key}"),
                                "unknown resource: use `cpu`, `memory` or an extended \
                                 resource with a domain such as `nvidia.com/gpu`"
                                    .to_owned(),
                            ));
                        }
                    }
                }
            }
            let mut targets = std::collections::BTreeSet::new();
            for file in &container.files {
                if !targets.insert(file.target.as_str()) {
                    return Err(fail(
                        &file.target,
                        &format!("containers.{name}.files"),
                        format!("two files have the target `{}`", file.target),
                    ));
                }
            }
        }
        if let Some(service) = &self.service {
            for (port_name, port) in &service.ports {
                if !yaml::is_score_name(port_name) {
                    return Err(fail(
                        port_name,
                        &format!("service.ports.{port_name}"),
                        "a port name must be 2 to 63 lower-case letters, digits and `-`".to_owned(),
                    ));
                }
                if port.port == 0 || port.target_port == Some(0) {
                    return Err(fail(
                        port_name,
                        &format!("service.ports.{port_name}"),
                        "ports must be between 1 and 65535".to_owned(),
                    ));
                }
            }
        }
        for (name, resource) in &self.resources {
            if !yaml::is_score_name(name) {
                return Err(fail(
                    name,
                    &format!("resources.{name}"),
                    "a resource name must be 2 to 63 lower-case letters, digits and `-`".to_owned(),
                ));
            }
            if resource.kind.is_empty() {
                return Err(fail(
                    name,
                    &format!("resources.{name}.type"),
                    "the type must not be empty".to_owned(),
                ));
            }
        }
        Ok(())
    }
}
