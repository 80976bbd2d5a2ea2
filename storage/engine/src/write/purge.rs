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

use mxstate_api::{Error, GroupId, Result};

use crate::access::Source;
use crate::delta::compose;
use crate::format::delta::Entry;
use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{self, RoomNid};
use crate::format::values;
use crate::kv::Cf;

use super::room_index;
use super::txn::Txn;

/// Deletes `groups` of `room`, keeping every other group's state.
pub fn purge_groups(txn: &mut Txn<'_>, room: RoomNid, room_name: &str, groups: &[GroupId]) -> Result<()> {
    txn.rewriting_records();
    let members = room_index::members(txn.kv(), room)?;
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
        forget_deletion_marks(txn, g)?;
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
    new_base: Option<&(GroupId, Vec<Entry>)>,
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

/// Removes the deletion-protocol marks of `g` (it is gone).
fn forget_deletion_marks(txn: &mut Txn<'_>, g: GroupId) -> Result<()> {
    if txn.pending(g)?.is_some() {
        txn.set_pending(g, None)?;
    }
    for (instance, _) in txn.persisting(g)? {
        txn.set_persisting(g, &instance, None);
    }
    Ok(())
}

/// Removes the event mappings that point at `g`.
fn forget_events(txn: &mut Txn<'_>, g: GroupId) -> Result<()> {
    let mut parts = Vec::new();
    txn.kv()
        .scan_prefix(Cf::GroupEvents, &keys::group_key(g), &mut |k, _| {
            parts.push(k.get(8..).unwrap_or_default().to_vec());
            Ok(true)
        })?;
    for part in parts {
        txn.unmap_part(&part, g)?;
    }
    Ok(())
}

/// Deletes everything stored for a room (its interned strings stay).
pub fn purge_room(txn: &mut Txn<'_>, room: RoomNid) -> Result<()> {
    txn.rewriting_records();
    for (g, _) in room_index::members(txn.kv(), room)? {
        forget_events(txn, g)?;
        forget_deletion_marks(txn, g)?;
        txn.delete_record(g);
    }
    room_index::rewrite(txn, room, &[], &[])?;
    let mut snaps = Vec::new();
    txn.kv()
        .scan_prefix(Cf::SnapHashes, &keys::room_prefix(room), &mut |_, v| {
            snaps.push(values::decode_snap_ref(v, format!("snap_hashes/{room}"))?);
            Ok(true)
        })?;
    for s in snaps {
        let h: Arc<_> = txn.header(s)?;
        txn.drop_snapshot(s, &h);
    }
    txn.clear_auth(room)?;
    txn.clear_current(room)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::keys::ikey;

    fn rec(prev: Option<u64>, physical: Physical, logical: Option<Vec<Entry>>) -> GroupRecord {
        GroupRecord {
            room: 0,
            event: 0,
            level: 0,
            ghost: false,
            prev,
            physical,
            logical,
        }
    }

    #[test]
    fn a_child_takes_its_deleted_parents_base_and_prev() {
        let (a, b) = (ikey(1, 1), ikey(1, 2));
        // Group 5 = delta {a: 50} on 4 (prev 4); child 6 = delta {b: 60, a: removed} on 5.
        let deleted = rec(
            Some(4),
            Physical::Delta {
                base: 4,
                delta: vec![(a, Some(50))],
            },
            None,
        );
        let child = rec(
            Some(5),
            Physical::Delta {
                base: 5,
                delta: vec![(a, None), (b, Some(60))],
            },
            None,
        );
        let base = (4, vec![(a, Some(50))]);
        let got = rebase_child(&deleted, 5, Some(&base), &child);
        // Physically on 4 with both deltas composed; logically the same, so
        // no separate logical delta is kept.
        assert_eq!(got.prev, Some(4));
        assert_eq!(
            got.physical,
            Physical::Delta {
                base: 4,
                delta: vec![(a, None), (b, Some(60))]
            }
        );
        assert_eq!(got.logical, None);
        assert_eq!(got.logical_delta(), Some(&[(a, None), (b, Some(60))][..]));
    }

    #[test]
    fn a_child_of_a_deleted_root_becomes_a_root() {
        let a = ikey(1, 1);
        let deleted = rec(None, Physical::Snapshot(9), None);
        let child = rec(
            Some(5),
            Physical::Delta {
                base: 5,
                delta: vec![(a, Some(60))],
            },
            None,
        );
        let got = rebase_child(&deleted, 5, None, &child);
        assert_eq!(got.prev, None);
        assert_eq!(got.logical, None);
        // It stays stored against the deleted snapshot group (kept as a ghost).
        assert_eq!(got.physical, child.physical);
        assert_eq!(got.logical_delta(), None);
    }

    #[test]
    fn a_logical_child_stored_elsewhere_keeps_its_physical_place() {
        let (a, b) = (ikey(1, 1), ikey(2, 0));
        // Group 5: prev 4 with logical delta {a: 50}, physically a snapshot.
        let deleted = rec(Some(4), Physical::Snapshot(3), Some(vec![(a, Some(50))]));
        // Child 6: prev 5, logical {b: 60}, physically a delta on group 2.
        let child = rec(
            Some(5),
            Physical::Delta {
                base: 2,
                delta: vec![(a, Some(50)), (b, Some(60))],
            },
            Some(vec![(b, Some(60))]),
        );
        let got = rebase_child(&deleted, 5, None, &child);
        assert_eq!(got.prev, Some(4));
        assert_eq!(got.physical, child.physical);
        assert_eq!(got.logical, Some(vec![(a, Some(50)), (b, Some(60))]));
    }
}
