//! `idpctl scaffold`: run a Backstage v1beta3 template locally, and list the actions.

use std::path::PathBuf;
use std::sync::Arc;

use idp_catalog::InMemoryCatalog;
use idp_catalog::scaffolder::{
    ActionRegistry, RunOptions, Scaffolder, Task, TaskStatus, Template, User, property_type,
};
use serde_json::{Map, Value};

use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// Run a Backstage software template (scaffolder.backstage.io/v1beta3) locally.
///
/// Values come from a YAML/JSON file (--values) and/or --set key=value (dotted keys for
/// nested objects; numbers, booleans, lists and objects are converted by the template's
/// parameter types). Parameters are validated against the template first (exit 2 with
/// every problem). Relative fetch URLs resolve against the template's folder; publish:git
/// pushes to real remotes (use file:// paths to try it locally); catalog:register writes
/// into an in-memory catalog and prints what it registered. With --dry-run nothing leaves
/// the workspace (no push, no registration): the would-be files are printed, and written
/// to --output when given. Exits 1 when a step fails.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "EXAMPLES:\n  idpctl scaffold --template examples/templates/rust-service/template.yaml \\\n      --set name=orders --set owner=group:default/team-a --set repoUrl=file:///tmp/orders.git --output orders/\n  idpctl scaffold --template t.yaml --values values.yaml --dry-run --format json\n  idpctl scaffold actions"
)]
pub struct ScaffoldArgs {
    #[command(subcommand)]
    command: Option<ScaffoldCommand>,
    /// The template file (template.yaml).
    #[arg(long, value_name = "PATH")]
    template: Option<PathBuf>,
    /// A YAML or JSON file with the parameter values.
    #[arg(long, value_name = "FILE")]
    values: Option<PathBuf>,
    /// One parameter value (repeatable); overrides --values.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Keep the workspace (the generated files) in this folder; it must be empty or new.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Show what would be created; push nothing, register nothing.
    #[arg(long)]
    dry_run: bool,
    /// The requesting user's entity reference (`user.ref` in templates).
    #[arg(long, value_name = "REF", default_value = "user:default/idpctl")]
    user: String,
    /// A secret for `${{ secrets.KEY }}` (repeatable); redacted in all output.
    #[arg(long = "secret", value_name = "KEY=VALUE")]
    secrets: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
enum ScaffoldCommand {
    /// List the registered actions with their input schemas.
    #[command(
        after_help = "EXAMPLES:\n  idpctl scaffold actions\n  idpctl scaffold actions --format json"
    )]
    Actions,
}

/// Entry point of `idpctl scaffold …`.
pub fn run(args: &ScaffoldArgs, out: &Out) -> Result<ExitCode, Failure> {
    match args.command {
        Some(ScaffoldCommand::Actions) => actions(out),
        None => scaffold(args, out),
    }
}

fn actions(out: &Out) -> Result<ExitCode, Failure> {
    let registry = ActionRegistry::builtin();
    if out.format == Format::Table {
        for action in registry.list() {
            say!("{}", out.paint(action.id(), Color::Green));
            say!("    {}", action.description());
            let schema = action.input_schema();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                for (name, prop) in props {
                    let ty = match &prop["type"] {
                        Value::String(s) => s.clone(),
                        Value::Array(a) => a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("|"),
                        _ => "any".to_owned(),
                    };
                    let req = if required.contains(&name.as_str()) {
                        " (required)"
                    } else {
                        ""
                    };
                    let desc = prop["description"].as_str().unwrap_or("");
                    say!("    {name}: {ty}{req}  {desc}");
                }
            }
        }
    } else {
        let list: Vec<Value> = registry
            .list()
            .iter()
            .map(|a| {
                serde_json::json!({
                    "id": a.id(),
                    "description": a.description(),
                    "inputSchema": a.input_schema(),
                    "outputSchema": a.output_schema(),
                })
            })
            .collect();
        out.data(&list)?;
    }
    Ok(ExitCode::Ok)
}

fn parse_scalar(template: &Template, key: &str, raw: &str) -> Result<Value, Failure> {
    let bad = |what: &str| Failure::usage(format!("--set {key}={raw}: {raw:?} is not {what}"));
    Ok(match property_type(template, key).as_deref() {
        Some("integer") => Value::from(raw.parse::<i64>().map_err(|_| bad("an integer"))?),
        Some("number") => {
            let f: f64 = raw.parse().map_err(|_| bad("a number"))?;
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        Some("boolean") => Value::Bool(raw.parse().map_err(|_| bad("true or false"))?),
        Some("array" | "object") => serde_json::from_str(raw).map_err(|_| bad("JSON"))?,
        _ => Value::String(raw.to_owned()),
    })
}

fn set_path(values: &mut Map<String, Value>, key: &str, value: Value) {
    let mut parts = key.split('.').peekable();
    let mut cur = values;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_owned(), value);
            return;
        }
        let entry = cur
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        cur = next;
    }
}

fn load_values(args: &ScaffoldArgs, template: &Template) -> Result<Value, Failure> {
    let mut values = Map::new();
    if let Some(path) = &args.values {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
        let docs = idp_catalog::parse::parse_documents(&text)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        match docs.into_iter().next().map(|d| d.value) {
            Some(Value::Object(m)) => values = m,
            None => {}
            Some(_) => {
                return Err(Failure::usage(format!(
                    "{}: the values file must be a mapping of parameter names to values",
                    path.display()
                )));
            }
        }
    }
    for pair in &args.set {
        let (key, raw) = pair.split_once('=').ok_or_else(|| {
            Failure::usage(format!(
                "--set {pair}: expected KEY=VALUE, e.g. --set name=orders"
            ))
        })?;
        let value = parse_scalar(template, key, raw)?;
        set_path(&mut values, key, value);
    }
    Ok(Value::Object(values))
}

fn scaffold(args: &ScaffoldArgs, out: &Out) -> Result<ExitCode, Failure> {
    let path = args.template.as_ref().ok_or_else(|| {
        Failure::usage("missing --template PATH (or use `idpctl scaffold actions`)")
    })?;
    let template = Template::load(path)?;
    let values = load_values(args, &template)?;
    let mut options = RunOptions::new().dry_run(args.dry_run);
    for pair in &args.secrets {
        let (k, v) = pair
            .split_once('=')
            // Never echo the argument: it may be the secret itself.
            .ok_or_else(|| Failure::usage("--secret: expected KEY=VALUE"))?;
        options = options.secret(k, v);
    }
    if let Some(dir) = &args.output {
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(Failure::usage(format!(
                "--output {}: the folder is not empty; choose a new or empty folder",
                dir.display()
            )));
        }
        options = options.workspace(dir);
    }
    let catalog = Arc::new(InMemoryCatalog::new());
    let scaffolder = Scaffolder::new(ActionRegistry::builtin()).with_catalog(catalog);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("cannot start the async runtime: {e}")))?;
    let task =
        runtime.block_on(scaffolder.run(&template, &values, &User::new(&args.user), options))?;
    if out.format == Format::Table {
        print_task(&task, out)?;
    } else {
        out.data(&task)?;
    }
    Ok(match task.status {
        TaskStatus::Completed => ExitCode::Ok,
        TaskStatus::Failed | TaskStatus::Cancelled => ExitCode::Findings,
    })
}

fn print_task(task: &Task, out: &Out) -> Result<(), Failure> {
    for step in &task.steps {
        let status = serde_json::to_value(step.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let painted = match step.status {
            idp_catalog::scaffolder::StepStatus::Failed => out.paint(&status, Color::Red),
            idp_catalog::scaffolder::StepStatus::Completed => out.paint(&status, Color::Green),
            _ => status,
        };
        say!("{:<10} {} ({})", painted, step.id, step.action);
        for line in task
            .log
            .iter()
            .filter(|l| l.step.as_deref() == Some(&step.id))
        {
            for text in line.message.lines() {
                say!("           {text}");
            }
        }
    }
    if let Some(error) = &task.error {
        say!("{} {error}", out.paint("failed:", Color::Red));
    }
    if let Some(files) = &task.files {
        say!("files ({}):", files.len());
        for (path, content) in files {
            say!("  {path} ({} bytes)", content.len());
        }
    }
    for link in task.output["links"].as_array().into_iter().flatten() {
        let title = link["title"].as_str().unwrap_or("link");
        let target = link["url"]
            .as_str()
            .or_else(|| link["entityRef"].as_str())
            .unwrap_or("");
        say!("link: {title}: {target}");
    }
    for text in task.output["text"].as_array().into_iter().flatten() {
        say!(
            "{}:\n{}",
            text["title"].as_str().unwrap_or("text"),
            text["content"].as_str().unwrap_or("")
        );
    }
    if let Some(ws) = &task.workspace {
        say!("files written to {}", ws.display());
    }
    Ok(())
}
