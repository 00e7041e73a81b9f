//! The order in which kinds are applied to a cluster.

/// Known kinds in the order they are applied; [`ManifestSet::apply_order`] follows it.
///
/// Namespaces come first (everything namespaced lives in one), then
/// CustomResourceDefinitions (custom resources need their type), then what workloads
/// depend on — policies and quotas, identities, configuration, storage, RBAC, Services —,
/// then the workloads themselves, autoscalers, jobs and ingress. The middle part follows
/// the kind order Helm uses when installing a chart.
///
/// Kinds not in this list (custom resources, mostly) come after all of them, sorted by
/// kind name, and the admission webhook configurations
/// ([`APPLY_LAST`]) come at the very end, so that a webhook never blocks objects of the
/// same set that are applied before the service behind it runs.
///
/// Kinds are matched by name only, whatever the API group.
///
/// [`ManifestSet::apply_order`]: super::ManifestSet::apply_order
///
/// ```
/// use idp_core::manifest::APPLY_ORDER;
/// assert_eq!(&APPLY_ORDER[..2], ["Namespace", "CustomResourceDefinition"]);
/// ```
pub const APPLY_ORDER: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "PriorityClass",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// Kinds applied after everything else, in this order (see [`APPLY_ORDER`]).
///
/// ```
/// assert!(idp_core::manifest::APPLY_LAST.contains(&"ValidatingWebhookConfiguration"));
/// ```
pub const APPLY_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

/// The built-in kinds that are cluster-scoped (every other built-in kind lives in a
/// namespace; custom resources can be either, which only their CRD says).
///
/// ```
/// assert!(idp_core::manifest::CLUSTER_SCOPED_KINDS.contains(&"ClusterRole"));
/// assert!(!idp_core::manifest::CLUSTER_SCOPED_KINDS.contains(&"Deployment"));
/// ```
pub const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "RuntimeClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "CertificateSigningRequest",
];

/// Whether `kind` is one of the [`CLUSTER_SCOPED_KINDS`].
///
/// ```
/// assert!(idp_core::manifest::is_cluster_scoped("Namespace"));
/// assert!(!idp_core::manifest::is_cluster_scoped("ConfigMap"));
/// ```
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED_KINDS.contains(&kind)
}

/// Where `kind` sorts when applying: a tuple that orders known kinds by [`APPLY_ORDER`],
/// then unknown kinds by name, then [`APPLY_LAST`].
///
/// ```
/// use idp_core::manifest::apply_rank;
/// assert!(apply_rank("Namespace") < apply_rank("CustomResourceDefinition"));
/// assert!(apply_rank("Service") < apply_rank("Deployment"));
/// assert!(apply_rank("Ingress") < apply_rank("Certificate"));
/// assert!(apply_rank("Certificate") < apply_rank("Issuer"));
/// assert!(apply_rank("Issuer") < apply_rank("ValidatingWebhookConfiguration"));
/// ```
pub fn apply_rank(kind: &str) -> (u8, usize, &str) {
    if let Some(i) = APPLY_ORDER.iter().position(|k| *k == kind) {
        (0, i, "")
    } else if let Some(i) = APPLY_LAST.iter().position(|k| *k == kind) {
        (2, i, "")
    } else {
        (1, 0, kind)
    }
}
