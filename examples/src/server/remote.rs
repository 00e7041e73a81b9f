//! A catalog provider over a Git remote: each read fetches the branch into a local bare
//! mirror, then reads it like any local repository.

use async_trait::async_trait;
use idp_catalog::provider::{EntityProvider, GitProvider, ProviderOutput};
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
        let spec = format!("+refs/heads/{0}:refs/heads/{0}", self.branch);
        self.mirror
            .fetch(&self.remote, &[spec.as_str()])
            .await
            .map_err(|e| e.context(format!("fetching the catalog from {}", self.remote)))?;
        self.inner.read().await
    }
}
