//! The two sources of Synapse rows, behind one iterator: the four state
//! tables and `event_auth` (when the source has it).

use mxstate_synapse_dump::{DumpError, DumpReader, Include, LiveRecords, LiveSource, SourceRow, Table};
use mxstate_synapse_import::ImportError;

use crate::cli::SourceArgs;
use crate::error::{CliError, CliResult};

/// A dump file or a live database.
pub enum Source {
    Dump(DumpReader),
    Live {
        records: LiveRecords,
        rows: u64,
        relation_bytes: u64,
        auth_bytes: u64,
    },
}

impl Source {
    /// Opens what the arguments name.
    pub fn open(a: &SourceArgs) -> CliResult<Source> {
        match (&a.file, &a.postgres) {
            (Some(f), None) => Ok(Source::Dump(DumpReader::open_including(f, Include::StateAndAuth)?)),
            (None, Some(url)) => {
                let mut live = LiveSource::connect(url)?;
                let relation_bytes = live.relation_sizes()?;
                let auth_bytes = live.table_sizes(&[Table::EventAuth])?;
                Ok(Source::Live {
                    records: live.rows(Include::StateAndAuth),
                    rows: 0,
                    relation_bytes,
                    auth_bytes,
                })
            }
            _ => Err(CliError::Usage("give a dump FILE or --postgres URL".into())),
        }
    }

    /// A name for messages.
    pub fn name(&self) -> String {
        match self {
            Source::Dump(d) => d.name().to_owned(),
            Source::Live { .. } => "postgres".to_owned(),
        }
    }

    /// Where the last record came from: a dump line, or the live row number.
    pub fn position(&self) -> u64 {
        match self {
            Source::Dump(d) => d.line(),
            Source::Live { rows, .. } => *rows,
        }
    }

    /// Input bytes consumed so far, and the total when known.
    pub fn bytes(&self) -> (u64, Option<u64>) {
        match self {
            Source::Dump(d) => (d.bytes_read(), d.total_bytes()),
            Source::Live { records, .. } => (records.bytes_read(), None),
        }
    }

    /// `pg_total_relation_size` of the state tables, for a live source.
    pub fn relation_bytes(&self) -> Option<u64> {
        match self {
            Source::Dump(_) => None,
            Source::Live { relation_bytes, .. } => Some(*relation_bytes),
        }
    }

    /// `pg_total_relation_size` of `event_auth` (0 when absent), for a
    /// live source.
    pub fn auth_bytes(&self) -> Option<u64> {
        match self {
            Source::Dump(_) => None,
            Source::Live { auth_bytes, .. } => Some(*auth_bytes),
        }
    }

    /// The next row.
    pub fn next_row(&mut self) -> Option<Result<SourceRow, DumpError>> {
        match self {
            Source::Dump(d) => d.next_row(),
            Source::Live { records, rows, .. } => {
                *rows += 1;
                records.next_row()
            }
        }
    }
}

/// Feeds every row of `source` to `add`, reporting progress.
pub fn pump(
    source: &mut Source,
    progress: &mut super::progress::Progress,
    add: &mut dyn FnMut(&SourceRow, u64) -> Result<(), ImportError>,
) -> CliResult<u64> {
    let mut n = 0u64;
    while let Some(rec) = source.next_row() {
        let rec = rec?;
        let line = source.position();
        add(&rec, line).map_err(|error| CliError::Source {
            source_name: source.name(),
            error: Box::new(error),
        })?;
        n += 1;
        if n.is_multiple_of(65_536) {
            let (done, total) = source.bytes();
            progress.reading(n, done, total);
        }
    }
    let (done, total) = source.bytes();
    progress.reading(n, done, total);
    Ok(n)
}
