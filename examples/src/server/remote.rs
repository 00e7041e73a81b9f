//! A catalog provider over a Git remote: each read fetches the branch into a local bare
//! mirror, then reads it like any local repository.

use async_trait::async_trait;
use idp_catalog::Stage;
use idp_catalog::provider::{EntityProvider, GitProvider, ProviderOutput, StagedOutput};
use idp_core::git::GitRepo;

/// Fetch, then read through the wrapped [`GitProvider`].
#[derive(Debug)]
pub struct FetchingProvider {
    inner: GitProvider,
    mirror: GitRepo,
    remote: String,
    branch: String,
}

impl FetchingProvider {
    /// Read `remote`'s `branch` through `inner`, which reads `mirror`.
    pub fn new(inner: GitProvider, mirror: GitRepo, remote: String, branch: String) -> Self {
        Self {
            inner,
            mirror,
            remote,
            branch,
        }
    }
}

#[async_trait]
impl EntityProvider for FetchingProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn read(&self) -> idp_core::Result<ProviderOutput> {
        self.fetch().await?;
        self.inner.read().await
    }

    async fn read_staged(&self, stage: &Stage) -> idp_core::Result<StagedOutput> {
        self.fetch().await?;
        self.inner.read_staged(stage).await
    }
}

impl FetchingProvider {
    async fn fetch(&self) -> idp_core::Result<()> {
        let spec = format!("+refs/heads/{0}:refs/heads/{0}", self.branch);
        self.mirror
            .fetch(&self.remote, &[spec.as_str()])
            .await
            .map_err(|e| e.context(format!("fetching the catalog from {}", self.remote)))
    }
}
