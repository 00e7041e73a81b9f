//! Pod Security Standards control exclusions (Kyverno's `podSecurity.exclude`): a
//! control off for the whole pod, or only for containers running certain images.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::{Object, Policy, PolicyContext};
use idp_policy::PolicySet;
use idp_policy::config::PolicySetConfig;
use idp_policy::pss::{ControlExclusion, PodSecurity};
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

/// `PodSecurity` with one exclusion limited to a field and values.
fn allowing(
    level: PodSecurity,
    control: &str,
    images: &[&str],
    field: &str,
    values: &[&str],
) -> PodSecurity {
    let mut e = ControlExclusion::new(control);
    e.images = images.iter().map(|s| (*s).to_owned()).collect();
    e.restricted_field = Some(field.to_owned());
    e.values = values.iter().map(|s| (*s).to_owned()).collect();
    level.with_exclusion(e).unwrap()
}

#[test]
fn a_restricted_field_exempts_only_the_listed_values() {
    let caps = json!({"capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"], "drop": ["ALL"]}});
    let object = deployment(
        &[
            container("app", "ghcr.io/acme/shop:1.2", &caps),
            container("istio-proxy", ISTIO, &caps),
        ],
        &json!({}),
    );
    let field = "spec.containers[*].securityContext.capabilities.add";
    // No images: NET_ADMIN is allowed everywhere, SYS_ADMIN nowhere.
    let pss = allowing(
        PodSecurity::restricted(),
        "Capabilities",
        &[],
        field,
        &["NET_ADMIN"],
    );
    assert_eq!(
        findings(&pss, &object),
        [
            (
                "capabilities_restricted".to_owned(),
                "spec.template.spec.containers[0].securityContext.capabilities.add[1]".to_owned()
            ),
            (
                "capabilities_restricted".to_owned(),
                "spec.template.spec.containers[1].securityContext.capabilities.add[1]".to_owned()
            ),
        ]
    );
    // With images: NET_ADMIN only for the sidecar.
    let pss = allowing(
        PodSecurity::restricted(),
        "Capabilities",
        &["docker.io/istio/*"],
        field,
        &["NET_ADMIN"],
    );
    let paths: Vec<String> = findings(&pss, &object)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        paths,
        [
            "spec.template.spec.containers[0].securityContext.capabilities.add[0]",
            "spec.template.spec.containers[0].securityContext.capabilities.add[1]",
            "spec.template.spec.containers[1].securityContext.capabilities.add[1]",
        ]
    );
    // The field names regular containers: an init container adding NET_ADMIN stays.
    let mut init = deployment(
        &[container("app", "ghcr.io/acme/shop:1.2", &json!({}))],
        &json!({}),
    );
    init.as_map_mut()["spec"]["template"]["spec"]["initContainers"] = json!([container(
        "setup",
        "busybox:1.36",
        &json!({"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}})
    )]);
    let pss = allowing(
        PodSecurity::restricted(),
        "Capabilities",
        &[],
        field,
        &["NET_ADMIN"],
    );
    assert_eq!(
        findings(&pss, &init),
        [(
            "capabilities_restricted".to_owned(),
            "spec.template.spec.initContainers[0].securityContext.capabilities.add[0]".to_owned()
        )]
    );
}

#[test]
fn restricted_fields_cover_scalars_numbers_volumes_and_annotations() {
    // Host ports: the value is the port number as text.
    let ports = |c: Value, p: Value| {
        let mut c = c;
        c["ports"] = p;
        c
    };
    let object = deployment(
        &[ports(
            container("app", "a:1", &json!({})),
            json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 9090}]),
        )],
        &json!({"volumes": [{"name": "a", "nfs": {"server": "x"}}, {"name": "b", "gitRepo": {"repository": "r"}}],
                "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "kernel.sem", "value": "1"}]}}),
    );
    let pss = allowing(
        PodSecurity::baseline(),
        "Host Ports",
        &[],
        "spec.containers[*].ports[*].hostPort",
        &["8080"],
    );
    let rules: Vec<(String, String)> = findings(&pss, &object);
    assert!(
        rules.contains(&(
            "hostPorts".to_owned(),
            "spec.template.spec.containers[0].ports[1].hostPort".to_owned()
        )),
        "{rules:?}"
    );
    assert!(
        !rules.iter().any(|(_, p)| p.ends_with("ports[0].hostPort")),
        "{rules:?}"
    );
    // Sysctls by name.
    let pss = allowing(
        PodSecurity::baseline(),
        "Sysctls",
        &[],
        "spec.securityContext.sysctls[*].name",
        &["kernel.msgmax"],
    );
    let sysctls: Vec<String> = findings(&pss, &object)
        .into_iter()
        .filter(|(r, _)| r == "sysctls")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        sysctls,
        ["spec.template.spec.securityContext.sysctls[1].name"]
    );
    // Volume types by name or by path.
    for value in ["nfs", "spec.volumes[*].nfs"] {
        let pss = allowing(
            PodSecurity::restricted(),
            "Volume Types",
            &[],
            "spec.volumes[*]",
            &[value],
        );
        let volumes: Vec<String> = findings(&pss, &object)
            .into_iter()
            .filter(|(r, _)| r == "restrictedVolumes")
            .map(|(_, p)| p)
            .collect();
        assert_eq!(
            volumes,
            ["spec.template.spec.volumes[1].gitRepo"],
            "{value}"
        );
    }
    // AppArmor annotations: the value is the annotation's.
    let mut annotated = deployment(&[container("app", "a:1", &json!({}))], &json!({}));
    annotated.as_map_mut()["spec"]["template"]["metadata"]["annotations"] =
        json!({"container.apparmor.security.beta.kubernetes.io/app": "unconfined"});
    let pss = allowing(
        PodSecurity::baseline(),
        "AppArmor",
        &[],
        "metadata.annotations",
        &["unconfined"],
    );
    assert!(findings(&pss, &annotated).is_empty());
    let pss = allowing(
        PodSecurity::baseline(),
        "AppArmor",
        &[],
        "metadata.annotations",
        &["localhost/x"],
    );
    assert_eq!(findings(&pss, &annotated).len(), 1);
}

#[test]
fn a_selinux_finding_is_waived_only_when_each_forbidden_field_is() {
    let object = deployment(
        &[container(
            "app",
            "a:1",
            &json!({"seLinuxOptions": {"type": "spc_t", "user": "system_u"}}),
        )],
        &json!({}),
    );
    let field = "spec.containers[*].securityContext.seLinuxOptions";
    let only_type = allowing(
        PodSecurity::baseline(),
        "SELinux",
        &[],
        &format!("{field}.type"),
        &["spc_t"],
    );
    assert_eq!(
        findings(&only_type, &object).len(),
        1,
        "the user is still forbidden"
    );
    let both = only_type
        .with_exclusion({
            let mut e = ControlExclusion::new("SELinux");
            e.restricted_field = Some(format!("{field}.user"));
            e.values = vec!["system_u".to_owned()];
            e
        })
        .unwrap();
    assert!(findings(&both, &object).is_empty());
}

#[test]
fn bad_restricted_fields_are_clear_errors() {
    let err = |e: ControlExclusion| {
        PodSecurity::baseline()
            .with_exclusion(e)
            .unwrap_err()
            .to_string()
    };
    let mut e = ControlExclusion::new("Capabilities");
    e.restricted_field = Some("spec.containers[*].securityContext.privileged".into());
    e.values = vec!["true".into()];
    let msg = err(e);
    assert!(msg.contains("not a field of `Capabilities`"), "{msg}");
    assert!(
        msg.contains("spec.containers[*].securityContext.capabilities.add"),
        "{msg}"
    );
    let mut e = ControlExclusion::new("Capabilities");
    e.restricted_field = Some("spec.containers[0].securityContext.capabilities.add".into());
    let msg = err(e);
    assert!(msg.contains("no `values`"), "{msg}");
    let mut e = ControlExclusion::new("Capabilities");
    e.values = vec!["NET_ADMIN".into()];
    assert!(err(e).contains("without a `restrictedField`"));
    // An index in place of `[*]` is accepted; the fields listed are normal.
    let mut e = ControlExclusion::new("Capabilities");
    e.restricted_field = Some("spec.containers[3].securityContext.capabilities.add".into());
    e.values = vec!["NET_ADMIN".into()];
    assert!(PodSecurity::baseline().with_exclusion(e).is_ok());
    assert!(PodSecurity::restricted_fields("Nope").is_none());
    // In a policy-set file, with the entry named.
    let err = PolicySetConfig::from_yaml(
        "policies:\n  - type: pod-security\n    excludeControls:\n      - controlName: Host Ports\n        restrictedField: spec.hostNetwork\n        values: [\"true\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("policies[0]") && err.contains("not a field of `Host Ports`"),
        "{err}"
    );
    let config = PolicySetConfig::from_yaml(
        "policies:\n  - type: pod-security\n    excludeControls:\n      - controlName: Host Ports\n        restrictedField: spec.containers[*].ports[*].hostPort\n        values: [\"8080\"]\n",
    )
    .unwrap();
    let text = serde_json::to_string(&config).unwrap();
    assert!(
        text.contains(
            r#""restrictedField":"spec.containers[*].ports[*].hostPort","values":["8080"]"#
        ),
        "{text}"
    );
}

#[test]
fn exceptions_waive_only_the_pod_security_findings_they_list() {
    let config = PolicySetConfig::from_yaml(
        r#"
policies:
  - type: pod-security
    level: restricted
    version: v1.30
  - type: require-probes
exceptions:
  - name: vpn-gateway
    reason: the gateway manages routes; NET-12
    policies: [{policy: pod-security}, {policy: require-probes}]
    match: {names: [shop]}
    podSecurity:
      - controlName: Capabilities
        restrictedField: spec.containers[*].securityContext.capabilities.add
        values: [NET_ADMIN]
      - controlName: SELinux
        images: ["ghcr.io/acme/*"]
        restrictedField: spec.containers[*].securityContext.seLinuxOptions.type
        values: [container_engine_t]
"#,
    )
    .unwrap();
    let set = config.build();
    let object = deployment(
        &[
            container(
                "app",
                "ghcr.io/acme/shop:1.2",
                &json!({"capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"], "drop": ["ALL"]},
                        "seLinuxOptions": {"type": "container_engine_t"}}),
            ),
            container(
                "helper",
                "busybox:1.36",
                &json!({"seLinuxOptions": {"type": "container_engine_t"}}),
            ),
        ],
        &json!({}),
    );
    let found: Vec<(String, String)> = set
        .evaluate(&object, &PolicyContext::new())
        .into_iter()
        .map(|v| (v.rule.into_owned(), v.path.unwrap_or_default()))
        .collect();
    // SYS_ADMIN stays; NET_ADMIN goes. At v1.30 container_engine_t is forbidden: the
    // exception waives it for the acme image only. The probes policy's findings stay,
    // though the exception names it: podSecurity limits it to Pod Security findings.
    let c0 = "spec.template.spec.containers[0]";
    let c1 = "spec.template.spec.containers[1]";
    assert_eq!(
        found,
        [
            (
                "seLinuxOptions".to_owned(),
                format!("{c1}.securityContext.seLinuxOptions")
            ),
            (
                "capabilities_restricted".to_owned(),
                format!("{c0}.securityContext.capabilities.add[1]")
            ),
            ("liveness".to_owned(), format!("{c0}.livenessProbe")),
            ("readiness".to_owned(), format!("{c0}.readinessProbe")),
            ("liveness".to_owned(), format!("{c1}.livenessProbe")),
            ("readiness".to_owned(), format!("{c1}.readinessProbe")),
        ]
    );
    // Another object is not covered by the exception at all.
    let mut other = object.clone();
    other.as_map_mut()["metadata"]["name"] = json!("other");
    let n = set.evaluate(&other, &PolicyContext::new()).len();
    assert_eq!(n, found.len() + 2);

    // A bad entry is an error naming the exception.
    let err = PolicySetConfig::from_yaml(
        "exceptions:\n  - name: x\n    reason: y\n    policies: [{policy: pod-security}]\n    podSecurity: [{controlName: Capabilities, values: [NET_ADMIN]}]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("exceptions[0] (x)") && err.contains("restrictedField"),
        "{err}"
    );
}
