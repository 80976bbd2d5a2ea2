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
        let pg = source
            .relation_bytes()
            .map(|state| (state, source.auth_bytes().unwrap_or(0)));
        print_summary(&summary, secs, input, db_bytes, pg);
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
    pump(source, progress, &mut |row, line| importer.add_row(row, line))?;
    let name = source.name();
    importer
        .finish(&mut |phase, n| match phase {
            Phase::Groups => progress.step("groups stored", n),
            Phase::Mappings => progress.step("event mappings stored", n),
            Phase::Auth => progress.step("events added to the auth index", n),
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

/// `pg`: the sizes of the state tables and of `event_auth` in PostgreSQL.
fn print_summary(s: &ImportSummary, secs: f64, input: u64, db_bytes: u64, pg: Option<(u64, u64)>) {
    let rows = s.rows + s.auth_rows + s.auth_rows_invalid;
    println!("imported in {secs:.1} s ({:.0} rows/s)", rows as f64 / secs.max(1e-9));
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
    if s.auth_rows + s.auth_rows_invalid == 0 {
        println!("  auth events            0 (the source has no event_auth rows)");
    } else {
        println!(
            "  auth events            {} of {} rooms ({} event_auth rows)",
            s.auth_events, s.auth_rooms, s.auth_rows
        );
    }
    if s.auth_rows_invalid > 0 {
        println!(
            "  auth rows left out     {} (an id is not a valid room or event id)",
            s.auth_rows_invalid
        );
    }
    println!("  input bytes            {}", human(input));
    println!("  database bytes         {}", human(db_bytes));
    if let Some((state, auth)) = pg {
        println!(
            "  postgres state tables  {} ({:.1}x the mxstate database)",
            human(state),
            state as f64 / db_bytes.max(1) as f64
        );
        if auth > 0 {
            println!(
                "  postgres event_auth    {} (with the state tables: {:.1}x the mxstate database)",
                human(auth),
                (state + auth) as f64 / db_bytes.max(1) as f64
            );
        }
    }
}
