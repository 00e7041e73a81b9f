//! The planner and environment naming.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use idp_core::ErrorKind;
use idp_preview::decision::Decision;
use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
use idp_preview::plan::{
    PlanContext, PreviewConfig, environment_name, glob_match, plan, plan_with,
};
use idp_preview::webhook::Delivery;
use proptest::prelude::*;

fn pr(action: PullRequestAction) -> PullRequestEvent {
    PullRequestEvent::new(Forge::GitHub, action, "acme/cart", 42)
        .with_head("feature/login", "9f1c2e7d")
        .with_base("main")
        .with_label("preview")
}

fn config(yaml: &str) -> PreviewConfig {
    PreviewConfig::from_yaml(yaml).unwrap()
}

fn strict() -> PreviewConfig {
    config(
        "repos: [acme/*]\nrequiredLabels: [preview]\nheadBranches: ['feature/**', 'fix/*']\nbaseBranches: [main, 'release-*']\n",
    )
}

fn is_ensure(d: &Decision) -> bool {
    matches!(d, Decision::Ensure { .. })
}
fn is_destroy(d: &Decision) -> bool {
    matches!(d, Decision::Destroy { .. })
}
fn reason(d: &Decision) -> &str {
    match d {
        Decision::Ignore { reason } | Decision::Destroy { reason, .. } => reason,
        Decision::Ensure { .. } => "",
    }
}

#[test]
fn open_push_reopen_ensure_the_same_environment() {
    let c = strict();
    let names: BTreeSet<_> = [
        PullRequestAction::Opened,
        PullRequestAction::Synchronize,
        PullRequestAction::Reopened,
        PullRequestAction::ReadyForReview,
        PullRequestAction::Labeled {
            label: "preview".into(),
        },
    ]
    .into_iter()
    .map(|a| {
        let d = plan(&pr(a.clone()), &c);
        assert!(is_ensure(&d), "{a:?}: {d:?}");
        d.environment().unwrap().clone()
    })
    .collect();
    assert_eq!(names.len(), 1, "one name across pushes: {names:?}");
}

#[test]
fn closing_destroys_merged_or_not() {
    let c = strict();
    let merged = plan(&pr(PullRequestAction::Closed { merged: true }), &c);
    assert!(is_destroy(&merged) && reason(&merged).contains("merged"));
    let closed = plan(&pr(PullRequestAction::Closed { merged: false }), &c);
    assert!(is_destroy(&closed) && reason(&closed).contains("closed"));
    assert_eq!(
        merged.environment(),
        plan(&pr(PullRequestAction::Opened), &c).environment()
    );
    // Even a closed PR that no longer matches the filters is torn down.
    let mut unlabeled = pr(PullRequestAction::Closed { merged: false });
    unlabeled.labels.clear();
    assert!(is_destroy(&plan(&unlabeled, &c)));
}

#[test]
fn repos_outside_the_config_are_ignored() {
    let mut e = pr(PullRequestAction::Opened);
    e.repo = "other/cart".into();
    let d = plan(&e, &strict());
    assert!(matches!(d, Decision::Ignore { .. }));
    assert!(reason(&d).contains("other/cart"));
    e.repo = "ACME/Cart".into(); // repository names ignore case
    assert!(is_ensure(&plan(&e, &strict())));
}

#[test]
fn required_labels_all_present_and_removal_destroys() {
    let c = config("requiredLabels: [preview, qa]");
    let mut e = pr(PullRequestAction::Opened);
    let d = plan(&e, &c);
    assert!(
        matches!(d, Decision::Ignore { .. }) && reason(&d).contains("qa"),
        "{d:?}"
    );
    e.labels.insert("qa".into());
    assert!(is_ensure(&plan(&e, &c)));
    let mut removed = e.clone();
    removed.action = PullRequestAction::Unlabeled { label: "qa".into() };
    removed.labels.remove("qa");
    let d = plan(&removed, &c);
    assert!(is_destroy(&d) && reason(&d).contains("qa"), "{d:?}");
    // Removing an unrelated label keeps the preview.
    let mut other = e.clone();
    other.action = PullRequestAction::Unlabeled {
        label: "docs".into(),
    };
    assert!(is_ensure(&plan(&other, &c)));
}

#[test]
fn drafts() {
    let c = PreviewConfig::default();
    let mut e = pr(PullRequestAction::Opened);
    e.draft = true;
    assert!(matches!(plan(&e, &c), Decision::Ignore { .. }));
    e.action = PullRequestAction::ConvertedToDraft;
    assert!(is_destroy(&plan(&e, &c)));
    e.action = PullRequestAction::ReadyForReview;
    e.draft = false;
    assert!(is_ensure(&plan(&e, &c)));
    let keep = config("skipDrafts: false");
    let mut d = pr(PullRequestAction::ConvertedToDraft);
    d.draft = true;
    assert!(is_ensure(&plan(&d, &keep)));
}

#[test]
fn branch_patterns() {
    let c = strict();
    let mut e = pr(PullRequestAction::Opened);
    e.head_branch = "feature/a/b".into();
    assert!(is_ensure(&plan(&e, &c)));
    e.head_branch = "fix/a/b".into(); // `*` does not cross `/`
    assert!(matches!(plan(&e, &c), Decision::Ignore { .. }));
    e.head_branch = "fix/a".into();
    e.base_branch = "release-2.0".into();
    assert!(is_ensure(&plan(&e, &c)));
    e.base_branch = "develop".into();
    let d = plan(&e, &c);
    assert!(matches!(d, Decision::Ignore { .. }) && reason(&d).contains("develop"));
    // Retargeting an open PR away from a matching base destroys its preview.
    e.action = PullRequestAction::Edited;
    assert!(is_destroy(&plan(&e, &c)));
}

#[test]
fn forks_need_allow_forks() {
    let mut e = pr(PullRequestAction::Opened);
    e.head_repo = Some("octocat/cart".into());
    let d = plan(&e, &PreviewConfig::default());
    assert!(matches!(d, Decision::Ignore { .. }) && reason(&d).contains("fork"));
    assert!(is_ensure(&plan(&e, &config("allowForks: true"))));
}

#[test]
fn the_cap_ignores_new_previews_and_never_evicts() {
    let c = config("maxPreviewsPerRepo: 3");
    let e = pr(PullRequestAction::Opened);
    let below = PlanContext {
        open_previews: 2,
        has_preview: false,
    };
    assert!(is_ensure(&plan_with(&e, &c, &below)));
    let at = PlanContext {
        open_previews: 3,
        has_preview: false,
    };
    let d = plan_with(&e, &c, &at);
    assert!(matches!(d, Decision::Ignore { .. }), "{d:?}");
    assert!(reason(&d).contains('3') && reason(&d).contains("maxPreviewsPerRepo"));
    // An existing preview is still updated at the cap, and closing always destroys.
    let mine = PlanContext {
        open_previews: 3,
        has_preview: true,
    };
    assert!(is_ensure(&plan_with(
        &pr(PullRequestAction::Synchronize),
        &c,
        &mine
    )));
    assert!(is_destroy(&plan_with(
        &pr(PullRequestAction::Closed { merged: false }),
        &c,
        &at
    )));
}

#[test]
fn config_errors_are_clear() {
    let err = PreviewConfig::from_yaml("repos: acme/cart\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = PreviewConfig::from_yaml("skipDrafts: true\nmaxPreviews: 3\n").unwrap_err();
    assert!(err.to_string().contains("maxPreviews"), "{err}");
    let err = PreviewConfig::from_yaml("prefix: PR_\n").unwrap_err();
    assert!(err.to_string().contains("prefix"), "{err}");
    let err = PreviewConfig::from_yaml(&format!("prefix: {}\n", "p".repeat(21))).unwrap_err();
    assert!(err.to_string().contains("longer"), "{err}");
    let err = PreviewConfig::from_yaml("maxPreviewsPerRepo: 0\n").unwrap_err();
    assert!(err.to_string().contains("maxPreviewsPerRepo"), "{err}");
    let err = PreviewConfig::from_yaml("headBranches: ['']\n").unwrap_err();
    assert!(err.to_string().contains("headBranches[0]"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preview.yaml");
    std::fs::write(&path, "repos: [acme/*]\n\nbogus: 1\n").unwrap();
    let err = PreviewConfig::load(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("preview.yaml") && text.contains("bogus"),
        "{text}"
    );
}

#[test]
fn names_are_labels_with_the_number_intact() {
    let n = environment_name("pr", "acme/cart", 42).unwrap();
    let s = n.as_str();
    assert!(s.starts_with("pr-cart-") && s.ends_with("-42"), "{s}");
    assert_eq!(s.len(), "pr-cart-".len() + 6 + "-42".len());
    // Long and non-Latin repository names.
    let long = environment_name(
        "preview-env",
        &format!("acme/{}", "very-long-name".repeat(10)),
        u64::MAX,
    )
    .unwrap();
    assert!(long.as_str().len() <= 63);
    assert!(long.as_str().ends_with(&format!("-{}", u64::MAX)));
    let cyr = environment_name("pr", "команда/корзина", 7).unwrap();
    assert!(cyr.as_str().starts_with("pr-") && cyr.as_str().ends_with("-7"));
    // No prefix.
    let bare = environment_name("", "acme/cart", 1).unwrap();
    assert!(bare.as_str().starts_with("cart-"));
}

#[test]
fn names_from_real_payloads_with_200_character_branches() {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/github/long_branch_opened.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let Delivery::Event(e) = idp_preview::github::parse("pull_request", &body).unwrap() else {
        panic!()
    };
    let d = plan(&e, &PreviewConfig::default());
    let name = d.environment().unwrap();
    assert_eq!(name, &environment_name("pr", "acme/cart", 44).unwrap());
}

fn repo_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,20}/[a-z0-9._-]{1,40}",
        "[a-z]{1,5}(/[a-z]{1,5}){1,3}",
        "\\PC{1,12}/\\PC{1,80}",
    ]
}

proptest! {
    #[test]
    fn every_name_is_a_valid_label_ending_in_the_number(
        prefix in "([a-z]([a-z0-9-]{0,18}[a-z0-9])?)?",
        repo in repo_strategy(),
        number in any::<u64>(),
    ) {
        let name = environment_name(&prefix, &repo, number).unwrap();
        let s = name.as_str();
        prop_assert!(s.len() <= 63);
        prop_assert!(idp_core::DnsLabel::new(s).is_ok(), "{s}");
        let suffix = format!("-{number}");
        prop_assert!(s.ends_with(&suffix));
        // Stable: the same inputs give the same name.
        prop_assert_eq!(&name, &environment_name(&prefix, &repo, number).unwrap());
    }

    #[test]
    fn distinct_repo_and_number_give_distinct_names(
        a in repo_strategy(), b in repo_strategy(), n in 1u64..100_000, m in 1u64..100_000,
    ) {
        prop_assume!(a.to_lowercase() != b.to_lowercase() || n != m);
        prop_assert_ne!(environment_name("pr", &a, n).unwrap(), environment_name("pr", &b, m).unwrap());
    }

    #[test]
    fn globs_without_wildcards_match_only_themselves(text in "[a-z/._-]{0,30}", other in "[a-z/._-]{0,30}") {
        prop_assert!(glob_match(&text, &text));
        prop_assert_eq!(glob_match(&text, &other), text == other);
        prop_assert!(glob_match("**", &text));
        prop_assert_eq!(glob_match("*", &text), !text.contains('/'));
    }

    #[test]
    fn a_star_in_a_prefix_pattern_matches_one_segment(prefix in "[a-z]{1,8}", rest in "[a-z/]{0,20}") {
        let text = format!("{prefix}/{rest}");
        let one = format!("{prefix}/*");
        let any = format!("{prefix}/**");
        prop_assert_eq!(glob_match(&one, &text), !rest.contains('/'));
        prop_assert!(glob_match(&any, &text));
    }

    /// Repositories whose slugs collide still get different names.
    #[test]
    fn slug_collisions_are_separated_by_the_hash(owner in "[a-z]{1,8}", name in "[a-z]{1,8}", n in 1u64..1000) {
        let a = format!("{owner}/{name}");
        let b = format!("{owner}-x/{name}");
        let c = format!("{owner}/{name}.js");
        let d = format!("{owner}/{name}-js");
        let names: BTreeSet<_> = [&a, &b, &c, &d].iter().map(|r| environment_name("pr", r, n).unwrap()).collect();
        prop_assert_eq!(names.len(), 4);
    }
}
