//! mxstate against Synapse's own PostgreSQL tables and queries, on one
//! machine, in one run, on the same synthetic data:
//!
//! ```sh
//! cargo run --release -p mxstate-benches --bin compare -- --members 10000 [--seed 1] [--samples 200] [--work-dir DIR] [--backend rocksdb|postgres]
//! ```
//!
//! 1. Writes a Synapse-shaped dump of one room (`mxstate_synth::write_dump`).
//! 2. Loads it into a private PostgreSQL cluster with `psql -f` (Synapse's
//!    DDL and indexes, built after the data), then `VACUUM ANALYZE`; disk is
//!    `pg_total_relation_size` of the four state tables.
//! 3. Imports it with `mxstate_synapse_import::Importer`, compacts; disk is
//!    the database directory.
//! 4. Reads the same groups (`--samples`, spread evenly over the ids, the
//!    latest included) with Synapse's `_get_state_groups_from_groups_txn`
//!    SQL and with `Engine::state_for_group`, checking that both return the
//!    same entries for every sampled group (abort on a mismatch); each read
//!    is run once untimed, then once timed.
//! 5. Stores chains of one-row delta groups on the latest group: Synapse's
//!    inserts (one transaction each), Synapse's whole `store_state_group`
//!    transaction, `Engine::store_group`, and `Engine::store_groups` batches.
//! 6. Prints a markdown table: Synapse/PostgreSQL, mxstate, and the ratio
//!    (how many times smaller or faster mxstate is).
//!
//! Everything lives in `--work-dir` (default: a temporary directory under
//! /var/tmp, removed at the end); the PostgreSQL cluster lives in a temporary
//! directory under /tmp and is stopped at the end.

// Shared with the other comparison binary, which uses other parts of it.
#[allow(dead_code)]
#[path = "../compare/mod.rs"]
mod compare;

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use mxstate_engine::{GroupId, RoomId, StateFilter};
use mxstate_synth::{write_dump, SynthOptions};

use compare::mx::{self, Join};
use compare::pg::{self, NewRow, Pg, Read, Triple};
use compare::report::{bytes, count, date, dur, machine, ratio, Table, Timings};
use compare::{Log, Res};

/// mxstate against Synapse's PostgreSQL state tables, same data, same machine.
#[derive(Parser, Debug)]
#[command(name = "compare")]
struct Args {
    /// Joined members of the generated room (state events: twice as many).
    #[arg(long)]
    members: u32,
    /// Seed of the generated history.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Groups read, spread evenly over the ids (the latest included).
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Directory for the dump and the mxstate database (kept); default a
    /// temporary directory under /var/tmp (removed).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Groups stored one at a time, per write benchmark.
    #[arg(long, default_value_t = 1000)]
    writes: u64,
    /// Groups stored by mxstate in `store_groups` batches.
    #[arg(long, default_value_t = 10_000)]
    batched: u64,
    /// Groups per `store_groups` call.
    #[arg(long, default_value_t = 1000)]
    batch_size: u64,
    /// Where mxstate keeps its records: `rocksdb` (a directory in the work
    /// directory) or `postgres` (a database of the same PostgreSQL server
    /// as Synapse's tables).
    #[arg(long, default_value = "rocksdb", value_parser = ["rocksdb", "postgres"])]
    backend: String,
}

impl Args {
    /// The command line that reproduces this run.
    fn command(&self) -> String {
        let mut c = format!(
            "cargo run --release -p mxstate-benches --bin compare -- --members {} --seed {} --samples {}",
            self.members, self.seed, self.samples
        );
        if let Some(d) = &self.work_dir {
            c.push_str(&format!(" --work-dir {}", d.display()));
        }
        if self.writes != 1000 {
            c.push_str(&format!(" --writes {}", self.writes));
        }
        if self.batched != 10_000 {
            c.push_str(&format!(" --batched {}", self.batched));
        }
        if self.batch_size != 1000 {
            c.push_str(&format!(" --batch-size {}", self.batch_size));
        }
        if self.backend != "rocksdb" {
            c.push_str(&format!(" --backend {}", self.backend));
        }
        c
    }
}

fn main() {
    let args = Args::parse();
    compare::exit_on_error("compare", run(&args));
}

/// `n` ids spread evenly over `ids` (sorted), the first and last included.
fn spread(ids: &[i64], n: usize) -> Vec<i64> {
    if ids.len() <= n {
        return ids.to_vec();
    }
    if n <= 1 {
        return ids.last().copied().into_iter().collect();
    }
    let mut out: Vec<i64> = (0..n).map(|i| ids[i * (ids.len() - 1) / (n - 1)]).collect();
    out.dedup();
    out
}

/// The first difference between two sorted triple lists, for the error.
fn first_difference(a: &[Triple], b: &[Triple]) -> String {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return format!("PostgreSQL has {x:?} where mxstate has {y:?}");
        }
    }
    format!("PostgreSQL returned {} entries, mxstate {}", a.len(), b.len())
}

/// Measured figures of one read shape.
struct ReadResult {
    read: Read,
    pg: Timings,
    mx: Timings,
    /// `StateStore::state_view` through the async trait (tables shared,
    /// not copied), same groups.
    mx_view: Timings,
    /// Entries returned, per sample.
    entries: Vec<usize>,
}

fn run(args: &Args) -> Res<()> {
    let log = Log(Instant::now());
    if args.samples == 0 || args.writes == 0 || args.batch_size == 0 {
        return Err("--samples, --writes and --batch-size must be at least 1".into());
    }
    let machine = machine();
    let date = date();

    // The work directory: given (kept) or temporary (removed on drop).
    let (_tmp, work, db) = compare::work_dir(args.work_dir.as_ref(), "mxstate-compare-")?;
    let dump = work.join(format!("synth-m{}-s{}.sql", args.members, args.seed));

    // 1. The dump.
    log.say(&format!("writing the dump to {}", dump.display()));
    let opts = SynthOptions {
        rooms: 1,
        members: args.members,
        seed: args.seed,
        ..Default::default()
    };
    let t = Instant::now();
    let summary = write_dump(&opts, BufWriter::new(File::create(&dump)?))?;
    let gen_time = t.elapsed();
    log.say(&format!(
        "dump: {}, {} groups, {} state rows, {} events mapped ({})",
        bytes(summary.bytes_written),
        count(summary.groups),
        count(summary.state_rows),
        count(summary.events_mapped),
        dur(gen_time)
    ));

    // 2. PostgreSQL.
    log.say("starting PostgreSQL");
    let mut pg = Pg::start()?;
    let pg_version = pg.version()?;
    log.say(&format!(
        "{pg_version} on port {}; loading the dump with psql",
        pg.cluster.port()
    ));
    let pg_load = pg.load(&dump)?;
    log.say(&format!("loaded in {}; VACUUM ANALYZE", dur(pg_load)));
    let pg_vacuum = pg.vacuum_analyze()?;
    let pg_sizes = pg.table_sizes()?;
    let mut pg_rows = Vec::new();
    for (t, _) in &pg_sizes {
        pg_rows.push(pg.row_count(t)?);
    }
    let pg_total: u64 = pg_sizes.iter().map(|(_, b)| b).sum();
    let pg_no_map: u64 = pg_sizes
        .iter()
        .filter(|(t, _)| *t != "event_to_state_groups")
        .map(|(_, b)| b)
        .sum();
    log.say(&format!(
        "VACUUM ANALYZE in {}; state tables {}",
        dur(pg_vacuum),
        bytes(pg_total)
    ));

    // 3. mxstate.
    let db = mx::Db::for_backend(&args.backend, &pg, db)?;
    log.say(&format!("importing the dump into mxstate at {db}"));
    let (engine, import, mx_import) = mx::import(&db, &dump, &work, mxstate_synapse_dump::Include::State)?;
    log.say(&format!(
        "imported {} groups, {} mappings in {}; compacting",
        count(import.groups_stored),
        count(import.mappings_stored),
        dur(mx_import)
    ));
    let (mx_compact, stats) = mx::compact_and_stats(&engine)?;
    drop(engine);
    let mx_total = stats.bytes_on_disk.ok_or("both backends know their size")?;
    let mx_map = mx::cf_bytes(&stats, "event_groups") + mx::cf_bytes(&stats, "group_events");
    let mx_no_map = mx_total.saturating_sub(mx_map);
    let mx_strings = mx::cf_bytes(&stats, "strings") + mx::cf_bytes(&stats, "nids");
    log.say(&format!(
        "compacted in {}; database {}",
        dur(mx_compact),
        bytes(mx_total)
    ));
    let engine = std::sync::Arc::new(mx::open(&db)?);
    // The trait's view, as a homeserver would call it.
    let store = mxstate_engine::EngineStore::new(engine.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    // 4. Reads.
    let ids = pg.group_ids()?;
    let latest = *ids.last().ok_or("the dump holds no state group")?;
    let samples = spread(&ids, args.samples);
    log.say(&format!(
        "reading {} groups of {} (ids {}..={}), 3 shapes, both sides",
        samples.len(),
        count(ids.len() as u64),
        ids.first().copied().unwrap_or_default(),
        latest
    ));
    let read_start = Instant::now();
    let mut reads = Vec::new();
    let mut latest_state: Vec<Triple> = Vec::new();
    for read in Read::ALL {
        let filter = mx::filter(read);
        let mut r = ReadResult {
            read,
            pg: Timings::default(),
            mx: Timings::default(),
            mx_view: Timings::default(),
            entries: Vec::new(),
        };
        for &g in &samples {
            // Warm-up runs, whose results are compared.
            let (_, msgs) = pg.read(read, g)?;
            let a = pg::triples(&msgs)?;
            drop(msgs);
            let (_, state) = mx::read(&engine, &filter, g)?;
            let b = mx::triples(&state);
            drop(state);
            let (_, view) = mx::read_view(&rt, &store, &filter, g)?;
            let c = mx::view_triples(&view);
            drop(view);
            for (got, how) in [(&b, "map"), (&c, "view through the trait")] {
                if &a != got {
                    return Err(format!(
                        "mismatch reading group {g} ({}, {how}): {}",
                        read.label(),
                        first_difference(&a, got)
                    )
                    .into());
                }
            }
            r.entries.push(a.len());
            if read == Read::Full && g == latest {
                latest_state = a;
            }
            // Timed runs.
            let (d, msgs) = pg.read(read, g)?;
            r.pg.push(d);
            drop(msgs);
            let (d, state) = mx::read(&engine, &filter, g)?;
            r.mx.push(d);
            drop(state);
            let (d, view) = mx::read_view(&rt, &store, &filter, g)?;
            if view.len() != b.len() {
                return Err(format!("view of group {g} has {} entries, map {}", view.len(), b.len()).into());
            }
            r.mx_view.push(d);
            drop(view);
        }
        log.say(&format!(
            "{}: PostgreSQL median {}, mxstate median {} (entries equal on all {} groups)",
            read.label(),
            dur(r.pg.median()),
            dur(r.mx.median()),
            samples.len()
        ));
        reads.push(r);
    }
    let read_time = read_start.elapsed();
    let rtt = pg.round_trip(200)?;

    // 5. Writes: chains of one-member-join delta groups on the latest group.
    let write_start = Instant::now();
    let room_str = pg.room_of(latest)?;
    let room = RoomId::parse(&room_str)?;
    // Event ids as room versions 3 and later make them: `$` and the
    // base64 of a 32-byte hash (here of the chain and the number).
    let member = |chain: &str, i: u64| -> Res<(String, String)> {
        let mut stored = vec![mxstate_engine::event_key::URL_SAFE];
        let mut x = i ^ chain.bytes().fold(0u64, |h, b| h.rotate_left(8) ^ u64::from(b)) << 40;
        for _ in 0..4 {
            // splitmix64
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            stored.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        let event = mxstate_engine::event_key::decode(&stored, String::new)?;
        Ok((event, format!("@cmp{chain}{i}:compare.example")))
    };
    let n = args.writes;
    log.say(&format!("storing {n} groups one at a time, each side"));

    // PostgreSQL, the inserts only.
    let mut pg_ins = Timings::default();
    let mut prev = latest;
    for i in 0..n {
        let (ev, sk) = member("a", i)?;
        let (id, d) = pg.store_inserts_only(&NewRow {
            room: &room_str,
            prev,
            event_id: &ev,
            event_type: "m.room.member",
            state_key: &sk,
        })?;
        pg_ins.push(d);
        prev = id;
    }
    // PostgreSQL, Synapse's whole store_state_group transaction.
    let mut pg_syn = Timings::default();
    let mut current = latest_state.clone();
    let mut full_copies = 0u64;
    let mut prev = latest;
    for i in 0..n {
        let (ev, sk) = member("b", i)?;
        current.push(("m.room.member".to_owned(), sk.clone(), ev.clone()));
        let (id, d, full) = pg.store_synapse(
            &NewRow {
                room: &room_str,
                prev,
                event_id: &ev,
                event_type: "m.room.member",
                state_key: &sk,
            },
            &current,
        )?;
        pg_syn.push(d);
        full_copies += u64::from(full);
        prev = id;
    }
    let pg_syn_last = prev;
    drop(current);
    log.say(&format!(
        "PostgreSQL: inserts-only median {}, store_state_group median {} / mean {} ({full_copies} full copies)",
        dur(pg_ins.median()),
        dur(pg_syn.median()),
        dur(pg_syn.mean())
    ));

    // mxstate, one group per call.
    let mut mx_one = Timings::default();
    let mut prev: GroupId = u64::try_from(latest)?;
    for i in 0..n {
        let (ev, sk) = member("a", i)?;
        let join = Join::new(&ev, "m.room.member", &sk)?;
        let (id, d) = mx::store_one(&engine, &room, prev, &join)?;
        mx_one.push(d);
        prev = id;
    }
    let mx_one_last = prev;
    // mxstate, batches of `batch_size` per call, a chain forked from the latest group.
    let calls = (args.batched / args.batch_size).max(1);
    log.say(&format!(
        "mxstate: store_group median {}; now {calls} store_groups calls of {}",
        dur(mx_one.median()),
        args.batch_size
    ));
    let mut mx_batch = Timings::default();
    let mut prev: GroupId = u64::try_from(latest)?;
    let mut first = mx_one_last + 1;
    for c in 0..calls {
        let joins = (0..args.batch_size)
            .map(|i| {
                let (ev, sk) = member("c", c * args.batch_size + i)?;
                Join::new(&ev, "m.room.member", &sk)
            })
            .collect::<Res<Vec<Join>>>()?;
        let d = mx::store_batch(&engine, &room, prev, first, &joins)?;
        mx_batch.push(d / u32::try_from(args.batch_size)?);
        prev = first + args.batch_size - 1;
        first += args.batch_size;
    }
    let mx_batch_last = prev;
    let write_time = write_start.elapsed();

    // Sanity: the chains' last groups hold the latest state plus their members.
    let want = latest_state.len() as u64;
    let (_, msgs) = pg.read(Read::Full, pg_syn_last)?;
    let pg_syn_len = pg::triples(&msgs)?.len() as u64;
    let all = StateFilter::all();
    let mx_one_len = engine.state_for_group(mx_one_last, &all)?.len() as u64;
    let mx_batch_len = engine.state_for_group(mx_batch_last, &all)?.len() as u64;
    if pg_syn_len != want + n || mx_one_len != want + n || mx_batch_len != want + calls * args.batch_size {
        return Err(format!(
            "after the writes: PostgreSQL chain end has {pg_syn_len} entries, mxstate {mx_one_len} \
             and {mx_batch_len} (batched); expected {} and {}",
            want + n,
            want + calls * args.batch_size
        )
        .into());
    }
    log.say("writes checked; stopping PostgreSQL");
    drop(store);
    drop(engine);
    drop(pg);
    let total = log.0.elapsed();

    // 6. The report.
    let mut t = Table::default();
    t.text(
        "load the dump",
        format!("{} (psql -f, incl. index builds)", dur(pg_load)),
        format!("{} (Importer)", dur(mx_import)),
        ratio(pg_load.as_secs_f64(), mx_import.as_secs_f64()),
    );
    t.text(
        "load + VACUUM ANALYZE / import + compact",
        dur(pg_load + pg_vacuum),
        dur(mx_import + mx_compact),
        ratio(
            (pg_load + pg_vacuum).as_secs_f64(),
            (mx_import + mx_compact).as_secs_f64(),
        ),
    );
    t.size("disk, with the event → group mapping", pg_total, mx_total);
    t.size("disk, without the event → group mapping", pg_no_map, mx_no_map);
    for r in &reads {
        let e = {
            let mut v = r.entries.clone();
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        t.time(
            &format!("read: {}, median ({} entries median)", r.read.label(), count(e as u64)),
            r.pg.median(),
            r.mx.median(),
        );
        t.time(&format!("read: {}, p90", r.read.label()), r.pg.p90(), r.mx.p90());
        t.time(
            &format!(
                "read: {}, median, through the trait as a shared view (`StateStore::state_view`)",
                r.read.label()
            ),
            r.pg.median(),
            r.mx_view.median(),
        );
        t.time(
            &format!("read: {}, p90, through the trait as a shared view", r.read.label()),
            r.pg.p90(),
            r.mx_view.p90(),
        );
    }
    t.time(
        "store 1 group: PG inserts only (1 txn) vs store_group, median",
        pg_ins.median(),
        mx_one.median(),
    );
    t.time(
        "store 1 group: PG inserts only (1 txn) vs store_group, mean",
        pg_ins.mean(),
        mx_one.mean(),
    );
    t.time(
        "store 1 group: Synapse's store_state_group txn vs store_group, median",
        pg_syn.median(),
        mx_one.median(),
    );
    t.time(
        &format!("store 1 group: Synapse's store_state_group txn ({full_copies} full copies) vs store_group, mean"),
        pg_syn.mean(),
        mx_one.mean(),
    );
    t.time(
        &format!(
            "store 1 group: PG inserts only (1 txn) vs mxstate batched, {} per store_groups call, median per group",
            args.batch_size
        ),
        pg_ins.median(),
        mx_batch.median(),
    );

    let latest_entries = latest_state.len();
    println!(
        "## mxstate vs Synapse/PostgreSQL: {} members, seed {}\n",
        args.members, args.seed
    );
    println!("command: `{}`  ", args.command());
    println!("machine: {machine}  ");
    println!("date: {date}; {pg_version}; total wall time {}  ", dur(total));
    println!(
        "dump: {} plain SQL, 1 room, {} groups ({} full copies, {} edges), {} state rows, {} events mapped; \
         latest group {} holds {} entries; written in {}\n",
        bytes(summary.bytes_written),
        count(summary.groups),
        count(summary.full_copies),
        count(summary.edges),
        count(summary.state_rows),
        count(summary.events_mapped),
        latest,
        count(latest_entries as u64),
        dur(gen_time)
    );
    print!("{}", t.render());
    println!();
    println!("Notes:");
    println!(
        "* Reads: {} groups spread evenly over the ids (latest included); each read run once untimed \
         (its result compared: equal entry sets on every group and shape), then once timed.",
        samples.len()
    );
    println!(
        "* PostgreSQL reads are Synapse's `_get_state_groups_from_groups_txn` SQL, interpolated as psycopg2 \
         does, sent with the simple query protocol in a transaction (BEGIN ISOLATION LEVEL REPEATABLE READ; \
         SET LOCAL enable_seqscan=off; query; COMMIT): 4 round trips over 127.0.0.1 TCP. \
         A `SELECT 1` round trip takes {} (median). Rows are received, not converted into a dict. \
         mxstate runs in-process and returns a `StateMap` of strings.",
        dur(rtt.median())
    );
    println!("* Synapse normally answers most reads from its in-memory caches; this compares the storage layer only.");
    println!(
        "* Writes: chains of {n} one-member-join delta groups on the latest group, each a new member and a \
         new event id in the hash form of room versions 3 and later. \"Inserts only\" = nextval, \
         INSERT state_groups, INSERT state_group_edges, INSERT 1 state_groups_state row, COMMIT. \
         \"store_state_group txn\" adds the prev-group check and the hop count, and writes a full copy \
         ({} rows, execute_values pages of 100) every 100 hops. mxstate batched: {} groups in {calls} calls.",
        count(want + n / 2),
        count(calls * args.batch_size)
    );
    println!(
        "* Durability: PostgreSQL runs with fsync=off, synchronous_commit=off, full_page_writes=off; \
         RocksDB writes without fsync of the WAL (`sync_writes: false`; mxstate's default syncs every write)."
    );
    println!(
        "* mxstate disk is the database directory after a full compaction (`bytes_on_disk`); \"without the \
         mapping\" subtracts the event_groups and group_events column families. The strings and nids column \
         families ({}) hold the interned ids: rooms, types, state keys and the events that state names (`nids` \
         packs their texts 64 to a value, format 5). event_groups holds each mapped message event's id itself (33 \
         bytes for a hash id, format 4) and, in the same buckets, a few bytes for each interned hash-form event \
         (its nid and group; its id is stored once, in nids: format 6), so \"without the mapping\" also leaves \
         those out. PostgreSQL disk is \
         pg_total_relation_size (heap, TOAST, indexes) after VACUUM ANALYZE.",
        bytes(mx_strings)
    );
    println!();
    println!("PostgreSQL tables:\n");
    println!("| table | rows | bytes |");
    println!("|---|---:|---:|");
    for ((t, b), rows) in pg_sizes.iter().zip(&pg_rows) {
        println!("| {t} | {} | {} |", count(*rows), bytes(*b));
    }
    println!();
    println!(
        "mxstate database: {} groups ({} snapshot groups, {} delta groups), {} snapshots, longest chain {}, \
         {} delta entries, {} snapshot entries, {} events interned, {} event mappings\n",
        count(stats.groups),
        count(stats.snapshot_groups),
        count(stats.delta_groups),
        count(stats.snapshots),
        stats.longest_chain,
        count(stats.delta_entries),
        count(stats.snapshot_entries),
        count(stats.events),
        count(stats.event_mappings)
    );
    println!("| column family | keys (estimate) | bytes |");
    println!("|---|---:|---:|");
    for c in &stats.column_families {
        println!("| {} | {} | {} |", c.name, count(c.keys), bytes(c.bytes));
    }
    let cf_sum: u64 = stats.column_families.iter().map(|c| c.bytes).sum();
    println!(
        "| (sum of column families; the directory adds WAL, manifest, logs) | | {} |",
        bytes(cf_sum)
    );
    println!();
    println!(
        "phases: dump {}, PostgreSQL load {} + VACUUM ANALYZE {}, mxstate import {} + compact {}, reads {}, writes {}",
        dur(gen_time),
        dur(pg_load),
        dur(pg_vacuum),
        dur(mx_import),
        dur(mx_compact),
        dur(read_time),
        dur(write_time)
    );
    if args.work_dir.is_some() {
        println!("kept: {} and {db}", dump.display());
    }
    Ok(())
}
