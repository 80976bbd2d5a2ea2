//! `mxstate check`: the consistency checker (an fsck).

use mxstate_engine::{CheckReport, EngineOptions};
use serde_json::json;

use crate::cli::CheckArgs;
use crate::error::{CliError, CliResult};

/// Runs `mxstate check`: exit 0 on a clean database, 1 on damage.
pub fn run(a: CheckArgs) -> CliResult {
    let engine = super::open_db(
        &a.db,
        EngineOptions {
            create: false,
            allow_incomplete_import: true,
            ..EngineOptions::default()
        },
    )?;
    let r = engine.check()?;
    if a.json {
        println!("{}", to_json(&r));
    } else {
        print!("{}", render(&engine.location(), &r));
    }
    if r.is_clean() {
        Ok(())
    } else {
        Err(CliError::Damaged(r.problems_total))
    }
}

fn render(location: &str, r: &CheckReport) -> String {
    let mut out = format!(
        "checked {location}: {} records, {} groups ({} ghosts), {} snapshots, {} strings, {} event mappings\n",
        r.records, r.groups, r.ghosts, r.snapshots, r.strings, r.event_mappings
    );
    if let Some(d) = &r.import_incomplete {
        out.push_str(&format!(
            "note: an import did not finish ({d}); rerun it to complete the database\n"
        ));
    }
    if r.is_clean() {
        out.push_str("clean: every invariant holds\n");
    } else {
        out.push_str(&format!("{} problems:\n", r.problems_total));
        for p in &r.problems {
            out.push_str(&format!("  {p}\n"));
        }
        let left = r.problems_total.saturating_sub(r.problems.len() as u64);
        if left > 0 {
            out.push_str(&format!("  ... and {left} more\n"));
        }
    }
    out
}

fn to_json(r: &CheckReport) -> serde_json::Value {
    let problems: Vec<serde_json::Value> = r
        .problems
        .iter()
        .map(|p| json!({"invariant": p.invariant, "location": p.location, "detail": p.detail}))
        .collect();
    json!({
        "clean": r.is_clean(),
        "records": r.records,
        "groups": r.groups,
        "ghost_groups": r.ghosts,
        "snapshots": r.snapshots,
        "strings": r.strings,
        "event_mappings": r.event_mappings,
        "import_incomplete": r.import_incomplete,
        "problems_total": r.problems_total,
        "problems": problems,
    })
}
