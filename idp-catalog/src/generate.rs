//! A synthetic but realistic organisation, for benchmarks, demos and
//! `idpctl catalog generate`: groups in a tree, users, domains, systems, components,
//! APIs and resources, wired with owners, systems, provided and consumed APIs and
//! dependencies. Deterministic for a given `(count, seed)`.
//!
//! ```
//! let org = idp_catalog::generate::org(500, 1);
//! assert_eq!(org.len(), 500);
//! assert_eq!(org, idp_catalog::generate::org(500, 1));
//! let v = idp_catalog::validate::Validator::new();
//! assert!(org.iter().all(|e| v.validate(e).is_empty()));
//! ```

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "payments",
    "checkout",
    "cart",
    "search",
    "catalog",
    "billing",
    "ledger",
    "identity",
    "auth",
    "profile",
    "orders",
    "inventory",
    "shipping",
    "pricing",
    "reviews",
    "media",
    "notify",
    "email",
    "analytics",
    "reporting",
    "fraud",
    "risk",
    "loyalty",
    "promo",
    "gateway",
    "mobile",
    "web",
    "partner",
    "support",
    "invoice",
];
const LANGS: &[&str] = &[
    "java",
    "go",
    "rust",
    "python",
    "typescript",
    "kotlin",
    "c++",
];
const LIFECYCLES: &[&str] = &["production", "experimental", "deprecated"];
const COMPONENT_TYPES: &[&str] = &["service", "website", "library", "pipeline"];
const API_TYPES: &[&str] = &["openapi", "grpc", "asyncapi", "graphql"];
const RESOURCE_TYPES: &[&str] = &["database", "s3-bucket", "queue", "cache"];

/// How many entities of each kind an organisation of `count` entities has.
fn shares(count: usize) -> [usize; 7] {
    // groups, users, domains, systems, apis, resources, components
    let groups = (count / 50).max(1);
    let users = count / 10;
    let domains = (count / 1000).max(1);
    let systems = (count / 25).max(1);
    let apis = count * 15 / 100;
    let resources = count / 10;
    let used = groups + users + domains + systems + apis + resources;
    let components = count.saturating_sub(used);
    let mut s = [groups, users, domains, systems, apis, resources, components];
    // Tiny counts: trim from the end so the total is exact.
    let mut total: usize = s.iter().sum();
    let mut i = s.len();
    while total > count && i > 0 {
        i -= 1;
        let cut = (total - count).min(s[i]);
        s[i] -= cut;
        total -= cut;
    }
    s
}

fn name(prefix: &str, i: usize, rng: &mut Rng) -> String {
    format!("{}-{prefix}-{i}", rng.pick(WORDS))
}

/// `count` entity envelopes forming a consistent organisation (every reference resolves).
///
/// ```
/// let org = idp_catalog::generate::org(100, 42);
/// assert!(org.iter().any(|e| e["kind"] == "Group"));
/// assert!(org.iter().any(|e| e["kind"] == "Component"));
/// ```
pub fn org(count: usize, seed: u64) -> Vec<Value> {
    let [
        n_groups,
        n_users,
        n_domains,
        n_systems,
        n_apis,
        n_resources,
        n_components,
    ] = shares(count);
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(count);
    let groups: Vec<String> = (0..n_groups).map(|i| format!("team-{i}")).collect();
    // A tree: group i's parent is group (i-1)/8.
    for (i, g) in groups.iter().enumerate() {
        let children: Vec<&String> = (i * 8 + 1..=(i * 8 + 8))
            .filter(|c| *c < n_groups)
            .map(|c| &groups[c])
            .collect();
        let mut spec = json!({"type": if i == 0 { "organization" } else { "team" }, "children": children,
            "profile": {"displayName": format!("Team {i}"), "email": format!("{g}@example.com")}});
        if i > 0 {
            spec["parent"] = json!(groups[(i - 1) / 8]);
        }
        out.push(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": g, "description": format!("The {} team", rng.pick(WORDS))},
            "spec": spec}),
        );
    }
    for i in 0..n_users {
        let team = &groups[rng.below(n_groups)];
        out.push(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User",
            "metadata": {"name": format!("user-{i}")},
            "spec": {"profile": {"displayName": format!("User {i}"), "email": format!("user-{i}@example.com")},
                     "memberOf": [team]}}));
    }
    let domains: Vec<String> = (0..n_domains)
        .map(|i| name("domain", i, &mut rng))
        .collect();
    for d in &domains {
        out.push(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Domain",
            "metadata": {"name": d, "description": format!("Everything about {d}")},
            "spec": {"owner": groups[rng.below(n_groups)]}}),
        );
    }
    let systems: Vec<String> = (0..n_systems)
        .map(|i| name("system", i, &mut rng))
        .collect();
    for s in &systems {
        out.push(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "System",
            "metadata": {"name": s, "description": format!("The {s} system"), "tags": [rng.pick(WORDS)]},
            "spec": {"owner": groups[rng.below(n_groups)], "domain": domains[rng.below(n_domains)]}}));
    }
    let apis: Vec<String> = (0..n_apis).map(|i| name("api", i, &mut rng)).collect();
    for a in &apis {
        let t = rng.pick(API_TYPES);
        out.push(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": a, "description": format!("The {a} {t} API"), "tags": [t]},
            "spec": {"type": t, "lifecycle": rng.pick(LIFECYCLES), "owner": groups[rng.below(n_groups)],
                     "system": systems[rng.below(n_systems)],
                     "definition": format!("openapi: 3.0.0\ninfo:\n  title: {a}\n  version: 1.0.0\npaths: {{}}\n")}}));
    }
    let resources: Vec<String> = (0..n_resources).map(|i| name("db", i, &mut rng)).collect();
    for r in &resources {
        out.push(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Resource",
            "metadata": {"name": r, "description": format!("Storage for {r}")},
            "spec": {"type": rng.pick(RESOURCE_TYPES), "owner": groups[rng.below(n_groups)],
                     "system": systems[rng.below(n_systems)]}}),
        );
    }
    let components: Vec<String> = (0..n_components)
        .map(|i| name("svc", i, &mut rng))
        .collect();
    for (i, c) in components.iter().enumerate() {
        let lang = rng.pick(LANGS);
        let mut spec = json!({"type": rng.pick(COMPONENT_TYPES), "lifecycle": rng.pick(LIFECYCLES),
            "owner": groups[rng.below(n_groups)], "system": systems[rng.below(n_systems)]});
        if !apis.is_empty() {
            spec["providesApis"] = json!([apis[rng.below(apis.len())]]);
            spec["consumesApis"] =
                json!([apis[rng.below(apis.len())], apis[rng.below(apis.len())]]);
        }
        let mut deps: Vec<String> = Vec::new();
        if !resources.is_empty() {
            deps.push(format!(
                "resource:{}",
                resources[rng.below(resources.len())]
            ));
        }
        if i > 0 {
            deps.push(format!("component:{}", components[rng.below(i)]));
        }
        spec["dependsOn"] = json!(deps);
        out.push(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": c, "title": format!("{} {}", c.replace('-', " "), lang),
                "description": format!("Handles {} for the {} flow, written in {lang}", rng.pick(WORDS), rng.pick(WORDS)),
                "tags": [lang, rng.pick(WORDS)],
                "labels": {"tier": rng.pick(&["gold", "silver", "bronze"])},
                "annotations": {"github.com/project-slug": format!("example/{c}"), "backstage.io/techdocs-ref": "dir:."},
                "links": [{"url": format!("https://dashboards.example.com/{c}"), "title": "Dashboard"}]},
            "spec": spec}));
    }
    out
}

/// Write [`org`] as YAML under `dir`: `org.yaml` (groups, users, domains), one
/// `systems/<name>.yaml` per chunk of 500 other entities, and a root `catalog-info.yaml`
/// Location pointing at all of them. Returns the files written.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let files = idp_catalog::generate::write_org(dir.path(), 300, 1).unwrap();
/// assert!(files.iter().any(|f| f.ends_with("catalog-info.yaml")));
/// let reports = idp_catalog::load::validate_paths(&[dir.path()]);
/// assert_eq!(reports.len(), 301);
/// assert!(reports.iter().all(|r| r.valid));
/// ```
pub fn write_org(dir: &Path, count: usize, seed: u64) -> idp_core::Result<Vec<PathBuf>> {
    let io = |e: std::io::Error, what: &Path| {
        idp_core::Error::unavailable(format!("cannot write {}", what.display())).with_source(e)
    };
    let entities = org(count, seed);
    let (org_part, rest): (Vec<&Value>, Vec<&Value>) = entities
        .iter()
        .partition(|e| matches!(e["kind"].as_str(), Some("Group" | "User" | "Domain")));
    let sys_dir = dir.join("systems");
    std::fs::create_dir_all(&sys_dir).map_err(|e| io(e, &sys_dir))?;
    let mut files = Vec::new();
    let mut targets = Vec::new();
    let mut write = |path: PathBuf, docs: &[&Value]| -> idp_core::Result<()> {
        let mut text = String::new();
        for d in docs {
            text.push_str("---\n");
            text.push_str(
                &serde_saphyr::to_string(d)
                    .map_err(|e| idp_core::Error::internal("cannot render YAML").with_source(e))?,
            );
        }
        std::fs::write(&path, text).map_err(|e| io(e, &path))?;
        files.push(path);
        Ok(())
    };
    write(dir.join("org.yaml"), &org_part)?;
    targets.push("./org.yaml".to_owned());
    for (i, chunk) in rest.chunks(500).enumerate() {
        let name = format!("part-{i:04}.yaml");
        write(sys_dir.join(&name), chunk)?;
        targets.push(format!("./systems/{name}"));
    }
    let location = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Location",
        "metadata": {"name": "generated-org", "description": format!("{count} generated entities (seed {seed})")},
        "spec": {"targets": targets}});
    write(dir.join("catalog-info.yaml"), &[&location])?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for n in [0, 1, 5, 17, 100, 1000, 250_000] {
            assert_eq!(shares(n).iter().sum::<usize>(), n, "{n}");
        }
    }

    #[test]
    fn names_are_unique() {
        let org = org(5000, 3);
        let mut refs: Vec<String> = org
            .iter()
            .map(|e| format!("{}:{}", e["kind"], e["metadata"]["name"]))
            .collect();
        refs.sort();
        let n = refs.len();
        refs.dedup();
        assert_eq!(refs.len(), n);
    }
}
