//! `mxstate verify`.

use mxstate_synapse_import::{Verifier, VerifyReport};
use serde_json::json;

use crate::cli::VerifyArgs;
use crate::error::{CliError, CliResult};

use super::progress::Progress;
use super::source::{pump, Source};

/// Mismatches printed at most (of groups, and of auth answers).
const SHOWN: usize = 10;

/// Runs `mxstate verify`.
pub fn run(a: VerifyArgs) -> CliResult {
    let target = super::target::Target::open(&a.target)?;
    let mut source = Source::open(&a.source)?;
    let mut progress = Progress::new("verify", a.quiet);
    let mut verifier = Verifier::new(&target, &target.scratch_parent())?;
    pump(&mut source, &mut progress, &mut |row, line| verifier.add_row(row, line))?;
    let report = verifier.finish(a.sample, SHOWN, &mut |n| progress.step("groups checked", n))?;
    progress.finish();
    for m in &report.first {
        eprintln!("mismatch: state group {}: {}", m.group, m.detail);
    }
    for m in &report.first_auth {
        eprintln!("mismatch: room {}: {}", m.room, m.detail);
    }
    if a.json {
        println!("{}", json_report(&report));
    } else {
        println!(
            "checked {} of {} groups: {} mismatches",
            report.groups_checked, report.groups_in_source, report.mismatches
        );
        if report.auth_events_in_source == 0 {
            println!("auth: the source has no event_auth rows; no auth chains compared");
        } else {
            println!(
                "auth: compared {} auth chains (of {} events) and {} auth chain differences: {} mismatches",
                report.auth_chains_checked,
                report.auth_events_in_source,
                report.auth_differences_checked,
                report.auth_mismatches
            );
        }
        if report.auth_rows_invalid > 0 {
            println!(
                "auth: {} event_auth rows name an invalid id (not compared)",
                report.auth_rows_invalid
            );
        }
    }
    match (report.mismatches, report.auth_mismatches) {
        (0, 0) => Ok(()),
        (groups, 0) => Err(CliError::Mismatches(groups)),
        (groups, auth) => Err(CliError::AuthMismatches { groups, auth }),
    }
}

/// The report as one JSON object.
fn json_report(r: &VerifyReport) -> serde_json::Value {
    json!({
        "groups_checked": r.groups_checked,
        "groups_in_source": r.groups_in_source,
        "mismatches": r.mismatches,
        "first": r.first.iter().map(|m| json!({"group": m.group, "detail": m.detail})).collect::<Vec<_>>(),
        "auth_rows": r.auth_rows,
        "auth_rows_invalid": r.auth_rows_invalid,
        "auth_events_in_source": r.auth_events_in_source,
        "auth_chains_checked": r.auth_chains_checked,
        "auth_differences_checked": r.auth_differences_checked,
        "auth_mismatches": r.auth_mismatches,
        "first_auth": r.first_auth.iter().map(|m| json!({"room": m.room, "detail": m.detail})).collect::<Vec<_>>(),
    })
}
