//! A GitOps commit into a repository holding 10,000 files (100 component folders of 100
//! files each, with a checked-out working tree):
//!
//! - `gitops_deploy`: `GitOpsDeployer::deploy_release` of one component whose release
//!   changed one object (the tree is edited along the folder's path only; the working
//!   tree and index are updated for the changed file only);
//! - `gitops_deploy_bare`: the same into a bare clone of that repository (the commit
//!   alone);
//! - `git_cli_add_commit`: the same kind of change written to the working tree, then
//!   `git add -A && git commit -q` through the git CLI.
//!
//! After criterion's runs it prints the median of each over 21 more interleaved runs, the
//! ratio, and PASS/FAIL against the targets of issue #7 (under 50 ms, at least 5x the git
//! CLI). Run with `cargo bench -p idp-deploy --bench gitops_commit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use idp_core::git::GitRepo;
use idp_core::{EntityRef, ManifestSet, Object, Release};
use idp_deploy::gitops::GitOpsDeployer;

const COMPONENTS: usize = 100;
const FILES_PER_COMPONENT: usize = 100;
/// Timed runs of each after criterion's, for the printed medians and verdicts.
const SAMPLES: usize = 21;

fn release(component: usize, version: u64) -> Release {
    let objects = (0..FILES_PER_COMPONENT).map(|i| {
        // Object 0 carries the version: one object changes per release.
        let v = if i == 0 { version } else { 0 };
        Object::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": format!("cfg-{i:03}"), "namespace": "bench"},
            "data": {"version": v.to_string(), "payload": "x".repeat(200)}
        }))
        .unwrap()
    });
    Release::new(
        EntityRef::new("Component", "default", format!("c{component:03}")).unwrap(),
        "prod".parse().unwrap(),
        objects.collect::<ManifestSet>(),
    )
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

fn setup(rt: &tokio::runtime::Runtime, dir: &Path) -> GitOpsDeployer {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "bench"]);
    git(dir, &["config", "user.email", "bench@example.com"]);
    rt.block_on(async {
        let repo = GitRepo::open(dir).await.unwrap();
        let deployer = GitOpsDeployer::new(repo);
        for c in 0..COMPONENTS {
            deployer.deploy_release(&release(c, 0)).await.unwrap();
        }
        deployer
    })
}

fn cli_change(dir: &Path, n: u64) {
    let file = dir.join("envs/prod/c043/configmap-cfg-000.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-000\ndata:\n  version: '{n}'\n"
        ),
    )
    .unwrap();
    let status = Command::new("sh")
        .args(["-c", "git add -A && git commit -q -m change"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deployer = setup(&rt, dir.path());
    let files = walk(dir.path());
    assert!(files >= COMPONENTS * FILES_PER_COMPONENT, "{files} files");
    let mut version = 0_u64;
    // The same repository as a bare clone: the commit alone, no working tree to update.
    let bare_dir = tempfile::tempdir().unwrap();
    let bare_path = bare_dir.path().join("bare.git");
    git(
        dir.path(),
        &["clone", "-q", "--bare", ".", bare_path.to_str().unwrap()],
    );
    let bare = GitOpsDeployer::new(rt.block_on(GitRepo::open(&bare_path)).unwrap());

    let mut group = c.benchmark_group("gitops_commit_10k_files");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("gitops_deploy", |b| {
        b.iter(|| {
            version += 1;
            let out = rt
                .block_on(deployer.deploy_release(&release(42, version)))
                .unwrap();
            assert!(out.created);
        });
    });
    group.bench_function("gitops_deploy_bare", |b| {
        b.iter(|| {
            version += 1;
            let out = rt
                .block_on(bare.deploy_release(&release(42, version)))
                .unwrap();
            assert!(out.created);
        });
    });
    group.bench_function("git_cli_add_commit", |b| {
        b.iter(|| {
            version += 1;
            cli_change(dir.path(), version);
        });
    });
    group.finish();

    let mut ours = Vec::new();
    let mut ours_bare = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..SAMPLES {
        version += 1;
        let start = Instant::now();
        rt.block_on(bare.deploy_release(&release(42, version)))
            .unwrap();
        ours_bare.push(start.elapsed());
        version += 1;
        let start = Instant::now();
        rt.block_on(deployer.deploy_release(&release(42, version)))
            .unwrap();
        ours.push(start.elapsed());
        version += 1;
        let start = Instant::now();
        cli_change(dir.path(), version);
        theirs.push(start.elapsed());
    }
    let (ours, ours_bare, theirs) = (median(ours), median(ours_bare), median(theirs));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
    let ratio_bare = theirs.as_secs_f64() / ours_bare.as_secs_f64();
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "gitops commit into 10,000 files, median of {SAMPLES}: ours {:.1} ms with the working tree and index updated ({:.1} ms into a bare repository); git add -A && git commit {:.1} ms; ratio {ratio:.1}x ({ratio_bare:.1}x bare)",
        ms(ours),
        ms(ours_bare),
        ms(theirs),
    );
    println!(
        "target < 50 ms: {} (worktree), {} (bare); target >= 5x the git CLI: {} (worktree), {} (bare)",
        verdict(ours < Duration::from_millis(50)),
        verdict(ours_bare < Duration::from_millis(50)),
        verdict(ratio >= 5.0),
        verdict(ratio_bare >= 5.0),
    );
    // The working tree stays consistent with the branch: nothing to commit.
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        status.stdout.is_empty(),
        "working tree not clean:\n{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

fn walk(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".git" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            n += walk(&entry.path());
        } else {
            n += 1;
        }
    }
    n
}

criterion_group!(benches, bench);
criterion_main!(benches);
