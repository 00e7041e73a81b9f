//! Mapping libgit2 errors onto [`crate::Error`] kinds, always naming the repository,
//! the operation and the object involved.

use std::fmt;
use std::path::Path;

use git2::{ErrorClass, ErrorCode};

use crate::{Error, ErrorKind};

/// Where an operation runs: used to build error messages that name the repository and
/// the operation.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) op: &'a str,
    pub(crate) repo: &'a Path,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(op: &'a str, repo: &'a Path) -> Self {
        Self { op, repo }
    }

    /// A closure for `map_err` that turns a libgit2 error into an [`Error`] whose message
    /// names the repository, the operation and `what` (a ref, a path, a revision).
    pub(crate) fn git(self, what: impl fmt::Display) -> impl FnOnce(git2::Error) -> Error {
        let what = what.to_string();
        move |e| self.git_error(&what, e)
    }

    pub(crate) fn git_error(self, what: &str, e: git2::Error) -> Error {
        let kind = kind_of(&e);
        let hint = match kind {
            ErrorKind::Conflict => "; someone else changed it first, re-read and retry",
            ErrorKind::Unavailable => "; check the remote URL and the network, then retry",
            ErrorKind::Denied => "; check the credentials for the remote",
            _ => "",
        };
        Error::new(
            kind,
            format!("{}: {}{hint}", self.prefix(what), e.message()),
        )
        .with_source(e)
    }

    /// An error of `kind` with the standard prefix.
    pub(crate) fn error(
        self,
        kind: ErrorKind,
        what: impl fmt::Display,
        msg: impl fmt::Display,
    ) -> Error {
        Error::new(kind, format!("{}: {msg}", self.prefix(&what.to_string())))
    }

    fn prefix(self, what: &str) -> String {
        if what.is_empty() {
            format!("git {} in {}", self.op, self.repo.display())
        } else {
            format!("git {} in {} ({what})", self.op, self.repo.display())
        }
    }
}

/// The [`ErrorKind`] for a libgit2 error.
pub(crate) fn kind_of(e: &git2::Error) -> ErrorKind {
    match e.code() {
        ErrorCode::NotFound | ErrorCode::UnbornBranch => ErrorKind::NotFound,
        ErrorCode::Exists => ErrorKind::AlreadyExists,
        ErrorCode::Ambiguous
        | ErrorCode::InvalidSpec
        | ErrorCode::Invalid
        | ErrorCode::BareRepo => ErrorKind::InvalidInput,
        ErrorCode::Modified
        | ErrorCode::Locked
        | ErrorCode::NotFastForward
        | ErrorCode::Conflict
        | ErrorCode::MergeConflict
        | ErrorCode::Unmerged
        | ErrorCode::Uncommitted
        | ErrorCode::IndexDirty => ErrorKind::Conflict,
        ErrorCode::Auth | ErrorCode::Owner => ErrorKind::Denied,
        ErrorCode::Certificate => ErrorKind::Unavailable,
        ErrorCode::Timeout => ErrorKind::Timeout,
        // libgit2 reports a held lock file as a generic OS error.
        _ if e.message().contains("failed to lock")
            || e.message().contains("failed to create locked file") =>
        {
            ErrorKind::Conflict
        }
        _ => match e.class() {
            ErrorClass::Net
            | ErrorClass::Ssh
            | ErrorClass::Ssl
            | ErrorClass::Http
            | ErrorClass::Callback => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        },
    }
}
