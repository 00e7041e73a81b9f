//! Property tests: arbitrary input never panics the parser, the placeholder resolver,
//! the validator or the catalog.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_catalog::load::validate_text;
use idp_catalog::parse::parse_documents;
use idp_catalog::placeholder::MemorySource;
use idp_catalog::validate::Validator;
use idp_catalog::{EntityInput, InMemoryCatalog, Mutation};
use proptest::prelude::*;
use serde_json::{Value, json};

/// YAML-ish text: fragments that exercise indentation, flow collections, anchors,
/// tags, document markers and placeholders.
fn yamlish() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("apiVersion: backstage.io/v1alpha1\n".to_owned()),
        Just("kind: Component\n".to_owned()),
        Just("metadata:\n  name: a\n".to_owned()),
        Just("spec:\n  owner: x\n  type: [a, {b: c}]\n".to_owned()),
        Just("---\n".to_owned()),
        Just("...\n".to_owned()),
        Just("&a x: *a\n".to_owned()),
        Just("!!binary aGk=\n".to_owned()),
        Just("  - \"q\\u00e9\"\n".to_owned()),
        Just("? complex\n: key\n".to_owned()),
        Just("$text: ../x\n".to_owned()),
        Just("{$json: ./a}\n".to_owned()),
        Just("%YAML 1.2\n".to_owned()),
        Just("|\n  block\n".to_owned()),
        Just("1: 2\n".to_owned()),
        ".{0,20}\n",
    ];
    prop::collection::vec(frag, 0..12).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9:/._ -]{0,70}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("apiVersion".to_owned()),
                    Just("kind".to_owned()),
                    Just("metadata".to_owned()),
                    Just("spec".to_owned()),
                    Just("name".to_owned()),
                    Just("namespace".to_owned()),
                    Just("labels".to_owned()),
                    Just("owner".to_owned()),
                    Just("steps".to_owned()),
                    Just("$text".to_owned()),
                    "[a-z./]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics(text in yamlish()) {
        let _ = parse_documents(&text);
        let reports = validate_text("f.yaml", "f.yaml", &text, &MemorySource::default(), None, &Validator::new());
        prop_assert!(!reports.is_empty() || parse_documents(&text).is_ok_and(|d| d.is_empty()));
    }

    #[test]
    fn parser_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = parse_documents(&text);
    }

    #[test]
    fn validator_and_catalog_never_panic(mut value in json_value(), kind in prop_oneof![
        Just("Component"), Just("API"), Just("Group"), Just("User"), Just("Template"), Just("Location")]) {
        let _ = Validator::new().validate(&value);
        // And shaped like an entity, so deeper rules run.
        let entity = json!({"apiVersion": if kind == "Template" { "scaffolder.backstage.io/v1beta3" } else { "backstage.io/v1alpha1" },
            "kind": kind, "metadata": {"name": "x"}, "spec": value.clone()});
        let problems = Validator::new().validate(&entity);
        let catalog = InMemoryCatalog::new();
        let report = catalog.apply("p", Mutation::Full(vec![EntityInput::new(entity)]));
        prop_assert_eq!(problems.is_empty(), report.added.len() == 1);
        prop_assert_eq!(report.added.len() + report.rejected.len(), 1);
        let other = InMemoryCatalog::new().apply("p", Mutation::Full(vec![EntityInput::new(value.take())]));
        prop_assert_eq!(other.added.len() + other.rejected.len(), 1);
        for r in &report.added {
            prop_assert!(catalog.snapshot().get(r).is_some());
        }
    }
}
