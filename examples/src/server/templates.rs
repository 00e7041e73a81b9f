//! The golden-path templates (`examples/templates/*`), embedded in the binary so a fresh
//! machine needs no checkout: their `template.yaml` files are seeded into the demo catalog
//! as Template entities, and every file (skeletons included) is written under
//! `<data>/templates/<name>/` at start, where the scaffolder resolves relative
//! `fetch:template` URLs.

use std::path::Path;

/// `(path under examples/templates, content)` of every embedded file.
pub const FILES: &[(&str, &str)] = &[
    (
        "object-bucket/crossplane/bucket.yaml",
        include_str!("../../templates/object-bucket/crossplane/bucket.yaml"),
    ),
    (
        "object-bucket/kubernetes/objectbucketclaim.yaml",
        include_str!("../../templates/object-bucket/kubernetes/objectbucketclaim.yaml"),
    ),
    (
        "object-bucket/template.yaml",
        include_str!("../../templates/object-bucket/template.yaml"),
    ),
    (
        "postgres-database/crossplane/claim.yaml",
        include_str!("../../templates/postgres-database/crossplane/claim.yaml"),
    ),
    (
        "postgres-database/kubernetes/service.yaml",
        include_str!("../../templates/postgres-database/kubernetes/service.yaml"),
    ),
    (
        "postgres-database/kubernetes/statefulset.yaml",
        include_str!("../../templates/postgres-database/kubernetes/statefulset.yaml"),
    ),
    (
        "postgres-database/template.yaml",
        include_str!("../../templates/postgres-database/template.yaml"),
    ),
    (
        "rust-service/skeleton/${{ '.github' if values.ci == 'github-actions' else '' }}/workflows/ci.yaml",
        include_str!(
            "../../templates/rust-service/skeleton/${{ '.github' if values.ci == 'github-actions' else '' }}/workflows/ci.yaml"
        ),
    ),
    (
        "rust-service/skeleton/${{ '.gitlab-ci.yml' if values.ci == 'gitlab-ci' else '' }}",
        include_str!(
            "../../templates/rust-service/skeleton/${{ '.gitlab-ci.yml' if values.ci == 'gitlab-ci' else '' }}"
        ),
    ),
    (
        "rust-service/skeleton/Cargo.toml",
        include_str!("../../templates/rust-service/skeleton/Cargo.toml"),
    ),
    (
        "rust-service/skeleton/README.md",
        include_str!("../../templates/rust-service/skeleton/README.md"),
    ),
    (
        "rust-service/skeleton/catalog-info.yaml",
        include_str!("../../templates/rust-service/skeleton/catalog-info.yaml"),
    ),
    (
        "rust-service/skeleton/score.yaml",
        include_str!("../../templates/rust-service/skeleton/score.yaml"),
    ),
    (
        "rust-service/skeleton/src/main.rs",
        include_str!("../../templates/rust-service/skeleton/src/main.rs"),
    ),
    (
        "rust-service/template.yaml",
        include_str!("../../templates/rust-service/template.yaml"),
    ),
];

/// The `rust-service` template entity.
pub const RUST_SERVICE: &str = include_str!("../../templates/rust-service/template.yaml");
/// The `postgres-database` template entity.
pub const POSTGRES_DATABASE: &str = include_str!("../../templates/postgres-database/template.yaml");
/// The `object-bucket` template entity.
pub const OBJECT_BUCKET: &str = include_str!("../../templates/object-bucket/template.yaml");

/// Write every embedded file under `dir` (`dir/<template>/...`), replacing what is there,
/// so the binary's version of each template is the one that runs.
pub fn materialize(dir: &Path) -> idp_core::Result<()> {
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                idp_core::Error::unavailable(format!(
                    "cannot create {}; is the data directory writable?",
                    parent.display()
                ))
                .with_source(e)
            })?;
        }
        std::fs::write(&path, text).map_err(|e| {
            idp_core::Error::unavailable(format!("cannot write {}", path.display())).with_source(e)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A template added to examples/templates must be added to [`FILES`] too.
    #[test]
    fn every_template_file_is_embedded() {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(
                        path.strip_prefix(base)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk = Vec::new();
        walk(&base, &base, &mut on_disk);
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn materialize_writes_the_skeletons() {
        let dir = tempfile::tempdir().unwrap();
        materialize(dir.path()).unwrap();
        assert!(
            dir.path()
                .join("rust-service/skeleton/catalog-info.yaml")
                .is_file()
        );
        assert!(dir.path().join("rust-service/template.yaml").is_file());
    }
}
