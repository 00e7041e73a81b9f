//! One walk over an object: the fields every built-in check reads, borrowed from the
//! JSON and taken in a single pass over each mapping.
//!
//! The built-in policies ([Pod Security Standards](crate::pss) and the
//! [guardrails](crate::guardrails)) check an [`ObjectView`] rather than the object: the
//! kind is read once, the pod spec is found once ([autogen](crate::podspec)), and each
//! container's mapping and `securityContext` are walked once, key by key, instead of
//! being searched again by every check. Nothing here allocates unless a pod has more
//! than [`INLINE_CONTAINERS`] containers. A [`PolicySet`](crate::PolicySet) builds one
//! view per object and hands it to every built-in policy it holds.

use std::fmt;

use idp_core::{Object, PolicyContext, Violation};
use serde_json::{Map, Value};

use crate::podspec::{Container, ContainerKind, PodSpec};

/// `format!` with the string allocated once, at its final length: the arguments are
/// formatted twice, first only to count the bytes. (`format!` guesses a capacity from
/// the literal pieces and then grows the string several times when the text starts
/// with an argument, as most messages and paths here do.)
pub(crate) fn format_exact(args: fmt::Arguments<'_>) -> String {
    struct Count(usize);
    impl fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    if let Some(s) = args.as_str() {
        return s.to_owned();
    }
    let mut count = Count(0);
    let mut out = match fmt::write(&mut count, args) {
        Ok(()) => String::with_capacity(count.0),
        Err(_) => String::new(),
    };
    // Writing into a `String` only fails when a `Display` impl does; the text is then
    // what was written so far, as with `format!`'s own `String` writes.
    if fmt::write(&mut out, args).is_err() {
        out.shrink_to_fit();
    }
    out
}

/// [`format_exact`] with `format!` syntax.
macro_rules! text {
    ($($arg:tt)*) => {
        $crate::view::format_exact(format_args!($($arg)*))
    };
}
pub(crate) use text;

/// Containers kept on the stack; a pod with more spills onto the heap.
pub(crate) const INLINE_CONTAINERS: usize = 8;

/// The `securityContext` fields the checks read (pod or container level), as the
/// checks read them: a field of the wrong JSON type counts as absent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SecurityFields<'a> {
    pub privileged: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    pub capabilities: Option<&'a Map<String, Value>>,
    pub app_armor_profile: Option<&'a Map<String, Value>>,
    pub se_linux_options: Option<&'a Map<String, Value>>,
    pub proc_mount: Option<&'a str>,
    pub seccomp_profile: Option<&'a Map<String, Value>>,
    pub windows_options: Option<&'a Map<String, Value>>,
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    pub sysctls: Option<&'a Vec<Value>>,
}

impl<'a> SecurityFields<'a> {
    fn of(sc: Option<&'a Map<String, Value>>) -> Self {
        let mut f = Self::default();
        for (key, v) in sc.into_iter().flatten() {
            match key.as_str() {
                "privileged" => f.privileged = v.as_bool(),
                "allowPrivilegeEscalation" => f.allow_privilege_escalation = v.as_bool(),
                "capabilities" => f.capabilities = v.as_object(),
                "appArmorProfile" => f.app_armor_profile = v.as_object(),
                "seLinuxOptions" => f.se_linux_options = v.as_object(),
                "procMount" => f.proc_mount = v.as_str(),
                "seccompProfile" => f.seccomp_profile = v.as_object(),
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
    pub ports: Option<&'a Vec<Value>>,
    pub resources: Option<&'a Value>,
    pub liveness_probe: Option<&'a Value>,
    pub readiness_probe: Option<&'a Value>,
    pub startup_probe: Option<&'a Value>,
    pub lifecycle: Option<&'a Value>,
    pub security: SecurityFields<'a>,
}

impl<'a> ContainerView<'a> {
    pub(crate) fn of(
        value: &'a Map<String, Value>,
        kind: ContainerKind,
        index: usize,
        prefix: &'static str,
    ) -> Self {
        let mut name = "";
        let mut image = "";
        let mut ports = None;
        let mut resources = None;
        let mut probes = [None; 3];
        let mut lifecycle = None;
        let mut security_context = None;
        for (key, v) in value {
            match key.as_str() {
                "name" => name = v.as_str().unwrap_or_default(),
                "image" => image = v.as_str().unwrap_or_default(),
                "ports" => ports = v.as_array(),
                "resources" => resources = Some(v),
                "securityContext" => security_context = v.as_object(),
                "livenessProbe" => probes[0] = Some(v),
                "readinessProbe" => probes[1] = Some(v),
                "startupProbe" => probes[2] = Some(v),
                "lifecycle" => lifecycle = Some(v),
                _ => {}
            }
        }
        let [liveness_probe, readiness_probe, startup_probe] = probes;
        Self {
            container: Container::new(value, security_context, kind, index, prefix),
            name,
            image,
            ports,
            resources,
            liveness_probe,
            readiness_probe,
            startup_probe,
            lifecycle,
            security: SecurityFields::of(security_context),
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
}

/// A short list kept on the stack up to [`INLINE_CONTAINERS`] entries.
// The inline variant is large on purpose: it is what keeps the common pod off the heap.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum List<'a> {
    Empty,
    Inline([ContainerView<'a>; INLINE_CONTAINERS], usize),
    Heap(Vec<ContainerView<'a>>),
}

impl<'a> List<'a> {
    fn push(&mut self, c: ContainerView<'a>) {
        match self {
            Self::Empty => *self = Self::Inline([c; INLINE_CONTAINERS], 1),
            Self::Inline(items, len) => {
                if let Some(slot) = items.get_mut(*len) {
                    *slot = c;
                    *len += 1;
                } else {
                    let mut heap = Vec::with_capacity(INLINE_CONTAINERS * 2);
                    heap.extend_from_slice(items);
                    heap.push(c);
                    *self = Self::Heap(heap);
                }
            }
            Self::Heap(heap) => heap.push(c),
        }
    }

    fn as_slice(&self) -> &[ContainerView<'a>] {
        match self {
            Self::Empty => &[],
            Self::Inline(items, len) => &items[..*len],
            Self::Heap(heap) => heap,
        }
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
    containers: List<'a>,
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
            containers: List::Empty,
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
        // The order of `PodSpec::containers`: init, regular, ephemeral.
        for (kind, list) in ContainerKind::ALL.into_iter().zip(lists) {
            for (index, v) in list.into_iter().flatten().enumerate() {
                if let Some(value) = v.as_object() {
                    let c = ContainerView::of(value, kind, index, pod.path());
                    view.containers.push(c);
                }
            }
        }
        view
    }

    /// Every container: init containers, then containers, then ephemeral containers.
    pub(crate) fn containers(&self) -> &[ContainerView<'a>] {
        self.containers.as_slice()
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
