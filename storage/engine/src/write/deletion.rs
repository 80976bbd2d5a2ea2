//! Synapse's deletion protocol, each step inside one write transaction, so
//! that "the prev group exists and is not being deleted: store on it" and
//! "still deletable: re-base its children, delete it" are each atomic.
//!
//! A group is *pending deletion* from the time Synapse finds it
//! unreferenced; a persist in flight marks the groups it uses as
//! *persisting*. Whenever a group may have become used again, its pending
//! mark gets a new sequence number and timestamp, so a deletion decided
//! on an older number does not happen.

use std::collections::{BTreeMap, BTreeSet};

use mxstate_api::{GroupId, Result};

use crate::access::Source;
use crate::format::deletion::Pending;
use crate::format::keys::RoomNid;

use super::purge;
use super::txn::Txn;

/// Gives a pending mark of `g` a new sequence number and timestamp (a
/// group without a mark keeps none).
pub fn bump(txn: &mut Txn<'_>, g: GroupId, now_ms: u64) -> Result<()> {
    if txn.pending(g)?.is_some() {
        let seq = txn.next_deletion_seq()?;
        txn.set_pending(g, Some(Pending { ts: now_ms, seq }))?;
    }
    Ok(())
}

fn exists(txn: &Txn<'_>, g: GroupId) -> Result<bool> {
    Ok(txn.record(g)?.is_some_and(|r| !r.ghost))
}

/// Which `groups` do not exist; the existing ones pending deletion are bumped.
pub fn check_and_bump(txn: &mut Txn<'_>, groups: &BTreeSet<GroupId>, now_ms: u64) -> Result<Vec<GroupId>> {
    let mut missing = Vec::new();
    for &g in groups {
        if exists(txn, g)? {
            bump(txn, g, now_ms)?;
        } else {
            missing.push(g);
        }
    }
    Ok(missing)
}

/// Marks `groups` as used by a persist of `instance`, unless one of them
/// is gone: then nothing is marked and the missing ones are returned.
pub fn mark_persisting(
    txn: &mut Txn<'_>,
    groups: &BTreeSet<GroupId>,
    instance: &str,
    now_ms: u64,
) -> Result<Vec<GroupId>> {
    let mut missing = Vec::new();
    for &g in groups {
        if !exists(txn, g)? {
            missing.push(g);
        }
    }
    if missing.is_empty() {
        for &g in groups {
            txn.set_persisting(g, instance, Some(now_ms));
        }
    }
    Ok(missing)
}

/// Ends a persist: its marks go; on success the groups are in use (no
/// longer pending deletion), on error their pending marks are bumped.
pub fn finish_persisting(
    txn: &mut Txn<'_>,
    groups: &BTreeSet<GroupId>,
    instance: &str,
    error: bool,
    now_ms: u64,
) -> Result<()> {
    for &g in groups {
        txn.set_persisting(g, instance, None);
        if error {
            bump(txn, g, now_ms)?;
        } else if txn.pending(g)?.is_some() {
            txn.set_pending(g, None)?;
        }
    }
    Ok(())
}

/// Marks `groups` as pending deletion; groups already marked keep their
/// mark. A group that does not exist (or is a ghost) gets none: a mark
/// names an existing group, and a deleted group's marks go with it.
pub fn mark_pending(txn: &mut Txn<'_>, groups: &BTreeSet<GroupId>, now_ms: u64) -> Result<()> {
    for &g in groups {
        if exists(txn, g)? && txn.pending(g)?.is_none() {
            let seq = txn.next_deletion_seq()?;
            txn.set_pending(g, Some(Pending { ts: now_ms, seq }))?;
        }
    }
    Ok(())
}

/// Clears the pending marks of `groups` (they are referenced).
pub fn mark_used(txn: &mut Txn<'_>, groups: &BTreeSet<GroupId>) -> Result<()> {
    for &g in groups {
        if txn.pending(g)?.is_some() {
            txn.set_pending(g, None)?;
        }
    }
    Ok(())
}

/// Which of `candidates` (group -> the sequence number seen when they were
/// found unreferenced) may be deleted now: marked pending with the same
/// sequence number for at least `delay_ms`, and not used by a persist. If
/// any candidate is not ready, no ancestor of any candidate is.
pub fn ready(
    txn: &Txn<'_>,
    candidates: &BTreeMap<GroupId, u64>,
    now_ms: u64,
    delay_ms: u64,
) -> Result<BTreeSet<GroupId>> {
    let mut ready = BTreeSet::new();
    let mut not_ready = false;
    for (&g, &seq) in candidates {
        if !txn.persisting(g)?.is_empty() {
            not_ready = true;
            continue;
        }
        match txn.pending(g)? {
            None => {}
            Some(p) if p.seq != seq || now_ms.saturating_sub(p.ts) < delay_ms || now_ms < p.ts => not_ready = true,
            Some(_) => {
                ready.insert(g);
            }
        }
    }
    if not_ready {
        for a in ancestors(txn, candidates.keys().copied())? {
            ready.remove(&a);
        }
    }
    Ok(ready)
}

/// Every group reachable from `groups` along prev edges (not the groups
/// themselves, unless reached).
fn ancestors(txn: &Txn<'_>, groups: impl Iterator<Item = GroupId>) -> Result<BTreeSet<GroupId>> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<GroupId> = Vec::new();
    for g in groups {
        if let Some(p) = txn.record(g)?.and_then(|r| r.prev) {
            todo.push(p);
        }
    }
    while let Some(g) = todo.pop() {
        if !out.insert(g) {
            continue;
        }
        if let Some(p) = txn.record(g)?.and_then(|r| r.prev) {
            todo.push(p);
        }
    }
    Ok(out)
}

/// Deletes the candidates that are ready, re-basing the groups stored on
/// them; returns the deleted groups. One transaction: a group that became
/// used again since the caller looked is never deleted.
pub fn purge_if_ready(
    txn: &mut Txn<'_>,
    room: RoomNid,
    room_name: &str,
    candidates: &BTreeMap<GroupId, u64>,
    now_ms: u64,
    delay_ms: u64,
) -> Result<Vec<GroupId>> {
    let ready = ready(txn, candidates, now_ms, delay_ms)?;
    let mut gone = Vec::new();
    let mut delete = Vec::new();
    for g in ready {
        match txn.record(g)? {
            Some(r) if !r.ghost && r.room == room => delete.push(g),
            // Marked but already gone (or never there): only the mark remains.
            Some(r) if r.ghost => txn.set_pending(g, None)?,
            None => txn.set_pending(g, None)?,
            // A group of another room is not this call's to delete.
            Some(_) => continue,
        }
        gone.push(g);
    }
    if !delete.is_empty() {
        purge::purge_groups(txn, room, room_name, &delete)?;
    }
    Ok(gone)
}
