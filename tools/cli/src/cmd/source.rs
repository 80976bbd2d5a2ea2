//! The two sources of Synapse rows, behind one iterator.

use mxstate_synapse_dump::{DumpError, DumpReader, LiveRecords, LiveSource, Record};
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
    },
}

impl Source {
    /// Opens what the arguments name.
    pub fn open(a: &SourceArgs) -> CliResult<Source> {
        match (&a.file, &a.postgres) {
            (Some(f), None) => Ok(Source::Dump(DumpReader::open(f)?)),
            (None, Some(url)) => {
                let mut live = LiveSource::connect(url)?;
                let relation_bytes = live.relation_sizes()?;
                Ok(Source::Live {
                    records: live.records(),
                    rows: 0,
                    relation_bytes,
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

    /// The next record.
    pub fn next_record(&mut self) -> Option<Result<Record, DumpError>> {
        match self {
            Source::Dump(d) => d.next(),
            Source::Live { records, rows, .. } => {
                *rows += 1;
                records.next()
            }
        }
    }
}

/// Feeds every record of `source` to `add`, reporting progress.
pub fn pump(
    source: &mut Source,
    progress: &mut super::progress::Progress,
    add: &mut dyn FnMut(&Record, u64) -> Result<(), ImportError>,
) -> CliResult<u64> {
    let mut n = 0u64;
    while let Some(rec) = source.next_record() {
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
