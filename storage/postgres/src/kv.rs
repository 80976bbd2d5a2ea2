//! [`PgKv`]: the key-value seam in PostgreSQL: recent records as rows,
//! older ones folded into packs (`fold`, `layers`, `pack`).

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};

use mxstate_api::{Error, Result};
use mxstate_engine::kv::{Batch, Cf, CfSize, KvMaintenance, KvStore, Op, Visit};
use mxstate_engine::{Engine, EngineOptions};
use postgres::types::ToSql;
use postgres::Client;

use crate::conn::{Conn, Pool};
use crate::error::pg;
use crate::fold::{self, pack_location, FoldPolicy, Folded};
use crate::layers::{Dir, Merge, Next};
use crate::lease::{Body, Job, Writer, LEASE_DDL};
use crate::pack::{Entry, Pack};
use crate::schema;
use crate::stmt::prepared;

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
    /// The most bytes of keys and values in one pack (packs are cut to
    /// fill a heap page; this bounds what a point read decompresses).
    pub pack_bytes: usize,
    /// Rows of one pack a fold step must see to rewrite the pack.
    pub fold_min_rows: usize,
    /// Rows one fold step reads.
    pub fold_window: usize,
    /// Records written between two fold steps after writes (0: only
    /// [`KvMaintenance::compact`] folds).
    pub fold_every: usize,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            readers: 4,
            page_rows: 1024,
            sync_writes: true,
            pack_bytes: 32 << 10,
            fold_min_rows: 32,
            fold_window: 4096,
            fold_every: 4096,
        }
    }
}

/// Where the folding after writes stands.
#[derive(Default)]
struct FoldCursor {
    /// Records written since the last step.
    debt: usize,
    /// The family (index in `Cf::ALL`) and key the next step starts at.
    cf: usize,
    from: Vec<u8>,
}

/// mxstate's records in PostgreSQL tables, owned by this process.
pub struct PgKv {
    /// Holds the lease; every write goes through it.
    writer: Mutex<Writer>,
    readers: Pool,
    location: String,
    page_rows: i64,
    sync_writes: bool,
    policy: FoldPolicy,
    fold_every: usize,
    cursor: Mutex<FoldCursor>,
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
pub(crate) fn key_after(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}

/// The part of a range a first page left: `[lower, upper)`, `upper`
/// None for no bound.
type Rest = (Vec<u8>, Option<Vec<u8>>);

/// Packs fetched at a time by a scan.
const PACK_PAGE: i64 = 8;

/// Rows in `[$2, $3)` of family `$1` (`$3` NULL: no bound).
const ROWS_UP: &str =
    "SELECT k, v FROM mxstate_rows WHERE cf = $1 AND k >= $2 AND ($3::bytea IS NULL OR k < $3) ORDER BY k";
const ROWS_DOWN: &str =
    "SELECT k, v FROM mxstate_rows WHERE cf = $1 AND k >= $2 AND ($3::bytea IS NULL OR k < $3) ORDER BY k DESC";
/// The packs that can hold keys in `[$2, $3)`: from the home pack of `$2`.
const PACKS_UP: &str = "SELECT lo, data FROM mxstate_packs WHERE cf = $1 AND ($3::bytea IS NULL OR lo < $3) \
     AND lo >= coalesce((SELECT lo FROM mxstate_packs WHERE cf = $1 AND lo <= $2 ORDER BY lo DESC LIMIT 1), ''::bytea) \
     ORDER BY lo";
const PACKS_DOWN: &str = "SELECT lo, data FROM mxstate_packs WHERE cf = $1 AND ($3::bytea IS NULL OR lo < $3) \
     AND lo >= coalesce((SELECT lo FROM mxstate_packs WHERE cf = $1 AND lo <= $2 ORDER BY lo DESC LIMIT 1), ''::bytea) \
     ORDER BY lo DESC";

/// The first page of a scan in one statement: up to `$4` rows and `$5`
/// packs of the range (source 0: a row, 1: a pack).
fn first_page_sql(dir: Dir) -> &'static str {
    fn build(rows: &str, packs: &str) -> String {
        let rows = rows.replacen("SELECT k, v", "SELECT 0::int2 AS s, k, v", 1);
        let packs = packs.replacen("SELECT lo, data", "SELECT 1::int2, lo, data", 1);
        format!("({rows} LIMIT $4) UNION ALL ({packs} LIMIT $5)")
    }
    static UP: LazyLock<String> = LazyLock::new(|| build(ROWS_UP, PACKS_UP));
    static DOWN: LazyLock<String> = LazyLock::new(|| build(ROWS_DOWN, PACKS_DOWN));
    match dir {
        Dir::Up => UP.as_str(),
        Dir::Down => DOWN.as_str(),
    }
}

/// A key's row, or else its home pack (source 0: the row, 1: the pack).
const GET: &str = "SELECT 0::int2, k, v FROM mxstate_rows WHERE cf = $1 AND k = $2 \
     UNION ALL (SELECT 1::int2, lo, data FROM mxstate_packs WHERE cf = $1 AND lo <= $2 \
       AND NOT EXISTS (SELECT 1 FROM mxstate_rows WHERE cf = $1 AND k = $2) ORDER BY lo DESC LIMIT 1)";
/// The rows of keys `$2`, and the home packs of the keys. A join with
/// the keys, not `k = ANY($2)`: with statistics from when the table was
/// small, PostgreSQL filtered every row of the family against the whole
/// array (20,000 keys by 20,000 rows: 8 s a call during an import).
/// The home packs are found first and then joined, so that each key's
/// home is looked up once (with `lo IN (...)` the plan ran the lookup
/// twice a key; a one-key multi-get went from 223-235 to 173-198 µs:
/// `benches/src/bin/pg_reads.rs`).
const MULTI_GET: &str = "SELECT 0::int2, r.k, r.v FROM unnest($2::bytea[]) AS q(k) \
       JOIN mxstate_rows r ON r.cf = $1 AND r.k = q.k \
     UNION ALL SELECT 1::int2, p.lo, p.data FROM ( \
       SELECT DISTINCT (SELECT lo FROM mxstate_packs WHERE cf = $1 AND lo <= q.k ORDER BY lo DESC LIMIT 1) AS lo \
       FROM unnest($2::bytea[]) AS q(k)) w JOIN mxstate_packs p ON p.cf = $1 AND p.lo = w.lo";
/// [`MULTI_GET`] over several families: `$1` and `$2` are the family and
/// the key of each wanted record, side by side.
const MULTI_GET_FAMILIES: &str = "SELECT 0::int2, r.cf, r.k, r.v FROM unnest($1::int2[], $2::bytea[]) AS q(cf, k) \
       JOIN mxstate_rows r ON r.cf = q.cf AND r.k = q.k \
     UNION ALL SELECT 1::int2, p.cf, p.lo, p.data FROM mxstate_packs p JOIN ( \
       SELECT DISTINCT q.cf, (SELECT lo FROM mxstate_packs WHERE cf = q.cf AND lo <= q.k ORDER BY lo DESC LIMIT 1) AS lo \
       FROM unnest($1::int2[], $2::bytea[]) AS q(cf, k)) w ON p.cf = w.cf AND p.lo = w.lo";

/// The answers for `keys` of family `cf` from what a multi-get read: the
/// family's `rows` (a key's row wins) and its `packs` by low key.
fn answers(
    cf: i16,
    keys: &[Vec<u8>],
    rows: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    packs: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut decoded: BTreeMap<&[u8], Pack> = BTreeMap::new();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(v) = rows.get(k) {
            out.push(v.clone());
            continue;
        }
        let Some((lo, data)) = packs.range::<Vec<u8>, _>(..=k).next_back() else {
            out.push(None);
            continue;
        };
        let pack = match decoded.entry(lo.as_slice()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(Pack::decode(data, pack_location(cf, lo))?),
        };
        out.push(pack.get(k)?);
    }
    Ok(out)
}

/// The packed records of `[lower, upper)` in `dir` order from one pack.
fn pack_entries(cf: i16, lo: &[u8], data: &[u8], lower: &[u8], upper: Option<&[u8]>, dir: Dir) -> Result<Vec<Entry>> {
    let mut e = Pack::decode(data, pack_location(cf, lo))?.entries_in(lower, upper)?;
    if dir == Dir::Down {
        e.reverse();
    }
    Ok(e)
}

impl PgKv {
    /// Connects, makes the tables when `create` is set, and takes ownership.
    pub fn connect(url: &str, create: bool, cfg: &PgConfig) -> Result<PgKv> {
        let location = redact(url);
        let setup = Conn::open(url)?;
        let loc = location.clone();
        setup.run(move |c| {
            if schema::layout(c, &loc)? == schema::Layout::None && !create {
                return Err(Error::NoDatabase(loc));
            }
            c.batch_execute(LEASE_DDL).map_err(pg)
        })?;
        drop(setup);
        let writer = Writer::take(url, &location)?;
        let loc = location.clone();
        writer.conn().run(move |c| schema::prepare(c, &loc))?;
        Ok(PgKv {
            writer: Mutex::new(writer),
            readers: Pool::new(url, cfg.readers),
            location,
            page_rows: i64::try_from(cfg.page_rows.max(1)).unwrap_or(1024),
            sync_writes: cfg.sync_writes,
            policy: FoldPolicy {
                pack_bytes: cfg.pack_bytes.max(1),
                min_rows: cfg.fold_min_rows.max(1),
                window: cfg.fold_window.max(1),
            },
            fold_every: cfg.fold_every,
            cursor: Mutex::new(FoldCursor::default()),
        })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Writer>> {
        self.writer
            .lock()
            .map_err(|_| Error::internal("writer connection lock poisoned"))
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

    /// Runs `f` in a write transaction of the owner committed
    /// asynchronously (folding and repacking change no record: a lost one
    /// leaves the records where they were) and returns its answer.
    fn maintain<T: Default + Send + 'static>(
        &self,
        f: impl Fn(&mut postgres::Transaction<'_>) -> Result<T> + Send + Sync + 'static,
    ) -> Result<T> {
        let out: Arc<Mutex<T>> = Arc::default();
        let sink = out.clone();
        let body: Body = Arc::new(move |t| {
            let answer = f(t)?;
            if let Ok(mut o) = sink.lock() {
                *o = answer;
            }
            Ok(())
        });
        self.writer()?.write(Job::Body(body), false)?;
        let answer = std::mem::take(&mut *out.lock().map_err(|_| Error::internal("answer lock poisoned"))?);
        Ok(answer)
    }

    /// One fold step of family `cf` from `from` with `policy`.
    pub fn fold_step(&self, cf: Cf, from: &[u8], policy: FoldPolicy) -> Result<Folded> {
        let (id, from) = (cf_id(cf), from.to_vec());
        self.maintain(move |t| fold::step(t, id, &from, policy))
    }

    /// Merges and cuts again every family's packs (after [`Self::fold_all`]).
    pub fn repack_all(&self) -> Result<()> {
        for cf in Cf::ALL {
            let mut from = Vec::new();
            loop {
                let (id, start, policy) = (cf_id(cf), from.clone(), self.policy);
                match self.maintain(move |t| fold::repack_step(t, id, &start, policy))? {
                    Some(next) => from = next,
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Folds every row of every family into packs.
    pub fn fold_all(&self) -> Result<()> {
        let policy = FoldPolicy {
            min_rows: 1,
            ..self.policy
        };
        for cf in Cf::ALL {
            let mut from = Vec::new();
            while let Some(next) = self.fold_step(cf, &from, policy)?.next {
                from = next;
            }
        }
        Ok(())
    }

    /// After a write of `n` records: one fold step when enough were
    /// written since the last. Its failure does not fail the write (it
    /// committed); the rows stay and a later step folds them.
    fn fold_after_write(&self, n: usize) {
        if self.fold_every == 0 {
            return;
        }
        let Ok(mut c) = self.cursor.lock() else {
            return;
        };
        c.debt = c.debt.saturating_add(n);
        if c.debt < self.fold_every {
            return;
        }
        c.debt -= self.fold_every;
        let cf = Cf::ALL.get(c.cf).copied().unwrap_or(Cf::Meta);
        match self.fold_step(cf, &c.from, self.policy) {
            Ok(done) => match done.next {
                Some(next) => c.from = next,
                None => {
                    c.cf = (c.cf + 1) % Cf::ALL.len();
                    c.from.clear();
                }
            },
            Err(e) => tracing::warn!(location = %self.location, error = %e, "a fold step after a write failed"),
        }
    }

    /// The first page of a scan of `[lower, upper)` in one round trip:
    /// the records it settles, and where the rest of the range starts
    /// (`None`: the page settled the whole range).
    fn first_page(
        &self,
        dir: Dir,
        cf: Cf,
        lower: &[u8],
        upper: Option<&[u8]>,
        rows: i64,
    ) -> Result<(Vec<Entry>, Option<Rest>)> {
        let (id, lo, hi, sql) = (
            cf_id(cf),
            lower.to_vec(),
            upper.map(<[u8]>::to_vec),
            first_page_sql(dir),
        );
        let got = self.read(move |c| {
            let sql = prepared(c, sql)?;
            let got = c.query(&sql, &[&id, &lo, &hi, &rows, &PACK_PAGE]).map_err(pg)?;
            Ok(got
                .into_iter()
                .map(|r| {
                    (
                        r.get::<_, i16>(0),
                        r.get::<_, Vec<u8>>(1),
                        r.get::<_, Option<Vec<u8>>>(2),
                    )
                })
                .collect::<Vec<_>>())
        })?;
        let mut m = Merge::new(dir);
        let (mut n_rows, mut n_packs, mut last_row, mut pack_edge) = (0i64, 0i64, None, None);
        for (source, k, v) in got {
            if source == 0 {
                n_rows += 1;
                last_row = Some(k.clone());
                m.rows.push_back((k, v));
            } else {
                n_packs += 1;
                let data = v.unwrap_or_default();
                let all = Pack::decode(&data, pack_location(id, &k))?.entries()?;
                // Up: the pack settles keys up to its last; down: down to its lo.
                pack_edge = match dir {
                    Dir::Up => all.last().map(|(k, _)| k.clone()).or(Some(k)),
                    Dir::Down => Some(k),
                };
                let inside = all
                    .into_iter()
                    .filter(|(k, _)| k.as_slice() >= lower && upper.is_none_or(|u| k.as_slice() < u));
                match dir {
                    Dir::Up => m.entries.extend(inside),
                    Dir::Down => m.entries.extend(inside.rev()),
                }
            }
        }
        // The page settles keys up to (down: from) the nearer of the two
        // edges of what it did not fetch whole.
        let edges = [
            last_row.filter(|_| n_rows >= rows),
            pack_edge.filter(|_| n_packs >= PACK_PAGE),
        ];
        let edge = match dir {
            Dir::Up => edges.into_iter().flatten().min(),
            Dir::Down => edges.into_iter().flatten().max(),
        };
        let mut out = m.drain();
        let rest = match (dir, edge) {
            (_, None) => None,
            (Dir::Up, Some(e)) => {
                out.retain(|(k, _)| *k <= e);
                let after = key_after(e);
                upper
                    .is_none_or(|u| after.as_slice() < u)
                    .then(|| (after, upper.map(<[u8]>::to_vec)))
            }
            (Dir::Down, Some(e)) => {
                out.retain(|(k, _)| *k >= e);
                (e.as_slice() > lower).then(|| (lower.to_vec(), Some(e)))
            }
        };
        Ok((out, rest))
    }

    /// Visits `[lower, upper)` in `dir` order: the first page in one
    /// round trip, the rest (if any) streamed.
    fn scan_dir(&self, dir: Dir, cf: Cf, lower: &[u8], upper: Option<&[u8]>, visit: &mut Visit<'_>) -> Result<()> {
        if upper.is_some_and(|u| lower >= u) {
            return Ok(());
        }
        let (page, rest) = self.first_page(dir, cf, lower, upper, self.page_rows)?;
        for (k, v) in page {
            if !visit(&k, &v)? {
                return Ok(());
            }
        }
        match rest {
            Some((lower, upper)) => self.scan(Scan { dir, cf, lower, upper }, visit),
            None => Ok(()),
        }
    }

    /// Streams the records of `scan` page by page to `visit`, in one
    /// read-only snapshot; once more on a fresh connection when the server
    /// closed the first before any record.
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

/// One streamed scan of `[lower, upper)` (`upper` None: no bound).
#[derive(Clone)]
struct Scan {
    dir: Dir,
    cf: Cf,
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
}

impl Scan {
    /// Runs on `conn`: rows and packs through two portals of one
    /// transaction, merged, `page` records at a time; `visited` is set by
    /// the first record.
    fn stream(self, conn: &Conn, page: i64, visit: &mut Visit<'_>, visited: &mut bool) -> Result<()> {
        let Scan { dir, cf, lower, upper } = self;
        let (pages, inbox) = mpsc::sync_channel::<Result<Vec<Entry>>>(1);
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
                let (rows_sql, packs_sql) = match dir {
                    Dir::Up => (ROWS_UP, PACKS_UP),
                    Dir::Down => (ROWS_DOWN, PACKS_DOWN),
                };
                let (rows_sql, packs_sql) = (prepared(&mut t, rows_sql)?, prepared(&mut t, packs_sql)?);
                let rows = t.bind(&rows_sql, &params).map_err(pg)?;
                let packs = t.bind(&packs_sql, &params).map_err(pg)?;
                let page_n = i32::try_from(page).unwrap_or(1024);
                let mut m = Merge::new(dir);
                let mut out = Vec::new();
                loop {
                    match m.next() {
                        Next::Record(e) => {
                            out.push(e);
                            if out.len() >= page_n as usize && pages.send(Ok(std::mem::take(&mut out))).is_err() {
                                return Ok(());
                            }
                        }
                        Next::NeedRows => {
                            let got = t.query_portal(&rows, page_n).map_err(pg)?;
                            m.rows_done = got.len() < page_n as usize;
                            m.rows.extend(got.into_iter().map(|r| (r.get(0), r.get(1))));
                        }
                        Next::NeedEntries => {
                            let got = t.query_portal(&packs, PACK_PAGE as i32).map_err(pg)?;
                            m.entries_done = got.len() < PACK_PAGE as usize;
                            for r in got {
                                let (lo, data): (Vec<u8>, Vec<u8>) = (r.get(0), r.get(1));
                                m.entries
                                    .extend(pack_entries(id, &lo, &data, &lower, upper.as_deref(), dir)?);
                            }
                        }
                        Next::Done => break,
                    }
                }
                if !out.is_empty() && pages.send(Ok(out)).is_err() {
                    return Ok(());
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

impl KvStore for PgKv {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (id, key) = (cf_id(cf), key.to_vec());
        self.read(move |c| {
            let sql = prepared(c, GET)?;
            let got = c.query(&sql, &[&id, &key]).map_err(pg)?;
            match got.first() {
                None => Ok(None),
                Some(r) if r.get::<_, i16>(0) == 0 => Ok(r.get(2)),
                Some(r) => {
                    let (lo, data): (Vec<u8>, Vec<u8>) = (r.get(1), r.get(2));
                    Pack::decode(&data, pack_location(id, &lo))?.get(&key)
                }
            }
        })
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let (id, wanted) = (cf_id(cf), keys.to_vec());
        let (rows, packs) = self.read(move |c| {
            let sql = prepared(c, MULTI_GET)?;
            let got = c.query(&sql, &[&id, &wanted]).map_err(pg)?;
            let (mut rows, mut packs) = (BTreeMap::new(), BTreeMap::new());
            for r in got {
                let (k, v): (Vec<u8>, Option<Vec<u8>>) = (r.get(1), r.get(2));
                if r.get::<_, i16>(0) == 0 {
                    rows.insert(k, v);
                } else {
                    packs.insert(k, v.unwrap_or_default());
                }
            }
            Ok((rows, packs))
        })?;
        answers(id, keys, &rows, &packs)
    }

    fn multi_get_families(&self, wanted: &[(Cf, Vec<Vec<u8>>)]) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        let mut cfs: Vec<i16> = Vec::new();
        let mut ks: Vec<Vec<u8>> = Vec::new();
        for (cf, keys) in wanted {
            cfs.extend(std::iter::repeat_n(cf_id(*cf), keys.len()));
            ks.extend(keys.iter().cloned());
        }
        type Read = BTreeMap<i16, (BTreeMap<Vec<u8>, Option<Vec<u8>>>, BTreeMap<Vec<u8>, Vec<u8>>)>;
        let read: Read = self.read(move |c| {
            let sql = prepared(c, MULTI_GET_FAMILIES)?;
            let got = c.query(&sql, &[&cfs, &ks]).map_err(pg)?;
            let mut read: Read = BTreeMap::new();
            for r in got {
                let (cf, k, v): (i16, Vec<u8>, Option<Vec<u8>>) = (r.get(1), r.get(2), r.get(3));
                let (rows, packs) = read.entry(cf).or_default();
                if r.get::<_, i16>(0) == 0 {
                    rows.insert(k, v);
                } else {
                    packs.insert(k, v.unwrap_or_default());
                }
            }
            Ok(read)
        })?;
        let none = Default::default();
        wanted
            .iter()
            .map(|(cf, keys)| {
                let id = cf_id(*cf);
                let (rows, packs) = read.get(&id).unwrap_or(&none);
                answers(id, keys, rows, packs)
            })
            .collect()
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let sync = self.sync_writes && !batch.sync_deferred();
        // The last operation on a key wins: then one statement applies
        // them all (a deletion is a row without a value until folded).
        let mut last: BTreeMap<(i16, Vec<u8>), Option<Vec<u8>>> = BTreeMap::new();
        for op in batch.into_ops() {
            match op {
                Op::Put(cf, k, v) => last.insert((cf_id(cf), k), Some(v)),
                Op::Delete(cf, k) => last.insert((cf_id(cf), k), None),
            };
        }
        let n = last.len();
        let (mut cfs, mut ks, mut vs) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for ((cf, k), v) in last {
            cfs.push(cf);
            ks.push(k);
            vs.push(v);
        }
        let job = if ks.is_empty() {
            Job::Body(Arc::new(|_| Ok(())))
        } else {
            Job::Rows(Arc::new((cfs, ks, vs)))
        };
        self.writer()?.write(job, sync)?;
        self.fold_after_write(n);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        // A synchronous commit that writes (the lease's sequence number)
        // flushes the WAL up to it, asynchronous commits before it included.
        self.writer()?.write(Job::Body(Arc::new(|_| Ok(()))), true)
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.scan_dir(Dir::Up, cf, prefix, prefix_end(prefix).as_deref(), visit)
    }

    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.scan_dir(Dir::Down, cf, lower, Some(upper), visit)
    }

    /// The first page in one round trip (a run of group records), the
    /// rest streamed in a snapshot of its own.
    fn scan_range(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.scan_dir(Dir::Up, cf, lower, Some(upper), visit)
    }

    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(prefix);
        let (page, rest) = self.first_page(Dir::Down, cf, prefix, end.as_deref(), 8)?;
        if let Some(first) = page.into_iter().next() {
            return Ok(Some(first));
        }
        let mut found = None;
        if let Some((lower, upper)) = rest {
            let scan = Scan {
                dir: Dir::Down,
                cf,
                lower,
                upper,
            };
            self.scan(scan, &mut |k, v| {
                found = Some((k.to_vec(), v.to_vec()));
                Ok(false)
            })?;
        }
        Ok(found)
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn maintenance(&self) -> Option<&dyn KvMaintenance> {
        Some(self)
    }

    fn reads_are_round_trips(&self) -> bool {
        true
    }
}

impl KvMaintenance for PgKv {
    fn sizes(&self) -> Result<Vec<CfSize>> {
        let counts = self.read(|c| {
            let rows = c
                .query(
                    "SELECT cf, sum(n)::bigint, sum(b)::bigint FROM ( \
                       SELECT cf, count(*) AS n, sum(octet_length(k) + octet_length(v)) AS b \
                         FROM mxstate_rows WHERE v IS NOT NULL GROUP BY cf \
                       UNION ALL SELECT cf, sum(n), sum(octet_length(lo) + octet_length(data)) \
                         FROM mxstate_packs GROUP BY cf) AS s GROUP BY cf",
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
                    // Rows' key and value bytes, packs' compressed bytes
                    // (before TOAST and page overhead).
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
                .query_one(
                    "SELECT pg_total_relation_size('mxstate_rows') + pg_total_relation_size('mxstate_packs')",
                    &[],
                )
                .map_err(pg)?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Folds every row into packs, merges and cuts the packs again (full
    /// packs: folding random keys leaves them about 70% full), then
    /// rewrites both tables (`VACUUM
    /// FULL`: their files shrink to the live records; the tables are
    /// locked for its duration) and refreshes the planner's statistics.
    fn compact(&self) -> Result<()> {
        self.fold_all()?;
        self.repack_all()?;
        self.read(|c| {
            // One statement each: several in one string run as one transaction.
            c.batch_execute("VACUUM (FULL, ANALYZE) mxstate_rows").map_err(pg)?;
            c.batch_execute("VACUUM (FULL, ANALYZE) mxstate_packs").map_err(pg)
        })
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
