//! GitHub `pull_request` payloads (written from GitHub's webhook documentation) → events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
use idp_preview::github::{self, UNKNOWN_HEAD_REPO};
use idp_preview::webhook::Delivery;
use proptest::prelude::*;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn event(name: &str) -> PullRequestEvent {
    match github::parse("pull_request", &fixture(name)).unwrap() {
        Delivery::Event(e) => *e,
        Delivery::Ignored { reason } => panic!("{name} ignored: {reason}"),
    }
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[test]
fn opened() {
    let e = event("opened.json");
    assert_eq!(e.forge, Forge::GitHub);
    assert_eq!(e.action, PullRequestAction::Opened);
    assert_eq!(e.repo, "acme/cart");
    assert_eq!(e.number, 42);
    assert_eq!(e.title, "Add login page");
    assert_eq!(e.author, "octocat");
    assert_eq!(e.head_branch, "feature/login");
    assert_eq!(e.head_sha, "9f1c2e7d4b3a29e8f0c1d2e3f4a5b6c7d8e9f0a1");
    assert_eq!(e.head_repo, None);
    assert_eq!(e.base_branch, "main");
    assert_eq!(e.labels.iter().collect::<Vec<_>>(), ["preview"]);
    assert!(!e.draft);
    assert!(e.is_open());
    assert_eq!(e.updated_at, Some(ts("2026-11-25T08:01:02Z")));
}

#[test]
fn synchronize_carries_the_new_head() {
    let e = event("synchronize.json");
    assert_eq!(e.action, PullRequestAction::Synchronize);
    assert_eq!(e.head_sha, "5d41402abc4b2a76b9719d911017c592aabbccdd");
    assert!(e.is_open());
    assert_eq!(e.updated_at, Some(ts("2026-11-25T09:30:00Z")));
}

#[test]
fn closed_merged_and_unmerged() {
    let merged = event("closed_merged.json");
    assert_eq!(merged.action, PullRequestAction::Closed { merged: true });
    assert!(!merged.is_open());
    let unmerged = event("closed_unmerged.json");
    assert_eq!(unmerged.action, PullRequestAction::Closed { merged: false });
    assert!(!unmerged.is_open());
}

#[test]
fn labeled_and_unlabeled_name_the_label() {
    let l = event("labeled.json");
    assert_eq!(
        l.action,
        PullRequestAction::Labeled {
            label: "needs-review".into()
        }
    );
    assert!(l.labels.contains("needs-review") && l.labels.contains("preview"));
    let u = event("unlabeled.json");
    assert_eq!(
        u.action,
        PullRequestAction::Unlabeled {
            label: "preview".into()
        }
    );
    assert!(u.labels.is_empty());
}

#[test]
fn draft_transitions() {
    let d = event("converted_to_draft.json");
    assert_eq!(d.action, PullRequestAction::ConvertedToDraft);
    assert!(d.draft);
    let r = event("ready_for_review.json");
    assert_eq!(r.action, PullRequestAction::ReadyForReview);
    assert!(!r.draft);
}

#[test]
fn a_fork_names_its_head_repository() {
    let e = event("fork_opened.json");
    assert_eq!(e.number, 43);
    assert_eq!(e.repo, "acme/cart");
    assert_eq!(e.head_repo.as_deref(), Some("octocat/cart"));
    assert_eq!(e.head_branch, "main");
}

#[test]
fn a_deleted_fork_is_still_a_fork() {
    let mut v: Value = serde_json::from_slice(&fixture("fork_opened.json")).unwrap();
    v["pull_request"]["head"]["repo"] = Value::Null;
    let d = github::parse("pull_request", &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(
        d.event().unwrap().head_repo.as_deref(),
        Some(UNKNOWN_HEAD_REPO)
    );
}

#[test]
fn a_200_character_cyrillic_branch_survives_intact() {
    let e = event("long_branch_opened.json");
    assert_eq!(e.head_branch.chars().count(), 200);
    assert!(e.head_branch.starts_with("функция-"));
    assert_eq!(e.title, "Длинная ветка");
}

#[test]
fn other_actions_and_events_are_ignored_with_a_reason() {
    match github::parse("pull_request", &fixture("assigned.json")).unwrap() {
        Delivery::Ignored { reason } => assert!(reason.contains("assigned"), "{reason}"),
        Delivery::Event(e) => panic!("assigned became {e:?}"),
    }
    match github::parse("ping", &fixture("ping.json")).unwrap() {
        Delivery::Ignored { reason } => assert!(reason.contains("ping"), "{reason}"),
        Delivery::Event(e) => panic!("ping became {e:?}"),
    }
    match github::parse("push", b"not even json").unwrap() {
        Delivery::Ignored { reason } => assert!(reason.contains("push"), "{reason}"),
        Delivery::Event(e) => panic!("push became {e:?}"),
    }
}

/// Remove the field at `path` (dotted) from the opened fixture and parse.
fn without(path: &str) -> idp_core::Error {
    let mut v: Value = serde_json::from_slice(&fixture("opened.json")).unwrap();
    let (parent, last) = path.rsplit_once('.').map_or(("", path), |(p, l)| (p, l));
    let mut node = &mut v;
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        node = node.get_mut(part).unwrap();
    }
    node.as_object_mut().unwrap().remove(last).unwrap();
    github::parse("pull_request", &serde_json::to_vec(&v).unwrap()).unwrap_err()
}

#[test]
fn errors_name_the_missing_field() {
    for path in [
        "action",
        "repository.full_name",
        "pull_request.head.sha",
        "pull_request.head.ref",
        "pull_request.base.ref",
    ] {
        let err = without(path);
        assert_eq!(err.kind(), idp_core::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains(&format!("`{path}`")),
            "{path}: {err}"
        );
    }
    // `number` falls back to pull_request.number; both gone is an error.
    let mut v: Value = serde_json::from_slice(&fixture("opened.json")).unwrap();
    v.as_object_mut().unwrap().remove("number");
    v["pull_request"].as_object_mut().unwrap().remove("number");
    let err = github::parse("pull_request", &serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.to_string().contains("`pull_request.number`"), "{err}");
}

#[test]
fn errors_name_the_mistyped_field() {
    let mut v: Value = serde_json::from_slice(&fixture("opened.json")).unwrap();
    v["number"] = Value::String("42".into());
    let err = github::parse("pull_request", &serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.to_string().contains("`number`"), "{err}");
    let mut v: Value = serde_json::from_slice(&fixture("opened.json")).unwrap();
    v["pull_request"]["labels"][0]["name"] = Value::Bool(true);
    let err = github::parse("pull_request", &serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("`pull_request.labels[0].name`"),
        "{err}"
    );
}

#[test]
fn a_body_that_is_not_json_is_an_error_with_position() {
    let err = github::parse("pull_request", b"{\"action\": ").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    let err = github::parse("pull_request", b"[1, 2]").unwrap_err();
    assert!(err.to_string().contains("JSON object"), "{err}");
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("opened"),
            Just("closed"),
            Just("labeled"),
            Just("synchronize")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("action".to_owned()),
                    Just("number".to_owned()),
                    Just("pull_request".to_owned()),
                    Just("head".to_owned()),
                    Just("label".to_owned()),
                    Just("name".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = github::parse("pull_request", &body);
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = github::parse("pull_request", &serde_json::to_vec(&v).unwrap());
    }

    /// Deleting any one field of a real payload gives an event or an error naming a field.
    #[test]
    fn deleting_a_field_gives_a_named_error_or_an_event(index in 0usize..400) {
        let mut v: Value = serde_json::from_slice(&fixture("labeled.json")).unwrap();
        let mut paths = Vec::new();
        collect_paths(&v, "", &mut paths);
        let path = &paths[index % paths.len()];
        remove_path(&mut v, path);
        match github::parse("pull_request", &serde_json::to_vec(&v).unwrap()) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.to_string().contains("field `"), "{path}: {e}"),
        }
    }
}

fn collect_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(p.clone());
            collect_paths(child, &p, out);
        }
    }
}

fn remove_path(v: &mut Value, path: &str) {
    let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
    let mut node = v;
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        node = node.get_mut(part).unwrap();
    }
    node.as_object_mut().unwrap().remove(last);
}
