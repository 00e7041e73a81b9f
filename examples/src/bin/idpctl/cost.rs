//! `idpctl cost`: the estimated monthly cost of manifests, per object, team and environment.

use std::path::PathBuf;

use idp_core::ManifestSet;
use idp_deploy::cost::{self, CostReport, PriceSheet};

use crate::files::collect;
use crate::output::{Format, Out};
use crate::{ExitCode, Failure};

/// Estimate what manifests cost per month, from their resource requests.
///
/// Sums each workload's CPU, memory and GPU requests (a container's limit when it has no
/// request) times its replicas over 730 hours, plus persistent volume claims, and
/// attributes each object to the team in its `idp.dev/owner` label (or `team`) and the
/// environment in its `idp.dev/environment` label. DaemonSets count once per node
/// (--nodes), Jobs and CronJobs as if they ran all month. The built-in prices are
/// illustrative only: pass your own with --prices.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "PRICE SHEET (YAML, every field optional):\n  currency: EUR\n  cpuHour: 0.03          # per vCPU-hour\n  memoryGibHour: 0.004   # per GiB-hour\n  gpuHour: {default: 2.5, nvidia-l4: 0.8}\n  storageGbMonth: 0.08   # per GiB-month\n  daemonsetNodes: 12\n\nEXAMPLES:\n  idpctl cost k8s/\n  idpctl cost rendered/ --prices prices.yaml --format json   # {currency, lines, byTeam, byEnvironment, byTeamEnvironment, total}\n  idpctl cost infra/daemonsets.yaml --nodes 40"
)]
pub struct Args {
    /// Files or directories with manifests (*.yaml, *.yml, *.json).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// A price-sheet YAML file (defaults are illustrative).
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Nodes a DaemonSet runs on (overrides the price sheet's daemonsetNodes).
    #[arg(long, value_name = "N")]
    nodes: Option<u32>,
}

/// Read the manifests, estimate, print.
pub fn run(args: &Args, out: &Out) -> Result<ExitCode, Failure> {
    let mut prices = match &args.prices {
        Some(file) => PriceSheet::from_file(file)?,
        None => PriceSheet::default(),
    };
    if let Some(nodes) = args.nodes {
        prices.daemonset_nodes = nodes;
    }
    let mut set = ManifestSet::new();
    for file in collect(&args.paths)? {
        set.extend(ManifestSet::from_file(&file)?);
    }
    let report = cost::estimate(&set, &prices)?;
    match out.format {
        Format::Json | Format::Yaml => out.data(&report)?,
        Format::Table => table(&report)?,
    }
    Ok(ExitCode::Ok)
}

fn money(value: f64) -> String {
    format!("{value:.2}")
}

fn table(report: &CostReport) -> Result<(), Failure> {
    let objects: Vec<String> = report
        .lines
        .iter()
        .map(|l| match &l.namespace {
            Some(ns) => format!("{} {ns}/{}", l.kind, l.name),
            None => format!("{} {}", l.kind, l.name),
        })
        .collect();
    let w0 = objects.iter().map(String::len).max().unwrap_or(0).max(6);
    let w1 = report
        .lines
        .iter()
        .map(|l| l.team.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let w2 = report
        .lines
        .iter()
        .map(|l| l.environment.len())
        .max()
        .unwrap_or(0)
        .max(11);
    say!(
        "{:w0$}  {:w1$}  {:w2$}  {:>8}  {:>6}  {:>8}  {:>4}  {:>8}  {:>10}",
        "OBJECT",
        "TEAM",
        "ENVIRONMENT",
        "REPLICAS",
        "CPU",
        "MEM(GiB)",
        "GPU",
        "PV(GiB)",
        "MONTHLY"
    );
    for (line, object) in report.lines.iter().zip(&objects) {
        say!(
            "{object:w0$}  {:w1$}  {:w2$}  {:>8}  {:>6}  {:>8}  {:>4}  {:>8}  {:>10}",
            line.team,
            line.environment,
            line.replicas,
            format!("{:.3}", line.cpu_cores),
            format!("{:.2}", line.memory_gib),
            line.gpus,
            format!("{:.1}", line.storage_gib),
            money(line.total)
        );
    }
    say!("");
    say!("{:w1$}  {:w2$}  {:>10}", "TEAM", "ENVIRONMENT", "MONTHLY");
    for pair in &report.by_team_environment {
        say!(
            "{:w1$}  {:w2$}  {:>10}",
            pair.team,
            pair.environment,
            money(pair.monthly)
        );
    }
    say!(
        "\ntotal: {} {} per month ({} h); {} object(s) priced",
        money(report.total),
        report.currency,
        report.hours_per_month,
        report.lines.len()
    );
    Ok(())
}
