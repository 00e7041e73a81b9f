//! Unit tests for the manifest module.

use std::error::Error as _;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use super::*;
use crate::ErrorKind;

fn parse_error(err: &crate::Error) -> &ParseError {
    err.source()
        .and_then(|e| e.downcast_ref::<ParseError>())
        .unwrap_or_else(|| panic!("no ParseError behind {err:?}"))
}

fn names(set: &ManifestSet) -> Vec<&str> {
    set.iter().map(Object::name).collect()
}

#[test]
fn bad_second_document_names_file_document_and_line() {
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata: [unclosed\n";
    let err = ManifestSet::parse(yaml, Some(Path::new("deploy/app.yaml"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let parse = parse_error(&err);
    assert_eq!(
        parse.location().file.as_deref(),
        Some(Path::new("deploy/app.yaml"))
    );
    assert_eq!(parse.location().document, 1);
    assert!(
        (10..=11).contains(&parse.location().line),
        "line {} in {err}",
        parse.location().line
    );
    let text = err.to_string();
    assert!(text.starts_with("deploy/app.yaml:"), "{text}");
    assert!(text.contains("(document 1)"), "{text}");
}

#[test]
fn type_error_in_second_document_is_located() {
    // Syntactically fine YAML, but the second document is a scalar.
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n\njust a string\n";
    let err = ManifestSet::parse(yaml, Some(Path::new("x.yaml"))).unwrap_err();
    let parse = parse_error(&err);
    assert_eq!(parse.location().document, 1);
    assert_eq!(parse.location().line, 4);
    assert!(parse.problem().contains("found a string"), "{err}");
}

#[test]
fn duplicate_key_error_has_absolute_line() {
    let yaml = b"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: b}\n";
    let err = ManifestSet::parse(yaml, None).unwrap_err();
    let parse = parse_error(&err);
    assert_eq!(parse.location().document, 1, "{err}");
    assert_eq!(parse.location().line, 8, "{err}");
    assert!(err.to_string().starts_with("<input>:8"), "{err}");
}

#[test]
fn empty_and_comment_documents_are_skipped_but_counted() {
    let yaml = b"# leading comment\n---\n---\n# only a comment\n---\n~\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n...\n---\nnull\n---\n";
    let set = ManifestSet::parse(yaml, None).unwrap();
    assert_eq!(set.len(), 1);
    let source = set.objects()[0].source().unwrap();
    assert_eq!(source.document, 3);
    assert_eq!(source.line, 7);
    assert!(ManifestSet::parse(b"", None).unwrap().is_empty());
    assert!(
        ManifestSet::parse(b"\n# nothing\n", None)
            .unwrap()
            .is_empty()
    );
    assert!(ManifestSet::parse(b"---\n---\n", None).unwrap().is_empty());
}

#[test]
fn lists_are_flattened() {
    let yaml = b"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n---\napiVersion: v1\nkind: ConfigMapList\nmetadata: {}\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n---\n{apiVersion: v1, kind: List, items: []}\n";
    let set = ManifestSet::parse(yaml, None).unwrap();
    assert_eq!(names(&set), ["a", "b", "c"]);
    assert_eq!(set.objects()[2].source().unwrap().document, 1);
    assert_eq!(set.objects()[2].source().unwrap().line, 6);
}

#[test]
fn bad_list_item_names_the_item() {
    let yaml = b"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {}}\n";
    let err = ManifestSet::parse(yaml, None).unwrap_err();
    assert_eq!(parse_error(&err).field(), Some("items[1].metadata.name"));
    assert!(err.to_string().contains("items[1].metadata.name"), "{err}");

    let err = ManifestSet::parse(b"{apiVersion: v1, kind: List, items: [1]}", None).unwrap_err();
    assert!(err.to_string().contains("items[0]"), "{err}");
    let err = ManifestSet::parse(b"{apiVersion: v1, kind: List, items: 1}", None).unwrap_err();
    assert_eq!(parse_error(&err).field(), Some("items"));
}

#[test]
fn json_object_array_stream_and_list() {
    let one = br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}"#;
    assert_eq!(names(&ManifestSet::parse(one, None).unwrap()), ["a"]);

    let array = br#"
[
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
  {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}}
  ]}
]"#;
    let set = ManifestSet::parse(array, Some(Path::new("all.json"))).unwrap();
    assert_eq!(names(&set), ["a", "b"]);
    assert_eq!(set.objects()[0].source().unwrap().line, 2);

    let stream = b"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"a\"}}\n\n{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"b\"}}\n";
    let set = ManifestSet::parse(stream, None).unwrap();
    assert_eq!(names(&set), ["a", "b"]);
    let second = set.objects()[1].source().unwrap();
    assert_eq!((second.document, second.line), (1, 3));
}

#[test]
fn json_errors_are_located() {
    let bad = b"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"a\"}}\n{\"apiVersion\": \"v1\",\n \"kind\": }\n";
    let err = ManifestSet::parse(bad, Some(Path::new("x.json"))).unwrap_err();
    let parse = parse_error(&err);
    assert_eq!(parse.location().document, 1, "{err}");
    assert_eq!(parse.location().line, 3, "{err}");
    assert!(parse.column().is_some());
    assert!(err.to_string().starts_with("x.json:3:"), "{err}");

    let missing_name = br#"[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}, {"apiVersion": "v1", "kind": "ConfigMap"}]"#;
    let err = ManifestSet::parse(missing_name, Some(Path::new("x.json"))).unwrap_err();
    assert_eq!(parse_error(&err).field(), Some("[1].metadata.name"));
}

#[test]
fn yaml_flow_mapping_that_is_not_json_still_parses() {
    let set = ManifestSet::parse(
        b"{apiVersion: v1, kind: Namespace, metadata: {name: a}}\n",
        None,
    )
    .unwrap();
    assert_eq!(names(&set), ["a"]);
}

#[test]
fn missing_identity_fields_are_errors() {
    let cases: [(&[u8], &str); 6] = [
        (b"kind: Pod\nmetadata: {name: a}\n", "apiVersion"),
        (b"apiVersion: v1\nmetadata: {name: a}\n", "kind"),
        (
            b"apiVersion: 1\nkind: Pod\nmetadata: {name: a}\n",
            "apiVersion",
        ),
        (b"apiVersion: v1\nkind: Pod\n", "metadata.name"),
        (
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: ''}\n",
            "metadata.name",
        ),
        (
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: [a]}\n",
            "metadata.name",
        ),
    ];
    for (yaml, field) in cases {
        let err = ManifestSet::parse(yaml, Some(Path::new("f.yaml"))).unwrap_err();
        let parse = parse_error(&err);
        assert_eq!(parse.field(), Some(field), "{err}");
        assert_eq!(parse.location().document, 0);
        assert!(err.to_string().contains(field), "{err}");
        assert!(
            err.to_string().starts_with("f.yaml:1 (document 0)"),
            "{err}"
        );
    }
    let generated = ManifestSet::parse(
        b"apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: m-}\n",
        None,
    )
    .unwrap();
    assert_eq!(generated.objects()[0].generate_name(), Some("m-"));
}

#[test]
fn apply_order_puts_namespaces_and_crds_first_and_is_stable() {
    let yaml = b"
{apiVersion: apps/v1, kind: Deployment, metadata: {name: d2}}
---
{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}}
---
{apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingWebhookConfiguration, metadata: {name: hook}}
---
{apiVersion: apps/v1, kind: Deployment, metadata: {name: d1}}
---
{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: widgets.example.com}}
---
{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
---
{apiVersion: example.com/v1, kind: Gadget, metadata: {name: g}}
---
{apiVersion: v1, kind: ServiceAccount, metadata: {name: sa}}
---
{apiVersion: v1, kind: Namespace, metadata: {name: b}}
---
{apiVersion: v1, kind: Namespace, metadata: {name: a}}
";
    let set = ManifestSet::parse(yaml, None).unwrap();
    let apply: Vec<&str> = set.apply_order().iter().map(|o| o.name()).collect();
    assert_eq!(
        apply,
        [
            "b",
            "a",
            "widgets.example.com",
            "sa",
            "c",
            "d2",
            "d1",
            "g",
            "w",
            "hook"
        ]
    );
    let delete: Vec<&str> = set.delete_order().iter().map(|o| o.name()).collect();
    let mut reversed = apply.clone();
    reversed.reverse();
    assert_eq!(delete, reversed);
}

#[test]
fn yaml_round_trip_keeps_types() {
    let yaml = r##"
apiVersion: v1
kind: ConfigMap
metadata:
  name: tricky
  namespace: shop
  labels: {app: web}
  annotations: {"note": "multi\nline"}
data:
  yes: "yes"
  no: "no"
  "null": "null"
  number: "1.0"
  octal: "0755"
  empty: ""
  hash: "# not a comment"
  colon: "a: b"
  dash: "- x"
  bool: "true"
  tilde: "~"
  spaces: "  padded  "
  unicode: "grüße 🚀"
  date: "2024-01-01"
  marker: "---"
  y: "y"
  n: "n"
  "on": "on"
  off: "off"
  "True": "True"
  inf: ".inf"
  nan: ".nan"
  hex: "0x1F"
  exp: "1e3"
  sci: "1_000"
binaryData: {}
spec:
  replicas: 3
  ratio: 0.5
  big: 18446744073709551615
  negative: -7
  on: true
  nothing: null
  list: [1, "2", [3], {a: b}]
"##;
    let set = ManifestSet::parse(yaml.as_bytes(), None).unwrap();
    let out = set.to_yaml().unwrap();
    let again = ManifestSet::parse(out.as_bytes(), None).unwrap();
    assert_eq!(again, set, "{out}");
    assert_eq!(
        again.objects()[0].to_value(),
        set.objects()[0].to_value(),
        "{out}"
    );
    let json = set.to_json().unwrap();
    assert_eq!(ManifestSet::parse(json.as_bytes(), None).unwrap(), set);
}

#[test]
fn multi_document_round_trip() {
    let set: ManifestSet = (0..5)
        .map(|i| {
            Object::from_value(json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": format!("c{i}")},
                "data": {"i": i.to_string()},
            }))
            .unwrap()
        })
        .collect();
    let yaml = set.to_yaml().unwrap();
    assert_eq!(yaml.matches("\n---\n").count(), 4, "{yaml}");
    let again = ManifestSet::parse(yaml.as_bytes(), None).unwrap();
    assert_eq!(again, set);
    assert_eq!(again.objects()[4].source().unwrap().document, 4);
    assert_eq!(ManifestSet::new().to_yaml().unwrap(), "");
    assert!(
        ManifestSet::parse(ManifestSet::new().to_json().unwrap().as_bytes(), None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn equality_ignores_source() {
    let a = ManifestSet::parse(
        b"{apiVersion: v1, kind: Namespace, metadata: {name: a}}",
        None,
    )
    .unwrap();
    let b = ManifestSet::parse(
        b"---\n---\n{apiVersion: v1, kind: Namespace, metadata: {name: a}}",
        Some(Path::new("other.yaml")),
    )
    .unwrap();
    assert_ne!(a.objects()[0].source(), b.objects()[0].source());
    assert_eq!(a, b);
}

#[test]
fn alias_bomb_is_rejected() {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..10 {
        let prev = level - 1;
        let refs = vec![format!("*x{prev}"); 10].join(", ");
        writeln!(yaml, "x{level}: &x{level} [{refs}]").unwrap();
    }
    assert!(yaml.len() < 1500);
    let err = ManifestSet::parse(yaml.as_bytes(), Some(Path::new("bomb.yaml"))).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("alias"), "{text}");
    assert!(text.contains("limit"), "{text}");
    assert!(text.starts_with("bomb.yaml:"), "{text}");
}

#[test]
fn deep_nesting_is_rejected() {
    let depth = 10_000;
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let err = ManifestSet::parse(yaml.as_bytes(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(ManifestSet::parse(json.as_bytes(), Some(Path::new("deep.json"))).is_err());
    let mut block = String::new();
    for i in 0..500 {
        writeln!(block, "{}k{i}:", " ".repeat(i)).unwrap();
    }
    assert!(ManifestSet::parse(block.as_bytes(), None).is_err());
}

#[test]
fn limits_are_enforced() {
    let limits = ParseLimits::default().with_max_input_bytes(16);
    let err = ManifestSet::parse_with(&[b'#'; 17], None, &limits).unwrap_err();
    assert!(err.to_string().contains("max_input_bytes"), "{err}");

    let limits = ParseLimits::default().with_max_documents(2);
    let err = ManifestSet::parse_with(b"---\n---\n---\n", None, &limits).unwrap_err();
    assert!(err.to_string().contains("max_documents"), "{err}");
    let err =
        ManifestSet::parse_with(b"[]\n[]\n[]\n", Some(Path::new("a.json")), &limits).unwrap_err();
    assert!(err.to_string().contains("max_documents"), "{err}");

    let limits = ParseLimits::default().with_max_nodes(10);
    let many = format!("[{}0]", "0,".repeat(20));
    let err =
        ManifestSet::parse_with(many.as_bytes(), Some(Path::new("a.json")), &limits).unwrap_err();
    assert!(err.to_string().contains("max_nodes"), "{err}");
    let yaml = format!("a: [{}0]", "0,".repeat(20));
    let err = ManifestSet::parse_with(yaml.as_bytes(), None, &limits).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    // Commas inside strings are not values.
    let quoted = format!(
        r#"{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "a"}}, "data": {{"a": "{}\\\""}}}}"#,
        ",".repeat(50)
    );
    let set = ManifestSet::parse_with(quoted.as_bytes(), Some(Path::new("a.json")), &limits)
        .unwrap_or_else(|e| panic!("{e}: {quoted}"));
    assert_eq!(
        set.objects()[0]
            .pointer("/data/a")
            .unwrap()
            .as_str()
            .unwrap()
            .len(),
        52
    );

    let limits = ParseLimits::default().with_max_depth(3);
    let json = br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"a": {"b": {}}}}"#;
    let err = ManifestSet::parse_with(json, Some(Path::new("a.json")), &limits).unwrap_err();
    assert!(err.to_string().contains("max_depth"), "{err}");
}

#[test]
fn invalid_utf8_is_located() {
    let mut bytes =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: \xff\n".to_vec();
    let err = ManifestSet::parse(&bytes, None).unwrap_err();
    let parse = parse_error(&err);
    assert_eq!(parse.location().line, 5);
    assert_eq!(parse.location().document, 1);
    assert!(err.to_string().contains("UTF-8"));
    bytes.clear();
    bytes.extend_from_slice(b"\xEF\xBB\xBFapiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n");
    assert_eq!(ManifestSet::parse(&bytes, None).unwrap().len(), 1);
}

#[test]
fn object_setters_and_pointer() {
    let err = Object::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": "oops"}))
        .unwrap_err();
    assert!(err.to_string().contains("metadata"), "{err}");

    let mut pod = Object::from_value(json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    pod.set_namespace("shop");
    pod.set_label("a", "1");
    pod.set_annotation("b/c", "2");
    pod.as_map_mut()
        .insert("spec".into(), json!({"x/y": {"~z": 1}}));
    assert_eq!(pod.namespace(), Some("shop"));
    assert_eq!(pod.labels()["a"], "1");
    assert_eq!(pod.annotations()["b/c"], "2");
    assert_eq!(pod.pointer("/metadata/annotations/b~1c"), Some(&json!("2")));
    assert_eq!(pod.pointer("/spec/x~1y/~0z"), Some(&json!(1)));
    assert_eq!(pod.pointer(""), None);
    assert_eq!(pod.pointer("spec"), None);
    *pod.pointer_mut("/spec/x~1y/~0z").unwrap() = json!(2);
    assert_eq!(pod.pointer("/spec/x~1y/~0z"), Some(&json!(2)));

    // Labels that were not a mapping are replaced.
    let mut odd = Object::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": 3}}),
    )
    .unwrap();
    odd.set_label("k", "v");
    assert_eq!(odd.labels().len(), 1);
}

#[test]
fn object_serde_and_dynamic_conversion() {
    let value = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "labels": {"a": "b"}}, "spec": {"replicas": 2}});
    let o: Object = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(serde_json::to_value(&o).unwrap(), value);
    assert!(serde_json::from_value::<Object>(json!({"kind": "x"})).is_err());

    let dynamic = o.to_dynamic().unwrap();
    assert_eq!(dynamic.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(dynamic.types.as_ref().unwrap().kind, "Deployment");
    let back = Object::try_from(dynamic).unwrap();
    assert_eq!(back, o);
    assert_eq!(back.to_value(), value);

    let untyped = kube::api::DynamicObject {
        types: None,
        metadata: kube::api::ObjectMeta::default(),
        data: json!({}),
    };
    assert!(Object::try_from(untyped).is_err());
}

#[test]
fn from_file_and_dir() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("b/nested")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n");
    std::fs::write(root.join("c.yaml"), cm("c")).unwrap();
    std::fs::write(root.join("a.YML"), cm("a")).unwrap();
    std::fs::write(root.join("b/nested/n.yaml"), cm("nn")).unwrap();
    std::fs::write(
        root.join("b/m.json"),
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}}"#,
    )
    .unwrap();
    std::fs::write(root.join(".git/x.yaml"), cm("hidden")).unwrap();
    std::fs::write(root.join(".hidden.yaml"), cm("hidden")).unwrap();
    std::fs::write(root.join("README.md"), "# not yaml: [").unwrap();

    let set = ManifestSet::from_dir(root).unwrap();
    assert_eq!(names(&set), ["a", "m", "nn", "c"]);
    assert_eq!(
        set.objects()[2].source().unwrap().file.as_deref(),
        Some(root.join("b/nested/n.yaml").as_path())
    );

    std::fs::write(root.join("b/bad.yaml"), "---\nkind: [\n").unwrap();
    let err = ManifestSet::from_dir(root).unwrap_err();
    assert!(err.to_string().contains("bad.yaml:2"), "{err}");

    let err = ManifestSet::from_file(root.join("missing.yaml")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.yaml"), "{err}");
    assert_eq!(
        ManifestSet::from_dir(root.join("nope")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}
