//! Retrying transient API failures with capped, jittered exponential backoff.
//!
//! Every request the [`Applier`](super::Applier), prune and discovery make goes through
//! [`RetryPolicy::run`]: a failure that [`is_retryable`] (429, 5xx, server timeouts,
//! connection errors) is tried again after a delay, at most
//! [`max_attempts`](RetryPolicy::with_max_attempts) times in all; anything else (a 422
//! validation error, a 403, a 404, a 409) fails at once. The delay doubles from
//! [`base_delay`](RetryPolicy::with_base_delay) up to
//! [`max_delay`](RetryPolicy::with_max_delay) and is jittered (a random point in the upper
//! half) so that many clients do not retry in lock step. When the server says how long
//! to wait (`details.retryAfterSeconds` of its `Status`, see
//! [`retry_after`]) we wait that long instead, up to
//! [`max_retry_after`](RetryPolicy::with_max_retry_after).
//!
//! Only idempotent requests are retried this way: server-side apply, get, list and
//! delete (a delete whose first attempt succeeded answers 404 on the retry, which the
//! callers treat as done).
//!
//! ```
//! use std::time::Duration;
//! use idp_core::cluster::RetryPolicy;
//! let policy = RetryPolicy::default()
//!     .with_max_attempts(4)
//!     .with_base_delay(Duration::from_millis(50))
//!     .with_max_delay(Duration::from_secs(2));
//! assert!(policy.backoff(10) <= Duration::from_secs(2));
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use rand::Rng;

use super::errors::{from_kube, is_retryable, retry_after};
use crate::error::Result;

/// How to retry transient API failures: bounded attempts, exponential backoff with
/// jitter, capped delays, and the server's `Retry-After` respected.
///
/// The default makes 6 attempts with delays from 100 ms doubling up to 5 s, and honours
/// server-requested delays up to 30 s.
///
/// ```
/// let p = idp_core::cluster::RetryPolicy::default();
/// assert_eq!(p.max_attempts(), 6);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries: one attempt.
    ///
    /// ```
    /// assert_eq!(idp_core::cluster::RetryPolicy::none().max_attempts(), 1);
    /// ```
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Make at most `attempts` attempts in all (at least one).
    ///
    /// ```
    /// let p = idp_core::cluster::RetryPolicy::default().with_max_attempts(0);
    /// assert_eq!(p.max_attempts(), 1);
    /// ```
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay before the first retry; it doubles for each further one.
    ///
    /// ```
    /// let p = idp_core::cluster::RetryPolicy::default().with_base_delay(std::time::Duration::from_millis(10));
    /// assert!(p.backoff(0) <= std::time::Duration::from_millis(10));
    /// ```
    pub fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest delay between two attempts of our own choosing.
    ///
    /// ```
    /// let p = idp_core::cluster::RetryPolicy::default().with_max_delay(std::time::Duration::from_secs(1));
    /// assert!(p.backoff(30) <= std::time::Duration::from_secs(1));
    /// ```
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The longest server-requested delay (`Retry-After`) we honour; longer requests
    /// are shortened to this.
    ///
    /// ```
    /// let p = idp_core::cluster::RetryPolicy::default().with_max_retry_after(std::time::Duration::from_secs(5));
    /// assert_eq!(p.max_attempts(), 6);
    /// ```
    pub fn with_max_retry_after(mut self, delay: Duration) -> Self {
        self.max_retry_after = delay;
        self
    }

    /// The maximum number of attempts.
    ///
    /// ```
    /// assert_eq!(idp_core::cluster::RetryPolicy::default().with_max_attempts(3).max_attempts(), 3);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The jittered delay after failed attempt number `retry` (0-based): a random
    /// duration in the upper half of `min(max_delay, base_delay * 2^retry)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = idp_core::cluster::RetryPolicy::default().with_base_delay(Duration::from_millis(100));
    /// let d = p.backoff(2);
    /// assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
    /// ```
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max_delay);
        let half = ceiling / 2;
        let spread = ceiling.saturating_sub(half).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            rand::rng().random_range(0..=spread)
        };
        half + Duration::from_nanos(jitter)
    }

    /// The delay before the next attempt after `err` failed attempt number `retry`.
    fn delay_after(&self, err: &kube::Error, retry: u32) -> Duration {
        match retry_after(err) {
            Some(asked) => asked.min(self.max_retry_after),
            None => self.backoff(retry),
        }
    }

    /// Run `op` until it succeeds, fails with an error that is not retryable, or runs out
    /// of attempts. The error names `what` was being done (and how many attempts were
    /// made when they ran out).
    ///
    /// ```no_run
    /// # async fn demo(client: kube::Client) -> idp_core::Result<()> {
    /// use idp_core::cluster::RetryPolicy;
    /// let version = RetryPolicy::default()
    ///     .run("read the server version", || client.apiserver_version())
    ///     .await?;
    /// println!("{}", version.git_version);
    /// # Ok(()) }
    /// ```
    pub async fn run<T, F, Fut>(&self, what: impl fmt::Display, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, kube::Error>>,
    {
        let mut retry = 0;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) if is_retryable(&err) && retry + 1 < self.max_attempts => {
                    let delay = self.delay_after(&err, retry);
                    tracing::debug!(%what, attempt = retry + 1, ?delay, error = %err, "transient API failure, retrying");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                Err(err) => {
                    let attempts = retry + 1;
                    let retryable = is_retryable(&err);
                    let mut error = from_kube(err, &what);
                    if retryable && attempts > 1 {
                        error = error.context(format_args!("gave up after {attempts} attempts"));
                    }
                    return Err(error);
                }
            }
        }
    }
}

/// A [`Backoff`](kube::runtime::utils::Backoff) for `kube::runtime::watcher` streams made
/// from a [`RetryPolicy`]'s delays: watches retry without a bound on attempts (the
/// caller's timeout bounds them).
///
/// ```
/// let mut b = idp_core::cluster::retry::WatchBackoff::new(idp_core::cluster::RetryPolicy::default());
/// assert!(b.next().is_some());
/// ```
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    policy: RetryPolicy,
    retry: u32,
}

impl WatchBackoff {
    /// A backoff that follows `policy`'s delays.
    ///
    /// ```
    /// let _ = idp_core::cluster::retry::WatchBackoff::new(Default::default());
    /// ```
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy, retry: 0 }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.policy.backoff(self.retry);
        self.retry = self.retry.saturating_add(1);
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.retry = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use kube::core::Status;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Status::failure("boom", "x").with_code(code).boxed())
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy::default()
            .with_base_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1));
        for _ in 0..50 {
            let d0 = p.backoff(0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d3 = p.backoff(3);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
            let big = p.backoff(40);
            assert!(big >= Duration::from_millis(500) && big <= Duration::from_secs(1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_then_succeeds() {
        let calls = AtomicU32::new(0);
        let out = RetryPolicy::default()
            .run("op", || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { if n < 3 { Err(api(503)) } else { Ok(n) } }
            })
            .await
            .unwrap();
        assert_eq!(out, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let err = RetryPolicy::default()
            .with_max_attempts(3)
            .run("list things", || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(api(500)) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(
            err.to_string().contains("gave up after 3 attempts"),
            "{err}"
        );
        assert!(err.to_string().contains("list things"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn never_retries_client_errors() {
        for code in [400, 403, 404, 409, 422] {
            let calls = AtomicU32::new(0);
            let err = RetryPolicy::default()
                .run("apply", || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move { Err::<(), _>(api(code)) }
                })
                .await
                .unwrap_err();
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{code}");
            assert!(!err.kind().is_retryable() || code == 409, "{code}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after() {
        let mut status = Status::failure("slow down", "TooManyRequests").with_code(429);
        status.details =
            Some(serde_json::from_value(serde_json::json!({"retryAfterSeconds": 7})).unwrap());
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        RetryPolicy::default()
            .run("op", || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let status = status.clone();
                async move {
                    if n == 0 {
                        Err(kube::Error::Api(status.boxed()))
                    } else {
                        Ok(())
                    }
                }
            })
            .await
            .unwrap();
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(7) && waited < Duration::from_secs(8),
            "{waited:?}"
        );
    }
}
