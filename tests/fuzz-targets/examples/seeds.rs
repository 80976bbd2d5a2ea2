//! Writes the seed corpora of the fuzz targets: `seeds OUT_DIR` creates
//! `OUT_DIR/<target>/<name>` files (the committed ones are in
//! `tests/fuzz/seeds/`; rerun this when a format changes):
//!
//! ```text
//! cargo run --release -p mxstate-fuzz-targets --example seeds -- tests/fuzz/seeds
//! ```
//!
//! - `dump_copy`: the real dump `tests/fixtures/synapse-small.sql.zst` cut
//!   down to its preamble and a few rows of each state table;
//! - `dump_compressed`: those cuts, gzip- and zstd-compressed;
//! - `records`: every record an engine over [`MemKv`] wrote after storing a
//!   few groups, event mappings, deletion and persist marks, current state;
//! - `ids`, `filter`: typical arguments.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxstate_engine::kv::{Batch, Cf, KvMaintenance, KvStore, Visit};
use mxstate_engine::{
    Engine, EngineOptions, EventId, GroupState, MemKv, NewGroup, Result, RoomId, StateDelta, StateKey, StateMap,
};
use mxstate_fuzz_targets::record_input;

/// A [`MemKv`] shared with the engine, so that its records can be listed
/// after the engine wrote them.
struct Shared(Arc<MemKv>);

impl KvStore for Shared {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(cf, key)
    }
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.0.multi_get(cf, keys)
    }
    fn write(&self, batch: Batch) -> Result<()> {
        self.0.write(batch)
    }
    fn sync(&self) -> Result<()> {
        self.0.sync()
    }
    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.0.scan_prefix(cf, prefix, visit)
    }
    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.0.scan_range_rev(cf, lower, upper, visit)
    }
    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.0.last_with_prefix(cf, prefix)
    }
    fn location(&self) -> String {
        self.0.location()
    }
    fn maintenance(&self) -> Option<&dyn KvMaintenance> {
        None
    }
}

type Failure = Box<dyn std::error::Error>;

/// Writes one seed file.
fn put(dir: &Path, target: &str, name: &str, data: &[u8]) -> std::result::Result<(), Failure> {
    let target_dir = dir.join(target);
    std::fs::create_dir_all(&target_dir)?;
    std::fs::write(target_dir.join(name), data)?;
    Ok(())
}

/// The fixture dump, decompressed.
fn fixture_sql() -> std::result::Result<String, Failure> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/synapse-small.sql.zst");
    let mut text = String::new();
    zstd::stream::read::Decoder::new(std::fs::File::open(path)?)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The COPY block of `table` with its first `rows` rows.
fn block(sql: &str, table: &str, rows: usize) -> String {
    let header = format!("COPY public.{table} (");
    let mut lines = sql.lines().skip_while(|l| !l.starts_with(&header));
    let mut out = String::new();
    if let Some(first) = lines.next() {
        out.push_str(first);
        out.push('\n');
    }
    for line in lines.by_ref().take_while(|&l| l != "\\.").take(rows) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("\\.\n");
    out
}

/// Cuts of the real dump for the two dump targets.
fn dump_seeds(dir: &Path) -> std::result::Result<(), Failure> {
    let sql = fixture_sql()?;
    let preamble: String = sql.lines().take(20).map(|l| format!("{l}\n")).collect();
    let tables = [
        "event_to_state_groups",
        "state_group_edges",
        "state_groups",
        "state_groups_state",
    ];
    let mut all = preamble.clone();
    for table in tables {
        let cut = format!("{preamble}{}", block(&sql, table, 6));
        put(dir, "dump_copy", &format!("{table}.sql"), cut.as_bytes())?;
        all.push_str(&block(&sql, table, 3));
    }
    all.push_str(&block(&sql, "access_tokens", 2));
    put(dir, "dump_copy", "all_tables.sql", all.as_bytes())?;
    let state_rows = block(&sql, "state_groups_state", 4);
    let rows: Vec<&str> = state_rows.lines().skip(1).take(3).collect();
    for (i, row) in rows.iter().enumerate() {
        put(dir, "dump_copy", &format!("row{i}.txt"), row.as_bytes())?;
    }
    put(
        dir,
        "dump_compressed",
        "all_tables.sql.zst",
        &zstd::bulk::compress(all.as_bytes(), 3)?,
    )?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(all.as_bytes())?;
    put(dir, "dump_compressed", "all_tables.sql.gz", &gz.finish()?)?;
    put(dir, "dump_compressed", "all_tables.sql", all.as_bytes())?;
    Ok(())
}

/// A few groups, event mappings, marks and a current state, stored.
fn fill(engine: &Engine) -> Result<()> {
    let room = RoomId::parse("!room:example.org")?;
    let events: Vec<EventId> = (0..6)
        .map(|i| EventId::parse(format!("$event{i}")))
        .collect::<Result<_>>()?;
    let key = |t: &str, k: &str| StateKey::new(t, k);
    let mut full = StateMap::default();
    full.insert(key("m.room.create", "")?, events[0].clone());
    full.insert(key("m.room.member", "@alice:example.org")?, events[1].clone());
    full.insert(key("m.room.name", "")?, events[2].clone());
    let root = engine.store_group(NewGroup {
        id: None,
        room_id: &room,
        event_id: &events[2],
        state: GroupState::Full(&full),
    })?;
    let mut delta = StateDelta::new();
    delta.insert(key("m.room.member", "@bob:example.org")?, Some(events[3].clone()));
    delta.insert(key("m.room.name", "")?, None);
    let child = engine.store_group(NewGroup {
        id: None,
        room_id: &room,
        event_id: &events[3],
        state: GroupState::Delta {
            prev: root,
            delta: &delta,
        },
    })?;
    let mut big = full.clone();
    for i in 0..200 {
        big.insert(
            key("m.room.member", &format!("@user{i}:example.org"))?,
            events[4].clone(),
        );
    }
    let last = engine.store_group(NewGroup {
        id: None,
        room_id: &room,
        event_id: &events[4],
        state: GroupState::Full(&big),
    })?;
    engine.set_event_groups(&[(events[3].clone(), child), (events[4].clone(), last)])?;
    engine.set_current_state(&room, &full)?;
    engine.mark_pending_deletion(&BTreeSet::from([child]), 1_700_000_000_000)?;
    engine.mark_persisting(&BTreeSet::from([last]), "worker1", 1_700_000_000_000)?;
    Ok(())
}

/// Most records kept of one column family (the interned strings of the
/// big group are many and alike).
const MAX_PER_FAMILY: usize = 12;

/// Records the engine wrote, one seed each, at most [`MAX_PER_FAMILY`] of a family.
fn record_seeds(dir: &Path) -> std::result::Result<(), Failure> {
    let kv = Arc::new(MemKv::new());
    let engine = Engine::with_kv(Box::new(Shared(Arc::clone(&kv))), EngineOptions::default())?;
    fill(&engine)?;
    drop(engine);
    for cf in Cf::ALL {
        let mut n = 0;
        kv.scan_prefix(cf, b"", &mut |key, value| {
            if n >= MAX_PER_FAMILY {
                return Ok(false);
            }
            let name = format!("{}-{n:03}", cf.name());
            put(dir, "records", &name, &record_input(cf, key, value))
                .map_err(|e| mxstate_engine::Error::internal(e.to_string()))?;
            n += 1;
            Ok(true)
        })?;
    }
    Ok(())
}

/// Typical identifiers and `--type` arguments.
fn text_seeds(dir: &Path) -> std::result::Result<(), Failure> {
    for (name, id) in [
        ("room", "!room:example.org"),
        ("room_v12", "!obqqEUoNLqCgVwGzJ40hI89LtCZI0Ge8YTrG-KVhSno"),
        ("event", "$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY"),
        ("event_v1", "$1234:matrix.org"),
        ("state_key", "m.room.member\n@alice:example.org"),
    ] {
        put(dir, "ids", name, id.as_bytes())?;
    }
    for (name, args) in [
        ("one_type", &b"\0m.room.member"[..]),
        ("type_and_key", b"\0m.room.member,@alice:example.org\nm.room.name"),
        (
            "include_others",
            b"\x01m.room.member,@alice:example.org\nm.room.member,",
        ),
        ("empty_type", b"\0,key"),
    ] {
        put(dir, "filter", name, args)?;
    }
    Ok(())
}

fn main() -> std::result::Result<(), Failure> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: seeds OUT_DIR")?;
    dump_seeds(&dir)?;
    record_seeds(&dir)?;
    text_seeds(&dir)?;
    println!("seeds written to {}", dir.display());
    Ok(())
}
