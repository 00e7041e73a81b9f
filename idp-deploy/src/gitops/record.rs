//! Release records: what one GitOps commit says about itself in its trailers.

use idp_core::git::LogEntry;
use idp_core::{Deployment, DeploymentId, DeploymentStatus, EntityRef, EnvironmentName};
use serde::Serialize;

/// The commit trailers the GitOps deployer writes and reads. History is `git log`
/// filtered by `Component` and `Environment`; a commit without `Release-Id` is not
/// a release.
///
/// ```
/// assert_eq!(idp_deploy::gitops::trailers::RELEASE_ID, "Release-Id");
/// ```
pub mod trailers {
    /// The release's id (the [`DeploymentId`](idp_core::DeploymentId)).
    pub const RELEASE_ID: &str = "Release-Id";
    /// The component's entity reference (`component:default/cart`).
    pub const COMPONENT: &str = "Component";
    /// The environment name.
    pub const ENVIRONMENT: &str = "Environment";
    /// The source commit the manifests were built from.
    pub const SOURCE_REVISION: &str = "Source-Revision";
    /// When the source commit was made (RFC 3339), for lead-time metrics.
    pub const SOURCE_COMMITTED_AT: &str = "Source-Committed-At";
    /// Who asked for the release.
    pub const AUTHOR: &str = "Author";
    /// On a rollback: the release that was current and is undone.
    pub const ROLLBACK_OF: &str = "Rollback-Of";
    /// On a rollback: the release whose content is restored.
    pub const ROLLBACK_TO: &str = "Rollback-To";
    /// On a promotion: `<environment>/<release id>` the content was copied from.
    pub const PROMOTED_FROM: &str = "Promoted-From";
}

/// One release of a component in an environment, read back from its commit.
///
/// Serialises with snake_case fields and RFC 3339 times, the shape `idpctl history
/// --format json` prints.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// use idp_core::{git::{GitRepo, InitOptions}, ManifestSet, Release};
/// use idp_deploy::gitops::GitOpsDeployer;
/// let dir = tempfile::tempdir()?;
/// let deployer = GitOpsDeployer::new(GitRepo::init(dir.path(), InitOptions::bare("main")).await?);
/// let release = Release::new("component:default/cart".parse()?, "dev".parse()?, ManifestSet::new())
///     .with_source_revision("3f2c1a9");
/// deployer.deploy_release(&release).await?;
/// let records = deployer.releases(&release.component, &release.environment, None).await?;
/// assert_eq!(records[0].source_revision.as_deref(), Some("3f2c1a9"));
/// assert!(records[0].is_current());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReleaseRecord {
    /// The release id (the `Release-Id` trailer).
    pub release_id: String,
    /// The commit, full hex.
    pub commit: String,
    /// When the commit was made.
    pub time: jiff::Timestamp,
    /// Who asked for it (the `Author` trailer, else the commit author's name).
    pub author: Option<String>,
    /// The source revision, when recorded.
    pub source_revision: Option<String>,
    /// When the source revision was committed, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_committed_at: Option<jiff::Timestamp>,
    /// The component.
    pub component: EntityRef,
    /// The environment.
    pub environment: EnvironmentName,
    /// The commit's first line.
    pub summary: String,
    /// On a rollback: the release undone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// On a rollback: the release restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    /// On a promotion: `<environment>/<release id>` copied from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// `Pending` for the current release (committed; whether a cluster has synced it is
    /// not something Git knows), `Superseded` for older ones, `RolledBack` for those a
    /// later rollback undid.
    #[serde(serialize_with = "status_str")]
    pub status: DeploymentStatus,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's serialize_with signature
fn status_str<S: serde::Serializer>(status: &DeploymentStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status_name(*status))
}

/// A lower-case name for a status (`pending`, `superseded`, `rolled-back`…).
pub(crate) fn status_name(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::Pending => "pending",
        DeploymentStatus::Progressing => "progressing",
        DeploymentStatus::Succeeded => "succeeded",
        DeploymentStatus::Failed => "failed",
        DeploymentStatus::RolledBack => "rolled-back",
        DeploymentStatus::Superseded => "superseded",
    }
}

impl ReleaseRecord {
    /// Read a release from a log entry; `None` when the commit is not a release of this
    /// component in this environment.
    /// A record from any commit carrying our trailers, whatever its component and
    /// environment.
    pub(crate) fn from_any_entry(entry: &LogEntry) -> Option<Self> {
        let component: EntityRef = entry.trailer(trailers::COMPONENT)?.parse().ok()?;
        let environment: EnvironmentName = entry.trailer(trailers::ENVIRONMENT)?.parse().ok()?;
        Self::from_entry(entry, &component, &environment)
    }

    pub(crate) fn from_entry(
        entry: &LogEntry,
        component: &EntityRef,
        environment: &EnvironmentName,
    ) -> Option<Self> {
        let release_id = entry.trailer(trailers::RELEASE_ID)?.to_owned();
        let c: EntityRef = entry.trailer(trailers::COMPONENT)?.parse().ok()?;
        let e = entry.trailer(trailers::ENVIRONMENT)?;
        if &c != component || e != environment.as_str() {
            return None;
        }
        let own = |key: &str| entry.trailer(key).map(str::to_owned);
        Some(Self {
            release_id,
            commit: entry.id.to_hex(),
            time: entry.time,
            author: own(trailers::AUTHOR).or_else(|| Some(entry.author.name.clone())),
            source_revision: own(trailers::SOURCE_REVISION),
            source_committed_at: entry
                .trailer(trailers::SOURCE_COMMITTED_AT)
                .and_then(|t| t.parse().ok()),
            component: component.clone(),
            environment: environment.clone(),
            summary: entry.summary.clone(),
            rollback_of: own(trailers::ROLLBACK_OF),
            rollback_to: own(trailers::ROLLBACK_TO),
            promoted_from: own(trailers::PROMOTED_FROM),
            status: DeploymentStatus::Superseded,
        })
    }

    /// Whether this is the newest release (what the environment should hold).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let d = idp_deploy::gitops::GitOpsDeployer::new(idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?);
    /// # let r = idp_core::Release::new("component:default/a".parse()?, "dev".parse()?, idp_core::ManifestSet::new());
    /// let out = d.deploy_release(&r).await?;
    /// assert!(out.record.is_current());
    /// # Ok(()) }
    /// ```
    pub fn is_current(&self) -> bool {
        self.status == DeploymentStatus::Pending
    }

    /// Whether `id` names this release: its release id, or a prefix (7+ hex digits) of
    /// its commit.
    pub(crate) fn matches(&self, id: &str) -> bool {
        self.release_id == id
            || (id.len() >= 7
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && self.commit.starts_with(&id.to_ascii_lowercase()))
    }

    /// The port's view of this release.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let d = idp_deploy::gitops::GitOpsDeployer::new(idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?);
    /// # let r = idp_core::Release::new("component:default/a".parse()?, "dev".parse()?, idp_core::ManifestSet::new());
    /// let out = d.deploy_release(&r).await?;
    /// assert_eq!(out.record.to_deployment().id.as_str(), out.record.release_id);
    /// # Ok(()) }
    /// ```
    pub fn to_deployment(&self) -> Deployment {
        Deployment {
            id: DeploymentId::new(self.release_id.clone()),
            component: self.component.clone(),
            environment: self.environment.clone(),
            revision: self.commit.clone(),
            source_revision: self.source_revision.clone(),
            author: self.author.clone(),
            message: Some(self.summary.clone()),
            status: self.status,
            created_at: self.time,
        }
    }
}

/// Set statuses on records listed newest first: the first is current (`Pending`), the
/// rest `Superseded`, except those a newer rollback undid (`RolledBack`): every release
/// after a rollback's target and before the rollback itself. A rollback that was itself
/// undone does not count.
pub(crate) fn assign_statuses(records: &mut [ReleaseRecord]) {
    let mut undo_until: Option<String> = None;
    for (i, record) in records.iter_mut().enumerate() {
        let newest = if i == 0 {
            DeploymentStatus::Pending
        } else {
            DeploymentStatus::Superseded
        };
        if let Some(target) = &undo_until {
            if &record.release_id == target {
                undo_until = None;
                record.status = newest;
            } else {
                record.status = DeploymentStatus::RolledBack;
            }
            continue;
        }
        record.status = newest;
        if let Some(to) = &record.rollback_to {
            undo_until = Some(to.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, rollback_to: Option<&str>) -> ReleaseRecord {
        ReleaseRecord {
            release_id: id.into(),
            commit: "0".repeat(40),
            time: jiff::Timestamp::UNIX_EPOCH,
            author: None,
            source_revision: None,
            source_committed_at: None,
            component: "component:default/a".parse().unwrap(),
            environment: "dev".parse().unwrap(),
            summary: String::new(),
            rollback_of: None,
            rollback_to: rollback_to.map(str::to_owned),
            promoted_from: None,
            status: DeploymentStatus::Failed,
        }
    }

    fn statuses(records: &mut [ReleaseRecord]) -> Vec<&'static str> {
        assign_statuses(records);
        records.iter().map(|r| status_name(r.status)).collect()
    }

    #[test]
    fn rollback_marks_the_undone_releases() {
        // newest first: r4 restores v2 (undoing r3, which had restored v1 over v2 and v3).
        let mut recs = vec![
            rec("r5", None),
            rec("r4", Some("v2")),
            rec("r3", Some("v1")),
            rec("v3", None),
            rec("v2", None),
            rec("v1", None),
        ];
        assert_eq!(
            statuses(&mut recs),
            [
                "pending",
                "superseded",
                "rolled-back",
                "rolled-back",
                "superseded",
                "superseded"
            ]
        );
        let mut simple = vec![rec("r3", Some("v1")), rec("v2", None), rec("v1", None)];
        assert_eq!(
            statuses(&mut simple),
            ["pending", "rolled-back", "superseded"]
        );
    }
}
