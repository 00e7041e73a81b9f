//! Property tests for `idp_core::manifest`: parsing never panics, output round-trips,
//! hostile YAML is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;

use idp_core::manifest::{ManifestSet, Object, ParseLimits};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Strings that YAML likes to misread: booleans, nulls, numbers, indicators, markers.
const TRICKY: &[&str] = &[
    "",
    " ",
    "y",
    "n",
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "0",
    "-1",
    "1.0",
    "1e3",
    ".inf",
    "-.Inf",
    ".nan",
    "0x1F",
    "0o17",
    "0755",
    "1_000",
    "2024-01-01",
    "12:30",
    "---",
    "...",
    "- a",
    "? a",
    ": a",
    "a: b",
    "a #b",
    "#c",
    "&a",
    "*a",
    "!tag",
    "%YAML",
    "@",
    "`",
    "|",
    ">",
    "'",
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    "<<",
    "=",
    "a\nb",
    "\n",
    "\ttab",
    "trailing ",
    " leading",
    "back\\slash",
    "grüße",
    "🚀",
    "\u{85}",
    "\u{2028}",
    "\u{feff}x",
    "\u{7f}",
    "\u{1}",
];

fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(TRICKY).prop_map(str::to_owned),
        3 => "[a-z0-9.-]{1,12}",
        2 => any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        tricky_string().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(tricky_string(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn string_map() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(tricky_string(), tricky_string(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
}

fn object() -> impl Strategy<Value = Object> {
    (
        proptest::sample::select(&["v1", "apps/v1", "example.com/v1alpha1"][..]),
        proptest::sample::select(
            &[
                "ConfigMap",
                "Deployment",
                "Namespace",
                "Widget",
                "CustomResourceDefinition",
            ][..],
        ),
        tricky_string().prop_filter("a name is not empty", |s| !s.is_empty()),
        proptest::option::of(tricky_string()),
        string_map(),
        string_map(),
        prop::collection::btree_map("[a-z]{1,8}", json_value(), 0..4),
    )
        .prop_map(
            |(api_version, kind, name, namespace, labels, annotations, rest)| {
                let mut metadata = Map::new();
                metadata.insert("name".into(), Value::String(name));
                if let Some(namespace) = namespace {
                    metadata.insert("namespace".into(), Value::String(namespace));
                }
                metadata.insert("labels".into(), labels);
                metadata.insert("annotations".into(), annotations);
                let mut map: Map<String, Value> = rest
                    .into_iter()
                    .filter(|(k, _)| !["apiversion", "kind", "metadata"].contains(&k.as_str()))
                    .collect();
                map.insert("apiVersion".into(), Value::String(api_version.to_owned()));
                map.insert("kind".into(), Value::String(kind.to_owned()));
                map.insert("metadata".into(), Value::Object(metadata));
                Object::from_value(Value::Object(map)).unwrap()
            },
        )
}

/// YAML-ish fragments, so arbitrary input reaches past the first syntax error.
fn yamlish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        proptest::sample::select(
            &[
                "---\n",
                "...\n",
                "apiVersion: v1\n",
                "kind: List\n",
                "kind: ConfigMap\n",
                "metadata:\n",
                "  name: a\n",
                "items:\n",
                "- ",
                "  ",
                "{",
                "}",
                "[",
                "]",
                ", ",
                ": ",
                "&a ",
                "*a ",
                "<<: ",
                "!!str ",
                "|\n",
                ">-\n",
                "\"",
                "'",
                "#x\n",
                "\n",
                "\t",
                "~",
                "null",
                "%YAML 1.2\n",
                "? ",
                "\u{feff}",
                "\u{ff}",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        "[a-z0-9]{1,4}".prop_map(String::into_bytes),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(token, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ManifestSet::parse(&bytes, None);
    }

    #[test]
    fn parse_never_panics_on_yamlish_input(bytes in yamlish()) {
        if let Err(err) = ManifestSet::parse(&bytes, Some("x.yaml".as_ref())) {
            // Every error says where.
            prop_assert!(err.to_string().starts_with("x.yaml:"), "{}", err);
        }
    }

    #[test]
    fn json_lookalikes_never_panic(bytes in yamlish()) {
        let mut input = b"[".to_vec();
        input.extend(bytes);
        let _ = ManifestSet::parse(&input, Some("x.json".as_ref()));
        let _ = ManifestSet::parse(&input, None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn yaml_round_trips(objects in prop::collection::vec(object(), 0..4)) {
        let set: ManifestSet = objects.into_iter().collect();
        let yaml = set.to_yaml().unwrap();
        let again = ManifestSet::parse(yaml.as_bytes(), None)
            .unwrap_or_else(|e| panic!("{e}\n--- yaml ---\n{yaml}"));
        prop_assert_eq!(&again, &set, "yaml:\n{}", yaml);
        for (i, object) in again.iter().enumerate() {
            prop_assert_eq!(object.source().unwrap().document, i);
        }
    }

    #[test]
    fn json_round_trips(objects in prop::collection::vec(object(), 0..4)) {
        let set: ManifestSet = objects.into_iter().collect();
        let json = set.to_json().unwrap();
        let again = ManifestSet::parse(json.as_bytes(), Some("set.json".as_ref())).unwrap();
        prop_assert_eq!(again, set);
    }

    #[test]
    fn apply_order_is_a_stable_permutation(objects in prop::collection::vec(object(), 0..8)) {
        let set: ManifestSet = objects.into_iter().collect();
        let order = set.apply_order();
        prop_assert_eq!(order.len(), set.len());
        let ranks: Vec<_> = order.iter().map(|o| idp_core::manifest::apply_rank(o.kind())).collect();
        prop_assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
        let mut delete = set.delete_order();
        delete.reverse();
        prop_assert_eq!(delete, order);
    }
}

/// ~1 KB of YAML that would expand to 10^9 scalars.
fn billion_laughs(levels: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..levels {
        let refs = vec![format!("*l{}", level - 1); 10].join(",");
        writeln!(yaml, "  l{level}: &l{level} [{refs}]").unwrap();
    }
    yaml
}

#[test]
fn billion_laughs_is_rejected_with_a_clear_error() {
    for levels in [9, 10] {
        let yaml = billion_laughs(levels);
        assert!(yaml.len() < 1200, "{} bytes", yaml.len());
        let err = ManifestSet::parse(yaml.as_bytes(), Some("lol.yaml".as_ref())).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("lol.yaml:"), "{text}");
        assert!(text.contains("alias"), "{text}");
        assert!(text.contains("limit"), "{text}");
    }
}

#[test]
fn alias_expansion_within_limits_is_fine() {
    // Three levels expand to 1,000 scalars: well under the default limit, over a tiny one.
    let yaml = billion_laughs(3);
    let set = ManifestSet::parse(yaml.as_bytes(), None).unwrap();
    assert_eq!(set.len(), 1);
    let expanded = set.objects()[0].pointer("/data/l2").unwrap();
    assert_eq!(expanded.as_array().unwrap().len(), 10);
    let tight = ParseLimits::default().with_max_alias_expansion(50);
    assert!(ManifestSet::parse_with(yaml.as_bytes(), None, &tight).is_err());
}
