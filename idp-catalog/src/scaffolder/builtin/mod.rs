//! The built-in actions.
//!
//! | id | does |
//! |---|---|
//! | `fetch:template` | render a skeleton folder (contents and file names) into the workspace |
//! | `fetch:plain` | copy a folder as is |
//! | `fetch:plain:file` | copy one file as is |
//! | `fs:rename` | move files inside the workspace |
//! | `fs:delete` | delete files (globs) from the workspace |
//! | `publish:git` | commit the workspace (or a part) to a Git remote: new repo or new branch |
//! | `catalog:write` | write an entity as `catalog-info.yaml` |
//! | `catalog:register` | register the workspace's `catalog-info.yaml` into the [`Catalog`](idp_core::Catalog) |
//! | `debug:log` | log a message and optionally the workspace |

mod catalog;
mod debug;
mod fetch;
mod fs;
mod publish;

use std::sync::Arc;

pub use catalog::{CatalogRegister, CatalogWrite};
pub use debug::DebugLog;
pub use fetch::{FetchPlain, FetchPlainFile, FetchTemplate};
pub use fs::{FsDelete, FsRename};
pub use publish::PublishGit;

use super::action::Action;

/// Every built-in action.
///
/// ```
/// assert_eq!(idp_catalog::scaffolder::builtin::all().len(), 9);
/// ```
pub fn all() -> Vec<Arc<dyn Action>> {
    vec![
        Arc::new(FetchTemplate),
        Arc::new(FetchPlain),
        Arc::new(FetchPlainFile),
        Arc::new(FsRename),
        Arc::new(FsDelete),
        Arc::new(PublishGit),
        Arc::new(CatalogRegister),
        Arc::new(CatalogWrite),
        Arc::new(DebugLog),
    ]
}

/// `targetPath` joined under a relative path, both checked later by the workspace.
pub(crate) fn join_rel(base: &str, rel: &str) -> String {
    let base = base.trim_start_matches("./").trim_end_matches('/');
    let base = if base == "." { "" } else { base };
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_owned(),
        (false, true) => base.to_owned(),
        (false, false) => format!("{base}/{rel}"),
    }
}
