//! Model-based property tests: random operation sequences run against the
//! reference store and the RocksDB store (reopened at random points), and
//! against the same engine behind `mxstate serve` through `RemoteStore`
//! (the service restarted at random points), and against the engine on
//! PostgreSQL (a private cluster, reopened at random points); every answer
//! must be identical. One run puts every hash-form event id in the same
//! `event_groups` bucket (one per base64 alphabet).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use mxstate_api::{GroupContent, GroupWrite, MemoryStore, StateStore};
use mxstate_engine::EngineStore;
use mxstate_engine::{EventId, GroupId, RoomId, StateDelta, StateFilter, StateKey, StateMap};
use mxstate_remote::RemoteStore;
use mxstate_tests::served::Served;
use mxstate_tests::{runtime, small_policy_options};
use proptest::prelude::*;

const TYPES: &[&str] = &["m.room.member", "m.room.name", "m.room.power_levels", "org.example"];
const SKEYS: &[&str] = &[
    "",
    "@u0:x",
    "@u1:x",
    "@u2:x",
    "@u3:x",
    "tab\there",
    "new\nline",
    "back\\slash",
    "ünï",
];

#[derive(Debug, Clone)]
enum Op {
    Full {
        room: u8,
        entries: Vec<(u8, u8)>,
    },
    Delta {
        room: u8,
        prev: usize,
        entries: Vec<(u8, u8, bool)>,
    },
    Chain {
        room: u8,
        prev: usize,
        steps: Vec<(u8, u8)>,
    },
    Purge {
        room: u8,
        picks: Vec<usize>,
    },
    PurgeRoom {
        room: u8,
    },
    MapEvent {
        pick: usize,
    },
    /// Maps an event met before (a state event, a group's own event or a
    /// mapped one) to a group: interned events gain mappings, mapped ones
    /// move.
    MapKnown {
        event: usize,
        pick: usize,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let entry = (0u8..4, 0u8..9);
    prop_oneof![
        1 => (0u8..2, proptest::collection::vec(entry.clone(), 0..12)).prop_map(|(room, entries)| Op::Full { room, entries }),
        8 => (0u8..2, any::<usize>(), proptest::collection::vec((0u8..4, 0u8..9, any::<bool>()), 0..4))
            .prop_map(|(room, prev, entries)| Op::Delta { room, prev, entries }),
        2 => (0u8..2, any::<usize>(), proptest::collection::vec(entry, 1..6)).prop_map(|(room, prev, steps)| Op::Chain { room, prev, steps }),
        1 => (0u8..2, proptest::collection::vec(any::<usize>(), 1..3)).prop_map(|(room, picks)| Op::Purge { room, picks }),
        1 => Just(Op::Reopen),
        1 => any::<usize>().prop_map(|pick| Op::MapEvent { pick }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(event, pick)| Op::MapKnown { event, pick }),
        1 => (0u8..3).prop_map(|room| Op::PurgeRoom { room: room.min(1) + u8::from(room == 2) * 5 }),
    ]
}

fn room(n: u8) -> RoomId {
    RoomId::parse(format!("!r{n}:x")).unwrap()
}
fn key(t: u8, s: u8) -> StateKey {
    StateKey::new(TYPES[t as usize % TYPES.len()], SKEYS[s as usize % SKEYS.len()]).unwrap()
}

fn filters() -> Vec<StateFilter> {
    vec![
        StateFilter::all(),
        StateFilter::none(),
        StateFilter::all_except_types(["m.room.member"]),
        StateFilter::from_types([("m.room.power_levels", Some(""))]),
        StateFilter::from_types([("m.room.member", None)]),
        StateFilter::from_types([("m.room.member", Some("@u1:x")), ("org.example", Some("tab\there"))]),
        StateFilter::from_types([("m.room.member", Some("@u2:x"))]).with_include_others(true),
    ]
}

/// The store compared with the model.
enum Subject {
    /// The engine on RocksDB in this process, and its directory.
    Rocks(Option<EngineStore>, tempfile::TempDir),
    /// The engine behind a service, and a client of it.
    Remote(Option<(Served, RemoteStore)>),
    /// The engine on PostgreSQL, and its database's URL.
    Postgres(Option<EngineStore>, String),
}

/// Which store a run compares with the model.
enum Kind {
    Rocks,
    Remote,
    /// A fresh database at this URL.
    Postgres(String),
}

impl Subject {
    fn store(&self) -> &dyn StateStore {
        match self {
            Subject::Rocks(s, _) => s.as_ref().unwrap(),
            Subject::Remote(s) => &s.as_ref().unwrap().1,
            Subject::Postgres(s, _) => s.as_ref().unwrap(),
        }
    }

    /// Reopens the database (restarts the service, with a new client).
    fn reopen(&mut self) {
        match self {
            Subject::Rocks(s, dir) => {
                *s = None;
                *s = Some(mxstate_rocks::open_store(&dir.path().join("db"), small_policy_options()).unwrap());
            }
            Subject::Remote(s) => {
                let (served, _) = s.take().unwrap();
                let served = served.restart(small_policy_options());
                let client = served.client();
                *s = Some((served, client));
            }
            Subject::Postgres(s, url) => {
                *s = None;
                *s = Some(pg_store(url));
            }
        }
    }
}

struct Harness {
    model: MemoryStore,
    subject: Subject,
    groups: Vec<GroupId>,
    next_event: u64,
    /// Every event id handed out, in order.
    events: Vec<EventId>,
    /// Hash-form event ids that all share their first 4 hash bytes: one
    /// `event_groups` bucket per alphabet holds every one of the run.
    crowded: bool,
}

/// Event `n` of a run; with `crowded`, a hash-form id's hash starts with
/// the same 4 bytes as every other's.
fn event_id(n: u64, crowded: bool) -> EventId {
    let id = mxstate_conformance::event_id(n);
    if !crowded {
        return id;
    }
    let mut stored = mxstate_engine::event_key::encode(id.as_str());
    if stored.len() != 33 {
        // A text-form id (one in three): keyed by itself.
        return id;
    }
    stored[1..5].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
    EventId::parse(mxstate_engine::event_key::decode(&stored, String::new).unwrap()).unwrap()
}

type Answer = Result<String, String>;

/// Runs the same call on both stores and requires the same answer.
macro_rules! both {
    ($h:expr, $s:ident => $call:expr) => {{
        let a = {
            let $s: &dyn StateStore = &$h.model;
            same($call.await)
        };
        let b = {
            let $s: &dyn StateStore = $h.subject.store();
            same($call.await)
        };
        assert_eq!(a, b, "model and store disagree on {}", stringify!($call));
        a
    }};
}

fn same<T: std::fmt::Debug>(r: Result<T, mxstate_api::Error>) -> Answer {
    r.map(|v| format!("{v:?}")).map_err(|e| e.to_string())
}

fn sorted(m: &BTreeMap<GroupId, StateMap>) -> Vec<(GroupId, Vec<(StateKey, EventId)>)> {
    m.iter()
        .map(|(g, s)| {
            let mut v: Vec<_> = s.iter().map(|(k, e)| (k.clone(), e.clone())).collect();
            v.sort();
            (*g, v)
        })
        .collect()
}

impl Harness {
    fn new(kind: Kind, crowded: bool) -> Self {
        let subject = match kind {
            Kind::Remote => {
                let served = Served::start(small_policy_options());
                let client = served.client();
                Subject::Remote(Some((served, client)))
            }
            Kind::Rocks => {
                let dir = tempfile::tempdir().unwrap();
                let rocks = mxstate_rocks::open_store(&dir.path().join("db"), small_policy_options()).unwrap();
                Subject::Rocks(Some(rocks), dir)
            }
            Kind::Postgres(url) => Subject::Postgres(Some(pg_store(&url)), url),
        };
        Harness {
            model: MemoryStore::new(),
            subject,
            groups: Vec::new(),
            next_event: 1,
            events: Vec::new(),
            crowded,
        }
    }
    fn event(&mut self) -> EventId {
        self.next_event += 1;
        let e = event_id(self.next_event, self.crowded);
        self.events.push(e.clone());
        e
    }
    fn pick(&self, i: usize) -> GroupId {
        if self.groups.is_empty() {
            1
        } else {
            self.groups[i % self.groups.len()]
        }
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::Full { room: r, entries } => {
                let st: StateMap = entries.iter().map(|&(t, s)| (key(t, s), self.event())).collect();
                let w = vec![GroupWrite {
                    id: None,
                    room_id: room(*r),
                    event_id: self.event(),
                    content: GroupContent::Full(st),
                }];
                self.store(w).await;
            }
            Op::Delta { room: r, prev, entries } => {
                let d: StateDelta = entries
                    .iter()
                    .map(|&(t, s, keep)| (key(t, s), keep.then(|| self.event())))
                    .collect();
                let w = vec![GroupWrite {
                    id: None,
                    room_id: room(*r),
                    event_id: self.event(),
                    content: GroupContent::Delta {
                        prev: self.pick(*prev),
                        delta: d,
                    },
                }];
                self.store(w).await;
            }
            Op::Chain { room: r, prev, steps } => {
                let first = 100_000 + self.next_event * 10;
                let mut p = self.pick(*prev);
                let mut batch = Vec::new();
                for (i, &(t, s)) in steps.iter().enumerate() {
                    let id = first + i as u64;
                    batch.push(GroupWrite {
                        id: Some(id),
                        room_id: room(*r),
                        event_id: self.event(),
                        content: GroupContent::Delta {
                            prev: p,
                            delta: [(key(t, s), Some(self.event()))].into(),
                        },
                    });
                    p = id;
                }
                self.store(batch).await;
            }
            Op::Purge { room: r, picks } => {
                let gs: Vec<GroupId> = picks.iter().map(|&i| self.pick(i)).collect();
                if both!(self, s => s.purge_unreferenced_groups(room(*r), gs.clone())).is_ok() {
                    self.groups.retain(|g| !gs.contains(g));
                }
            }
            Op::PurgeRoom { room: r } => {
                if both!(self, s => s.purge_room(room(*r))).is_ok() {
                    let gone = self.model.room_groups(room(*r)).await.unwrap();
                    assert!(gone.is_empty());
                    let mut keep = Vec::new();
                    for &g in &self.groups {
                        if self.model.state_group_delta(g).await.is_ok() {
                            keep.push(g);
                        }
                    }
                    self.groups = keep;
                }
            }
            Op::MapEvent { pick } => {
                let e = self.event();
                let g = self.pick(*pick);
                both!(self, s => s.set_state_groups_for_events(vec![(e.clone(), g)])).ok();
                both!(self, s => s.state_groups_for_events(vec![e.clone()])).ok();
            }
            Op::MapKnown { event, pick } => {
                if self.events.is_empty() {
                    return;
                }
                let e = self.events[event % self.events.len()].clone();
                let g = self.pick(*pick);
                both!(self, s => s.set_state_groups_for_events(vec![(e.clone(), g)])).ok();
            }
            Op::Reopen => self.subject.reopen(),
        }
    }

    async fn store(&mut self, w: Vec<GroupWrite>) {
        let a = self.model.store_state_groups(w.clone()).await;
        let b = self.subject.store().store_state_groups(w).await;
        let (a, b) = (a.map_err(|e| e.to_string()), b.map_err(|e| e.to_string()));
        assert_eq!(a, b, "store disagrees");
        if let Ok(ids) = a {
            self.groups.extend(ids);
        }
    }

    async fn check_all(&self) {
        for r in [0u8, 1, 6] {
            both!(self, s => s.room_groups(room(r))).ok();
        }
        for f in filters() {
            let gs = self.groups.clone();
            let a = self
                .model
                .state_for_groups(gs.clone(), f.clone())
                .await
                .map(|m| sorted(&m));
            let b = self
                .subject
                .store()
                .state_for_groups(gs, f.clone())
                .await
                .map(|m| sorted(&m));
            assert_eq!(
                a.map_err(|e| e.to_string()),
                b.map_err(|e| e.to_string()),
                "filter {f:?}"
            );
            // The shared view through the trait: the same entries, each once.
            for &g in &self.groups {
                let a = self.model.state_for_groups(vec![g], f.clone()).await.map(|m| {
                    let mut v: Vec<(String, String, String)> = m
                        .get(&g)
                        .into_iter()
                        .flatten()
                        .map(|(k, e)| (k.event_type().into(), k.state_key().into(), e.as_str().into()))
                        .collect();
                    v.sort();
                    v
                });
                let b = self.subject.store().state_view(g, f.clone()).await.map(|v| {
                    let mut t: Vec<(String, String, String)> =
                        v.iter().map(|(t, k, e)| (t.into(), k.into(), e.into())).collect();
                    t.sort();
                    assert_eq!(t.len(), v.len(), "group {g} filter {f:?}: view length");
                    t
                });
                assert_eq!(
                    a.map_err(|e| e.to_string()),
                    b.map_err(|e| e.to_string()),
                    "view of group {g}, filter {f:?}"
                );
            }
        }
        for &g in &self.groups {
            both!(self, s => s.state_group_delta(g)).ok();
        }
        // Every event met so far, and one never given out.
        let mut events = self.events.clone();
        events.push(event_id(self.next_event + 1_000, self.crowded));
        both!(self, s => s.state_groups_for_events(events.clone())).ok();
    }
}

/// On PostgreSQL with tiny packs and a fold step after every write, so
/// that records move between rows and packs all through a case.
fn pg_store(url: &str) -> EngineStore {
    let cfg = mxstate_postgres::PgConfig {
        page_rows: 4,
        pack_bytes: 96,
        fold_min_rows: 1,
        fold_window: 7,
        fold_every: 1,
        ..mxstate_postgres::PgConfig::default()
    };
    EngineStore::new(std::sync::Arc::new(
        mxstate_postgres::open_with(url, small_policy_options(), &cfg).unwrap(),
    ))
}

fn run(ops: &[Op], kind: Kind) {
    run_with(ops, kind, false);
}

fn run_with(ops: &[Op], kind: Kind, crowded: bool) {
    runtime().block_on(async {
        let mut h = Harness::new(kind, crowded);
        for (i, op) in ops.iter().enumerate() {
            h.apply(op).await;
            if i % 8 == 7 {
                h.check_all().await;
            }
        }
        h.check_all().await;
        h.apply(&Op::Reopen).await;
        h.check_all().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rocks_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops, Kind::Rocks);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every hash-form event id in one `event_groups` bucket per alphabet
    /// (format 6): interned and mapped events told apart inside it,
    /// through moves, purges and reopens.
    #[test]
    fn rocks_matches_model_with_every_event_in_one_bucket(ops in proptest::collection::vec(op(), 1..60)) {
        run_with(&ops, Kind::Rocks, true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn remote_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops, Kind::Remote);
    }
}

/// One private cluster for the whole run (a fresh database per case).
#[test]
fn postgres_matches_model() {
    let cluster = mxstate_synapse_dump::PgCluster::start().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 16,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..60), |ops| {
            let name = format!("model_{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            cluster.create_database(&name).unwrap();
            // One case in two with every hash-form id in one bucket.
            let crowded = n.load(std::sync::atomic::Ordering::Relaxed).is_multiple_of(2);
            run_with(&ops, Kind::Postgres(cluster.url_for(&name)), crowded);
            Ok(())
        })
        .unwrap();
}
