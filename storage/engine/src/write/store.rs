//! Storing new state groups inside a transaction.

use rustc_hash::FxHashMap;

use mxstate_api::{Error, EventId, GroupId, Result, RoomId, StateDelta, StateMap};

use crate::access::{chain_of, intern, Source};
use crate::delta::{apply, diff};
use crate::format::delta::Entry;
use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{EventNid, IKey, RoomNid, StrKind};
use crate::read::resolve::full_sorted;

use super::chain::{place, ChainPolicy, Placement, Runs};
use super::room_index;
use super::txn::Txn;

/// The state of a new group.
#[derive(Debug, Clone, Copy)]
pub enum GroupState<'a> {
    /// `prev`'s state with `delta` applied.
    Delta { prev: GroupId, delta: &'a StateDelta },
    /// The state of the group stored just before in the same call, with
    /// `delta` applied (a chain stored in one call, ids not known yet).
    DeltaOnPrevious { delta: &'a StateDelta },
    /// The whole state; the group has no prev.
    Full(&'a StateMap),
}

/// A group to store.
#[derive(Debug, Clone, Copy)]
pub struct NewGroup<'a> {
    /// A caller-chosen id (migrations), or `None` for the next free one.
    pub id: Option<GroupId>,
    pub room_id: &'a RoomId,
    pub event_id: &'a EventId,
    pub state: GroupState<'a>,
}

/// A Full group is stored as a delta on the room's latest group when the
/// difference is at most this many entries plus a quarter of the state.
const FULL_AS_DELTA_SLACK: usize = 64;

/// Per-call memory: each room's latest group, the group stored last, and
/// the nids of the strings of the call's groups met so far (by address,
/// see [`ByAddr`]).
#[derive(Default)]
pub struct Latest<'g> {
    groups: FxHashMap<RoomNid, GroupId>,
    previous: Option<GroupId>,
    keys: FxHashMap<(ByAddr<'g>, ByAddr<'g>), IKey>,
    events: FxHashMap<ByAddr<'g>, EventNid>,
}

/// A string of the groups of one call, compared by address and length.
///
/// Callers build their states from shared strings (`Arc<str>`), so the
/// same key or event usually comes back as the same bytes in memory from
/// group to group: remembering its nid by address saves the lookup by
/// text. Sound because every string remembered is borrowed for `'g`, the
/// whole call: while they are all alive and unchanged, two of them with
/// the same address and length hold the same text (and two empty ones
/// the same empty text).
#[derive(Clone, Copy)]
struct ByAddr<'g>(&'g str);

impl PartialEq for ByAddr<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_ptr() == other.0.as_ptr() && self.0.len() == other.0.len()
    }
}

impl Eq for ByAddr<'_> {}

impl std::hash::Hash for ByAddr<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.0.as_ptr() as usize).hash(h);
        self.0.len().hash(h);
    }
}

impl<'g> Latest<'g> {
    /// The IKey of `(t, s)`, interning them if new.
    fn key(&mut self, txn: &mut Txn<'_>, t: &'g str, s: &'g str) -> Result<IKey> {
        let k = (ByAddr(t), ByAddr(s));
        if let Some(&ik) = self.keys.get(&k) {
            return Ok(ik);
        }
        let ik = txn.intern_key(t, s)?;
        self.keys.insert(k, ik);
        Ok(ik)
    }

    /// The nid of event `e`, interning it if new.
    fn event(&mut self, txn: &mut Txn<'_>, e: &'g str) -> Result<EventNid> {
        if let Some(&n) = self.events.get(&ByAddr(e)) {
            return Ok(n);
        }
        let n = txn.intern(StrKind::Event, e)?;
        self.events.insert(ByAddr(e), n);
        Ok(n)
    }
}

/// Stores one group in `txn`. With `now_ms`, a pending deletion of its prev
/// group is bumped (Synapse's deletion protocol: the prev is in use).
pub fn store_group<'g>(
    txn: &mut Txn<'_>,
    policy: &ChainPolicy,
    latest: &mut Latest<'g>,
    g: &NewGroup<'g>,
    now_ms: Option<u64>,
) -> Result<GroupId> {
    let state = match g.state {
        GroupState::DeltaOnPrevious { delta } => GroupState::Delta {
            prev: latest
                .previous
                .ok_or_else(|| Error::internal("a group stored on the previous one must not come first in its call"))?,
            delta,
        },
        other => other,
    };
    let id = match g.id {
        Some(0) => return Err(Error::ReservedGroupId),
        Some(id) => {
            if txn.record(id)?.is_some() {
                return Err(Error::GroupIdTaken(id));
            }
            id
        }
        None => txn.next_group_id(),
    };
    let room = txn.intern_room(g.room_id.as_str())?;
    let event = txn.intern(StrKind::Event, g.event_id.as_str())?;
    // The new group's record and its parent's runs (none for a root).
    let (rec, parent_runs) = match state {
        GroupState::DeltaOnPrevious { .. } => return Err(Error::internal("DeltaOnPrevious resolved above")),
        GroupState::Delta { prev, delta } => {
            let prev_rec = txn
                .record(prev)?
                .filter(|r| !r.ghost)
                .ok_or(Error::UnknownGroup(prev))?;
            if prev_rec.room != room {
                let prev_room = intern::resolve_one(txn.kv(), txn.caches(), StrKind::Room, u64::from(prev_rec.room))?;
                return Err(Error::PrevGroupInOtherRoom {
                    group: id,
                    prev,
                    room: g.room_id.to_string(),
                    prev_room: prev_room.to_string(),
                });
            }
            let logical = intern_delta(txn, latest, delta)?;
            let (rec, runs) = on_top_of(txn, policy, room, event, prev, &logical, Some(logical.clone()), |t| {
                Ok(apply(&full_sorted(t, prev)?, &logical))
            })?;
            (rec, Some(runs))
        }
        GroupState::Full(state) => {
            let full = intern_state(txn, latest, state)?;
            let candidate = match latest.groups.get(&room) {
                Some(&c) => Some(c),
                None => room_index::latest(txn.kv(), room)?,
            };
            let mut rec = None;
            if let Some(c) = candidate {
                let base_state = full_sorted(txn, c)?;
                let d = diff(&base_state, &full);
                if d.len() <= FULL_AS_DELTA_SLACK + full.len() / 4 {
                    rec = Some(on_top_of(txn, policy, room, event, c, &d, None, |_| Ok(full.clone()))?);
                }
            }
            match rec {
                Some((r, runs)) => (r, Some(runs)),
                None => {
                    let r = GroupRecord {
                        room,
                        event,
                        level: policy.top(),
                        ghost: false,
                        prev: None,
                        physical: Physical::Snapshot(txn.put_snapshot(room, &full)?),
                        logical: None,
                    };
                    (r, None)
                }
            }
        }
    };
    let runs = parent_runs.map_or_else(Runs::default, |p| p.child(policy, rec.level));
    txn.runs().set(id, runs);
    txn.put_record(id, rec);
    room_index::append(txn, room, id)?;
    txn.group_used(id)?;
    latest.groups.insert(room, id);
    latest.previous = Some(id);
    if let (Some(now), GroupState::Delta { prev, .. }) = (now_ms, state) {
        super::deletion::bump(txn, prev, now)?;
    }
    Ok(id)
}

/// A record for a group whose state is `state(parent) + change`, with the
/// parent's runs; `logical` is the caller's delta against its prev (None
/// for a root). `full` gives the whole state if a snapshot is due.
#[allow(clippy::too_many_arguments)]
fn on_top_of(
    txn: &mut Txn<'_>,
    policy: &ChainPolicy,
    room: RoomNid,
    event: EventNid,
    parent: GroupId,
    change: &[Entry],
    logical: Option<Vec<Entry>>,
    full: impl FnOnce(&Txn<'_>) -> Result<Vec<(IKey, EventNid)>>,
) -> Result<(GroupRecord, Runs)> {
    let prev = logical.as_ref().map(|_| parent);
    let known = txn.runs().get(parent);
    let (mut placement, parent_runs) = place(txn, policy, parent, known)?;
    let mut physical = Vec::new();
    if let Placement::Delta { level, base, .. } = &placement {
        physical = placement.physical_delta(change);
        if *level > 0 && physical.len() >= policy.snapshot_min_delta() {
            // Deltas on the chain outgrowing its snapshot: reads would spend
            // more on deltas than on the snapshot. Start a new one.
            let chain = chain_of(txn, *base)?;
            let in_deltas: usize = physical.len()
                + chain
                    .deltas
                    .iter()
                    .map(|r| match &r.physical {
                        Physical::Delta { delta, .. } => delta.len(),
                        Physical::Snapshot(_) => 0,
                    })
                    .sum::<usize>();
            if in_deltas as u64 > txn.header(chain.snap)?.entries {
                placement = Placement::Snapshot;
            }
        }
    }
    match &placement {
        Placement::Delta { level, base, .. } => {
            let logical = logical.filter(|l| *base != parent || *l != physical);
            let rec = GroupRecord {
                room,
                event,
                level: *level,
                ghost: false,
                prev,
                physical: Physical::Delta {
                    base: *base,
                    delta: physical,
                },
                logical,
            };
            Ok((rec, parent_runs))
        }
        Placement::Snapshot => {
            let state = full(txn)?;
            let rec = GroupRecord {
                room,
                event,
                level: policy.top(),
                ghost: false,
                prev,
                physical: Physical::Snapshot(txn.put_snapshot(room, &state)?),
                logical,
            };
            Ok((rec, parent_runs))
        }
    }
}

fn intern_delta<'g>(txn: &mut Txn<'_>, latest: &mut Latest<'g>, delta: &'g StateDelta) -> Result<Vec<Entry>> {
    let mut out = Vec::with_capacity(delta.len());
    for (k, v) in delta {
        let ik = latest.key(txn, k.event_type(), k.state_key())?;
        let ev = match v {
            Some(e) => Some(latest.event(txn, e.as_str())?),
            None => None,
        };
        out.push((ik, ev));
    }
    out.sort_unstable_by_key(|e| e.0);
    Ok(out)
}

fn intern_state<'g>(txn: &mut Txn<'_>, latest: &mut Latest<'g>, state: &'g StateMap) -> Result<Vec<(IKey, EventNid)>> {
    let mut out = Vec::with_capacity(state.len());
    for (k, e) in state {
        let ik = latest.key(txn, k.event_type(), k.state_key())?;
        out.push((ik, latest.event(txn, e.as_str())?));
    }
    out.sort_unstable_by_key(|e| e.0);
    Ok(out)
}
