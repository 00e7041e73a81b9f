//! Pod Security Standards: one test per check and per version boundary. Fixtures follow
//! the Kubernetes Pod Security Standards documentation (the "Restricted Fields" and
//! "Allowed Values" of each control).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::{Object, Policy, PolicyContext};
use idp_policy::pss::{Level, PodSecurity, PssVersion};
use serde_json::{Value, json};

fn pod(spec: Value) -> Object {
    Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"}, "spec": spec}))
    .unwrap()
}

fn pod_with_annotations(annotations: Value, spec: Value) -> Object {
    Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": annotations}, "spec": spec}))
    .unwrap()
}

fn version(v: &str) -> PssVersion {
    v.parse().unwrap()
}

/// (rule, path) of every violation.
fn run(level: Level, v: &str, object: &Object) -> Vec<(String, String)> {
    PodSecurity::new(level)
        .at(version(v))
        .evaluate(object, &PolicyContext::new())
        .into_iter()
        .map(|v| (v.rule.into_owned(), v.path.unwrap_or_default()))
        .collect()
}

fn rules(level: Level, v: &str, object: &Object) -> Vec<String> {
    run(level, v, object).into_iter().map(|(r, _)| r).collect()
}

fn baseline(v: &str, object: &Object) -> Vec<String> {
    rules(Level::Baseline, v, object)
}

/// Restricted violations other than the ones the fixture does not care about.
fn restricted(v: &str, object: &Object) -> Vec<String> {
    rules(Level::Restricted, v, object)
}

/// A pod that satisfies restricted at every version.
fn compliant() -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "acme/app:1",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
    })
}

/// `compliant()` with `patch` merged into the first container's securityContext.
fn compliant_with_container_sc(patch: Value) -> Value {
    let mut spec = compliant();
    let sc = spec["containers"][0]["securityContext"]
        .as_object_mut()
        .unwrap();
    for (k, v) in patch.as_object().unwrap() {
        sc.insert(k.clone(), v.clone());
    }
    spec
}

fn compliant_with(key: &str, value: Value) -> Value {
    let mut spec = compliant();
    spec.as_object_mut().unwrap().insert(key.to_owned(), value);
    spec
}

#[test]
fn compliant_pod_passes_restricted_at_every_version() {
    let p = pod(compliant());
    for minor in 0..=40 {
        let v = format!("v1.{minor}");
        assert!(
            restricted(&v, &p).is_empty(),
            "{v}: {:?}",
            restricted(&v, &p)
        );
    }
    assert!(restricted("latest", &p).is_empty());
}

#[test]
fn version_parsing() {
    assert_eq!(version("v1.0"), PssVersion::V1(0));
    assert_eq!(version("v1.37"), PssVersion::V1(37));
    assert_eq!(version("latest"), PssVersion::Latest);
    for bad in [
        "", "v1.", "v1.x", "v2.1", "1.30", "v1.-1", "latest ", "v1.30.1", "V1.30",
    ] {
        assert!(bad.parse::<PssVersion>().is_err(), "{bad:?} parsed");
    }
    let err = "v2.0".parse::<PssVersion>().unwrap_err();
    assert!(err.to_string().contains("v1.<minor>"), "{err}");
    assert_eq!(PssVersion::V1(50).minor(), PssVersion::Latest.minor());
    let json: PssVersion = serde_json::from_str("\"v1.25\"").unwrap();
    assert_eq!(json, PssVersion::V1(25));
    assert_eq!(serde_json::to_string(&json).unwrap(), "\"v1.25\"");
}

#[test]
fn privileged_level_checks_nothing() {
    let p = pod(
        json!({"hostNetwork": true, "containers": [{"name": "c", "securityContext": {"privileged": true}}]}),
    );
    assert!(rules(Level::Privileged, "latest", &p).is_empty());
}

#[test]
fn host_namespaces() {
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        let p = pod(compliant_with(field, json!(true)));
        assert_eq!(
            run(Level::Baseline, "v1.0", &p),
            [("hostNamespaces".to_string(), format!("spec.{field}"))]
        );
        assert!(baseline("latest", &pod(compliant_with(field, json!(false)))).is_empty());
    }
}

#[test]
fn privileged_in_every_container_list() {
    let sc = json!({"privileged": true});
    let p = pod(json!({
        "initContainers": [{"name": "i", "securityContext": sc}],
        "containers": [{"name": "c", "securityContext": {"privileged": false}}, {"name": "d", "securityContext": sc}],
        "ephemeralContainers": [{"name": "e", "securityContext": sc}]
    }));
    let found = run(Level::Baseline, "latest", &p);
    let paths: Vec<_> = found.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.initContainers[0].securityContext.privileged",
            "spec.containers[1].securityContext.privileged",
            "spec.ephemeralContainers[0].securityContext.privileged",
        ]
    );
    let v = PodSecurity::baseline().evaluate(&p, &PolicyContext::new());
    assert_eq!(
        v[0].message,
        "privileged (container \"i\" must not set securityContext.privileged=true)"
    );
}

#[test]
fn capabilities_baseline_and_restricted_boundary() {
    let add = |caps: Value| {
        pod(compliant_with_container_sc(
            json!({"capabilities": {"drop": ["ALL"], "add": caps}}),
        ))
    };
    assert_eq!(
        baseline("latest", &add(json!(["NET_ADMIN"]))),
        ["capabilities_baseline"]
    );
    assert!(
        baseline(
            "latest",
            &add(json!(["CHOWN", "NET_BIND_SERVICE", "SYS_CHROOT"]))
        )
        .is_empty()
    );
    // Restricted before v1.22 only knows the baseline check.
    assert_eq!(
        restricted("v1.21", &add(json!(["NET_ADMIN"]))),
        ["capabilities_baseline"]
    );
    assert!(restricted("v1.21", &add(json!(["CHOWN"]))).is_empty());
    // From v1.22 restricted replaces it: only NET_BIND_SERVICE may be added.
    assert_eq!(
        restricted("v1.22", &add(json!(["NET_ADMIN"]))),
        ["capabilities_restricted"]
    );
    assert_eq!(
        restricted("v1.22", &add(json!(["CHOWN"]))),
        ["capabilities_restricted"]
    );
    assert!(restricted("v1.22", &add(json!(["NET_BIND_SERVICE"]))).is_empty());
    let v = PodSecurity::restricted().evaluate(&add(json!(["SYS_ADMIN"])), &PolicyContext::new());
    assert_eq!(
        v[0].message,
        "unrestricted capabilities (container \"app\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)"
    );
    assert_eq!(
        v[0].path.as_deref(),
        Some("spec.containers[0].securityContext.capabilities.add[0]")
    );
}

#[test]
fn capabilities_restricted_requires_drop_all() {
    let p = pod(compliant_with_container_sc(
        json!({"capabilities": {"drop": ["NET_RAW"]}}),
    ));
    assert_eq!(restricted("v1.22", &p), ["capabilities_restricted"]);
    assert!(restricted("v1.21", &p).is_empty());
    let none = pod(compliant_with_container_sc(json!({"capabilities": null})));
    assert_eq!(restricted("latest", &none), ["capabilities_restricted"]);
}

#[test]
fn host_path_volumes_and_restricted_volume_types() {
    let p = pod(compliant_with(
        "volumes",
        json!([{"name": "h", "hostPath": {"path": "/var/run"}}]),
    ));
    assert_eq!(
        run(Level::Baseline, "latest", &p),
        [(
            "hostPathVolumes".to_string(),
            "spec.volumes[0].hostPath".to_string()
        )]
    );
    // Restricted reports it as a restricted volume type instead.
    assert_eq!(restricted("latest", &p), ["restrictedVolumes"]);
    let nfs = pod(compliant_with(
        "volumes",
        json!([{"name": "n", "nfs": {"server": "s", "path": "/"}}]),
    ));
    assert!(baseline("latest", &nfs).is_empty());
    assert_eq!(restricted("v1.0", &nfs), ["restrictedVolumes"]);
    let v = PodSecurity::restricted().evaluate(&nfs, &PolicyContext::new());
    assert_eq!(
        v[0].message,
        "restricted volume types (volume \"n\" uses restricted volume type \"nfs\")"
    );
    let allowed = pod(compliant_with(
        "volumes",
        json!([
            {"name": "a", "configMap": {"name": "c"}}, {"name": "b", "secret": {"secretName": "s"}},
            {"name": "c", "emptyDir": {}}, {"name": "d", "persistentVolumeClaim": {"claimName": "x"}},
            {"name": "e", "projected": {"sources": []}}, {"name": "f", "downwardAPI": {}},
            {"name": "g", "csi": {"driver": "d"}}, {"name": "h", "ephemeral": {}},
            {"name": "i", "image": {"reference": "r:1"}}, {"name": "j"}
        ]),
    ));
    assert!(restricted("latest", &allowed).is_empty());
}

#[test]
fn host_ports() {
    let p = |port: Value| {
        let mut spec = compliant();
        spec["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": port}]);
        pod(spec)
    };
    assert_eq!(
        run(Level::Baseline, "latest", &p(json!(8080))),
        [(
            "hostPorts".to_string(),
            "spec.containers[0].ports[0].hostPort".to_string()
        )]
    );
    assert!(baseline("latest", &p(json!(0))).is_empty());
}

#[test]
fn app_armor_annotations_and_fields() {
    let key = "container.apparmor.security.beta.kubernetes.io/app";
    let annotated = |value: &str| pod_with_annotations(json!({key: value}), compliant());
    assert_eq!(
        baseline("v1.0", &annotated("unconfined")),
        ["appArmorProfile"]
    );
    assert_eq!(
        run(Level::Baseline, "v1.0", &annotated("unconfined"))[0].1,
        format!("metadata.annotations[\"{key}\"]")
    );
    for ok in ["runtime/default", "localhost/my-profile", ""] {
        assert!(baseline("latest", &annotated(ok)).is_empty(), "{ok}");
    }
    // Fields: Unconfined is forbidden at pod and container level; RuntimeDefault and
    // Localhost are fine. Upstream checks the fields in its v1.0 revision.
    let pod_field = pod(compliant_with(
        "securityContext",
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"},
               "appArmorProfile": {"type": "Unconfined"}}),
    ));
    assert_eq!(baseline("v1.0", &pod_field), ["appArmorProfile"]);
    assert_eq!(
        run(Level::Baseline, "latest", &pod_field)[0].1,
        "spec.securityContext.appArmorProfile.type"
    );
    let container_field = pod(compliant_with_container_sc(
        json!({"appArmorProfile": {"type": "Unconfined"}}),
    ));
    assert_eq!(baseline("latest", &container_field), ["appArmorProfile"]);
    for ok in ["RuntimeDefault", "Localhost"] {
        let p = pod(compliant_with_container_sc(
            json!({"appArmorProfile": {"type": ok}}),
        ));
        assert!(baseline("latest", &p).is_empty());
    }
}

#[test]
fn se_linux_options_and_container_engine_t_boundary() {
    let with = |opts: Value| pod(compliant_with_container_sc(json!({"seLinuxOptions": opts})));
    assert_eq!(
        baseline("latest", &with(json!({"type": "spc_t"}))),
        ["seLinuxOptions"]
    );
    for ok in ["container_t", "container_init_t", "container_kvm_t"] {
        assert!(baseline("v1.0", &with(json!({"type": ok}))).is_empty());
    }
    assert_eq!(
        baseline("v1.30", &with(json!({"type": "container_engine_t"}))),
        ["seLinuxOptions"]
    );
    assert!(baseline("v1.31", &with(json!({"type": "container_engine_t"}))).is_empty());
    assert_eq!(
        baseline("latest", &with(json!({"user": "sysadm_u"}))),
        ["seLinuxOptions"]
    );
    assert_eq!(
        baseline("latest", &with(json!({"role": "sysadm_r"}))),
        ["seLinuxOptions"]
    );
    assert!(baseline("latest", &with(json!({"level": "s0:c123,c456"}))).is_empty());
    let pod_level = pod(compliant_with(
        "securityContext",
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"},
               "seLinuxOptions": {"type": "spc_t", "user": "u"}}),
    ));
    let v = PodSecurity::baseline().evaluate(&pod_level, &PolicyContext::new());
    assert_eq!(
        v[0].message,
        "seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type \"spc_t\"; user \"u\")"
    );
}

#[test]
fn proc_mount_and_user_namespace_relaxation() {
    let unmasked = |host_users: Option<bool>| {
        let mut spec = compliant_with_container_sc(json!({"procMount": "Unmasked"}));
        if let Some(h) = host_users {
            spec["hostUsers"] = json!(h);
        }
        pod(spec)
    };
    assert_eq!(baseline("v1.0", &unmasked(None)), ["procMount"]);
    assert!(
        baseline(
            "latest",
            &pod(compliant_with_container_sc(json!({"procMount": "Default"})))
        )
        .is_empty()
    );
    // Baseline relaxes it for user-namespaced pods from v1.35.
    assert_eq!(baseline("v1.34", &unmasked(Some(false))), ["procMount"]);
    assert!(baseline("v1.35", &unmasked(Some(false))).is_empty());
    assert_eq!(baseline("v1.35", &unmasked(Some(true))), ["procMount"]);
    // Restricted re-tightens it from v1.35 with procMount_restricted.
    assert_eq!(restricted("v1.34", &unmasked(Some(false))), ["procMount"]);
    assert_eq!(
        restricted("v1.35", &unmasked(Some(false))),
        ["procMount_restricted"]
    );
    assert_eq!(
        restricted("v1.35", &unmasked(None)),
        ["procMount_restricted"]
    );
}

#[test]
fn seccomp_baseline_annotations_before_v1_19_fields_after() {
    let annotated = pod_with_annotations(
        json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined",
               "container.seccomp.security.alpha.kubernetes.io/app": "unconfined"}),
        compliant(),
    );
    assert_eq!(
        baseline("v1.18", &annotated),
        ["seccompProfile_baseline", "seccompProfile_baseline"]
    );
    assert!(baseline("v1.19", &annotated).is_empty());
    let field = pod(compliant_with_container_sc(
        json!({"seccompProfile": {"type": "Unconfined"}}),
    ));
    assert!(baseline("v1.18", &field).is_empty());
    assert_eq!(baseline("v1.19", &field), ["seccompProfile_baseline"]);
    assert!(
        baseline(
            "latest",
            &pod(compliant_with_container_sc(
                json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}})
            ))
        )
        .is_empty()
    );
    // Restricted before v1.19 uses the baseline check.
    assert_eq!(
        restricted("v1.18", &annotated),
        ["seccompProfile_baseline", "seccompProfile_baseline"]
    );
}

#[test]
fn sysctls_per_version() {
    let with = |name: &str| {
        pod(compliant_with(
            "securityContext",
            json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"},
                   "sysctls": [{"name": name, "value": "1"}]}),
        ))
    };
    for always in [
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ] {
        assert!(baseline("v1.0", &with(always)).is_empty(), "{always}");
    }
    let boundaries = [
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_time", 29),
        ("net.ipv4.tcp_fin_timeout", 29),
        ("net.ipv4.tcp_keepalive_intvl", 29),
        ("net.ipv4.tcp_keepalive_probes", 29),
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_wmem", 32),
        ("net.ipv4.tcp_slow_start_after_idle", 37),
        ("net.ipv4.tcp_notsent_lowat", 37),
    ];
    for (name, from) in boundaries {
        assert_eq!(
            baseline(&format!("v1.{}", from - 1), &with(name)),
            ["sysctls"],
            "{name}"
        );
        assert!(
            baseline(&format!("v1.{from}"), &with(name)).is_empty(),
            "{name}"
        );
    }
    assert_eq!(baseline("latest", &with("kernel.msgmax")), ["sysctls"]);
    let v = PodSecurity::baseline().evaluate(&with("kernel.msgmax"), &PolicyContext::new());
    assert_eq!(v[0].message, "forbidden sysctls (kernel.msgmax)");
    assert_eq!(
        v[0].path.as_deref(),
        Some("spec.securityContext.sysctls[0].name")
    );
}

#[test]
fn windows_host_process() {
    let p = pod(compliant_with_container_sc(
        json!({"windowsOptions": {"hostProcess": true}}),
    ));
    assert_eq!(baseline("v1.0", &p), ["windowsHostProcess"]);
    let pod_level = pod(compliant_with(
        "securityContext",
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"},
               "windowsOptions": {"hostProcess": true}}),
    ));
    assert_eq!(baseline("latest", &pod_level), ["windowsHostProcess"]);
    let off = pod(compliant_with_container_sc(
        json!({"windowsOptions": {"hostProcess": false}}),
    ));
    assert!(baseline("latest", &off).is_empty());
}

#[test]
fn host_probes_and_lifecycle_from_v1_34() {
    let mut spec = compliant();
    spec["containers"][0]["livenessProbe"] = json!({"httpGet": {"host": "10.0.0.1", "port": 80}});
    spec["containers"][0]["readinessProbe"] = json!({"tcpSocket": {"host": "", "port": 80}});
    spec["containers"][0]["lifecycle"] =
        json!({"preStop": {"tcpSocket": {"host": "db", "port": 5432}}});
    let p = pod(spec);
    assert!(baseline("v1.33", &p).is_empty());
    let found = run(Level::Baseline, "v1.34", &p);
    assert_eq!(
        found,
        [
            (
                "hostProbesAndHostLifecycle".to_string(),
                "spec.containers[0].livenessProbe.httpGet.host".to_string()
            ),
            (
                "hostProbesAndHostLifecycle".to_string(),
                "spec.containers[0].lifecycle.preStop.tcpSocket.host".to_string()
            ),
        ]
    );
    let mut ok = compliant();
    ok["containers"][0]["startupProbe"] = json!({"httpGet": {"path": "/", "port": 80}});
    assert!(baseline("latest", &pod(ok)).is_empty());
}

#[test]
fn allow_privilege_escalation_versions_and_windows() {
    let unset = pod(compliant_with_container_sc(
        json!({"allowPrivilegeEscalation": null}),
    ));
    assert!(restricted("v1.7", &unset).is_empty());
    assert_eq!(restricted("v1.8", &unset), ["allowPrivilegeEscalation"]);
    let v = PodSecurity::restricted().evaluate(&unset, &PolicyContext::new());
    assert_eq!(
        v[0].message,
        "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)"
    );
    let truthy = pod(compliant_with_container_sc(
        json!({"allowPrivilegeEscalation": true}),
    ));
    assert_eq!(restricted("latest", &truthy), ["allowPrivilegeEscalation"]);
    let mut windows = compliant_with_container_sc(json!({"allowPrivilegeEscalation": true}));
    windows["os"] = json!({"name": "windows"});
    assert_eq!(
        restricted("v1.24", &pod(windows.clone())),
        ["allowPrivilegeEscalation"]
    );
    assert!(restricted("v1.25", &pod(windows)).is_empty());
}

#[test]
fn run_as_non_root_inheritance() {
    let spec = |pod_value: Value, container_value: Value| {
        let mut s = compliant();
        s["securityContext"]["runAsNonRoot"] = pod_value;
        s["containers"][0]["securityContext"]["runAsNonRoot"] = container_value;
        if s["securityContext"]["runAsNonRoot"].is_null() {
            s["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("runAsNonRoot");
        }
        if s["containers"][0]["securityContext"]["runAsNonRoot"].is_null() {
            s["containers"][0]["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("runAsNonRoot");
        }
        pod(s)
    };
    // Pod true, container unset: inherited.
    assert!(restricted("v1.0", &spec(json!(true), Value::Null)).is_empty());
    // Pod unset, container true: fine.
    assert!(restricted("v1.0", &spec(Value::Null, json!(true))).is_empty());
    // Both unset.
    let both = run(Level::Restricted, "v1.0", &spec(Value::Null, Value::Null));
    assert_eq!(
        both,
        [(
            "runAsNonRoot".to_string(),
            "spec.containers[0].securityContext.runAsNonRoot".to_string()
        )]
    );
    // Container false overrides pod true.
    assert_eq!(
        restricted("latest", &spec(json!(true), json!(false))),
        ["runAsNonRoot"]
    );
    // Pod false is itself a violation even when the container says true.
    let pod_false = run(
        Level::Restricted,
        "latest",
        &spec(json!(false), json!(true)),
    );
    assert_eq!(pod_false[0].1, "spec.securityContext.runAsNonRoot");
    assert_eq!(pod_false.len(), 1);
}

#[test]
fn run_as_non_root_and_run_as_user_user_namespace_relaxation_from_v1_35() {
    let mut s = compliant();
    s["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}, "runAsUser": 0});
    s["hostUsers"] = json!(false);
    let p = pod(s);
    assert_eq!(restricted("v1.34", &p), ["runAsNonRoot", "runAsUser"]);
    assert!(restricted("v1.35", &p).is_empty());
}

#[test]
fn run_as_non_root_is_not_exempt_for_windows() {
    let mut s = compliant();
    s["securityContext"] = json!({});
    s["os"] = json!({"name": "windows"});
    let p = pod(s);
    assert_eq!(restricted("latest", &p), ["runAsNonRoot"]);
}

#[test]
fn run_as_user_from_v1_23() {
    let root = pod(compliant_with_container_sc(json!({"runAsUser": 0})));
    assert!(restricted("v1.22", &root).is_empty());
    assert_eq!(restricted("v1.23", &root), ["runAsUser"]);
    let mut pod_root = compliant();
    pod_root["securityContext"]["runAsUser"] = json!(0);
    pod_root["containers"][0]["securityContext"]["runAsUser"] = json!(1000);
    let found = run(Level::Restricted, "latest", &pod(pod_root));
    assert_eq!(
        found,
        [(
            "runAsUser".to_string(),
            "spec.securityContext.runAsUser".to_string()
        )]
    );
    assert!(
        restricted(
            "latest",
            &pod(compliant_with_container_sc(json!({"runAsUser": 1000})))
        )
        .is_empty()
    );
}

#[test]
fn seccomp_restricted_from_v1_19_with_pod_inheritance_and_windows() {
    let mut none = compliant();
    none["securityContext"] = json!({"runAsNonRoot": true});
    let p = pod(none.clone());
    assert!(restricted("v1.18", &p).is_empty());
    assert_eq!(
        run(Level::Restricted, "v1.19", &p),
        [(
            "seccompProfile_restricted".to_string(),
            "spec.containers[0].securityContext.seccompProfile.type".to_string()
        )]
    );
    // Container-level Localhost is enough.
    let mut container_level = none.clone();
    container_level["containers"][0]["securityContext"]["seccompProfile"] =
        json!({"type": "Localhost", "localhostProfile": "x.json"});
    assert!(restricted("latest", &pod(container_level)).is_empty());
    // Pod-level Unconfined: the pod and every container without its own profile.
    let mut unconfined = none.clone();
    unconfined["securityContext"]["seccompProfile"] = json!({"type": "Unconfined"});
    let found = run(Level::Restricted, "latest", &pod(unconfined));
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].1, "spec.securityContext.seccompProfile.type");
    // Windows pods are exempt from v1.25.
    let mut windows = none;
    windows["os"] = json!({"name": "windows"});
    assert_eq!(
        restricted("v1.24", &pod(windows.clone())),
        ["seccompProfile_restricted"]
    );
    assert!(restricted("v1.25", &pod(windows)).is_empty());
}

#[test]
fn capabilities_restricted_windows_exemption() {
    let mut s = compliant_with_container_sc(json!({"capabilities": {"add": ["SYS_ADMIN"]}}));
    s["os"] = json!({"name": "windows"});
    let p = pod(s);
    assert_eq!(
        restricted("v1.24", &p),
        ["capabilities_restricted", "capabilities_restricted"]
    );
    assert!(restricted("v1.25", &p).is_empty());
    // Baseline checks still apply to Windows pods.
    assert_eq!(baseline("v1.25", &p), ["capabilities_baseline"]);
}

#[test]
fn restricted_check_list_per_version() {
    let ids = |v: &str| PodSecurity::restricted().at(version(v)).checks();
    assert!(!ids("v1.7").contains(&"allowPrivilegeEscalation"));
    assert!(ids("v1.8").contains(&"allowPrivilegeEscalation"));
    assert!(ids("v1.18").contains(&"seccompProfile_baseline"));
    assert!(!ids("v1.19").contains(&"seccompProfile_baseline"));
    assert!(ids("v1.19").contains(&"seccompProfile_restricted"));
    assert!(ids("v1.21").contains(&"capabilities_baseline"));
    assert!(ids("v1.22").contains(&"capabilities_restricted"));
    assert!(!ids("v1.22").contains(&"capabilities_baseline"));
    assert!(!ids("v1.22").contains(&"runAsUser"));
    assert!(ids("v1.23").contains(&"runAsUser"));
    assert!(!ids("v1.0").contains(&"hostPathVolumes"));
    assert!(ids("v1.34").contains(&"procMount"));
    assert!(ids("v1.35").contains(&"procMount_restricted"));
    assert!(!ids("v1.35").contains(&"procMount"));
    assert_eq!(ids("latest"), ids("v1.99"));
}

#[test]
fn autogen_every_pod_controller_with_template_paths() {
    let pod_spec = json!({"containers": [{"name": "c", "securityContext": {"privileged": true}}]});
    let template = json!({"metadata": {"annotations": {
        "container.apparmor.security.beta.kubernetes.io/c": "unconfined"}}, "spec": pod_spec});
    let cases = [
        ("v1", "Pod", json!(pod_spec), "spec"),
        (
            "apps/v1",
            "Deployment",
            json!({"template": template}),
            "spec.template.spec",
        ),
        (
            "apps/v1",
            "StatefulSet",
            json!({"template": template}),
            "spec.template.spec",
        ),
        (
            "apps/v1",
            "DaemonSet",
            json!({"template": template}),
            "spec.template.spec",
        ),
        (
            "apps/v1",
            "ReplicaSet",
            json!({"template": template}),
            "spec.template.spec",
        ),
        (
            "v1",
            "ReplicationController",
            json!({"template": template}),
            "spec.template.spec",
        ),
        (
            "batch/v1",
            "Job",
            json!({"template": template}),
            "spec.template.spec",
        ),
        (
            "batch/v1",
            "CronJob",
            json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}),
            "spec.jobTemplate.spec.template.spec",
        ),
    ];
    for (api, kind, spec, prefix) in cases {
        let mut value =
            json!({"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": spec});
        if kind == "Pod" {
            value["metadata"]["annotations"] =
                json!({"container.apparmor.security.beta.kubernetes.io/c": "unconfined"});
        }
        let object = Object::from_value(value).unwrap();
        let found = run(Level::Baseline, "latest", &object);
        let privileged = found.iter().find(|(r, _)| r == "privileged").unwrap();
        assert_eq!(
            privileged.1,
            format!("{prefix}.containers[0].securityContext.privileged"),
            "{kind}"
        );
        let apparmor = found.iter().find(|(r, _)| r == "appArmorProfile").unwrap();
        let meta = prefix.strip_suffix("spec").unwrap();
        assert_eq!(
            apparmor.1,
            format!(
                "{meta}metadata.annotations[\"container.apparmor.security.beta.kubernetes.io/c\"]"
            ),
            "{kind}"
        );
    }
    let svc = Object::from_value(
        json!({"apiVersion": "v1", "kind": "Service", "spec": {"hostNetwork": true}}),
    )
    .unwrap();
    assert!(baseline("latest", &svc).is_empty());
}
