//! The `room_groups` index: each room's group ids as ranges of consecutive
//! ids (`room, 0, start -> end - start`), plus its ghosts (`room, 1, id`).
//! Groups of a room are mostly stored with consecutive ids, so one range
//! entry usually covers thousands of groups.

use rustc_hash::FxHashMap;

use crate::error::Result;
use crate::format::keys::{self, RoomNid, ROOM_GHOST, ROOM_RANGE};
use crate::format::varint::{put_u64, Reader};
use crate::ids::GroupId;
use crate::kv::{Batch, Cf, KvStore};

use super::txn::Txn;

fn range_value(len: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(3);
    put_u64(&mut v, len);
    v
}

fn parse_range(k: &[u8], v: &[u8]) -> Result<(GroupId, GroupId)> {
    let start = keys::suffix_u64(k, 5, "room_groups key")?;
    let mut r = Reader::new(v, "room_groups range");
    let len = r.u64()?;
    r.finish()?;
    Ok((start, start.saturating_add(len)))
}

/// The ranges of a room, ascending, as inclusive `(start, end)`.
pub fn ranges(kv: &dyn KvStore, room: RoomNid) -> Result<Vec<(GroupId, GroupId)>> {
    let mut out = Vec::new();
    kv.scan_prefix(Cf::RoomGroups, &keys::room_tag_prefix(room, ROOM_RANGE), &mut |k, v| {
        out.push(parse_range(k, v)?);
        Ok(true)
    })?;
    Ok(out)
}

/// The ghosts of a room.
pub fn ghosts(kv: &dyn KvStore, room: RoomNid) -> Result<Vec<GroupId>> {
    let mut out = Vec::new();
    kv.scan_prefix(Cf::RoomGroups, &keys::room_tag_prefix(room, ROOM_GHOST), &mut |k, _| {
        out.push(keys::suffix_u64(k, 5, "room_groups key")?);
        Ok(true)
    })?;
    Ok(out)
}

/// Every group of a room (ghosts included), ascending, with its ghost flag.
pub fn members(kv: &dyn KvStore, room: RoomNid) -> Result<Vec<(GroupId, bool)>> {
    let ghosts = ghosts(kv, room)?;
    let mut out = Vec::new();
    for (s, e) in ranges(kv, room)? {
        out.extend((s..=e).map(|g| (g, ghosts.binary_search(&g).is_ok())));
    }
    Ok(out)
}

/// The room's highest group id.
pub fn latest(kv: &dyn KvStore, room: RoomNid) -> Result<Option<GroupId>> {
    match kv.last_with_prefix(Cf::RoomGroups, &keys::room_tag_prefix(room, ROOM_RANGE))? {
        None => Ok(None),
        Some((k, v)) => Ok(Some(parse_range(&k, &v)?.1)),
    }
}

/// Memory of each room's last range, for appends. The engine keeps it
/// between transactions (a purge clears it), so an append costs no read.
#[derive(Default)]
pub struct Appender {
    last: FxHashMap<RoomNid, Option<(GroupId, GroupId)>>,
}

impl Appender {
    /// Adds group `g` to `room`: extends the room's last range when `g`
    /// follows it, else starts a range.
    pub fn add(&mut self, kv: &dyn KvStore, batch: &mut Batch, room: RoomNid, g: GroupId) -> Result<()> {
        let last = match self.last.get(&room) {
            Some(l) => *l,
            None => match kv.last_with_prefix(Cf::RoomGroups, &keys::room_tag_prefix(room, ROOM_RANGE))? {
                Some((k, v)) => Some(parse_range(&k, &v)?),
                None => None,
            },
        };
        let range = match last {
            Some((s, e)) if e.checked_add(1) == Some(g) => (s, g),
            _ => (g, g),
        };
        batch.put(
            Cf::RoomGroups,
            keys::room_group_key(room, ROOM_RANGE, range.0).to_vec(),
            range_value(range.1 - range.0),
        );
        // Keep the highest range as "last" so later appends extend it.
        let keep = match last {
            Some((_, e)) if e > range.1 => last,
            _ => Some(range),
        };
        self.last.insert(room, keep);
        Ok(())
    }
}

/// Replaces a room's index: `ids` (ascending) as ranges, `ghosts` flagged.
pub fn rewrite(txn: &mut Txn<'_>, room: RoomNid, ids: &[GroupId], ghost_ids: &[GroupId]) -> Result<()> {
    for (s, _) in ranges(txn.kv, room)? {
        txn.batch
            .delete(Cf::RoomGroups, keys::room_group_key(room, ROOM_RANGE, s).to_vec());
    }
    for g in ghosts(txn.kv, room)? {
        txn.batch
            .delete(Cf::RoomGroups, keys::room_group_key(room, ROOM_GHOST, g).to_vec());
    }
    let mut i = 0;
    while let Some(&start) = ids.get(i) {
        let mut end = start;
        while ids.get(i + 1).is_some_and(|&n| Some(n) == end.checked_add(1)) {
            i += 1;
            end += 1;
        }
        txn.batch.put(
            Cf::RoomGroups,
            keys::room_group_key(room, ROOM_RANGE, start).to_vec(),
            range_value(end - start),
        );
        i += 1;
    }
    for &g in ghost_ids {
        txn.batch.put(
            Cf::RoomGroups,
            keys::room_group_key(room, ROOM_GHOST, g).to_vec(),
            Vec::new(),
        );
    }
    Ok(())
}
