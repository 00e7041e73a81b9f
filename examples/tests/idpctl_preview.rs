//! `idpctl preview plan|verify` through the real binary, with the webhook payloads
//! idp-preview's tests use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

use common::{IDPCTL, idpctl, json, write};
use serde_json::Value;

fn fixture(path: &str) -> String {
    format!(
        "{}/../idp-preview/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn plan_an_opened_pull_request() {
    let payload = fixture("github/opened.json");
    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--event",
        "pull_request",
        "--payload",
        &payload,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let row = json(&out);
    assert_eq!(row["action"], "ensure");
    let env = row["environment"].as_str().unwrap();
    assert!(env.starts_with("pr-cart-") && env.ends_with("-42"), "{env}");
    assert_eq!(row["namespace"], env);
    assert_eq!(row["repo"], "acme/cart");
    assert_eq!(row["pr"], 42);
    assert_eq!(row["head_sha"], "9f1c2e7d4b3a29e8f0c1d2e3f4a5b6c7d8e9f0a1");
    assert_eq!(row["reason"], Value::Null);

    // The same pull request after a push: same environment, new SHA.
    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--payload",
        &fixture("github/synchronize.json"),
        "--format",
        "json",
    ]);
    let sync = json(&out);
    assert_eq!(sync["action"], "ensure");
    assert_eq!(sync["environment"], env);
    assert_eq!(sync["head_sha"], "5d41402abc4b2a76b9719d911017c592aabbccdd");

    // The table form says the same for people.
    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--payload",
        &payload,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("ensure acme/cart#42 at 9f1c2e7d4b3a"),
        "{text}"
    );
    assert!(text.contains(env), "{text}");
}

#[test]
fn plan_closing_and_ignored_deliveries() {
    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--payload",
        &fixture("github/closed_merged.json"),
        "--format",
        "json",
    ]);
    let row = json(&out);
    assert_eq!(row["action"], "destroy");
    assert!(row["reason"].as_str().unwrap().contains("merged"));

    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--payload",
        &fixture("github/assigned.json"),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let row = json(&out);
    assert_eq!(row["action"], "ignore");
    assert_eq!(row["environment"], Value::Null);
    assert!(row["reason"].as_str().unwrap().contains("assigned"));

    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--event",
        "ping",
        "--payload",
        &fixture("github/ping.json"),
        "--format",
        "json",
    ]);
    assert_eq!(json(&out)["action"], "ignore");
}

#[test]
fn plan_with_a_config_and_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "preview.yaml",
        "repos: ['shop/**']\nrequiredLabels: [preview, qa]\nmaxPreviewsPerRepo: 2\nprefix: mr\n",
    );
    let payload = fixture("gitlab/open.json");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "preview",
            "plan",
            "--provider",
            "gitlab",
            "--payload",
            payload.as_str(),
            "--config",
            config.as_str(),
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        idpctl(&a)
    };
    let row = json(&args(&[]));
    assert_eq!(row["action"], "ignore");
    assert!(row["reason"].as_str().unwrap().contains("qa"), "{row}");
    assert_eq!(row["pr"], 7);

    let relaxed = write(
        dir.path(),
        "relaxed.yaml",
        "maxPreviewsPerRepo: 2\nprefix: mr\n",
    );
    let run = |extra: &[&str]| {
        let mut a = vec![
            "preview",
            "plan",
            "--provider",
            "gitlab",
            "--payload",
            payload.as_str(),
            "--config",
            relaxed.as_str(),
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        json(&idpctl(&a))
    };
    let row = run(&[]);
    assert_eq!(row["action"], "ensure");
    assert!(row["environment"].as_str().unwrap().starts_with("mr-cart-"));
    let full = run(&["--open-previews", "2"]);
    assert_eq!(full["action"], "ignore");
    assert!(
        full["reason"]
            .as_str()
            .unwrap()
            .contains("maxPreviewsPerRepo")
    );
    assert_eq!(
        run(&["--open-previews", "2", "--has-preview"])["action"],
        "ensure"
    );
}

#[test]
fn plan_errors_exit_2_and_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let bad_config = write(dir.path(), "bad.yaml", "repos: [a/b]\nmaxPreviews: 3\n");
    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--payload",
        &fixture("github/opened.json"),
        "--config",
        &bad_config,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("maxPreviews") && stderr(&out).contains("bad.yaml"),
        "{}",
        stderr(&out)
    );

    let broken = write(
        dir.path(),
        "broken.json",
        r#"{"action": "opened", "number": 1}"#,
    );
    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--payload",
        &broken,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`repository.full_name`"),
        "{}",
        stderr(&out)
    );

    let out = idpctl(&[
        "preview",
        "plan",
        "--provider",
        "github",
        "--payload",
        "/nonexistent.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent.json"));
}

#[test]
fn verify_github_signatures() {
    let dir = tempfile::tempdir().unwrap();
    // GitHub's documented example.
    let body = write(dir.path(), "body.txt", "Hello, World!");
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let secret = "It's a Secret to Everybody";
    let out = idpctl(&[
        "preview",
        "verify",
        "--provider",
        "github",
        "--secret",
        secret,
        "--signature",
        good,
        "--payload",
        &body,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("valid"));

    let out = idpctl(&[
        "preview",
        "verify",
        "--provider",
        "github",
        "--secret",
        "another secret",
        "--signature",
        good,
        "--payload",
        &body,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid"), "{}", stderr(&out));

    let out = idpctl(&[
        "preview",
        "verify",
        "--provider",
        "github",
        "--secret",
        secret,
        "--signature",
        "sha1=abc",
        "--payload",
        &body,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("malformed"), "{}", stderr(&out));

    // Too large for --max-body, even with the right signature.
    let out = idpctl(&[
        "preview",
        "verify",
        "--provider",
        "github",
        "--secret",
        secret,
        "--signature",
        good,
        "--payload",
        &body,
        "--max-body",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("limit"), "{}", stderr(&out));

    // The secret from the environment, a real payload signed by openssl when installed.
    let payload = fixture("github/opened.json");
    if let Ok(o) = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl dgst -sha256 -hmac hook-secret < '{payload}'"
        ))
        .output()
        && o.status.success()
    {
        let text = String::from_utf8(o.stdout).unwrap();
        let sig = format!("sha256={}", text.split_whitespace().last().unwrap());
        let out = Command::new(IDPCTL)
            .args([
                "preview",
                "verify",
                "--provider",
                "github",
                "--signature",
                &sig,
                "--payload",
                &payload,
            ])
            .env("IDP_WEBHOOK_SECRET", "hook-secret")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

#[test]
fn verify_gitlab_tokens() {
    let payload = fixture("gitlab/open.json");
    let ok = idpctl(&[
        "preview",
        "verify",
        "--provider",
        "gitlab",
        "--secret",
        "tok3n",
        "--signature",
        "tok3n",
        "--payload",
        &payload,
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let bad = idpctl(&[
        "preview",
        "verify",
        "--provider",
        "gitlab",
        "--secret",
        "tok3n",
        "--signature",
        "tok3",
        "--payload",
        &payload,
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("X-Gitlab-Token"), "{}", stderr(&bad));
}
