//! DORA metrics checked against a history whose figures are computed by hand below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::{Deployment, DeploymentId, DeploymentStatus};
use idp_deploy::dora::{
    DeploymentRecord, DoraReport, Incident, Level, Metrics, Outcome, Window, compute,
};
use jiff::{SignedDuration, Timestamp};

fn t(s: &str) -> Timestamp {
    format!("2026-{s}:00Z").parse().unwrap()
}

fn h(hours: f64) -> SignedDuration {
    SignedDuration::from_secs_f64(hours * 3600.0)
}

fn rec(
    component: &str,
    env: &str,
    at: &str,
    committed: Option<&str>,
    status: Outcome,
) -> DeploymentRecord {
    let mut r = DeploymentRecord::new(component, env, t(at), status).with_id(at);
    if component == "cart" {
        r = r.with_team("team-a");
    }
    if let Some(c) = committed {
        r = r.with_source_committed_at(t(c));
    }
    r
}

/// The history. Lead times (deploy − commit) in the comments.
fn history() -> Vec<DeploymentRecord> {
    use Outcome::*;
    vec![
        // cart/prod (team-a)
        rec("cart", "prod", "02-27T10:00", None, Failed), // before the window
        rec(
            "cart",
            "prod",
            "03-01T10:00",
            Some("03-01T08:00"),
            Succeeded,
        ), // c1: 2h
        rec("cart", "prod", "03-03T10:00", Some("03-02T10:00"), Failed), // c2: 24h
        rec(
            "cart",
            "prod",
            "03-03T12:00",
            Some("03-03T11:00"),
            Succeeded,
        ), // c3: 1h
        rec(
            "cart",
            "prod",
            "03-08T09:00",
            Some("03-07T09:00"),
            Succeeded,
        ), // c4: 24h
        rec("cart", "prod", "03-10T09:00", None, RolledBack), // c5
        rec(
            "cart",
            "prod",
            "03-10T13:00",
            Some("03-10T12:30"),
            Superseded,
        ), // c6: 0.5h
        // cart/staging (team-a)
        rec(
            "cart",
            "staging",
            "03-02T09:00",
            Some("03-02T08:00"),
            Succeeded,
        ), // s1: 1h
        rec(
            "cart",
            "staging",
            "03-04T09:00",
            Some("03-04T06:00"),
            Degraded,
        ), // s2: 3h
        // search/prod (no team)
        rec(
            "search",
            "prod",
            "03-05T00:00",
            Some("03-01T00:00"),
            Succeeded,
        ), // p1: 96h
        rec("search", "prod", "03-15T00:00", None, Failed), // at the window's end: excluded
    ]
}

fn incidents() -> Vec<Incident> {
    vec![
        // While c4 is live (03-08 09:00 until c5 at 03-10 09:00): c4 is a failed change,
        // restored when the incident is resolved (10:30) — earlier than c5 — so 1.5h.
        Incident::new(t("03-09T09:00"))
            .resolved_at(t("03-09T10:30"))
            .for_component("cart")
            .in_environment("prod"),
        // Another component's incident changes nothing here.
        Incident::new(t("03-03T00:00")).for_component("payments"),
    ]
}

fn window() -> Window {
    Window::new(t("03-01T00:00"), t("03-15T00:00")).unwrap() // 14 days
}

fn report() -> DoraReport {
    compute(&history(), &incidents(), &window())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn overall_metrics_match_the_hand_computation() {
    let m = report().overall;
    // In the window: c1..c6 (6), s1, s2 (2), p1 (1).
    assert_eq!(m.deployments, 9);
    assert!(close(m.deployments_per_day, 9.0 / 14.0));
    assert!(close(m.deployments_per_week, 9.0 / 14.0 * 7.0)); // 4.5
    // Lead times: c1 2, c2 24, c3 1, c4 24, c6 0.5, s1 1, s2 3, p1 96 (hours); c5 has no
    // commit time. Sorted: 0.5 1 1 2 | 3 24 24 96 → median (2 + 3) / 2 = 2.5h.
    assert_eq!(m.changes_with_lead_time, 8);
    assert_eq!(m.median_lead_time, Some(h(2.5)));
    // Failed: c2 (Failed), c4 (incident), c5 (RolledBack), s2 (Degraded) → 4 / 9.
    assert_eq!(m.failures, 4);
    assert!(close(m.change_failure_rate.unwrap(), 4.0 / 9.0));
    // Restores: c2 → c3 = 2h; c4 → incident resolved = 1.5h; c5 → c6 = 4h; s2 → never.
    // Sorted 1.5 2 4 → median 2h.
    assert_eq!(m.restored, 3);
    assert_eq!(m.unrestored, 1);
    assert_eq!(m.median_time_to_restore, Some(h(2.0)));
    // Levels (2023 DORA): 0.64/day but ≥ 1/week → high; 2.5h < 1 day → elite;
    // 44% > 15% → low; 2h < 1 day → high.
    assert_eq!(m.levels.deployment_frequency, Some(Level::High));
    assert_eq!(m.levels.lead_time, Some(Level::Elite));
    assert_eq!(m.levels.change_failure_rate, Some(Level::Low));
    assert_eq!(m.levels.time_to_restore, Some(Level::High));
}

#[test]
fn per_component_team_and_environment() {
    let r = report();
    assert_eq!(
        r.by_component.keys().collect::<Vec<_>>(),
        ["cart", "search"]
    );
    let cart = &r.by_component["cart"];
    // c1..c6 and s1, s2. Lead times 2 24 1 24 0.5 1 3 → sorted 0.5 1 1 [2] 3 24 24 → 2h.
    assert_eq!(cart.deployments, 8);
    assert_eq!(cart.median_lead_time, Some(h(2.0)));
    assert_eq!(cart.failures, 4);
    assert!(close(cart.change_failure_rate.unwrap(), 0.5));
    assert_eq!(cart.median_time_to_restore, Some(h(2.0)));

    let search = &r.by_component["search"];
    // p1 only: 1 in 14 days is 0.5/week (< 1/week, ≥ 1/30 days) → medium; 96h ≤ 1 week
    // → high; no failure → 0% → elite; no failure to restore → no level.
    assert_eq!(search.deployments, 1);
    assert_eq!(search.median_lead_time, Some(h(96.0)));
    assert_eq!(search.change_failure_rate, Some(0.0));
    assert_eq!(search.median_time_to_restore, None);
    assert_eq!(search.levels.deployment_frequency, Some(Level::Medium));
    assert_eq!(search.levels.lead_time, Some(Level::High));
    assert_eq!(search.levels.change_failure_rate, Some(Level::Elite));
    assert_eq!(search.levels.time_to_restore, None);

    assert_eq!(
        r.by_team.keys().collect::<Vec<_>>(),
        ["team-a", "unassigned"]
    );
    assert_eq!(r.by_team["team-a"], *cart);
    assert_eq!(r.by_team["unassigned"], *search);

    let prod = &r.by_environment["prod"];
    // c1..c6, p1 = 7; failures c2 c4 c5 = 3; lead 2 24 1 24 0.5 96 → sorted
    // 0.5 1 [2 24] 24 96 → (2 + 24) / 2 = 13h; restores 2 1.5 4 → 2h.
    assert_eq!(prod.deployments, 7);
    assert_eq!(prod.failures, 3);
    assert!(close(prod.change_failure_rate.unwrap(), 3.0 / 7.0));
    assert_eq!(prod.median_lead_time, Some(h(13.0)));
    assert_eq!(prod.median_time_to_restore, Some(h(2.0)));
    let staging = &r.by_environment["staging"];
    // s1, s2: lead 1 3 → 2h; s2 failed and never restored.
    assert_eq!(staging.deployments, 2);
    assert_eq!(staging.median_lead_time, Some(h(2.0)));
    assert_eq!(
        (staging.failures, staging.restored, staging.unrestored),
        (1, 0, 1)
    );
    assert_eq!(staging.median_time_to_restore, None);
}

#[test]
fn input_order_does_not_matter() {
    let mut reversed = history();
    reversed.reverse();
    assert_eq!(compute(&reversed, &incidents(), &window()), report());
}

#[test]
fn without_incidents_the_live_release_is_not_a_failure() {
    let m: Metrics = compute(&history(), &[], &window()).overall;
    // c4 is no longer failed: c2, c5, s2 → 3 / 9; restores 2h and 4h → median 3h.
    assert_eq!(m.failures, 3);
    assert!(close(m.change_failure_rate.unwrap(), 3.0 / 9.0));
    assert_eq!(m.median_time_to_restore, Some(h(3.0)));
}

#[test]
fn an_unscoped_incident_covers_every_stream() {
    // A second incident, for every component, at 03-04T12:00, never resolved. The live
    // releases then: c3 in cart/prod (03-03T12:00 until c4) → c3 fails too; s2 in
    // cart/staging (already failed); none in search/prod (p1 comes on 03-05).
    let mut all = incidents();
    all.push(Incident::new(t("03-04T12:00")));
    let r = compute(&history(), &all, &window());
    // Failed: c2, c3, c4, c5, s2.
    assert_eq!(r.overall.failures, 5);
    // The next release that did not fail after c2, c3, c4 and c5 is c6 (03-10T13:00):
    //   c2: 03-03T10:00 → 03-10T13:00 = 7 d 3 h = 171h
    //   c3: from the incident, 03-04T12:00 → 03-10T13:00 = 6 d 1 h = 145h
    //   c4: its own incident is resolved at 10:30, before c6 → 1.5h
    //   c5: 03-10T09:00 → 13:00 = 4h
    // Sorted 1.5 4 | 145 171 → median (4 + 145) / 2 = 74.5h; s2 stays unrestored.
    assert_eq!(r.overall.restored, 4);
    assert_eq!(r.overall.unrestored, 1);
    assert_eq!(r.overall.median_time_to_restore, Some(h(74.5)));
    assert_eq!(r.overall.levels.time_to_restore, Some(Level::Medium));
}

#[test]
fn records_from_the_deployer() {
    let d = Deployment {
        id: DeploymentId::new("9f1c2e7"),
        component: "component:default/cart".parse().unwrap(),
        environment: "prod".parse().unwrap(),
        revision: "9f1c2e7".into(),
        source_revision: Some("3f2c1a9".into()),
        author: None,
        message: None,
        status: DeploymentStatus::Progressing,
        created_at: t("03-02T00:00"),
    };
    let r = DeploymentRecord::from(&d);
    assert_eq!(r.id.as_deref(), Some("9f1c2e7"));
    assert_eq!(r.component, d.component.to_string());
    assert_eq!(r.environment, "prod");
    assert_eq!(r.deployed_at, d.created_at);
    assert_eq!(r.status, Outcome::Pending);
    assert_eq!(r.source_committed_at, None);
    assert_eq!(r.team, None);
    for (status, outcome) in [
        (DeploymentStatus::Succeeded, Outcome::Succeeded),
        (DeploymentStatus::Failed, Outcome::Failed),
        (DeploymentStatus::RolledBack, Outcome::RolledBack),
        (DeploymentStatus::Superseded, Outcome::Superseded),
        (DeploymentStatus::Pending, Outcome::Pending),
    ] {
        assert_eq!(Outcome::from(status), outcome);
    }
}

#[test]
fn level_thresholds_at_their_boundaries() {
    assert_eq!(Level::for_deployment_frequency(1.0), Level::Elite);
    assert_eq!(Level::for_deployment_frequency(0.99), Level::High);
    assert_eq!(Level::for_deployment_frequency(1.0 / 7.0), Level::High);
    assert_eq!(Level::for_deployment_frequency(0.99 / 7.0), Level::Medium);
    assert_eq!(Level::for_deployment_frequency(1.0 / 30.0), Level::Medium);
    assert_eq!(Level::for_deployment_frequency(0.99 / 30.0), Level::Low);

    assert_eq!(Level::for_lead_time(h(23.99)), Level::Elite);
    assert_eq!(Level::for_lead_time(h(24.0 * 7.0)), Level::High);
    assert_eq!(Level::for_lead_time(h(24.0 * 7.0 + 0.01)), Level::Medium);
    assert_eq!(Level::for_lead_time(h(24.0 * 30.0)), Level::Medium);
    assert_eq!(Level::for_lead_time(h(24.0 * 30.0 + 0.01)), Level::Low);

    assert_eq!(Level::for_change_failure_rate(0.0), Level::Elite);
    assert_eq!(Level::for_change_failure_rate(0.051), Level::High);
    assert_eq!(Level::for_change_failure_rate(0.10), Level::High);
    assert_eq!(Level::for_change_failure_rate(0.15), Level::Medium);
    assert_eq!(Level::for_change_failure_rate(0.151), Level::Low);

    assert_eq!(Level::for_time_to_restore(h(0.99)), Level::Elite);
    assert_eq!(Level::for_time_to_restore(h(1.0)), Level::High);
    assert_eq!(Level::for_time_to_restore(h(24.0)), Level::Medium);
    assert_eq!(Level::for_time_to_restore(h(24.0 * 7.0)), Level::Medium);
    assert_eq!(Level::for_time_to_restore(h(24.0 * 7.0 + 0.01)), Level::Low);
}

#[test]
fn the_report_serializes_for_dashboards() {
    let json = serde_json::to_value(report()).unwrap();
    assert_eq!(json["overall"]["deployments"], 9);
    assert_eq!(json["overall"]["levels"]["changeFailureRate"], "low");
    assert!(json["overall"]["medianLeadTime"].is_string());
    assert_eq!(json["byTeam"]["unassigned"]["deployments"], 1);
}
