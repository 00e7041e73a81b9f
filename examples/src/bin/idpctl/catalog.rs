//! `idpctl catalog ...`: validate, list, search and explore Backstage catalog files, and
//! generate a synthetic organisation. Each subcommand is a thin layer over idp-catalog.

use std::io::Write;
use std::path::{Path, PathBuf};

use idp_catalog::provider::{FileProvider, refresh};
use idp_catalog::relations::RelationType;
use idp_catalog::search::SearchIndex;
use idp_catalog::{InMemoryCatalog, Snapshot};
use idp_core::EntityRef;
use idp_core::model::Entity;
use serde::Serialize;
use serde_json::Value;

use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// Every path must exist: a typo is a usage error (exit 2), not an invalid document.
fn check_exist(paths: &[PathBuf]) -> Result<(), Failure> {
    for p in paths {
        if std::fs::metadata(p).is_err() {
            return Err(Failure::io(format!(
                "cannot read {}: no such file or directory",
                p.display()
            )));
        }
    }
    Ok(())
}

/// One document's verdict (the JSON shape of `catalog validate --format json`).
#[derive(Debug, Serialize)]
struct ValidateRow {
    file: String,
    /// 0-based; `null` when the file is not valid YAML.
    document: Option<usize>,
    kind: Option<String>,
    #[serde(rename = "ref")]
    entity_ref: Option<String>,
    valid: bool,
    errors: Vec<String>,
}

/// `catalog validate`: exit 1 when any document is invalid.
pub fn validate(paths: &[PathBuf], out: &Out) -> Result<ExitCode, Failure> {
    check_exist(paths)?;
    if idp_catalog::load::yaml_files(paths).is_empty() {
        return Err(Failure::usage(
            "no catalog files found (looked for *.yaml and *.yml)",
        ));
    }
    let rows: Vec<ValidateRow> = idp_catalog::load::validate_paths(paths)
        .into_iter()
        .map(|r| ValidateRow {
            file: r.file,
            document: r.document,
            kind: r.kind,
            entity_ref: r.entity_ref,
            valid: r.valid,
            errors: r.errors,
        })
        .collect();
    let invalid = rows.iter().filter(|r| !r.valid).count();
    match out.format {
        Format::Json | Format::Yaml => out.data(&rows)?,
        Format::Table => {
            for r in &rows {
                let doc = r
                    .document
                    .map_or_else(String::new, |d| format!(" (document {d})"));
                let what = r.entity_ref.as_deref().or(r.kind.as_deref()).unwrap_or("");
                if r.valid {
                    say!(
                        "{} {}{doc} {what}",
                        out.paint("ok   ", Color::Green),
                        r.file
                    );
                } else {
                    say!("{} {}{doc} {what}", out.paint("error", Color::Red), r.file);
                    for e in &r.errors {
                        say!("        {e}");
                    }
                }
            }
            say!("{} document(s), {invalid} invalid", rows.len());
        }
    }
    Ok(if invalid > 0 {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    })
}

/// Load every catalog file under `paths` into an in-memory catalog through
/// `FileProvider`s (one per path and extension); rejected entities are reported on
/// stderr and left out.
fn load(paths: &[PathBuf]) -> Result<Snapshot, Failure> {
    check_exist(paths)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let catalog = InMemoryCatalog::new();
    let mut providers = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        if path.is_dir() {
            providers
                .push(FileProvider::new(format!("path-{i}-yaml"), path).with_glob("**/*.yaml"));
            providers.push(FileProvider::new(format!("path-{i}-yml"), path).with_glob("**/*.yml"));
        } else {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            providers.push(FileProvider::new(format!("path-{i}"), parent).with_glob(name));
        }
    }
    for provider in &providers {
        let report = runtime.block_on(refresh(&catalog, provider))?;
        for rejection in &report.rejected {
            eprintln!("warning: skipped {rejection}");
        }
    }
    Ok(catalog.snapshot())
}

/// One entity in `catalog list`.
#[derive(Debug, Serialize)]
struct ListRow {
    #[serde(rename = "ref")]
    entity_ref: String,
    kind: String,
    #[serde(rename = "type")]
    entity_type: Option<String>,
    owner: Option<String>,
    lifecycle: Option<String>,
}

fn list_row(entity: &Entity) -> ListRow {
    let spec = |f: &str| entity.spec_str(f).map(str::to_owned);
    ListRow {
        entity_ref: entity.entity_ref().to_string(),
        kind: entity.kind().to_owned(),
        entity_type: spec("type"),
        owner: spec("owner"),
        lifecycle: spec("lifecycle"),
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let pad = w.saturating_sub(cell.chars().count()) + 2;
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.trim_end().to_owned()
    };
    // A closed pipe (`| head`) ends the listing quietly.
    let mut stdout = std::io::stdout().lock();
    let head: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    if writeln!(stdout, "{}", line(&head)).is_err() {
        return;
    }
    for row in rows {
        if writeln!(stdout, "{}", line(row)).is_err() {
            return;
        }
    }
}

fn dash(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "-".to_owned())
}

/// `catalog list`: the entities matching the filters (none: all).
pub fn list(paths: &[PathBuf], filters: &[String], out: &Out) -> Result<ExitCode, Failure> {
    let query = idp_catalog::filter::parse_filters(filters)?;
    let snapshot = load(paths)?;
    let rows: Vec<ListRow> = snapshot
        .refs(&query)
        .iter()
        .filter_map(|r| snapshot.get(r))
        .map(|e| list_row(&e))
        .collect();
    match out.format {
        Format::Json | Format::Yaml => out.data(&rows)?,
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.entity_ref.clone(),
                        dash(r.entity_type.as_ref()),
                        dash(r.owner.as_ref()),
                        dash(r.lifecycle.as_ref()),
                    ]
                })
                .collect();
            table(&["REF", "TYPE", "OWNER", "LIFECYCLE"], &cells);
        }
    }
    Ok(ExitCode::Ok)
}

/// One search result.
#[derive(Debug, Serialize)]
struct SearchRow {
    #[serde(rename = "ref")]
    entity_ref: String,
    score: f32,
    title: Option<String>,
    description: Option<String>,
}

/// `catalog search`: ranked results, best first.
pub fn search(
    query: &str,
    paths: &[PathBuf],
    limit: usize,
    out: &Out,
) -> Result<ExitCode, Failure> {
    let snapshot = load(paths)?;
    let index = SearchIndex::build(&snapshot);
    let rows: Vec<SearchRow> = index
        .search(query, limit)
        .into_iter()
        .map(|hit| {
            let meta = |f: &str| {
                snapshot.get(&hit.entity_ref).and_then(|e| {
                    e.as_map()
                        .get("metadata")
                        .and_then(|m| m.get(f))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
            };
            SearchRow {
                entity_ref: hit.entity_ref.to_string(),
                score: hit.score,
                title: meta("title"),
                description: meta("description"),
            }
        })
        .collect();
    match out.format {
        Format::Json | Format::Yaml => out.data(&rows)?,
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        format!("{:.2}", r.score),
                        r.entity_ref.clone(),
                        dash(r.description.as_ref()),
                    ]
                })
                .collect();
            table(&["SCORE", "REF", "DESCRIPTION"], &cells);
        }
    }
    Ok(ExitCode::Ok)
}

/// One relation of the entity asked about.
#[derive(Debug, Serialize)]
struct Edge {
    #[serde(rename = "type")]
    relation: &'static str,
    target: String,
    /// Whether the target is in the loaded catalog.
    known: bool,
}

#[derive(Debug, Serialize)]
struct Graph {
    #[serde(rename = "ref")]
    entity_ref: String,
    relations: Vec<Edge>,
}

/// `catalog graph`: every relation of `entity`, outgoing and incoming (as the inverse
/// type), sorted by type and target.
pub fn graph(entity: &str, paths: &[PathBuf], out: &Out) -> Result<ExitCode, Failure> {
    let entity_ref: EntityRef = entity.parse().map_err(|e: idp_core::Error| {
        Failure::usage(format!(
            "{entity:?} is not an entity reference (write kind:namespace/name, e.g. component:default/cart): {}",
            e.report()
        ))
    })?;
    let snapshot = load(paths)?;
    if !snapshot.contains(&entity_ref) {
        return Err(Failure::usage(format!(
            "{entity_ref} is not in the catalog read from the given paths"
        )));
    }
    let mut relations = Vec::new();
    for relation in RelationType::ALL {
        for target in snapshot.related(&entity_ref, relation) {
            let known = target
                .parse::<EntityRef>()
                .is_ok_and(|r| snapshot.contains(&r));
            relations.push(Edge {
                relation: relation.as_str(),
                target,
                known,
            });
        }
    }
    relations.sort_by(|a, b| (a.relation, &a.target).cmp(&(b.relation, &b.target)));
    relations.dedup_by(|a, b| a.relation == b.relation && a.target == b.target);
    let graph = Graph {
        entity_ref: entity_ref.to_string(),
        relations,
    };
    match out.format {
        Format::Json | Format::Yaml => out.data(&graph)?,
        Format::Table => {
            say!("{}", graph.entity_ref);
            for e in &graph.relations {
                let note = if e.known { "" } else { "  (not in catalog)" };
                say!("  {:<14} {}{note}", e.relation, e.target);
            }
        }
    }
    Ok(ExitCode::Ok)
}

#[derive(Debug, Serialize)]
struct Generated {
    dir: PathBuf,
    entities: usize,
    files: Vec<PathBuf>,
}

/// `catalog generate`: write a synthetic organisation.
pub fn generate(count: usize, dir: &Path, seed: u64, out: &Out) -> Result<ExitCode, Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::io(format!("cannot create {}: {e}", dir.display())))?;
    let files = idp_catalog::generate::write_org(dir, count, seed)?;
    let generated = Generated {
        dir: dir.to_owned(),
        entities: count,
        files,
    };
    match out.format {
        Format::Json | Format::Yaml => out.data(&generated)?,
        Format::Table => say!(
            "wrote {} entities in {} file(s) under {}",
            generated.entities,
            generated.files.len(),
            generated.dir.display()
        ),
    }
    Ok(ExitCode::Ok)
}

/// `catalog schema`: the JSON Schema of a built-in kind (JSON, or YAML with
/// `--format yaml`).
pub fn schema(kind: &str, out: &Out) -> Result<ExitCode, Failure> {
    let Some(builtin) = idp_catalog::kinds::BuiltinKind::from_kind_ignore_case(kind) else {
        let known: Vec<&str> = idp_catalog::kinds::BuiltinKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        return Err(Failure::usage(format!(
            "unknown kind {kind:?}; the built-in kinds are {}",
            known.join(", ")
        )));
    };
    let schema = idp_catalog::kinds::schema(builtin);
    match out.format {
        Format::Yaml => out.data(&schema)?,
        Format::Json | Format::Table => {
            let json = Out::new(Format::Json);
            json.data(&schema)?;
        }
    }
    Ok(ExitCode::Ok)
}
