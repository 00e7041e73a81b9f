//! # idp-preview
//!
//! An isolated preview environment for every pull request: webhook parsing and verification, lifecycle decisions, environment providers and a reaper that never leaks.
//!
//! Part of [idp](https://github.com/idp-rs/idp). It depends only on `idp-core` and
//! implements its ports, so a platform can use it or replace it with its own
//! implementation of the same trait.
//!
//! [`event::PullRequestEvent`] is what webhooks become and [`decision::Decision`] what
//! planning an event yields.
//!
//! Receiving webhooks: [`webhook::WebhookHandler`] checks the body size and signature
//! ([`verify`]) before parsing a GitHub ([`github`]) or GitLab ([`gitlab`]) payload.
//! Deciding: [`plan::plan`] with a [`plan::PreviewConfig`] (loadable from YAML) says
//! ensure, destroy or ignore, and [`plan::environment_name`] names the preview.
//! Keeping previews in Git: [`gitops::GitOpsEnvironmentProvider`] implements
//! `idp_core::EnvironmentProvider` with a folder per preview in the GitOps repository.
//!
//! Start with [`controller::PreviewController`]: give it an environment provider
//! ([`namespace::NamespaceProvider`] for a namespace per preview), a deployer and a
//! [`source::PreviewSource`], and `apply` each planned decision. Run a
//! [`reaper::Reaper`] periodically to remove expired and orphaned previews. Status goes
//! out through a [`status::StatusReporter`]; [`labels`] holds our label keys.

pub mod controller;
pub mod decision;
pub mod event;
pub mod github;
pub mod gitlab;
pub mod gitops;
pub mod labels;
pub mod namespace;
pub mod plan;
pub mod reaper;
pub mod source;
pub mod status;
pub mod verify;
pub mod webhook;
