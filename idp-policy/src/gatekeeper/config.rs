//! Gatekeeper's `Config` resource (`config.gatekeeper.sh/v1alpha1`): the namespaces each
//! of Gatekeeper's processes leaves out (`spec.match`) and the kinds it replicates into
//! `data.inventory` (`spec.sync.syncOnly`).
//!
//! A Gatekeeper installation reads one `Config`, named `config`, in its own namespace.
//! Put the same document among the Gatekeeper files idp reads and it means the same:
//!
//! - [`Process::Webhook`]: the constraints do not check objects in those namespaces at
//!   admission, nor in `idpctl policy check`, which stands for admission before commit;
//! - [`Process::Audit`]: the audit does not report them;
//! - [`Process::Sync`]: they are not part of `data.inventory`;
//! - [`Process::MutationWebhook`]: the mutators leave them as they are.
//!
//! A pattern may start or end with `*` (`kube-*`, `*-system`). A `Namespace` object is
//! in the namespace it names, as in a constraint's `match`; other cluster-scoped objects
//! are in none and are never left out.
//!
//! ```
//! use idp_core::{ManifestSet, Object};
//! use idp_policy::gatekeeper::config::{GatekeeperConfig, Process};
//!
//! let set = ManifestSet::parse(br#"
//! apiVersion: config.gatekeeper.sh/v1alpha1
//! kind: Config
//! metadata: {name: config, namespace: gatekeeper-system}
//! spec:
//!   sync:
//!     syncOnly:
//!       - {group: "", version: v1, kind: Namespace}
//!       - {group: networking.k8s.io, version: v1, kind: Ingress}
//!   match:
//!     - excludedNamespaces: ["kube-*"]
//!       processes: ["*"]
//!     - excludedNamespaces: [legacy]
//!       processes: [audit]
//! "#, None).unwrap();
//! let config = GatekeeperConfig::from_object(set.iter().next().unwrap()).unwrap();
//! let pod = |ns: &str| Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
//!     "metadata": {"name": "p", "namespace": ns}})).unwrap();
//! assert!(config.excludes(Process::Webhook, &pod("kube-system")));
//! assert!(config.excludes(Process::Audit, &pod("legacy")));
//! assert!(!config.excludes(Process::Webhook, &pod("legacy")));
//! assert_eq!(config.sync_only()[1].to_string(), "Ingress.networking.k8s.io");
//! ```

use idp_core::cluster::GroupKind;
use idp_core::{Error, Object, Result};
use serde_json::{Map, Value};

use crate::matching::wildcard;
use crate::names::{source_prefix, split_api_version};

/// The API group of the `Config` kind.
pub const GROUP: &str = "config.gatekeeper.sh";

/// The only name Gatekeeper reads a `Config` under.
pub const NAME: &str = "config";

/// One of Gatekeeper's processes a `spec.match` entry leaves namespaces out of.
///
/// ```
/// use idp_policy::gatekeeper::config::Process;
/// assert_eq!(Process::MutationWebhook.as_str(), "mutation-webhook");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Process {
    /// The audit of what runs.
    Audit,
    /// The validating webhook (and `idpctl policy check`).
    Webhook,
    /// The replication of objects into `data.inventory`.
    Sync,
    /// The mutating webhook.
    MutationWebhook,
}

impl Process {
    /// Every process, as `*` names them.
    pub const ALL: [Self; 4] = [
        Self::Audit,
        Self::Webhook,
        Self::Sync,
        Self::MutationWebhook,
    ];

    /// The name in `processes`.
    ///
    /// ```
    /// assert_eq!(idp_policy::gatekeeper::config::Process::Sync.as_str(), "sync");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audit => "audit",
            Self::Webhook => "webhook",
            Self::Sync => "sync",
            Self::MutationWebhook => "mutation-webhook",
        }
    }
}

/// A Gatekeeper `Config`. See the [module documentation](self).
///
/// ```
/// let c = idp_policy::gatekeeper::config::GatekeeperConfig::default();
/// assert!(c.sync_only().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatekeeperConfig {
    sync_only: Vec<GroupKind>,
    /// Namespace patterns, each with the processes it is left out of.
    excluded: Vec<(String, Vec<Process>)>,
}

impl GatekeeperConfig {
    /// Whether `object` is a Gatekeeper `Config`.
    ///
    /// ```
    /// let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "config.gatekeeper.sh/v1alpha1",
    ///     "kind": "Config", "metadata": {"name": "config"}})).unwrap();
    /// assert!(idp_policy::gatekeeper::config::GatekeeperConfig::is_config(&o));
    /// ```
    pub fn is_config(object: &Object) -> bool {
        object.kind() == "Config" && split_api_version(object.api_version()).0 == GROUP
    }

    /// Read a `Config`. Errors name the file and the field: a name other than `config`
    /// (which Gatekeeper would ignore), a process it does not know, a `syncOnly` entry
    /// without a kind, a field it does not have.
    ///
    /// ```
    /// use idp_policy::gatekeeper::config::GatekeeperConfig;
    /// let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "config.gatekeeper.sh/v1alpha1",
    ///     "kind": "Config", "metadata": {"name": "config"},
    ///     "spec": {"match": [{"excludedNamespaces": ["a"], "processes": ["audits"]}]}})).unwrap();
    /// let err = GatekeeperConfig::from_object(&o).unwrap_err().to_string();
    /// assert!(err.contains("spec.match[0].processes[0]"), "{err}");
    /// ```
    pub fn from_object(object: &Object) -> Result<Self> {
        let here = source_prefix(object.source());
        let fail = |what: String| Error::invalid_input(format!("{here}Gatekeeper Config: {what}"));
        if object.name() != NAME {
            return Err(fail(format!(
                "it is named {:?}; Gatekeeper reads only the Config named {NAME:?} and ignores others: rename it or leave it out",
                object.name()
            )));
        }
        let mut config = Self::default();
        let Some(spec) = object.as_map().get("spec") else {
            return Ok(config);
        };
        let spec = spec
            .as_object()
            .ok_or_else(|| fail("spec must be a mapping".to_owned()))?;
        for (key, value) in spec {
            match key.as_str() {
                "sync" => config.sync_only = sync_only(value).map_err(fail)?,
                "match" => config.excluded = matches(value).map_err(fail)?,
                // Tracing of the webhook's decisions and readiness statistics: nothing
                // for idp to do with them.
                "validation" | "readiness" => {}
                other => {
                    return Err(fail(format!(
                        "spec.{other} is not a field of Config (sync, match, validation, readiness)"
                    )));
                }
            }
        }
        Ok(config)
    }

    /// Read `object` into `slot`, which must be empty: Gatekeeper reads one `Config`,
    /// so a second is an error naming its source. What both Gatekeeper loaders (the
    /// constraints and the mutators) do with a `Config` among their documents.
    pub(crate) fn load_once(slot: &mut Option<Self>, object: &Object) -> Result<()> {
        if slot.is_some() {
            return Err(Error::invalid_input(format!(
                "{}a second Gatekeeper Config: Gatekeeper reads one, named config; merge them",
                source_prefix(object.source())
            )));
        }
        *slot = Some(Self::from_object(object)?);
        Ok(())
    }

    /// The kinds `spec.sync.syncOnly` replicates into `data.inventory`, in order (none
    /// when it names none).
    ///
    /// ```
    /// assert!(idp_policy::gatekeeper::config::GatekeeperConfig::default().sync_only().is_empty());
    /// ```
    pub fn sync_only(&self) -> &[GroupKind] {
        &self.sync_only
    }

    /// Whether `object` is in a namespace `process` leaves out.
    ///
    /// ```
    /// use idp_policy::gatekeeper::config::{GatekeeperConfig, Process};
    /// let ns = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
    ///     "metadata": {"name": "kube-system"}})).unwrap();
    /// assert!(!GatekeeperConfig::default().excludes(Process::Audit, &ns));
    /// ```
    pub fn excludes(&self, process: Process, object: &Object) -> bool {
        let namespace = if object.kind() == "Namespace" && object.api_version() == "v1" {
            Some(object.name())
        } else {
            object.namespace()
        };
        namespace.is_some_and(|ns| self.excludes_namespace(process, ns))
    }

    /// Whether `process` leaves out the namespace `namespace`.
    ///
    /// ```
    /// use idp_policy::gatekeeper::config::{GatekeeperConfig, Process};
    /// assert!(!GatekeeperConfig::default().excludes_namespace(Process::Webhook, "kube-system"));
    /// ```
    pub fn excludes_namespace(&self, process: Process, namespace: &str) -> bool {
        self.excluded.iter().any(|(pattern, processes)| {
            processes.contains(&process) && wildcard(pattern, namespace)
        })
    }

    /// The namespace patterns `process` leaves out.
    ///
    /// ```
    /// use idp_policy::gatekeeper::config::{GatekeeperConfig, Process};
    /// assert_eq!(GatekeeperConfig::default().excluded_namespaces(Process::Sync).count(), 0);
    /// ```
    pub fn excluded_namespaces(&self, process: Process) -> impl Iterator<Item = &str> {
        self.excluded
            .iter()
            .filter(move |(_, processes)| processes.contains(&process))
            .map(|(pattern, _)| pattern.as_str())
    }
}

/// `spec.sync`: its `syncOnly` entries as group-kinds.
fn sync_only(sync: &Value) -> std::result::Result<Vec<GroupKind>, String> {
    let sync = sync
        .as_object()
        .ok_or_else(|| "spec.sync must be a mapping".to_owned())?;
    let mut out = Vec::new();
    for (key, value) in sync {
        if key != "syncOnly" {
            return Err(format!(
                "spec.sync.{key} is not a field of Config (syncOnly)"
            ));
        }
        let entries = value
            .as_array()
            .ok_or_else(|| "spec.sync.syncOnly must be a list".to_owned())?;
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("spec.sync.syncOnly[{i}]");
            let entry = entry
                .as_object()
                .ok_or_else(|| format!("{at} must be a mapping with group, version and kind"))?;
            let field = |name: &str| -> std::result::Result<Option<&str>, String> {
                match entry.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s)),
                    Some(_) => Err(format!("{at}.{name} must be a string")),
                }
            };
            for key in entry.keys() {
                if !["group", "version", "kind"].contains(&key.as_str()) {
                    return Err(format!(
                        "{at}.{key} is not a field of a syncOnly entry (group, version, kind)"
                    ));
                }
            }
            let kind = field("kind")?.filter(|k| !k.is_empty()).ok_or_else(|| {
                format!("{at} names no kind: give kind (and group, \"\" for the core group)")
            })?;
            field("version")?;
            out.push(GroupKind::new(field("group")?.unwrap_or_default(), kind));
        }
    }
    Ok(out)
}

/// `spec.match`: each entry's namespace patterns with its processes.
fn matches(value: &Value) -> std::result::Result<Vec<(String, Vec<Process>)>, String> {
    let entries = value
        .as_array()
        .ok_or_else(|| "spec.match must be a list".to_owned())?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("spec.match[{i}]");
        let entry: &Map<String, Value> = entry.as_object().ok_or_else(|| {
            format!("{at} must be a mapping with excludedNamespaces and processes")
        })?;
        let mut namespaces = Vec::new();
        let mut processes = Vec::new();
        for (key, value) in entry {
            let list = value
                .as_array()
                .ok_or_else(|| format!("{at}.{key} must be a list"))?;
            match key.as_str() {
                "excludedNamespaces" => {
                    for (j, ns) in list.iter().enumerate() {
                        let ns = ns.as_str().ok_or_else(|| {
                            format!("{at}.excludedNamespaces[{j}] must be a string")
                        })?;
                        namespaces.push(ns.to_owned());
                    }
                }
                "processes" => {
                    for (j, p) in list.iter().enumerate() {
                        let name = p.as_str().unwrap_or_default();
                        if name == "*" {
                            processes.extend(Process::ALL);
                            continue;
                        }
                        let process = Process::ALL
                            .into_iter()
                            .find(|p| p.as_str() == name)
                            .ok_or_else(|| {
                                format!(
                                    "{at}.processes[{j}] is {p}: use audit, webhook, sync, mutation-webhook or *"
                                )
                            })?;
                        processes.push(process);
                    }
                }
                other => {
                    return Err(format!(
                        "{at}.{other} is not a field of a match entry (excludedNamespaces, processes)"
                    ));
                }
            }
        }
        processes.sort_by_key(|p| p.as_str());
        processes.dedup();
        out.extend(namespaces.into_iter().map(|ns| (ns, processes.clone())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::needless_pass_by_value
    )]

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn config(spec: Value) -> Result<GatekeeperConfig> {
        GatekeeperConfig::from_object(
            &Object::from_value(json!({"apiVersion": "config.gatekeeper.sh/v1alpha1",
                "kind": "Config", "metadata": {"name": "config", "namespace": "gatekeeper-system"},
                "spec": spec}))
            .unwrap(),
        )
    }

    fn in_namespace(kind: &str, namespace: Option<&str>, name: &str) -> Object {
        let mut metadata = json!({"name": name});
        if let Some(ns) = namespace {
            metadata["namespace"] = json!(ns);
        }
        Object::from_value(json!({"apiVersion": "v1", "kind": kind, "metadata": metadata})).unwrap()
    }

    #[test]
    fn processes_and_patterns() {
        let c = config(json!({"match": [
            {"excludedNamespaces": ["kube-*", "*-system"], "processes": ["*"]},
            {"excludedNamespaces": ["legacy"], "processes": ["audit", "sync"]},
            {"excludedNamespaces": ["edge"], "processes": ["mutation-webhook"]},
        ]}))
        .unwrap();
        let pod = |ns| in_namespace("Pod", Some(ns), "p");
        for process in Process::ALL {
            assert!(c.excludes(process, &pod("kube-public")), "{process:?}");
            assert!(
                c.excludes(process, &pod("gatekeeper-system")),
                "{process:?}"
            );
            assert!(!c.excludes(process, &pod("shop")), "{process:?}");
        }
        assert!(c.excludes(Process::Audit, &pod("legacy")));
        assert!(c.excludes(Process::Sync, &pod("legacy")));
        assert!(!c.excludes(Process::Webhook, &pod("legacy")));
        assert!(c.excludes(Process::MutationWebhook, &pod("edge")));
        assert!(!c.excludes(Process::Audit, &pod("edge")));
        // A Namespace is in itself; other cluster-scoped objects are in none.
        assert!(c.excludes(
            Process::Webhook,
            &in_namespace("Namespace", None, "kube-system")
        ));
        assert!(!c.excludes(
            Process::Webhook,
            &in_namespace("ClusterRole", None, "kube-system")
        ));
        assert_eq!(
            c.excluded_namespaces(Process::Audit).collect::<Vec<_>>(),
            ["kube-*", "*-system", "legacy"]
        );
    }

    #[test]
    fn sync_only_kinds() {
        let c = config(json!({"sync": {"syncOnly": [
            {"group": "", "version": "v1", "kind": "Namespace"},
            {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            {"kind": "Service"},
        ]}}))
        .unwrap();
        let kinds: Vec<String> = c.sync_only().iter().map(ToString::to_string).collect();
        assert_eq!(kinds, ["Namespace", "Ingress.networking.k8s.io", "Service"]);
    }

    #[test]
    fn bad_configs_name_the_field() {
        for (spec, expected) in [
            (
                json!({"match": [{"excludedNamespaces": ["a"], "processes": ["audits"]}]}),
                "spec.match[0].processes[0] is \"audits\"",
            ),
            (
                json!({"match": [{"excludedNamespaces": "a", "processes": ["*"]}]}),
                "spec.match[0].excludedNamespaces must be a list",
            ),
            (
                json!({"match": [{"namespaces": ["a"]}]}),
                "spec.match[0].namespaces is not a field",
            ),
            (
                json!({"match": {"excludedNamespaces": ["a"]}}),
                "spec.match must be a list",
            ),
            (
                json!({"sync": {"syncOnly": [{"group": "apps", "version": "v1"}]}}),
                "spec.sync.syncOnly[0] names no kind",
            ),
            (
                json!({"sync": {"syncOnly": [{"kind": 3}]}}),
                "spec.sync.syncOnly[0].kind must be a string",
            ),
            (
                json!({"sync": {"syncAll": true}}),
                "spec.sync.syncAll is not a field",
            ),
            (
                json!({"webhook": {}}),
                "spec.webhook is not a field of Config",
            ),
        ] {
            let err = config(spec.clone()).unwrap_err().to_string();
            assert!(err.contains(expected), "{spec}: {err}");
        }
        let renamed = Object::from_value(json!({"apiVersion": "config.gatekeeper.sh/v1alpha1",
            "kind": "Config", "metadata": {"name": "settings"}}))
        .unwrap();
        let err = GatekeeperConfig::from_object(&renamed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("named \"settings\""), "{err}");
        // validation and readiness are accepted and mean nothing here.
        config(json!({"validation": {"traces": []}, "readiness": {"statsEnabled": true}})).unwrap();
    }

    proptest! {
        /// Any spec is read or refused with an error; never a panic.
        #[test]
        fn any_spec_is_read_or_refused(spec in arbitrary_json(3)) {
            let _ = config(spec);
        }

        /// A pattern without `*` excludes exactly its namespace.
        #[test]
        fn exact_patterns_match_exactly(ns in "[a-z][a-z0-9-]{0,20}", other in "[a-z][a-z0-9-]{0,20}") {
            let c = config(json!({"match": [{"excludedNamespaces": [ns.clone()], "processes": ["webhook"]}]})).unwrap();
            prop_assert!(c.excludes_namespace(Process::Webhook, &ns));
            prop_assert_eq!(c.excludes_namespace(Process::Webhook, &other), ns == other);
            prop_assert!(!c.excludes_namespace(Process::Audit, &ns));
        }
    }

    fn arbitrary_json(depth: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            prop_oneof![
                Just("*".to_owned()),
                Just("audit".to_owned()),
                Just("kind".to_owned()),
                "[a-z*-]{0,8}"
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("match".to_owned()),
                        Just("sync".to_owned()),
                        Just("syncOnly".to_owned()),
                        Just("excludedNamespaces".to_owned()),
                        Just("processes".to_owned()),
                        Just("kind".to_owned()),
                        Just("group".to_owned()),
                        "[a-z]{1,6}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
