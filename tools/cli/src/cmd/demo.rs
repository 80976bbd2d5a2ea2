//! `mxstate demo`: the first thing a new user runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mxstate_engine::{Engine, EngineOptions, GroupId, RoomId, StateFilter};
use mxstate_synapse_dump::Record;
use mxstate_synapse_import::Importer;
use mxstate_synth::{Generator, SynthOptions};

use crate::cli::DemoArgs;
use crate::error::{CliError, CliResult};

use super::stats::{disk_bytes, human, render};

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
    let engine = mxstate_rocks::open(&path, EngineOptions::default())?;

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
    let loaded = store_synthetic(&engine, &opts, &super::import::scratch_parent(&path))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "imported {} groups ({} Synapse state rows, {} event mappings) in {:.2} s: {:.0} groups/s",
        loaded.groups,
        loaded.rows,
        loaded.mappings,
        secs,
        loaded.groups as f64 / secs
    );
    engine.compact()?;
    let stats = engine.stats()?;
    let disk = disk_bytes(&stats)?;
    println!("\n{}", render(&stats));
    println!(
        "Synapse would keep {} rows in state_groups_state for this history; mxstate uses {} on disk ({:.1} bytes per group).",
        loaded.rows,
        human(disk),
        disk as f64 / loaded.groups.max(1) as f64
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
const FIXTURE: &[u8] = include_bytes!("../../../../tests/fixtures/synapse-small.sql.zst");
/// Its row counts and PostgreSQL sizes, as measured when it was made.
const FIXTURE_STATS: &str = include_str!("../../../../tests/fixtures/synapse-small.stats.txt");

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
    let engine = mxstate_rocks::open(
        &db,
        EngineOptions {
            allow_incomplete_import: true,
            ..EngineOptions::default()
        },
    )?;
    let mut source = super::source::Source::Dump(mxstate_synapse_dump::DumpReader::open(&dump)?);
    let mut progress = super::progress::Progress::new("import", true);
    let summary = super::import::import(&engine, &mut source, &mut progress)?
        .imported()
        .ok_or_else(|| CliError::Usage(format!("{} already holds the bundled dump", db.display())))?;
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
        human(disk_bytes(&stats)?)
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

/// Imports the synthetic history as Synapse's tables hold it: a group with
/// a prev is a delta, one without a full state.
fn store_synthetic(engine: &Engine, opts: &SynthOptions, scratch: &std::path::Path) -> CliResult<Loaded> {
    let synth_err = |e: mxstate_synth::SynthError| CliError::Usage(e.to_string());
    let mut importer = Importer::begin(engine, "demo", scratch)?;
    let mut gen = Generator::new(opts).map_err(synth_err)?;
    let mut biggest = None;
    let mut line = 0u64;
    while let Some(g) = gen.next_group() {
        line += 1;
        if g.room_spec().index == 0 {
            biggest = Some((g.room_id().to_owned(), g.id()));
        }
        importer.add(
            &Record::StateGroup {
                id: g.id(),
                room_id: g.room_id().to_owned(),
                event_id: g.event_id().to_owned(),
            },
            line,
        )?;
        if let Some(prev) = g.prev() {
            importer.add(
                &Record::Edge {
                    state_group: g.id(),
                    prev_state_group: prev,
                },
                line,
            )?;
        }
        for r in g.rows() {
            importer.add(
                &Record::StateRow {
                    state_group: g.id(),
                    room_id: g.room_id().to_owned(),
                    event_type: r.event_type.to_owned(),
                    state_key: r.state_key.to_owned(),
                    event_id: r.event_id.to_owned(),
                },
                line,
            )?;
        }
        for e in g.mapped_events() {
            importer.add(
                &Record::EventToStateGroup {
                    event_id: e.to_owned(),
                    state_group: g.id(),
                },
                line,
            )?;
        }
    }
    let summary = importer
        .finish(&mut |_, _| {})?
        .imported()
        .ok_or_else(|| CliError::Usage("the demo database already holds the sample history".into()))?;
    Ok(Loaded {
        groups: summary.groups_stored,
        rows: summary.rows,
        mappings: summary.mappings_stored,
        biggest: match biggest {
            Some((room, g)) => Some((RoomId::parse(room)?, g as GroupId)),
            None => None,
        },
    })
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
