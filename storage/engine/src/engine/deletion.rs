//! Synapse's deletion protocol (see `write::deletion`), one atomic call per step.

use std::collections::{BTreeMap, BTreeSet};

use mxstate_api::{Error, GroupId, Result, RoomId};

use crate::access::Source;
use crate::format::deletion::{self, Pending};
use crate::format::keys::{RoomNid, StrKind};
use crate::kv::Cf;
use crate::write::deletion as protocol;

use super::Engine;

impl Engine {
    /// Which of `groups` do not exist; those that do and are pending
    /// deletion get a new sequence number and timestamp.
    pub fn check_and_bump_deletion(&self, groups: &BTreeSet<GroupId>, now_ms: u64) -> Result<Vec<GroupId>> {
        self.write(|txn| protocol::check_and_bump(txn, groups, now_ms))
    }

    /// Marks `groups` as used by a persist in flight of `instance`. If one
    /// of them no longer exists nothing is marked and the missing groups
    /// are returned.
    pub fn mark_persisting(&self, groups: &BTreeSet<GroupId>, instance: &str, now_ms: u64) -> Result<Vec<GroupId>> {
        self.write(|txn| protocol::mark_persisting(txn, groups, instance, now_ms))
    }

    /// Ends a persist of `instance` (see `write::deletion::finish_persisting`).
    pub fn finish_persisting(
        &self,
        groups: &BTreeSet<GroupId>,
        instance: &str,
        error: bool,
        now_ms: u64,
    ) -> Result<()> {
        self.write(|txn| protocol::finish_persisting(txn, groups, instance, error, now_ms))
    }

    /// Forgets the persist marks of `instance` and every mark older than
    /// `older_than_ms` (after an unclean shutdown); returns their groups.
    pub fn clear_persisting(&self, instance: &str, older_than_ms: u64) -> Result<BTreeSet<GroupId>> {
        let stale: Vec<(GroupId, String)> = self
            .persisting_marks()?
            .into_iter()
            .filter(|(_, i, ts)| i == instance || *ts < older_than_ms)
            .map(|(g, i, _)| (g, i))
            .collect();
        self.write(|txn| {
            for (g, i) in &stale {
                txn.set_persisting(*g, i, None);
            }
            Ok(stale.iter().map(|(g, _)| *g).collect())
        })
    }

    /// Every persist mark: `(group, instance, inserted_ts)`.
    pub fn persisting_marks(&self) -> Result<Vec<(GroupId, String, u64)>> {
        let _shared = self.read_gate()?;
        let mut out = Vec::new();
        self.kv
            .scan_prefix(Cf::Deletion, &[deletion::PERSISTING], &mut |k, v| {
                let (g, instance) = deletion::parse_persisting_key(k)?;
                out.push((g, instance, deletion::decode_varint(v, "persisting entry")?));
                Ok(true)
            })?;
        Ok(out)
    }

    /// Marks `groups` as pending deletion (marked ones keep their mark).
    pub fn mark_pending_deletion(&self, groups: &BTreeSet<GroupId>, now_ms: u64) -> Result<()> {
        self.write(|txn| protocol::mark_pending(txn, groups, now_ms))
    }

    /// Clears the pending-deletion marks of `groups`.
    pub fn mark_used(&self, groups: &BTreeSet<GroupId>) -> Result<()> {
        self.write(|txn| protocol::mark_used(txn, groups))
    }

    /// The groups of `groups` pending deletion, with their sequence numbers.
    pub fn pending_deletions(&self, groups: &BTreeSet<GroupId>) -> Result<BTreeMap<GroupId, u64>> {
        let _shared = self.read_gate()?;
        let ks: Vec<Vec<u8>> = groups.iter().map(|&g| deletion::pending_key(g).to_vec()).collect();
        let mut out = BTreeMap::new();
        for (&g, v) in groups.iter().zip(self.kv.multi_get(Cf::Deletion, &ks)?) {
            if let Some(v) = v {
                out.insert(g, Pending::decode(&v)?.seq);
            }
        }
        Ok(out)
    }

    /// The next groups to try to delete: those marked at the oldest time
    /// before `now_ms - delay_ms`, of one room, not used by a persist, with
    /// their sequence numbers.
    pub fn next_deletion_candidates(
        &self,
        now_ms: u64,
        delay_ms: u64,
    ) -> Result<Option<(RoomId, BTreeMap<GroupId, u64>)>> {
        let cutoff = now_ms.saturating_sub(delay_ms);
        let _shared = self.read_gate()?;
        let src = self.committed();
        let mut first: Option<(u64, RoomNid)> = None;
        let mut out = BTreeMap::new();
        self.kv.scan_prefix(Cf::Deletion, &[deletion::BY_TIME], &mut |k, _| {
            let (ts, g) = deletion::parse_by_time_key(k)?;
            if ts >= cutoff || first.is_some_and(|(t, _)| t != ts) {
                return Ok(false);
            }
            let Some(rec) = src.record(g)?.filter(|r| !r.ghost) else {
                return Ok(true);
            };
            if first.is_some_and(|(_, r)| r != rec.room) || self.persisted(g)? {
                return Ok(true);
            }
            let pending = self.kv.get(Cf::Deletion, &deletion::pending_key(g))?.ok_or_else(|| {
                Error::corrupt("deletion time index", format!("deletion/T/{ts}/{g}"), "no pending mark")
            })?;
            out.insert(g, Pending::decode(&pending)?.seq);
            first = Some((ts, rec.room));
            Ok(true)
        })?;
        match first {
            None => Ok(None),
            Some((_, rn)) => Ok(Some((RoomId::parse(&*self.text(StrKind::Room, u64::from(rn))?)?, out))),
        }
    }

    /// Whether a persist in flight uses group `g`.
    fn persisted(&self, g: GroupId) -> Result<bool> {
        let mut any = false;
        self.kv
            .scan_prefix(Cf::Deletion, &deletion::persisting_prefix(g), &mut |_, _| {
                any = true;
                Ok(false)
            })?;
        Ok(any)
    }

    /// Which `candidates` (group -> sequence number) may be deleted now.
    pub fn ready_for_deletion(
        &self,
        candidates: &BTreeMap<GroupId, u64>,
        now_ms: u64,
        delay_ms: u64,
    ) -> Result<BTreeSet<GroupId>> {
        self.write(|txn| protocol::ready(txn, candidates, now_ms, delay_ms))
    }

    /// Deletes the `candidates` of `room` that are ready, re-basing the
    /// groups stored on them, in one transaction; returns what was deleted.
    pub fn purge_if_ready(
        &self,
        room: &RoomId,
        candidates: &BTreeMap<GroupId, u64>,
        now_ms: u64,
        delay_ms: u64,
    ) -> Result<Vec<GroupId>> {
        let Some(rn) = self.room_nid(room)? else {
            return Err(Error::UnknownRoom(room.to_string()));
        };
        self.write(|txn| protocol::purge_if_ready(txn, rn, room.as_str(), candidates, now_ms, delay_ms))
    }
}
