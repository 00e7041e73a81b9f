//! Is this webhook delivery really from the forge? Size limit and signature checks that
//! run **before** a byte of the body is parsed.
//!
//! - GitHub signs the raw body with HMAC-SHA256 under the webhook secret and sends
//!   `X-Hub-Signature-256: sha256=<64 hex digits>`. [`verify_github`] recomputes the tag
//!   and compares it in constant time (`ring::hmac::verify`).
//! - GitLab sends the secret token itself in `X-Gitlab-Token`. [`verify_gitlab`]
//!   compares it in constant time: both the expected and the received token go through
//!   HMAC under a key made for the comparison, so neither the content nor the length of
//!   the secret leaks through timing.
//! - [`check_size`] rejects bodies above a limit ([`DEFAULT_MAX_BODY`], 1 MiB; GitHub
//!   caps payloads at 25 MB, a pull-request payload is a few tens of KiB).
//!
//! [`WebhookVerifier`] bundles the three for one forge and secret; the transport-neutral
//! handler in [`crate::webhook`] uses it.
//!
//! ```
//! use idp_preview::verify::{github_signature, verify_github};
//! let body = br#"{"action":"opened"}"#;
//! let header = github_signature(b"s3cret", body);
//! assert!(header.starts_with("sha256="));
//! assert!(verify_github(b"s3cret", Some(&header), body).is_ok());
//! assert!(verify_github(b"wrong", Some(&header), body).is_err());
//! ```

use std::fmt;

use ring::hmac;
use ring::rand::SystemRandom;

use crate::event::Forge;

/// The header GitHub puts the body's HMAC-SHA256 in.
pub const GITHUB_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The header GitLab puts the webhook's secret token in.
pub const GITLAB_TOKEN_HEADER: &str = "X-Gitlab-Token";
/// The largest body accepted by default: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Why a delivery was rejected. Converts into an [`idp_core::Error`] of kind
/// `InvalidInput` (too large, malformed header) or `Denied` (missing or wrong signature).
///
/// ```
/// use idp_preview::verify::VerifyError;
/// let e = VerifyError::BodyTooLarge { size: 10, limit: 5 };
/// assert!(e.to_string().contains("10 bytes"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The body is larger than the configured limit (checked before anything else).
    #[error(
        "the webhook body has {size} bytes, more than the limit of {limit} bytes; raise the limit if this forge really sends such payloads"
    )]
    BodyTooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The signature or token header is absent.
    #[error(
        "the {header} header is missing; configure the webhook's secret on the forge (deliveries without it are rejected)"
    )]
    MissingSignature {
        /// The header that should have been there.
        header: &'static str,
    },
    /// The header is there but not in the expected form.
    #[error("the {header} header is malformed: {reason}")]
    MalformedSignature {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature does not match the body under our secret (wrong secret, or the body
    /// was changed on the way).
    #[error(
        "the {header} header does not match: the delivery was not signed with our secret or the body was altered"
    )]
    Mismatch {
        /// The header that was checked.
        header: &'static str,
    },
    /// We have no secret to check with: every delivery is refused.
    #[error("no webhook secret is configured; refusing every delivery")]
    NoSecret,
}

impl From<VerifyError> for idp_core::Error {
    fn from(e: VerifyError) -> Self {
        let kind = match e {
            VerifyError::BodyTooLarge { .. } | VerifyError::MalformedSignature { .. } => {
                idp_core::ErrorKind::InvalidInput
            }
            VerifyError::MissingSignature { .. }
            | VerifyError::Mismatch { .. }
            | VerifyError::NoSecret => idp_core::ErrorKind::Denied,
        };
        idp_core::Error::new(kind, e.to_string())
    }
}

/// Reject a body longer than `limit` bytes.
///
/// ```
/// use idp_preview::verify::check_size;
/// assert!(check_size(100, 1024).is_ok());
/// assert!(check_size(2048, 1024).is_err());
/// ```
pub fn check_size(size: usize, limit: usize) -> Result<(), VerifyError> {
    if size > limit {
        Err(VerifyError::BodyTooLarge { size, limit })
    } else {
        Ok(())
    }
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` under `secret`
/// (`sha256=` and 64 lower-case hex digits). Useful for tests and for replaying saved
/// deliveries against a local server.
///
/// ```
/// let sig = idp_preview::verify::github_signature(b"It's a Secret to Everybody", b"Hello, World!");
/// assert_eq!(sig, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
/// ```
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decode the hex digest of an `X-Hub-Signature-256` header value.
fn parse_github_header(value: &str) -> Result<[u8; 32], VerifyError> {
    let malformed = |reason: String| VerifyError::MalformedSignature {
        header: GITHUB_SIGNATURE_HEADER,
        reason,
    };
    let value = value.trim();
    let Some(hex) = value.strip_prefix("sha256=") else {
        return Err(malformed(
            "expected \"sha256=\" followed by 64 hex digits (is this the old X-Hub-Signature SHA-1 header?)".into(),
        ));
    };
    if hex.len() != 64 {
        return Err(malformed(format!(
            "expected 64 hex digits after \"sha256=\", found {} characters",
            hex.chars().count()
        )));
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = (hi << 4) | lo,
            _ => {
                return Err(malformed(format!(
                    "character {} of the digest is not a hex digit",
                    2 * i + 1
                )));
            }
        }
    }
    Ok(out)
}

/// Check GitHub's `X-Hub-Signature-256` header (`header`, `None` when absent) against
/// `body` under `secret`, in constant time. An empty secret is refused: GitHub sends no
/// signature without one.
///
/// ```
/// use idp_preview::verify::{verify_github, VerifyError};
/// let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
/// assert!(verify_github(b"It's a Secret to Everybody", Some(sig), b"Hello, World!").is_ok());
/// assert!(matches!(verify_github(b"x", None, b"{}"), Err(VerifyError::MissingSignature { .. })));
/// ```
pub fn verify_github(secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
    if secret.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let Some(value) = header else {
        return Err(VerifyError::MissingSignature {
            header: GITHUB_SIGNATURE_HEADER,
        });
    };
    let tag = parse_github_header(value)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body, &tag).map_err(|_| VerifyError::Mismatch {
        header: GITHUB_SIGNATURE_HEADER,
    })
}

/// A secret token compared in constant time: the expected token is kept only as an
/// HMAC tag under a random key, and a candidate is checked with `ring::hmac::verify`.
#[derive(Clone)]
struct TokenCheck {
    key: hmac::Key,
    tag: hmac::Tag,
}

impl TokenCheck {
    fn new(token: &[u8]) -> Result<Self, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::NoSecret);
        }
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| VerifyError::NoSecret)?;
        let tag = hmac::sign(&key, token);
        Ok(Self { key, tag })
    }

    fn matches(&self, candidate: &[u8]) -> bool {
        hmac::verify(&self.key, candidate, self.tag.as_ref()).is_ok()
    }
}

/// Check GitLab's `X-Gitlab-Token` header (`header`, `None` when absent) against the
/// configured `token`, in constant time.
///
/// ```
/// use idp_preview::verify::verify_gitlab;
/// assert!(verify_gitlab(b"t0ken", Some("t0ken")).is_ok());
/// assert!(verify_gitlab(b"t0ken", Some("t0ke")).is_err());
/// assert!(verify_gitlab(b"t0ken", None).is_err());
/// ```
pub fn verify_gitlab(token: &[u8], header: Option<&str>) -> Result<(), VerifyError> {
    TokenCheck::new(token)?.check(header)
}

impl TokenCheck {
    fn check(&self, header: Option<&str>) -> Result<(), VerifyError> {
        let Some(value) = header else {
            return Err(VerifyError::MissingSignature {
                header: GITLAB_TOKEN_HEADER,
            });
        };
        if self.matches(value.as_bytes()) {
            Ok(())
        } else {
            Err(VerifyError::Mismatch {
                header: GITLAB_TOKEN_HEADER,
            })
        }
    }
}

/// Verifies deliveries from one forge with one secret: body size first, then the
/// signature (GitHub) or token (GitLab). Cheap to clone; the secret is not printed by
/// `Debug`.
///
/// ```
/// use idp_preview::event::Forge;
/// use idp_preview::verify::{github_signature, WebhookVerifier};
/// let v = WebhookVerifier::new(Forge::GitHub, "s3cret").unwrap().max_body(64);
/// let body = b"{}";
/// let sig = github_signature(b"s3cret", body);
/// assert!(v.verify(Some(&sig), body).is_ok());
/// assert!(v.verify(Some(&sig), &[b' '; 65]).is_err()); // too large: rejected first
/// ```
#[derive(Clone)]
pub struct WebhookVerifier {
    forge: Forge,
    secret: Secret,
    max_body: usize,
}

#[derive(Clone)]
enum Secret {
    Hmac(hmac::Key),
    Token(TokenCheck),
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("forge", &self.forge)
            .field("secret", &"<redacted>")
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl WebhookVerifier {
    /// A verifier for `forge` with `secret` (GitHub: the webhook secret; GitLab: the
    /// secret token) and the default body limit. An empty secret is an error.
    ///
    /// ```
    /// use idp_preview::{event::Forge, verify::WebhookVerifier};
    /// assert!(WebhookVerifier::new(Forge::GitLab, "").is_err());
    /// ```
    pub fn new(forge: Forge, secret: impl AsRef<[u8]>) -> Result<Self, VerifyError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(VerifyError::NoSecret);
        }
        let secret = match forge {
            Forge::GitHub => Secret::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret)),
            Forge::GitLab => Secret::Token(TokenCheck::new(secret)?),
        };
        Ok(Self {
            forge,
            secret,
            max_body: DEFAULT_MAX_BODY,
        })
    }

    /// Set the largest accepted body, in bytes.
    ///
    /// ```
    /// # use idp_preview::{event::Forge, verify::WebhookVerifier};
    /// let v = WebhookVerifier::new(Forge::GitHub, "s").unwrap().max_body(25 * 1024 * 1024);
    /// assert_eq!(v.body_limit(), 25 * 1024 * 1024);
    /// ```
    #[must_use]
    pub fn max_body(mut self, limit: usize) -> Self {
        self.max_body = limit;
        self
    }

    /// The largest accepted body, in bytes.
    ///
    /// ```
    /// # use idp_preview::{event::Forge, verify::WebhookVerifier};
    /// assert_eq!(WebhookVerifier::new(Forge::GitHub, "s").unwrap().body_limit(), 1 << 20);
    /// ```
    pub fn body_limit(&self) -> usize {
        self.max_body
    }

    /// The forge this verifier is for.
    ///
    /// ```
    /// # use idp_preview::{event::Forge, verify::WebhookVerifier};
    /// assert_eq!(WebhookVerifier::new(Forge::GitLab, "s").unwrap().forge(), Forge::GitLab);
    /// ```
    pub fn forge(&self) -> Forge {
        self.forge
    }

    /// The header this verifier reads ([`GITHUB_SIGNATURE_HEADER`] or
    /// [`GITLAB_TOKEN_HEADER`]).
    ///
    /// ```
    /// # use idp_preview::{event::Forge, verify::WebhookVerifier};
    /// assert_eq!(WebhookVerifier::new(Forge::GitLab, "s").unwrap().header_name(), "X-Gitlab-Token");
    /// ```
    pub fn header_name(&self) -> &'static str {
        match self.forge {
            Forge::GitHub => GITHUB_SIGNATURE_HEADER,
            Forge::GitLab => GITLAB_TOKEN_HEADER,
        }
    }

    /// Check the body size, then the signature header's value (`None` when absent).
    ///
    /// ```
    /// # use idp_preview::{event::Forge, verify::WebhookVerifier};
    /// let v = WebhookVerifier::new(Forge::GitLab, "t0ken").unwrap();
    /// assert!(v.verify(Some("t0ken"), b"{}").is_ok());
    /// assert!(v.verify(Some("nope"), b"{}").is_err());
    /// ```
    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
        check_size(body.len(), self.max_body)?;
        match &self.secret {
            Secret::Hmac(key) => {
                let Some(value) = header else {
                    return Err(VerifyError::MissingSignature {
                        header: GITHUB_SIGNATURE_HEADER,
                    });
                };
                let tag = parse_github_header(value)?;
                hmac::verify(key, body, &tag).map_err(|_| VerifyError::Mismatch {
                    header: GITHUB_SIGNATURE_HEADER,
                })
            }
            Secret::Token(check) => check.check(header),
        }
    }
}
