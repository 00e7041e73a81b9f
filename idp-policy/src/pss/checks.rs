//! The individual Pod Security Standards checks, each a function over a [`PodView`]
//! (the pod's fields, walked once) and its containers.

use std::borrow::Cow;

use idp_core::model::Enforcement;
use idp_core::{Severity, Violation};
use serde_json::{Map, Value};

use super::Level;
use crate::view::{ContainerView, Digits, PodView, SecurityFields, text};

/// Where the checks put their findings: violations of the policy `name`, built only
/// when a check fails.
pub(crate) struct Sink<'o> {
    pub name: &'o Cow<'static, str>,
    pub out: &'o mut Vec<Violation>,
}

impl Sink<'_> {
    /// Like [`Sink::push`] with the detail given as pieces joined without the formatting
    /// machinery: for the checks that fail most often.
    fn push_pieces(&mut self, rule: &'static str, reason: &str, detail: &[&str], path: String) {
        if self.out.capacity() == 0 {
            self.out.reserve(16);
        }
        let len = reason.len() + 3 + detail.iter().map(|p| p.len()).sum::<usize>();
        let mut message = String::with_capacity(len);
        message.push_str(reason);
        message.push_str(" (");
        for p in detail {
            message.push_str(p);
        }
        message.push(')');
        self.out.push(self.violation(rule, message, path));
    }

    /// The violation, built in place (no builder moves: it is some 200 bytes).
    fn violation(&self, rule: &'static str, message: String, path: String) -> Violation {
        Violation {
            policy: self.name.clone(),
            rule: Cow::Borrowed(rule),
            message,
            path: Some(path),
            severity: Severity::High,
            enforcement: Enforcement::default(),
            object: None,
        }
    }

    fn push(
        &mut self,
        rule: &'static str,
        reason: &str,
        detail: impl std::fmt::Display,
        path: String,
    ) {
        if self.out.capacity() == 0 {
            // A pod that breaks one check usually breaks several: one allocation for
            // the first findings rather than growing 4, 8, 16.
            self.out.reserve(16);
        }
        let message = text!("{reason} ({detail})");
        self.out.push(self.violation(rule, message, path));
    }
}

/// A check id with the function implementing every revision of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    HostNamespaces,
    Privileged,
    CapabilitiesBaseline,
    HostPathVolumes,
    HostPorts,
    AppArmorProfile,
    SeLinuxOptions,
    ProcMount,
    SeccompProfileBaseline,
    Sysctls,
    WindowsHostProcess,
    HostProbesAndHostLifecycle,
    RestrictedVolumes,
    AllowPrivilegeEscalation,
    RunAsNonRoot,
    RunAsUser,
    SeccompProfileRestricted,
    CapabilitiesRestricted,
    ProcMountRestricted,
}

/// Every check.
pub(crate) const ALL: [Check; 19] = [
    Check::HostNamespaces,
    Check::Privileged,
    Check::CapabilitiesBaseline,
    Check::HostPathVolumes,
    Check::HostPorts,
    Check::AppArmorProfile,
    Check::SeLinuxOptions,
    Check::ProcMount,
    Check::SeccompProfileBaseline,
    Check::Sysctls,
    Check::WindowsHostProcess,
    Check::HostProbesAndHostLifecycle,
    Check::RestrictedVolumes,
    Check::AllowPrivilegeEscalation,
    Check::RunAsNonRoot,
    Check::RunAsUser,
    Check::SeccompProfileRestricted,
    Check::CapabilitiesRestricted,
    Check::ProcMountRestricted,
];

/// The check with this id.
pub(crate) fn by_id(id: &str) -> Option<Check> {
    ALL.into_iter().find(|c| c.id() == id)
}

impl Check {
    pub(crate) fn id(self) -> &'static str {
        match self {
            Self::HostNamespaces => "hostNamespaces",
            Self::Privileged => "privileged",
            Self::CapabilitiesBaseline => "capabilities_baseline",
            Self::HostPathVolumes => "hostPathVolumes",
            Self::HostPorts => "hostPorts",
            Self::AppArmorProfile => "appArmorProfile",
            Self::SeLinuxOptions => "seLinuxOptions",
            Self::ProcMount => "procMount",
            Self::SeccompProfileBaseline => "seccompProfile_baseline",
            Self::Sysctls => "sysctls",
            Self::WindowsHostProcess => "windowsHostProcess",
            Self::HostProbesAndHostLifecycle => "hostProbesAndHostLifecycle",
            Self::RestrictedVolumes => "restrictedVolumes",
            Self::AllowPrivilegeEscalation => "allowPrivilegeEscalation",
            Self::RunAsNonRoot => "runAsNonRoot",
            Self::RunAsUser => "runAsUser",
            Self::SeccompProfileRestricted => "seccompProfile_restricted",
            Self::CapabilitiesRestricted => "capabilities_restricted",
            Self::ProcMountRestricted => "procMount_restricted",
        }
    }

    /// This check's bit in [`suspects`].
    pub(crate) const fn bit(self) -> u32 {
        1 << self as u32
    }

    pub(crate) fn run(self, pod: &PodView<'_>, minor: u32, out: &mut Sink<'_>) {
        let cs = pod.containers();
        match self {
            Self::HostNamespaces => host_namespaces(pod, out),
            Self::Privileged => privileged(cs, out),
            Self::CapabilitiesBaseline => capabilities_baseline(cs, out),
            Self::HostPathVolumes => host_path_volumes(pod, out),
            Self::HostPorts => host_ports(cs, out),
            Self::AppArmorProfile => app_armor(pod, cs, out),
            Self::SeLinuxOptions => se_linux(pod, cs, minor, out),
            Self::ProcMount => {
                if !(minor >= 35 && pod.user_namespaced) {
                    proc_mount(cs, self.id(), out);
                }
            }
            Self::ProcMountRestricted => proc_mount(cs, self.id(), out),
            Self::SeccompProfileBaseline => seccomp_baseline(pod, cs, minor, out),
            Self::Sysctls => sysctls(pod, minor, out),
            Self::WindowsHostProcess => windows_host_process(pod, cs, out),
            Self::HostProbesAndHostLifecycle => host_probes(cs, out),
            Self::RestrictedVolumes => restricted_volumes(pod, out),
            Self::AllowPrivilegeEscalation => {
                if !(minor >= 25 && pod.windows) {
                    allow_privilege_escalation(cs, out);
                }
            }
            Self::RunAsNonRoot => {
                if !(minor >= 35 && pod.user_namespaced) {
                    run_as_non_root(pod, cs, out);
                }
            }
            Self::RunAsUser => {
                if !(minor >= 35 && pod.user_namespaced) {
                    run_as_user(pod, cs, out);
                }
            }
            Self::SeccompProfileRestricted => {
                if !(minor >= 25 && pod.windows) {
                    seccomp_restricted(pod, cs, out);
                }
            }
            Self::CapabilitiesRestricted => {
                if !(minor >= 25 && pod.windows) {
                    capabilities_restricted(cs, out);
                }
            }
        }
    }
}

/// A fixed-capacity list of checks, so that finding the checks in force allocates
/// nothing (every check appears at most once, so the capacity is the number of checks).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActiveChecks {
    list: [Check; ActiveChecks::CAPACITY],
    len: usize,
}

impl ActiveChecks {
    const CAPACITY: usize = 19;

    fn new() -> Self {
        Self {
            list: [Check::HostNamespaces; Self::CAPACITY],
            len: 0,
        }
    }

    fn push(&mut self, check: Check) {
        // Each check is pushed at most once, so `len` never reaches past the capacity;
        // `get_mut` keeps that a no-op rather than a panic should it ever change.
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = check;
            self.len += 1;
        }
    }

    fn extend(&mut self, checks: impl IntoIterator<Item = Check>) {
        for c in checks {
            self.push(c);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Check> + '_ {
        self.list[..self.len].iter().copied()
    }
}

/// The Pod Security Standards controls by the names the Kubernetes documentation (and
/// Kyverno's `podSecurity.exclude`) gives them, with the checks implementing each, and
/// whether the control has fields in containers (an exclusion limited to images only
/// makes sense for those).
pub(crate) const CONTROLS: &[(&str, &[Check], bool)] = &[
    ("HostProcess", &[Check::WindowsHostProcess], true),
    ("Host Namespaces", &[Check::HostNamespaces], false),
    ("Privileged Containers", &[Check::Privileged], true),
    (
        "Capabilities",
        &[Check::CapabilitiesBaseline, Check::CapabilitiesRestricted],
        true,
    ),
    ("HostPath Volumes", &[Check::HostPathVolumes], false),
    ("Host Ports", &[Check::HostPorts], true),
    (
        "Host Probes / Lifecycle Hooks",
        &[Check::HostProbesAndHostLifecycle],
        true,
    ),
    ("AppArmor", &[Check::AppArmorProfile], true),
    ("SELinux", &[Check::SeLinuxOptions], true),
    (
        "/proc Mount Type",
        &[Check::ProcMount, Check::ProcMountRestricted],
        true,
    ),
    (
        "Seccomp",
        &[
            Check::SeccompProfileBaseline,
            Check::SeccompProfileRestricted,
        ],
        true,
    ),
    ("Sysctls", &[Check::Sysctls], false),
    ("Volume Types", &[Check::RestrictedVolumes], false),
    (
        "Privilege Escalation",
        &[Check::AllowPrivilegeEscalation],
        true,
    ),
    ("Running as Non-root", &[Check::RunAsNonRoot], true),
    ("Running as Non-root user", &[Check::RunAsUser], true),
];

/// The checks a control name (case-insensitive) or a check id names, and whether it has
/// container-level fields.
pub(crate) fn control(name: &str) -> Option<(Vec<Check>, bool)> {
    if let Some((_, checks, per_container)) = CONTROLS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name.trim()))
    {
        return Some((checks.to_vec(), *per_container));
    }
    CONTROLS.iter().find_map(|(_, checks, per_container)| {
        checks
            .iter()
            .find(|c| c.id() == name.trim())
            .map(|c| (vec![*c], *per_container))
    })
}

/// The checks in force at `level` and effective `minor`, with restricted's overrides
/// applied.
pub(crate) fn active(level: Level, minor: u32) -> ActiveChecks {
    use Check::{
        AllowPrivilegeEscalation, AppArmorProfile, CapabilitiesBaseline, CapabilitiesRestricted,
        HostNamespaces, HostPathVolumes, HostPorts, HostProbesAndHostLifecycle, Privileged,
        ProcMount, ProcMountRestricted, RestrictedVolumes, RunAsNonRoot, RunAsUser, SeLinuxOptions,
        SeccompProfileBaseline, SeccompProfileRestricted, Sysctls, WindowsHostProcess,
    };
    let mut out = ActiveChecks::new();
    if level == Level::Privileged {
        return out;
    }
    let restricted = level == Level::Restricted;
    out.extend([HostNamespaces, Privileged]);
    if !(restricted && minor >= 22) {
        out.push(CapabilitiesBaseline);
    }
    if !restricted {
        out.push(HostPathVolumes);
    }
    out.extend([HostPorts, AppArmorProfile, SeLinuxOptions]);
    if !(restricted && minor >= 35) {
        out.push(ProcMount);
    }
    if !(restricted && minor >= 19) {
        out.push(SeccompProfileBaseline);
    }
    out.extend([Sysctls, WindowsHostProcess]);
    if minor >= 34 {
        out.push(HostProbesAndHostLifecycle);
    }
    if restricted {
        out.push(RestrictedVolumes);
        if minor >= 8 {
            out.push(AllowPrivilegeEscalation);
        }
        out.push(RunAsNonRoot);
        if minor >= 23 {
            out.push(RunAsUser);
        }
        if minor >= 19 {
            out.push(SeccompProfileRestricted);
        }
        if minor >= 22 {
            out.push(CapabilitiesRestricted);
        }
        if minor >= 35 {
            out.push(ProcMountRestricted);
        }
    }
    out
}

/// The checks that may find something in `pod`, as [`Check::bit`]s: a check whose bit
/// is clear finds nothing at any version, so it need not run. Read from the fields the
/// view already holds, in one pass over the containers; a set bit only means the check
/// has something to look at (the check itself decides, version by version).
pub(crate) fn suspects(pod: &PodView<'_>) -> u32 {
    use Check::{
        AllowPrivilegeEscalation, AppArmorProfile, CapabilitiesBaseline, CapabilitiesRestricted,
        HostNamespaces, HostPathVolumes, HostPorts, HostProbesAndHostLifecycle, Privileged,
        ProcMount, ProcMountRestricted, RestrictedVolumes, RunAsNonRoot, RunAsUser, SeLinuxOptions,
        SeccompProfileBaseline, SeccompProfileRestricted, Sysctls, WindowsHostProcess,
    };
    let valid_seccomp = |t: Option<&str>| matches!(t, Some("RuntimeDefault" | "Localhost"));
    let mut bits = 0;
    let mut set = |check: Check, on: bool| {
        if on {
            bits |= check.bit();
        }
    };
    let sc = &pod.security;
    set(
        HostNamespaces,
        pod.host_network == Some(true) || pod.host_pid == Some(true) || pod.host_ipc == Some(true),
    );
    // Annotations are read by the AppArmor check and, before v1.19, by seccomp.
    let annotated = pod.pod.annotations().next().is_some();
    set(AppArmorProfile, annotated || sc.app_armor_profile.is_some());
    set(
        SeccompProfileBaseline,
        annotated || sc.seccomp_type == Some("Unconfined"),
    );
    set(SeLinuxOptions, sc.se_linux_options.is_some());
    set(Sysctls, sc.sysctls.is_some_and(|s| !s.is_empty()));
    set(WindowsHostProcess, sc.windows_options.is_some());
    let pod_non_root = sc.run_as_non_root == Some(true);
    set(RunAsNonRoot, sc.run_as_non_root == Some(false));
    set(RunAsUser, sc.run_as_user == Some(0));
    let pod_seccomp = valid_seccomp(sc.seccomp_type);
    set(
        SeccompProfileRestricted,
        sc.seccomp_type.is_some() && !pod_seccomp,
    );
    if pod.volumes.is_some_and(|v| !v.is_empty()) {
        let (host_path, restricted) = volume_suspects(pod);
        set(HostPathVolumes, host_path);
        set(RestrictedVolumes, restricted);
    }
    for c in pod.containers() {
        let s = &c.security;
        set(Privileged, s.privileged == Some(true));
        let adds = s
            .capabilities_add
            .is_some_and(|a| a.as_array().is_some_and(|a| !a.is_empty()));
        set(CapabilitiesBaseline, adds);
        set(CapabilitiesRestricted, adds || !s.drops_all);
        set(HostPorts, c.host_port);
        set(AppArmorProfile, s.app_armor_profile.is_some());
        set(SeLinuxOptions, s.se_linux_options.is_some());
        let proc_mount = s
            .proc_mount
            .is_some_and(|m| !m.is_empty() && m != "Default");
        set(ProcMount, proc_mount);
        set(ProcMountRestricted, proc_mount);
        set(SeccompProfileBaseline, s.seccomp_type == Some("Unconfined"));
        set(
            SeccompProfileRestricted,
            match s.seccomp_type {
                Some(t) => !valid_seccomp(Some(t)),
                None => !pod_seccomp,
            },
        );
        set(WindowsHostProcess, s.windows_options.is_some());
        set(HostProbesAndHostLifecycle, c.probe_host);
        set(
            AllowPrivilegeEscalation,
            s.allow_privilege_escalation != Some(false),
        );
        set(
            RunAsNonRoot,
            match s.run_as_non_root {
                Some(non_root) => !non_root,
                None => !pod_non_root,
            },
        );
        set(RunAsUser, s.run_as_user == Some(0));
    }
    bits
}

/// Whether some volume is a `hostPath` one, and whether some uses a type restricted
/// forbids: the conditions of the two volume checks.
fn volume_suspects(pod: &PodView<'_>) -> (bool, bool) {
    let (mut host_path, mut restricted) = (false, false);
    for (_, v) in volumes(pod) {
        let mut source = false;
        let mut allowed = false;
        for (k, val) in v {
            if k == "name" || val.is_null() {
                continue;
            }
            source = true;
            host_path |= k == "hostPath";
            allowed |= RESTRICTED_VOLUME_TYPES.binary_search(&k.as_str()).is_ok();
        }
        restricted |= source && !allowed;
    }
    (host_path, restricted)
}

fn string<'a>(map: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a str> {
    map?.get(key)?.as_str()
}

fn strings(value: Option<&Value>) -> impl Iterator<Item = (usize, &str)> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| Some((i, v.as_str()?)))
}

fn host_namespaces(pod: &PodView<'_>, out: &mut Sink<'_>) {
    for (field, set) in [
        ("hostNetwork", pod.host_network),
        ("hostPID", pod.host_pid),
        ("hostIPC", pod.host_ipc),
    ] {
        if set == Some(true) {
            out.push(
                "hostNamespaces",
                "host namespaces",
                format_args!("{field}=true"),
                text!("{}.{field}", pod.pod.path()),
            );
        }
    }
}

fn privileged(cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    for c in cs {
        if c.security.privileged == Some(true) {
            out.push_pieces(
                "privileged",
                "privileged",
                &[
                    "container \"",
                    c.name,
                    "\" must not set securityContext.privileged=true",
                ],
                c.field_path("securityContext.privileged"),
            );
        }
    }
}

/// Sorted, so that membership is a binary search.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn forbidden_adds(
    c: &ContainerView<'_>,
    allowed: &[&str],
    rule: &'static str,
    reason: &str,
    out: &mut Sink<'_>,
) {
    for (i, cap) in strings(c.security.capabilities_add) {
        if allowed.binary_search(&cap).is_err() {
            let index = Digits::new(i);
            out.push_pieces(
                rule,
                reason,
                &[
                    "container \"",
                    c.name,
                    "\" must not include \"",
                    cap,
                    "\" in securityContext.capabilities.add",
                ],
                c.field_path_pieces(&["securityContext.capabilities.add[", index.as_str(), "]"]),
            );
        }
    }
}

fn capabilities_baseline(cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    for c in cs {
        forbidden_adds(
            c,
            BASELINE_CAPABILITIES,
            "capabilities_baseline",
            "non-default capabilities",
            out,
        );
    }
}

fn capabilities_restricted(cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    const RULE: &str = "capabilities_restricted";
    const REASON: &str = "unrestricted capabilities";
    for c in cs {
        if !c.security.drops_all {
            out.push_pieces(
                RULE,
                REASON,
                &[
                    "container \"",
                    c.name,
                    "\" must set securityContext.capabilities.drop=[\"ALL\"]",
                ],
                c.field_path("securityContext.capabilities.drop"),
            );
        }
        forbidden_adds(c, &["NET_BIND_SERVICE"], RULE, REASON, out);
    }
}

fn volumes<'a>(pod: &PodView<'a>) -> impl Iterator<Item = (usize, &'a Map<String, Value>)> + 'a {
    pod.volumes
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| Some((i, v.as_object()?)))
}

fn host_path_volumes(pod: &PodView<'_>, out: &mut Sink<'_>) {
    for (i, v) in volumes(pod) {
        if v.get("hostPath").is_some_and(|h| !h.is_null()) {
            out.push(
                "hostPathVolumes",
                "hostPath volumes",
                format_args!("volume \"{}\"", string(Some(v), "name").unwrap_or_default()),
                text!("{}.volumes[{i}].hostPath", pod.pod.path()),
            );
        }
    }
}

/// Sorted, so that membership is a binary search.
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(pod: &PodView<'_>, out: &mut Sink<'_>) {
    for (i, v) in volumes(pod) {
        let sources = || v.iter().filter(|(k, val)| *k != "name" && !val.is_null());
        if sources().any(|(k, _)| RESTRICTED_VOLUME_TYPES.binary_search(&k.as_str()).is_ok()) {
            continue;
        }
        if let Some((kind, _)) = sources().next() {
            out.push(
                "restrictedVolumes",
                "restricted volume types",
                format_args!(
                    "volume \"{}\" uses restricted volume type \"{kind}\"",
                    string(Some(v), "name").unwrap_or_default()
                ),
                text!("{}.volumes[{i}].{kind}", pod.pod.path()),
            );
        }
    }
}

fn host_ports(cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    for c in cs {
        for (j, port) in c.ports.into_iter().flatten().enumerate() {
            let Some(host_port) = port.get("hostPort") else {
                continue;
            };
            let zero = host_port.is_null() || host_port.as_i64() == Some(0);
            if !zero {
                out.push(
                    "hostPorts",
                    "hostPort",
                    format_args!("container \"{}\" uses hostPort {host_port}", c.name),
                    c.field_path_args(format_args!("ports[{j}].hostPort")),
                );
            }
        }
    }
}

pub(crate) const APPARMOR_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn app_armor(pod: &PodView<'_>, cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    fn bad_type<'a>(sc: &SecurityFields<'a>) -> Option<&'a str> {
        let profile = sc.app_armor_profile?;
        let t = string(Some(profile), "type").unwrap_or_default();
        (t != "RuntimeDefault" && t != "Localhost").then_some(t)
    }
    const RULE: &str = "appArmorProfile";
    const REASON: &str = "forbidden AppArmor profile";
    for (key, value) in pod.pod.annotations() {
        if key.starts_with(APPARMOR_PREFIX)
            && !(value.is_empty() || value == "runtime/default" || value.starts_with("localhost/"))
        {
            out.push(
                RULE,
                REASON,
                format_args!("{key}=\"{value}\""),
                text!("{}.annotations[\"{key}\"]", pod.pod.metadata_path()),
            );
        }
    }
    if let Some(t) = bad_type(&pod.security) {
        out.push(
            RULE,
            REASON,
            format_args!("pod must not set securityContext.appArmorProfile.type to \"{t}\""),
            text!("{}.securityContext.appArmorProfile.type", pod.pod.path()),
        );
    }
    for c in cs {
        if let Some(t) = bad_type(&c.security) {
            out.push(
                RULE,
                REASON,
                format_args!(
                    "container \"{}\" must not set securityContext.appArmorProfile.type to \"{t}\"",
                    c.name
                ),
                c.field_path("securityContext.appArmorProfile.type"),
            );
        }
    }
}

/// The forbidden fields of a `seLinuxOptions` mapping at `minor`, with their values:
/// a `type` outside the allowed list, a non-empty `user` or `role`.
pub(crate) fn se_linux_offending(
    opts: &Map<String, Value>,
    minor: u32,
) -> impl Iterator<Item = (&'static str, &str)> {
    let allowed: &[&str] = if minor >= 31 {
        &[
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        ]
    } else {
        &["", "container_t", "container_init_t", "container_kvm_t"]
    };
    let kind = string(Some(opts), "type")
        .filter(|t| !allowed.contains(t))
        .map(|t| ("type", t));
    let others = ["user", "role"].into_iter().filter_map(|field| {
        string(Some(opts), field)
            .filter(|v| !v.is_empty())
            .map(|v| (field, v))
    });
    kind.into_iter().chain(others)
}

fn se_linux(pod: &PodView<'_>, cs: &[ContainerView<'_>], minor: u32, out: &mut Sink<'_>) {
    let problems = |sc: &SecurityFields<'_>| -> Option<String> {
        let bad: Vec<String> = se_linux_offending(sc.se_linux_options?, minor)
            .map(|(field, v)| text!("{field} \"{v}\""))
            .collect();
        (!bad.is_empty()).then(|| bad.join("; "))
    };
    if let Some(p) = problems(&pod.security) {
        out.push(
            "seLinuxOptions",
            "seLinuxOptions",
            format_args!("pod set forbidden securityContext.seLinuxOptions: {p}"),
            text!("{}.securityContext.seLinuxOptions", pod.pod.path()),
        );
    }
    for c in cs {
        if let Some(p) = problems(&c.security) {
            out.push(
                "seLinuxOptions",
                "seLinuxOptions",
                format_args!(
                    "container \"{}\" set forbidden securityContext.seLinuxOptions: {p}",
                    c.name
                ),
                c.field_path("securityContext.seLinuxOptions"),
            );
        }
    }
}

fn proc_mount(cs: &[ContainerView<'_>], rule: &'static str, out: &mut Sink<'_>) {
    for c in cs {
        if let Some(m) = c.security.proc_mount
            && !m.is_empty()
            && m != "Default"
        {
            out.push(
                rule,
                "procMount",
                format_args!(
                    "container \"{}\" must not set securityContext.procMount to \"{m}\"",
                    c.name
                ),
                c.field_path("securityContext.procMount"),
            );
        }
    }
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn seccomp_baseline(pod: &PodView<'_>, cs: &[ContainerView<'_>], minor: u32, out: &mut Sink<'_>) {
    const RULE: &str = "seccompProfile_baseline";
    if minor < 19 {
        for (key, value) in pod.pod.annotations() {
            let about = if key == SECCOMP_POD_ANNOTATION {
                Some("pod".to_owned())
            } else {
                key.strip_prefix(SECCOMP_CONTAINER_PREFIX)
                    .map(|c| text!("container \"{c}\""))
            };
            if let Some(about) = about
                && value == "unconfined"
            {
                out.push(
                    RULE,
                    "seccompProfile",
                    format_args!("{about} must not set {key}=\"unconfined\""),
                    text!("{}.annotations[\"{key}\"]", pod.pod.metadata_path()),
                );
            }
        }
        return;
    }
    if pod.security.seccomp_type == Some("Unconfined") {
        out.push(
            RULE,
            "seccompProfile",
            "pod must not set securityContext.seccompProfile.type to \"Unconfined\"",
            text!("{}.securityContext.seccompProfile.type", pod.pod.path()),
        );
    }
    for c in cs {
        if c.security.seccomp_type == Some("Unconfined") {
            out.push(
                RULE,
                "seccompProfile",
                format_args!(
                    "container \"{}\" must not set securityContext.seccompProfile.type to \"Unconfined\"",
                    c.name
                ),
                c.field_path("securityContext.seccompProfile.type"),
            );
        }
    }
}

fn seccomp_restricted(pod: &PodView<'_>, cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    const RULE: &str = "seccompProfile_restricted";
    let valid = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut pod_set = false;
    if let Some(t) = pod.security.seccomp_type {
        if valid(t) {
            pod_set = true;
        } else {
            out.push(
                RULE,
                "seccompProfile",
                format_args!("pod must not set securityContext.seccompProfile.type to \"{t}\""),
                text!("{}.securityContext.seccompProfile.type", pod.pod.path()),
            );
        }
    }
    for c in cs {
        match c.security.seccomp_type {
            Some(t) if !valid(t) => out.push_pieces(
                RULE,
                "seccompProfile",
                &[
                    "container \"",
                    c.name,
                    "\" must not set securityContext.seccompProfile.type to \"",
                    t,
                    "\"",
                ],
                c.field_path("securityContext.seccompProfile.type"),
            ),
            None if !pod_set => out.push_pieces(
                RULE,
                "seccompProfile",
                &[
                    "pod or container \"",
                    c.name,
                    "\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                ],
                c.field_path("securityContext.seccompProfile.type"),
            ),
            _ => {}
        }
    }
}

/// The safe sysctls of each revision, with the minor version they join at.
const SAFE_SYSCTLS: &[(u32, &str)] = &[
    (0, "kernel.shm_rmid_forced"),
    (0, "net.ipv4.ip_local_port_range"),
    (0, "net.ipv4.tcp_syncookies"),
    (0, "net.ipv4.ping_group_range"),
    (0, "net.ipv4.ip_unprivileged_port_start"),
    (27, "net.ipv4.ip_local_reserved_ports"),
    (29, "net.ipv4.tcp_keepalive_time"),
    (29, "net.ipv4.tcp_fin_timeout"),
    (29, "net.ipv4.tcp_keepalive_intvl"),
    (29, "net.ipv4.tcp_keepalive_probes"),
    (32, "net.ipv4.tcp_rmem"),
    (32, "net.ipv4.tcp_wmem"),
    (37, "net.ipv4.tcp_slow_start_after_idle"),
    (37, "net.ipv4.tcp_notsent_lowat"),
];

/// The sysctls the baseline level allows at an effective minor version.
///
/// ```
/// use idp_policy::pss::safe_sysctls;
/// assert!(!safe_sysctls(26).contains(&"net.ipv4.ip_local_reserved_ports"));
/// assert!(safe_sysctls(27).contains(&"net.ipv4.ip_local_reserved_ports"));
/// assert!(safe_sysctls(32).contains(&"net.ipv4.tcp_rmem"));
/// ```
pub fn safe_sysctls(minor: u32) -> Vec<&'static str> {
    SAFE_SYSCTLS
        .iter()
        .filter(|(since, _)| *since <= minor)
        .map(|(_, name)| *name)
        .collect()
}

fn sysctls(pod: &PodView<'_>, minor: u32, out: &mut Sink<'_>) {
    for (i, s) in pod.security.sysctls.into_iter().flatten().enumerate() {
        let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
        let safe = SAFE_SYSCTLS
            .iter()
            .any(|(since, safe)| *since <= minor && *safe == name);
        if !safe {
            out.push(
                "sysctls",
                "forbidden sysctls",
                name,
                text!("{}.securityContext.sysctls[{i}].name", pod.pod.path()),
            );
        }
    }
}

fn windows_host_process(pod: &PodView<'_>, cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    let host_process = |sc: &SecurityFields<'_>| {
        sc.windows_options
            .and_then(|w| w.get("hostProcess"))
            .and_then(Value::as_bool)
    };
    if host_process(&pod.security) == Some(true) {
        out.push(
            "windowsHostProcess",
            "hostProcess",
            "pod must not set securityContext.windowsOptions.hostProcess=true",
            text!(
                "{}.securityContext.windowsOptions.hostProcess",
                pod.pod.path()
            ),
        );
    }
    for c in cs {
        if host_process(&c.security) == Some(true) {
            out.push(
                "windowsHostProcess",
                "hostProcess",
                format_args!(
                    "container \"{}\" must not set securityContext.windowsOptions.hostProcess=true",
                    c.name
                ),
                c.field_path("securityContext.windowsOptions.hostProcess"),
            );
        }
    }
}

fn host_probes(cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    for c in cs {
        let handlers = [
            ("livenessProbe", None, "probe", c.liveness_probe),
            ("readinessProbe", None, "probe", c.readiness_probe),
            ("startupProbe", None, "probe", c.startup_probe),
            (
                "lifecycle",
                Some("postStart"),
                "lifecycle",
                c.lifecycle.and_then(|l| l.get("postStart")),
            ),
            (
                "lifecycle",
                Some("preStop"),
                "lifecycle",
                c.lifecycle.and_then(|l| l.get("preStop")),
            ),
        ];
        for (field, sub, what, handler) in handlers {
            let Some(handler) = handler.and_then(Value::as_object) else {
                continue;
            };
            // One walk of the handler rather than a search per action.
            for (action, spec) in handler {
                let action = action.as_str();
                if action != "httpGet" && action != "tcpSocket" {
                    continue;
                }
                let host = spec.get("host").and_then(Value::as_str);
                if let Some(host) = host.filter(|h| !h.is_empty()) {
                    // The path is only built for a finding.
                    let path = match sub {
                        Some(sub) => c.field_path_args(format_args!("{field}.{sub}.{action}.host")),
                        None => c.field_path_args(format_args!("{field}.{action}.host")),
                    };
                    out.push(
                        "hostProbesAndHostLifecycle",
                        "probe or lifecycle host",
                        format_args!("container \"{}\" uses {what} host \"{host}\"", c.name),
                        path,
                    );
                }
            }
        }
    }
}

fn allow_privilege_escalation(cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    for c in cs {
        if c.security.allow_privilege_escalation != Some(false) {
            out.push_pieces(
                "allowPrivilegeEscalation",
                "allowPrivilegeEscalation != false",
                &[
                    "container \"",
                    c.name,
                    "\" must set securityContext.allowPrivilegeEscalation=false",
                ],
                c.field_path("securityContext.allowPrivilegeEscalation"),
            );
        }
    }
}

fn run_as_non_root(pod: &PodView<'_>, cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    const RULE: &str = "runAsNonRoot";
    const REASON: &str = "runAsNonRoot != true";
    let mut pod_non_root = false;
    match pod.security.run_as_non_root {
        Some(false) => out.push(
            RULE,
            REASON,
            "pod must not set securityContext.runAsNonRoot=false",
            text!("{}.securityContext.runAsNonRoot", pod.pod.path()),
        ),
        Some(true) => pod_non_root = true,
        None => {}
    }
    for c in cs {
        match c.security.run_as_non_root {
            Some(false) => out.push_pieces(
                RULE,
                REASON,
                &[
                    "container \"",
                    c.name,
                    "\" must not set securityContext.runAsNonRoot=false",
                ],
                c.field_path("securityContext.runAsNonRoot"),
            ),
            None if !pod_non_root => out.push_pieces(
                RULE,
                REASON,
                &[
                    "pod or container \"",
                    c.name,
                    "\" must set securityContext.runAsNonRoot=true",
                ],
                c.field_path("securityContext.runAsNonRoot"),
            ),
            _ => {}
        }
    }
}

fn run_as_user(pod: &PodView<'_>, cs: &[ContainerView<'_>], out: &mut Sink<'_>) {
    if pod.security.run_as_user == Some(0) {
        out.push(
            "runAsUser",
            "runAsUser=0",
            "pod must not set runAsUser=0",
            text!("{}.securityContext.runAsUser", pod.pod.path()),
        );
    }
    for c in cs {
        if c.security.run_as_user == Some(0) {
            out.push(
                "runAsUser",
                "runAsUser=0",
                format_args!("container \"{}\" must not set runAsUser=0", c.name),
                c.field_path("securityContext.runAsUser"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BASELINE_CAPABILITIES, RESTRICTED_VOLUME_TYPES};

    #[test]
    fn lookup_tables_are_sorted() {
        assert!(BASELINE_CAPABILITIES.is_sorted());
        assert!(RESTRICTED_VOLUME_TYPES.is_sorted());
    }
}
