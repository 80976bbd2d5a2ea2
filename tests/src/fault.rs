//! Fault injection at the key-value seam, and a random workload run on an
//! engine and the reference model side by side.
//!
//! [`FaultKv`] wraps [`MemKv`] and injects two kinds of fault:
//! - **power cuts**: it keeps the durable state apart from the batches
//!   written but not yet synced (a batch is unsynced when it deferred its
//!   sync, or always in [`Durability::Buffered`], the mode of a backend
//!   that syncs only on [`KvStore::sync`]). Reads see everything written;
//!   [`FaultKv::power_cut`] gives a new store holding the durable state
//!   plus the first `keep` unsynced batches, whole, as RocksDB's
//!   write-ahead log keeps them.
//! - **failing operations**: [`FaultKv::fail`] makes the Nth operation
//!   (of every class or of one: get, multi-get, write, sync, scans) fail
//!   with a typed [`Error::Backend`], the way the RocksDB backend reports an
//!   I/O error; a failed write applies nothing.
//!
//! [`workload`] runs random operations on an [`Engine`] and on
//! [`MemoryStore`], requires the same answers, and dumps everything a
//! database holds so two of them can be compared.

use std::sync::{Arc, Mutex, MutexGuard};

use mxstate_api::{Error, ErrorKind, Result};
use mxstate_engine::kv::{Batch, Cf, KvStore, Op, Visit};
use mxstate_engine::MemKv;

/// When a write reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// RocksDB's default (`sync_writes: true`): a write is durable when it
    /// returns unless its batch defers its sync; a durable write makes
    /// every earlier one durable too (one log).
    #[default]
    Synced,
    /// The less durable mode (`sync_writes: false`): nothing is durable
    /// until [`KvStore::sync`].
    Buffered,
}

/// A class of store operation, for counting and failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpClass {
    Get,
    MultiGet,
    Write,
    Sync,
    /// `scan_prefix`, `scan_range_rev` and `last_with_prefix`.
    Scan,
}

impl OpClass {
    pub const ALL: [OpClass; 5] = [
        OpClass::Get,
        OpClass::MultiGet,
        OpClass::Write,
        OpClass::Sync,
        OpClass::Scan,
    ];
}

/// Which operations fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailPlan {
    /// Only operations of this class count (`None`: every operation).
    pub class: Option<OpClass>,
    /// The first failing one among those counted (0: the next one).
    pub nth: u64,
    /// How many consecutive counted operations fail.
    pub times: u64,
    /// The kind the injected error has ([`ErrorKind::Backend`] for an I/O
    /// error, [`ErrorKind::Corrupt`] for a corruption the backend detected).
    pub kind: ErrorKind,
}

impl FailPlan {
    /// The `nth` operation of `class` fails once with an I/O error.
    pub fn once(class: Option<OpClass>, nth: u64) -> Self {
        FailPlan {
            class,
            nth,
            times: 1,
            kind: ErrorKind::Backend,
        }
    }
}

/// What every injected error's message contains.
pub const INJECTED: &str = "injected failure";

/// Whether `e` is an error [`FaultKv`] injected.
pub fn is_injected(e: &Error) -> bool {
    matches!(e, Error::Backend { backend: "faultkv", .. }) && e.to_string().contains(INJECTED)
}

/// Operations counted per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    counts: [u64; 5],
}

impl OpCounts {
    /// How many of `class` (`None`: of all classes).
    pub fn of(&self, class: Option<OpClass>) -> u64 {
        match class {
            Some(c) => self.counts[c as usize],
            None => self.counts.iter().sum(),
        }
    }
}

struct Persist {
    /// What survives a power cut.
    durable: MemKv,
    /// Batches written since the last sync that a power cut may lose, oldest first.
    unsynced: Vec<Vec<Op>>,
    /// Batches written to this store, including those its origin held
    /// when it was cut from another store.
    written: u64,
}

#[derive(Default)]
struct Faults {
    plan: Option<FailPlan>,
    paused: bool,
    counts: OpCounts,
    /// Operations counted against the plan.
    seen: u64,
    injected: u64,
}

struct Inner {
    /// Everything written: what reads see.
    live: MemKv,
    mode: Durability,
    persist: Mutex<Persist>,
    faults: Mutex<Faults>,
}

/// A fault-injecting [`KvStore`] over [`MemKv`]. Cloning gives another
/// handle on the same store, so a test keeps one while an engine owns
/// another.
#[derive(Clone)]
pub struct FaultKv {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked holding the lock has failed already; the data is
    // still consistent (every update is made whole under the lock).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn batch_of(ops: &[Op]) -> Batch {
    let mut b = Batch::default();
    for op in ops {
        match op {
            Op::Put(cf, k, v) => b.put(*cf, k.clone(), v.clone()),
            Op::Delete(cf, k) => b.delete(*cf, k.clone()),
        }
    }
    b
}

/// A copy of everything in `kv`.
fn copy(kv: &MemKv) -> Result<MemKv> {
    let out = MemKv::new();
    for cf in Cf::ALL {
        let mut b = Batch::default();
        kv.scan_prefix(cf, &[], &mut |k, v| {
            b.put(cf, k.to_vec(), v.to_vec());
            Ok(true)
        })?;
        out.write(b)?;
    }
    Ok(out)
}

impl FaultKv {
    /// An empty store.
    pub fn new(mode: Durability) -> Self {
        Self::from_parts(MemKv::new(), MemKv::new(), mode, 0)
    }

    fn from_parts(live: MemKv, durable: MemKv, mode: Durability, written: u64) -> Self {
        FaultKv {
            inner: Arc::new(Inner {
                live,
                mode,
                persist: Mutex::new(Persist {
                    durable,
                    unsynced: Vec::new(),
                    written,
                }),
                faults: Mutex::new(Faults::default()),
            }),
        }
    }

    /// The durability mode.
    pub fn mode(&self) -> Durability {
        self.inner.mode
    }

    /// Batches written and not yet durable.
    pub fn unsynced(&self) -> usize {
        lock(&self.inner.persist).unsynced.len()
    }

    /// Batches written so far (counting those a cut store started with).
    pub fn written(&self) -> u64 {
        lock(&self.inner.persist).written
    }

    /// Batches written that are durable.
    pub fn durable_written(&self) -> u64 {
        let p = lock(&self.inner.persist);
        p.written - p.unsynced.len() as u64
    }

    /// The store as a power cut now would leave it: the durable state plus
    /// the first `keep` unsynced batches (at most all of them). The new
    /// store has the same mode, no faults planned, and nothing unsynced;
    /// this one carries on unchanged.
    pub fn power_cut(&self, keep: usize) -> FaultKv {
        let p = lock(&self.inner.persist);
        let kept = keep.min(p.unsynced.len());
        let store = copy(&p.durable).expect("copying an in-memory store cannot fail");
        for ops in &p.unsynced[..kept] {
            store.write(batch_of(ops)).expect("MemKv write");
        }
        let durable = copy(&store).expect("copying an in-memory store cannot fail");
        let written = p.written - (p.unsynced.len() - kept) as u64;
        FaultKv::from_parts(store, durable, self.inner.mode, written)
    }

    /// Plans failures; the operation counts start again from zero.
    pub fn fail(&self, plan: FailPlan) {
        let mut f = lock(&self.inner.faults);
        f.plan = Some(plan);
        f.seen = 0;
        f.counts = OpCounts::default();
    }

    /// Forgets the planned failures.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).plan = None;
    }

    /// While paused, operations are neither counted nor failed (for a
    /// test's own verification reads).
    pub fn pause_faults(&self, paused: bool) {
        lock(&self.inner.faults).paused = paused;
    }

    /// Operations counted since the last [`FaultKv::fail`] or reset.
    pub fn counts(&self) -> OpCounts {
        lock(&self.inner.faults).counts
    }

    /// Restarts the operation counts (and the plan's count) from zero.
    pub fn reset_counts(&self) {
        let mut f = lock(&self.inner.faults);
        f.counts = OpCounts::default();
        f.seen = 0;
    }

    /// Errors injected so far.
    pub fn injected(&self) -> u64 {
        lock(&self.inner.faults).injected
    }

    /// Counts one operation of `class`; fails it if the plan says so.
    fn enter(&self, class: OpClass) -> Result<()> {
        let mut f = lock(&self.inner.faults);
        if f.paused {
            return Ok(());
        }
        f.counts.counts[class as usize] += 1;
        let Some(plan) = f.plan else {
            return Ok(());
        };
        if plan.class.is_some_and(|c| c != class) {
            return Ok(());
        }
        let i = f.seen;
        f.seen += 1;
        if i >= plan.nth && i - plan.nth < plan.times {
            f.injected += 1;
            let io = std::io::Error::other(format!("{INJECTED} of {class:?} operation #{i}"));
            return Err(Error::backend("faultkv", plan.kind, io));
        }
        Ok(())
    }
}

impl KvStore for FaultKv {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.enter(OpClass::Get)?;
        self.inner.live.get(cf, key)
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.enter(OpClass::MultiGet)?;
        self.inner.live.multi_get(cf, keys)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        self.enter(OpClass::Write)?;
        let deferred = batch.sync_deferred() || self.inner.mode == Durability::Buffered;
        let ops = batch.into_ops();
        let mut p = lock(&self.inner.persist);
        self.inner.live.write(batch_of(&ops))?;
        p.written += 1;
        if deferred {
            p.unsynced.push(ops);
        } else {
            // One log: a synced write makes every earlier one durable.
            for earlier in std::mem::take(&mut p.unsynced) {
                p.durable.write(batch_of(&earlier))?;
            }
            p.durable.write(batch_of(&ops))?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.enter(OpClass::Sync)?;
        let mut p = lock(&self.inner.persist);
        for ops in std::mem::take(&mut p.unsynced) {
            p.durable.write(batch_of(&ops))?;
        }
        Ok(())
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.enter(OpClass::Scan)?;
        self.inner.live.scan_prefix(cf, prefix, visit)
    }

    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.enter(OpClass::Scan)?;
        self.inner.live.scan_range_rev(cf, lower, upper, visit)
    }

    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.enter(OpClass::Scan)?;
        self.inner.live.last_with_prefix(cf, prefix)
    }

    fn location(&self) -> String {
        "faultkv (memory)".to_owned()
    }
}

pub mod workload {
    //! Random operations on an engine and the reference model: the same
    //! calls, the same answers required; [`Dump`]s of everything a database
    //! holds, to compare a reopened database with the model.

    use std::collections::{BTreeMap, BTreeSet};

    use mxstate_api::{
        Error, EventId, GroupContent, GroupId, GroupWrite, MemoryStore, RoomId, StateDelta, StateFilter, StateKey,
        StateMap, StateStore,
    };
    use mxstate_engine::{Engine, EngineOptions, GroupState, NewGroup};

    use super::is_injected;

    /// Rooms the operations use.
    pub const ROOMS: u8 = 3;
    const TYPES: &[&str] = &["m.room.member", "m.room.name", "m.room.power_levels", "org.example"];
    const SKEYS: &[&str] = &["", "@u0:x", "@u1:x", "@u2:x", "@u3:x", "tab\there", "nul\0key", "ünï"];

    /// Room `n` (modulo [`ROOMS`]).
    pub fn room(n: u8) -> RoomId {
        RoomId::parse(format!("!r{}:x", n % ROOMS)).expect("valid room id")
    }

    /// State key number `(t, s)`.
    pub fn key(t: u8, s: u8) -> StateKey {
        StateKey::new(TYPES[t as usize % TYPES.len()], SKEYS[s as usize % SKEYS.len()]).expect("valid key")
    }

    /// The filters every group is read through in a dump.
    pub fn filters() -> Vec<StateFilter> {
        vec![
            StateFilter::all(),
            StateFilter::all_except_types(["m.room.member"]),
            StateFilter::from_types([("m.room.member", None)]),
            StateFilter::from_types([("m.room.member", Some("@u1:x")), ("org.example", Some("nul\0key"))]),
        ]
    }

    /// One call on the database. Indexes (`prev`, `picks`) choose among the
    /// groups stored so far.
    #[derive(Debug, Clone)]
    pub enum Op {
        /// A group stored with a full state.
        Full {
            room: u8,
            entries: Vec<(u8, u8)>,
        },
        /// A delta on an existing group (a fork when it is not the latest).
        Delta {
            room: u8,
            prev: usize,
            entries: Vec<(u8, u8, bool)>,
        },
        /// Several deltas on existing groups in one call, ids given by the store.
        Batch {
            room: u8,
            items: Vec<(usize, u8, u8)>,
        },
        /// A chain of one-entry deltas in one call, with caller-chosen ids.
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
        /// Maps events (an earlier event, or a new one) to groups.
        MapEvents {
            pairs: Vec<(Option<usize>, usize)>,
        },
        SetCurrent {
            room: u8,
            entries: Vec<(u8, u8)>,
        },
        /// Reads only: group states, a delta, mappings, current state.
        Read {
            picks: Vec<usize>,
            filter: u8,
            room: u8,
        },
        /// `Engine::sync` (nothing for the model).
        Sync,
        /// `Engine::begin_import`.
        BeginImport,
        /// `Engine::finish_import` of the running import (nothing when none runs).
        FinishImport,
        // Synapse's deletion protocol. `dt` advances the clock (seconds).
        /// A delta stored with `store_groups_at` (bumps its prev's pending mark).
        DeltaAt {
            room: u8,
            prev: usize,
            entries: Vec<(u8, u8, bool)>,
            dt: u8,
        },
        MarkPending {
            picks: Vec<usize>,
            dt: u8,
        },
        MarkUsed {
            picks: Vec<usize>,
        },
        CheckAndBump {
            picks: Vec<usize>,
            dt: u8,
        },
        MarkPersisting {
            picks: Vec<usize>,
            instance: u8,
            dt: u8,
        },
        FinishPersisting {
            picks: Vec<usize>,
            instance: u8,
            error: bool,
            dt: u8,
        },
        /// Clears the marks of `instance` and those older than `older` seconds.
        ClearPersisting {
            instance: u8,
            older: u8,
        },
        /// `next_deletion_candidates`, then `purge_if_ready` on them.
        PurgeReady {
            dt: u8,
        },
        /// What a `PurgeReady` did, for replaying it on the model alone:
        /// the clock moves, the model deletes `groups` (see [`Harness::replay_form`]).
        Purged {
            room: RoomId,
            groups: Vec<GroupId>,
            dt: u8,
        },
    }

    /// How long a group stays pending before it may be deleted (ms).
    pub const DELETION_DELAY_MS: u64 = 5_000;

    /// The deletion-protocol marks: `pending_deletions` and `persisting_marks`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Marks {
        pub pending: BTreeMap<GroupId, u64>,
        pub persisting: Vec<(GroupId, String, u64)>,
    }

    /// What the operations have named so far, over every rewind: the
    /// range a dump reads.
    #[derive(Debug, Clone, Default)]
    pub struct Universe {
        pub events: u64,
        pub imports: u64,
        pub groups: BTreeSet<GroupId>,
    }

    impl Universe {
        fn absorb(&mut self, other: &Universe) {
            self.events = self.events.max(other.events);
            self.imports = self.imports.max(other.imports);
            self.groups.extend(&other.groups);
        }
    }

    /// Everything a database holds, read through the public API.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Dump {
        pub groups: BTreeMap<GroupId, GroupDump>,
        pub room_groups: BTreeMap<String, Vec<GroupId>>,
        pub events: BTreeMap<String, GroupId>,
        pub current: BTreeMap<String, Vec<(StateKey, EventId)>>,
        pub rooms: BTreeSet<String>,
        pub import: Option<String>,
        pub imports_done: BTreeMap<u128, String>,
        pub marks: Marks,
    }

    /// One group in a [`Dump`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GroupDump {
        pub room: String,
        pub delta: Option<(GroupId, StateDelta)>,
        /// The state under each of [`filters`].
        pub states: Vec<Vec<(StateKey, EventId)>>,
    }

    impl Dump {
        /// The first difference from `other`, for messages.
        pub fn diff(&self, other: &Dump) -> String {
            let ids: BTreeSet<&GroupId> = self.groups.keys().chain(other.groups.keys()).collect();
            for g in ids {
                let (a, b) = (self.groups.get(g), other.groups.get(g));
                if a != b {
                    return format!("group {g}: {a:?}\n  vs {b:?}");
                }
            }
            macro_rules! field {
                ($f:ident) => {
                    if self.$f != other.$f {
                        return format!("{}: {:?}\n  vs {:?}", stringify!($f), self.$f, other.$f);
                    }
                };
            }
            field!(room_groups);
            field!(events);
            field!(current);
            field!(rooms);
            field!(import);
            field!(imports_done);
            field!(marks);
            "no difference".to_owned()
        }
    }

    fn sorted_state(m: StateMap) -> Vec<(StateKey, EventId)> {
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort();
        v
    }

    fn event_name(n: u64) -> EventId {
        mxstate_conformance::event_id(n)
    }

    /// Everything `engine` holds, read through its public calls (and its caches).
    pub fn dump_engine(engine: &Engine, uni: &Universe) -> mxstate_api::Result<Dump> {
        let mut ids = Vec::new();
        engine.for_each_group(&mut |g| {
            ids.push(g);
            Ok(())
        })?;
        let mut groups = BTreeMap::new();
        let fs = filters();
        for &g in &ids {
            let mut states = Vec::new();
            for f in &fs {
                states.push(sorted_state(engine.state_for_group(g, f)?));
            }
            let delta = engine.state_group_delta(g)?.map(|d| (d.prev_group, d.delta));
            let room = engine.group_room(g)?.to_string();
            groups.insert(g, GroupDump { room, delta, states });
        }
        // The batched read agrees with the one-by-one reads.
        let all = engine.state_for_groups(&ids, &StateFilter::all())?;
        for (g, s) in all {
            let one = groups.get(&g).map(|d| &d.states[0]);
            if one != Some(&sorted_state(s)) {
                return Err(Error::internal(format!(
                    "group {g}: state_for_groups differs from state_for_group"
                )));
            }
        }
        let mut room_groups = BTreeMap::new();
        let mut current = BTreeMap::new();
        for r in 0..ROOMS {
            let room = room(r);
            room_groups.insert(room.to_string(), engine.room_groups(&room)?);
            current.insert(
                room.to_string(),
                sorted_state(engine.current_state(&room, &StateFilter::all())?),
            );
        }
        let evs: Vec<EventId> = (1..=uni.events).map(event_name).collect();
        let events = engine
            .event_groups(&evs)?
            .into_iter()
            .map(|(e, g)| (e.to_string(), g))
            .collect();
        let rooms = engine.rooms()?.into_iter().map(|r| r.to_string()).collect();
        let mut imports_done = BTreeMap::new();
        for fp in 1..=uni.imports {
            if let Some(d) = engine.completed_import(u128::from(fp))? {
                imports_done.insert(u128::from(fp), d);
            }
        }
        Ok(Dump {
            groups,
            room_groups,
            events,
            current,
            rooms,
            import: engine.import_marker()?,
            imports_done,
            marks: marks(engine, uni)?,
        })
    }

    /// The deletion-protocol marks of the groups `uni` knows.
    pub fn marks(engine: &Engine, uni: &Universe) -> mxstate_api::Result<Marks> {
        Ok(Marks {
            pending: engine.pending_deletions(&uni.groups)?,
            persisting: engine.persisting_marks()?,
        })
    }

    /// Engine options for the workload: a tiny chain policy (checkpoints
    /// and snapshots within a few groups).
    pub fn options(allow_incomplete_import: bool) -> EngineOptions {
        EngineOptions {
            allow_incomplete_import,
            ..crate::small_policy_options()
        }
    }

    /// The answer of one call, as text (errors by their message).
    pub type Answer = Result<String, String>;

    /// What applying an operation gave.
    #[derive(Debug)]
    pub enum Applied {
        /// Engine and model gave this same answer (or only the model ran).
        Same(Answer),
        /// The engine failed with an injected error; the model did not run.
        Injected(Error),
    }

    /// The model, optionally an engine, and what the operations have
    /// created so far (replayable: the same operations give the same harness).
    pub struct Harness {
        rt: tokio::runtime::Runtime,
        pub model: MemoryStore,
        pub engine: Option<Engine>,
        groups: Vec<GroupId>,
        next_event: u64,
        rooms: BTreeSet<RoomId>,
        import: Option<(u64, String)>,
        imports_started: u64,
        imports_done: BTreeMap<u128, String>,
        /// Whether the engine runs `begin_import` (its writes defer their sync).
        pub bulk: bool,
        pub uni: Universe,
        /// The clock of the deletion protocol (ms).
        clock: u64,
        /// The marks as the engine reported them after its last acknowledged
        /// call (the model has none of its own: see [`Op::MarkPending`]).
        marks: Marks,
        /// Paused while the harness reads the marks.
        pub fault: Option<super::FaultKv>,
        /// The replay form of the last operation, when it differs from it.
        replay_form: Option<Op>,
    }

    fn text<T: std::fmt::Debug>(r: mxstate_api::Result<T>) -> Answer {
        r.map(|v| format!("{v:?}")).map_err(|e| e.to_string())
    }

    fn shown<T: std::fmt::Debug>(r: mxstate_api::Result<T>) -> mxstate_api::Result<String> {
        r.map(|v| format!("{v:?}"))
    }

    fn sorted_states(m: BTreeMap<GroupId, StateMap>) -> Vec<(GroupId, Vec<(StateKey, EventId)>)> {
        m.into_iter().map(|(g, s)| (g, sorted_state(s))).collect()
    }

    impl Harness {
        /// A model, and `engine` if given.
        pub fn new(engine: Option<Engine>) -> Self {
            Harness {
                rt: crate::runtime(),
                model: MemoryStore::new(),
                engine,
                groups: Vec::new(),
                next_event: 0,
                rooms: BTreeSet::new(),
                import: None,
                imports_started: 0,
                imports_done: BTreeMap::new(),
                bulk: false,
                uni: Universe {
                    groups: [1].into(),
                    ..Universe::default()
                },
                clock: 1_000_000,
                marks: Marks::default(),
                fault: None,
                replay_form: None,
            }
        }

        /// `op`, which was applied last, in the form that replays it on the
        /// model alone (a `PurgeReady` becomes what it deleted).
        pub fn replay_form(&mut self, op: &Op) -> Op {
            self.replay_form.take().unwrap_or_else(|| op.clone())
        }

        /// Sets the marks the model expects (after a reopen, the verified ones).
        pub fn set_marks(&mut self, marks: Marks) {
            self.marks = marks;
        }

        /// The model after `ops`, without an engine; `uni` is kept.
        pub fn replay(ops: &[Op], uni: &Universe) -> Self {
            let mut h = Harness::new(None);
            for op in ops {
                h.apply(op);
            }
            h.uni.absorb(uni);
            h
        }

        /// Whether an import was begun and not finished.
        pub fn importing(&self) -> bool {
            self.import.is_some()
        }

        /// The engine (panics without one).
        pub fn engine(&self) -> &Engine {
            self.engine.as_ref().expect("harness has an engine")
        }

        fn event(&mut self) -> EventId {
            self.next_event += 1;
            self.uni.events = self.uni.events.max(self.next_event);
            event_name(self.next_event)
        }

        fn pick(&self, i: usize) -> GroupId {
            if self.groups.is_empty() {
                1
            } else {
                self.groups[i % self.groups.len()]
            }
        }

        /// Everything the model holds, in the shape of [`dump_engine`].
        pub fn dump_model(&self) -> Dump {
            let m = &self.model;
            let fs = filters();
            let mut groups = BTreeMap::new();
            let mut room_groups = BTreeMap::new();
            let mut current = BTreeMap::new();
            for r in 0..ROOMS {
                let room = room(r);
                let ids = self
                    .rt
                    .block_on(m.room_groups(room.clone()))
                    .expect("model room_groups");
                for &g in &ids {
                    let mut states = Vec::new();
                    for f in &fs {
                        let s = self
                            .rt
                            .block_on(m.state_for_groups(vec![g], f.clone()))
                            .expect("model state")
                            .remove(&g)
                            .unwrap_or_default();
                        states.push(sorted_state(s));
                    }
                    let delta = self
                        .rt
                        .block_on(m.state_group_delta(g))
                        .expect("model delta")
                        .map(|d| (d.prev_group, d.delta));
                    groups.insert(
                        g,
                        GroupDump {
                            room: room.to_string(),
                            delta,
                            states,
                        },
                    );
                }
                room_groups.insert(room.to_string(), ids);
                let cur = self
                    .rt
                    .block_on(m.current_state(room.clone(), StateFilter::all()))
                    .expect("model current state");
                current.insert(room.to_string(), sorted_state(cur));
            }
            let evs: Vec<EventId> = (1..=self.uni.events).map(event_name).collect();
            let events = self
                .rt
                .block_on(m.state_groups_for_events(evs))
                .expect("model events")
                .into_iter()
                .map(|(e, g)| (e.to_string(), g))
                .collect();
            Dump {
                groups,
                room_groups,
                events,
                current,
                rooms: self.rooms.iter().map(|r| r.to_string()).collect(),
                import: self.import.as_ref().map(|i| i.1.clone()),
                imports_done: self.imports_done.clone(),
                marks: self.marks.clone(),
            }
        }

        /// Reads the marks from the engine after an acknowledged call.
        fn refresh_marks(&mut self) {
            let Some(e) = &self.engine else {
                return;
            };
            if let Some(f) = &self.fault {
                f.pause_faults(true);
            }
            self.marks = marks(e, &self.uni).expect("reading the deletion marks");
            if let Some(f) = &self.fault {
                f.pause_faults(false);
            }
        }

        /// The model deletes `groups` of `room`, as the engine did.
        fn purged(&mut self, room: &RoomId, groups: &[GroupId]) {
            if groups.is_empty() {
                return;
            }
            self.rt
                .block_on(self.model.purge_unreferenced_groups(room.clone(), groups.to_vec()))
                .expect("the model purges what the engine purged");
            self.groups.retain(|g| !groups.contains(g));
        }

        fn tick(&mut self, dt: u8) -> u64 {
            self.clock += u64::from(dt) * 1000;
            self.clock
        }

        fn pick_set(&self, picks: &[usize]) -> BTreeSet<GroupId> {
            picks.iter().map(|&i| self.pick(i)).collect()
        }

        /// Which of `groups` the model does not have.
        fn missing(&self, groups: &BTreeSet<GroupId>) -> Answer {
            let mut out = Vec::new();
            for &g in groups {
                if self.rt.block_on(self.model.state_group_delta(g)).is_err() {
                    out.push(g);
                }
            }
            Ok(format!("{out:?}"))
        }

        /// A deletion-protocol call: the engine's answer against the
        /// model's (`None`: any answer), the marks read back after success.
        fn protocol(
            &mut self,
            on_engine: impl FnOnce(&Engine) -> mxstate_api::Result<String>,
            model: Option<Answer>,
        ) -> Applied {
            let Some(e) = &self.engine else {
                return Applied::Same(model.unwrap_or(Ok(String::new())));
            };
            let a = match on_engine(e) {
                Err(err) if is_injected(&err) => return Applied::Injected(err),
                a => a.map_err(|err| err.to_string()),
            };
            if let Some(m) = model {
                assert_eq!(a, m, "engine (left) and model (right) disagree");
            }
            if a.is_ok() {
                self.refresh_marks();
            }
            Applied::Same(a)
        }

        /// Applies `op` to the engine (if any) and the model and requires the
        /// same answer; an injected engine failure leaves the model alone.
        pub fn apply(&mut self, op: &Op) -> Applied {
            self.replay_form = None;
            let a = self.apply_op(op);
            if matches!(a, Applied::Same(Ok(_))) {
                // Purges and stores change marks too.
                self.refresh_marks();
            }
            a
        }

        fn apply_op(&mut self, op: &Op) -> Applied {
            match op {
                Op::Full { room: r, entries } => {
                    let st: StateMap = entries.iter().map(|&(t, s)| (key(t, s), self.event())).collect();
                    let w = vec![GroupWrite {
                        id: None,
                        room_id: room(*r),
                        event_id: self.event(),
                        content: GroupContent::Full(st),
                    }];
                    self.store(w)
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
                    self.store(w)
                }
                Op::Batch { room: r, items } => {
                    let mut w = Vec::new();
                    for &(p, t, s) in items {
                        let delta: StateDelta = [(key(t, s), Some(self.event()))].into();
                        w.push(GroupWrite {
                            id: None,
                            room_id: room(*r),
                            event_id: self.event(),
                            content: GroupContent::Delta {
                                prev: self.pick(p),
                                delta,
                            },
                        });
                    }
                    self.store(w)
                }
                Op::Chain { room: r, prev, steps } => {
                    let first = 1_000_000 + self.next_event * 10;
                    let mut p = self.pick(*prev);
                    let mut w = Vec::new();
                    for (i, &(t, s)) in steps.iter().enumerate() {
                        let id = first + i as u64;
                        w.push(GroupWrite {
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
                    self.store(w)
                }
                Op::Purge { room: r, picks } => {
                    let gs: Vec<GroupId> = picks.iter().map(|&i| self.pick(i)).collect();
                    let room = room(*r);
                    let a = self.both(
                        |e| shown(e.purge_groups(&room, &gs)),
                        |rt, m| text(rt.block_on(m.purge_unreferenced_groups(room.clone(), gs.clone()))),
                    );
                    if matches!(a, Applied::Same(Ok(_))) {
                        self.groups.retain(|g| !gs.contains(g));
                    }
                    a
                }
                Op::PurgeRoom { room: r } => {
                    let room = room(*r);
                    let a = self.both(
                        |e| shown(e.purge_room(&room)),
                        |rt, m| text(rt.block_on(m.purge_room(room.clone()))),
                    );
                    if matches!(a, Applied::Same(Ok(_))) {
                        let gone = self.rt.block_on(self.model.room_groups(room.clone())).expect("model");
                        assert!(gone.is_empty());
                        let mut keep = Vec::new();
                        for &g in &self.groups {
                            if self.rt.block_on(self.model.state_group_delta(g)).is_ok() {
                                keep.push(g);
                            }
                        }
                        self.groups = keep;
                    }
                    a
                }
                Op::MapEvents { pairs } => {
                    let mut ps = Vec::new();
                    for &(e, g) in pairs {
                        let ev = match e {
                            Some(i) if self.next_event > 0 => event_name(1 + i as u64 % self.next_event),
                            _ => self.event(),
                        };
                        ps.push((ev, self.pick(g)));
                    }
                    self.both(
                        |e| shown(e.set_event_groups(&ps)),
                        |rt, m| text(rt.block_on(m.set_state_groups_for_events(ps.clone()))),
                    )
                }
                Op::SetCurrent { room: r, entries } => {
                    let st: StateMap = entries.iter().map(|&(t, s)| (key(t, s), self.event())).collect();
                    let room = room(*r);
                    let a = self.both(
                        |e| shown(e.set_current_state(&room, &st)),
                        |rt, m| text(rt.block_on(m.set_current_state(room.clone(), st.clone()))),
                    );
                    if matches!(a, Applied::Same(Ok(_))) {
                        self.rooms.insert(room);
                    }
                    a
                }
                Op::Read { picks, filter, room: r } => self.read(picks, *filter, room(*r)),
                Op::Sync => {
                    let a = match &self.engine {
                        Some(e) => match e.sync() {
                            Err(err) if is_injected(&err) => return Applied::Injected(err),
                            r => text(r),
                        },
                        None => Ok("()".to_owned()),
                    };
                    assert_eq!(a, Ok("()".to_owned()), "sync");
                    Applied::Same(a)
                }
                Op::BeginImport => {
                    let n = self.imports_started + 1;
                    let desc = format!("import {n}");
                    if let Some(e) = &self.engine {
                        match e.begin_import(&desc) {
                            Ok(()) => self.bulk = true,
                            Err(err) if is_injected(&err) => return Applied::Injected(err),
                            Err(err) => panic!("begin_import: {err}"),
                        }
                    }
                    self.imports_started = n;
                    self.uni.imports = self.uni.imports.max(n);
                    self.import = Some((n, desc));
                    Applied::Same(Ok("()".to_owned()))
                }
                Op::DeltaAt {
                    room: r,
                    prev,
                    entries,
                    dt,
                } => {
                    let now = self.tick(*dt);
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
                    self.store_at(w, Some(now))
                }
                Op::MarkPending { picks, dt } => {
                    let (gs, now) = (self.pick_set(picks), self.tick(*dt));
                    self.protocol(|e| shown(e.mark_pending_deletion(&gs, now)), Some(Ok("()".to_owned())))
                }
                Op::MarkUsed { picks } => {
                    let gs = self.pick_set(picks);
                    self.protocol(|e| shown(e.mark_used(&gs)), Some(Ok("()".to_owned())))
                }
                Op::CheckAndBump { picks, dt } => {
                    let (gs, now) = (self.pick_set(picks), self.tick(*dt));
                    let want = self.missing(&gs);
                    self.protocol(|e| shown(e.check_and_bump_deletion(&gs, now)), Some(want))
                }
                Op::MarkPersisting { picks, instance, dt } => {
                    let (gs, now) = (self.pick_set(picks), self.tick(*dt));
                    let want = self.missing(&gs);
                    let inst = format!("worker{}", instance % 3);
                    self.protocol(|e| shown(e.mark_persisting(&gs, &inst, now)), Some(want))
                }
                Op::FinishPersisting {
                    picks,
                    instance,
                    error,
                    dt,
                } => {
                    let (gs, now) = (self.pick_set(picks), self.tick(*dt));
                    let inst = format!("worker{}", instance % 3);
                    self.protocol(
                        |e| shown(e.finish_persisting(&gs, &inst, *error, now)),
                        Some(Ok("()".to_owned())),
                    )
                }
                Op::ClearPersisting { instance, older } => {
                    let inst = format!("worker{}", instance % 3);
                    let older_than = self.clock.saturating_sub(u64::from(*older) * 1000);
                    let want: BTreeSet<GroupId> = self
                        .marks
                        .persisting
                        .iter()
                        .filter(|(_, i, ts)| *i == inst || *ts < older_than)
                        .map(|m| m.0)
                        .collect();
                    self.protocol(
                        |e| shown(e.clear_persisting(&inst, older_than)),
                        Some(Ok(format!("{want:?}"))),
                    )
                }
                Op::PurgeReady { dt } => {
                    let now = self.tick(*dt);
                    let Some(e) = &self.engine else {
                        return Applied::Same(Ok(String::new()));
                    };
                    let found = match e.next_deletion_candidates(now, DELETION_DELAY_MS) {
                        Err(err) if is_injected(&err) => return Applied::Injected(err),
                        r => r.expect("next_deletion_candidates"),
                    };
                    let Some((room, candidates)) = found else {
                        self.replay_form = Some(Op::Purged {
                            room: room(0),
                            groups: Vec::new(),
                            dt: *dt,
                        });
                        return Applied::Same(Ok("none".to_owned()));
                    };
                    let gone = match e.purge_if_ready(&room, &candidates, now, DELETION_DELAY_MS) {
                        Err(err) if is_injected(&err) => return Applied::Injected(err),
                        r => r.expect("purge_if_ready"),
                    };
                    // The model deletes those of the room it has.
                    let in_room = self.rt.block_on(self.model.room_groups(room.clone())).expect("model");
                    let deleted: Vec<GroupId> = gone.iter().copied().filter(|g| in_room.contains(g)).collect();
                    self.purged(&room, &deleted);
                    self.replay_form = Some(Op::Purged {
                        room,
                        groups: deleted,
                        dt: *dt,
                    });
                    Applied::Same(Ok(format!("{gone:?}")))
                }
                Op::Purged { room, groups, dt } => {
                    self.tick(*dt);
                    assert!(self.engine.is_none(), "Purged is for replays on the model alone");
                    self.purged(room, groups);
                    Applied::Same(Ok(format!("{groups:?}")))
                }
                Op::FinishImport => {
                    let Some((n, desc)) = self.import.clone() else {
                        return Applied::Same(Ok("no import".to_owned()));
                    };
                    if let Some(e) = &self.engine {
                        match e.finish_import(u128::from(n), &desc) {
                            Ok(()) => self.bulk = false,
                            Err(err) if is_injected(&err) => return Applied::Injected(err),
                            Err(err) => panic!("finish_import: {err}"),
                        }
                    }
                    self.import = None;
                    self.imports_done.insert(u128::from(n), desc);
                    Applied::Same(Ok("()".to_owned()))
                }
            }
        }

        /// Runs a call on the engine, then (unless the engine's failure was
        /// injected) on the model; requires the same answer.
        fn both(
            &self,
            on_engine: impl FnOnce(&Engine) -> mxstate_api::Result<String>,
            on_model: impl FnOnce(&tokio::runtime::Runtime, &MemoryStore) -> Answer,
        ) -> Applied {
            let e = match &self.engine {
                Some(engine) => match on_engine(engine) {
                    Err(err) if is_injected(&err) => return Applied::Injected(err),
                    a => Some(a.map_err(|err| err.to_string())),
                },
                None => None,
            };
            let m = on_model(&self.rt, &self.model);
            if let Some(e) = e {
                assert_eq!(e, m, "engine (left) and model (right) disagree");
            }
            Applied::Same(m)
        }

        fn store(&mut self, w: Vec<GroupWrite>) -> Applied {
            self.store_at(w, None)
        }

        fn store_at(&mut self, w: Vec<GroupWrite>, now: Option<u64>) -> Applied {
            let new: Vec<NewGroup<'_>> = w
                .iter()
                .map(|g| NewGroup {
                    id: g.id,
                    room_id: &g.room_id,
                    event_id: &g.event_id,
                    state: match &g.content {
                        GroupContent::Delta { prev, delta } => GroupState::Delta { prev: *prev, delta },
                        GroupContent::Full(s) => GroupState::Full(s),
                    },
                })
                .collect();
            let a = self.both(
                |e| shown(e.store_groups_at(&new, now)),
                |rt, m| text(rt.block_on(m.store_state_groups(w.clone()))),
            );
            if let Applied::Same(Ok(ids)) = &a {
                let ids = parse_ids(ids);
                self.uni.groups.extend(&ids);
                self.groups.extend(ids);
                if let Some(g) = w.first() {
                    self.rooms.insert(g.room_id.clone());
                }
            }
            a
        }

        fn read(&mut self, picks: &[usize], filter: u8, room: RoomId) -> Applied {
            let gs: Vec<GroupId> = picks.iter().map(|&i| self.pick(i)).collect();
            let fs = filters();
            let f = fs[filter as usize % fs.len()].clone();
            let evs: Vec<EventId> = (1..=self.next_event.min(12)).map(event_name).collect();
            let g0 = gs.first().copied().unwrap_or(1);
            let mut engine_answer = None;
            if let Some(e) = &self.engine {
                let answers = [
                    shown(e.state_for_groups(&gs, &f).map(sorted_states)),
                    shown(e.state_group_delta(g0)),
                    shown(e.event_groups(&evs)),
                    shown(e.current_state(&room, &f).map(sorted_state)),
                    shown(e.room_groups(&room)),
                ];
                let mut out = Vec::new();
                for a in answers {
                    match a {
                        Err(err) if is_injected(&err) => return Applied::Injected(err),
                        a => out.push(a.map_err(|err| err.to_string())),
                    }
                }
                engine_answer = Some(out);
            }
            let m = &self.model;
            let model_answer = [
                text(
                    self.rt
                        .block_on(m.state_for_groups(gs.clone(), f.clone()))
                        .map(sorted_states),
                ),
                text(self.rt.block_on(m.state_group_delta(g0))),
                text(self.rt.block_on(m.state_groups_for_events(evs.clone()))),
                text(
                    self.rt
                        .block_on(m.current_state(room.clone(), f.clone()))
                        .map(sorted_state),
                ),
                text(self.rt.block_on(m.room_groups(room.clone()))),
            ];
            if let Some(e) = engine_answer {
                assert_eq!(
                    e,
                    model_answer.to_vec(),
                    "engine (left) and model (right) read differently"
                );
            }
            Applied::Same(Ok(format!("{model_answer:?}")))
        }
    }

    fn parse_ids(s: &str) -> Vec<GroupId> {
        s.trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect()
    }
}
