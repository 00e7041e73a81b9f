//! Backstage's documented examples and validation rules, entity by entity.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_catalog::load::{validate_file, validate_text};
use idp_catalog::placeholder::MemorySource;
use idp_catalog::validate::Validator;
use serde_json::{Value, json};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn every_documented_kind_example_is_valid() {
    let reports = validate_file(&fixture("valid-kinds.yaml"));
    assert_eq!(reports.len(), 11);
    for r in &reports {
        assert!(r.valid, "{r:?}");
        assert!(r.entity_ref.is_some());
    }
    let kinds: Vec<&str> = reports.iter().filter_map(|r| r.kind.as_deref()).collect();
    for k in [
        "Component",
        "API",
        "Resource",
        "System",
        "Domain",
        "Group",
        "User",
        "Location",
        "Template",
        "Environment",
    ] {
        assert!(kinds.contains(&k), "{k}");
    }
    assert_eq!(
        reports[9].entity_ref.as_deref(),
        Some("template:default/v1beta3-demo")
    );
}

fn component() -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "cart"},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}
    })
}

/// Apply `edit` to a valid component and return the rules that fire.
fn rules_after(edit: impl FnOnce(&mut Value)) -> Vec<(String, &'static str)> {
    let mut v = component();
    edit(&mut v);
    Validator::new()
        .validate(&v)
        .into_iter()
        .map(|p| (p.path, p.rule))
        .collect()
}

#[test]
fn names() {
    for ok in [
        "a",
        "cart.v2",
        "cart_v2",
        "Cart-Service",
        "a--b",
        &"n".repeat(63),
        "1abc",
    ] {
        assert!(
            rules_after(|v| v["metadata"]["name"] = json!(ok)).is_empty(),
            "{ok}"
        );
    }
    for bad in [
        "",
        "-cart",
        "cart-",
        "cart.",
        "_cart",
        "a b",
        "a/b",
        "a:b",
        &"n".repeat(64),
    ] {
        let rules = rules_after(|v| v["metadata"]["name"] = json!(bad));
        assert!(!rules.is_empty(), "{bad:?} accepted");
        assert_eq!(rules[0].0, "metadata.name", "{bad:?}");
    }
    assert_eq!(
        rules_after(|v| v["metadata"]["name"] = json!(7)),
        [("metadata.name".to_owned(), "type")]
    );
    assert_eq!(
        rules_after(|v| {
            v["metadata"].as_object_mut().unwrap().remove("name");
        }),
        [("metadata.name".to_owned(), "required")]
    );
}

#[test]
fn namespaces() {
    for ok in ["default", "team-a", "a1", &"n".repeat(63)] {
        assert!(
            rules_after(|v| v["metadata"]["namespace"] = json!(ok)).is_empty(),
            "{ok}"
        );
    }
    for bad in [
        "Default",
        "team_a",
        "team.a",
        "-a",
        "a-",
        "",
        &"n".repeat(64),
    ] {
        assert_eq!(
            rules_after(|v| v["metadata"]["namespace"] = json!(bad)),
            [("metadata.namespace".to_owned(), "namespace-format")],
            "{bad:?}"
        );
    }
}

#[test]
fn labels_annotations_tags_links() {
    assert!(
        rules_after(|v| v["metadata"]["labels"] = json!({"a.b/c_d": "", "x": "v.1"})).is_empty()
    );
    assert_eq!(
        rules_after(|v| v["metadata"]["labels"] = json!({"tier": "gold plated"})),
        [("metadata.labels.tier".to_owned(), "label-value-format")]
    );
    assert_eq!(
        rules_after(|v| v["metadata"]["labels"] = json!({"tier": "x".repeat(64)})),
        [("metadata.labels.tier".to_owned(), "label-value-format")]
    );
    assert_eq!(
        rules_after(|v| v["metadata"]["labels"] = json!({"Bad_Prefix.io/x": "a"})),
        [(
            "metadata.labels.Bad_Prefix.io/x".to_owned(),
            "label-key-format"
        )]
    );
    // Annotation values are free text; keys follow the label-key rule.
    assert!(
        rules_after(|v| v["metadata"]["annotations"] =
            json!({"backstage.io/techdocs-ref": "dir:. and spaces"}))
        .is_empty()
    );
    assert_eq!(
        rules_after(|v| v["metadata"]["annotations"] = json!({"a/b/c": "x"})),
        [(
            "metadata.annotations.a/b/c".to_owned(),
            "annotation-key-format"
        )]
    );
    assert_eq!(
        rules_after(|v| v["metadata"]["annotations"] = json!({"k": 1})),
        [("metadata.annotations.k".to_owned(), "type")]
    );
    assert!(
        rules_after(|v| v["metadata"]["tags"] = json!(["java", "c++", "a:b", "x-y"])).is_empty()
    );
    assert_eq!(
        rules_after(|v| v["metadata"]["tags"] = json!(["ok", "Java", "a_b"])),
        [
            ("metadata.tags[1]".to_owned(), "tag-format"),
            ("metadata.tags[2]".to_owned(), "tag-format")
        ]
    );
    assert_eq!(
        rules_after(|v| v["metadata"]["links"] = json!([{"title": "no url"}])),
        [("metadata.links[0].url".to_owned(), "required")]
    );
}

#[test]
fn envelope_rules() {
    assert_eq!(
        rules_after(|v| v["extra"] = json!(1)),
        [("extra".to_owned(), "foreign-root-field")]
    );
    assert!(rules_after(|v| v["status"] = json!({"items": []})).is_empty());
    assert!(rules_after(|v| v["relations"] = json!([])).is_empty());
    assert_eq!(
        rules_after(|v| v["kind"] = json!("component")),
        [("kind".to_owned(), "unknown-kind")]
    );
    assert_eq!(
        rules_after(|v| v["apiVersion"] = json!("backstage.io/v2")),
        [("apiVersion".to_owned(), "unknown-kind")]
    );
    assert_eq!(
        rules_after(|v| v["apiVersion"] = json!("not a version")),
        [
            ("apiVersion".to_owned(), "api-version-format"),
            ("apiVersion".to_owned(), "unknown-kind")
        ]
    );
    assert!(rules_after(|v| v["apiVersion"] = json!("backstage.io/v1beta1")).is_empty());
}

#[test]
fn per_kind_required_fields() {
    let v = Validator::new();
    let check = |kind: &str, api: &str, spec: Value| -> Vec<String> {
        v.validate(
            &json!({"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": spec}),
        )
        .into_iter()
        .map(|p| p.path)
        .collect()
    };
    let b = "backstage.io/v1alpha1";
    assert_eq!(
        check("Component", b, json!({})),
        ["spec.type", "spec.lifecycle", "spec.owner"]
    );
    assert_eq!(
        check(
            "API",
            b,
            json!({"type": "openapi", "lifecycle": "x", "owner": "o"})
        ),
        ["spec.definition"]
    );
    assert_eq!(check("Resource", b, json!({"type": "db"})), ["spec.owner"]);
    assert_eq!(check("System", b, json!({})), ["spec.owner"]);
    assert_eq!(check("Domain", b, json!({})), ["spec.owner"]);
    assert_eq!(
        check("Group", b, json!({"type": "team"})),
        ["spec.children"]
    );
    assert!(check("Group", b, json!({"type": "team", "children": []})).is_empty());
    assert_eq!(check("User", b, json!({})), ["spec.memberOf"]);
    assert!(check("User", b, json!({"memberOf": []})).is_empty());
    assert_eq!(
        check("Location", b, json!({"type": "url"})),
        ["spec.target"]
    );
    assert!(check("Location", b, json!({"target": "./a.yaml"})).is_empty());
    assert_eq!(
        check(
            "Component",
            b,
            json!({"type": "", "lifecycle": "x", "owner": "o"})
        ),
        ["spec.type"]
    );
    assert_eq!(
        check(
            "Component",
            b,
            json!({"type": "s", "lifecycle": "x", "owner": "o", "providesApis": "a"})
        ),
        ["spec.providesApis"]
    );
    let t = "scaffolder.backstage.io/v1beta3";
    assert_eq!(
        check("Template", t, json!({"type": "service"})),
        ["spec.steps"]
    );
    assert!(
        check(
            "Template",
            t,
            json!({"type": "service", "steps": [], "parameters": {"properties": {}}})
        )
        .is_empty()
    );
    assert!(
        check(
            "Template",
            t,
            json!({"type": "service", "steps": [], "parameters": [{"title": "a"}, {"title": "b"}]})
        )
        .is_empty()
    );
    assert_eq!(
        check(
            "Template",
            t,
            json!({"type": "service", "steps": [{"id": "x"}], "parameters": ["no"]})
        ),
        ["spec.parameters[0]", "spec.steps[0].action"]
    );
    assert_eq!(
        check("Template", b, json!({"type": "s", "steps": []})),
        ["apiVersion"]
    );
}

#[test]
fn references_with_and_without_kind_and_namespace() {
    let v = Validator::new();
    let with = |spec: Value| -> Vec<(String, &'static str)> {
        let mut c = component();
        for (k, val) in spec.as_object().unwrap() {
            c["spec"][k] = val.clone();
        }
        v.validate(&c)
            .into_iter()
            .map(|p| (p.path, p.rule))
            .collect()
    };
    assert!(
        with(
            json!({"owner": "group:other/team", "system": "ns/sys", "dependsOn": ["resource:db"]})
        )
        .is_empty()
    );
    // dependsOn has no default kind.
    assert_eq!(
        with(json!({"dependsOn": ["db"]})),
        [("spec.dependsOn[0]".to_owned(), "reference")]
    );
    assert_eq!(
        with(json!({"owner": "group:"})),
        [("spec.owner".to_owned(), "reference")]
    );
}

#[test]
fn yaml_errors_have_lines_and_no_document() {
    let r = validate_text(
        "bad.yaml",
        "bad.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [unclosed\n",
        &MemorySource::default(),
        None,
        &Validator::new(),
    );
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].document, None);
    assert!(!r[0].valid);
    assert!(r[0].errors[0].starts_with("line "), "{:?}", r[0].errors);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json[0]["document"], Value::Null);
    assert_eq!(json[0]["file"], "bad.yaml");
}

#[test]
fn custom_kind_with_json_schema() {
    let mut v = Validator::new();
    v.register_kind(
        "Pipeline",
        &["example.com/v1"],
        &json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "required": ["repo"],
                "properties": {"repo": {"type": "string", "minLength": 1}}}},
            "required": ["spec"]
        }),
    )
    .unwrap();
    let ok = json!({"apiVersion": "example.com/v1", "kind": "Pipeline", "metadata": {"name": "p"}, "spec": {"repo": "r"}});
    assert!(v.validate(&ok).is_empty());
    let bad = json!({"apiVersion": "example.com/v1", "kind": "Pipeline", "metadata": {"name": "p"}, "spec": {"repo": ""}});
    let problems = v.validate(&bad);
    assert_eq!(problems[0].path, "spec.repo");
    let wrong_version = json!({"apiVersion": "example.com/v2", "kind": "Pipeline", "metadata": {"name": "p"}, "spec": {"repo": "r"}});
    assert_eq!(v.validate(&wrong_version)[0].rule, "unknown-kind");
    // Envelope rules still apply to custom kinds.
    let bad_name = json!({"apiVersion": "example.com/v1", "kind": "Pipeline", "metadata": {"name": "-p"}, "spec": {"repo": "r"}});
    assert_eq!(v.validate(&bad_name)[0].rule, "name-format");
    assert_eq!(Validator::new().validate(&ok)[0].rule, "unknown-kind");
}

#[test]
fn schemas_are_exported_for_every_kind() {
    for kind in idp_catalog::kinds::BuiltinKind::ALL {
        let schema = idp_catalog::kinds::schema(kind);
        // The exported schema is itself a valid JSON Schema that accepts a minimal entity.
        assert!(jsonschema::validator_for(&schema).is_ok(), "{kind}");
    }
    let schema = idp_catalog::kinds::schema(idp_catalog::kinds::BuiltinKind::Component);
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&component()));
    let mut bad = component();
    bad["spec"].as_object_mut().unwrap().remove("owner");
    assert!(!validator.is_valid(&bad));
}
