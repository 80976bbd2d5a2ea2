//! The mxstate side: the same dump imported with the library, read and
//! written through `Engine`'s public calls.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mxstate_api::StateStore;
use mxstate_engine::{
    Engine, EngineOptions, EngineStore, EventId, GroupId, GroupState, NewGroup, RoomId, StateDelta, StateFilter,
    StateKey, StateMap, StateView, Stats,
};
use mxstate_synapse_dump::{DumpReader, Include};
use mxstate_synapse_import::{ImportSummary, Importer};

use super::pg::{Read, Triple};
use super::Res;

/// Where the mxstate database is: a RocksDB directory, or a PostgreSQL
/// database (a URL).
pub enum Db {
    Rocks(PathBuf),
    Postgres(String),
}

impl Db {
    /// Where the `--backend` flag says: `postgres`, a new database of
    /// the server holding Synapse's tables; otherwise RocksDB at `dir`.
    pub fn for_backend(backend: &str, pg: &super::pg::Pg, dir: PathBuf) -> Res<Db> {
        if backend == "postgres" {
            pg.cluster.create_database("mxstate")?;
            Ok(Db::Postgres(pg.cluster.url_for("mxstate")))
        } else {
            Ok(Db::Rocks(dir))
        }
    }

    fn open(&self, opts: EngineOptions) -> Res<Engine> {
        Ok(match self {
            // Without a sync per write, as PostgreSQL runs here (fsync=off).
            Db::Rocks(dir) => mxstate_rocks::open_with(
                dir,
                opts,
                &mxstate_rocks::RocksConfig {
                    sync_writes: false,
                    ..Default::default()
                },
            )?,
            Db::Postgres(url) => mxstate_postgres::open(url, opts)?,
        })
    }
}

impl std::fmt::Display for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Rocks(dir) => write!(f, "{}", dir.display()),
            Db::Postgres(url) => f.write_str(url),
        }
    }
}

/// Imports the tables `include` names from the dump into a new database at
/// `db`, as `mxstate import` does (scratch space next to the database, or
/// in `scratch`). Returns the engine, the summary and the time of reading +
/// storing.
pub fn import(db: &Db, dump: &Path, scratch: &Path, include: Include) -> Res<(Engine, ImportSummary, Duration)> {
    let t = Instant::now();
    let engine = db.open(EngineOptions {
        allow_incomplete_import: true,
        ..EngineOptions::default()
    })?;
    let mut importer = Importer::begin(&engine, &format!("import of {}", dump.display()), scratch)?;
    let mut reader = DumpReader::open_including(dump, include)?;
    while let Some(row) = reader.next_row() {
        let row = row?;
        importer.add_row(&row, reader.line())?;
    }
    let summary = importer
        .finish(&mut |_, _| {})?
        .imported()
        .ok_or("the database already held this import: give an empty directory")?;
    Ok((engine, summary, t.elapsed()))
}

/// `engine.compact()`, timed, then the stats.
pub fn compact_and_stats(engine: &Engine) -> Res<(Duration, Stats)> {
    let t = Instant::now();
    engine.compact()?;
    let secs = t.elapsed();
    Ok((secs, engine.stats()?))
}

/// Bytes of one column family.
pub fn cf_bytes(stats: &Stats, name: &str) -> u64 {
    stats
        .column_families
        .iter()
        .find(|c| c.name == name)
        .map_or(0, |c| c.bytes)
}

/// Opens the database for reading and writing, default options.
pub fn open(db: &Db) -> Res<Engine> {
    db.open(EngineOptions::default())
}

/// The filter matching a read shape.
pub fn filter(read: Read) -> StateFilter {
    match read {
        Read::Full => StateFilter::all(),
        Read::PowerLevels => StateFilter::from_types([("m.room.power_levels", Some(""))]),
        Read::AllButMembers => StateFilter::all_except_types(["m.room.member"]),
    }
}

/// One timed `state_for_group`.
pub fn read(engine: &Engine, filter: &StateFilter, group: i64) -> Res<(Duration, StateMap)> {
    let g = GroupId::try_from(group)?;
    let t = Instant::now();
    let state = engine.state_for_group(g, filter)?;
    Ok((t.elapsed(), state))
}

/// One timed `StateStore::state_view` through the async trait, as a
/// homeserver calls it (the engine's work runs on the runtime's blocking
/// pool): shared tables, no per-entry copy.
pub fn read_view(
    rt: &tokio::runtime::Runtime,
    store: &EngineStore,
    filter: &StateFilter,
    group: i64,
) -> Res<(Duration, StateView)> {
    let g = GroupId::try_from(group)?;
    let t = Instant::now();
    let view = rt.block_on(store.state_view(g, filter.clone()))?;
    let d = t.elapsed();
    Ok((d, view))
}

/// A view as sorted triples.
pub fn view_triples(view: &StateView) -> Vec<Triple> {
    let mut v: Vec<Triple> = view
        .iter()
        .map(|(t, k, e)| (t.to_owned(), k.to_owned(), e.to_owned()))
        .collect();
    v.sort_unstable();
    v
}

/// A state as sorted triples.
pub fn triples(state: &StateMap) -> Vec<Triple> {
    let mut v: Vec<Triple> = state
        .iter()
        .map(|(k, e)| {
            (
                k.event_type().to_owned(),
                k.state_key().to_owned(),
                e.as_str().to_owned(),
            )
        })
        .collect();
    v.sort_unstable();
    v
}

/// One new group of a chain: a member joins.
pub struct Join {
    pub event: EventId,
    pub delta: StateDelta,
}

impl Join {
    pub fn new(event_id: &str, event_type: &str, state_key: &str) -> Res<Join> {
        let event = EventId::parse(event_id)?;
        let mut delta = StateDelta::new();
        delta.insert(StateKey::new(event_type, state_key)?, Some(event.clone()));
        Ok(Join { event, delta })
    }
}

/// `store_group` of one delta group on `prev`, timed.
pub fn store_one(engine: &Engine, room: &RoomId, prev: GroupId, join: &Join) -> Res<(GroupId, Duration)> {
    let t = Instant::now();
    let id = engine.store_group(NewGroup {
        id: None,
        room_id: room,
        event_id: &join.event,
        state: GroupState::Delta {
            prev,
            delta: &join.delta,
        },
    })?;
    Ok((id, t.elapsed()))
}

/// `store_groups` of a chain of delta groups in one call: ids `first..`,
/// the first on `prev`, each next on the one before. Timed.
pub fn store_batch(engine: &Engine, room: &RoomId, prev: GroupId, first: GroupId, joins: &[Join]) -> Res<Duration> {
    let groups: Vec<NewGroup<'_>> = joins
        .iter()
        .zip(first..)
        .map(|(j, id)| NewGroup {
            id: Some(id),
            room_id: room,
            event_id: &j.event,
            state: GroupState::Delta {
                prev: if id == first { prev } else { id - 1 },
                delta: &j.delta,
            },
        })
        .collect();
    let t = Instant::now();
    engine.store_groups(&groups)?;
    Ok(t.elapsed())
}
