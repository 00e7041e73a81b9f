//! One walk over an object: the fields every built-in check reads, borrowed from the
//! JSON and taken in a single pass over each mapping.
//!
//! The built-in policies ([Pod Security Standards](crate::pss) and the
//! [guardrails](crate::guardrails)) check an [`ObjectView`] rather than the object: the
//! kind is read once, the pod spec is found once ([autogen](crate::podspec)), and each
//! container's mapping and `securityContext` are walked once, key by key, instead of
//! being searched again by every check; each image is split once. The only allocation
//! is the list of container views, at its exact size, which keeps the view small to
//! move. A [`PolicySet`](crate::PolicySet) builds one view per object and hands it to
//! every built-in policy it holds.

use std::borrow::Cow;
use std::fmt;

use idp_core::model::Enforcement;
use idp_core::{Object, PolicyContext, Severity, Violation};
use serde_json::{Map, Value};

use crate::guardrails::ImageParts;
use crate::podspec::{Container, ContainerKind, PodSpec};

/// `format!` into a string allocated once with room for a typical message or path, the
/// arguments formatted in one pass. (`format!` guesses a capacity from the literal
/// pieces and then grows the string several times when the text starts with an
/// argument, as most messages and paths here do.)
pub(crate) fn format_exact(args: fmt::Arguments<'_>) -> String {
    /// Most messages fit: one allocation, no growth, no copy.
    const TYPICAL: usize = 128;
    if let Some(s) = args.as_str() {
        return s.to_owned();
    }
    let mut out = String::with_capacity(TYPICAL);
    // Writing into a `String` only fails when a `Display` impl does; the text is then
    // what was written so far, as with `format!`'s own `String` writes.
    let _ = fmt::write(&mut out, args);
    out
}

/// The pieces joined into one string allocated at exactly their length, without the
/// formatting machinery: what the field paths of violations are built with.
pub(crate) fn concat(pieces: &[&str]) -> String {
    let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for p in pieces {
        out.push_str(p);
    }
    out
}

/// The decimal digits of an index, on the stack (for [`concat`]).
pub(crate) enum Digits {
    /// 0 to 9, the common case: a constant.
    One(&'static str),
    /// The digits at the end of the buffer, from `start`.
    Many { bytes: [u8; 20], start: usize },
}

impl Digits {
    pub(crate) fn new(mut n: usize) -> Self {
        const ONE: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        if let Some(one) = ONE.get(n) {
            return Self::One(one);
        }
        let mut bytes = [b'0'; 20];
        let mut start = bytes.len();
        loop {
            start -= 1;
            // `n % 10` is below 10, so the cast keeps it whole.
            #[allow(clippy::cast_possible_truncation)]
            let digit = (n % 10) as u8;
            bytes[start] = b'0' + digit;
            n /= 10;
            if n == 0 || start == 0 {
                break;
            }
        }
        Self::Many { bytes, start }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::One(s) => s,
            // Only ASCII digits were written.
            Self::Many { bytes, start } => {
                std::str::from_utf8(&bytes[*start..]).unwrap_or_default()
            }
        }
    }
}

/// A violation of a built-in policy, built in place: the builder methods of
/// [`Violation`] move its some 200 bytes once per call.
pub(crate) fn violation(
    policy: &'static str,
    rule: &'static str,
    message: String,
    path: String,
    severity: Severity,
) -> Violation {
    Violation {
        policy: Cow::Borrowed(policy),
        rule: Cow::Borrowed(rule),
        message,
        path: Some(path),
        severity,
        enforcement: Enforcement::default(),
        object: None,
    }
}

/// [`format_exact`] with `format!` syntax.
macro_rules! text {
    ($($arg:tt)*) => {
        $crate::view::format_exact(format_args!($($arg)*))
    };
}
pub(crate) use text;

/// The `securityContext` fields the checks read (pod or container level), as the
/// checks read them: a field of the wrong JSON type counts as absent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SecurityFields<'a> {
    pub privileged: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    /// `capabilities.add`, taken in the same walk as `drops_all`.
    pub capabilities_add: Option<&'a Value>,
    pub app_armor_profile: Option<&'a Map<String, Value>>,
    pub se_linux_options: Option<&'a Map<String, Value>>,
    pub proc_mount: Option<&'a str>,
    pub windows_options: Option<&'a Map<String, Value>>,
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    pub sysctls: Option<&'a Vec<Value>>,
    /// `seccompProfile.type` when `seccompProfile` is a mapping (`""` when it has no
    /// string `type`).
    pub seccomp_type: Option<&'a str>,
    /// Whether `capabilities.drop` lists `ALL`.
    pub drops_all: bool,
}

impl<'a> SecurityFields<'a> {
    // Inlined into the container walk, the fields are written in place rather than
    // copied out of a returned value (85 instructions an object fewer, measured).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn of(sc: Option<&'a Map<String, Value>>) -> Self {
        let mut f = Self::default();
        for (key, v) in sc.into_iter().flatten() {
            match key.as_str() {
                "privileged" => f.privileged = v.as_bool(),
                "allowPrivilegeEscalation" => f.allow_privilege_escalation = v.as_bool(),
                "capabilities" => {
                    for (key, list) in v.as_object().into_iter().flatten() {
                        match key.as_str() {
                            "add" => f.capabilities_add = Some(list),
                            "drop" => {
                                f.drops_all = list
                                    .as_array()
                                    .is_some_and(|l| l.iter().any(|c| c.as_str() == Some("ALL")));
                            }
                            _ => {}
                        }
                    }
                }
                "appArmorProfile" => f.app_armor_profile = v.as_object(),
                "seLinuxOptions" => f.se_linux_options = v.as_object(),
                "procMount" => f.proc_mount = v.as_str(),
                "seccompProfile" => {
                    f.seccomp_type = v
                        .as_object()
                        .map(|p| p.get("type").and_then(Value::as_str).unwrap_or_default());
                }
                "windowsOptions" => f.windows_options = v.as_object(),
                "runAsNonRoot" => f.run_as_non_root = v.as_bool(),
                "runAsUser" => f.run_as_user = v.as_i64(),
                "sysctls" => f.sysctls = v.as_array(),
                _ => {}
            }
        }
        f
    }
}

/// One container with the fields the checks read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContainerView<'a> {
    pub container: Container<'a>,
    pub name: &'a str,
    pub image: &'a str,
    /// `image` split into registry, repository, tag and digest.
    pub image_parts: ImageParts<'a>,
    pub ports: Option<&'a Vec<Value>>,
    pub resources: Option<&'a Value>,
    pub liveness_probe: Option<&'a Value>,
    pub readiness_probe: Option<&'a Value>,
    pub startup_probe: Option<&'a Value>,
    pub lifecycle: Option<&'a Value>,
    pub security: SecurityFields<'a>,
    /// Which of `resources.requests.cpu`, `.requests.memory`, `.limits.cpu` and
    /// `.limits.memory` are set (not null, not `""`): the `RESOURCE_*` bits.
    pub resources_set: u8,
    /// Some port sets a `hostPort` other than 0 (or null).
    pub host_port: bool,
    /// Some probe's `httpGet` or `tcpSocket` has a `host` key, or the container has a
    /// `lifecycle`: the host probes check has something to look at.
    pub probe_host: bool,
}

/// [`ContainerView::resources_set`]: `resources.requests.cpu` is set.
pub(crate) const RESOURCE_REQUESTS_CPU: u8 = 1;
/// `resources.requests.memory` is set.
pub(crate) const RESOURCE_REQUESTS_MEMORY: u8 = 2;
/// `resources.limits.cpu` is set.
pub(crate) const RESOURCE_LIMITS_CPU: u8 = 4;
/// `resources.limits.memory` is set.
pub(crate) const RESOURCE_LIMITS_MEMORY: u8 = 8;

/// The `RESOURCE_*` bits set in a `resources` value.
fn resources_set(resources: &Value) -> u8 {
    let mut bits = 0;
    for (section, values) in resources.as_object().into_iter().flatten() {
        let (cpu, memory) = match section.as_str() {
            "requests" => (RESOURCE_REQUESTS_CPU, RESOURCE_REQUESTS_MEMORY),
            "limits" => (RESOURCE_LIMITS_CPU, RESOURCE_LIMITS_MEMORY),
            _ => continue,
        };
        for (name, v) in values.as_object().into_iter().flatten() {
            if v.is_null() || v.as_str() == Some("") {
                continue;
            }
            match name.as_str() {
                "cpu" => bits |= cpu,
                "memory" => bits |= memory,
                _ => {}
            }
        }
    }
    bits
}

/// Whether a probe's handler names a host (`httpGet.host` or `tcpSocket.host`).
fn probe_names_host(probe: &Value) -> bool {
    probe
        .as_object()
        .into_iter()
        .flatten()
        .any(|(action, spec)| {
            (action == "httpGet" || action == "tcpSocket")
                && spec.as_object().is_some_and(|s| s.contains_key("host"))
        })
}

/// The port numbers of a pod's containers (`containerPort` and `hostPort`), kept
/// inline: a policy forbidding some ports learns from them at once that none is there.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PortNumbers {
    numbers: [u16; PortNumbers::CAPACITY],
    len: usize,
    /// More numbers than fit: ask the containers.
    overflow: bool,
}

impl PortNumbers {
    const CAPACITY: usize = 8;

    fn add(&mut self, value: &Value) {
        // A value that is not a port number in range matches no forbidden port.
        let Some(n) = value.as_u64().and_then(|n| u16::try_from(n).ok()) else {
            return;
        };
        match self.numbers.get_mut(self.len) {
            Some(slot) => {
                *slot = n;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    /// Whether some port number may be one of `ports` (`true` when too many were seen to
    /// keep).
    pub(crate) fn may_include_any(&self, ports: &[u16]) -> bool {
        self.overflow
            || self
                .numbers
                .get(..self.len)
                .unwrap_or_default()
                .iter()
                .any(|n| ports.contains(n))
    }
}

impl<'a> ContainerView<'a> {
    pub(crate) fn of(
        value: &'a Map<String, Value>,
        kind: ContainerKind,
        index: usize,
        prefix: &'static str,
        port_numbers: &mut PortNumbers,
    ) -> Self {
        let mut name = "";
        let mut image = "";
        let mut ports = None;
        let mut resources = None;
        let mut probes = [None; 3];
        let mut lifecycle = None;
        let mut security_context = None;
        let mut resources_bits = 0;
        let mut host_port = false;
        for (key, v) in value {
            match key.as_str() {
                "name" => name = v.as_str().unwrap_or_default(),
                "image" => image = v.as_str().unwrap_or_default(),
                "ports" => {
                    ports = v.as_array();
                    for port in ports.into_iter().flatten().filter_map(Value::as_object) {
                        for (field, n) in port {
                            match field.as_str() {
                                "containerPort" => port_numbers.add(n),
                                "hostPort" => {
                                    port_numbers.add(n);
                                    host_port |= !(n.is_null() || n.as_i64() == Some(0));
                                }
                                _ => {}
                            }
                        }
                    }
                }
                "resources" => {
                    resources = Some(v);
                    resources_bits = resources_set(v);
                }
                "securityContext" => security_context = v.as_object(),
                "livenessProbe" => probes[0] = Some(v),
                "readinessProbe" => probes[1] = Some(v),
                "startupProbe" => probes[2] = Some(v),
                "lifecycle" => lifecycle = Some(v),
                _ => {}
            }
        }
        let [liveness_probe, readiness_probe, startup_probe] = probes;
        let probe_host =
            lifecycle.is_some() || probes.iter().flatten().any(|p| probe_names_host(p));
        Self {
            container: Container::new(value, security_context, kind, index, prefix),
            name,
            image,
            image_parts: ImageParts::parse(image),
            ports,
            resources,
            liveness_probe,
            readiness_probe,
            startup_probe,
            lifecycle,
            security: SecurityFields::of(security_context),
            resources_set: resources_bits,
            host_port,
            probe_host,
        }
    }

    pub(crate) fn kind(&self) -> ContainerKind {
        self.container.kind()
    }

    pub(crate) fn field_path(&self, field: &str) -> String {
        self.container.field_path(field)
    }

    pub(crate) fn field_path_args(&self, field: fmt::Arguments<'_>) -> String {
        self.container.field_path_args(field)
    }

    pub(crate) fn field_path_pieces(&self, field: &[&str]) -> String {
        self.container.field_path_pieces(field)
    }
}

/// A pod spec with the pod-level fields the checks read and every container.
#[derive(Debug, Clone)]
pub(crate) struct PodView<'a> {
    pub pod: PodSpec<'a>,
    pub host_network: Option<bool>,
    pub host_pid: Option<bool>,
    pub host_ipc: Option<bool>,
    /// `spec.hostUsers: false`.
    pub user_namespaced: bool,
    /// `spec.os.name: windows`.
    pub windows: bool,
    pub volumes: Option<&'a Vec<Value>>,
    pub security: SecurityFields<'a>,
    /// The port numbers of every container.
    pub port_numbers: PortNumbers,
    containers: Vec<ContainerView<'a>>,
}

impl<'a> PodView<'a> {
    pub(crate) fn of(pod: PodSpec<'a>) -> Self {
        let mut view = Self {
            pod,
            host_network: None,
            host_pid: None,
            host_ipc: None,
            user_namespaced: false,
            windows: false,
            volumes: None,
            security: SecurityFields::default(),
            port_numbers: PortNumbers::default(),
            containers: Vec::new(),
        };
        let mut lists: [Option<&'a Vec<Value>>; 3] = [None; 3];
        let mut security = None;
        for (key, v) in pod.spec() {
            match key.as_str() {
                "initContainers" => lists[0] = v.as_array(),
                "containers" => lists[1] = v.as_array(),
                "ephemeralContainers" => lists[2] = v.as_array(),
                "securityContext" => security = v.as_object(),
                "volumes" => view.volumes = v.as_array(),
                "hostNetwork" => view.host_network = v.as_bool(),
                "hostPID" => view.host_pid = v.as_bool(),
                "hostIPC" => view.host_ipc = v.as_bool(),
                "hostUsers" => view.user_namespaced = v.as_bool() == Some(false),
                "os" => {
                    view.windows = v.get("name").and_then(Value::as_str) == Some("windows");
                }
                _ => {}
            }
        }
        view.security = SecurityFields::of(security);
        // One allocation of the exact size: the view stays small to move around.
        view.containers = Vec::with_capacity(lists.iter().flatten().map(|l| l.len()).sum());
        // The order of `PodSpec::containers`: init, regular, ephemeral.
        for (kind, list) in ContainerKind::ALL.into_iter().zip(lists) {
            for (index, v) in list.into_iter().flatten().enumerate() {
                if let Some(value) = v.as_object() {
                    let c =
                        ContainerView::of(value, kind, index, pod.path(), &mut view.port_numbers);
                    view.containers.push(c);
                }
            }
        }
        view
    }

    /// Every container: init containers, then containers, then ephemeral containers.
    pub(crate) fn containers(&self) -> &[ContainerView<'a>] {
        &self.containers
    }
}

/// An object with its kind and, for pod-bearing kinds, its [`PodView`].
#[derive(Debug, Clone)]
pub(crate) struct ObjectView<'a> {
    pub object: &'a Object,
    pub kind: &'a str,
    pub pod: Option<PodView<'a>>,
}

impl<'a> ObjectView<'a> {
    pub(crate) fn of(object: &'a Object) -> Self {
        let kind = object.kind();
        Self {
            object,
            kind,
            pod: PodSpec::of_kind(object, kind).map(PodView::of),
        }
    }

    /// The object and its kind only, for the policies that never read a pod spec.
    pub(crate) fn without_pod(object: &'a Object) -> Self {
        Self {
            object,
            kind: object.kind(),
            pod: None,
        }
    }
}

/// A built-in policy checking an [`ObjectView`]: what a
/// [`PolicySet`](crate::PolicySet) calls instead of [`Policy::evaluate`] for the
/// policies it recognises, so that every one of them shares one walk of the object.
/// Each built-in's `Policy::evaluate` is a view of the object plus this, so both give
/// the same violations in the same order.
pub(crate) trait NativePolicy: Send + Sync + fmt::Debug {
    /// Append the violations of `view.object` to `out`.
    fn check(&self, view: &ObjectView<'_>, ctx: &PolicyContext, out: &mut Vec<Violation>);

    /// Whether the policy has anything to check on this object (its kind carries the
    /// fields it reads): a policy report counts a pass only for these.
    fn applies(&self, view: &ObjectView<'_>) -> bool {
        view.pod.is_some()
    }

    /// The Pod Security Standards minor version this policy checks at, for a Pod
    /// Security policy (exceptions waiving its findings by field need it).
    fn pss_minor(&self) -> Option<u32> {
        None
    }
}

/// `Policy::evaluate` of a built-in: one view, one check.
pub(crate) fn evaluate_native(
    policy: &dyn NativePolicy,
    object: &Object,
    ctx: &PolicyContext,
) -> Vec<Violation> {
    let mut out = Vec::new();
    policy.check(&ObjectView::of(object), ctx, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_concat() {
        for n in [0, 7, 10, 99, 12_345, usize::MAX] {
            assert_eq!(Digits::new(n).as_str(), n.to_string());
        }
        let s = concat(&["spec.", "containers", "[", Digits::new(12).as_str(), "]"]);
        assert_eq!(s, "spec.containers[12]");
        assert_eq!(s.capacity(), s.len());
        assert_eq!(concat(&[]), "");
    }

    #[test]
    fn format_exact_long_and_short() {
        let long = "x".repeat(500);
        assert_eq!(text!("{long}!"), format!("{long}!"));
        assert_eq!(text!("a{}b", 1), "a1b");
        assert_eq!(text!("plain"), "plain");
    }
}
