//! `mxstate verify`.

use mxstate_synapse_import::Verifier;

use crate::cli::VerifyArgs;
use crate::error::{CliError, CliResult};

use super::progress::Progress;
use super::source::{pump, Source};

/// Mismatches printed at most.
const SHOWN: usize = 10;

/// Runs `mxstate verify`.
pub fn run(a: VerifyArgs) -> CliResult {
    let target = super::target::Target::open(&a.target)?;
    let mut source = Source::open(&a.source)?;
    let mut progress = Progress::new("verify", a.quiet);
    let mut verifier = Verifier::new(&target, &target.scratch_parent())?;
    pump(&mut source, &mut progress, &mut |rec, line| verifier.add(rec, line))?;
    let report = verifier.finish(a.sample, SHOWN, &mut |n| progress.step("groups checked", n))?;
    progress.finish();
    for m in &report.first {
        eprintln!("mismatch: state group {}: {}", m.group, m.detail);
    }
    println!(
        "checked {} of {} groups: {} mismatches",
        report.groups_checked, report.groups_in_source, report.mismatches
    );
    if report.mismatches > 0 {
        return Err(CliError::Mismatches(report.mismatches));
    }
    Ok(())
}
