//! The crash loop: process crashes (SIGKILL) at random moments while a
//! child process writes to one RocksDB database, and what the database
//! holds after each of them.
//!
//! A child ([`child_main`], binary `crash-child`) applies a seeded random
//! sequence of operations: stores of single groups, multi-group batches
//! (chains), forks (two groups on one prev), full states, purges of groups,
//! room purges, event mappings and current state, all with explicit group
//! ids so that the model can replay them. It journals each operation: a
//! line `begin N <op>` before the call and `ack N ok|err ...` after it
//! returns (appended and flushed to a file: the page cache keeps it across
//! a SIGKILL).
//!
//! The parent ([`run_loop`]) kills the child with SIGKILL after a random
//! delay, reopens the database, requires [`Engine::check`] clean, and
//! compares every group ever named (its state under several filters and
//! its logical delta), the rooms' groups and current state, and the event
//! mappings with the reference model ([`MemoryStore`]) replayed to the last
//! acknowledged operation, or, when the kill came between `begin N` and
//! `ack N`, to the operation in flight: exactly one of the two must match
//! entirely, never a mix. It journals the outcome (`resolved N applied|lost`)
//! and starts the next child, which continues the same database from the
//! next operation: the kills accumulate on one growing database.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mxstate_api::{ConflictedSubgraph, GroupContent, GroupWrite, MemoryStore, StateStore};
use mxstate_engine::{
    CheckReport, Engine, EngineOptions, EngineStore, EventId, GroupId, RoomId, StateDelta, StateFilter, StateKey,
    StateMap,
};

use crate::small_policy_options;

/// A small deterministic random generator (SplitMix64): the same seed gives
/// the same numbers on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut r = Rng(seed);
        r.next_u64();
        r
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
    /// One element of `v`.
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        let i = usize::try_from(self.below(v.len() as u64)).ok()?;
        v.get(i).copied()
    }
}

/// A seed from the clock, for runs that were not given one.
pub fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Rng::new(nanos as u64 ^ u64::from(std::process::id())).next_u64() >> 16
}

/// The rooms the operations use: `!r0:x` .. `!r3:x`.
pub const ROOMS: u8 = 4;
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

/// A state entry: type index, state key index, event number.
pub type Entry = (u8, u8, u64);
/// A delta entry: type index, state key index, event number or removed.
pub type DeltaEntry = (u8, u8, Option<u64>);

/// The state a stored group gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Full(Vec<Entry>),
    Delta { prev: GroupId, delta: Vec<DeltaEntry> },
}

/// One group of a store operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOp {
    pub id: GroupId,
    pub room: u8,
    pub event: u64,
    pub content: Content,
}

/// One call on the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `store_state_groups`: one call, atomic, in order.
    Store(Vec<GroupOp>),
    /// `purge_unreferenced_groups`.
    PurgeGroups { room: u8, groups: Vec<GroupId> },
    /// `purge_room`.
    PurgeRoom { room: u8 },
    /// `set_state_groups_for_events`: `(event number, group)`.
    MapEvents(Vec<(u64, GroupId)>),
    /// `set_current_state`.
    CurrentState { room: u8, state: Vec<Entry> },
    /// `add_auth_events`: `(event number, auth event numbers)`.
    Auth { room: u8, events: Vec<(u64, Vec<u64>)> },
}

/// The room id of room number `r`.
pub fn room_id(r: u8) -> RoomId {
    RoomId::parse(format!("!r{r}:x")).expect("a valid room id")
}

/// The event id of event number `n`.
pub fn event_id(n: u64) -> EventId {
    mxstate_conformance::event_id(n)
}

fn state_key(t: u8, s: u8) -> StateKey {
    StateKey::new(TYPES[usize::from(t) % TYPES.len()], SKEYS[usize::from(s) % SKEYS.len()]).expect("a valid state key")
}

fn state_map(entries: &[Entry]) -> StateMap {
    entries
        .iter()
        .map(|&(t, s, e)| (state_key(t, s), event_id(e)))
        .collect()
}

fn state_delta(entries: &[DeltaEntry]) -> StateDelta {
    entries
        .iter()
        .map(|&(t, s, e)| (state_key(t, s), e.map(event_id)))
        .collect()
}

impl Op {
    /// The operation as one journal line (no newline).
    pub fn encode(&self) -> String {
        let mut w = Vec::<String>::new();
        let entries = |w: &mut Vec<String>, es: &[Entry]| {
            w.push(es.len().to_string());
            for &(t, s, e) in es {
                w.extend([t.to_string(), s.to_string(), e.to_string()]);
            }
        };
        match self {
            Op::Store(gs) => {
                w.extend(["store".to_owned(), gs.len().to_string()]);
                for g in gs {
                    w.extend([g.id.to_string(), g.room.to_string(), g.event.to_string()]);
                    match &g.content {
                        Content::Full(es) => {
                            w.push("full".to_owned());
                            entries(&mut w, es);
                        }
                        Content::Delta { prev, delta } => {
                            w.extend(["delta".to_owned(), prev.to_string(), delta.len().to_string()]);
                            for &(t, s, e) in delta {
                                w.extend([
                                    t.to_string(),
                                    s.to_string(),
                                    e.map_or("-".to_owned(), |e| e.to_string()),
                                ]);
                            }
                        }
                    }
                }
            }
            Op::PurgeGroups { room, groups } => {
                w.extend(["purge".to_owned(), room.to_string(), groups.len().to_string()]);
                w.extend(groups.iter().map(u64::to_string));
            }
            Op::PurgeRoom { room } => w.extend(["purge-room".to_owned(), room.to_string()]),
            Op::MapEvents(pairs) => {
                w.extend(["map".to_owned(), pairs.len().to_string()]);
                for (e, g) in pairs {
                    w.extend([e.to_string(), g.to_string()]);
                }
            }
            Op::CurrentState { room, state } => {
                w.extend(["current".to_owned(), room.to_string()]);
                entries(&mut w, state);
            }
            Op::Auth { room, events } => {
                w.extend(["auth".to_owned(), room.to_string(), events.len().to_string()]);
                for (e, auth) in events {
                    w.extend([e.to_string(), auth.len().to_string()]);
                    w.extend(auth.iter().map(u64::to_string));
                }
            }
        }
        w.join(" ")
    }

    /// Parses [`Op::encode`]'s text.
    pub fn decode(text: &str) -> Result<Op, String> {
        let mut t = Tokens(text.split(' '));
        let op = match t.word()? {
            "store" => {
                let n = t.num::<usize>()?;
                let mut gs = Vec::with_capacity(n);
                for _ in 0..n {
                    let (id, room, event) = (t.num()?, t.num()?, t.num()?);
                    let content = match t.word()? {
                        "full" => Content::Full(t.entries()?),
                        "delta" => {
                            let prev = t.num()?;
                            let k = t.num::<usize>()?;
                            let mut delta = Vec::with_capacity(k);
                            for _ in 0..k {
                                let (ty, s) = (t.num()?, t.num()?);
                                let e = match t.word()? {
                                    "-" => None,
                                    n => Some(n.parse().map_err(|_| format!("bad event number {n:?}"))?),
                                };
                                delta.push((ty, s, e));
                            }
                            Content::Delta { prev, delta }
                        }
                        other => return Err(format!("unknown group content {other:?}")),
                    };
                    gs.push(GroupOp {
                        id,
                        room,
                        event,
                        content,
                    });
                }
                Op::Store(gs)
            }
            "purge" => {
                let room = t.num()?;
                let n = t.num::<usize>()?;
                let groups = (0..n).map(|_| t.num()).collect::<Result<_, _>>()?;
                Op::PurgeGroups { room, groups }
            }
            "purge-room" => Op::PurgeRoom { room: t.num()? },
            "map" => {
                let n = t.num::<usize>()?;
                let pairs = (0..n)
                    .map(|_| Ok((t.num()?, t.num()?)))
                    .collect::<Result<_, String>>()?;
                Op::MapEvents(pairs)
            }
            "current" => Op::CurrentState {
                room: t.num()?,
                state: t.entries()?,
            },
            "auth" => {
                let room = t.num()?;
                let n = t.num::<usize>()?;
                let mut events = Vec::with_capacity(n);
                for _ in 0..n {
                    let e = t.num()?;
                    let k = t.num::<usize>()?;
                    events.push((e, (0..k).map(|_| t.num()).collect::<Result<_, _>>()?));
                }
                Op::Auth { room, events }
            }
            other => return Err(format!("unknown operation {other:?}")),
        };
        match t.0.next() {
            None => Ok(op),
            Some(extra) => Err(format!("trailing {extra:?} after the operation")),
        }
    }

    /// The groups the operation stores.
    pub fn stored_groups(&self) -> Vec<GroupId> {
        match self {
            Op::Store(gs) => gs.iter().map(|g| g.id).collect(),
            _ => Vec::new(),
        }
    }

    /// The events the operation maps to groups.
    pub fn mapped_events(&self) -> Vec<u64> {
        match self {
            Op::MapEvents(pairs) => pairs.iter().map(|p| p.0).collect(),
            _ => Vec::new(),
        }
    }

    /// A few words for reports.
    pub fn describe(&self) -> String {
        match self {
            Op::Store(gs) => {
                let forks = gs
                    .iter()
                    .filter_map(|g| match &g.content {
                        Content::Delta { prev, .. } => Some(*prev),
                        Content::Full(_) => None,
                    })
                    .collect::<Vec<_>>();
                let distinct: BTreeSet<_> = forks.iter().collect();
                let shape = if distinct.len() < forks.len() {
                    " with a fork"
                } else if gs.len() > 1 {
                    " (a chain)"
                } else {
                    ""
                };
                format!("store {} group(s){shape}", gs.len())
            }
            Op::PurgeGroups { room, groups } => format!("purge {} group(s) of room {room}", groups.len()),
            Op::PurgeRoom { room } => format!("purge room {room}"),
            Op::MapEvents(pairs) => format!("map {} event(s)", pairs.len()),
            Op::CurrentState { room, state } => format!("current state of room {room} ({} keys)", state.len()),
            Op::Auth { room, events } => format!("auth events of {} event(s) in room {room}", events.len()),
        }
    }
}

struct Tokens<'a>(std::str::Split<'a, char>);

impl<'a> Tokens<'a> {
    fn word(&mut self) -> Result<&'a str, String> {
        self.0.next().ok_or_else(|| "operation text ends early".to_owned())
    }
    fn num<T: std::str::FromStr>(&mut self) -> Result<T, String> {
        let w = self.word()?;
        w.parse().map_err(|_| format!("bad number {w:?}"))
    }
    fn entries(&mut self) -> Result<Vec<Entry>, String> {
        let n = self.num::<usize>()?;
        (0..n).map(|_| Ok((self.num()?, self.num()?, self.num()?))).collect()
    }
}

/// Group ids of operation `n`: `8n+1 ..= 8n+8`, never reused, whatever
/// became of the operation.
fn group_id(n: u64, j: u64) -> GroupId {
    n * 8 + 1 + j
}

/// Operation `n` of the sequence of `seed`, given the live groups of each
/// room (`rooms[r]`, from the database the child continues).
pub fn generate(seed: u64, n: u64, rooms: &[Vec<GroupId>]) -> Op {
    let mut r = Rng::new(seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
    let mut next_event = n * 100;
    let mut event = || {
        next_event += 1;
        next_event
    };
    let room = r.below(u64::from(ROOMS)) as u8;
    let live: Vec<GroupId> = rooms.get(usize::from(room)).cloned().unwrap_or_default();
    let any_live: Vec<GroupId> = rooms.iter().flatten().copied().collect();
    let full = |r: &mut Rng, event: &mut dyn FnMut() -> u64, max: u64| -> Vec<Entry> {
        (0..r.below(max + 1))
            .map(|_| (r.below(4) as u8, r.below(9) as u8, event()))
            .collect()
    };
    let delta = |r: &mut Rng, event: &mut dyn FnMut() -> u64| -> Vec<DeltaEntry> {
        (0..r.range(1, 4))
            .map(|_| {
                let removed = r.below(5) == 0;
                (r.below(4) as u8, r.below(9) as u8, (!removed).then(&mut *event))
            })
            .collect()
    };
    // The first group of a store: on a live group of the room, or a full
    // state when the room has none (or one time in eight).
    let first = |r: &mut Rng, event: &mut dyn FnMut() -> u64| -> GroupOp {
        let content = match r.pick(&live) {
            Some(prev) if r.below(8) != 0 => Content::Delta {
                prev,
                delta: delta(r, event),
            },
            _ => Content::Full(full(r, event, 12)),
        };
        GroupOp {
            id: group_id(n, 0),
            room,
            event: event(),
            content,
        }
    };
    let on = |r: &mut Rng, event: &mut dyn FnMut() -> u64, j: u64, prev: GroupId| GroupOp {
        id: group_id(n, j),
        room,
        event: event(),
        content: Content::Delta {
            prev,
            delta: delta(r, event),
        },
    };
    let roll = r.below(100);
    match roll {
        // A chain of 2 to 5 groups in one call.
        35..50 => {
            let mut gs = vec![first(&mut r, &mut event)];
            for j in 1..r.range(2, 5) {
                let prev = gs.last().map_or(0, |g| g.id);
                gs.push(on(&mut r, &mut event, j, prev));
            }
            Op::Store(gs)
        }
        // A fork: two groups on one prev, sometimes a third on the first.
        50..60 => {
            let mut gs = Vec::new();
            let base = match r.pick(&live) {
                Some(g) if r.below(3) != 0 => g,
                _ => {
                    let g = GroupOp {
                        id: group_id(n, 0),
                        room,
                        event: event(),
                        content: Content::Full(full(&mut r, &mut event, 12)),
                    };
                    gs.push(g);
                    group_id(n, 0)
                }
            };
            gs.push(on(&mut r, &mut event, 1, base));
            gs.push(on(&mut r, &mut event, 2, base));
            if r.below(2) == 0 {
                gs.push(on(&mut r, &mut event, 3, group_id(n, 1)));
            }
            Op::Store(gs)
        }
        // A full state, sometimes with a group on it.
        60..66 => {
            let mut gs = vec![GroupOp {
                id: group_id(n, 0),
                room,
                event: event(),
                content: Content::Full(full(&mut r, &mut event, 12)),
            }];
            if r.below(2) == 0 {
                gs.push(on(&mut r, &mut event, 1, group_id(n, 0)));
            }
            Op::Store(gs)
        }
        66..78 if !live.is_empty() => {
            let mut pool = live.clone();
            let mut groups = Vec::new();
            for _ in 0..r.range(1, 3).min(pool.len() as u64) {
                let i = r.below(pool.len() as u64) as usize;
                groups.push(pool.swap_remove(i));
            }
            Op::PurgeGroups { room, groups }
        }
        78..81 if !live.is_empty() => Op::PurgeRoom { room },
        81..92 if !any_live.is_empty() => {
            let pairs = (0..r.range(1, 4))
                .map(|_| {
                    let e = if r.below(2) == 0 || n == 0 {
                        event()
                    } else {
                        // An event of an earlier operation: maybe mapped
                        // already, maybe a group's own event.
                        (n - 1 - r.below(n.min(300))) * 100 + r.range(1, 3)
                    };
                    (e, r.pick(&any_live).unwrap_or(1))
                })
                .collect();
            Op::MapEvents(pairs)
        }
        92..100 => Op::CurrentState {
            room,
            state: full(&mut r, &mut event, 8),
        },
        // Auth events: new events whose auth events are earlier events
        // (any, added or not) and the call's own earlier events; one call
        // in eight also adds one of its events again with other auth
        // events, which must fail and write nothing.
        30..35 => auth_op(&mut r, n, room, &mut event),
        // One group (also the fallback of the cases above with nothing to
        // work on).
        _ => Op::Store(vec![first(&mut r, &mut event)]),
    }
}

/// An [`Op::Auth`] of operation `n` in `room` (see [`generate`]).
pub fn auth_op(r: &mut Rng, n: u64, room: u8, event: &mut dyn FnMut() -> u64) -> Op {
    let mut events: Vec<(u64, Vec<u64>)> = Vec::new();
    for _ in 0..r.range(1, 4) {
        let mut auth = Vec::new();
        for _ in 0..r.below(4) {
            let a = match r.pick(&events.iter().map(|e| e.0).collect::<Vec<_>>()) {
                Some(own) if r.below(2) == 0 => own,
                _ if n == 0 => 1,
                _ => (n - 1 - r.below(n.min(60))) * 100 + r.range(1, 6),
            };
            if !auth.contains(&a) {
                auth.push(a);
            }
        }
        events.push((event(), auth));
    }
    if r.below(8) == 0 {
        if let Some((e, auth)) = events.first().cloned() {
            let mut other = auth;
            other.push(event());
            events.push((e, other));
        }
    }
    Op::Auth { room, events }
}

/// Applies `op` to `store`.
pub async fn apply(store: &dyn StateStore, op: &Op) -> mxstate_api::Result<()> {
    match op {
        Op::Store(gs) => {
            let writes = gs
                .iter()
                .map(|g| GroupWrite {
                    id: Some(g.id),
                    room_id: room_id(g.room),
                    event_id: event_id(g.event),
                    content: match &g.content {
                        Content::Full(es) => GroupContent::Full(state_map(es)),
                        Content::Delta { prev, delta } => GroupContent::Delta {
                            prev: *prev,
                            delta: state_delta(delta),
                        },
                    },
                })
                .collect();
            let ids = store.store_state_groups(writes).await?;
            let want: Vec<GroupId> = gs.iter().map(|g| g.id).collect();
            if ids != want {
                return Err(mxstate_api::Error::internal(format!(
                    "stored groups got ids {ids:?}, not the explicit {want:?}"
                )));
            }
            Ok(())
        }
        Op::PurgeGroups { room, groups } => store.purge_unreferenced_groups(room_id(*room), groups.clone()).await,
        Op::PurgeRoom { room } => store.purge_room(room_id(*room)).await,
        Op::MapEvents(pairs) => {
            store
                .set_state_groups_for_events(pairs.iter().map(|&(e, g)| (event_id(e), g)).collect())
                .await
        }
        Op::CurrentState { room, state } => store.set_current_state(room_id(*room), state_map(state)).await,
        Op::Auth { room, events } => {
            store
                .add_auth_events(
                    room_id(*room),
                    events
                        .iter()
                        .map(|(e, auth)| (event_id(*e), auth.iter().map(|&a| event_id(a)).collect()))
                        .collect(),
                )
                .await
        }
    }
}

/// The filters every group and current state is read under: everything,
/// one type, type+key pairs, include_others with a set, all but a type.
pub fn filters() -> Vec<StateFilter> {
    vec![
        StateFilter::all(),
        StateFilter::from_types([("m.room.member", None)]),
        StateFilter::from_types([("m.room.power_levels", Some("")), ("m.room.member", Some("@u1:x"))]),
        StateFilter::from_types([("m.room.member", Some("@u2:x")), ("org.example", Some("tab\there"))])
            .with_include_others(true),
        StateFilter::all_except_types(["m.room.member"]),
    ]
}

/// Everything the comparison reads: what -> answer.
pub type Observation = BTreeMap<String, String>;

/// The groups and events ever named by an operation (also lost ones).
#[derive(Debug, Default, Clone)]
pub struct Named {
    pub groups: BTreeSet<GroupId>,
    pub events: BTreeSet<u64>,
    /// Events named by auth operations, by room.
    pub auth: BTreeMap<u8, BTreeSet<u64>>,
}

impl Named {
    /// Adds the groups and events `op` names.
    pub fn add(&mut self, op: &Op) {
        self.groups.extend(op.stored_groups());
        self.events.extend(op.mapped_events());
        if let Op::Auth { room, events } = op {
            let named = self.auth.entry(*room).or_default();
            for (e, auth) in events {
                named.insert(*e);
                named.extend(auth);
            }
        }
    }
}

fn shown_state(m: &StateMap) -> String {
    let mut v: Vec<(&str, &str, &str)> = m
        .iter()
        .map(|(k, e)| (k.event_type(), k.state_key(), e.as_str()))
        .collect();
    v.sort_unstable();
    format!("{v:?}")
}

fn shown<T>(r: mxstate_api::Result<T>, f: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => f(v),
        Err(e) => format!("error {:?}", e.kind()),
    }
}

/// Reads everything the comparison covers from `store`.
pub async fn observe(store: &dyn StateStore, named: &Named) -> Observation {
    let mut out = Observation::new();
    let fs = filters();
    for r in 0..ROOMS {
        let groups = store.room_groups(room_id(r)).await;
        out.insert(format!("room {r} groups"), shown(groups, |g| format!("{g:?}")));
        for (i, f) in fs.iter().enumerate() {
            let cur = store.current_state(room_id(r), f.clone()).await;
            out.insert(format!("room {r} current, filter {i}"), shown(cur, |m| shown_state(&m)));
        }
    }
    for &g in &named.groups {
        match store.state_for_groups(vec![g], StateFilter::all()).await {
            Err(e) => {
                out.insert(format!("group {g}"), format!("error {:?}", e.kind()));
            }
            Ok(_) => {
                out.insert(format!("group {g}"), "exists".to_owned());
                for (i, f) in fs.iter().enumerate() {
                    let s = store.state_for_groups(vec![g], f.clone()).await;
                    let s = shown(s, |m| m.get(&g).map_or_else(|| "missing".to_owned(), shown_state));
                    out.insert(format!("group {g} state, filter {i}"), s);
                }
                let d = store.state_group_delta(g).await;
                out.insert(format!("group {g} delta"), shown(d, |d| format!("{d:?}")));
            }
        }
    }
    // Auth questions: the chain of every named event of a room, and the
    // difference of two halves with a conflicted third.
    for (&r, evs) in &named.auth {
        let evs: Vec<EventId> = evs.iter().map(|&e| event_id(e)).collect();
        let chain = store.auth_chain(room_id(r), evs.clone(), false).await;
        out.insert(format!("room {r} auth chain"), shown(chain, |c| format!("{c:?}")));
        let take = |k: usize| -> BTreeSet<EventId> { evs.iter().skip(k).step_by(2).cloned().collect() };
        let conflicted = ConflictedSubgraph {
            conflicted: evs.iter().step_by(3).cloned().collect(),
            additional_backwards_reachable: evs.iter().skip(1).step_by(5).cloned().collect(),
        };
        let d = store
            .auth_chain_difference(room_id(r), vec![take(0), take(1)], Some(conflicted))
            .await;
        out.insert(format!("room {r} auth difference"), shown(d, |d| format!("{d:?}")));
    }
    let events: Vec<EventId> = named.events.iter().map(|&e| event_id(e)).collect();
    match store.state_groups_for_events(events).await {
        Ok(m) => {
            for &e in &named.events {
                let g = m.get(&event_id(e)).map_or_else(|| "none".to_owned(), u64::to_string);
                out.insert(format!("event $e{e}"), g);
            }
        }
        Err(e) => {
            out.insert("events".to_owned(), format!("error {:?}", e.kind()));
        }
    }
    out
}

/// The first `limit` differences between two observations, as lines.
pub fn differences(db: &Observation, model: &Observation, limit: usize) -> Vec<String> {
    let keys: BTreeSet<&String> = db.keys().chain(model.keys()).collect();
    keys.into_iter()
        .filter(|k| db.get(*k) != model.get(*k))
        .take(limit)
        .map(|k| {
            let none = "(not read)".to_owned();
            format!(
                "{k}: database {} / model {}",
                db.get(k).unwrap_or(&none),
                model.get(k).unwrap_or(&none)
            )
        })
        .collect()
}

/// Whether `check()` found nothing wrong.
pub fn check_clean(report: &CheckReport) -> Result<(), String> {
    if report.is_clean() {
        return Ok(());
    }
    let shown: Vec<String> = report
        .problems
        .iter()
        .take(10)
        .map(|p| format!("{} at {}: {}", p.invariant, p.location, p.detail))
        .collect();
    Err(format!(
        "check() found {} problem(s): {}",
        report.problems_total,
        shown.join("; ")
    ))
}

/// The engine options of the crash loop (a tiny chain policy, so that
/// checkpoints, snapshots and ghosts happen within a few groups).
pub fn engine_options() -> EngineOptions {
    EngineOptions {
        create: false,
        ..small_policy_options()
    }
}

/// A journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The child is about to apply operation N.
    Begin(u64, Op),
    /// Operation N returned: `Ok` or the error's kind and message.
    Ack(u64, Result<(), String>),
    /// The parent found operation N, in flight at a kill, applied or not.
    Resolved(u64, bool),
}

impl Line {
    fn index(&self) -> u64 {
        match self {
            Line::Begin(n, _) | Line::Ack(n, _) | Line::Resolved(n, _) => *n,
        }
    }

    fn encode(&self) -> String {
        match self {
            Line::Begin(n, op) => format!("begin {n} {}\n", op.encode()),
            Line::Ack(n, Ok(())) => format!("ack {n} ok\n"),
            Line::Ack(n, Err(e)) => format!("ack {n} err {}\n", e.replace('\n', " ")),
            Line::Resolved(n, applied) => {
                format!("resolved {n} {}\n", if *applied { "applied" } else { "lost" })
            }
        }
    }

    fn decode(line: &str) -> Result<Line, String> {
        let mut parts = line.splitn(3, ' ');
        let (what, n, rest) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
        let n: u64 = n
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("journal line without an operation number: {line:?}"))?;
        match what {
            Some("begin") => Ok(Line::Begin(
                n,
                Op::decode(rest).map_err(|e| format!("{e} in {line:?}"))?,
            )),
            Some("ack") if rest == "ok" => Ok(Line::Ack(n, Ok(()))),
            Some("ack") => Ok(Line::Ack(n, Err(rest.trim_start_matches("err ").to_owned()))),
            Some("resolved") => Ok(Line::Resolved(n, rest == "applied")),
            _ => Err(format!("unknown journal line {line:?}")),
        }
    }
}

/// Appends one line to the journal in one write (the page cache keeps it
/// across a SIGKILL of the writer).
fn append(journal: &mut File, line: &Line) -> Result<(), String> {
    journal
        .write_all(line.encode().as_bytes())
        .and_then(|()| journal.flush())
        .map_err(|e| format!("journal: {e}"))
}

/// Reads the complete lines of the journal from byte `from`; returns them
/// and the offset after the last complete line.
fn read_journal(path: &Path, from: u64) -> Result<(Vec<Line>, u64), String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.seek(SeekFrom::Start(from)).map_err(|e| format!("journal: {e}"))?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(|e| format!("journal: {e}"))?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let lines = text[..complete]
        .lines()
        .map(Line::decode)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((lines, from + complete as u64))
}

/// The child: continues the sequence of `--seed` on `--db` from the
/// operation after the journal's last, until killed (or `--max-ops`).
///
/// Arguments: `--db DIR --journal FILE --seed S [--max-ops N]`.
pub fn child_main(args: &[String]) -> Result<(), String> {
    let mut db = None;
    let mut journal_path = None;
    let mut seed = None;
    let mut max_ops = u64::MAX;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--db" => db = Some(PathBuf::from(value()?)),
            "--journal" => journal_path = Some(PathBuf::from(value()?)),
            "--seed" => seed = Some(value()?.parse::<u64>().map_err(|e| format!("--seed: {e}"))?),
            "--max-ops" => max_ops = value()?.parse().map_err(|e| format!("--max-ops: {e}"))?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let (Some(db), Some(journal_path), Some(seed)) = (db, journal_path, seed) else {
        return Err("usage: crash-child --db DIR --journal FILE --seed S [--max-ops N]".to_owned());
    };
    let (lines, _) = read_journal(&journal_path, 0)?;
    let first = lines.last().map_or(0, |l| l.index() + 1);
    let mut journal = OpenOptions::new()
        .append(true)
        .open(&journal_path)
        .map_err(|e| format!("{}: {e}", journal_path.display()))?;
    let rt = crate::runtime();
    let engine = mxstate_rocks::open(&db, engine_options()).map_err(|e| format!("open {}: {e}", db.display()))?;
    let store = EngineStore::new(Arc::new(engine));
    for n in first..first.saturating_add(max_ops) {
        let mut rooms = Vec::new();
        for r in 0..ROOMS {
            rooms.push(
                rt.block_on(store.room_groups(room_id(r)))
                    .map_err(|e| format!("room_groups: {e}"))?,
            );
        }
        let op = generate(seed, n, &rooms);
        append(&mut journal, &Line::Begin(n, op.clone()))?;
        let result = rt.block_on(apply(&store, &op));
        append(
            &mut journal,
            &Line::Ack(n, result.map_err(|e| format!("{:?} {e}", e.kind()))),
        )?;
    }
    Ok(())
}

/// What the parent found after one kill.
#[derive(Debug, Clone, Default)]
pub struct Settled {
    /// Operations acknowledged since the previous kill.
    pub acked: u64,
    /// Of those, the ones the store refused (the model refused them too).
    pub refused: u64,
    /// The operation in flight at the kill, and whether it was applied.
    pub in_flight: Option<(u64, String, bool)>,
    /// Groups existing after the kill.
    pub groups: usize,
    /// Answers compared.
    pub answers: usize,
}

/// The parent's side: the model and the journal position.
pub struct Parent {
    db: PathBuf,
    journal: PathBuf,
    offset: u64,
    model: MemoryStore,
    named: Named,
    rt: tokio::runtime::Runtime,
}

impl Parent {
    /// A parent for the database `db` and journal `journal` (both new).
    pub fn new(db: &Path, journal: &Path) -> Self {
        Parent {
            db: db.to_owned(),
            journal: journal.to_owned(),
            offset: 0,
            model: MemoryStore::new(),
            named: Named::default(),
            rt: crate::runtime(),
        }
    }

    /// Creates the database and the journal.
    pub fn create(&self) -> Result<(), String> {
        mxstate_rocks::open(
            &self.db,
            EngineOptions {
                create: true,
                ..engine_options()
            },
        )
        .map_err(|e| format!("create {}: {e}", self.db.display()))?;
        File::create(&self.journal).map_err(|e| format!("{}: {e}", self.journal.display()))?;
        Ok(())
    }

    /// After a child died: replays its journal into the model, reopens the
    /// database, checks it and compares it with the model.
    pub fn settle(&mut self) -> Result<Settled, String> {
        let (lines, end) = read_journal(&self.journal, self.offset)?;
        // A line cut short by the kill: the operation was not begun.
        let f = OpenOptions::new()
            .write(true)
            .open(&self.journal)
            .map_err(|e| format!("journal: {e}"))?;
        f.set_len(end).map_err(|e| format!("journal: {e}"))?;
        drop(f);
        self.offset = end;
        let mut out = Settled::default();
        let mut pending: Option<(u64, Op)> = None;
        for line in lines {
            match line {
                Line::Begin(n, op) => {
                    if let Some((p, _)) = &pending {
                        return Err(format!("journal: operation {n} begun while {p} was not acknowledged"));
                    }
                    self.named.add(&op);
                    pending = Some((n, op));
                }
                Line::Ack(n, result) => {
                    let Some((p, op)) = pending.take().filter(|(p, _)| *p == n) else {
                        return Err(format!("journal: ack of operation {n}, which was not begun"));
                    };
                    let model = self.rt.block_on(apply(&self.model, &op));
                    match (&result, &model) {
                        (Ok(()), Ok(())) => {}
                        (Err(_), Err(_)) => out.refused += 1,
                        _ => {
                            return Err(format!(
                                "operation {p} ({}): the database answered {result:?}, the model {:?}\n  op: {}",
                                op.describe(),
                                model.map_err(|e| e.to_string()),
                                op.encode()
                            ))
                        }
                    }
                    out.acked += 1;
                }
                Line::Resolved(n, _) => return Err(format!("journal: a child wrote a resolution of {n}")),
            }
        }
        let engine = Arc::new(
            mxstate_rocks::open(&self.db, engine_options())
                .map_err(|e| format!("reopening {} after the kill: {e}", self.db.display()))?,
        );
        let report = engine.check().map_err(|e| format!("check() failed to run: {e}"))?;
        check_clean(&report)?;
        let store = EngineStore::new(engine.clone());
        let db = self.rt.block_on(observe(&store, &self.named));
        let before = self.rt.block_on(observe(&self.model, &self.named));
        out.answers = db.len();
        if let Some((n, op)) = pending {
            // Not applied: the database reads as the model before it.
            // Applied: as the model with it (a refused operation changes
            // nothing). Anything else is a mix.
            let applied = if db == before {
                false
            } else {
                let _ = self.rt.block_on(apply(&self.model, &op));
                let after = self.rt.block_on(observe(&self.model, &self.named));
                if db != after {
                    return Err(format!(
                        "after a kill during operation {n} ({}), the database matches neither the model before \
                         it nor after it\n  op: {}\n  differences from before:\n    {}\n  differences from after:\n    {}",
                        op.describe(),
                        op.encode(),
                        differences(&db, &before, 12).join("\n    "),
                        differences(&db, &after, 12).join("\n    ")
                    ));
                }
                true
            };
            out.in_flight = Some((n, op.describe(), applied));
            let mut j = OpenOptions::new()
                .append(true)
                .open(&self.journal)
                .map_err(|e| format!("journal: {e}"))?;
            append(&mut j, &Line::Resolved(n, applied))?;
            self.offset = j.metadata().map_err(|e| format!("journal: {e}"))?.len();
        } else if db != before {
            return Err(format!(
                "after a kill between operations, the database differs from the model:\n    {}",
                differences(&db, &before, 12).join("\n    ")
            ));
        }
        out.groups = db
            .iter()
            .filter(|(k, v)| k.starts_with("group ") && *v == "exists")
            .count();
        Ok(out)
    }
}

/// How to run the crash loop.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// The `crash-child` binary.
    pub child: PathBuf,
    /// A directory for the database, the journal and the children's stderr.
    pub dir: PathBuf,
    pub seed: u64,
    pub kills: u64,
    /// The delay before each kill is drawn from `min..=max` milliseconds.
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Before the last kill, wait (up to a minute) until that child has
    /// acknowledged this many operations, so that a run on a slow machine
    /// still kills a child at work at least once.
    pub last_kill_after_acks: u64,
}

/// The figures of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub kills: u64,
    /// Operations acknowledged by the children.
    pub acked: u64,
    /// Acknowledged operations the store refused (the model refused them too).
    pub refused: u64,
    /// Kills that landed between `begin` and `ack`.
    pub mid_op: u64,
    /// Of those, operations found applied, and found not applied.
    pub mid_op_applied: u64,
    pub mid_op_lost: u64,
    /// Kills after which the database disagreed with the model (the run
    /// stops at the first).
    pub mismatches: u64,
    /// Groups existing at the end.
    pub groups: usize,
    /// Answers compared after the last kill.
    pub answers: usize,
    pub bytes_on_disk: u64,
    pub elapsed: Duration,
}

/// Runs the crash loop; `report` gets one line per kill. Returns the
/// figures, or the first failure (with the figures so far).
pub fn run_loop(cfg: &LoopConfig, report: &mut dyn FnMut(&str)) -> Result<Summary, (Summary, String)> {
    let start = Instant::now();
    let db = cfg.dir.join("db");
    let journal = cfg.dir.join("journal");
    let stderr_path = cfg.dir.join("children.stderr");
    let mut parent = Parent::new(&db, &journal);
    let mut sum = Summary::default();
    parent.create().map_err(|e| (sum.clone(), e))?;
    let mut timing = Rng::new(cfg.seed ^ 0x6B69_6C6C);
    for kill in 1..=cfg.kills {
        let fail = |sum: &Summary, e: String| (sum.clone(), format!("kill {kill} (seed {}): {e}", cfg.seed));
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|e| fail(&sum, format!("{}: {e}", stderr_path.display())))?;
        let journal_start = std::fs::metadata(&journal).map(|m| m.len()).unwrap_or_default();
        let mut child = Command::new(&cfg.child)
            .arg("--db")
            .arg(&db)
            .arg("--journal")
            .arg(&journal)
            .arg("--seed")
            .arg(cfg.seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| fail(&sum, format!("starting {}: {e}", cfg.child.display())))?;
        if kill == cfg.kills && cfg.last_kill_after_acks > 0 {
            wait_for_acks(&journal, journal_start, cfg.last_kill_after_acks, &mut child).map_err(|e| fail(&sum, e))?;
        }
        let delay = timing.range(cfg.min_delay_ms, cfg.max_delay_ms);
        std::thread::sleep(Duration::from_millis(delay));
        let exited = child.try_wait().map_err(|e| fail(&sum, format!("child: {e}")))?;
        if let Some(status) = exited {
            let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            return Err(fail(
                &sum,
                format!("the child exited by itself ({status}): {}", tail.join(" / ")),
            ));
        }
        // Child::kill is SIGKILL on Unix.
        child.kill().map_err(|e| fail(&sum, format!("kill: {e}")))?;
        child.wait().map_err(|e| fail(&sum, format!("wait: {e}")))?;
        sum.kills += 1;
        let settled = match parent.settle() {
            Ok(s) => s,
            Err(e) => {
                sum.mismatches += 1;
                sum.elapsed = start.elapsed();
                return Err(fail(&sum, e));
            }
        };
        sum.acked += settled.acked;
        sum.refused += settled.refused;
        sum.groups = settled.groups;
        sum.answers = settled.answers;
        let flight = match &settled.in_flight {
            Some((n, what, applied)) => {
                sum.mid_op += 1;
                if *applied {
                    sum.mid_op_applied += 1;
                } else {
                    sum.mid_op_lost += 1;
                }
                let outcome = if *applied { "found applied" } else { "found not applied" };
                format!("mid-op: operation {n} ({what}) {outcome}")
            }
            None => "between operations".to_owned(),
        };
        report(&format!(
            "kill {kill:>3} after {delay:>3} ms: {} ops acked ({} in all), {flight}; check clean, {} answers \
             match ({} groups)",
            settled.acked, sum.acked, settled.answers, settled.groups
        ));
    }
    sum.bytes_on_disk = dir_bytes(&db);
    sum.elapsed = start.elapsed();
    Ok(sum)
}

/// Waits until the journal holds `n` acknowledgements after byte `from`
/// (or the child exits, or a minute passes: the child is stuck).
fn wait_for_acks(journal: &Path, from: u64, n: u64, child: &mut std::process::Child) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let mut text = String::new();
        if let Ok(mut f) = File::open(journal) {
            if f.seek(SeekFrom::Start(from)).is_ok() {
                let _ = f.read_to_string(&mut text);
            }
        }
        if text.lines().filter(|l| l.starts_with("ack ")).count() as u64 >= n {
            return Ok(());
        }
        if child.try_wait().map_err(|e| format!("child: {e}"))?.is_some() || start.elapsed() > Duration::from_secs(60) {
            return Err(format!("the child acknowledged fewer than {n} operations in a minute"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or_default()
}

impl Summary {
    /// The figures, one per line.
    pub fn render(&self, seed: u64) -> String {
        format!(
            "seed                   {seed}\n\
             kills                  {}\n\
             ops acknowledged       {} (refused by store and model alike: {})\n\
             kills mid-op           {} (found applied {}, found not applied {})\n\
             mismatches             {}\n\
             groups at the end      {}\n\
             answers compared last  {}\n\
             database bytes         {}\n\
             duration               {:.1} s",
            self.kills,
            self.acked,
            self.refused,
            self.mid_op,
            self.mid_op_applied,
            self.mid_op_lost,
            self.mismatches,
            self.groups,
            self.answers,
            self.bytes_on_disk,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The engine over the database of a crash-loop directory, for tests.
pub fn open_engine(db: &Path) -> mxstate_api::Result<Engine> {
    mxstate_rocks::open(db, engine_options())
}
