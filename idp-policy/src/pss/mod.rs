//! Pod Security Standards, baseline and restricted, versioned like the Kubernetes
//! pod-security-admission library.
//!
//! Start with [`PodSecurity::baseline`] or [`PodSecurity::restricted`], pin a version
//! with [`PodSecurity::at`] (the `pod-security.kubernetes.io/enforce-version` of a
//! namespace), and use it as any [`Policy`]. It applies to Pods and, through
//! [autogen](crate::podspec), to the pod template of every pod controller.
//!
//! ```
//! use idp_core::{Object, Policy, PolicyContext};
//! use idp_policy::pss::{PodSecurity, PssVersion};
//!
//! let pod = Object::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
//!     "spec": {"containers": [{"name": "app", "securityContext": {"privileged": true}}]}
//! })).unwrap();
//! let pss = PodSecurity::baseline().at("v1.30".parse::<PssVersion>().unwrap());
//! let v = pss.evaluate(&pod, &PolicyContext::new());
//! assert_eq!(v[0].rule, "privileged");
//! assert_eq!(v[0].message, r#"privileged (container "app" must not set securityContext.privileged=true)"#);
//! assert_eq!(v[0].path.as_deref(), Some("spec.containers[0].securityContext.privileged"));
//! ```
//!
//! # What is checked, and from which version
//!
//! Rule ids are the upstream check ids. A version pins the policy the way the upstream
//! registry does: each check uses its newest revision at or below the version, versions
//! above the newest revision behave as `latest`, and restricted replaces some baseline
//! checks by stricter ones.
//!
//! | check | level | revisions | notes |
//! |---|---|---|---|
//! | `hostNamespaces` | baseline | v1.0 | `hostNetwork`, `hostPID`, `hostIPC` |
//! | `privileged` | baseline | v1.0 | |
//! | `capabilities_baseline` | baseline | v1.0 | replaced by `capabilities_restricted` in restricted from v1.22 |
//! | `hostPathVolumes` | baseline | v1.0 | replaced by `restrictedVolumes` in restricted |
//! | `hostPorts` | baseline | v1.0 | any non-zero `hostPort` |
//! | `appArmorProfile` | baseline | v1.0 | annotations and `securityContext.appArmorProfile` fields at every version (upstream added the field check to its v1.0 revision in Kubernetes 1.30) |
//! | `seLinuxOptions` | baseline | v1.0, v1.31 | `container_engine_t` allowed from v1.31 |
//! | `procMount` | baseline | v1.0, v1.35 | from v1.35 skipped for user-namespaced pods (`hostUsers: false`); replaced by `procMount_restricted` in restricted from v1.35 |
//! | `seccompProfile_baseline` | baseline | v1.0, v1.19 | annotations before v1.19, fields from v1.19; replaced by `seccompProfile_restricted` in restricted from v1.19 |
//! | `sysctls` | baseline | v1.0, v1.27, v1.29, v1.32, v1.37 | the safe set grows (see [`safe_sysctls`]) |
//! | `windowsHostProcess` | baseline | v1.0 | |
//! | `hostProbesAndHostLifecycle` | baseline | v1.34 | `host` in `httpGet`/`tcpSocket` of probes and lifecycle handlers |
//! | `restrictedVolumes` | restricted | v1.0 | configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret |
//! | `allowPrivilegeEscalation` | restricted | v1.8, v1.25 | Windows pods exempt from v1.25 |
//! | `runAsNonRoot` | restricted | v1.0, v1.35 | container setting overrides the pod's; skipped for `hostUsers: false` from v1.35 |
//! | `runAsUser` | restricted | v1.23, v1.35 | skipped for `hostUsers: false` from v1.35 |
//! | `seccompProfile_restricted` | restricted | v1.19, v1.25 | Windows pods exempt from v1.25 |
//! | `capabilities_restricted` | restricted | v1.22, v1.25 | drop `ALL`, add only `NET_BIND_SERVICE`; Windows pods exempt from v1.25 |
//! | `procMount_restricted` | restricted | v1.35 | `Default` only, also for user-namespaced pods |
//!
//! The Windows exemption (`spec.os.name: windows`, from v1.25) covers exactly
//! `allowPrivilegeEscalation`, `seccompProfile_restricted` and `capabilities_restricted`;
//! `runAsNonRoot` and `runAsUser` still apply to Windows pods.
//!
//! Two upstream behaviours were patched into v1.0 revisions and so apply at every pinned
//! version, here as upstream: `image` volumes are allowed by `restrictedVolumes`, and the
//! AppArmor fields are checked.
//!
//! # Excluding controls
//!
//! [`PodSecurity::excluding`] switches one control off, for the whole pod or only for
//! containers running certain images, like Kyverno's `podSecurity.exclude` (see
//! [`ControlExclusion`]). [`PodSecurity::with_exclusion`] also takes Kyverno's finer
//! form: a `restrictedField` of the control and the `values` allowed there (allow
//! `NET_ADMIN` in `capabilities.add`, host port 8080, the `nfs` volume type), so every
//! other value in that field is still reported.
//!
//! Differences from upstream, on purpose: upstream reports one result per check listing
//! every offending container; this crate reports one violation per offending field, so
//! each has its own path. A volume that names no source at all is treated as the
//! `emptyDir` the API server would default it to.

mod checks;
mod fields;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use idp_core::{Error, Object, Policy, PolicyContext, Violation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::podspec::PodSpec;
use crate::view::{NativePolicy, ObjectView, PodView};

pub use checks::safe_sysctls;

/// The newest policy revision this crate knows: `latest` means v1.37.
///
/// ```
/// assert_eq!(idp_policy::pss::LATEST_MINOR, 37);
/// ```
pub const LATEST_MINOR: u32 = 37;

/// A Pod Security Standards policy version: `v1.0` … `v1.N` or `latest`.
///
/// Versions newer than [`LATEST_MINOR`] behave as `latest`, as upstream does.
///
/// ```
/// use idp_policy::pss::PssVersion;
/// assert_eq!("v1.25".parse::<PssVersion>().unwrap(), PssVersion::V1(25));
/// assert_eq!("latest".parse::<PssVersion>().unwrap(), PssVersion::Latest);
/// assert!("1.25".parse::<PssVersion>().is_err());
/// assert_eq!(PssVersion::V1(99).minor(), idp_policy::pss::LATEST_MINOR);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PssVersion {
    /// The newest revision of every check.
    #[default]
    Latest,
    /// `v1.<minor>`.
    V1(u32),
}

impl PssVersion {
    /// The effective minor version (`latest` and newer versions: [`LATEST_MINOR`]).
    ///
    /// ```
    /// assert_eq!(idp_policy::pss::PssVersion::V1(19).minor(), 19);
    /// ```
    pub fn minor(self) -> u32 {
        match self {
            Self::Latest => LATEST_MINOR,
            Self::V1(m) => m.min(LATEST_MINOR),
        }
    }
}

impl fmt::Display for PssVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::V1(m) => write!(f, "v1.{m}"),
        }
    }
}

impl FromStr for PssVersion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        s.strip_prefix("v1.")
            .filter(|m| !m.is_empty() && m.len() <= 4 && m.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|m| m.parse().ok())
            .map(Self::V1)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "`{s}` is not a Pod Security Standards version; write `latest` or `v1.<minor>`, e.g. `v1.30`"
                ))
            })
    }
}

impl Serialize for PssVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PssVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for PssVersion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PssVersion".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(latest|v1\\.[0-9]{1,4})$",
            "description": "`latest` or `v1.<minor>`"
        })
    }
}

/// A Pod Security Standards level.
///
/// ```
/// let l: idp_policy::pss::Level = serde_json::from_str("\"restricted\"").unwrap();
/// assert_eq!(l, idp_policy::pss::Level::Restricted);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing is checked.
    Privileged,
    /// Prevents known privilege escalations.
    #[default]
    Baseline,
    /// Current pod hardening best practice; includes baseline.
    Restricted,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        })
    }
}

/// The Pod Security Standards as a [`Policy`]: one level at one version.
///
/// Its name is `pod-security` (change it with [`PodSecurity::named`]); rules are the
/// upstream check ids; severity is high.
///
/// ```
/// use idp_policy::pss::{Level, PodSecurity, PssVersion};
/// let p = PodSecurity::restricted().at(PssVersion::V1(18));
/// assert_eq!(p.level(), Level::Restricted);
/// assert!(!p.checks().contains(&"seccompProfile_restricted"));
/// assert!(p.checks().contains(&"seccompProfile_baseline"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PodSecurity {
    /// The policy name used in violations.
    #[serde(default = "default_name")]
    pub name: String,
    /// The level.
    #[serde(default)]
    pub level: Level,
    /// The version.
    #[serde(default)]
    pub version: PssVersion,
    /// Controls switched off, for the whole pod or for containers running certain
    /// images (Kyverno's `podSecurity.exclude`). [`PodSecurity::validate`] checks the
    /// names; a name that is not a control excludes nothing.
    #[serde(
        default,
        rename = "excludeControls",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude_controls: Vec<ControlExclusion>,
}

/// One Pod Security Standards control switched off in a [`PodSecurity`] policy, like an
/// entry of Kyverno's `podSecurity.exclude`.
///
/// `control_name` is a control as the Pod Security Standards documentation names it
/// (`Capabilities`, `Host Namespaces`, `Privileged Containers`, `Seccomp`, … —
/// case-insensitive; see [`PodSecurity::control_names`]) or one check id
/// (`capabilities_restricted`). With `images` (`*` wildcards), only findings in
/// containers running a matching image are dropped (an Istio sidecar that needs
/// `NET_ADMIN`); findings in pod-level fields and in other containers stay. Without
/// `images`, the control is off for the whole pod.
///
/// `restricted_field` with `values` narrows it further, as Kyverno's `restrictedField`
/// and `values` do: only findings in that field (written against the pod, `[*]` for
/// any index, e.g. `spec.containers[*].securityContext.capabilities.add`; it covers
/// controllers' templates too) whose offending value is one of `values` are dropped.
/// Values are compared as text (`"true"`, `"8080"`, `"NET_ADMIN"`); a volume's value
/// is its type (`nfs`). Findings with the same field but another value stay, so
/// allowing `NET_ADMIN` does not allow `SYS_ADMIN`. [`PodSecurity::restricted_fields`]
/// lists the fields of each control.
///
/// ```
/// let e: idp_policy::pss::ControlExclusion = serde_json::from_value(serde_json::json!({
///     "controlName": "Capabilities", "images": ["docker.io/istio/proxyv2:*"],
///     "restrictedField": "spec.containers[*].securityContext.capabilities.add",
///     "values": ["NET_ADMIN"]})).unwrap();
/// assert_eq!(e.images.len(), 1);
/// assert_eq!(e.values, ["NET_ADMIN"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlExclusion {
    /// The control name or check id.
    pub control_name: String,
    /// Images whose containers are exempt; empty: the whole pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// One field of the control, pod-relative with `[*]` indices; only findings there
    /// are exempt (with `values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_field: Option<String>,
    /// The offending values exempt in `restricted_field` (required with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl ControlExclusion {
    /// An exclusion of `control` for the whole pod; narrow it with the public fields.
    ///
    /// ```
    /// let mut e = idp_policy::pss::ControlExclusion::new("Host Ports");
    /// e.restricted_field = Some("spec.containers[*].ports[*].hostPort".into());
    /// e.values = vec!["8080".into()];
    /// let pss = idp_policy::pss::PodSecurity::baseline().with_exclusion(e).unwrap();
    /// assert_eq!(pss.exclude_controls.len(), 1);
    /// ```
    pub fn new(control: impl Into<String>) -> Self {
        Self {
            control_name: control.into(),
            ..Self::default()
        }
    }
}

fn default_name() -> String {
    "pod-security".to_owned()
}

impl PodSecurity {
    /// A level at `latest`.
    ///
    /// ```
    /// let p = idp_policy::pss::PodSecurity::new(idp_policy::pss::Level::Baseline);
    /// assert_eq!(p.version(), idp_policy::pss::PssVersion::Latest);
    /// ```
    pub fn new(level: Level) -> Self {
        Self {
            name: default_name(),
            level,
            version: PssVersion::Latest,
            exclude_controls: Vec::new(),
        }
    }

    /// Baseline at `latest`.
    ///
    /// ```
    /// assert_eq!(idp_policy::pss::PodSecurity::baseline().level(), idp_policy::pss::Level::Baseline);
    /// ```
    pub fn baseline() -> Self {
        Self::new(Level::Baseline)
    }

    /// Restricted at `latest`.
    ///
    /// ```
    /// assert_eq!(idp_policy::pss::PodSecurity::restricted().level(), idp_policy::pss::Level::Restricted);
    /// ```
    pub fn restricted() -> Self {
        Self::new(Level::Restricted)
    }

    /// Pin a version.
    ///
    /// ```
    /// use idp_policy::pss::{PodSecurity, PssVersion};
    /// assert_eq!(PodSecurity::baseline().at(PssVersion::V1(25)).version(), PssVersion::V1(25));
    /// ```
    pub fn at(mut self, version: PssVersion) -> Self {
        self.version = version;
        self
    }

    /// Use another policy name.
    ///
    /// ```
    /// use idp_core::Policy;
    /// assert_eq!(idp_policy::pss::PodSecurity::baseline().named("pss").name(), "pss");
    /// ```
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Switch `control` off for containers running one of `images` (`*` wildcards), or
    /// for the whole pod when `images` is empty (see [`ControlExclusion`]).
    ///
    /// # Errors
    ///
    /// `control` is neither a control name nor a check id, or `images` are given for a
    /// control that has no container-level fields (`Host Namespaces`, `HostPath
    /// Volumes`, `Sysctls`, `Volume Types`).
    ///
    /// ```
    /// use idp_core::{Object, Policy, PolicyContext};
    /// let pss = idp_policy::pss::PodSecurity::restricted()
    ///     .excluding("Capabilities", ["docker.io/istio/proxyv2:*"])
    ///     .unwrap();
    /// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    ///     "spec": {"containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0",
    ///         "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}})).unwrap();
    /// let rules: Vec<_> = pss.evaluate(&pod, &PolicyContext::new()).into_iter().map(|v| v.rule).collect();
    /// assert!(!rules.iter().any(|r| r.starts_with("capabilities")), "{rules:?}");
    /// assert!(idp_policy::pss::PodSecurity::baseline().excluding("Host Namespaces", ["x"]).is_err());
    /// ```
    pub fn excluding<I, S>(self, control: &str, images: I) -> idp_core::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with_exclusion(ControlExclusion {
            control_name: control.to_owned(),
            images: images.into_iter().map(Into::into).collect(),
            ..ControlExclusion::default()
        })
    }

    /// Add an exclusion (see [`ControlExclusion`]): with a `restricted_field`, only the
    /// listed `values` of that field are exempt.
    ///
    /// # Errors
    ///
    /// As [`PodSecurity::excluding`]; also a `restricted_field` that is not one of the
    /// control's fields, one without `values`, or `values` without one.
    ///
    /// ```
    /// use idp_core::{Object, Policy, PolicyContext};
    /// use idp_policy::pss::{ControlExclusion, PodSecurity};
    /// let mut allow = ControlExclusion::new("Capabilities");
    /// allow.restricted_field = Some("spec.containers[*].securityContext.capabilities.add".into());
    /// allow.values = vec!["NET_ADMIN".into()];
    /// let pss = PodSecurity::baseline().with_exclusion(allow).unwrap();
    /// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    ///     "spec": {"containers": [{"name": "vpn", "image": "vpn:1",
    ///         "securityContext": {"capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}}}]}})).unwrap();
    /// let found = pss.evaluate(&pod, &PolicyContext::new());
    /// // NET_ADMIN is allowed; SYS_ADMIN is not.
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].path.as_deref(), Some("spec.containers[0].securityContext.capabilities.add[1]"));
    /// ```
    pub fn with_exclusion(mut self, exclusion: ControlExclusion) -> idp_core::Result<Self> {
        validate_exclusion(&exclusion)?;
        self.exclude_controls.push(exclusion);
        Ok(self)
    }

    /// The fields a `restricted_field` may name for `control` (a control name or check
    /// id), pod-relative with `[*]` indices; `None` for an unknown control.
    ///
    /// ```
    /// let fields = idp_policy::pss::PodSecurity::restricted_fields("Host Ports").unwrap();
    /// assert!(fields.contains(&"spec.containers[*].ports[*].hostPort".to_owned()));
    /// ```
    pub fn restricted_fields(control: &str) -> Option<Vec<String>> {
        let (checks, _) = checks::control(control)?;
        let mut out: Vec<String> = checks
            .into_iter()
            .flat_map(fields::restricted_fields)
            .collect();
        out.sort();
        out.dedup();
        Some(out)
    }

    /// Check the [`exclude_controls`](PodSecurity::exclude_controls) (what a policy-set
    /// file gives).
    ///
    /// # Errors
    ///
    /// The first exclusion that names no control, or gives images for a pod-level one.
    ///
    /// ```
    /// let mut p = idp_policy::pss::PodSecurity::baseline();
    /// p.exclude_controls.push(idp_policy::pss::ControlExclusion::new("Privileged"));
    /// let err = p.validate().unwrap_err();
    /// assert!(err.to_string().contains("Privileged Containers"), "{err}");
    /// ```
    pub fn validate(&self) -> idp_core::Result<()> {
        self.exclude_controls
            .iter()
            .try_for_each(validate_exclusion)
    }

    /// The control names an exclusion can use (check ids work too).
    ///
    /// ```
    /// assert!(idp_policy::pss::PodSecurity::control_names().any(|n| n == "Seccomp"));
    /// ```
    pub fn control_names() -> impl Iterator<Item = &'static str> {
        checks::CONTROLS.iter().map(|(name, _, _)| *name)
    }

    /// The level.
    ///
    /// ```
    /// assert_eq!(idp_policy::pss::PodSecurity::restricted().level().to_string(), "restricted");
    /// ```
    pub fn level(&self) -> Level {
        self.level
    }

    /// The version.
    ///
    /// ```
    /// assert_eq!(idp_policy::pss::PodSecurity::restricted().version().to_string(), "latest");
    /// ```
    pub fn version(&self) -> PssVersion {
        self.version
    }

    /// The ids of the checks in force at this level and version, in evaluation order;
    /// a check excluded for the whole pod is not in force (one excluded only for some
    /// images or values still is).
    ///
    /// ```
    /// let b = idp_policy::pss::PodSecurity::baseline().at("v1.33".parse().unwrap());
    /// assert!(!b.checks().contains(&"hostProbesAndHostLifecycle"));
    /// let b = idp_policy::pss::PodSecurity::baseline().at("v1.34".parse().unwrap());
    /// assert!(b.checks().contains(&"hostProbesAndHostLifecycle"));
    /// let off = b.excluding("Host Ports", Vec::<String>::new()).unwrap();
    /// assert!(!off.checks().contains(&"hostPorts"));
    /// ```
    pub fn checks(&self) -> Vec<&'static str> {
        let exclusions = compile_exclusions(&self.exclude_controls);
        checks::active(self.level, self.version.minor())
            .iter()
            .filter(|c| {
                !exclusions
                    .iter()
                    .any(|e| e.whole_pod() && e.checks.contains(c))
            })
            .map(checks::Check::id)
            .collect()
    }

    /// The findings for one pod spec (used by [`Policy::evaluate`]; exposed for callers
    /// that already hold a [`PodSpec`]).
    ///
    /// ```
    /// # use idp_policy::{podspec::PodSpec, pss::PodSecurity};
    /// let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"hostIPC": true}})).unwrap();
    /// let v = PodSecurity::baseline().evaluate_pod(&PodSpec::of(&o).unwrap());
    /// assert_eq!(v[0].path.as_deref(), Some("spec.hostIPC"));
    /// ```
    pub fn evaluate_pod(&self, pod: &PodSpec<'_>) -> Vec<Violation> {
        let minor = self.version.minor();
        let mut out = Vec::new();
        run_checks(
            &policy_name(&self.name),
            minor,
            &checks::active(self.level, minor),
            &compile_exclusions(&self.exclude_controls),
            &PodView::of(*pod),
            &mut out,
        );
        out
    }

    /// The checks in force, resolved once: what a [`PolicySet`](crate::PolicySet) keeps.
    pub(crate) fn compile(&self) -> CompiledPodSecurity {
        let minor = self.version.minor();
        CompiledPodSecurity {
            name: policy_name(&self.name),
            minor,
            active: checks::active(self.level, minor),
            exclusions: compile_exclusions(&self.exclude_controls),
        }
    }
}

/// A [`PodSecurity`] with its level and version resolved into the list of checks.
#[derive(Debug, Clone)]
pub(crate) struct CompiledPodSecurity {
    name: Cow<'static, str>,
    minor: u32,
    active: checks::ActiveChecks,
    exclusions: Vec<Exclusion>,
}

/// A [`ControlExclusion`] resolved into its checks.
#[derive(Debug, Clone)]
struct Exclusion {
    checks: Vec<checks::Check>,
    images: Vec<String>,
    /// The restricted field (normalized) and the values exempt in it.
    field: Option<(String, Vec<String>)>,
}

impl Exclusion {
    /// Whether this exclusion switches its checks off for the whole pod.
    fn whole_pod(&self) -> bool {
        self.images.is_empty() && self.field.is_none()
    }
}

pub(crate) fn validate_exclusion(e: &ControlExclusion) -> idp_core::Result<()> {
    let Some((_, per_container)) = checks::control(&e.control_name) else {
        let names: Vec<&str> = PodSecurity::control_names().collect();
        return Err(Error::invalid_input(format!(
            "excludeControls: `{}` is not a Pod Security Standards control; use one of {} (or a check id such as `capabilities_restricted`)",
            e.control_name,
            names.join(", ")
        )));
    };
    if !per_container && !e.images.is_empty() {
        return Err(Error::invalid_input(format!(
            "excludeControls: `{}` has no container fields, so it cannot be excluded for images; remove `images` to exclude it for the whole pod",
            e.control_name
        )));
    }
    if e.images.iter().any(|i| i.trim().is_empty()) {
        return Err(Error::invalid_input(format!(
            "excludeControls: `{}` has an empty image pattern; write an image (`*` matches any run of characters)",
            e.control_name
        )));
    }
    match (&e.restricted_field, e.values.is_empty()) {
        (None, true) => {}
        (None, false) => {
            return Err(Error::invalid_input(format!(
                "excludeControls: `{}` gives `values` without a `restrictedField`; name the field the values are for",
                e.control_name
            )));
        }
        (Some(field), true) => {
            return Err(Error::invalid_input(format!(
                "excludeControls: `{}` restricts `{field}` but gives no `values`; list the values to allow there",
                e.control_name
            )));
        }
        (Some(field), false) => {
            let fields = PodSecurity::restricted_fields(&e.control_name).unwrap_or_default();
            if !fields_include(&fields, field) {
                return Err(Error::invalid_input(format!(
                    "excludeControls: `{field}` is not a field of `{}`; use one of {}",
                    e.control_name,
                    fields.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// Whether `field` (any indices) is one of `fields`.
fn fields_include(fields: &[String], field: &str) -> bool {
    fields::normalize(field).is_some_and(|f| fields.contains(&f))
}

/// The exclusions whose control exists (an unknown name excludes nothing).
fn compile_exclusions(list: &[ControlExclusion]) -> Vec<Exclusion> {
    list.iter()
        .filter_map(|e| {
            let (checks, _) = checks::control(&e.control_name)?;
            // A field that does not parse exempts nothing (fails closed); validation
            // reports it where the exclusion is written.
            let field = match &e.restricted_field {
                Some(f) => Some((fields::normalize(f)?, e.values.clone())),
                None => None,
            };
            Some(Exclusion {
                checks,
                images: e.images.clone(),
                field,
            })
        })
        .collect()
}

/// The container a finding's path points into: a field below it, or its AppArmor
/// annotation.
fn container_of<'v, 'a>(
    pod: &'v PodView<'a>,
    path: &str,
) -> Option<&'v crate::view::ContainerView<'a>> {
    let annotated = path
        .split_once(checks::APPARMOR_PREFIX)
        .map(|(_, rest)| rest.trim_end_matches(['"', ']']));
    pod.containers().iter().find(|c| {
        if let Some(name) = annotated {
            return c.name == name;
        }
        let prefix = c.container.path();
        path.strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

/// The name violations carry: borrowed when it is the default, so that they cost no
/// allocation for it.
fn policy_name(name: &str) -> Cow<'static, str> {
    const DEFAULT: &str = "pod-security";
    if name == DEFAULT {
        Cow::Borrowed(DEFAULT)
    } else {
        Cow::Owned(name.to_owned())
    }
}

// The name is cloned into every violation: cheap when it is borrowed.
#[allow(clippy::ptr_arg)]
fn run_checks(
    name: &Cow<'static, str>,
    minor: u32,
    active: &checks::ActiveChecks,
    exclusions: &[Exclusion],
    pod: &PodView<'_>,
    out: &mut Vec<Violation>,
) {
    run_suspected_checks(
        name,
        minor,
        active,
        exclusions,
        pod,
        checks::suspects(pod),
        out,
    );
}

/// [`run_checks`] limited to the checks whose bit is set in `suspects`: only the checks
/// with something to look at run (see `checks::suspects`).
#[allow(clippy::ptr_arg)]
fn run_suspected_checks(
    name: &Cow<'static, str>,
    minor: u32,
    active: &checks::ActiveChecks,
    exclusions: &[Exclusion],
    pod: &PodView<'_>,
    suspects: u32,
    out: &mut Vec<Violation>,
) {
    let mut sink = checks::Sink { name, out };
    for check in active.iter() {
        if suspects & check.bit() == 0 {
            continue;
        }
        // The exclusions naming this check: off for the whole pod, or limited to some
        // containers or some values (no allocation when there are none).
        let mut off = false;
        let mut partial: Vec<&Exclusion> = Vec::new();
        for e in exclusions.iter().filter(|e| e.checks.contains(&check)) {
            off |= e.whole_pod();
            partial.push(e);
        }
        if off {
            continue;
        }
        let start = sink.out.len();
        check.run(pod, minor, &mut sink);
        if partial.is_empty() || sink.out.len() == start {
            continue;
        }
        let found = sink.out.split_off(start);
        sink.out.extend(
            found
                .into_iter()
                .filter(|v| !waived(check, v, &partial, pod, minor)),
        );
    }
}

/// Whether an exception's `podSecurity` entries waive the finding `v` of `object`: its
/// rule is a Pod Security check one of them names, and the finding lies in the images,
/// field and values they give. `pss` is the pod view and the version the finding was
/// made at, when known (else the view is built here and `latest` is assumed).
pub(crate) fn exclusions_waive(
    exclusions: &[ControlExclusion],
    v: &Violation,
    object: &Object,
    pss: Option<(&PodView<'_>, u32)>,
) -> bool {
    let Some(check) = checks::by_id(&v.rule) else {
        return false;
    };
    let compiled = compile_exclusions(exclusions);
    let partial: Vec<&Exclusion> = compiled
        .iter()
        .filter(|e| e.checks.contains(&check))
        .collect();
    if partial.is_empty() {
        return false;
    }
    if partial.iter().any(|e| e.whole_pod()) {
        return true;
    }
    match pss {
        Some((pod, minor)) => waived(check, v, &partial, pod, minor),
        None => PodSpec::of(object).is_some_and(|spec| {
            waived(
                check,
                v,
                &partial,
                &PodView::of(spec),
                PssVersion::Latest.minor(),
            )
        }),
    }
}

/// Whether the `partial` exclusions of `check` waive the finding `v`: every offending
/// field behind it is covered by an exclusion whose images (if any) include the
/// finding's container and whose restricted field (if any) lists the offending value.
fn waived(
    check: checks::Check,
    v: &Violation,
    partial: &[&Exclusion],
    pod: &PodView<'_>,
    minor: u32,
) -> bool {
    let Some(path) = v.path.as_deref() else {
        return false;
    };
    let container = container_of(pod, path);
    let image_ok = |e: &Exclusion| {
        e.images.is_empty()
            || container.is_some_and(|c| {
                e.images
                    .iter()
                    .any(|p| crate::matching::wildcard(p, c.image))
            })
    };
    // Image-only exclusions need no offending values.
    if partial.iter().any(|e| e.field.is_none() && image_ok(e)) {
        return true;
    }
    let offenses = fields::offenses(check, path, pod, minor);
    !offenses.is_empty()
        && offenses.iter().all(|o| {
            partial.iter().any(|e| {
                image_ok(e)
                    && e.field
                        .as_ref()
                        .is_some_and(|(field, values)| fields::waives(field, values, o))
            })
        })
}

impl NativePolicy for CompiledPodSecurity {
    fn pss_minor(&self) -> Option<u32> {
        Some(self.minor)
    }

    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        if let Some(pod) = &view.pod {
            run_checks(
                &self.name,
                self.minor,
                &self.active,
                &self.exclusions,
                pod,
                out,
            );
        }
    }
}

impl Policy for PodSecurity {
    fn name(&self) -> &str {
        &self.name
    }

    fn evaluate(&self, object: &Object, _ctx: &PolicyContext) -> Vec<Violation> {
        match PodSpec::of(object) {
            Some(pod) if self.level != Level::Privileged => self.evaluate_pod(&pod),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// A value for one security-relevant field: absent, or one of a few values that
    /// pass or fail some check.
    fn pick(options: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
        prop::option::of(prop::sample::select(options))
    }

    fn security_context() -> impl Strategy<Value = Value> {
        (
            (
                pick(vec![json!(true), json!(false), json!("yes")]),
                pick(vec![json!(true), json!(false)]),
                pick(vec![
                    json!({"drop": ["ALL"]}),
                    json!({"drop": ["NET_RAW"], "add": ["CHOWN"]}),
                    json!({"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}),
                    json!({"add": ["SYS_ADMIN"]}),
                    json!({"add": []}),
                    json!({"drop": "ALL"}),
                ]),
                pick(vec![json!(true), json!(false)]),
                pick(vec![json!(0), json!(1000)]),
            ),
            (
                pick(vec![
                    json!({"type": "RuntimeDefault"}),
                    json!({"type": "Localhost", "localhostProfile": "p"}),
                    json!({"type": "Unconfined"}),
                    json!({}),
                ]),
                pick(vec![
                    json!({"type": "container_t"}),
                    json!({"user": "root"}),
                ]),
                pick(vec![json!("Default"), json!("Unmasked"), json!("")]),
                pick(vec![
                    json!({"hostProcess": true}),
                    json!({"hostProcess": false}),
                ]),
                pick(vec![
                    json!({"type": "Unconfined"}),
                    json!({"type": "RuntimeDefault"}),
                ]),
                pick(vec![
                    json!([{"name": "kernel.shm_rmid_forced", "value": "0"}]),
                    json!([{"name": "kernel.msgmax", "value": "1"}]),
                    json!([]),
                ]),
            ),
        )
            .prop_map(
                |(
                    (privileged, ape, caps, non_root, user),
                    (seccomp, selinux, proc_mount, windows, apparmor, sysctls),
                )| {
                    let mut sc = serde_json::Map::new();
                    for (k, v) in [
                        ("privileged", privileged),
                        ("allowPrivilegeEscalation", ape),
                        ("capabilities", caps),
                        ("runAsNonRoot", non_root),
                        ("runAsUser", user),
                        ("seccompProfile", seccomp),
                        ("seLinuxOptions", selinux),
                        ("procMount", proc_mount),
                        ("windowsOptions", windows),
                        ("appArmorProfile", apparmor),
                        ("sysctls", sysctls),
                    ] {
                        if let Some(v) = v {
                            sc.insert(k.to_owned(), v);
                        }
                    }
                    Value::Object(sc)
                },
            )
    }

    fn container() -> impl Strategy<Value = Value> {
        (
            prop::option::of(security_context()),
            pick(vec![
                json!([{"containerPort": 8080}]),
                json!([{"containerPort": 22, "hostPort": 2222}]),
                json!([{"containerPort": 80, "hostPort": 0}]),
                json!([{"containerPort": 80, "hostPort": null}]),
            ]),
            pick(vec![
                json!({"httpGet": {"path": "/", "port": 80}}),
                json!({"httpGet": {"host": "10.0.0.1", "port": 80}}),
                json!({"tcpSocket": {"host": "", "port": 80}}),
            ]),
            pick(vec![
                json!({"postStart": {"httpGet": {"host": "evil", "port": 1}}}),
                json!({"preStop": {"exec": {"command": ["true"]}}}),
            ]),
        )
            .prop_map(|(sc, ports, probe, lifecycle)| {
                let mut c = json!({"name": "c", "image": "nginx:1"});
                for (k, v) in [
                    ("securityContext", sc),
                    ("ports", ports),
                    ("livenessProbe", probe),
                    ("lifecycle", lifecycle),
                ] {
                    if let Some(v) = v {
                        c[k] = v;
                    }
                }
                c
            })
    }

    fn pod() -> impl Strategy<Value = Value> {
        (
            prop::collection::vec(container(), 0..3),
            prop::collection::vec(container(), 0..2),
            prop::option::of(security_context()),
            pick(vec![
                json!([{"name": "v", "emptyDir": {}}]),
                json!([{"name": "v", "hostPath": {"path": "/"}}]),
                json!([{"name": "v", "nfs": {"server": "x"}}]),
                json!([{"name": "v", "hostPath": null}]),
                json!([{"name": "v"}]),
            ]),
            pick(vec![json!(true), json!(false)]),
            pick(vec![
                json!({"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}),
                json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}),
                json!({"a": "b"}),
            ]),
            pick(vec![json!({"name": "windows"}), json!({"name": "linux"})]),
            pick(vec![json!(false), json!(true)]),
        )
            .prop_map(
                |(containers, init, sc, volumes, host_net, annotations, os, host_users)| {
                    let mut spec = json!({"containers": containers, "initContainers": init});
                    for (k, v) in [
                        ("securityContext", sc),
                        ("volumes", volumes),
                        ("hostNetwork", host_net),
                        ("os", os),
                        ("hostUsers", host_users),
                    ] {
                        if let Some(v) = v {
                            spec[k] = v;
                        }
                    }
                    let mut metadata = json!({"name": "p"});
                    if let Some(a) = annotations {
                        metadata["annotations"] = a;
                    }
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
                },
            )
    }

    proptest! {
        /// Skipping the checks `suspects` rules out changes nothing: every level, a
        /// version on each side of every boundary.
        #[test]
        fn skipping_unsuspected_checks_finds_the_same(pod in pod()) {
            let object = Object::from_value(pod).unwrap();
            let spec = PodSpec::of(&object).unwrap();
            let view = PodView::of(spec);
            let name = Cow::Borrowed("pss");
            for level in [Level::Baseline, Level::Restricted] {
                for minor in [0, 8, 18, 19, 22, 23, 25, 27, 31, 34, 35, 37] {
                    let active = checks::active(level, minor);
                    let (mut filtered, mut all) = (Vec::new(), Vec::new());
                    run_checks(&name, minor, &active, &[], &view, &mut filtered);
                    run_suspected_checks(&name, minor, &active, &[], &view, u32::MAX, &mut all);
                    prop_assert_eq!(&filtered, &all, "level {:?} v1.{}", level, minor);
                }
            }
        }
    }
}
