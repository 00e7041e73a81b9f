#![allow(clippy::needless_pass_by_value)]

use super::*;
use idp_core::ErrorKind;
use proptest::prelude::*;
use serde_json::json;

const POD_APPLY: &str = "applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]";

fn assign(name: &str, body: &str) -> String {
    format!(
        "apiVersion: mutations.gatekeeper.sh/v1\nkind: Assign\nmetadata: {{name: {name}}}\nspec:\n  {POD_APPLY}\n{body}"
    )
}

fn set(yaml: &str) -> GatekeeperMutators {
    GatekeeperMutators::from_yaml("gk", yaml, Some(Path::new("m.yaml"))).unwrap()
}

fn load_err(yaml: &str) -> String {
    GatekeeperMutators::from_yaml("gk", yaml, Some(Path::new("m.yaml")))
        .unwrap_err()
        .to_string()
}

fn pod(spec: Value) -> Object {
    Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}))
    .unwrap()
}

fn run(m: &GatekeeperMutators, o: &Object) -> (bool, Value) {
    let mut o = o.clone();
    let changed = m.mutate(&mut o, &PolicyContext::new()).unwrap();
    (changed, o.to_value())
}

#[test]
fn assign_sets_every_globbed_element_and_creates_a_named_one() {
    let m = set(&assign(
        "pull",
        "  location: \"spec.containers[name: *].imagePullPolicy\"\n  parameters: {assign: {value: Always}}\n",
    ));
    let p = pod(json!({"containers": [{"name": "a"}, {"name": "b", "imagePullPolicy": "Never"}]}));
    let (changed, out) = run(&m, &p);
    assert!(changed);
    assert_eq!(out["spec"]["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(out["spec"]["containers"][1]["imagePullPolicy"], "Always");
    // A glob creates nothing.
    let (changed, out) = run(&m, &pod(json!({})));
    assert!(!changed);
    assert_eq!(out["spec"], json!({}));

    let named = set(&assign(
        "sidecar-pull",
        "  location: \"spec.containers[name: proxy].imagePullPolicy\"\n  parameters: {assign: {value: IfNotPresent}}\n",
    ));
    let (_, out) = run(&named, &pod(json!({"containers": [{"name": "a"}]})));
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a"}, {"name": "proxy", "imagePullPolicy": "IfNotPresent"}])
    );
    // Missing parents are created.
    let (_, out) = run(&named, &pod(json!({})));
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "proxy", "imagePullPolicy": "IfNotPresent"}])
    );
}

#[test]
fn assign_a_whole_list_element() {
    let m = set(&assign(
        "sidecar",
        "  location: \"spec.containers[name: net]\"\n  parameters:\n    assign:\n      value: {name: net, image: net:1}\n",
    ));
    let (_, out) = run(&m, &pod(json!({"containers": [{"name": "app"}]})));
    assert_eq!(
        out["spec"]["containers"][1],
        json!({"name": "net", "image": "net:1"})
    );
    let (changed, out) = run(
        &m,
        &pod(json!({"containers": [{"name": "net", "image": "old"}]})),
    );
    assert!(changed);
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "net", "image": "net:1"}])
    );
}

#[test]
fn path_tests_gate_the_change() {
    let m = set(&assign(
        "no-escalation",
        "  location: \"spec.containers[name: *].securityContext.allowPrivilegeEscalation\"\n  parameters:\n    assign: {value: false}\n    pathTests:\n    - {subPath: \"spec.containers[name: *].securityContext.allowPrivilegeEscalation\", condition: MustNotExist}\n",
    ));
    let p = pod(json!({"containers": [
        {"name": "a"},
        {"name": "b", "securityContext": {"allowPrivilegeEscalation": true}}]}));
    let (_, out) = run(&m, &p);
    assert_eq!(
        out["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        out["spec"]["containers"][1]["securityContext"]["allowPrivilegeEscalation"],
        true
    );

    let must_exist = set(&assign(
        "only-if-foo",
        "  location: \"spec.containers[name: foo].securityContext.privileged\"\n  parameters:\n    assign: {value: false}\n    pathTests:\n    - {subPath: \"spec.containers[name: foo]\", condition: MustExist}\n",
    ));
    let (changed, _) = run(&must_exist, &pod(json!({"containers": [{"name": "bar"}]})));
    assert!(!changed, "no empty foo container is created");
    let (changed, out) = run(&must_exist, &pod(json!({"containers": [{"name": "foo"}]})));
    assert!(changed);
    assert_eq!(
        out["spec"]["containers"][0]["securityContext"]["privileged"],
        false
    );
}

#[test]
fn assign_if_and_from_metadata() {
    let m = set(&assign(
        "only-from-latest",
        "  location: spec.dnsPolicy\n  parameters:\n    assign: {value: None}\n    assignIf: {in: [Default, ClusterFirst]}\n",
    ));
    assert!(run(&m, &pod(json!({"dnsPolicy": "Default"}))).0);
    assert!(!run(&m, &pod(json!({"dnsPolicy": "ClusterFirstWithHostNet"}))).0);
    assert!(!run(&m, &pod(json!({}))).0, "an absent value is in no list");
    let not_in = set(&assign(
        "not-none",
        "  location: spec.dnsPolicy\n  parameters:\n    assign: {value: ClusterFirst}\n    assignIf: {notIn: [None]}\n",
    ));
    assert!(run(&not_in, &pod(json!({}))).0);
    assert!(!run(&not_in, &pod(json!({"dnsPolicy": "None"}))).0);

    let from = set(&assign(
        "ns-env",
        "  location: \"spec.containers[name: *].env[name: NAMESPACE].value\"\n  parameters: {assign: {fromMetadata: {field: namespace}}}\n",
    ));
    let (_, out) = run(&from, &pod(json!({"containers": [{"name": "a"}]})));
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "NAMESPACE", "value": "shop"}])
    );
}

#[test]
fn assign_metadata_only_adds() {
    let m = set(
        "apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {name: team}\nspec:\n  location: \"metadata.labels.\\\"acme.dev/team\\\"\"\n  parameters: {assign: {value: platform}}\n---\napiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {name: name-label}\nspec:\n  location: metadata.annotations.origin\n  parameters: {assign: {fromMetadata: {field: name}}}\n",
    );
    let (_, out) = run(&m, &pod(json!({})));
    assert_eq!(out["metadata"]["labels"]["acme.dev/team"], "platform");
    assert_eq!(out["metadata"]["annotations"]["origin"], "web");
    let mut kept = pod(json!({}));
    kept.as_map_mut()["metadata"]["labels"] = json!({"acme.dev/team": "payments"});
    let (_, out) = run(&m, &kept);
    assert_eq!(out["metadata"]["labels"]["acme.dev/team"], "payments");
}

#[test]
fn modify_set_merges_and_prunes() {
    let merge = "apiVersion: mutations.gatekeeper.sh/v1\nkind: ModifySet\nmetadata: {name: args}\nspec:\n  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]\n  location: \"spec.containers[name: *].args\"\n  parameters:\n    values: {fromList: [--log=json, --v=2]}\n";
    let m = set(merge);
    let (_, out) = run(
        &m,
        &pod(json!({"containers": [{"name": "a", "args": ["--v=2"]}, {"name": "b"}]})),
    );
    assert_eq!(
        out["spec"]["containers"][0]["args"],
        json!(["--v=2", "--log=json"])
    );
    assert_eq!(
        out["spec"]["containers"][1]["args"],
        json!(["--log=json", "--v=2"])
    );
    let prune = set(&merge.replace("values:", "operation: prune\n    values:"));
    let (_, out) = run(
        &prune,
        &pod(json!({"containers": [{"name": "a", "args": ["x", "--v=2", "y"]}, {"name": "b"}]})),
    );
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["x", "y"]));
    assert!(out["spec"]["containers"][1].get("args").is_none());
    // Not a list: a denial naming the mutator.
    let mut bad = pod(json!({"containers": [{"name": "a", "args": "--v=2"}]}));
    let err = m.mutate(&mut bad, &PolicyContext::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert_eq!(err.violations()[0].rule, "ModifySet/args");
    assert!(err.to_string().contains("is a string, not a list"), "{err}");
    assert_eq!(
        bad.pointer("/spec/containers/0/args"),
        Some(&json!("--v=2"))
    );
}

#[test]
fn assign_image_moves_images() {
    let m = set(
        "apiVersion: mutations.gatekeeper.sh/v1alpha1\nkind: AssignImage\nmetadata: {name: mirror}\nspec:\n  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]\n  location: \"spec.containers[name: *].image\"\n  parameters: {assignDomain: mirror.acme.io}\n",
    );
    let (_, out) = run(
        &m,
        &pod(json!({"containers": [
        {"name": "a", "image": "nginx:1.25"},
        {"name": "b", "image": "ghcr.io/acme/api@sha256:abcd"}]})),
    );
    assert_eq!(
        out["spec"]["containers"][0]["image"],
        "mirror.acme.io/nginx:1.25"
    );
    assert_eq!(
        out["spec"]["containers"][1]["image"],
        "mirror.acme.io/acme/api@sha256:abcd"
    );
    let mut bad = pod(json!({"containers": [{"name": "a", "image": 3}]}));
    let err = m.mutate(&mut bad, &PolicyContext::new()).unwrap_err();
    assert!(err.to_string().contains("not an image string"), "{err}");
}

#[test]
fn apply_to_and_match_filter() {
    let m = set(&assign(
        "dns",
        "  match: {namespaces: [shop], labelSelector: {matchLabels: {app: web}}}\n  location: spec.dnsPolicy\n  parameters: {assign: {value: None}}\n",
    ));
    let mut labelled = pod(json!({}));
    labelled.as_map_mut()["metadata"]["labels"] = json!({"app": "web"});
    assert!(run(&m, &labelled).0);
    assert!(!run(&m, &pod(json!({}))).0, "label selector");
    let deploy = Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}, "spec": {}}))
    .unwrap();
    assert!(!run(&m, &deploy).0, "applyTo names Pods only");
    let ops = set(&assign(
        "create-only",
        "  location: spec.dnsPolicy\n  parameters: {assign: {value: None}}\n",
    )
    .replace("kinds: [Pod]}", "kinds: [Pod], operations: [UPDATE]}"));
    assert!(!run(&ops, &pod(json!({}))).0, "operations: UPDATE only");
}

#[test]
fn sorted_by_kind_then_name() {
    let yaml = format!(
        "{}---\n{}---\napiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {{name: a}}\nspec:\n  location: metadata.labels.a\n  parameters: {{assign: {{value: x}}}}\n",
        assign(
            "z",
            "  location: spec.a\n  parameters: {assign: {value: 1}}\n"
        ),
        assign(
            "b",
            "  location: spec.b\n  parameters: {assign: {value: 1}}\n"
        ),
    );
    assert_eq!(
        set(&yaml).mutators(),
        ["Assign/b", "Assign/z", "AssignMetadata/a"]
    );
}

#[test]
fn later_mutators_see_earlier_changes_and_the_set_converges() {
    // The sidecar (Assign/add-sidecar) is added first; the pull policy mutator, sorted
    // after it, reaches the new container in the same pass.
    let yaml = format!(
        "{}---\n{}",
        assign(
            "add-sidecar",
            "  location: \"spec.containers[name: proxy].image\"\n  parameters:\n    assign: {value: envoy}\n"
        ),
        assign(
            "pull",
            "  location: \"spec.containers[name: *].imagePullPolicy\"\n  parameters: {assign: {value: Always}}\n"
        ),
    );
    let m = set(&yaml);
    let (_, out) = run(&m, &pod(json!({"containers": [{"name": "app"}]})));
    assert_eq!(
        out["spec"]["containers"][1],
        json!({"name": "proxy", "image": "envoy", "imagePullPolicy": "Always"})
    );
    // A whole-element Assign and a field Assign on the same element fight: the element
    // is replaced on every pass, and the field set again.
    let fight = format!(
        "{}---\n{}",
        assign(
            "add-sidecar",
            "  location: \"spec.containers[name: proxy]\"\n  parameters:\n    assign: {value: {name: proxy, image: envoy}}\n"
        ),
        assign(
            "pull",
            "  location: \"spec.containers[name: *].imagePullPolicy\"\n  parameters: {assign: {value: Always}}\n"
        ),
    );
    let err = set(&fight)
        .mutate(&mut pod(json!({})), &PolicyContext::new())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Assign/add-sidecar, Assign/pull still change it"),
        "{err}"
    );
}

#[test]
fn a_fight_does_not_converge() {
    let yaml = format!(
        "{}---\n{}",
        assign(
            "one",
            "  location: spec.dnsPolicy\n  parameters: {assign: {value: Default}}\n"
        ),
        assign(
            "two",
            "  location: spec.dnsPolicy\n  parameters: {assign: {value: None}}\n"
        ),
    );
    let m = set(&yaml);
    let mut p = pod(json!({}));
    let err = m.mutate(&mut p, &PolicyContext::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    let text = err.to_string();
    assert!(text.contains("do not converge"), "{text}");
    assert!(text.contains("Assign/one, Assign/two"), "{text}");
    assert!(text.contains("after 3 passes"), "{text}");
    assert_eq!(p.to_value()["spec"], json!({}), "left as it was");
}

#[test]
fn changing_the_kind_is_refused() {
    let m = set(&assign(
        "kind",
        "  location: kind\n  parameters: {assign: {value: Secret}}\n",
    ));
    let err = m
        .mutate(&mut pod(json!({})), &PolicyContext::new())
        .unwrap_err();
    assert!(err.to_string().contains("changes kind"), "{err}");
}

#[test]
fn load_errors_name_file_mutator_and_field() {
    let cases = [
        (assign("m", "  location: metadata.labels.x\n  parameters: {assign: {value: y}}\n"), "Assign m: spec.location: \"metadata.labels.x\": Assign cannot change metadata"),
        (assign("m", "  location: \"spec.containers[name: *]\"\n  parameters: {assign: {value: {name: x}}}\n"), "'*' list selector"),
        (assign("m", "  location: \"spec.containers[name: a]\"\n  parameters: {assign: {value: {name: b}}}\n"), "spec.parameters.assign.value: a location ending with [name: a]"),
        (assign("m", "  location: \"spec.containers[name: a].name\"\n  parameters: {assign: {value: b}}\n"), "the key of the list element"),
        (assign("m", "  location: \"spec.containers[name: a\"\n  parameters: {assign: {value: b}}\n"), "spec.location: \"spec.containers[name: a\": column 24: expected ']'"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {externalData: {provider: p}}}\n"), "spec.parameters.assign.externalData: is not supported"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {value: 1, fromMetadata: {field: name}}}\n"), "both value and fromMetadata"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {fromMetadata: {field: uid}}}\n"), "fromMetadata.field: \"uid\": must be name or namespace"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {value: 1}, pathTests: [{subPath: spec.y, condition: MustExist}]}\n"), "pathTests[0].subPath: \"spec.y\" is not a prefix"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {value: 1}, pathTests: [{subPath: spec, condition: Maybe}]}\n"), "pathTests[0].condition: must be MustExist"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {value: 1}, pathTests: [{subPath: spec, condition: MustExist}, {subPath: spec, condition: MustNotExist}]}\n"), "conflicts"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {value: 1}, assignIff: {}}\n"), "spec.parameters.assignIff: is not a parameter of Assign"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {value: 1}}\n").replace(POD_APPLY, "applyTo: [{groups: [''], kinds: [Pod]}]"), "spec.applyTo[0].versions: is required"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {value: 1}}\n").replace(POD_APPLY, "applyTo: [{groups: ['*'], versions: [v1], kinds: [Pod]}]"), "applyTo takes no globs"),
        (assign("m", "  location: spec.x\n  parameters: {assign: {value: 1}}\n").replace(POD_APPLY, "match: {}"), "spec.applyTo: is required"),
        ("apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {name: m}\nspec:\n  location: spec.x\n  parameters: {assign: {value: a}}\n".to_owned(), "AssignMetadata can only add metadata.labels"),
        ("apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {name: m}\nspec:\n  location: metadata.labels.a\n  parameters: {assign: {value: 1}}\n".to_owned(), "labels and annotations are strings"),
        ("apiVersion: mutations.gatekeeper.sh/v1\nkind: ModifySet\nmetadata: {name: m}\nspec:\n  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]\n  location: \"spec.containers[name: a]\"\n  parameters: {values: {fromList: [a]}}\n".to_owned(), "a ModifySet location cannot end with a list selector"),
        ("apiVersion: mutations.gatekeeper.sh/v1\nkind: ModifySet\nmetadata: {name: m}\nspec:\n  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]\n  location: spec.args\n  parameters: {operation: replace}\n".to_owned(), "\"replace\" is not merge or prune"),
        ("apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignImage\nmetadata: {name: m}\nspec:\n  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]\n  location: spec.containers[name:*].image\n  parameters: {assignPath: my.repo.lib/app}\n".to_owned(), "AssignImage m: spec.parameters: assignPath \"my.repo.lib/app\" starts with what reads as a domain"),
        ("apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignImage\nmetadata: {name: m}\nspec:\n  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]\n  location: spec.containers[name:*].image\n  parameters: {assignTag: latest}\n".to_owned(), "assignTag \"latest\""),
        (format!("apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignImage\nmetadata: {{name: m{}}}\nspec:\n  applyTo: [{{groups: [''], versions: [v1], kinds: [Pod]}}]\n  location: spec.image\n  parameters: {{assignTag: ':v1'}}\n", "x".repeat(63)), "metadata.name: is longer than 63 characters"),
        (format!("{}---\n{}", assign("m", "  location: spec.x\n  parameters: {assign: {value: 1}}\n"), assign("m", "  location: spec.y\n  parameters: {assign: {value: 1}}\n")), "Assign m is defined twice"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n".to_owned(), "v1 ConfigMap c is not a Gatekeeper mutator"),
        ("apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignFoo\nmetadata: {name: c}\nspec: {}\n".to_owned(), "AssignFoo c is not a Gatekeeper mutator"),
    ];
    for (yaml, want) in cases {
        let err = load_err(&yaml);
        assert!(err.contains("m.yaml"), "{err}");
        assert!(err.contains(want), "want {want:?} in: {err}");
    }
}

#[test]
fn hostile_objects_give_errors_not_panics() {
    let m = set(&assign(
        "deep",
        "  location: \"spec.a.b.c[name: *].d\"\n  parameters: {assign: {value: 1}}\n",
    ));
    let err = m
        .mutate(
            &mut pod(json!({"a": {"b": {"c": "text"}}})),
            &PolicyContext::new(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("spec.a.b.c is a string, not a list"),
        "{err}"
    );
    let err = m
        .mutate(&mut pod(json!({"a": [1]})), &PolicyContext::new())
        .unwrap_err();
    assert!(
        err.to_string().contains("spec.a is a list, not a mapping"),
        "{err}"
    );
    // A huge list is walked, once.
    let many: Vec<Value> = (0..50_000)
        .map(|i| json!({"name": format!("c{i}")}))
        .collect();
    let (changed, out) = run(&m, &pod(json!({"a": {"b": {"c": many}}})));
    assert!(changed);
    assert_eq!(out["spec"]["a"]["b"]["c"][49_999]["d"], 1);
    // The deepest location allowed works.
    let deep = vec!["x"; path::MAX_NODES - 1].join(".");
    let m = set(&assign(
        "deepest",
        &format!("  location: spec.{deep}\n  parameters: {{assign: {{value: 1}}}}\n"),
    ));
    let (changed, _) = run(&m, &pod(json!({})));
    assert!(changed);
}

const FIXTURE: &str = "\
apiVersion: mutations.gatekeeper.sh/v1
kind: Assign
metadata: {name: pull}
spec:
  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]
  location: \"spec.containers[name: *].imagePullPolicy\"
  parameters: {assign: {value: Always}}
---
apiVersion: mutations.gatekeeper.sh/v1
kind: Assign
metadata: {name: escalation}
spec:
  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]
  location: \"spec.containers[name: *].securityContext.allowPrivilegeEscalation\"
  parameters:
    assign: {value: false}
    pathTests: [{subPath: \"spec.containers[name: *].securityContext.allowPrivilegeEscalation\", condition: MustNotExist}]
---
apiVersion: mutations.gatekeeper.sh/v1
kind: ModifySet
metadata: {name: args}
spec:
  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]
  location: \"spec.containers[name: *].args\"
  parameters: {values: {fromList: [--log=json]}}
---
apiVersion: mutations.gatekeeper.sh/v1
kind: AssignImage
metadata: {name: mirror}
spec:
  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]
  location: \"spec.containers[name: *].image\"
  parameters: {assignDomain: mirror.acme.io}
---
apiVersion: mutations.gatekeeper.sh/v1
kind: AssignMetadata
metadata: {name: team}
spec:
  location: metadata.labels.team
  parameters: {assign: {value: platform}}
";

fn arb_container() -> impl Strategy<Value = Value> {
    (
        "[a-z]{1,3}",
        prop::option::of("[a-z./:@]{0,12}"),
        prop::option::of(prop::collection::vec("--[a-z=]{1,6}", 0..3)),
        prop::option::of(any::<bool>()),
        prop::option::of(prop_oneof![Just("Never"), Just("Always")]),
    )
        .prop_map(|(name, image, args, escalate, pull)| {
            let mut c = json!({"name": name});
            if let Some(i) = image {
                c["image"] = json!(i);
            }
            if let Some(a) = args {
                c["args"] = json!(a);
            }
            if let Some(e) = escalate {
                c["securityContext"] = json!({"allowPrivilegeEscalation": e});
            }
            if let Some(p) = pull {
                c["imagePullPolicy"] = json!(p);
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Applying the set twice equals applying it once.
    #[test]
    fn the_set_is_idempotent(
        containers in prop::collection::vec(arb_container(), 0..4),
        labels in prop::option::of(prop::collection::btree_map("[a-z]{1,4}", "[a-z]{0,4}", 0..3)),
    ) {
        let m = set(FIXTURE);
        let mut p = pod(json!({"containers": containers}));
        if let Some(l) = labels {
            p.as_map_mut()["metadata"]["labels"] = json!(l);
        }
        let mut once = p.clone();
        m.mutate(&mut once, &PolicyContext::new()).unwrap();
        let mut twice = once.clone();
        let changed = m.mutate(&mut twice, &PolicyContext::new()).unwrap();
        prop_assert!(!changed);
        prop_assert_eq!(once.to_value(), twice.to_value());
    }

    /// Arbitrary YAML-ish mutators never panic the loader.
    #[test]
    fn loading_never_panics(location in "\\PC{0,30}", value in "\\PC{0,10}") {
        let yaml = assign("m", &format!(
            "  location: {}\n  parameters: {{assign: {{value: {}}}}}\n",
            serde_json::to_string(&location).unwrap(),
            serde_json::to_string(&value).unwrap()
        ));
        if let Ok(m) = GatekeeperMutators::from_yaml("gk", &yaml, None) {
            let _ = m.mutate(&mut pod(json!({"containers": [{"name": "a"}]})), &PolicyContext::new());
        }
    }
}
