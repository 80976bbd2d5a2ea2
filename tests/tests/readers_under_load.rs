//! Readers under load: reader threads and one writer on RocksDB for a
//! fixed time. The writer stores batches of groups (chains with forks,
//! rooms filling up and new ones started) and maps their events; it
//! publishes a group to the readers only once both calls returned. Each
//! reader picks published groups and checks every answer against the model
//! of what was acknowledged: a group's state never changes once written,
//! so full states, single-key lookups (present and absent), one-type reads
//! and event mappings must always be exactly the model's.
//!
//! Prints throughput, read latency (p50/p99, overall and per kind of read)
//! and the writer's call latency; nothing about time is asserted. Runs 5 s
//! in `cargo test`; `MXSTATE_LOAD_SECS` sets the time,
//! `MXSTATE_LOAD_READERS` the readers (2), `MXSTATE_LOAD_SYNC=0` opens
//! RocksDB in its less durable mode (no fsync per write). The seed is fixed
//! (`MXSTATE_LOAD_SEED` overrides) and printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mxstate_engine::{
    Engine, EngineOptions, EventId, GroupId, GroupState, NewGroup, RoomId, StateDelta, StateFilter, StateKey, StateMap,
};

/// Groups a room gets before the writer starts a new one.
const ROOM_GROUPS: u32 = 1500;
/// Rooms written at the same time.
const ACTIVE_ROOMS: usize = 4;

/// What the model knows of a published group.
#[derive(Clone, Copy)]
struct Info {
    /// The prev group, 0 for a room's root.
    prev: GroupId,
    room: u32,
    /// Groups from the root to this one, the root excluded.
    depth: u32,
}

/// The acknowledged groups, by id (ids are handed out in order from 1).
struct Model {
    groups: RwLock<Vec<Info>>,
    published: AtomicU64,
}

impl Model {
    fn info(&self, g: GroupId) -> Info {
        self.groups.read().unwrap()[(g - 1) as usize]
    }

    /// The members of `g`'s state, by the group that added them: `g` and
    /// its ancestors up to the root (excluded).
    fn lineage(&self, g: GroupId) -> Vec<GroupId> {
        let groups = self.groups.read().unwrap();
        let mut out = Vec::new();
        let mut cur = g;
        loop {
            let i = groups[(cur - 1) as usize];
            if i.prev == 0 {
                break;
            }
            out.push(cur);
            cur = i.prev;
        }
        out
    }
}

fn member_key(g: GroupId) -> StateKey {
    StateKey::new("m.room.member", format!("@u{g}:example.org")).unwrap()
}
fn member_event(g: GroupId) -> EventId {
    EventId::parse(format!("$m{g}")).unwrap()
}
fn name_key() -> StateKey {
    StateKey::new("m.room.name", "").unwrap()
}
fn name_event(g: GroupId) -> EventId {
    EventId::parse(format!("$n{g}")).unwrap()
}
fn create_key() -> StateKey {
    StateKey::new("m.room.create", "").unwrap()
}
fn room_id(r: u32) -> RoomId {
    RoomId::parse(format!("!load{r}:example.org")).unwrap()
}

/// The state of `g` as the model has it.
fn expected_state(model: &Model, g: GroupId) -> StateMap {
    let info = model.info(g);
    let mut s = StateMap::default();
    s.insert(create_key(), EventId::parse(format!("$create{}", info.room)).unwrap());
    s.insert(name_key(), name_event(g));
    for a in model.lineage(g) {
        s.insert(member_key(a), member_event(a));
    }
    s
}

/// xorshift64*: a small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Kinds of read, for the latency figures.
const KINDS: [&str; 4] = ["full state", "one key", "one type", "event mapping"];

/// Read latencies (ns) of one reader, per kind.
type Latencies = [Vec<u64>; 4];

fn reader(engine: &Engine, model: &Model, stop: &AtomicBool, seed: u64) -> Latencies {
    let mut rng = Rng(seed);
    let mut lat: Latencies = Default::default();
    let all = StateFilter::all();
    let names = StateFilter::from_types([("m.room.name", None)]);
    while !stop.load(Ordering::Relaxed) {
        let published = model.published.load(Ordering::Acquire);
        if published == 0 {
            std::thread::yield_now();
            continue;
        }
        // Half the reads go to the newest groups, where the writer is.
        let g = if rng.below(2) == 0 {
            published - rng.below(published.min(64))
        } else {
            1 + rng.below(published)
        };
        let kind = match rng.below(100) {
            0..=29 => 0,
            30..=69 => 1,
            70..=84 => 2,
            _ => 3,
        };
        match kind {
            0 => {
                let t = Instant::now();
                let got = engine.state_for_group(g, &all);
                lat[0].push(t.elapsed().as_nanos() as u64);
                let got = got.unwrap_or_else(|e| panic!("group {g}: {e}"));
                let want = expected_state(model, g);
                assert!(
                    got == want,
                    "group {g}: {} entries, the model has {}",
                    got.len(),
                    want.len()
                );
            }
            1 => {
                // A member of the lineage, or one of the same room that is not.
                let info = model.info(g);
                let probe = if rng.below(4) != 0 || info.prev == 0 {
                    let lineage = model.lineage(g);
                    lineage
                        .get(rng.below(lineage.len() as u64) as usize)
                        .copied()
                        .unwrap_or(g)
                } else {
                    published.min(g + 1 + rng.below(50))
                };
                let k = member_key(probe);
                let f = StateFilter::from_types([("m.room.member", Some(k.state_key()))]);
                let t = Instant::now();
                let got = engine.state_for_group(g, &f);
                lat[1].push(t.elapsed().as_nanos() as u64);
                let got = got.unwrap_or_else(|e| panic!("group {g}: {e}"));
                let present = probe == g || model.lineage(g).contains(&probe);
                let want: StateMap = if present && info.prev != 0 {
                    [(k, member_event(probe))].into_iter().collect()
                } else {
                    StateMap::default()
                };
                assert!(
                    got == want,
                    "group {g}, member of {probe}: {got:?}, the model has {want:?}"
                );
            }
            2 => {
                let t = Instant::now();
                let got = engine.state_for_group(g, &names);
                lat[2].push(t.elapsed().as_nanos() as u64);
                let got = got.unwrap_or_else(|e| panic!("group {g}: {e}"));
                let want: StateMap = [(name_key(), name_event(g))].into_iter().collect();
                assert!(got == want, "group {g}, its name: {got:?}");
            }
            _ => {
                let e = member_event(g);
                let t = Instant::now();
                let got = engine.event_groups(std::slice::from_ref(&e));
                lat[3].push(t.elapsed().as_nanos() as u64);
                let got = got.unwrap_or_else(|err| panic!("event of group {g}: {err}"));
                assert_eq!(got.get(&e), Some(&g), "the event of group {g}");
            }
        }
    }
    lat
}

/// The writer's figures.
#[derive(Default, Debug)]
struct Written {
    calls: u64,
    groups: u64,
    rooms: u32,
    /// Latency of each call (ns).
    latency: Vec<u64>,
}

impl Written {
    /// Runs one timed call.
    fn call<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.latency.push(t.elapsed().as_nanos() as u64);
        self.calls += 1;
        out
    }
}

fn writer(engine: &Engine, model: &Model, stop: &AtomicBool, seed: u64) -> Written {
    let mut rng = Rng(seed);
    let mut w = Written::default();
    // Per active room: its number and its groups.
    let mut rooms: Vec<(u32, Vec<GroupId>)> = Vec::new();
    let mut next_id: GroupId = 1;
    while !stop.load(Ordering::Relaxed) {
        if rooms.len() < ACTIVE_ROOMS {
            let r = w.rooms;
            w.rooms += 1;
            let root: StateMap = [
                (create_key(), EventId::parse(format!("$create{r}")).unwrap()),
                (name_key(), name_event(next_id)),
            ]
            .into_iter()
            .collect();
            let rid = room_id(r);
            let ev = EventId::parse(format!("$root{next_id}")).unwrap();
            let g = w
                .call(|| {
                    engine.store_group(NewGroup {
                        id: None,
                        room_id: &rid,
                        event_id: &ev,
                        state: GroupState::Full(&root),
                    })
                })
                .unwrap();
            assert_eq!(g, next_id);
            w.call(|| engine.set_event_groups(&[(member_event(g), g)])).unwrap();
            publish(
                model,
                &[(
                    g,
                    Info {
                        prev: 0,
                        room: r,
                        depth: 0,
                    },
                )],
            );
            next_id += 1;
            w.groups += 1;
            rooms.push((r, vec![g]));
            continue;
        }
        let slot = rng.below(rooms.len() as u64) as usize;
        let (r, groups) = &mut rooms[slot];
        let rid = room_id(*r);
        let n = 1 + rng.below(8) as usize;
        // The first group of the batch goes on the room's newest group, or
        // (one in ten) forks from an older one; the others follow it.
        let parent = if rng.below(10) == 0 {
            groups[rng.below(groups.len() as u64) as usize]
        } else {
            *groups.last().unwrap()
        };
        let ids: Vec<GroupId> = (next_id..next_id + n as GroupId).collect();
        let deltas: Vec<StateDelta> = ids
            .iter()
            .map(|&g| {
                [
                    (member_key(g), Some(member_event(g))),
                    (name_key(), Some(name_event(g))),
                ]
                .into()
            })
            .collect();
        let events: Vec<EventId> = ids.iter().map(|g| EventId::parse(format!("$g{g}")).unwrap()).collect();
        let batch: Vec<NewGroup<'_>> = deltas
            .iter()
            .zip(&events)
            .enumerate()
            .map(|(i, (d, e))| NewGroup {
                id: None,
                room_id: &rid,
                event_id: e,
                state: if i == 0 {
                    GroupState::Delta { prev: parent, delta: d }
                } else {
                    GroupState::DeltaOnPrevious { delta: d }
                },
            })
            .collect();
        let got = w.call(|| engine.store_groups(&batch)).unwrap();
        assert_eq!(got, ids);
        let pairs: Vec<(EventId, GroupId)> = ids.iter().map(|&g| (member_event(g), g)).collect();
        w.call(|| engine.set_event_groups(&pairs)).unwrap();
        let depth0 = model.info(parent).depth;
        let infos: Vec<(GroupId, Info)> = ids
            .iter()
            .enumerate()
            .map(|(i, &g)| {
                let prev = if i == 0 { parent } else { g - 1 };
                (
                    g,
                    Info {
                        prev,
                        room: *r,
                        depth: depth0 + 1 + i as u32,
                    },
                )
            })
            .collect();
        publish(model, &infos);
        next_id += n as GroupId;
        w.groups += n as u64;
        groups.extend(&ids);
        if groups.len() as u32 >= ROOM_GROUPS {
            rooms.swap_remove(slot);
        }
    }
    w
}

fn publish(model: &Model, infos: &[(GroupId, Info)]) {
    let mut groups = model.groups.write().unwrap();
    for &(g, info) in infos {
        assert_eq!(g, groups.len() as GroupId + 1);
        groups.push(info);
    }
    model.published.store(groups.len() as u64, Ordering::Release);
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn readers_see_exactly_what_was_acknowledged() {
    let secs = env_u64("MXSTATE_LOAD_SECS", 5);
    let readers = env_u64("MXSTATE_LOAD_READERS", 2);
    let seed = env_u64("MXSTATE_LOAD_SEED", 0x6d78_7374_6174_6503);
    let rocks = mxstate_rocks::RocksConfig {
        sync_writes: env_u64("MXSTATE_LOAD_SYNC", 1) != 0,
        ..mxstate_rocks::RocksConfig::default()
    };
    eprintln!(
        "readers under load: {secs} s, {readers} readers, sync_writes {}, seed {seed} \
         (MXSTATE_LOAD_SECS, MXSTATE_LOAD_READERS, MXSTATE_LOAD_SYNC, MXSTATE_LOAD_SEED)",
        rocks.sync_writes
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let opts = EngineOptions {
        cache_bytes: 256 << 20,
        ..EngineOptions::default()
    };
    let engine = Arc::new(mxstate_rocks::open_with(&path, opts.clone(), &rocks).unwrap());
    let model = Arc::new(Model {
        groups: RwLock::new(Vec::new()),
        published: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let reader_threads: Vec<_> = (0..readers)
        .map(|i| {
            let (engine, model, stop) = (engine.clone(), model.clone(), stop.clone());
            std::thread::spawn(move || {
                reader(
                    &engine,
                    &model,
                    &stop,
                    seed ^ (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                )
            })
        })
        .collect();
    let writer_thread = {
        let (engine, model, stop) = (engine.clone(), model.clone(), stop.clone());
        std::thread::spawn(move || writer(&engine, &model, &stop, seed))
    };
    // Stop everyone at the deadline, or as soon as one thread failed.
    let deadline = start + Duration::from_secs(secs);
    while Instant::now() < deadline && !reader_threads.iter().any(|t| t.is_finished()) && !writer_thread.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut written = writer_thread.join().expect("the writer failed");
    let mut lat: Latencies = Default::default();
    for t in reader_threads {
        let l = t.join().expect("a reader failed");
        for (all, mine) in lat.iter_mut().zip(l) {
            all.extend(mine);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();

    let mut overall: Vec<u64> = lat.iter().flatten().copied().collect();
    overall.sort_unstable();
    let reads = overall.len() as u64;
    let slow: Vec<u64> = overall.iter().copied().filter(|&ns| ns > 1_000_000).collect();
    eprintln!(
        "reads: {reads} in {elapsed:.1} s = {:.0}/s; latency p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        reads as f64 / elapsed,
        percentile(&overall, 0.5),
        percentile(&overall, 0.99),
        percentile(&overall, 0.999),
        percentile(&overall, 1.0)
    );
    eprintln!(
        "  reads over 1 ms: {} ({:.2}%), {:.2} s in all ({:.0}% of the readers' time)",
        slow.len(),
        100.0 * slow.len() as f64 / reads.max(1) as f64,
        slow.iter().sum::<u64>() as f64 / 1e9,
        100.0 * slow.iter().sum::<u64>() as f64 / 1e9 / (elapsed * readers as f64)
    );
    for (kind, l) in KINDS.iter().zip(lat.iter_mut()) {
        l.sort_unstable();
        eprintln!(
            "  {kind:>13}: {:>8} reads, p50 {:>8.1} µs, p99 {:>8.1} µs",
            l.len(),
            percentile(l, 0.5),
            percentile(l, 0.99)
        );
    }
    written.latency.sort_unstable();
    eprintln!(
        "writer: {} calls = {:.0}/s (p50 {:.1} µs, p99 {:.1} µs), {} groups = {:.0}/s, {} rooms",
        written.calls,
        written.calls as f64 / elapsed,
        percentile(&written.latency, 0.5),
        percentile(&written.latency, 0.99),
        written.groups,
        written.groups as f64 / elapsed,
        written.rooms
    );
    assert!(reads > 0 && written.groups > 0, "nothing was read or written");

    // Reopened, the database holds what was acknowledged.
    drop(engine);
    let engine = mxstate_rocks::open(&path, opts).unwrap();
    let published = model.published.load(Ordering::Acquire);
    let mut rng = Rng(seed);
    let mut sample: BTreeMap<GroupId, ()> = BTreeMap::new();
    for _ in 0..200 {
        sample.insert(1 + rng.below(published), ());
    }
    sample.insert(published, ());
    for &g in sample.keys() {
        let got = engine.state_for_group(g, &StateFilter::all()).unwrap();
        assert!(got == expected_state(&model, g), "group {g} after reopening");
    }
    let report = engine.check().unwrap();
    if !report.problems.iter().any(|p| p.invariant == "unimplemented") {
        assert!(report.is_clean(), "{:?}", report.problems);
    }
}
