//! Webhook verification: size limit first, then the signature, before any parsing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use idp_core::ErrorKind;
use idp_preview::event::Forge;
use idp_preview::verify::{
    DEFAULT_MAX_BODY, VerifyError, WebhookVerifier, github_signature, verify_github, verify_gitlab,
};
use idp_preview::webhook::{Delivery, WebhookHandler};
use proptest::prelude::*;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The signature computed by the `openssl` CLI, an implementation independent of ours;
/// `None` when openssl is not installed.
fn openssl_signature(secret: &str, body: &[u8]) -> Option<String> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(body).ok()?;
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let hex = text.split_whitespace().last()?.to_owned();
    (hex.len() == 64).then(|| format!("sha256={hex}"))
}

#[test]
fn githubs_documented_test_vector() {
    // From GitHub's "Validating webhook deliveries" page.
    let secret = b"It's a Secret to Everybody";
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    verify_github(secret, Some(sig), b"Hello, World!").unwrap();
    assert_eq!(github_signature(secret, b"Hello, World!"), sig);
    // Upper-case hex is the same digest.
    verify_github(
        secret,
        Some(&sig.to_uppercase().replace("SHA256=", "sha256=")),
        b"Hello, World!",
    )
    .unwrap();
}

#[test]
fn a_real_payload_signed_by_openssl_verifies() {
    let body = fixture("github/opened.json");
    let Some(sig) = openssl_signature("s3cr3t-für-tests", &body) else {
        eprintln!("openssl not installed: checking against ring only");
        return;
    };
    assert_eq!(sig, github_signature("s3cr3t-für-tests".as_bytes(), &body));
    verify_github("s3cr3t-für-tests".as_bytes(), Some(&sig), &body).unwrap();
    let v = WebhookVerifier::new(Forge::GitHub, "s3cr3t-für-tests").unwrap();
    v.verify(Some(&sig), &body).unwrap();
}

#[test]
fn wrong_missing_and_malformed_github_signatures_are_rejected() {
    let body = fixture("github/opened.json");
    let good = github_signature(b"right", &body);
    assert!(matches!(
        verify_github(b"wrong", Some(&good), &body),
        Err(VerifyError::Mismatch { .. })
    ));
    let mut altered = body.clone();
    altered[10] ^= 1;
    assert!(matches!(
        verify_github(b"right", Some(&good), &altered),
        Err(VerifyError::Mismatch { .. })
    ));
    assert!(matches!(
        verify_github(b"right", None, &body),
        Err(VerifyError::MissingSignature { .. })
    ));
    for bad in [
        "",
        "sha256=",
        "sha1=0123456789abcdef0123456789abcdef01234567",
        &good[7..],                            // no prefix
        &good[..good.len() - 1],               // 63 digits
        &format!("{good}0"),                   // 65 digits
        &good.replace('a', "g"),               // not hex
        &format!("sha256={}", "é".repeat(32)), // 64 bytes, not hex
    ] {
        let got = verify_github(b"right", Some(bad), &body);
        assert!(
            matches!(got, Err(VerifyError::MalformedSignature { .. })),
            "{bad:?}: {got:?}"
        );
    }
    assert!(matches!(
        verify_github(b"", Some(&good), &body),
        Err(VerifyError::NoSecret)
    ));
}

#[test]
fn gitlab_tokens() {
    verify_gitlab(b"glpat-token", Some("glpat-token")).unwrap();
    for bad in ["", "glpat-toke", "glpat-tokenn", "GLPAT-TOKEN"] {
        assert!(matches!(
            verify_gitlab(b"glpat-token", Some(bad)),
            Err(VerifyError::Mismatch { .. })
        ));
    }
    assert!(matches!(
        verify_gitlab(b"glpat-token", None),
        Err(VerifyError::MissingSignature { .. })
    ));
    assert!(WebhookVerifier::new(Forge::GitLab, "").is_err());
}

#[test]
fn the_size_limit_is_checked_before_the_signature() {
    let v = WebhookVerifier::new(Forge::GitHub, "s").unwrap();
    assert_eq!(v.body_limit(), DEFAULT_MAX_BODY);
    let big = vec![b' '; DEFAULT_MAX_BODY + 1];
    // Even a correct signature does not help an oversized body.
    let sig = github_signature(b"s", &big);
    assert!(matches!(
        v.verify(Some(&sig), &big),
        Err(VerifyError::BodyTooLarge { size, limit }) if size == DEFAULT_MAX_BODY + 1 && limit == DEFAULT_MAX_BODY
    ));
    // And an oversized unsigned body is "too large", not "unsigned".
    assert!(matches!(
        v.verify(None, &big),
        Err(VerifyError::BodyTooLarge { .. })
    ));
    let exact = vec![b' '; DEFAULT_MAX_BODY];
    v.verify(Some(&github_signature(b"s", &exact)), &exact)
        .unwrap();
    let small = WebhookVerifier::new(Forge::GitLab, "t")
        .unwrap()
        .max_body(10);
    assert!(small.verify(Some("t"), &[0; 11]).is_err());
    small.verify(Some("t"), &[0; 10]).unwrap();
}

#[test]
fn errors_convert_with_useful_kinds() {
    let e: idp_core::Error = VerifyError::BodyTooLarge { size: 2, limit: 1 }.into();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e: idp_core::Error = VerifyError::Mismatch {
        header: "X-Hub-Signature-256",
    }
    .into();
    assert_eq!(e.kind(), ErrorKind::Denied);
    assert!(e.to_string().contains("X-Hub-Signature-256"));
}

#[test]
fn the_handler_rejects_before_parsing() {
    let h = WebhookHandler::new(WebhookVerifier::new(Forge::GitHub, "hook-secret").unwrap());
    let body = fixture("github/opened.json");
    let sig = github_signature(b"hook-secret", &body);
    let headers = vec![
        ("x-github-event".to_owned(), "pull_request".to_owned()),
        ("X-HUB-SIGNATURE-256".to_owned(), sig.clone()),
    ];
    let d = h.handle(&headers, &body).unwrap();
    assert_eq!(d.event().unwrap().number, 42);

    // Garbage with a missing signature: the error is about the signature, not the JSON.
    let garbage = b"{ not json";
    let err = h
        .handle(&[("X-GitHub-Event", "pull_request")][..], garbage)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(err.to_string().contains("X-Hub-Signature-256"), "{err}");
    // Garbage correctly signed reaches the parser and fails there.
    let sig = github_signature(b"hook-secret", garbage);
    let err = h
        .handle(
            &[
                ("X-GitHub-Event", "pull_request"),
                ("X-Hub-Signature-256", sig.as_str()),
            ][..],
            garbage,
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("not valid JSON"), "{err}");

    // No event header.
    let sig = github_signature(b"hook-secret", &body);
    let err = h
        .handle(&[("X-Hub-Signature-256", sig.as_str())][..], &body)
        .unwrap_err();
    assert!(err.to_string().contains("X-GitHub-Event"), "{err}");

    // An http::HeaderMap works too.
    let mut map = http::HeaderMap::new();
    map.insert("x-github-event", "pull_request".parse().unwrap());
    map.insert("x-hub-signature-256", sig.parse().unwrap());
    assert!(matches!(h.handle(&map, &body).unwrap(), Delivery::Event(_)));
}

#[test]
fn the_gitlab_handler() {
    let h = WebhookHandler::new(WebhookVerifier::new(Forge::GitLab, "tok").unwrap());
    let body = fixture("gitlab/open.json");
    let ok = [
        ("X-Gitlab-Event", "Merge Request Hook"),
        ("X-Gitlab-Token", "tok"),
    ];
    assert_eq!(h.handle(&ok[..], &body).unwrap().event().unwrap().number, 7);
    let bad = [
        ("X-Gitlab-Event", "Merge Request Hook"),
        ("X-Gitlab-Token", "tok2"),
    ];
    assert_eq!(
        h.handle(&bad[..], &body).unwrap_err().kind(),
        ErrorKind::Denied
    );
}

proptest! {
    /// Whatever the header says, verification answers without panicking, and only the
    /// real signature passes.
    #[test]
    fn only_the_real_signature_passes(header in ".{0,80}", body in prop::collection::vec(any::<u8>(), 0..256)) {
        let real = github_signature(b"k", &body);
        let got = verify_github(b"k", Some(&header), &body);
        prop_assert_eq!(
            got.is_ok(),
            header.trim().strip_prefix("sha256=").is_some_and(|h| h.eq_ignore_ascii_case(&real[7..]))
        );
    }

    #[test]
    fn a_flipped_bit_fails(body in prop::collection::vec(any::<u8>(), 1..256), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let sig = github_signature(b"k", &body);
        let mut altered = body.clone();
        altered[at.index(body.len())] ^= 1 << bit;
        prop_assert!(verify_github(b"k", Some(&sig), &altered).is_err());
    }
}

proptest! {
    /// The handler never panics, and nothing unsigned gets through to an event.
    #[test]
    fn the_handler_never_accepts_a_forged_delivery(
        event in prop_oneof![Just("pull_request".to_owned()), ".{0,20}"],
        sig in ".{0,80}",
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let h = WebhookHandler::new(WebhookVerifier::new(Forge::GitHub, "k").unwrap());
        let headers = [("X-GitHub-Event", event.as_str()), ("X-Hub-Signature-256", sig.as_str())];
        if h.handle(&headers[..], &body).is_ok() {
            prop_assert_eq!(sig.trim(), github_signature(b"k", &body));
        }
        let gl = WebhookHandler::new(WebhookVerifier::new(Forge::GitLab, "tok").unwrap());
        let headers = [("X-Gitlab-Event", "Merge Request Hook"), ("X-Gitlab-Token", sig.as_str())];
        prop_assert_eq!(gl.handle(&headers[..], &body).map_err(|e| e.kind()).err() == Some(ErrorKind::Denied), sig != "tok");
    }
}
