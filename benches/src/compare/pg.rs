//! The Synapse side: a private PostgreSQL cluster holding Synapse's four
//! state tables, queried with the SQL Synapse itself sends.
//!
//! Synapse talks to PostgreSQL through psycopg2, which interpolates the
//! parameters into the SQL text on the client and sends it with the simple
//! query protocol; each `runInteraction` is a transaction opened by psycopg2
//! (`BEGIN ISOLATION LEVEL REPEATABLE READ`, Synapse's default for
//! PostgreSQL) and closed by `COMMIT`, one round trip per statement. This
//! module does the same, with `simple_query` and literal values.

use std::path::Path;
use std::time::{Duration, Instant};

use mxstate_synapse_dump::PgCluster;
use postgres::{Client, SimpleQueryMessage};

use super::Res;

/// `(type, state_key, event_id)`.
pub type Triple = (String, String, String);

/// The database the dump is loaded into.
const DB: &str = "synapse";

/// The four state tables, in the order they are reported.
pub const TABLES: [&str; 4] = [
    "state_groups",
    "state_group_edges",
    "state_groups_state",
    "event_to_state_groups",
];

/// A running cluster and a connection to the loaded database.
pub struct Pg {
    client: Client,
    pub cluster: PgCluster,
}

/// The three read shapes compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// `StateFilter.all()`.
    Full,
    /// `StateFilter.from_types([("m.room.power_levels", "")])`.
    PowerLevels,
    /// `StateFilter(types={"m.room.member": frozenset()}, include_others=True)`.
    AllButMembers,
}

impl Read {
    pub const ALL: [Read; 3] = [Read::Full, Read::PowerLevels, Read::AllButMembers];

    pub fn label(self) -> &'static str {
        match self {
            Read::Full => "full state",
            Read::PowerLevels => "one key (m.room.power_levels, \"\")",
            Read::AllButMembers => "all but m.room.member",
        }
    }
}

/// A string literal as psycopg2 renders a Python `str` (no backslashes here).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The SQL `_get_state_groups_from_groups_txn` sends for one group on
/// PostgreSQL (synapse/storage/databases/state/bg_updates.py), after
/// psycopg2's interpolation.
pub fn state_sql(read: Read, group: i64) -> String {
    let select = match read {
        // `use_condition_optimization` is false (include_others, or a full
        // filter): one DISTINCT ON over the whole chain, with
        // `make_sql_filter_clause()` appended.
        Read::Full | Read::AllButMembers => {
            let where_clause = match read {
                // is_full(): the clause is empty.
                Read::Full => String::new(),
                // types={m.room.member: frozenset()}, include_others=True:
                // no per-key clause, then `type NOT IN (?)`.
                _ => format!(" AND (type NOT IN ({}))", lit("m.room.member")),
            };
            format!(
                "
                    SELECT DISTINCT ON (type, state_key)
                        type, state_key, event_id
                    FROM state_groups_state
                    WHERE state_group IN (
                        SELECT state_group FROM sgs
                    ) {where_clause}
                    ORDER BY type, state_key, state_group DESC
                "
            )
        }
        // include_others is false and fewer than 10 conditions: one
        // DISTINCT ON per condition, joined by UNION (here one condition).
        Read::PowerLevels => format!(
            "
                        (
                            SELECT DISTINCT ON (type, state_key)
                                type, state_key, event_id
                            FROM state_groups_state
                            INNER JOIN sgs USING (state_group)
                            WHERE (type = {} AND state_key = {})
                            ORDER BY type, state_key, state_group DESC
                        )
                        ",
            lit("m.room.power_levels"),
            lit("")
        ),
    };
    format!(
        "
                WITH RECURSIVE sgs(state_group) AS (
                    VALUES({group}::bigint)
                    UNION ALL
                    SELECT prev_state_group FROM state_group_edges e, sgs s
                    WHERE s.state_group = e.state_group
                )
                {select}
            "
    )
}

/// `_count_state_group_hops_txn`'s query on PostgreSQL.
fn hops_sql(group: i64) -> String {
    format!(
        "
                WITH RECURSIVE state(state_group) AS (
                    VALUES({group}::bigint)
                    UNION ALL
                    SELECT prev_state_group FROM state_group_edges e, state s
                    WHERE s.state_group = e.state_group
                )
                SELECT count(*) FROM state;
            "
    )
}

fn rows(msgs: &[SimpleQueryMessage]) -> impl Iterator<Item = &postgres::SimpleQueryRow> {
    msgs.iter().filter_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(r),
        _ => None,
    })
}

/// The only value of a one-row, one-column result.
fn scalar(msgs: &[SimpleQueryMessage]) -> Res<String> {
    rows(msgs)
        .next()
        .and_then(|r| r.get(0))
        .map(str::to_owned)
        .ok_or_else(|| "query returned no value".into())
}

/// Result rows as triples, sorted.
pub fn triples(msgs: &[SimpleQueryMessage]) -> Res<Vec<Triple>> {
    let mut out = Vec::new();
    for r in rows(msgs) {
        let get = |i: usize| -> Res<String> { Ok(r.try_get(i)?.unwrap_or_default().to_owned()) };
        out.push((get(0)?, get(1)?, get(2)?));
    }
    out.sort_unstable();
    Ok(out)
}

/// One new group of a chain: `(type, state_key, event_id)` of its one delta row.
pub struct NewRow<'a> {
    pub room: &'a str,
    pub prev: i64,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub state_key: &'a str,
}

impl Pg {
    /// Starts a private cluster and creates the database.
    pub fn start() -> Res<Pg> {
        let cluster = PgCluster::start()?;
        cluster.create_database(DB)?;
        let client = cluster.connect(DB)?;
        Ok(Pg { client, cluster })
    }

    /// `SELECT version()`, shortened to `PostgreSQL 15.x`.
    pub fn version(&mut self) -> Res<String> {
        let v = scalar(&self.client.simple_query("SHOW server_version")?)?;
        Ok(format!("PostgreSQL {v}"))
    }

    /// Loads a plain SQL dump with `psql -f` (tables, COPYs, then indexes).
    pub fn load(&self, dump: &Path) -> Res<Duration> {
        let t = Instant::now();
        self.cluster.psql_file(DB, dump)?;
        Ok(t.elapsed())
    }

    /// `VACUUM ANALYZE` of the whole database.
    pub fn vacuum_analyze(&mut self) -> Res<Duration> {
        let t = Instant::now();
        self.client.batch_execute("VACUUM ANALYZE")?;
        Ok(t.elapsed())
    }

    /// `pg_total_relation_size` (heap, TOAST, indexes) of each state table.
    pub fn table_sizes(&mut self) -> Res<Vec<(&'static str, u64)>> {
        self.sizes_of(&TABLES)
    }

    /// `pg_total_relation_size` (heap, TOAST, indexes) of each of `tables`.
    pub fn sizes_of(&mut self, tables: &[&'static str]) -> Res<Vec<(&'static str, u64)>> {
        let mut out = Vec::new();
        for &t in tables {
            let v = scalar(
                &self
                    .client
                    .simple_query(&format!("SELECT pg_total_relation_size({})", lit(t)))?,
            )?;
            out.push((t, v.parse::<u64>()?));
        }
        Ok(out)
    }

    /// The connection to the loaded database.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Row counts of the state tables.
    pub fn row_count(&mut self, table: &str) -> Res<u64> {
        Ok(scalar(&self.client.simple_query(&format!("SELECT count(*) FROM {table}"))?)?.parse()?)
    }

    /// Every state group id, ascending.
    pub fn group_ids(&mut self) -> Res<Vec<i64>> {
        let msgs = self.client.simple_query("SELECT id FROM state_groups ORDER BY id")?;
        rows(&msgs)
            .map(|r| -> Res<i64> { Ok(r.try_get(0)?.unwrap_or_default().parse()?) })
            .collect()
    }

    /// The room of a group.
    pub fn room_of(&mut self, group: i64) -> Res<String> {
        scalar(
            &self
                .client
                .simple_query(&format!("SELECT room_id FROM state_groups WHERE id = {group}"))?,
        )
    }

    /// Median round trip of `SELECT 1` over `n` tries, for scale.
    pub fn round_trip(&mut self, n: usize) -> Res<super::report::Timings> {
        let mut t = super::report::Timings::default();
        for _ in 0..n {
            let s = Instant::now();
            self.client.simple_query("SELECT 1")?;
            t.push(s.elapsed());
        }
        Ok(t)
    }

    /// One `_get_state_groups_from_groups_txn` call for one group, as Synapse
    /// runs it: its own transaction, `SET LOCAL enable_seqscan=off`, the
    /// query, `COMMIT`. Times the whole transaction (rows received, not
    /// converted into a dict).
    pub fn read(&mut self, read: Read, group: i64) -> Res<(Duration, Vec<SimpleQueryMessage>)> {
        let sql = state_sql(read, group);
        let c = &mut self.client;
        let t = Instant::now();
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")?;
        c.batch_execute("SET LOCAL enable_seqscan=off")?;
        let msgs = c.simple_query(&sql)?;
        c.batch_execute("COMMIT")?;
        Ok((t.elapsed(), msgs))
    }

    /// Stores one delta group with only the inserts: `nextval`, INSERT
    /// state_groups, INSERT state_group_edges, INSERT one state_groups_state
    /// row, COMMIT. Returns the new id.
    pub fn store_inserts_only(&mut self, g: &NewRow<'_>) -> Res<(i64, Duration)> {
        let c = &mut self.client;
        let t = Instant::now();
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")?;
        let id: i64 = scalar(&c.simple_query("SELECT nextval('state_group_id_seq')")?)?.parse()?;
        c.batch_execute(&format!(
            "INSERT INTO state_groups (id, room_id, event_id) VALUES({id}, {}, {})",
            lit(g.room),
            lit(g.event_id)
        ))?;
        c.batch_execute(&format!(
            "INSERT INTO state_group_edges (state_group, prev_state_group) VALUES({id}, {})",
            g.prev
        ))?;
        c.batch_execute(&format!(
            "INSERT INTO state_groups_state (state_group, room_id, type, state_key, event_id) VALUES ({id},{},{},{},{})",
            lit(g.room),
            lit(g.event_type),
            lit(g.state_key),
            lit(g.event_id)
        ))?;
        c.batch_execute("COMMIT")?;
        Ok((id, t.elapsed()))
    }

    /// Stores one group exactly as Synapse's `store_state_group` does
    /// (synapse/storage/databases/state/store.py): `nextval`, INSERT
    /// state_groups, check the prev group exists, count its hops, then
    /// either an edge plus the delta rows, or (at `MAX_STATE_DELTA_HOPS` =
    /// 100) the whole state, inserted with psycopg2's `execute_values`
    /// (pages of 100 rows). `current` is the new group's whole state.
    /// Returns the new id and whether it became a full copy.
    pub fn store_synapse(&mut self, g: &NewRow<'_>, current: &[Triple]) -> Res<(i64, Duration, bool)> {
        let c = &mut self.client;
        let t = Instant::now();
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")?;
        let id: i64 = scalar(&c.simple_query("SELECT nextval('state_group_id_seq')")?)?.parse()?;
        let room = lit(g.room);
        c.batch_execute(&format!(
            "INSERT INTO state_groups (id, room_id, event_id) VALUES({id}, {room}, {})",
            lit(g.event_id)
        ))?;
        let found = c.simple_query(&format!("SELECT id FROM state_groups WHERE id = {}", g.prev))?;
        if rows(&found).next().is_none() {
            return Err(format!("prev group {} is not in the database", g.prev).into());
        }
        let hops: i64 = scalar(&c.simple_query(&hops_sql(g.prev))?)?.parse()?;
        let full = hops >= 100;
        if full {
            for page in current.chunks(100) {
                let mut sql = String::with_capacity(64 + page.len() * 160);
                sql.push_str(
                    "INSERT INTO state_groups_state (state_group, room_id, type, state_key, event_id) VALUES ",
                );
                for (i, (ty, sk, ev)) in page.iter().enumerate() {
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("({id},{room},{},{},{})", lit(ty), lit(sk), lit(ev)));
                }
                c.batch_execute(&sql)?;
            }
        } else {
            c.batch_execute(&format!(
                "INSERT INTO state_group_edges (state_group, prev_state_group) VALUES({id}, {})",
                g.prev
            ))?;
            c.batch_execute(&format!(
                "INSERT INTO state_groups_state (state_group, room_id, type, state_key, event_id) VALUES ({id},{room},{},{},{})",
                lit(g.event_type),
                lit(g.state_key),
                lit(g.event_id)
            ))?;
        }
        c.batch_execute("COMMIT")?;
        Ok((id, t.elapsed(), full))
    }
}
