//! [`LiveSource`]: the same [`Record`]s read from a running Synapse
//! PostgreSQL database instead of a dump.
//!
//! One `REPEATABLE READ READ ONLY` transaction runs
//! `COPY (SELECT ...) TO STDOUT` for each table read that exists (the state
//! tables, and `event_auth` when asked for), in dump order. A worker thread
//! owns the connection and passes the COPY text on in batches of whole lines
//! through a small bounded channel (so memory stays bounded); the iterator
//! decodes them with [`crate::copy::FieldDecoder`].

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use memchr::memchr;
use postgres::{Client, IsolationLevel, NoTls};

use crate::copy::FieldDecoder;
use crate::error::{DumpError, Location};
use crate::record::{Include, Record, SourceRow};
use crate::row::RowLayout;
use crate::table::Table;

/// Bytes of COPY text per batch sent from the worker.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches in flight between the worker and the iterator.
const BATCHES_IN_FLIGHT: usize = 8;

/// A connection to a Synapse database.
pub struct LiveSource {
    client: Client,
    name: Arc<str>,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Wraps a postgres error with the database name and what was being done.
fn pg_error(name: &Arc<str>, line: u64, context: &str) -> impl FnOnce(postgres::Error) -> DumpError {
    let at = Location::new(name, line);
    let context = context.to_owned();
    move |source| DumpError::Postgres { at, context, source }
}

impl LiveSource {
    /// Connects (without TLS) to `url`, a libpq-style URL or key=value string,
    /// e.g. `postgresql://synapse@localhost/synapse`.
    pub fn connect(url: &str) -> Result<LiveSource, DumpError> {
        let name: Arc<str> = redact(url).into();
        let client = Client::connect(url, NoTls).map_err(pg_error(&name, 0, "connecting"))?;
        Ok(LiveSource { client, name })
    }

    /// The database URL without password, as used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sum of `pg_total_relation_size` (table, indexes, TOAST) of those
    /// of the four state tables that exist.
    pub fn relation_sizes(&mut self) -> Result<u64, DumpError> {
        self.table_sizes(&Table::ALL)
    }

    /// The sum of `pg_total_relation_size` of those of `tables` that exist.
    pub fn table_sizes(&mut self, tables: &[Table]) -> Result<u64, DumpError> {
        let names: Vec<&str> = tables.iter().map(|t| t.name()).collect();
        let row = self
            .client
            .query_one(
                "SELECT COALESCE(SUM(pg_total_relation_size(to_regclass(n))), 0)::bigint \
                 FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NOT NULL",
                &[&names],
            )
            .map_err(pg_error(&self.name, 0, "measuring the state tables"))?;
        let bytes: i64 = row
            .try_get(0)
            .map_err(pg_error(&self.name, 0, "measuring the state tables"))?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Starts streaming all rows of the state tables, table by table in
    /// [`Table::ALL`] order, from one consistent snapshot.
    pub fn records(self) -> LiveRecords {
        self.rows(Include::State)
    }

    /// Starts streaming all rows of the tables `include` names (those that
    /// exist), table by table in pg_dump's order, from one consistent
    /// snapshot. [`LiveRecords::next_row`] gives `event_auth` rows too.
    pub fn rows(self, include: Include) -> LiveRecords {
        let (sender, receiver) = sync_channel(BATCHES_IN_FLIGHT);
        let bytes = Arc::new(AtomicU64::new(0));
        let worker = {
            let name = Arc::clone(&self.name);
            let bytes = Arc::clone(&bytes);
            std::thread::spawn(move || {
                if let Err(err) = stream(self.client, &name, include.tables(), &sender, &bytes) {
                    // The receiver may be gone; then nobody needs the error.
                    let _ = sender.send(Batch::Failed(err));
                }
            })
        };
        LiveRecords {
            name: self.name,
            receiver,
            _worker: worker,
            bytes,
            batch: Vec::new(),
            pos: 0,
            layout: None,
            row: 0,
            fields: FieldDecoder::new(),
            done: false,
        }
    }
}

/// What the worker sends.
enum Batch {
    /// Whole COPY lines of one table.
    Lines(Table, Vec<u8>),
    /// The worker stopped on an error.
    Failed(DumpError),
}

/// The worker: one transaction, one COPY per existing table of `tables`.
fn stream(
    mut client: Client,
    name: &Arc<str>,
    tables: &[Table],
    sender: &SyncSender<Batch>,
    bytes: &AtomicU64,
) -> Result<(), DumpError> {
    let mut txn = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg_error(name, 0, "starting a read-only transaction"))?;
    for &table in tables {
        let exists: bool = txn
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.name()])
            .and_then(|row| row.try_get(0))
            .map_err(pg_error(name, 0, &format!("looking for table {table}")))?;
        if !exists {
            continue;
        }
        let query = format!(
            "COPY (SELECT {} FROM {}) TO STDOUT",
            table.columns().join(", "),
            table.name()
        );
        let copy = txn
            .copy_out(query.as_str())
            .map_err(pg_error(name, 0, &format!("COPY {table}")))?;
        let mut reader = BufReader::with_capacity(BATCH_BYTES, copy);
        let mut batch = Vec::with_capacity(BATCH_BYTES * 2);
        loop {
            let n = reader
                .read_until(b'\n', &mut batch)
                .map_err(|err| copy_error(name, table, err))?;
            if (n == 0 || batch.len() >= BATCH_BYTES) && !batch.is_empty() {
                bytes.fetch_add(batch.len() as u64, Ordering::Relaxed);
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_BYTES * 2));
                if sender.send(Batch::Lines(table, full)).is_err() {
                    return Ok(()); // The iterator was dropped.
                }
            }
            if n == 0 {
                break;
            }
        }
    }
    txn.commit()
        .map_err(pg_error(name, 0, "ending the read-only transaction"))
}

/// An error while streaming COPY data: the postgres error inside the
/// `io::Error` when there is one.
fn copy_error(name: &Arc<str>, table: Table, err: std::io::Error) -> DumpError {
    let at = Location::new(name, 0);
    match err.downcast::<postgres::Error>() {
        Ok(source) => DumpError::Postgres {
            at,
            context: format!("streaming COPY of {table}"),
            source,
        },
        Err(err) => DumpError::Io { at, source: err },
    }
}

/// Iterator over the records of a live database; see [`LiveSource::records`].
/// Stops after the first error.
pub struct LiveRecords {
    name: Arc<str>,
    receiver: Receiver<Batch>,
    /// Detached on drop: it stops at its next send once the receiver is gone.
    _worker: JoinHandle<()>,
    bytes: Arc<AtomicU64>,
    batch: Vec<u8>,
    pos: usize,
    layout: Option<RowLayout>,
    /// Rows of the current table so far (the line number in errors).
    row: u64,
    fields: FieldDecoder,
    done: bool,
}

impl std::fmt::Debug for LiveRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRecords")
            .field("name", &self.name)
            .field("table", &self.layout.map(|l| l.table))
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

impl LiveRecords {
    /// Bytes of COPY text received so far, for progress reporting.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The table being read.
    pub fn table(&self) -> Option<Table> {
        self.layout.map(|l| l.table)
    }

    /// The next row of a table read, or `None` at the end; stops after the
    /// first error, as the iterator does.
    pub fn next_row(&mut self) -> Option<Result<SourceRow, DumpError>> {
        if self.done {
            return None;
        }
        let item = self.step().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }

    fn step(&mut self) -> Result<Option<SourceRow>, DumpError> {
        loop {
            if let (Some(layout), Some(rest)) = (self.layout, self.batch.get(self.pos..)) {
                if !rest.is_empty() {
                    let end = memchr(b'\n', rest).unwrap_or(rest.len());
                    let line = rest.get(..end).unwrap_or_default();
                    self.pos += end + 1;
                    self.row += 1;
                    let at = || Location::new(&self.name, self.row);
                    self.fields.decode(line).map_err(|e| e.locate(at(), layout.table))?;
                    return layout.row(&self.fields, at).map(Some);
                }
            }
            match self.receiver.recv() {
                Ok(Batch::Lines(table, lines)) => {
                    if self.layout.map(|l| l.table) != Some(table) {
                        self.layout = Some(RowLayout::canonical(table));
                        self.row = 0;
                    }
                    self.batch = lines;
                    self.pos = 0;
                }
                Ok(Batch::Failed(err)) => return Err(err),
                Err(_) => return Ok(None), // The worker finished.
            }
        }
    }
}

impl Iterator for LiveRecords {
    type Item = Result<Record, DumpError>;

    /// The next state-table record (`event_auth` rows, if read, are
    /// passed over: [`LiveRecords::next_row`] gives them).
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_row()? {
                Ok(SourceRow::State(record)) => return Some(Ok(record)),
                Ok(SourceRow::Auth(_)) => {}
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

impl std::iter::FusedIterator for LiveRecords {}

/// The connection string without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let rest = rest.split('?').next().unwrap_or(rest);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let authority = match authority.rsplit_once('@') {
            Some((user, host)) => {
                format!("{}@{host}", user.split(':').next().unwrap_or_default())
            }
            None => authority.to_owned(),
        };
        format!("{scheme}://{authority}{path}")
    } else {
        url.split_whitespace()
            .filter(|kv| !kv.starts_with("password="))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgresql://syn:secret@db.example:5432/synapse?sslmode=disable&password=x"),
            "postgresql://syn@db.example:5432/synapse"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact("host=h user=u password=secret dbname=d"),
            "host=h user=u dbname=d"
        );
    }
}
