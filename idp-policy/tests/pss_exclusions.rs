//! Pod Security Standards control exclusions (Kyverno's `podSecurity.exclude`): a
//! control off for the whole pod, or only for containers running certain images.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::{Object, Policy, PolicyContext};
use idp_policy::PolicySet;
use idp_policy::config::PolicySetConfig;
use idp_policy::pss::PodSecurity;
use serde_json::{Value, json};

const ISTIO: &str = "docker.io/istio/proxyv2:1.24.0";

/// A restricted-compliant container, then changed by `patch` (merged into its
/// securityContext).
fn container(name: &str, image: &str, patch: &Value) -> Value {
    let mut sc = json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"}, "capabilities": {"drop": ["ALL"]}});
    for (k, v) in patch.as_object().unwrap() {
        sc[k] = v.clone();
    }
    json!({"name": name, "image": image, "securityContext": sc})
}

fn deployment(containers: &[Value], pod_fields: &Value) -> Object {
    let mut spec = json!({"containers": containers});
    for (k, v) in pod_fields.as_object().unwrap() {
        spec[k] = v.clone();
    }
    Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": "apps"},
        "spec": {"template": {"metadata": {"annotations": {}}, "spec": spec}}}))
    .unwrap()
}

/// `(rule, path)` of every finding, through the policy itself and through a set (the
/// shared-view path); both must agree.
fn findings(pss: &PodSecurity, object: &Object) -> Vec<(String, String)> {
    let ctx = PolicyContext::new();
    let direct: Vec<(String, String)> = pss
        .evaluate(object, &ctx)
        .into_iter()
        .map(|v| (v.rule.into_owned(), v.path.unwrap_or_default()))
        .collect();
    let set = PolicySet::new().with_policy(pss.clone());
    let via_set: Vec<(String, String)> = set
        .evaluate(object, &ctx)
        .into_iter()
        .map(|v| (v.rule.into_owned(), v.path.unwrap_or_default()))
        .collect();
    assert_eq!(direct, via_set);
    direct
}

#[test]
fn an_image_exclusion_exempts_only_the_containers_running_that_image() {
    let net_admin = json!({"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}});
    let object = deployment(
        &[
            container("app", "ghcr.io/acme/shop:1.2", &net_admin),
            container("istio-proxy", ISTIO, &net_admin),
        ],
        &json!({}),
    );
    let plain = findings(&PodSecurity::restricted(), &object);
    assert_eq!(
        plain,
        [
            (
                "capabilities_restricted".to_owned(),
                "spec.template.spec.containers[0].securityContext.capabilities.add[0]".to_owned()
            ),
            (
                "capabilities_restricted".to_owned(),
                "spec.template.spec.containers[1].securityContext.capabilities.add[0]".to_owned()
            ),
        ]
    );
    let pss = PodSecurity::restricted()
        .excluding("Capabilities", ["docker.io/istio/proxyv2:*"])
        .unwrap();
    assert_eq!(findings(&pss, &object), plain[..1]);

    // Baseline's capabilities check is the same control.
    let baseline = PodSecurity::baseline()
        .excluding("capabilities", ["*/istio/proxyv2:*"])
        .unwrap();
    let found = findings(&baseline, &object);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "capabilities_baseline");
    assert!(found[0].1.contains("containers[0]"), "{found:?}");

    // Other controls still apply to the exempt container.
    let privileged = deployment(
        &[container(
            "istio-proxy",
            ISTIO,
            &json!({"privileged": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}),
        )],
        &json!({}),
    );
    let rules: Vec<String> = findings(&pss, &privileged)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(rules, ["privileged"]);
}

#[test]
fn an_exclusion_without_images_turns_the_control_off() {
    let object = deployment(
        &[container("agent", "ghcr.io/acme/agent:2", &json!({}))],
        &json!({"hostNetwork": true, "hostPID": true}),
    );
    let rules = |pss: &PodSecurity| -> Vec<String> {
        findings(pss, &object).into_iter().map(|(r, _)| r).collect()
    };
    assert_eq!(
        rules(&PodSecurity::baseline()),
        ["hostNamespaces", "hostNamespaces"],
        "hostNetwork and hostPID"
    );
    let off = PodSecurity::baseline()
        .excluding("Host Namespaces", Vec::<String>::new())
        .unwrap();
    assert!(rules(&off).is_empty());
    // A check id works as well as a control name.
    let off = PodSecurity::baseline()
        .excluding("hostNamespaces", Vec::<String>::new())
        .unwrap();
    assert!(rules(&off).is_empty());
}

#[test]
fn pod_level_findings_of_a_mixed_control_stay_under_an_image_exclusion() {
    // Seccomp is set on the pod (to Unconfined) and on the istio container.
    let object = deployment(
        &[container(
            "istio-proxy",
            ISTIO,
            &json!({"seccompProfile": {"type": "Unconfined"}}),
        )],
        &json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
    );
    let pss = PodSecurity::restricted()
        .excluding("Seccomp", ["docker.io/istio/*"])
        .unwrap();
    let found = findings(&pss, &object);
    assert_eq!(
        found,
        [(
            "seccompProfile_restricted".to_owned(),
            "spec.template.spec.securityContext.seccompProfile.type".to_owned()
        )]
    );
}

#[test]
fn apparmor_annotations_belong_to_their_container() {
    let object = Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": {
            "container.apparmor.security.beta.kubernetes.io/istio-proxy": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/app": "unconfined"}},
        "spec": {"containers": [
            container("app", "ghcr.io/acme/shop:1.2", &json!({})),
            container("istio-proxy", ISTIO, &json!({}))]}}))
    .unwrap();
    let pss = PodSecurity::baseline()
        .excluding("AppArmor", ["docker.io/istio/*"])
        .unwrap();
    let found = findings(&pss, &object);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].1.contains("/app"), "{found:?}");
}

#[test]
fn bad_exclusions_are_clear_errors() {
    let err = PodSecurity::baseline()
        .excluding("Privileged", Vec::<String>::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`Privileged` is not a Pod Security Standards control"),
        "{err}"
    );
    assert!(err.contains("Privileged Containers"), "{err}");
    let err = PodSecurity::baseline()
        .excluding("Volume Types", ["ghcr.io/*"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no container fields"), "{err}");
    let err = PodSecurity::baseline()
        .excluding("Seccomp", [" "])
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty image pattern"), "{err}");
}

#[test]
fn policy_set_files_take_exclusions_and_check_them() {
    let config = PolicySetConfig::from_yaml(
        r#"
policies:
  - type: pod-security
    level: restricted
    excludeControls:
      - controlName: Capabilities
        images: ["docker.io/istio/proxyv2:*"]
    exclude:
      - namespaces: [kube-system]
"#,
    )
    .unwrap();
    let net_admin = json!({"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}});
    let object = deployment(&[container("istio-proxy", ISTIO, &net_admin)], &json!({}));
    let set = config.clone().build();
    assert!(set.evaluate(&object, &PolicyContext::new()).is_empty());
    // The file round-trips through serde with the same field names.
    let text = serde_json::to_string(&config).unwrap();
    assert!(
        text.contains(r#""excludeControls":[{"controlName":"Capabilities""#),
        "{text}"
    );

    let err = PolicySetConfig::from_yaml(
        "policies:\n  - type: require-resources\n  - type: pod-security\n    excludeControls: [{controlName: Nope}]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("policies[1]"), "{err}");
    assert!(err.contains("`Nope`"), "{err}");
    let schema = serde_json::to_string(&PolicySetConfig::schema()).unwrap();
    assert!(
        schema.contains("excludeControls"),
        "the schema documents the field"
    );
}
