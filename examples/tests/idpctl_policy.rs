//! `idpctl policy ...` through the real binary: real manifests in temp dirs, exit codes and
//! JSON shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{idpctl, json, write};

use serde_json::Value;

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
const PRIVILEGED: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  template:\n    spec:\n      hostPID: true\n      containers:\n        - name: app\n          image: ghcr.io/acme/cart:latest\n          securityContext:\n            privileged: true\n";
const PLAIN: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/web:1.2\n";

fn rules(rows: &Value) -> Vec<(String, String)> {
    rows.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["violations"].as_array().unwrap().iter())
        .map(|v| {
            (
                v["policy"].as_str().unwrap().to_owned(),
                v["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn check_defaults_to_pss_baseline_with_a_row_per_object() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "k8s/bad.yaml",
        &format!("{NAMESPACE}---\n{PRIVILEGED}"),
    );
    let good = write(dir.path(), "k8s/good.yaml", PLAIN);

    let out = idpctl(&["policy", "check", &good]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 object(s), 0 denied"));

    let root = dir.path().to_str().unwrap();
    let out = idpctl(&["policy", "check", root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "a denied object is a finding");
    let rows = json(&out);
    let list = rows.as_array().unwrap();
    assert_eq!(list.len(), 3, "every object gets a row: {rows}");
    assert_eq!(list[0]["file"], bad.as_str());
    assert_eq!(list[0]["document"], 0);
    assert_eq!(list[0]["kind"], "Namespace");
    assert_eq!(list[0]["namespace"], Value::Null);
    assert_eq!(list[0]["allowed"], true);
    let cart = &list[1];
    assert_eq!(cart["document"], 1);
    assert_eq!(cart["apiVersion"], "apps/v1");
    assert_eq!(cart["namespace"], "shop");
    assert_eq!(cart["name"], "cart");
    assert_eq!(cart["allowed"], false);
    let privileged = cart["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "privileged")
        .expect("privileged is a baseline violation");
    assert_eq!(privileged["policy"], "pod-security");
    assert_eq!(privileged["action"], "deny");
    assert_eq!(
        privileged["path"],
        "spec.template.spec.containers[0].securityContext.privileged"
    );
    assert!(!privileged["message"].as_str().unwrap().is_empty());
    assert_eq!(list[2]["file"], good.as_str());
    assert_eq!(list[2]["allowed"], true);

    let out = idpctl(&["policy", "check", root]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("denied"), "{text}");
    assert!(text.contains("3 object(s), 1 denied"), "{text}");
}

#[test]
fn restricted_and_guardrails_find_more() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.yaml", PLAIN);
    let out = idpctl(&[
        "policy",
        "check",
        &good,
        "--pss",
        "restricted",
        "--pss-version",
        "v1.30",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let found = rules(&json(&out));
    assert!(
        found.contains(&("pod-security".into(), "runAsNonRoot".into())),
        "{found:?}"
    );

    let out = idpctl(&[
        "policy",
        "check",
        &good,
        "--pss-version",
        "1.30",
        "-o",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--pss-version alone means baseline"
    );

    let out = idpctl(&["policy", "check", &good, "--guardrails", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let found = rules(&json(&out));
    assert!(
        found.iter().any(|(p, _)| p == "require-resources"),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(p, _)| p != "pod-security"),
        "no PSS unless asked: {found:?}"
    );

    let out = idpctl(&["policy", "check", &good, "--pss-version", "2.0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn policy_files_are_recognised_by_content_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", PRIVILEGED);
    let set = write(
        dir.path(),
        "policies/set.yaml",
        "apiVersion: idp.dev/v1alpha1\nkind: PolicySet\nname: ci\npolicies:\n  - type: disallow-latest-tag\n",
    );
    let out = idpctl(&["policy", "check", &bad, "--policy", &set, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let found = rules(&json(&out));
    assert_eq!(
        found,
        [("disallow-latest-tag".to_owned(), "latest-tag".to_owned())]
    );

    let rego = write(dir.path(), "policies/deny.rego", "package k8s\n");
    let template = write(
        dir.path(),
        "policies/template.yaml",
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: k8srequiredlabels\n",
    );
    let vap = write(
        dir.path(),
        "policies/vap.yaml",
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: x\n",
    );
    // A Rego module without rules finds nothing; incomplete Gatekeeper and
    // ValidatingAdmissionPolicy documents are usage errors naming the file and field.
    let out = idpctl(&["policy", "check", &bad, "--policy", &rego]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for (file, field) in [
        (&template, "spec.crd.spec.names.kind"),
        (&vap, "matchConstraints"),
    ] {
        let out = idpctl(&["policy", "check", &bad, "--policy", file]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(file.as_str()), "{err}");
        assert!(err.contains(field), "{err}");
    }
    let other = write(
        dir.path(),
        "policies/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    let out = idpctl(&["policy", "check", &bad, "--policy", &other]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no policy found"),
        "{out:?}"
    );

    let broken = write(
        dir.path(),
        "policies/broken.yaml",
        "policies:\n  - type: no-such-policy\n",
    );
    let out = idpctl(&["policy", "check", &bad, "--policy", &broken]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-policy"));
}

#[test]
fn mutate_adds_resources_labels_and_otel() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "web.yaml", PLAIN);
    let out = idpctl(&["policy", "mutate", &file, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let objects = json(&out);
    let web = &objects[0];
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["resources"]["requests"]["cpu"], "100m");
    assert_eq!(
        web["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "idp"
    );
    assert!(
        container.get("env").is_none(),
        "no OTel without an endpoint"
    );

    let out = idpctl(&[
        "policy",
        "mutate",
        &file,
        "--otel-endpoint",
        "http://collector:4317",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{text}");
    assert!(text.contains("http://collector:4317"), "{text}");
    assert!(text.contains("memory: 128Mi"), "{text}");

    // The mutated output passes the guardrail it was missing.
    let mutated = write(dir.path(), "out/mutated.yaml", &text);
    let out = idpctl(&["policy", "check", &mutated, "--guardrails", "-o", "json"]);
    let found = rules(&json(&out));
    assert!(
        found.iter().all(|(p, _)| p != "require-resources"),
        "{found:?}"
    );

    assert_eq!(
        idpctl(&["policy", "mutate", "/not/here.yaml"])
            .status
            .code(),
        Some(2)
    );
}

const KYVERNO_MUTATE: &str = include_str!("../../idp-policy/tests/fixtures/kyverno/mutate.yaml");

#[test]
fn mutate_applies_kyverno_mutate_rules() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "web.yaml", PLAIN);
    let policy = write(dir.path(), "policy/defaults.yaml", KYVERNO_MUTATE);
    let out = idpctl(&["policy", "mutate", &file, "--policy", &policy, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let objects = json(&out);
    let spec = &objects[0]["spec"]["template"]["spec"];
    // The Pod rules, auto-generated for the Deployment's template…
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{objects:#}");
    assert_eq!(
        spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    // …instead of the standard defaults.
    assert!(
        spec["containers"][0].get("resources").is_none(),
        "{objects:#}"
    );

    // Only Kyverno policies mutate; a rule that fails names itself.
    let gatekeeper = write(
        dir.path(),
        "policy/gk.yaml",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\nmetadata: {name: x}\n",
    );
    let out = idpctl(&["policy", "mutate", &file, "--policy", &gatekeeper]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only Kyverno policies"));
    let failing = write(
        dir.path(),
        "policy/failing.yaml",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: owner}\nspec:\n  rules:\n    - name: copy-owner\n      match: {any: [{resources: {kinds: [Deployment]}}]}\n      mutate:\n        patchStrategicMerge:\n          metadata: {labels: {team: '{{ request.object.metadata.labels.owner }}'}}\n",
    );
    let out = idpctl(&["policy", "mutate", &file, "--policy", &failing]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("owner/copy-owner"), "{err}");
}

const GK_MUTATORS: &str =
    include_str!("../../idp-policy/tests/fixtures/gatekeeper-mutation/mutators.yaml");

#[test]
fn mutate_applies_gatekeeper_mutators() {
    let dir = tempfile::tempdir().unwrap();
    let pod = write(
        dir.path(),
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: app, image: 'ghcr.io/acme/web:1'}]\n",
    );
    let mutators = write(dir.path(), "gk/mutators.yaml", GK_MUTATORS);
    let out = idpctl(&[
        "policy", "mutate", &pod, "--policy", &mutators, "-o", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let objects = json(&out);
    let app = &objects[0]["spec"]["containers"][0];
    assert_eq!(app["imagePullPolicy"], "Always", "{objects:#}");
    assert_eq!(
        app["securityContext"]["allowPrivilegeEscalation"], false,
        "{objects:#}"
    );
    // Mutators are not checks.
    let out = idpctl(&["policy", "check", &pod, "--policy", &mutators]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy mutate --policy"));
}

#[test]
fn policy_test_compares_patched_resources() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "suite/policy.yaml", KYVERNO_MUTATE);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: app, image: 'app:latest'}]\n";
    write(dir.path(), "suite/resource.yaml", pod);
    let patched = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n  labels: {acme.dev/pod: web}\nspec:\n  securityContext: {runAsNonRoot: true, runAsUser: 10001}\n  containers:\n    - name: app\n      image: 'app:latest'\n      imagePullPolicy: Always\n      securityContext: {allowPrivilegeEscalation: false}\n";
    let patched_file = write(dir.path(), "suite/patched.yaml", patched);
    let results = "  - {policy: pod-defaults, rule: always-pull-latest, resource: web, kind: Pod, patchedResource: patched.yaml, result: pass}\n  - {policy: pod-defaults, rule: registry-secret, resource: web, kind: Pod, result: skip}\n  - {policy: labels, rule: pod-name-label, resource: web, kind: Pod, result: pass}\n";
    let file = write(
        dir.path(),
        "suite/kyverno-test.yaml",
        &format!(
            "name: defaults\npolicies: [policy.yaml]\nresources: [resource.yaml]\nresults:\n{results}"
        ),
    );
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 3, "{rows:#}");
    assert!(
        rows.as_array().unwrap().iter().all(|r| r["ok"] == true),
        "{rows:#}"
    );

    // A patched resource that differs fails the row and says where.
    std::fs::write(
        &patched_file,
        patched.replace("runAsUser: 10001", "runAsUser: 1000"),
    )
    .unwrap();
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows[0]["actual"], "fail", "{rows:#}");
    let detail = rows[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("spec.securityContext.runAsUser is 10001"),
        "{detail}"
    );
}

const KYVERNO_GENERATE: &str = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: namespace-defaults}\nspec:\n  rules:\n    - name: default-deny\n      match: {any: [{resources: {kinds: [Namespace]}}]}\n      generate:\n        apiVersion: networking.k8s.io/v1\n        kind: NetworkPolicy\n        name: default-deny\n        namespace: '{{request.object.metadata.name}}'\n        synchronize: true\n        data:\n          spec:\n            podSelector: {}\n            policyTypes: [Ingress, Egress]\n    - name: pull-secret\n      match: {any: [{resources: {kinds: [Namespace]}}]}\n      generate:\n        apiVersion: v1\n        kind: Secret\n        name: regcred\n        namespace: '{{request.object.metadata.name}}'\n        clone: {namespace: platform, name: regcred}\n";

#[test]
fn policy_test_compares_generated_resources() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "suite/policy.yaml", KYVERNO_GENERATE);
    write(dir.path(), "suite/resource.yaml", NAMESPACE);
    write(
        dir.path(),
        "suite/source.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred, namespace: platform, resourceVersion: '7'}\ntype: kubernetes.io/dockerconfigjson\ndata: {.dockerconfigjson: e30=}\n",
    );
    // As in Kyverno's documentation: the file need not carry the labels Kyverno adds.
    let netpol = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\n  namespace: shop\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n";
    let netpol_file = write(dir.path(), "suite/netpol.yaml", netpol);
    write(
        dir.path(),
        "suite/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  namespace: shop\n  labels: {app.kubernetes.io/managed-by: kyverno}\ntype: kubernetes.io/dockerconfigjson\ndata: {.dockerconfigjson: e30=}\n",
    );
    let results = "  - {policy: namespace-defaults, rule: default-deny, resource: shop, kind: Namespace, generatedResource: netpol.yaml, result: pass}\n  - {policy: namespace-defaults, rule: pull-secret, resource: shop, kind: Namespace, generatedResource: secret.yaml, cloneSourceResource: source.yaml, result: pass}\n";
    let file = write(
        dir.path(),
        "suite/kyverno-test.yaml",
        &format!(
            "name: namespaces\npolicies: [policy.yaml]\nresources: [resource.yaml]\nresults:\n{results}"
        ),
    );
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows:#}");
    assert!(
        rows.as_array().unwrap().iter().all(|r| r["ok"] == true),
        "{rows:#}"
    );

    // A generated resource that differs fails the row and names the field.
    std::fs::write(
        &netpol_file,
        netpol.replace("[Ingress, Egress]", "[Ingress]"),
    )
    .unwrap();
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows[0]["actual"], "fail", "{rows:#}");
    assert_eq!(rows[1]["ok"], true, "{rows:#}");
    let detail = rows[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("spec.policyTypes is [\"Ingress\",\"Egress\"]"),
        "{detail}"
    );

    // One the rule does not generate is named too.
    std::fs::write(
        &netpol_file,
        netpol.replace("namespace: shop", "namespace: other"),
    )
    .unwrap();
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    let rows = json(&out);
    let detail = rows[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("generated no NetworkPolicy other/default-deny"),
        "{detail}"
    );

    // Without the clone source, the clone rule is an error naming it.
    let bare = write(
        dir.path(),
        "suite/kyverno-test.yaml",
        &format!(
            "name: namespaces\npolicies: [policy.yaml]\nresources: [resource.yaml]\nresults:\n{}",
            results.replace(", cloneSourceResource: source.yaml", "")
        ),
    );
    let out = idpctl(&["policy", "test", &bare, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows[1]["actual"], "error", "{rows:#}");
    assert!(
        rows[1]["detail"]
            .as_str()
            .unwrap()
            .contains("v1 Secret platform/regcred was not given"),
        "{rows:#}"
    );
}

#[test]
fn help_has_examples() {
    for sub in ["check", "mutate"] {
        let out = idpctl(&["policy", sub, "--help"]);
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("EXAMPLES"), "{sub}: {help}");
    }
}

const REGO: &str = "package main\n\ndeny contains msg if {\n  some c in input.spec.template.spec.containers\n  c.securityContext.privileged\n  msg := sprintf(\"container %q is privileged\", [c.name])\n}\n\nwarn contains \"no team label\" if {\n  not input.metadata.labels.team\n}\n";

const GATEKEEPER: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredlabels}
spec:
  crd: {spec: {names: {kind: K8sRequiredLabels}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels
        violation[{"msg": msg}] {
          missing := {l | l := input.parameters.labels[_]; not input.review.object.metadata.labels[l]}
          count(missing) > 0
          msg := sprintf("missing labels %v", [sort(missing)])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: need-owner}
spec:
  enforcementAction: warn
  match: {kinds: [{apiGroups: [apps], kinds: [Deployment]}]}
  parameters: {labels: [owner]}
"#;

const VAP: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-replicas}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]
  validations:
    - expression: "!has(object.spec.replicas) || object.spec.replicas <= int(params.data.max)"
      messageExpression: "'at most ' + params.data.max + ' replicas'"
      fieldPath: spec.replicas
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: max-replicas}
spec:
  policyName: max-replicas
  validationActions: [Deny]
  paramRef: {name: replica-limits, namespace: platform}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: replica-limits, namespace: platform}
data: {max: "3"}
"#;

#[test]
fn check_runs_rego_gatekeeper_and_vap_files_with_native_policies() {
    let dir = tempfile::tempdir().unwrap();
    let many = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: big\n  namespace: shop\nspec:\n  replicas: 9\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/big:1.0\n";
    let manifests = write(
        dir.path(),
        "k8s/app.yaml",
        &format!("{PRIVILEGED}---\n{many}"),
    );
    let rego = write(dir.path(), "policy/deny.rego", REGO);
    let gatekeeper = write(dir.path(), "policy/gatekeeper.yaml", GATEKEEPER);
    let vap = write(dir.path(), "policy/vap.yaml", VAP);

    let out = idpctl(&[
        "policy",
        "check",
        &manifests,
        "--pss",
        "baseline",
        "--policy",
        &rego,
        "--policy",
        &gatekeeper,
        "--policy",
        &vap,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    let list = rows.as_array().unwrap();
    assert_eq!(list.len(), 2);

    let cart = &list[0];
    assert_eq!(cart["name"], "cart");
    assert_eq!(cart["allowed"], false);
    let found: Vec<(String, String, String)> = cart["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["policy"].as_str().unwrap().to_owned(),
                v["rule"].as_str().unwrap().to_owned(),
                v["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let has = |policy: &str, rule: &str, action: &str| {
        found.contains(&(policy.to_owned(), rule.to_owned(), action.to_owned()))
    };
    assert!(has("deny", "main.deny", "deny"), "{found:?}");
    assert!(has("deny", "main.warn", "warn"), "{found:?}");
    assert!(
        has("gatekeeper", "K8sRequiredLabels/need-owner", "warn"),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(p, _, a)| p == "pod-security" && a == "deny"),
        "{found:?}"
    );
    let privileged = cart["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "main.deny")
        .unwrap();
    assert_eq!(privileged["message"], "container \"app\" is privileged");

    let big = &list[1];
    assert_eq!(big["name"], "big");
    assert_eq!(big["allowed"], false);
    let replicas = big["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["policy"] == "vap")
        .unwrap();
    assert_eq!(replicas["rule"], "max-replicas/validations[0]");
    assert_eq!(replicas["message"], "at most 3 replicas");
    assert_eq!(replicas["path"], "spec.replicas");
    assert_eq!(replicas["action"], "deny");
}

#[test]
fn broken_rego_and_cel_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = write(dir.path(), "app.yaml", PLAIN);
    let rego = write(
        dir.path(),
        "bad.rego",
        "package main\ndeny contains msg if {\n",
    );
    let out = idpctl(&["policy", "check", &manifests, "--policy", &rego]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.rego") && err.contains("not a valid Rego module"),
        "{err}"
    );

    let cel = write(
        dir.path(),
        "bad-vap.yaml",
        &VAP.replace("object.spec.replicas <=", "object.spec.replicas <= <="),
    );
    let out = idpctl(&["policy", "check", &manifests, "--policy", &cel]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.validations[0].expression is not valid CEL"),
        "{err}"
    );
}

#[test]
fn check_prints_policy_reports() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "k8s/bad.yaml",
        &format!("{NAMESPACE}---\n{PRIVILEGED}"),
    );
    write(dir.path(), "k8s/good.yaml", PLAIN);
    let root = dir.path().to_str().unwrap();
    let out = idpctl(&[
        "policy",
        "check",
        root,
        "--policy-report",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "denied objects still fail the command"
    );
    let list = json(&out);
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items[0]["kind"], "ClusterPolicyReport");
    let shop = &items[1];
    assert_eq!(shop["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    assert_eq!(shop["kind"], "PolicyReport");
    assert_eq!(shop["metadata"]["namespace"], "shop");
    let results = shop["results"].as_array().unwrap();
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r["result"] == "fail")
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"privileged"), "{results:#?}");
    assert!(failed.contains(&"hostNamespaces"), "{results:#?}");
    let passed: Vec<&str> = results
        .iter()
        .filter(|r| r["result"] == "pass")
        .map(|r| r["resources"][0]["name"].as_str().unwrap())
        .collect();
    assert_eq!(passed, ["web"], "the compliant Deployment passes");
    assert_eq!(shop["summary"]["pass"], 1);
    assert_eq!(shop["summary"]["fail"].as_u64(), Some(failed.len() as u64));

    // YAML by default, which kubectl applies as it is.
    let out = idpctl(&["policy", "check", root, "--policy-report"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind: List"), "{text}");
    assert!(
        text.contains("apiVersion: wgpolicyk8s.io/v1alpha2"),
        "{text}"
    );

    // One report per object: the privileged Pod and the Deployment apart, each with
    // the object as its scope; nothing applies to the Namespace, so it has none.
    let out = idpctl(&[
        "policy",
        "check",
        root,
        "--policy-report",
        "--report-layout",
        "resource",
        "--format",
        "json",
    ]);
    let list = json(&out);
    let scopes: Vec<(&str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(
                r["metadata"]["name"].as_str().unwrap().starts_with("idp-"),
                "{r}"
            );
            (
                r["scope"]["kind"].as_str().unwrap(),
                r["scope"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(scopes.len(), 2, "{list}");
    assert!(scopes.contains(&("Deployment", "web")), "{scopes:?}");
    let out = idpctl(&["policy", "check", root, "--report-layout", "nodes"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// A referential Gatekeeper template: an Ingress host served twice in the change (the
/// one idp-policy's own Rego tests use).
const UNIQUE_HOST: &str =
    include_str!("../../idp-policy/tests/fixtures/rego/unique-ingress-host.yaml");

#[test]
fn gatekeeper_templates_see_every_manifest_checked_as_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let ingress = |ns: &str, name: &str, host: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  rules: [{{host: {host}}}]\n"
        )
    };
    // Two files: the duplicate is found across them.
    let shop = write(
        dir.path(),
        "k8s/shop.yaml",
        &ingress("shop", "web", "shop.example.com"),
    );
    write(
        dir.path(),
        "k8s/more.yaml",
        &format!(
            "{}---\n{}",
            ingress("test", "copy", "shop.example.com"),
            ingress("blog", "web", "blog.example.com")
        ),
    );
    let policy = write(dir.path(), "policy/unique.yaml", UNIQUE_HOST);
    let k8s = dir.path().join("k8s").display().to_string();
    let out = idpctl(&[
        "policy", "check", &k8s, "--policy", &policy, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    let verdicts: Vec<(String, bool)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("copy".to_owned(), false),
            ("web".to_owned(), true),
            ("web".to_owned(), false),
        ],
        "{rows:#}"
    );
    // Checking one file alone, there is nothing to collide with.
    let out = idpctl(&["policy", "check", &shop, "--policy", &policy]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// A Gatekeeper Config: `kube-*` out of every process, Ingresses synced.
const GATEKEEPER_CONFIG: &str = "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config, namespace: gatekeeper-system}\nspec:\n  sync:\n    syncOnly: [{group: networking.k8s.io, version: v1, kind: Ingress}]\n  match:\n    - {excludedNamespaces: ['kube-*'], processes: ['*']}\n";

#[test]
fn a_gatekeeper_config_in_its_own_file_applies_to_the_templates() {
    let dir = tempfile::tempdir().unwrap();
    let ingress = |ns: &str, name: &str, host: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  rules: [{{host: {host}}}]\n"
        )
    };
    write(
        dir.path(),
        "k8s/ingresses.yaml",
        &format!(
            "{}---\n{}",
            ingress("shop", "web", "shop.example.com"),
            ingress("kube-system", "dashboard", "shop.example.com")
        ),
    );
    let policy = write(dir.path(), "policy/unique.yaml", UNIQUE_HOST);
    let config = write(dir.path(), "policy/config.yaml", GATEKEEPER_CONFIG);
    let k8s = dir.path().join("k8s").display().to_string();
    let denied = |extra: &[&str]| {
        let mut args = vec![
            "policy", "check", &k8s, "--policy", &policy, "--format", "json",
        ];
        args.extend_from_slice(extra);
        let out = idpctl(&args);
        let rows = json(&out);
        let mut names: Vec<String> = rows
            .as_array()
            .unwrap_or_else(|| panic!("{out:?}"))
            .iter()
            .filter(|r| r["allowed"] == false)
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        denied(&[]),
        ["dashboard", "web"],
        "each serves the other's host"
    );
    // kube-system is out of the webhook (not checked) and of the sync (not seen).
    assert!(denied(&["--policy", &config]).is_empty());

    // Gatekeeper reads one Config; one with nothing to configure is a mistake.
    let again = write(dir.path(), "policy/again.yaml", GATEKEEPER_CONFIG);
    let out = idpctl(&[
        "policy", "check", &k8s, "--policy", &policy, "--policy", &config, "--policy", &again,
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("again.yaml") && err.contains("second Gatekeeper Config"),
        "{err}"
    );
    let out = idpctl(&["policy", "check", &k8s, "--policy", &config]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Gatekeeper templates"), "{err}");
}

/// A Gatekeeper template whose code is CEL (`K8sNativeValidation`), with Rego beside it
/// that must not run (the one idp-policy's own tests use).
const CEL_TEMPLATE: &str =
    include_str!("../../idp-policy/tests/fixtures/gatekeeper-cel/privileged.yaml");

#[test]
fn gatekeeper_templates_with_cel_code_run_their_cel() {
    let dir = tempfile::tempdir().unwrap();
    let pod = write(
        dir.path(),
        "k8s/pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: debug, namespace: shop}\nspec:\n  containers:\n    - {name: tools, image: 'ghcr.io/acme/debug:1.0', securityContext: {privileged: true}}\n",
    );
    let policy = write(dir.path(), "policy/privileged.yaml", CEL_TEMPLATE);
    let out = idpctl(&[
        "policy", "check", &pod, "--policy", &policy, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    let found: Vec<(String, String, String)> = rows[0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["rule"].as_str().unwrap().starts_with("K8sNoPrivileged/"))
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_owned(),
                v["message"].as_str().unwrap().to_owned(),
                v["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // The constraint exempting the debug image finds nothing; the other denies.
    assert_eq!(
        found,
        [(
            "K8sNoPrivileged/everywhere".to_owned(),
            "privileged containers: tools".to_owned(),
            "deny".to_owned()
        )],
        "{rows:#}"
    );
}

/// Kyverno ClusterPolicies (idp-policy's own fixture): auto-gen for controllers and the
/// per-namespace action override.
const KYVERNO: &str = include_str!("../../idp-policy/tests/fixtures/kyverno/best-practices.yaml");

#[test]
fn kyverno_cluster_policies_are_recognised_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let app = write(
        dir.path(),
        "k8s/app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: dev}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - {name: app, image: 'nginx:latest', resources: {limits: {cpu: 500m, memory: 256Mi}}}\n",
    );
    let policy = write(dir.path(), "policy/kyverno.yaml", KYVERNO);
    // In dev the latest tag is audited: reported, not denied.
    let out = idpctl(&[
        "policy", "check", &app, "--policy", &policy, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert_eq!(
        rules(&rows),
        [("kyverno".to_owned(), "images/autogen-no-latest".to_owned())],
        "{rows:#}"
    );
    assert_eq!(rows[0]["violations"][0]["action"], "audit", "{rows:#}");
    assert_eq!(
        rows[0]["violations"][0]["path"], "spec.template.spec.containers[0].image",
        "{rows:#}"
    );

    // A PolicyException in a file of its own waives the rule for that Deployment.
    let exception = write(
        dir.path(),
        "policy/exceptions.yaml",
        "apiVersion: kyverno.io/v2\nkind: PolicyException\nmetadata: {name: web-latest, namespace: kyverno}\nspec:\n  exceptions: [{policyName: images, ruleNames: [autogen-no-latest]}]\n  match: {any: [{resources: {kinds: [Deployment], names: [web]}}]}\n",
    );
    let out = idpctl(&[
        "policy", "check", &app, "--policy", &policy, "--policy", &exception, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert!(rules(&rows).is_empty(), "{rows:#}");

    // A bad rule is a usage error naming the file and the rule.
    let bad = write(
        dir.path(),
        "policy/bad.yaml",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      context: [{name: cm, apiCall: {urlPath: /api/v1/namespaces}}]\n      validate: {pattern: {spec: {}}}\n",
    );
    let out = idpctl(&["policy", "check", &app, "--policy", &bad]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("spec.rules[0] (r).context"),
        "{err}"
    );
}

#[test]
fn policy_test_runs_kyverno_cli_suites() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "suite/policy.yaml", KYVERNO);
    write(
        dir.path(),
        "suite/resources.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bare, namespace: shop}\nspec:\n  containers: [{name: app, image: 'app:1.0'}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: limited, namespace: shop}\nspec:\n  containers: [{name: app, image: 'app:1.0', resources: {limits: {cpu: 1, memory: 1Gi}}}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      containers: [{name: app, image: 'app:1.0'}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: system, namespace: kube-system}\nspec:\n  containers: [{name: app, image: 'app:1.0'}]\n",
    );
    let suite = |results: &str| {
        format!(
            "name: limits\npolicies: [policy.yaml]\nresources: [resources.yaml]\nresults:\n{results}"
        )
    };
    let expected = "  - {policy: require-limits, rule: cpu-and-memory, resource: bare, kind: Pod, result: fail}\n  - {policy: require-limits, rule: cpu-and-memory, resource: limited, kind: Pod, result: pass}\n  - {policy: require-limits, rule: cpu-and-memory, resource: web, kind: Deployment, result: fail}\n  - {policy: require-limits, rule: cpu-and-memory, resource: system, kind: Pod, result: skip}\n";
    let file = write(dir.path(), "suite/kyverno-test.yaml", &suite(expected));
    let root = dir.path().display().to_string();
    let out = idpctl(&["policy", "test", &root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 4, "{rows:#}");
    assert!(
        rows.as_array().unwrap().iter().all(|r| r["ok"] == true),
        "{rows:#}"
    );

    // A wrong expectation fails the run and says what was found.
    std::fs::write(
        &file,
        suite("  - {policy: require-limits, rule: cpu-and-memory, resource: limited, kind: Pod, result: fail}\n"),
    )
    .unwrap();
    let out = idpctl(&["policy", "test", &file]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("expected fail, got pass"), "{text}");

    // A malformed values file makes the suite an error naming the file and the field.
    write(
        dir.path(),
        "suite/values.yaml",
        "policies:\n  - name: require-limits\n    rules:\n      - name: cpu-and-memory\n        values: [not, a, mapping]\n",
    );
    std::fs::write(
        &file,
        format!("variables: values.yaml\n{}", suite(expected)),
    )
    .unwrap();
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");
    let detail = rows[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("values.yaml: policies[0].rules[0].values must be a mapping"),
        "{rows:#}"
    );

    // User info is still not set: an error, not a pass.
    std::fs::write(&file, format!("userinfo: user.yaml\n{}", suite(expected))).unwrap();
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        json(&out)[0]["detail"]
            .as_str()
            .unwrap()
            .contains("`userinfo` is not supported"),
        "{out:?}"
    );
}

/// A policy whose `apiCall` context only a values file can give, and whose
/// precondition wants the operation the values set.
const REPLICA_QUOTA: &str = r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: replica-quota}
spec:
  validationFailureAction: Enforce
  rules:
    - name: max-replicas
      match: {any: [{resources: {kinds: [Deployment]}}]}
      context:
        - name: quota
          apiCall:
            urlPath: "/api/v1/namespaces/{{ request.namespace }}/configmaps/quota"
            jmesPath: data
      preconditions:
        all:
          - {key: "{{ request.operation }}", operator: Equals, value: UPDATE}
      validate:
        message: "at most {{ quota.maxReplicas }} replicas"
        deny:
          conditions:
            any:
              - {key: "{{ request.object.spec.replicas }}", operator: GreaterThan, value: "{{ quota.maxReplicas }}"}
"#;

#[test]
fn policy_test_applies_values_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "suite/policy.yaml", REPLICA_QUOTA);
    write(
        dir.path(),
        "suite/resources.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: small, namespace: shop}\nspec: {replicas: 2}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: big, namespace: shop}\nspec: {replicas: 9}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: new, namespace: shop}\nspec: {replicas: 9}\n",
    );
    let values = "apiVersion: cli.kyverno.io/v1alpha1\nkind: Values\nglobalValues:\n  request.operation: UPDATE\npolicies:\n  - name: replica-quota\n    rules:\n      - name: max-replicas\n        values:\n          quota.maxReplicas: 3\n    resources:\n      - name: new\n        values:\n          request.operation: CREATE\n";
    write(dir.path(), "suite/values/values.yaml", values);
    let results = "results:\n  - {policy: replica-quota, rule: max-replicas, resource: small, kind: Deployment, result: pass}\n  - {policy: replica-quota, rule: max-replicas, resource: big, kind: Deployment, result: fail}\n  - {policy: replica-quota, rule: max-replicas, resource: new, kind: Deployment, result: skip}\n";
    let file = write(
        dir.path(),
        "suite/kyverno-test.yaml",
        &format!(
            "name: quota\npolicies: [policy.yaml]\nresources: [resources.yaml]\nvariables: values/values.yaml\n{results}"
        ),
    );
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    let got: Vec<(String, String, bool)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap().to_owned(),
                r["actual"].as_str().unwrap().to_owned(),
                r["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("small".to_owned(), "pass".to_owned(), true),
            ("big".to_owned(), "fail".to_owned(), true),
            ("new".to_owned(), "skip".to_owned(), true),
        ],
        "{rows:#}"
    );
    assert!(
        rows[1]["detail"]
            .as_str()
            .unwrap()
            .contains("at most 3 replicas"),
        "{rows:#}"
    );

    // The same values written in the test file; a wrong expectation fails the run.
    let inline: String = values
        .lines()
        .filter(|l| !l.starts_with("apiVersion") && !l.starts_with("kind"))
        .fold(String::new(), |mut text, l| {
            text.push_str("  ");
            text.push_str(l);
            text.push('\n');
            text
        });
    std::fs::write(
        &file,
        format!(
            "name: quota\npolicies: [policy.yaml]\nresources: [resources.yaml]\nvalues:\n{inline}results:\n  - {{policy: replica-quota, rule: max-replicas, resource: small, kind: Deployment, result: pass}}\n  - {{policy: replica-quota, rule: max-replicas, resource: big, kind: Deployment, result: pass}}\n"
        ),
    )
    .unwrap();
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows[0]["ok"], true, "{rows:#}");
    assert_eq!(rows[1]["ok"], false, "{rows:#}");
    assert_eq!(rows[1]["actual"], "fail", "{rows:#}");

    // Without values, the policy does not load: every row is an error naming the entry.
    std::fs::write(
        &file,
        format!("name: quota\npolicies: [policy.yaml]\nresources: [resources.yaml]\n{results}"),
    )
    .unwrap();
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let detail = json(&out)[0]["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("(quota).apiCall") && detail.contains("give its value in a values file"),
        "{detail}"
    );
}

#[test]
fn policy_test_runs_gator_verify_suites() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "lib/template.yaml",
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: k8srequiredlabels}\nspec:\n  crd: {spec: {names: {kind: K8sRequiredLabels}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package k8srequiredlabels\n        violation[{\"msg\": msg}] {\n          l := input.parameters.labels[_]\n          not input.review.object.metadata.labels[l]\n          msg := sprintf(\"missing label %v\", [l])\n        }\n",
    );
    write(
        dir.path(),
        "lib/constraint.yaml",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\nmetadata: {name: team-and-owner}\nspec:\n  parameters: {labels: [team, owner]}\n",
    );
    write(
        dir.path(),
        "lib/samples/none.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: bare}\n",
    );
    write(
        dir.path(),
        "lib/samples/both.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok, labels: {team: a, owner: b}}\n",
    );
    // gator takes AdmissionReviews as objects: the request's object is checked.
    write(
        dir.path(),
        "lib/samples/review.yaml",
        "kind: AdmissionReview\napiVersion: admission.k8s.io/v1\nrequest:\n  operation: UPDATE\n  userInfo: {username: 'system:foo'}\n  object: {apiVersion: v1, kind: Namespace, metadata: {labels: {team: a}}}\n",
    );
    let suite = |assertions: &str| {
        format!(
            "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n  - name: required-labels\n    template: template.yaml\n    constraint: constraint.yaml\n    cases:\n      - name: missing-both\n        object: samples/none.yaml\n        assertions:\n{assertions}      - name: has-both\n        object: samples/both.yaml\n        assertions:\n          - violations: no\n      - name: as-a-review\n        object: samples/review.yaml\n        assertions:\n          - violations: 1\n            message: owner\n"
        )
    };
    let ok = "          - violations: 2\n          - violations: 1\n            message: team\n          - violations: no\n            message: colour\n";
    let file = write(dir.path(), "lib/suite.yaml", &suite(ok));
    let root = dir.path().display().to_string();
    let out = idpctl(&["policy", "test", &root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 5, "{rows:#}");
    assert!(
        rows.as_array().unwrap().iter().all(|r| r["ok"] == true),
        "{rows:#}"
    );
    assert_eq!(
        rows[0]["policy"], "K8sRequiredLabels/team-and-owner",
        "{rows:#}"
    );

    // A wrong count fails, and says what the constraint found.
    std::fs::write(&file, suite("          - violations: 3\n")).unwrap();
    let out = idpctl(&["policy", "test", &file]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("expected violations: 3, got 2 matching violation(s)"),
        "{text}"
    );
    assert!(text.contains("missing label team"), "{text}");
}

/// Gatekeeper expansion: a Pod constraint checks the Pods a Deployment would create,
/// with `policy check --policy` and in a gator suite's `expansion` file.
#[test]
fn gatekeeper_expansion_checks_workloads_by_their_pods() {
    const TEMPLATE: &str = "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: k8snoprivileged}\nspec:\n  crd: {spec: {names: {kind: K8sNoPrivileged}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package k8snoprivileged\n        violation[{\"msg\": msg}] {\n          c := input.review.object.spec.containers[_]\n          c.securityContext.privileged\n          msg := sprintf(\"privileged container %v\", [c.name])\n        }\n";
    const CONSTRAINT: &str = "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sNoPrivileged\nmetadata: {name: no-privileged}\nspec:\n  match: {kinds: [{apiGroups: [''], kinds: [Pod]}]}\n";
    const EXPANSION: &str = "apiVersion: expansion.gatekeeper.sh/v1beta1\nkind: ExpansionTemplate\nmetadata: {name: expand-deployments}\nspec:\n  applyTo: [{groups: [apps], kinds: [Deployment], versions: [v1]}]\n  templateSource: spec.template\n  generatedGVK: {group: '', version: v1, kind: Pod}\n---\napiVersion: mutations.gatekeeper.sh/v1\nkind: Assign\nmetadata: {name: debug-sidecar}\nspec:\n  applyTo: [{groups: [''], kinds: [Pod], versions: [v1]}]\n  match: {source: Generated, labelSelector: {matchLabels: {debug: 'on'}}}\n  location: 'spec.containers[name: debugger]'\n  parameters: {assign: {value: {name: debugger, image: 'debug:1', securityContext: {privileged: true}}}}\n";
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "gatekeeper.yaml",
        &format!("{TEMPLATE}---\n{CONSTRAINT}---\n{EXPANSION}"),
    );
    let deployment = |labels: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: shop}}\nspec:\n  template:\n    metadata: {{labels: {labels}}}\n    spec:\n      containers: [{{name: app, image: 'app:1'}}]\n"
        )
    };
    let plain = write(dir.path(), "k8s/plain.yaml", &deployment("{app: web}"));
    let out = idpctl(&[
        "policy", "check", &plain, "--policy", &policy, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The sidecar the mutator puts into the mock Pod is privileged.
    let debug = write(
        dir.path(),
        "k8s/debug.yaml",
        &deployment("{app: web, debug: 'on'}"),
    );
    let out = idpctl(&[
        "policy", "check", &debug, "--policy", &policy, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(
        rows[0]["violations"][0]["message"],
        "[Implied by expand-deployments] privileged container debugger",
        "{rows:#}"
    );

    // The same in a gator suite: the test's `expansion` file.
    write(dir.path(), "suite/template.yaml", TEMPLATE);
    write(dir.path(), "suite/constraint.yaml", CONSTRAINT);
    write(dir.path(), "suite/expansion.yaml", EXPANSION);
    write(dir.path(), "suite/debug.yaml", &deployment("{debug: 'on'}"));
    write(dir.path(), "suite/plain.yaml", &deployment("{app: web}"));
    let suite = write(
        dir.path(),
        "suite/suite.yaml",
        "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n  - name: expanded\n    template: template.yaml\n    constraint: constraint.yaml\n    expansion: expansion.yaml\n    cases:\n      - {name: debug, object: debug.yaml, assertions: [{violations: 1, message: 'Implied by expand-deployments'}]}\n      - {name: plain, object: plain.yaml, assertions: [{violations: no}]}\n",
    );
    let out = idpctl(&["policy", "test", &suite, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows:#}");
}

/// `policy mutate` prints what Kyverno generate rules create after each trigger, and a
/// failing generate rule is reported with exit code 1.
#[test]
fn mutate_prints_what_kyverno_generate_rules_create() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "generate.yaml",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: namespace-defaults}\nspec:\n  rules:\n    - name: default-deny\n      match: {any: [{resources: {kinds: [Namespace]}}]}\n      generate:\n        apiVersion: networking.k8s.io/v1\n        kind: NetworkPolicy\n        name: default-deny\n        namespace: '{{request.object.metadata.name}}'\n        data: {spec: {podSelector: {}, policyTypes: [Ingress, Egress]}}\n",
    );
    let manifests = write(
        dir.path(),
        "k8s/ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n",
    );
    let out = idpctl(&[
        "policy", "mutate", &manifests, "--policy", &policy, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let objects = json(&out);
    let kinds: Vec<&str> = objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["Namespace", "NetworkPolicy", "ConfigMap"],
        "{objects:#}"
    );
    assert_eq!(objects[1]["metadata"]["namespace"], "shop", "{objects:#}");
    assert_eq!(
        objects[1]["metadata"]["labels"]["generate.kyverno.io/policy-name"], "namespace-defaults",
        "{objects:#}"
    );

    // A clone source that was not given: reported, exit 1, the rest still printed.
    let clone = write(
        dir.path(),
        "clone.yaml",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: pull-secret}\nspec:\n  rules:\n    - name: copy-regcred\n      match: {any: [{resources: {kinds: [Namespace]}}]}\n      generate:\n        apiVersion: v1\n        kind: Secret\n        name: regcred\n        namespace: '{{request.object.metadata.name}}'\n        clone: {namespace: platform, name: regcred}\n",
    );
    let out = idpctl(&[
        "policy", "mutate", &manifests, "--policy", &clone, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Namespace shop: generate rule pull-secret/copy-regcred")
            && stderr.contains("platform/regcred"),
        "{stderr}"
    );
    assert_eq!(json(&out).as_array().unwrap().len(), 2);
}

/// Kyverno's CEL `ValidatingPolicy` files are recognised by `policy check --policy`, and
/// a policy for Pods checks the Pod template of a Deployment.
#[test]
fn kyverno_validating_policies_are_recognised_and_autogenerated() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "vpol.yaml",
        "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: no-host-network}\nspec:\n  validationActions: [Deny]\n  matchConstraints:\n    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]\n  validations:\n    - expression: '!(has(object.spec.hostNetwork) && object.spec.hostNetwork)'\n      message: host networking is not allowed\n",
    );
    let deploy = write(
        dir.path(),
        "k8s/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      hostNetwork: true\n      containers: [{name: app, image: 'app:1'}]\n",
    );
    let out = idpctl(&[
        "policy", "check", &deploy, "--policy", &policy, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(
        rows[0]["violations"][0]["rule"], "autogen-no-host-network/validations[0]",
        "{rows:#}"
    );
}

/// Kyverno CLI suites with ValidatingPolicies: rows with `isValidatingPolicy: true`.
#[test]
fn policy_test_runs_validating_policy_rows() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "suite/policy.yaml",
        "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: no-latest}\nspec:\n  validationActions: [Audit]\n  matchConstraints:\n    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]\n  validations:\n    - expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"\n      message: no latest tags\n",
    );
    write(
        dir.path(),
        "suite/resources.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: pinned, namespace: shop}\nspec: {containers: [{name: a, image: 'app:1.2'}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: latest, namespace: shop}\nspec: {containers: [{name: a, image: 'app:latest'}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec: {containers: [{name: a, image: 'nginx:latest'}]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n",
    );
    let suite = |results: &str| {
        format!(
            "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {{name: no-latest}}\npolicies: [policy.yaml]\nresources: [resources.yaml]\nresults:\n{results}"
        )
    };
    let rows = "  - {isValidatingPolicy: true, policy: no-latest, kind: Pod, resources: [shop/pinned], result: pass}\n  - {isValidatingPolicy: true, policy: no-latest, kind: Pod, resources: [latest], result: fail}\n  - {isValidatingPolicy: true, policy: no-latest, kind: Deployment, resources: [shop/web], result: fail}\n  - {isValidatingPolicy: true, policy: no-latest, kind: ConfigMap, resources: [settings], result: skip}\n";
    let file = write(dir.path(), "suite/kyverno-test.yaml", &suite(rows));
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let found = json(&out);
    assert_eq!(found.as_array().unwrap().len(), 4, "{found:#}");
    assert!(
        found.as_array().unwrap().iter().all(|r| r["ok"] == true),
        "{found:#}"
    );

    // A wrong expectation fails and says what the policy found.
    std::fs::write(
        &file,
        suite("  - {isValidatingPolicy: true, policy: no-latest, kind: Pod, resources: [latest], result: pass}\n"),
    )
    .unwrap();
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let found = json(&out);
    assert_eq!(found[0]["actual"], "fail", "{found:#}");
    assert_eq!(found[0]["detail"], "no latest tags", "{found:#}");
}

/// Kyverno CLI suites with a ValidatingPolicy and its PolicyException (policies.kyverno.io),
/// listed under `exceptions`: the exempted resource's row expects `skip`.
#[test]
fn policy_test_skips_resources_a_validating_policy_exception_exempts() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "suite/policy.yaml",
        "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: no-latest}\nspec:\n  validationActions: [Deny]\n  matchConstraints:\n    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]\n  validations:\n    - expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest'))\"\n      message: no latest tags\n",
    );
    write(
        dir.path(),
        "suite/exception.yaml",
        "apiVersion: policies.kyverno.io/v1\nkind: PolicyException\nmetadata: {name: sandbox, namespace: kyverno}\nspec:\n  policyRefs: [{name: no-latest, kind: ValidatingPolicy}]\n  matchConditions:\n    - {name: sandbox, expression: \"request.namespace == 'sandbox'\"}\n",
    );
    write(
        dir.path(),
        "suite/resources.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: latest, namespace: shop}\nspec: {containers: [{name: a, image: 'app:latest'}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: latest, namespace: sandbox}\nspec: {containers: [{name: a, image: 'app:latest'}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: sandbox}\nspec:\n  template:\n    spec: {containers: [{name: a, image: 'nginx:latest'}]}\n",
    );
    let suite = |listed: &str, results: &str| {
        format!(
            "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {{name: no-latest}}\n{listed}resources: [resources.yaml]\nresults:\n{results}"
        )
    };
    let rows = "  - {isValidatingPolicy: true, policy: no-latest, kind: Pod, resources: [shop/latest], result: fail}\n  - {isValidatingPolicy: true, policy: no-latest, kind: Pod, resources: [sandbox/latest], result: skip}\n  - {isValidatingPolicy: true, policy: no-latest, kind: Deployment, resources: [sandbox/web], result: skip}\n";
    // Under `exceptions`, or next to the policy under `policies`, before or after it.
    for listed in [
        "policies: [policy.yaml]\nexceptions: [exception.yaml]\n",
        "policies: [exception.yaml, policy.yaml]\n",
    ] {
        let file = write(dir.path(), "suite/kyverno-test.yaml", &suite(listed, rows));
        let out = idpctl(&["policy", "test", &file, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let found = json(&out);
        assert_eq!(found.as_array().unwrap().len(), 3, "{found:#}");
        assert!(
            found.as_array().unwrap().iter().all(|r| r["ok"] == true),
            "{found:#}"
        );
        assert_eq!(
            found[1]["detail"], "exempted by PolicyException kyverno/sandbox",
            "{found:#}"
        );
    }

    // Without the exception, the sandboxed Pod fails where the row expects skip.
    let file = write(
        dir.path(),
        "suite/kyverno-test.yaml",
        &suite(
            "policies: [policy.yaml]\n",
            "  - {isValidatingPolicy: true, policy: no-latest, kind: Pod, resources: [sandbox/latest], result: skip}\n",
        ),
    );
    let out = idpctl(&["policy", "test", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(json(&out)[0]["actual"], "fail");
}

/// `policy check --policy` reads a file of ValidatingPolicies with their
/// PolicyExceptions (policies.kyverno.io); a file of exceptions alone is refused.
#[test]
fn check_reads_validating_policy_exceptions_of_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: no-host-network}\nspec:\n  validationActions: [Deny]\n  matchConstraints:\n    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]\n  validations:\n    - expression: '!(has(object.spec.hostNetwork) && object.spec.hostNetwork)'\n      message: host networking is not allowed\n";
    let exception = "apiVersion: policies.kyverno.io/v1\nkind: PolicyException\nmetadata: {name: agents, namespace: kyverno}\nspec:\n  policyRefs: [{name: no-host-network, kind: ValidatingPolicy}]\n  matchConditions:\n    - {name: agents, expression: \"request.namespace == 'node-agents'\"}\n";
    let both = write(
        dir.path(),
        "vpol.yaml",
        &format!("{exception}---\n{policy}"),
    );
    let deploy = write(
        dir.path(),
        "k8s/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: agent, namespace: node-agents}\nspec:\n  template:\n    spec:\n      hostNetwork: true\n      containers: [{name: app, image: 'agent:1'}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      hostNetwork: true\n      containers: [{name: app, image: 'app:1'}]\n",
    );
    let out = idpctl(&[
        "policy", "check", &deploy, "--policy", &both, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows[0]["name"], "agent", "{rows:#}");
    assert_eq!(rows[0]["allowed"], true, "{rows:#}");
    assert_eq!(rows[1]["name"], "web", "{rows:#}");
    assert_eq!(
        rows[1]["violations"][0]["rule"], "autogen-no-host-network/validations[0]",
        "{rows:#}"
    );

    let alone = write(dir.path(), "polex.yaml", exception);
    let out = idpctl(&["policy", "check", &deploy, "--policy", &alone]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("polex.yaml") && stderr.contains("no ValidatingPolicy"),
        "{stderr}"
    );
}
