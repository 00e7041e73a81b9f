//! GitLab merge request hooks (written from GitLab's webhook documentation) → events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
use idp_preview::gitlab;
use idp_preview::webhook::Delivery;
use proptest::prelude::*;
use serde_json::Value;

const HOOK: &str = "Merge Request Hook";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/gitlab/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn event(name: &str) -> PullRequestEvent {
    match gitlab::parse(HOOK, &fixture(name)).unwrap() {
        Delivery::Event(e) => *e,
        Delivery::Ignored { reason } => panic!("{name} ignored: {reason}"),
    }
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

#[test]
fn open() {
    let e = event("open.json");
    assert_eq!(e.forge, Forge::GitLab);
    assert_eq!(e.action, PullRequestAction::Opened);
    assert_eq!(e.repo, "shop/platform/cart");
    assert_eq!(e.number, 7);
    assert_eq!(e.title, "Add login page");
    assert_eq!(e.author, "ann");
    assert_eq!(e.head_branch, "feature/login");
    assert_eq!(e.head_sha, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    assert_eq!(e.head_repo, None);
    assert_eq!(e.base_branch, "main");
    assert_eq!(e.labels.iter().collect::<Vec<_>>(), ["preview"]);
    assert!(!e.draft);
    assert!(e.is_open());
    assert_eq!(
        e.updated_at,
        Some("2026-11-25T08:01:02Z".parse::<jiff::Timestamp>().unwrap())
    );
}

#[test]
fn update_with_new_commits_is_synchronize() {
    let e = event("update_push.json");
    assert_eq!(e.action, PullRequestAction::Synchronize);
    assert_eq!(e.head_sha, "6f1ed002ab5595859014ebf0951522d9e4fa8f1c");
}

#[test]
fn update_without_oldrev_is_not_synchronize() {
    let mut v = json("update_push.json");
    v["object_attributes"]
        .as_object_mut()
        .unwrap()
        .remove("oldrev");
    let d = gitlab::parse(HOOK, &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(d.event().unwrap().action, PullRequestAction::Edited);
}

#[test]
fn close_and_merge() {
    let c = event("close.json");
    assert_eq!(c.action, PullRequestAction::Closed { merged: false });
    assert!(!c.is_open());
    let m = event("merge.json");
    assert_eq!(m.action, PullRequestAction::Closed { merged: true });
    assert!(!m.is_open());
}

#[test]
fn label_changes_come_from_changes_labels() {
    let l = event("update_labeled.json");
    assert_eq!(
        l.action,
        PullRequestAction::Labeled {
            label: "needs-review".into()
        }
    );
    assert_eq!(l.labels.len(), 2);
    let u = event("update_unlabeled.json");
    assert_eq!(
        u.action,
        PullRequestAction::Unlabeled {
            label: "preview".into()
        }
    );
    assert!(u.labels.is_empty());
}

#[test]
fn other_updates_are_edits_and_draft_changes_are_recognised() {
    assert_eq!(event("update_title.json").action, PullRequestAction::Edited);
    let d = event("update_draft.json");
    assert_eq!(d.action, PullRequestAction::ConvertedToDraft);
    assert!(d.draft);
    let mut v = json("update_draft.json");
    v["changes"]["draft"]["current"] = Value::Bool(false);
    v["object_attributes"]["draft"] = Value::Bool(false);
    v["object_attributes"]["work_in_progress"] = Value::Bool(false);
    let r = gitlab::parse(HOOK, &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(r.event().unwrap().action, PullRequestAction::ReadyForReview);
    assert!(!r.event().unwrap().draft);
}

#[test]
fn work_in_progress_alone_marks_a_draft() {
    let mut v = json("open.json");
    v["object_attributes"]
        .as_object_mut()
        .unwrap()
        .remove("draft");
    v["object_attributes"]["work_in_progress"] = Value::Bool(true);
    let d = gitlab::parse(HOOK, &serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(d.event().unwrap().draft);
}

#[test]
fn a_fork_names_its_source_project() {
    let e = event("fork_open.json");
    assert_eq!(e.repo, "shop/platform/cart");
    assert_eq!(e.head_repo.as_deref(), Some("ann/cart"));
}

#[test]
fn a_200_character_cjk_branch_survives_intact() {
    let e = event("long_branch_open.json");
    assert_eq!(e.head_branch.chars().count(), 200);
    assert!(e.head_branch.starts_with("预览环境"));
}

#[test]
fn approvals_and_other_hooks_are_ignored() {
    match gitlab::parse(HOOK, &fixture("approved.json")).unwrap() {
        Delivery::Ignored { reason } => assert!(reason.contains("approved"), "{reason}"),
        Delivery::Event(e) => panic!("approved became {e:?}"),
    }
    assert!(matches!(
        gitlab::parse("Push Hook", b"{}").unwrap(),
        Delivery::Ignored { .. }
    ));
    // A system hook about something else.
    assert!(matches!(
        gitlab::parse("System Hook", br#"{"object_kind": "push"}"#).unwrap(),
        Delivery::Ignored { .. }
    ));
    // A system hook about a merge request is read.
    assert!(
        gitlab::parse("System Hook", &fixture("open.json"))
            .unwrap()
            .event()
            .is_some()
    );
}

#[test]
fn errors_name_the_field() {
    for (parent, key, path) in [
        ("object_attributes", "iid", "object_attributes.iid"),
        (
            "object_attributes",
            "source_branch",
            "object_attributes.source_branch",
        ),
        (
            "object_attributes",
            "last_commit",
            "object_attributes.last_commit.id",
        ),
        ("object_attributes", "action", "object_attributes.action"),
    ] {
        let mut v = json("open.json");
        v[parent].as_object_mut().unwrap().remove(key);
        let err = gitlab::parse(HOOK, &serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains(&format!("`{path}`")),
            "{path}: {err}"
        );
    }
    let mut v = json("open.json");
    v["object_attributes"]["iid"] = Value::from(-3);
    let err = gitlab::parse(HOOK, &serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.to_string().contains("`object_attributes.iid`"), "{err}");
}

#[test]
fn both_gitlab_time_formats_are_read() {
    let mut v = json("open.json");
    v["object_attributes"]["updated_at"] = Value::String("2026-11-25T08:01:02Z".into());
    let d = gitlab::parse(HOOK, &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(
        d.event().unwrap().updated_at,
        Some("2026-11-25T08:01:02Z".parse().unwrap())
    );
    v["object_attributes"]["updated_at"] = Value::String("yesterday".into());
    let d = gitlab::parse(HOOK, &serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(d.event().unwrap().updated_at, None);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = gitlab::parse(HOOK, &body);
    }

    #[test]
    fn arbitrary_strings_in_every_field_never_panic(index in 0usize..400, s in ".{0,20}", n in any::<i64>()) {
        let mut v = json("update_labeled.json");
        let mut paths = Vec::new();
        collect_paths(&v, "", &mut paths);
        let path = &paths[index % paths.len()];
        let replacement = if index % 2 == 0 { Value::String(s) } else { Value::from(n) };
        set_path(&mut v, path, replacement);
        match gitlab::parse(HOOK, &serde_json::to_vec(&v).unwrap()) {
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

fn set_path(v: &mut Value, path: &str, value: Value) {
    let mut node = v;
    for part in path.split('.') {
        node = node.get_mut(part).unwrap();
    }
    *node = value;
}
