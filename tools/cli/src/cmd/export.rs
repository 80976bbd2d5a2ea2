//! `mxstate export`: Synapse's four state tables as COPY blocks.

use std::io::Write;

use mxstate_engine::Engine;
use mxstate_synapse_dump::{CopyWriter, Schema, Table};

use crate::cli::ExportArgs;
use crate::error::{CliError, CliResult};

/// Runs `mxstate export`.
pub fn run(a: ExportArgs) -> CliResult {
    let engine = super::open_existing(&a.db)?;
    let out: Box<dyn Write> = if a.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let f = std::fs::File::create(&a.out).map_err(|e| CliError::io(a.out.display().to_string(), e))?;
        Box::new(f)
    };
    let rows = export(&engine, out, !a.without_event_mappings)?;
    if a.out.as_os_str() != "-" {
        eprintln!("exported {rows} rows to {}", a.out.display());
    }
    Ok(())
}

/// Writes the database's groups (and, with `mappings`, its event
/// mappings); returns the rows written.
pub fn export(engine: &Engine, out: impl Write, mappings: bool) -> CliResult<u64> {
    let mut w = CopyWriter::new(out);
    w.write_prologue(Schema::DataOnly)?;
    let mut max_id = 0u64;
    // Three passes over the groups, one per table, so each block is contiguous.
    for table in [Table::StateGroups, Table::StateGroupEdges, Table::StateGroupsState] {
        w.begin_table(table)?;
        let mut failed: Option<CliError> = None;
        engine.for_each_group(&mut |g| {
            let grp = engine.export_group(g)?;
            let id = g.to_string();
            let res = match table {
                Table::StateGroups => {
                    max_id = max_id.max(g);
                    w.row(&[&id, grp.room.as_str(), grp.event.as_str()])
                }
                Table::StateGroupEdges => match grp.prev {
                    Some(p) => w.row(&[&id, &p.to_string()]),
                    None => Ok(()),
                },
                _ => grp
                    .rows
                    .iter()
                    .try_for_each(|(k, e)| w.row(&[&id, grp.room.as_str(), k.event_type(), k.state_key(), e.as_str()])),
            };
            if let Err(e) = res {
                failed.get_or_insert(e.into());
            }
            Ok(())
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        w.end_table()?;
    }
    if mappings {
        w.begin_table(Table::EventToStateGroups)?;
        let mut failed: Option<CliError> = None;
        engine.for_each_event_group(&mut |e, g| {
            if let Err(err) = w.row(&[e.as_str(), &g.to_string()]) {
                failed.get_or_insert(err.into());
            }
            Ok(())
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        w.end_table()?;
    }
    if max_id > 0 {
        w.set_state_group_sequence(max_id as i64)?;
    }
    let rows = w.rows_written();
    let mut out = w.finish()?;
    out.flush().map_err(|e| CliError::io("export output", e))?;
    Ok(rows)
}
