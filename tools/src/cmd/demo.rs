//! `mxstate demo`: the first thing a new user runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mxstate_storage::{
    Engine, EngineOptions, EventId, GroupId, GroupState, NewGroup, RoomId, StateDelta, StateFilter, StateKey, StateMap,
};
use mxstate_synth::{SynthGroup, SynthOptions};

use crate::cli::DemoArgs;
use crate::error::{CliError, CliResult};

use super::stats::{human, render};

/// Groups stored per atomic batch.
const BATCH: usize = 1000;

/// Runs `mxstate demo`.
pub fn run(a: DemoArgs) -> CliResult {
    let tmp;
    let path: PathBuf = match &a.db {
        Some(p) => p.clone(),
        None => {
            tmp = tempfile::tempdir().map_err(|e| CliError::io("temporary directory", e))?;
            tmp.path().join("db")
        }
    };
    println!("mxstate demo: database in {}", path.display());
    let engine = Engine::open(&path, EngineOptions::default())?;

    let opts = SynthOptions {
        rooms: 3,
        members: a.members,
        seed: 2026,
        ..SynthOptions::default()
    };
    println!(
        "building a Synapse-shaped history: 3 rooms, the biggest with {} members and membership churn...",
        a.members
    );
    let t = Instant::now();
    let loaded = store_synthetic(&engine, &opts)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "stored {} groups ({} Synapse state rows, {} event mappings) in {:.2} s: {:.0} groups/s",
        loaded.groups,
        loaded.rows,
        loaded.mappings,
        secs,
        loaded.groups as f64 / secs
    );
    engine.compact()?;
    let stats = engine.stats()?;
    println!("\n{}", render(&stats));
    println!(
        "Synapse would keep {} rows in state_groups_state for this history; mxstate uses {} on disk ({:.1} bytes per group).",
        loaded.rows,
        human(stats.bytes_on_disk),
        stats.bytes_on_disk as f64 / loaded.groups.max(1) as f64
    );

    let (room, group) = loaded
        .biggest
        .ok_or_else(|| CliError::Usage("the sample history is empty".into()))?;
    timed_reads(&engine, &room, group)?;
    drop(engine);
    import_fixture(&path)?;
    Ok(())
}

/// The real Synapse dump bundled with mxstate (3 rooms, 1,198 groups).
const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/synapse-small.sql.zst");
/// Its row counts and PostgreSQL sizes, as measured when it was made.
const FIXTURE_STATS: &str = include_str!("../../../tests/fixtures/synapse-small.stats.txt");

/// `pg_total_relation_size` of the named relation in the fixture's stats.
fn fixture_pg_bytes(relation: &str) -> Option<u64> {
    let sizes = FIXTURE_STATS.split("## pg_total_relation_size").nth(1)?;
    sizes.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next() == Some(relation)).then(|| f.next()?.parse().ok())?
    })
}

/// Imports the bundled real Synapse dump into a second database and
/// compares sizes and answers.
fn import_fixture(main_db: &std::path::Path) -> CliResult {
    let dir = tempfile::tempdir().map_err(|e| CliError::io("temporary directory", e))?;
    let dump = dir.path().join("synapse-small.sql.zst");
    std::fs::write(&dump, FIXTURE).map_err(|e| CliError::io(dump.display().to_string(), e))?;
    let db = main_db.with_file_name(format!(
        "{}-synapse-fixture",
        main_db.file_name().and_then(|n| n.to_str()).unwrap_or("db")
    ));
    println!(
        "
importing the bundled real Synapse 1.163 dump (3 rooms, 1,198 state groups) into {}...",
        db.display()
    );
    let engine = Engine::open(
        &db,
        EngineOptions {
            allow_incomplete_import: true,
            ..EngineOptions::default()
        },
    )?;
    let mut source = super::source::Source::Dump(mxstate_synapse_dump::DumpReader::open(&dump)?);
    let mut progress = super::progress::Progress::new("import", true);
    let summary = super::import::import(&engine, &mut source, &mut progress)?;
    engine.compact()?;
    let stats = engine.stats()?;
    let structural: u64 = stats
        .column_families
        .iter()
        .filter(|c| !matches!(c.name, "event_groups" | "group_events"))
        .map(|c| c.bytes)
        .sum();
    let pg: u64 = ["state_groups_state", "state_groups", "state_group_edges"]
        .iter()
        .filter_map(|r| fixture_pg_bytes(r))
        .sum();
    println!(
        "  {} groups, {} state rows, {} event mappings imported",
        summary.groups_stored, summary.rows, summary.mappings_stored
    );
    println!(
        "  before: PostgreSQL state_groups + state_group_edges + state_groups_state = {}",
        human(pg)
    );
    println!(
        "  after:  mxstate column families without the event mappings = {} ({} in all, {} on disk with RocksDB's own files)",
        human(structural),
        human(stats.column_families.iter().map(|c| c.bytes).sum()),
        human(stats.bytes_on_disk)
    );
    let group = summary.groups_stored.min(1198);
    let st = engine.state_for_group(group, &StateFilter::all())?;
    println!("  group {group} resolves to {} state entries", st.len());
    Ok(())
}

struct Loaded {
    groups: u64,
    rows: u64,
    mappings: u64,
    /// The big room and its latest group.
    biggest: Option<(RoomId, GroupId)>,
}

/// Stores the synthetic history with Synapse's meaning: a group with a prev
/// is a delta, one without is a full state.
fn store_synthetic(engine: &Engine, opts: &SynthOptions) -> CliResult<Loaded> {
    let mut out = Loaded {
        groups: 0,
        rows: 0,
        mappings: 0,
        biggest: None,
    };
    let mut batch: Vec<SynthGroup> = Vec::with_capacity(BATCH);
    let big_room = mxstate_synth::groups(opts)
        .map_err(|e| CliError::Usage(e.to_string()))?
        .next()
        .map(|g| g.room_id);
    for g in mxstate_synth::groups(opts).map_err(|e| CliError::Usage(e.to_string()))? {
        if Some(&g.room_id) == big_room.as_ref() {
            out.biggest = Some((RoomId::parse(&g.room_id)?, g.id as GroupId));
        }
        batch.push(g);
        if batch.len() == BATCH {
            flush(engine, &mut batch, &mut out)?;
        }
    }
    flush(engine, &mut batch, &mut out)?;
    Ok(out)
}

fn flush(engine: &Engine, batch: &mut Vec<SynthGroup>, out: &mut Loaded) -> CliResult {
    struct Owned {
        id: GroupId,
        room: RoomId,
        event: EventId,
        prev: Option<GroupId>,
        delta: StateDelta,
        full: StateMap,
    }
    let mut owned = Vec::with_capacity(batch.len());
    let mut mappings = Vec::new();
    for g in batch.drain(..) {
        let mut delta = StateDelta::new();
        let mut full = StateMap::default();
        for (t, k, e) in &g.rows {
            let (key, ev) = (StateKey::new(t, k)?, EventId::parse(e)?);
            if g.prev.is_some() {
                delta.insert(key, Some(ev));
            } else {
                full.insert(key, ev);
            }
        }
        out.rows += g.rows.len() as u64;
        for e in &g.mapped_events {
            mappings.push((EventId::parse(e)?, g.id as GroupId));
        }
        owned.push(Owned {
            id: g.id as GroupId,
            room: RoomId::parse(&g.room_id)?,
            event: EventId::parse(&g.event_id)?,
            prev: g.prev.map(|p| p as GroupId),
            delta,
            full,
        });
    }
    let new: Vec<NewGroup<'_>> = owned
        .iter()
        .map(|o| NewGroup {
            id: Some(o.id),
            room_id: &o.room,
            event_id: &o.event,
            state: match o.prev {
                Some(prev) => GroupState::Delta { prev, delta: &o.delta },
                None => GroupState::Full(&o.full),
            },
        })
        .collect();
    out.groups += engine.store_groups(&new)?.len() as u64;
    engine.set_event_groups(&mappings)?;
    out.mappings += mappings.len() as u64;
    Ok(())
}

/// Median time of `runs` calls of `f`.
fn median(runs: usize, mut f: impl FnMut() -> CliResult<usize>) -> CliResult<(Duration, usize)> {
    let mut times = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times[runs / 2], n))
}

fn timed_reads(engine: &Engine, room: &RoomId, group: GroupId) -> CliResult {
    println!("\ntimed reads of the big room {room}, latest group {group} (median of 101, warm):");
    let member = engine
        .state_for_group(group, &StateFilter::from_types([("m.room.member", None)]))?
        .into_keys()
        .next()
        .map(|k| k.state_key().to_owned())
        .unwrap_or_default();
    let all = StateFilter::all();
    let (d, n) = median(101, || Ok(engine.state_view(group, &all)?.len()))?;
    println!(
        "  {:<32} {:>10.1} µs  ({n} entries)",
        "full state (shared view)",
        d.as_secs_f64() * 1e6
    );
    let reads: [(&str, StateFilter); 4] = [
        ("full state (copied into a map)", StateFilter::all()),
        (
            "everything but members",
            StateFilter::all_except_types(["m.room.member"]),
        ),
        (
            "one key (m.room.power_levels)",
            StateFilter::from_types([("m.room.power_levels", Some(""))]),
        ),
        (
            "one member",
            StateFilter::from_types([("m.room.member", Some(member.as_str()))]),
        ),
    ];
    for (name, f) in reads {
        let (d, n) = median(101, || Ok(engine.state_for_group(group, &f)?.len()))?;
        println!("  {name:<32} {:>10.1} µs  ({n} entries)", d.as_secs_f64() * 1e6);
    }
    Ok(())
}
