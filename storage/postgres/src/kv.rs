//! [`PgKv`]: the key-value seam in one PostgreSQL table.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use mxstate_api::{Error, Result};
use mxstate_engine::kv::{Batch, Cf, CfSize, KvMaintenance, KvStore, Op, Visit};
use mxstate_engine::{Engine, EngineOptions};
use postgres::types::ToSql;
use postgres::Client;

use crate::conn::{Conn, Pool};
use crate::error::pg;
use crate::lease::{Body, Writer, LEASE_DDL};

/// The table.
const TABLE: &str = "mxstate_kv";

/// Settings of the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Connections for reads (one more writes and holds the lease).
    pub readers: usize,
    /// Rows fetched at a time by a scan.
    pub page_rows: usize,
    /// Commit every write synchronously (the default: a returned write is
    /// on the primary's disk, and on its synchronous standbys when the
    /// cluster has them). `false` commits asynchronously.
    pub sync_writes: bool,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            readers: 4,
            page_rows: 1024,
            sync_writes: true,
        }
    }
}

/// mxstate's records in a PostgreSQL table, owned by this process.
pub struct PgKv {
    /// Holds the lease; every write goes through it.
    writer: Mutex<Writer>,
    readers: Pool,
    location: String,
    page_rows: i64,
    sync_writes: bool,
}

/// Opens (or, with `opts.create`, makes) the database at `url`.
pub fn open(url: &str, opts: EngineOptions) -> Result<Engine> {
    open_with(url, opts, &PgConfig::default())
}

/// [`open`] with backend settings.
pub fn open_with(url: &str, opts: EngineOptions, cfg: &PgConfig) -> Result<Engine> {
    let kv = PgKv::connect(url, opts.create, cfg)?;
    Engine::with_kv(Box::new(kv), opts)
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn cf_id(cf: Cf) -> i16 {
    let i = Cf::ALL.iter().position(|&c| c == cf).unwrap_or(usize::MAX);
    i16::try_from(i).unwrap_or(i16::MAX)
}

/// The first key after every key starting with `prefix` (None: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The first key after `key` in bytewise order.
fn key_after(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}

impl PgKv {
    /// Connects, makes the tables when `create` is set, and takes ownership.
    pub fn connect(url: &str, create: bool, cfg: &PgConfig) -> Result<PgKv> {
        let location = redact(url);
        let setup = Conn::open(url)?;
        let loc = location.clone();
        setup.run(move |c| {
            let exists: bool = c
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&TABLE])
                .map_err(pg)?
                .get(0);
            if !exists && !create {
                return Err(Error::NoDatabase(loc));
            }
            // Values are compressed by the engine: no second compression.
            c.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {TABLE} (cf smallint NOT NULL, k bytea NOT NULL, v bytea NOT NULL, \
                 PRIMARY KEY (cf, k)); ALTER TABLE {TABLE} ALTER COLUMN v SET STORAGE EXTERNAL; {LEASE_DDL}"
            ))
            .map_err(pg)
        })?;
        drop(setup);
        Ok(PgKv {
            writer: Mutex::new(Writer::take(url, &location)?),
            readers: Pool::new(url, cfg.readers),
            location,
            page_rows: i64::try_from(cfg.page_rows.max(1)).unwrap_or(1024),
            sync_writes: cfg.sync_writes,
        })
    }

    /// Runs a query on a reader connection. A connection the server
    /// closed (a restart, a failover) fails its query; the query runs once
    /// more on a fresh connection.
    fn read<T: Send + 'static>(&self, f: impl Fn(&mut Client) -> Result<T> + Send + Clone + 'static) -> Result<T> {
        let (first, open) = {
            let conn = self.readers.lend()?;
            let r = conn.run(f.clone());
            (r, conn.is_open())
        };
        match first {
            Err(_) if !open => self.readers.lend()?.run(f),
            r => r,
        }
    }

    /// Streams the rows of `scan` page by page to `visit`, in one
    /// read-only snapshot; once more on a fresh connection when the server
    /// closed the first before any row.
    fn scan(&self, scan: Scan, visit: &mut Visit<'_>) -> Result<()> {
        let mut visited = false;
        let (first, open) = {
            let conn = self.readers.lend()?;
            let r = scan.clone().stream(&conn, self.page_rows, visit, &mut visited);
            (r, conn.is_open())
        };
        match first {
            Err(_) if !open && !visited => scan.stream(&*self.readers.lend()?, self.page_rows, visit, &mut visited),
            r => r,
        }
    }
}

/// One scan: `sql` with the family, the lower bound and the optional
/// upper bound as `$1..$3`.
#[derive(Clone)]
struct Scan {
    sql: &'static str,
    cf: Cf,
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
}

impl Scan {
    /// Runs on `conn`, `page` rows at a time; `visited` is set by the first row.
    fn stream(self, conn: &Conn, page: i64, visit: &mut Visit<'_>, visited: &mut bool) -> Result<()> {
        let Scan { sql, cf, lower, upper } = self;
        let (pages, inbox) = mpsc::sync_channel::<Result<Vec<(Vec<u8>, Vec<u8>)>>>(1);
        let id = cf_id(cf);
        conn.start(move |c| {
            let run = |c: &mut Client| -> Result<()> {
                let mut t = c
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .map_err(pg)?;
                let params: [&(dyn ToSql + Sync); 3] = [&id, &lower, &upper];
                let portal = t.bind(sql, &params).map_err(pg)?;
                loop {
                    let rows = t
                        .query_portal(&portal, i32::try_from(page).unwrap_or(1024))
                        .map_err(pg)?;
                    let n = rows.len();
                    let kvs = rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
                    if pages.send(Ok(kvs)).is_err() || i64::try_from(n).unwrap_or(0) < page {
                        break;
                    }
                }
                t.commit().map_err(pg)
            };
            if let Err(e) = run(c) {
                let _ = pages.send(Err(e));
            }
        })?;
        while let Ok(page) = inbox.recv() {
            for (k, v) in page? {
                *visited = true;
                if !visit(&k, &v)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

impl Drop for PgKv {
    fn drop(&mut self) {
        // Give the lock back now rather than when the server notices the
        // session is gone, so that a process taking over need not wait.
        if let Ok(w) = self.writer.lock() {
            w.release();
        }
    }
}

const SCAN_UP: &str =
    "SELECT k, v FROM mxstate_kv WHERE cf = $1 AND k >= $2 AND ($3::bytea IS NULL OR k < $3) ORDER BY k";
const SCAN_DOWN: &str =
    "SELECT k, v FROM mxstate_kv WHERE cf = $1 AND k >= $2 AND ($3::bytea IS NULL OR k < $3) ORDER BY k DESC";

impl KvStore for PgKv {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (id, key) = (cf_id(cf), key.to_vec());
        self.read(move |c| {
            let row = c
                .query_opt("SELECT v FROM mxstate_kv WHERE cf = $1 AND k = $2", &[&id, &key])
                .map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let (id, wanted) = (cf_id(cf), keys.to_vec());
        let found = self.read(move |c| {
            let rows = c
                .query(
                    "SELECT k, v FROM mxstate_kv WHERE cf = $1 AND k = ANY($2)",
                    &[&id, &wanted],
                )
                .map_err(pg)?;
            Ok(rows
                .into_iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect::<BTreeMap<_, _>>())
        })?;
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let sync = self.sync_writes && !batch.sync_deferred();
        // The last operation on a key wins: then deletes and upserts are
        // disjoint and one statement each applies them.
        let mut last: BTreeMap<(i16, Vec<u8>), Option<Vec<u8>>> = BTreeMap::new();
        for op in batch.into_ops() {
            match op {
                Op::Put(cf, k, v) => last.insert((cf_id(cf), k), Some(v)),
                Op::Delete(cf, k) => last.insert((cf_id(cf), k), None),
            };
        }
        let (mut dcf, mut dk, mut pcf, mut pk, mut pv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((cf, k), v) in last {
            match v {
                None => {
                    dcf.push(cf);
                    dk.push(k);
                }
                Some(v) => {
                    pcf.push(cf);
                    pk.push(k);
                    pv.push(v);
                }
            }
        }
        let body: Body = Arc::new(move |t| {
            if !dk.is_empty() {
                t.execute(
                    "DELETE FROM mxstate_kv WHERE (cf, k) IN (SELECT * FROM unnest($1::smallint[], $2::bytea[]))",
                    &[&dcf, &dk],
                )
                .map_err(pg)?;
            }
            if !pk.is_empty() {
                t.execute(
                    "INSERT INTO mxstate_kv (cf, k, v) SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) \
                     ON CONFLICT (cf, k) DO UPDATE SET v = EXCLUDED.v",
                    &[&pcf, &pk, &pv],
                )
                .map_err(pg)?;
            }
            Ok(())
        });
        self.writer
            .lock()
            .map_err(|_| Error::internal("writer connection lock poisoned"))?
            .write(body, sync)
    }

    fn sync(&self) -> Result<()> {
        // A synchronous commit that writes (the lease's sequence number)
        // flushes the WAL up to it, asynchronous commits before it included.
        self.writer
            .lock()
            .map_err(|_| Error::internal("writer connection lock poisoned"))?
            .write(Arc::new(|_| Ok(())), true)
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        let scan = Scan {
            sql: SCAN_UP,
            cf,
            lower: prefix.to_vec(),
            upper: prefix_end(prefix),
        };
        self.scan(scan, visit)
    }

    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        if lower >= upper {
            return Ok(());
        }
        let scan = Scan {
            sql: SCAN_DOWN,
            cf,
            lower: lower.to_vec(),
            upper: Some(upper.to_vec()),
        };
        self.scan(scan, visit)
    }

    /// One query of up to `page_rows` rows (one round trip: a run of group
    /// records); a longer range goes on after the last key of that page,
    /// streamed as [`KvStore::scan_prefix`] is, in a snapshot of its own.
    fn scan_range(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        if lower >= upper {
            return Ok(());
        }
        let (id, lo, hi, limit) = (cf_id(cf), lower.to_vec(), upper.to_vec(), self.page_rows);
        let rows = self.read(move |c| {
            let rows = c
                .query(
                    "SELECT k, v FROM mxstate_kv WHERE cf = $1 AND k >= $2 AND k < $3 ORDER BY k LIMIT $4",
                    &[&id, &lo, &hi, &limit],
                )
                .map_err(pg)?;
            Ok(rows
                .into_iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect::<Vec<_>>())
        })?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= self.page_rows;
        let mut last = None;
        for (k, v) in rows {
            if !visit(&k, &v)? {
                return Ok(());
            }
            last = Some(k);
        }
        match last.filter(|_| full) {
            Some(after) => {
                let scan = Scan {
                    sql: SCAN_UP,
                    cf,
                    lower: key_after(after),
                    upper: Some(upper.to_vec()),
                };
                self.scan(scan, visit)
            }
            None => Ok(()),
        }
    }

    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let (id, lower, upper) = (cf_id(cf), prefix.to_vec(), prefix_end(prefix));
        self.read(move |c| {
            let row = c
                .query_opt(
                    "SELECT k, v FROM mxstate_kv WHERE cf = $1 AND k >= $2 AND ($3::bytea IS NULL OR k < $3) \
                     ORDER BY k DESC LIMIT 1",
                    &[&id, &lower, &upper],
                )
                .map_err(pg)?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn maintenance(&self) -> Option<&dyn KvMaintenance> {
        Some(self)
    }
}

impl KvMaintenance for PgKv {
    fn sizes(&self) -> Result<Vec<CfSize>> {
        let counts = self.read(|c| {
            let rows = c
                .query(
                    "SELECT cf, count(*), coalesce(sum(octet_length(k) + octet_length(v)), 0)::bigint \
                     FROM mxstate_kv GROUP BY cf",
                    &[],
                )
                .map_err(pg)?;
            Ok(rows
                .into_iter()
                .map(|r| (r.get::<_, i16>(0), (r.get::<_, i64>(1), r.get::<_, i64>(2))))
                .collect::<BTreeMap<_, _>>())
        })?;
        Ok(Cf::ALL
            .iter()
            .map(|&cf| {
                let (keys, bytes) = counts.get(&cf_id(cf)).copied().unwrap_or((0, 0));
                CfSize {
                    name: cf.name(),
                    // Key and value bytes as stored (before TOAST and page overhead).
                    stored_bytes: u64::try_from(bytes).unwrap_or(0),
                    buffered_bytes: 0,
                    keys_estimate: u64::try_from(keys).unwrap_or(0),
                }
            })
            .collect())
    }

    fn bytes_on_disk(&self) -> Result<u64> {
        self.read(|c| {
            let n: i64 = c
                .query_one("SELECT pg_total_relation_size('mxstate_kv')", &[])
                .map_err(pg)?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn compact(&self) -> Result<()> {
        self.read(|c| c.batch_execute("VACUUM (ANALYZE) mxstate_kv").map_err(pg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(&[]), None);
    }

    #[test]
    fn a_range_goes_on_right_after_its_last_key() {
        assert_eq!(key_after(vec![1, 2]), vec![1, 2, 0]);
        assert_eq!(key_after(vec![0xff]), vec![0xff, 0]);
        assert_eq!(key_after(Vec::new()), vec![0]);
        // Nothing sorts between a key and its successor.
        assert!(vec![1u8, 2] < key_after(vec![1, 2]) && key_after(vec![1, 2]) < vec![1, 2, 0, 0]);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgresql://u:secret@h/db"), "postgresql://u:***@h/db");
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
        assert_eq!(redact("host=/tmp dbname=x"), "host=/tmp dbname=x");
    }

    #[test]
    fn families_have_distinct_ids() {
        let ids: std::collections::BTreeSet<i16> = Cf::ALL.iter().map(|&c| cf_id(c)).collect();
        assert_eq!(ids.len(), Cf::ALL.len());
        assert!(ids
            .iter()
            .all(|&i| i >= 0 && usize::try_from(i).unwrap() < Cf::ALL.len()));
    }
}
