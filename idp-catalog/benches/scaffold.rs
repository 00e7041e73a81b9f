//! Scaffolder benchmark: render a 1,000-file skeleton with `fetch:template` (templated
//! contents and file names) into a fresh workspace. The target is well under 1 s.
//!
//! Run with `cargo bench -p idp-catalog --bench scaffold`. Besides criterion's
//! measurements it prints a one-shot figure with wall time and the CPU time the process
//! used (Linux), which tells rendering cost from waiting on a busy machine. Set
//! `TMPDIR=/dev/shm` to keep a slow disk out of the figure (every file is created once).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use idp_catalog::scaffolder::{ActionRegistry, RunOptions, Scaffolder, TaskStatus, Template, User};
use serde_json::json;

const FILES: usize = 1_000;

fn skeleton(root: &Path) {
    for i in 0..FILES {
        let dir = root.join(format!("skeleton/module-{}", i / 50));
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "// file {i} of ${{{{ values.name }}}}\n\
             pub const OWNER: &str = \"${{{{ values.owner }}}}\";\n\
             {{% for feature in values.features %}}pub const FEATURE_${{{{ loop.index }}}}: &str = \"${{{{ feature }}}}\";\n{{% endfor %}}\
             pub fn id() -> u32 {{ {i} }}\n"
        );
        std::fs::write(dir.join(format!("${{{{ values.name }}}}_{i}.rs")), text).unwrap();
    }
}

fn template(root: &Path) -> Template {
    Template::from_yaml(
        r"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: bench}
spec:
  type: bench
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: ./skeleton
        values:
          name: ${{ parameters.name }}
          owner: ${{ parameters.owner }}
          features: ${{ parameters.features }}
",
    )
    .unwrap()
    .with_base_dir(root)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    skeleton(dir.path());
    let t = template(dir.path());
    let values = json!({"name": "orders", "owner": "team-a", "features": ["a", "b", "c"]});
    let scaffolder = Scaffolder::new(ActionRegistry::builtin());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let once = || {
        let task = rt
            .block_on(scaffolder.run(&t, &values, &User::anonymous(), RunOptions::new()))
            .unwrap();
        assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    };
    let cpu = common::cpu_seconds();
    let start = Instant::now();
    once();
    let took = start.elapsed();
    println!(
        "fetch:template of a {FILES}-file skeleton: {:.1} ms wall, {:.0} ms CPU (target: < 1000 ms)",
        took.as_secs_f64() * 1000.0,
        (common::cpu_seconds() - cpu) * 1000.0
    );
    c.bench_function("fetch:template 1,000 files", |b| b.iter(once));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
