//! Deleting groups and rooms.
//!
//! Deleting a group re-bases its children instead of rewriting them: a
//! physical child of a delta group takes the deleted group's base and the
//! composition of both deltas; a logical child takes the deleted group's
//! prev and the composed logical delta (or becomes a root). A deleted
//! snapshot group with physical children stays as a hidden *ghost* record
//! until its last child goes, so no child is ever rewritten as a full copy.

use std::sync::Arc;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::format::delta::compose;
use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{self, RoomNid};
use crate::ids::GroupId;
use crate::kv::Cf;

use super::room_index;
use super::source::Source;
use super::txn::Txn;

/// Deletes `groups` of `room`, keeping every other group's state.
pub fn purge_groups(txn: &mut Txn<'_>, room: RoomNid, room_name: &str, groups: &[GroupId]) -> Result<()> {
    txn.rewrites_records = true;
    let members = room_index::members(txn.kv, room)?;
    let mut present: BTreeMap<GroupId, bool> = members.iter().copied().collect();
    let mut phys_children: FxHashMap<GroupId, Vec<GroupId>> = FxHashMap::default();
    let mut log_children: FxHashMap<GroupId, Vec<GroupId>> = FxHashMap::default();
    for &(g, _) in &members {
        let rec = txn.existing(g)?;
        if let Physical::Delta { base, .. } = rec.physical {
            phys_children.entry(base).or_default().push(g);
        }
        if let Some(p) = rec.prev {
            log_children.entry(p).or_default().push(g);
        }
    }
    for &g in groups {
        let rec = txn.record(g)?.filter(|r| !r.ghost).ok_or(Error::UnknownGroup(g))?;
        if rec.room != room {
            return Err(Error::GroupNotInRoom {
                group: g,
                room: room_name.to_owned(),
            });
        }
        let pkids = phys_children.remove(&g).unwrap_or_default();
        let lkids = log_children.remove(&g).unwrap_or_default();
        let mut touched: Vec<GroupId> = pkids.iter().chain(&lkids).copied().collect();
        touched.sort_unstable();
        touched.dedup();
        let new_base = match &rec.physical {
            Physical::Delta { base, delta } => Some((*base, delta.clone())),
            Physical::Snapshot(_) => None,
        };
        for c in touched {
            let child = txn.existing(c)?;
            let updated = rebase_child(&rec, g, new_base.as_ref(), &child);
            txn.put_record(c, updated);
        }
        if let Some((b, _)) = &new_base {
            let v = phys_children.entry(*b).or_default();
            v.retain(|&x| x != g);
            v.extend(pkids.iter().copied());
        }
        if let Some(p) = rec.prev {
            let v = log_children.entry(p).or_default();
            v.retain(|&x| x != g);
            v.extend(lkids.iter().copied());
        }
        forget_events(txn, g)?;
        match (&rec.physical, pkids.is_empty()) {
            (Physical::Snapshot(_), false) => {
                // Children still stand on this snapshot: keep it as a ghost.
                let ghost = GroupRecord {
                    ghost: true,
                    prev: None,
                    logical: None,
                    ..(*rec).clone()
                };
                txn.put_record(g, ghost);
                present.insert(g, true);
                phys_children.insert(g, pkids);
            }
            _ => {
                delete_group(txn, &mut present, g, &rec)?;
                if let Some((b, _)) = &new_base {
                    reap_ghost(txn, &mut present, *b, &mut phys_children)?;
                }
            }
        }
    }
    let ids: Vec<GroupId> = present.keys().copied().collect();
    let ghosts: Vec<GroupId> = present.iter().filter(|e| *e.1).map(|e| *e.0).collect();
    room_index::rewrite(txn, room, &ids, &ghosts)
}

/// A child's record once `deleted` (its prev and/or base) is gone.
fn rebase_child(
    deleted: &GroupRecord,
    g: GroupId,
    new_base: Option<&(GroupId, Vec<crate::format::delta::Entry>)>,
    child: &GroupRecord,
) -> GroupRecord {
    let old_logical = child.logical_delta().map(<[_]>::to_vec);
    let (prev, logical) = if child.prev == Some(g) {
        match (deleted.prev, deleted.logical_delta(), old_logical) {
            (Some(p), Some(dl), Some(cl)) => (Some(p), Some(compose(dl, &cl))),
            _ => (None, None),
        }
    } else {
        (child.prev, old_logical)
    };
    let physical = match (&child.physical, new_base) {
        (Physical::Delta { base, delta }, Some((b, d))) if *base == g => Physical::Delta {
            base: *b,
            delta: compose(d, delta),
        },
        (p, _) => p.clone(),
    };
    let logical = match (&prev, &physical, logical) {
        (None, _, _) => None,
        (Some(p), Physical::Delta { base, delta }, Some(l)) if base == p && *delta == l => None,
        (Some(_), _, l) => Some(l.unwrap_or_default()),
    };
    GroupRecord {
        prev,
        physical,
        logical,
        ..child.clone()
    }
}

fn delete_group(txn: &mut Txn<'_>, present: &mut BTreeMap<GroupId, bool>, g: GroupId, rec: &GroupRecord) -> Result<()> {
    txn.delete_record(g);
    present.remove(&g);
    if let Physical::Snapshot(s) = rec.physical {
        txn.unref_snapshot(s)?;
    }
    Ok(())
}

/// Deletes ghost `g` once nothing is stored against it.
fn reap_ghost(
    txn: &mut Txn<'_>,
    present: &mut BTreeMap<GroupId, bool>,
    g: GroupId,
    phys_children: &mut FxHashMap<GroupId, Vec<GroupId>>,
) -> Result<()> {
    let Some(rec) = txn.record(g)? else { return Ok(()) };
    let live = phys_children.get(&g).is_some_and(|v| !v.is_empty());
    if rec.ghost && !live {
        phys_children.remove(&g);
        delete_group(txn, present, g, &rec)?;
    }
    Ok(())
}

/// Removes the event mappings that point at `g`.
fn forget_events(txn: &mut Txn<'_>, g: GroupId) -> Result<()> {
    let mut events = Vec::new();
    txn.kv.scan_prefix(Cf::GroupEvents, &g.to_be_bytes(), &mut |k, _| {
        events.push(keys::suffix_u64(k, 8, "group_events key")?);
        Ok(true)
    })?;
    for e in events {
        txn.batch.delete(Cf::GroupEvents, keys::group_event_key(g, e).to_vec());
        txn.batch.delete(Cf::EventGroups, keys::event_key(e).to_vec());
    }
    Ok(())
}

/// Deletes everything stored for a room (its interned strings stay).
pub fn purge_room(txn: &mut Txn<'_>, room: RoomNid) -> Result<()> {
    txn.rewrites_records = true;
    for (g, _) in room_index::members(txn.kv, room)? {
        forget_events(txn, g)?;
        txn.delete_record(g);
    }
    room_index::rewrite(txn, room, &[], &[])?;
    let mut snaps = Vec::new();
    txn.kv
        .scan_prefix(Cf::SnapHashes, &keys::room_prefix(room), &mut |_, v| {
            let arr: [u8; 8] = v
                .try_into()
                .map_err(|_| Error::corrupt("snapshot hash entry", format!("room {room}"), "want 8 bytes"))?;
            snaps.push(u64::from_le_bytes(arr));
            Ok(true)
        })?;
    for s in snaps {
        let h: Arc<_> = txn.header(s)?;
        txn.drop_snapshot(s, &h);
    }
    let mut current = Vec::new();
    txn.kv
        .scan_prefix(Cf::CurrentState, &keys::room_prefix(room), &mut |k, _| {
            current.push(k.to_vec());
            Ok(true)
        })?;
    for k in current {
        txn.batch.delete(Cf::CurrentState, k);
    }
    Ok(())
}
