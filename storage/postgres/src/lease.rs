//! Ownership of a database by one process, and the connection its writes
//! go through.
//!
//! Two locks, for two failures:
//! - the session advisory lock [`LEASE_KEY`], held by the writing
//!   connection: a second process opening the database is refused while
//!   the owner is alive;
//! - the lease row `mxstate_lease (generation, seq)`: taking ownership
//!   bumps `generation`; every write transaction bumps `seq` *only if*
//!   `generation` is still the owner's (a fencing token), so a process that
//!   lost its session (a failover, a network cut) and whose database was
//!   taken over meanwhile can never write again.
//!
//! When the writing connection breaks, the next write reconnects (a URL
//! with several hosts and `target_session_attrs=read-write` finds the new
//! primary), takes the advisory lock again, and continues only if the
//! generation is still its own and `seq` is at least the last one it
//! acknowledged: every acknowledged write is there (synchronous
//! replication), nobody else wrote. A write whose commit was cut off is
//! found committed (`seq` one more) or not (then it is run again).
//! Anything else is an error: reopen the database.

use std::sync::Arc;

use mxstate_api::{Error, ErrorKind, Result};
use postgres::Client;

use crate::conn::Conn;
use crate::error::pg;
use crate::stmt::prepared;

/// The session advisory lock of the owner ("mxstate" in ASCII).
pub const LEASE_KEY: i64 = 0x006d_7873_7461_7465;

/// The lease table, made with the records' table.
pub const LEASE_DDL: &str = "CREATE TABLE IF NOT EXISTS mxstate_lease (id int PRIMARY KEY CHECK (id = 1), \
     generation bigint NOT NULL, seq bigint NOT NULL, holder text NOT NULL, since timestamptz NOT NULL); \
     INSERT INTO mxstate_lease VALUES (1, 0, 0, '', now()) ON CONFLICT (id) DO NOTHING";

/// One write transaction's body, run again when its first run was cut off
/// before the commit.
pub type Body = Arc<dyn Fn(&mut postgres::Transaction<'_>) -> Result<()> + Send + Sync>;

/// Rows to upsert: families, keys, values (`None`: a deletion).
pub type Rows = (Vec<i16>, Vec<Vec<u8>>, Vec<Option<Vec<u8>>>);

/// What one fenced write does.
#[derive(Clone)]
pub enum Job {
    /// Anything, in a transaction that first bumps the lease's `seq`.
    Body(Body),
    /// Rows upserted into `mxstate_rows`.
    Rows(Arc<Rows>),
}

/// The fencing and the upsert of a write in one statement (one round
/// trip, its own transaction): the lease's `seq` is bumped only while
/// `generation` is ours, and the rows are joined with that update's
/// result, so a process that lost the lease writes nothing and gets no
/// row back. Statements of one `WITH` run in one snapshot, atomically.
const FENCED_UPSERT: &str =
    "WITH fence AS (UPDATE mxstate_lease SET seq = seq + 1 WHERE id = 1 AND generation = $1 RETURNING seq), \
     put AS (INSERT INTO mxstate_rows (cf, k, v) SELECT q.cf, q.k, q.v \
             FROM unnest($2::smallint[], $3::bytea[], $4::bytea[]) AS q(cf, k, v), fence \
             ON CONFLICT (cf, k) DO UPDATE SET v = EXCLUDED.v) \
     SELECT seq FROM fence";

/// A batch's records as rows (NULL: a deletion), in a transaction that
/// was fenced.
const UPSERT: &str =
    "INSERT INTO mxstate_rows (cf, k, v) SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) \
     ON CONFLICT (cf, k) DO UPDATE SET v = EXCLUDED.v";

/// The fencing of a write transaction.
const FENCE: &str = "UPDATE mxstate_lease SET seq = seq + 1 WHERE id = 1 AND generation = $1 RETURNING seq";

/// The owner's writing connection and its fencing state.
pub struct Writer {
    url: String,
    location: String,
    conn: Conn,
    generation: i64,
    /// The lease's `seq` after the last write this process saw committed.
    seq: i64,
}

fn lost(location: &str, why: String) -> Error {
    Error::backend(
        "postgresql",
        ErrorKind::Conflict,
        format!("{location}: this process no longer owns the database ({why}); reopen it"),
    )
}

/// Takes the advisory lock on `c`; `DatabaseInUse` if another session has it.
fn lock(c: &mut Client, location: &str) -> Result<()> {
    let owner: bool = c
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_KEY])
        .map_err(pg)?
        .get(0);
    if owner {
        Ok(())
    } else {
        Err(Error::DatabaseInUse(location.to_owned()))
    }
}

impl Writer {
    /// Connects and takes ownership: the advisory lock, then a new generation.
    pub fn take(url: &str, location: &str) -> Result<Writer> {
        let conn = Conn::open(url)?;
        let loc = location.to_owned();
        let (generation, seq) = conn.run(move |c| {
            lock(c, &loc)?;
            let holder = format!("pid {} on {}", std::process::id(), hostname());
            let row = c
                .query_one(
                    "UPDATE mxstate_lease SET generation = generation + 1, holder = $1, since = now() \
                     WHERE id = 1 RETURNING generation, seq",
                    &[&holder],
                )
                .map_err(pg)?;
            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })?;
        Ok(Writer {
            url: url.to_owned(),
            location: location.to_owned(),
            conn,
            generation,
            seq,
        })
    }

    /// Runs `job` fenced by the lease, atomically; `sync` chooses a
    /// synchronous commit. Reconnects first if the connection broke.
    pub fn write(&mut self, job: Job, sync: bool) -> Result<()> {
        if !self.conn.is_open() {
            self.reconnect()?;
        }
        match self.attempt(job.clone(), sync) {
            Ok(seq) => {
                self.seq = seq;
                Ok(())
            }
            Err(e) if !self.conn.is_open() => {
                // Cut off: did it commit?
                let now = self.reconnect()?;
                if now == self.seq + 1 {
                    self.seq = now;
                    Ok(())
                } else if now == self.seq {
                    self.seq = self.attempt(job, sync)?;
                    Ok(())
                } else {
                    Err(lost(
                        &self.location,
                        format!("write sequence {now}, expected {} ({e})", self.seq),
                    ))
                }
            }
            Err(e) => Err(e),
        }
    }

    fn attempt(&self, job: Job, sync: bool) -> Result<i64> {
        let (generation, location) = (self.generation, self.location.clone());
        self.conn.run(move |c| {
            let fenced = match (&job, sync) {
                // A synchronous write of rows: one round trip instead of
                // four (BEGIN, the fence, the upsert, COMMIT).
                (Job::Rows(rows), true) => {
                    let (cfs, ks, vs) = &**rows;
                    let sql = prepared(c, FENCED_UPSERT)?;
                    c.query_opt(&sql, &[&generation, cfs, ks, vs]).map_err(pg)?
                }
                _ => {
                    let mut t = c.transaction().map_err(pg)?;
                    if !sync {
                        t.batch_execute("SET LOCAL synchronous_commit TO off").map_err(pg)?;
                    }
                    let sql = prepared(&mut t, FENCE)?;
                    let fenced = t.query_opt(&sql, &[&generation]).map_err(pg)?;
                    if fenced.is_some() {
                        match &job {
                            Job::Body(body) => body(&mut t)?,
                            Job::Rows(rows) => {
                                let (cfs, ks, vs) = &**rows;
                                let sql = prepared(&mut t, UPSERT)?;
                                t.execute(&sql, &[cfs, ks, vs]).map_err(pg)?;
                            }
                        }
                        t.commit().map_err(pg)?;
                    }
                    fenced
                }
            };
            let Some(row) = fenced else {
                return Err(lost(&location, "another process took it over".into()));
            };
            Ok(row.get(0))
        })
    }

    /// A new connection (the new primary after a failover), the lock
    /// again, and the lease checked; returns the lease's `seq`.
    fn reconnect(&mut self) -> Result<i64> {
        let conn = Conn::open(&self.url)?;
        let (loc, generation, acked) = (self.location.clone(), self.generation, self.seq);
        let seq = conn.run(move |c| {
            if let Err(e) = lock(c, &loc) {
                return Err(match e {
                    Error::DatabaseInUse(_) => lost(&loc, "another process holds it now".into()),
                    e => e,
                });
            }
            let row = c
                .query_one("SELECT generation, seq FROM mxstate_lease WHERE id = 1", &[])
                .map_err(pg)?;
            let (g, seq): (i64, i64) = (row.get(0), row.get(1));
            if g != generation {
                return Err(lost(&loc, format!("generation {g} took over from {generation}")));
            }
            if seq < acked {
                return Err(lost(
                    &loc,
                    format!(
                        "the server has write {seq}, this process had write {acked} acknowledged: replication lost it"
                    ),
                ));
            }
            Ok(seq)
        })?;
        self.conn = conn;
        Ok(seq)
    }

    /// Gives the advisory lock back (closing).
    pub fn release(&self) {
        let _ = self.conn.run(|c| {
            c.execute("SELECT pg_advisory_unlock($1)", &[&LEASE_KEY]).map_err(pg)?;
            Ok(())
        });
    }

    /// Runs a job on the writing connection (maintenance, sync).
    pub fn conn(&self) -> &Conn {
        &self.conn
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}
