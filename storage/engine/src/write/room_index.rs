//! The `room_groups` index: each room's group ids as ranges of consecutive
//! ids (`room, 0, start -> end - start`), plus its ghosts (`room, 1, id`).
//! Groups of a room are mostly stored with consecutive ids, so one range
//! entry usually covers thousands of groups.

use mxstate_api::{GroupId, Result};

use crate::format::keys::{self, RoomNid, ROOM_GHOST, ROOM_RANGE};
use crate::format::values;
use crate::kv::{Cf, KvStore};

use super::txn::Txn;

fn parse_range(k: &[u8], v: &[u8]) -> Result<(GroupId, GroupId)> {
    let start = keys::suffix_u64(k, 5, "room_groups key")?;
    let len = values::decode_range_len(v)?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| mxstate_api::Error::corrupt("room_groups range", format!("start {start}"), "end overflows"))?;
    Ok((start, end))
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
    match last_range(kv, room)? {
        None => Ok(None),
        Some((_, end)) => Ok(Some(end)),
    }
}

fn last_range(kv: &dyn KvStore, room: RoomNid) -> Result<Option<(GroupId, GroupId)>> {
    match kv.last_with_prefix(Cf::RoomGroups, &keys::room_tag_prefix(room, ROOM_RANGE))? {
        None => Ok(None),
        Some((k, v)) => Ok(Some(parse_range(&k, &v)?)),
    }
}

/// Adds group `g` to `room`: extends the room's last range when `g`
/// follows it, else starts a range. The transaction remembers each room's
/// last range between calls, so an append costs no read.
pub fn append(txn: &mut Txn<'_>, room: RoomNid, g: GroupId) -> Result<()> {
    let last = match txn.last_ranges().get(room) {
        Some(l) => l,
        None => last_range(txn.kv(), room)?,
    };
    let range = match last {
        Some((s, e)) if e.checked_add(1) == Some(g) => (s, g),
        _ => (g, g),
    };
    txn.put_room_entry(room, ROOM_RANGE, range.0, values::encode_range_len(range.1 - range.0));
    // Keep the highest range as "last" so later appends extend it.
    let keep = match last {
        Some((_, e)) if e > range.1 => last,
        _ => Some(range),
    };
    txn.last_ranges().set(room, keep);
    Ok(())
}

/// Replaces a room's index: `ids` (ascending) as ranges, `ghosts` flagged.
pub fn rewrite(txn: &mut Txn<'_>, room: RoomNid, ids: &[GroupId], ghost_ids: &[GroupId]) -> Result<()> {
    for (s, _) in ranges(txn.kv(), room)? {
        txn.delete_room_entry(room, ROOM_RANGE, s);
    }
    for g in ghosts(txn.kv(), room)? {
        txn.delete_room_entry(room, ROOM_GHOST, g);
    }
    for (start, end) in as_ranges(ids) {
        txn.put_room_entry(room, ROOM_RANGE, start, values::encode_range_len(end - start));
    }
    for &g in ghost_ids {
        txn.put_room_entry(room, ROOM_GHOST, g, Vec::new());
    }
    Ok(())
}

/// Ascending ids as inclusive ranges of consecutive ids.
fn as_ranges(ids: &[GroupId]) -> Vec<(GroupId, GroupId)> {
    let mut out: Vec<(GroupId, GroupId)> = Vec::new();
    for &g in ids {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(g) => *end = g,
            _ => out.push((g, g)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Caches;
    use crate::format::counters::Counters;
    use crate::kv::MemKv;
    use crate::write::txn::WriterMemory;

    fn commit(kv: &MemKv, caches: &Caches, last: WriterMemory, f: impl FnOnce(&mut Txn<'_>)) -> WriterMemory {
        let mut txn = Txn::new(kv, caches, Counters::default(), last);
        f(&mut txn);
        let (batch, _, last, _) = txn.finish().unwrap();
        kv.write(batch).unwrap();
        last
    }

    #[test]
    fn ranges_of_consecutive_ids() {
        assert_eq!(as_ranges(&[1, 2, 3, 7, 9, 10]), vec![(1, 3), (7, 7), (9, 10)]);
        assert!(as_ranges(&[]).is_empty());
        assert_eq!(as_ranges(&[u64::MAX - 1, u64::MAX]), vec![(u64::MAX - 1, u64::MAX)]);
    }

    #[test]
    fn appends_extend_the_last_range_with_or_without_memory() {
        let kv = MemKv::new();
        let caches = Caches::new(1 << 20);
        let mut last = WriterMemory::default();
        for g in [5, 6, 7, 10, 11] {
            last = commit(&kv, &caches, last, |t| append(t, 3, g).unwrap());
        }
        assert_eq!(ranges(&kv, 3).unwrap(), vec![(5, 7), (10, 11)]);
        // Without memory (a restart), the next append reads the last range.
        commit(&kv, &caches, WriterMemory::default(), |t| append(t, 3, 12).unwrap());
        assert_eq!(ranges(&kv, 3).unwrap(), vec![(5, 7), (10, 12)]);
        assert_eq!(latest(&kv, 3).unwrap(), Some(12));
        assert_eq!(latest(&kv, 4).unwrap(), None);
        // An id below the last range starts a range of its own and keeps
        // the last range as the one to extend.
        let last = commit(&kv, &caches, WriterMemory::default(), |t| append(t, 3, 8).unwrap());
        commit(&kv, &caches, last, |t| append(t, 3, 13).unwrap());
        assert_eq!(ranges(&kv, 3).unwrap(), vec![(5, 7), (8, 8), (10, 13)]);
    }

    #[test]
    fn rewrite_replaces_ranges_and_ghosts() {
        let kv = MemKv::new();
        let caches = Caches::new(1 << 20);
        let mut last = WriterMemory::default();
        for g in 1..=6 {
            last = commit(&kv, &caches, last, |t| append(t, 1, g).unwrap());
        }
        commit(&kv, &caches, last, |t| rewrite(t, 1, &[1, 2, 4, 6], &[4]).unwrap());
        assert_eq!(ranges(&kv, 1).unwrap(), vec![(1, 2), (4, 4), (6, 6)]);
        assert_eq!(ghosts(&kv, 1).unwrap(), vec![4]);
        assert_eq!(
            members(&kv, 1).unwrap(),
            vec![(1, false), (2, false), (4, true), (6, false)]
        );
    }
}
