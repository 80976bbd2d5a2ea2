//! The two sources of Synapse rows, behind one iterator: the four state
//! tables and `event_auth` (when the source has it).

use std::sync::mpsc::{Receiver, SyncSender};

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
        let mut row = SourceRow::placeholder();
        Some(self.next_row_into(&mut row)?.map(|()| row))
    }

    /// The next row, into `row`: a dump reuses the buffers of the strings
    /// `row` holds.
    pub fn next_row_into(&mut self, row: &mut SourceRow) -> Option<Result<(), DumpError>> {
        match self {
            Source::Dump(d) => d.next_row_into(row),
            Source::Live { records, rows, .. } => {
                *rows += 1;
                Some(records.next_row()?.map(|r| *row = r))
            }
        }
    }
}

/// Rows per message of the reading thread, and messages it may queue.
const READ_BATCH: usize = 4096;
const READ_QUEUE: usize = 4;

/// What the reading thread sends: rows with their positions, and the
/// input bytes consumed so far (and the total when known).
enum Read {
    Rows(Vec<(SourceRow, u64)>, (u64, Option<u64>)),
    Failed(DumpError),
}

/// Feeds every row of `source` to `add`, reporting progress. A second
/// thread reads (and decompresses, and decodes) the source while this one
/// hands the rows to `add`. Batches go back to the reading thread once
/// used, to be refilled there in place (no allocation per row).
pub fn pump(
    source: &mut Source,
    progress: &mut super::progress::Progress,
    add: &mut dyn FnMut(&SourceRow, u64) -> Result<(), ImportError>,
) -> CliResult<u64> {
    let name = source.name();
    let mut n = 0u64;
    let mut bytes = source.bytes();
    std::thread::scope(|scope| -> CliResult<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(READ_QUEUE);
        let (used_tx, used_rx) = std::sync::mpsc::sync_channel(READ_QUEUE);
        let reader = &mut *source;
        std::thread::Builder::new()
            .name("import-read".into())
            .spawn_scoped(scope, move || read_rows(reader, &tx, &used_rx))
            .map_err(|e| CliError::io("starting a reading thread", e))?;
        for message in &rx {
            let rows = match message {
                Read::Rows(rows, at) => {
                    bytes = at;
                    rows
                }
                Read::Failed(e) => return Err(e.into()),
            };
            for (row, line) in &rows {
                add(row, *line).map_err(|error| CliError::Source {
                    source_name: name.clone(),
                    error: Box::new(error),
                })?;
                n += 1;
                if n.is_multiple_of(65_536) {
                    progress.reading(n, bytes.0, bytes.1);
                }
            }
            // Full (or gone): this thread frees them.
            let _ = used_tx.try_send(rows);
        }
        Ok(())
    })?;
    let (done, total) = source.bytes();
    progress.reading(n, done, total);
    Ok(n)
}

/// The reading thread: sends `source`'s rows in batches until the end or
/// an error; stops when the receiver is gone. Batches that come back on
/// `used` are filled again in place: their rows' strings keep their
/// buffers, so a row costs no allocation.
fn read_rows(source: &mut Source, tx: &SyncSender<Read>, used: &Receiver<Vec<(SourceRow, u64)>>) {
    let fresh = || used.try_recv().unwrap_or_else(|_| Vec::with_capacity(READ_BATCH));
    let mut batch = fresh();
    // Rows `..n` of `batch` are this batch's; those after are old ones to reuse.
    let mut n = 0;
    loop {
        if n == batch.len() {
            batch.push((SourceRow::placeholder(), 0));
        }
        let (row, line) = &mut batch[n];
        match source.next_row_into(row) {
            None => break,
            Some(Ok(())) => *line = source.position(),
            Some(Err(e)) => {
                let _ = tx.send(Read::Failed(e));
                return;
            }
        }
        n += 1;
        if n >= READ_BATCH {
            batch.truncate(n);
            let full = std::mem::replace(&mut batch, fresh());
            n = 0;
            if tx.send(Read::Rows(full, source.bytes())).is_err() {
                return;
            }
        }
    }
    if n > 0 {
        batch.truncate(n);
        let _ = tx.send(Read::Rows(batch, source.bytes()));
    }
}
