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
//! Differences from upstream, on purpose: upstream reports one result per check listing
//! every offending container; this crate reports one violation per offending field, so
//! each has its own path. A volume that names no source at all is treated as the
//! `emptyDir` the API server would default it to.

mod checks;

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

    /// The ids of the checks in force at this level and version, in evaluation order.
    ///
    /// ```
    /// let b = idp_policy::pss::PodSecurity::baseline().at("v1.33".parse().unwrap());
    /// assert!(!b.checks().contains(&"hostProbesAndHostLifecycle"));
    /// let b = idp_policy::pss::PodSecurity::baseline().at("v1.34".parse().unwrap());
    /// assert!(b.checks().contains(&"hostProbesAndHostLifecycle"));
    /// ```
    pub fn checks(&self) -> Vec<&'static str> {
        checks::active(self.level, self.version.minor())
            .iter()
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
        }
    }
}

/// A [`PodSecurity`] with its level and version resolved into the list of checks.
#[derive(Debug, Clone)]
pub(crate) struct CompiledPodSecurity {
    name: Cow<'static, str>,
    minor: u32,
    active: checks::ActiveChecks,
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
    pod: &PodView<'_>,
    out: &mut Vec<Violation>,
) {
    let mut sink = checks::Sink { name, out };
    for check in active.iter() {
        check.run(pod, minor, &mut sink);
    }
}

impl NativePolicy for CompiledPodSecurity {
    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        if let Some(pod) = &view.pod {
            run_checks(&self.name, self.minor, &self.active, pod, out);
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
