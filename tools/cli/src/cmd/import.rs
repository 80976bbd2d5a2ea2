//! `mxstate import`.

use std::path::Path;

use mxstate_engine::{Engine, EngineOptions};
use mxstate_synapse_import::{Finished, ImportSummary, Importer, Phase};

use crate::cli::ImportArgs;
use crate::error::{CliError, CliResult};

use super::progress::Progress;
use super::source::{pump, Source};
use super::stats::human;

/// Runs `mxstate import`.
pub fn run(a: ImportArgs) -> CliResult {
    let mut source = Source::open(&a.source)?;
    let engine = super::open_db(
        &a.db,
        EngineOptions {
            allow_incomplete_import: true,
            ..EngineOptions::default()
        },
    )?;
    let mut progress = Progress::new("import", a.quiet);
    let summary = match import(&engine, &mut source, &mut progress)? {
        Finished::Imported(summary) => summary,
        Finished::AlreadyComplete { description } => {
            progress.finish();
            println!("import: already complete ({description}); the database holds this source, nothing was changed");
            return Ok(());
        }
    };
    progress.finish();
    let secs = progress.elapsed();
    engine.compact()?;
    let db_bytes = super::stats::disk_bytes(&engine.stats()?)?;
    if !a.quiet {
        let (input, _) = source.bytes();
        print_summary(&summary, secs, input, db_bytes, source.relation_bytes());
    }
    Ok(())
}

/// Imports everything `source` holds into `engine`.
pub fn import(engine: &Engine, source: &mut Source, progress: &mut Progress) -> CliResult<Finished> {
    let scratch = scratch_parent(Path::new(&engine.location()));
    let mut importer = Importer::begin(engine, &format!("import of {}", source.name()), &scratch)?;
    if importer.resuming() {
        eprintln!("import: resuming an import that did not complete (groups already stored are kept)");
    }
    pump(source, progress, &mut |rec, line| importer.add(rec, line))?;
    let name = source.name();
    importer
        .finish(&mut |phase, n| match phase {
            Phase::Groups => progress.step("groups stored", n),
            Phase::Mappings => progress.step("event mappings stored", n),
        })
        .map_err(|error| CliError::Source {
            source_name: name,
            error: Box::new(error),
        })
}

/// Scratch space next to the database (same filesystem, same free space);
/// the temporary directory for a database in PostgreSQL.
pub fn scratch_parent(db: &Path) -> std::path::PathBuf {
    if db.to_str().is_some_and(mxstate_postgres::is_url) {
        return std::env::temp_dir();
    }
    match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    }
}

fn print_summary(s: &ImportSummary, secs: f64, input: u64, db_bytes: u64, pg: Option<u64>) {
    println!("imported in {secs:.1} s ({:.0} rows/s)", s.rows as f64 / secs.max(1e-9));
    println!("  state rows read        {}", s.rows);
    println!("  rooms                  {}", s.rooms);
    println!(
        "  groups stored          {} (skipped as already present: {})",
        s.groups_stored, s.groups_skipped
    );
    println!("  edges                  {}", s.edges);
    println!("  event mappings         {}", s.mappings_stored);
    if s.mappings_unknown_group > 0 {
        println!(
            "  mappings left out      {} (their group does not exist)",
            s.mappings_unknown_group
        );
    }
    if s.dangling_prevs > 0 {
        println!(
            "  edges to absent groups {} (those groups were empty: state kept)",
            s.dangling_prevs
        );
    }
    println!("  input bytes            {}", human(input));
    println!("  database bytes         {}", human(db_bytes));
    if let Some(pg) = pg {
        println!(
            "  postgres state tables  {} ({:.1}x the mxstate database)",
            human(pg),
            pg as f64 / db_bytes.max(1) as f64
        );
    }
}
