//! Should this pull request have a preview? [`plan`] turns an event and a
//! [`PreviewConfig`] into a [`Decision`], and [`environment_name`] names the preview.
//!
//! The planner is a pure function: no I/O, no clock. What it needs to know about the
//! world (how many previews the repository already has, whether this pull request has
//! one) comes in a [`PlanContext`], so the same event and state always give the same
//! decision and the controller can call it again after a restart.
//!
//! The rules, in order:
//!
//! 1. a repository not matched by `repos` → ignore;
//! 2. a closed pull request → destroy (merged or not);
//! 3. a fork when `allowForks` is off, a head or base branch not matched by the
//!    patterns, a draft when `skipDrafts` is on, a missing required label → **destroy**
//!    when the event is the change that made the pull request stop qualifying (a
//!    required label removed, `converted_to_draft`, `edited` — a new base branch) or
//!    when [`PlanContext::has_preview`] says one exists, **ignore** otherwise;
//! 4. no preview yet and the repository is at `maxPreviewsPerRepo` → ignore with the
//!    count in the reason (never evict another preview);
//! 5. otherwise → ensure (create, or update to the head SHA).
//!
//! ```
//! use idp_preview::decision::Decision;
//! use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
//! use idp_preview::plan::{plan, PreviewConfig};
//!
//! let config = PreviewConfig::from_yaml("repos: [acme/*]\nrequiredLabels: [preview]\n").unwrap();
//! let open = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "acme/cart", 42)
//!     .with_head("feature/login", "9f1c2e7d").with_base("main").with_label("preview");
//! let Decision::Ensure { environment } = plan(&open, &config) else { panic!() };
//! assert!(environment.as_str().starts_with("pr-cart-"));
//! assert!(environment.as_str().ends_with("-42"));
//!
//! let mut unlabeled = open.clone();
//! unlabeled.action = PullRequestAction::Unlabeled { label: "preview".into() };
//! unlabeled.labels.clear();
//! assert!(matches!(plan(&unlabeled, &config), Decision::Destroy { .. }));
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use idp_core::{EnvironmentName, Error, Result, slugify};

use crate::decision::Decision;
use crate::event::{PullRequestAction, PullRequestEvent};

/// The longest accepted environment-name prefix.
pub const MAX_PREFIX_LEN: usize = 20;
/// How many hex digits of the repository hash go into an environment name.
pub const HASH_LEN: usize = 6;

/// Which pull requests get a preview, and how previews are named. Loads from YAML
/// (camelCase keys, unknown keys are errors); every field has a default, so an empty
/// document previews every open, non-draft, non-fork pull request.
///
/// Patterns are globs: `*` matches any run of characters except `/`, `**` any run
/// including `/`, `?` one character except `/`; everything else matches itself.
/// Repository patterns ignore case (`Acme/Cart` is `acme/cart`), branch patterns do not.
///
/// ```
/// use idp_preview::plan::PreviewConfig;
/// let c = PreviewConfig::from_yaml(r#"
/// repos: ["acme/cart", "acme/web-*"]
/// requiredLabels: [preview]
/// headBranches: ["feature/**"]
/// baseBranches: [main]
/// skipDrafts: true
/// allowForks: false
/// maxPreviewsPerRepo: 10
/// prefix: pr
/// "#).unwrap();
/// assert_eq!(c.max_previews_per_repo, Some(10));
/// let err = PreviewConfig::from_yaml("repo: [acme/cart]\n").unwrap_err();
/// assert!(err.to_string().contains("repo"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewConfig {
    /// Repository patterns (`owner/name`, GitLab `group/subgroup/project`); empty: all.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Labels a pull request must carry, all of them; removing one destroys the preview.
    #[serde(default)]
    pub required_labels: Vec<String>,
    /// Head (source) branch patterns; empty: all.
    #[serde(default)]
    pub head_branches: Vec<String>,
    /// Base (target) branch patterns; empty: all.
    #[serde(default)]
    pub base_branches: Vec<String>,
    /// Drafts get no preview; turning one into a draft destroys it (default true).
    #[serde(default = "yes")]
    pub skip_drafts: bool,
    /// Pull requests from forks get previews (default false: a fork's code is not
    /// trusted to run in the platform's cluster).
    #[serde(default)]
    pub allow_forks: bool,
    /// At most this many previews per repository; `None`: no cap.
    #[serde(default)]
    pub max_previews_per_repo: Option<usize>,
    /// The first part of every environment name (default `pr`), a DNS-1123 label of at
    /// most [`MAX_PREFIX_LEN`] characters, or empty.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn yes() -> bool {
    true
}

fn default_prefix() -> String {
    "pr".to_owned()
}

impl Default for PreviewConfig {
    fn default() -> Self {
        Self {
            repos: Vec::new(),
            required_labels: Vec::new(),
            head_branches: Vec::new(),
            base_branches: Vec::new(),
            skip_drafts: true,
            allow_forks: false,
            max_previews_per_repo: None,
            prefix: default_prefix(),
        }
    }
}

impl PreviewConfig {
    /// Parse and check a YAML document. Errors say which key and line was wrong.
    ///
    /// ```
    /// use idp_preview::plan::PreviewConfig;
    /// assert_eq!(PreviewConfig::from_yaml("").unwrap(), PreviewConfig::default());
    /// assert!(PreviewConfig::from_yaml("prefix: Not_A_Label\n").is_err());
    /// assert!(PreviewConfig::from_yaml("maxPreviewsPerRepo: many\n").is_err());
    /// ```
    pub fn from_yaml(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Self = serde_saphyr::from_str(text)
            .map_err(|e| Error::invalid_input(format!("invalid preview config: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Read and check a YAML file; errors name the file.
    ///
    /// ```
    /// let err = idp_preview::plan::PreviewConfig::load("/nonexistent/preview.yaml").unwrap_err();
    /// assert!(err.to_string().contains("/nonexistent/preview.yaml"));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::from(e).context(format_args!(
                "cannot read preview config {}",
                path.display()
            ))
        })?;
        Self::from_yaml(&text).map_err(|e| e.context(path.display()))
    }

    /// Check the prefix and patterns (run by the loaders; call it after building a
    /// config in code).
    ///
    /// ```
    /// let mut c = idp_preview::plan::PreviewConfig::default();
    /// c.head_branches.push(String::new());
    /// assert!(c.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_prefix(&self.prefix)?;
        for (key, patterns) in [
            ("repos", &self.repos),
            ("headBranches", &self.head_branches),
            ("baseBranches", &self.base_branches),
            ("requiredLabels", &self.required_labels),
        ] {
            if let Some(i) = patterns.iter().position(|p| p.trim().is_empty()) {
                return Err(Error::invalid_input(format!(
                    "invalid preview config: {key}[{i}] is empty; remove it or write a pattern"
                )));
            }
        }
        if self.max_previews_per_repo == Some(0) {
            return Err(Error::invalid_input(
                "invalid preview config: maxPreviewsPerRepo is 0, which would allow no preview at all; remove it for no cap",
            ));
        }
        Ok(())
    }

    /// Whether `repo` is one of the configured repositories.
    ///
    /// ```
    /// let c = idp_preview::plan::PreviewConfig::from_yaml("repos: [acme/*]").unwrap();
    /// assert!(c.matches_repo("Acme/Cart"));
    /// assert!(!c.matches_repo("acme/group/cart"));
    /// ```
    pub fn matches_repo(&self, repo: &str) -> bool {
        let repo = repo.to_lowercase();
        self.repos.is_empty()
            || self
                .repos
                .iter()
                .any(|p| glob_match(&p.to_lowercase(), &repo))
    }

    /// The environment name of pull request `number` of `repo` under this config's prefix
    /// (see [`environment_name`]).
    ///
    /// ```
    /// let c = idp_preview::plan::PreviewConfig::default();
    /// assert!(c.environment_name("acme/cart", 42).unwrap().as_str().starts_with("pr-cart-"));
    /// ```
    pub fn environment_name(&self, repo: &str, number: u64) -> Result<EnvironmentName> {
        environment_name(&self.prefix, repo, number)
    }
}

fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(Error::invalid_input(format!(
            "invalid preview config: prefix {prefix:?} is longer than {MAX_PREFIX_LEN} characters"
        )));
    }
    idp_core::DnsLabel::new(prefix).map_err(|e| {
        Error::invalid_input(format!(
            "invalid preview config: prefix {prefix:?} must be lower-case letters, digits and '-' (inside): {}",
            e.message()
        ))
    })?;
    Ok(())
}

/// Match `text` against a glob `pattern`: `*` any run without `/`, `**` any run, `?` one
/// character other than `/`.
///
/// ```
/// use idp_preview::plan::glob_match;
/// assert!(glob_match("feature/*", "feature/login"));
/// assert!(!glob_match("feature/*", "feature/a/b"));
/// assert!(glob_match("feature/**", "feature/a/b"));
/// assert!(glob_match("release-?.?", "release-1.2"));
/// assert!(glob_match("main", "main") && !glob_match("main", "maint"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Tok {
        Char(char),
        One,
        Star,
        StarStar,
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                toks.push(Tok::StarStar);
            }
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::One),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // reach[j]: the pattern prefix seen so far can match text[..j].
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for tok in toks {
        let mut next = vec![false; text.len() + 1];
        match tok {
            Tok::Char(c) => {
                for j in 0..text.len() {
                    next[j + 1] = reach[j] && text[j] == c;
                }
            }
            Tok::One => {
                for j in 0..text.len() {
                    next[j + 1] = reach[j] && text[j] != '/';
                }
            }
            Tok::Star | Tok::StarStar => {
                let crosses = matches!(tok, Tok::StarStar);
                next[0] = reach[0];
                for j in 0..text.len() {
                    next[j + 1] = reach[j + 1] || (next[j] && (crosses || text[j] != '/'));
                }
            }
        }
        reach = next;
    }
    reach[text.len()]
}

/// The name of the preview of pull request `number` in `repo`: a DNS-1123 label of at
/// most 63 characters, `<prefix>-<repo name>-<hash>-<number>`.
///
/// - `<repo name>` is the last path segment of the repository slugified (Argo CD's
///   `branch_slug` rules: lower-case, other characters become `-`), cut so the whole
///   name fits; it is left out when nothing usable remains (a name in another script);
/// - `<hash>` is the first [`HASH_LEN`] hex digits of the SHA-256 of the whole
///   repository path in lower case, so `acme/cart` and `shop/cart` (or `a-b/c` and
///   `a/b-c`) never share names, and the name does not change with the case GitHub
///   reports;
/// - `<number>` is never cut.
///
/// It depends on nothing else, so it is stable across pushes, edits and restarts.
///
/// ```
/// use idp_preview::plan::environment_name;
/// let a = environment_name("pr", "acme/cart", 42).unwrap();
/// let b = environment_name("pr", "shop/cart", 42).unwrap();
/// assert_ne!(a, b);
/// assert_eq!(a, environment_name("pr", "Acme/Cart", 42).unwrap());
/// let long = environment_name("preview", &format!("acme/{}", "x".repeat(200)), u64::MAX).unwrap();
/// assert!(long.as_str().len() <= 63 && long.as_str().ends_with(&u64::MAX.to_string()));
/// ```
pub fn environment_name(prefix: &str, repo: &str, number: u64) -> Result<EnvironmentName> {
    check_prefix(prefix)?;
    let canonical = repo.trim().to_lowercase();
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    let hash: String = digest
        .as_ref()
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .take(HASH_LEN)
        .map(|n| char::from(b"0123456789abcdef"[usize::from(n)]))
        .collect();
    let number = number.to_string();
    let fixed = prefix.len() + usize::from(!prefix.is_empty()) + HASH_LEN + 1 + number.len();
    let room = idp_core::ids::DNS_LABEL_MAX_LEN.saturating_sub(fixed + 1);
    let short_name = canonical.rsplit('/').next().unwrap_or_default();
    let slug = slugify(short_name, room);
    let name = [prefix, slug.as_str(), hash.as_str(), number.as_str()]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("-");
    EnvironmentName::new(name)
}

/// What the planner knows about the world besides the event.
///
/// ```
/// let ctx = idp_preview::plan::PlanContext { open_previews: 3, has_preview: false };
/// assert_eq!(ctx.open_previews, 3);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanContext {
    /// How many previews the event's repository has now (listed from the provider).
    pub open_previews: usize,
    /// Whether this pull request already has one (it is then updated even at the cap).
    pub has_preview: bool,
}

/// [`plan_with`] with an empty [`PlanContext`]: no preview exists yet, so the cap is
/// never reached (use [`plan_with`] to enforce `maxPreviewsPerRepo`).
///
/// ```
/// use idp_preview::{decision::Decision, event::*, plan::{plan, PreviewConfig}};
/// let e = PullRequestEvent::new(Forge::GitLab, PullRequestAction::Closed { merged: true }, "g/p", 7);
/// assert!(matches!(plan(&e, &PreviewConfig::default()), Decision::Destroy { .. }));
/// ```
pub fn plan(event: &PullRequestEvent, config: &PreviewConfig) -> Decision {
    plan_with(event, config, &PlanContext::default())
}

/// Decide what to do about `event` under `config`, knowing `ctx` (see the module docs
/// for the rules).
///
/// ```
/// use idp_preview::{decision::Decision, event::*, plan::{plan_with, PlanContext, PreviewConfig}};
/// let config = PreviewConfig::from_yaml("maxPreviewsPerRepo: 2").unwrap();
/// let e = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 3)
///     .with_head("f", "abc").with_base("main");
/// let full = PlanContext { open_previews: 2, has_preview: false };
/// let Decision::Ignore { reason } = plan_with(&e, &config, &full) else { panic!() };
/// assert!(reason.contains("2 previews"));
/// let mine = PlanContext { open_previews: 2, has_preview: true };
/// assert!(matches!(plan_with(&e, &config, &mine), Decision::Ensure { .. }));
/// ```
pub fn plan_with(event: &PullRequestEvent, config: &PreviewConfig, ctx: &PlanContext) -> Decision {
    let pr = format!("{}#{}", event.repo, event.number);
    if !config.matches_repo(&event.repo) {
        return Decision::Ignore {
            reason: format!(
                "{} is not one of the repositories with previews ({})",
                event.repo,
                config.repos.join(", ")
            ),
        };
    }
    let environment = match config.environment_name(&event.repo, event.number) {
        Ok(name) => name,
        Err(e) => {
            return Decision::Ignore {
                reason: format!("cannot name a preview for {pr}: {}", e.message()),
            };
        }
    };
    if event.action.is_close() || !event.is_open() {
        let how = match event.action {
            PullRequestAction::Closed { merged: true } => "was merged",
            _ => "was closed",
        };
        return Decision::Destroy {
            environment,
            reason: format!("{pr} {how}"),
        };
    }
    if let Some(why_not) = disqualified(event, config) {
        // Destroy only when this event is what made the pull request stop qualifying;
        // otherwise there is nothing to tear down and nothing to do.
        let stopped = match &event.action {
            PullRequestAction::Unlabeled { label } => config.required_labels.contains(label),
            PullRequestAction::ConvertedToDraft => config.skip_drafts,
            PullRequestAction::Edited => true,
            // The controller knows a preview exists: whatever changed, it must go.
            _ => ctx.has_preview,
        };
        return if stopped {
            Decision::Destroy {
                environment,
                reason: format!("{pr} no longer qualifies for a preview: {why_not}"),
            }
        } else {
            Decision::Ignore {
                reason: format!("{pr} gets no preview: {why_not}"),
            }
        };
    }
    if let Some(cap) = config.max_previews_per_repo
        && !ctx.has_preview
        && ctx.open_previews >= cap
    {
        return Decision::Ignore {
            reason: format!(
                "{} already has {} previews, the cap (maxPreviewsPerRepo) is {cap}; {pr} gets one when another closes, or raise the cap",
                event.repo, ctx.open_previews
            ),
        };
    }
    Decision::Ensure { environment }
}

/// Why an open pull request does not qualify, if it does not.
fn disqualified(event: &PullRequestEvent, config: &PreviewConfig) -> Option<String> {
    if let Some(fork) = &event.head_repo
        && !config.allow_forks
    {
        return Some(format!(
            "its head branch is in the fork {fork} and allowForks is false"
        ));
    }
    if config.skip_drafts && event.draft {
        return Some("it is a draft and skipDrafts is true".into());
    }
    let missing: Vec<&str> = config
        .required_labels
        .iter()
        .filter(|l| !event.labels.contains(l.as_str()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "it lacks the required label(s) {}",
            missing.join(", ")
        ));
    }
    if !config.head_branches.is_empty()
        && !config
            .head_branches
            .iter()
            .any(|p| glob_match(p, &event.head_branch))
    {
        return Some(format!(
            "its head branch {:?} matches none of headBranches ({})",
            event.head_branch,
            config.head_branches.join(", ")
        ));
    }
    if !config.base_branches.is_empty()
        && !config
            .base_branches
            .iter()
            .any(|p| glob_match(p, &event.base_branch))
    {
        return Some(format!(
            "its base branch {:?} matches none of baseBranches ({})",
            event.base_branch,
            config.base_branches.join(", ")
        ));
    }
    None
}
