//! Walking the scratch store group by group, in id order.
//!
//! Synapse's full copies repeat most rows of the copies before them: a
//! [`RowCache`] keyed by a row's staged bytes hands out the key and event
//! built (and validated) the first time, so a repeated row costs a hash
//! lookup, not three string allocations and their checks.

use std::collections::HashMap;

use mxstate_api::{EventId, GroupId, StateKey};
use mxstate_rocks::{Scratch, ScratchIter};

use crate::error::{ImportError, Result};
use crate::staged::{decode, edge_prev, split_entry_at, ChunkRows, GroupRow, RawRow, TAG_EDGE, TAG_GROUP, TAG_ROW};

/// Rows remembered per generation of the [`RowCache`] (it holds at most
/// two generations: a few hundred bytes a row, so tens of MB); as many
/// keys and events.
const CACHE_ROWS: usize = 1 << 17;

/// Recently seen staged rows (their entry bytes) and the key and event
/// they stand for; and recently seen keys and events on their own, so that
/// rows naming the same key (or event) share one: a store recognises a
/// shared string by its address. Bounded ([`Generations`]). Keys come from
/// the source (other servers' state keys), so the hash is keyed (ahash,
/// random per process).
#[derive(Default)]
pub struct RowCache {
    rows: Generations<(StateKey, EventId)>,
    keys: Generations<StateKey>,
    events: Generations<EventId>,
}

/// A map by bytes of at most two generations of [`CACHE_ROWS`] entries:
/// when the newer one is full, the older one is dropped and the newer one
/// takes its place; an entry found in the older one moves to the newer one.
struct Generations<V> {
    new: HashMap<Box<[u8]>, V, ahash::RandomState>,
    old: HashMap<Box<[u8]>, V, ahash::RandomState>,
}

impl<V> Default for Generations<V> {
    fn default() -> Self {
        Generations {
            new: HashMap::default(),
            old: HashMap::default(),
        }
    }
}

impl<V: Clone> Generations<V> {
    /// The value of `k`, or the one `make` builds (remembered).
    fn get(&mut self, k: &[u8], make: impl FnOnce() -> Result<V>) -> Result<V> {
        if let Some(hit) = self.new.get(k) {
            return Ok(hit.clone());
        }
        let (bytes, value) = match self.old.remove_entry(k) {
            Some(found) => found,
            None => (Box::from(k), make()?),
        };
        if self.new.len() >= CACHE_ROWS {
            self.old = std::mem::take(&mut self.new);
        }
        self.new.insert(bytes, value.clone());
        Ok(value)
    }
}

impl RowCache {
    /// The key and event of a row's entry bytes; `fail` locates an error.
    fn get(&mut self, entry: &[u8], fail: impl Fn(mxstate_api::Error) -> ImportError) -> Result<(StateKey, EventId)> {
        let RowCache { rows, keys, events } = self;
        rows.get(entry, || {
            let (t, k, e, key_len) = split_entry_at(entry)?;
            let key = keys.get(&entry[..key_len], || StateKey::new(t, k).map_err(&fail))?;
            let ev = events.get(e.as_bytes(), || EventId::parse(e).map_err(&fail))?;
            Ok((key, ev))
        })
    }
}

/// A group gathered from the scratch store.
#[derive(Default)]
pub struct Staged {
    pub line: Option<u64>,
    pub room: Option<String>,
    pub event: Option<String>,
    pub prev: Option<(GroupId, u64)>,
    pub row_room: Option<String>,
    pub first_row_line: Option<u64>,
    pub rows: Vec<(StateKey, EventId, u64)>,
}

impl Staged {
    fn add_row(&mut self, id: GroupId, row: RawRow<'_>, cache: &mut RowCache) -> Result<()> {
        let line = row.line;
        let expected = self.room.as_deref().or(self.row_room.as_deref());
        if let Some(r) = expected {
            if r.as_bytes() != row.room {
                let room = String::from_utf8_lossy(row.room);
                return Err(
                    ImportError::input(line, format!("row of room {room} in a group of room {r}")).in_group(id, line),
                );
            }
        } else {
            let room = std::str::from_utf8(row.room).map_err(|_| {
                ImportError::from(mxstate_api::Error::corrupt(
                    "staged row",
                    "import scratch store",
                    "room is not UTF-8",
                ))
            })?;
            self.row_room = Some(room.to_owned());
        }
        self.first_row_line.get_or_insert(line);
        let (key, ev) = cache.get(row.entry, |err| at(line, id, err))?;
        self.rows.push((key, ev, line));
        Ok(())
    }
}

fn at(line: u64, group: GroupId, e: mxstate_api::Error) -> ImportError {
    ImportError::input(line, e.to_string()).in_group(group, line)
}

/// Every staged group id (from `state_groups`, edges or rows), ascending.
pub struct GroupWalk<'s> {
    groups: ScratchIter<'s>,
    edges: ScratchIter<'s>,
    rows: ScratchIter<'s>,
    cache: RowCache,
}

impl<'s> GroupWalk<'s> {
    /// Starts at the lowest id.
    pub fn new(staging: &'s Scratch) -> Self {
        GroupWalk {
            groups: staging.iter(TAG_GROUP),
            edges: staging.iter(TAG_EDGE),
            rows: staging.iter(TAG_ROW),
            cache: RowCache::default(),
        }
    }

    /// The next group and everything staged for it.
    pub fn next_group(&mut self) -> Result<Option<(GroupId, Staged)>> {
        let next = [self.groups.id(), self.edges.id(), self.rows.id()]
            .into_iter()
            .flatten()
            .min();
        let Some(id) = next else {
            self.groups.status()?;
            self.edges.status()?;
            self.rows.status()?;
            return Ok(None);
        };
        let mut group = Staged::default();
        if self.groups.id() == Some(id) {
            if let Some((_, v)) = self.groups.peek() {
                let row: GroupRow<'_> = decode(v, "staged group")?;
                group.line = Some(row.line);
                group.room = Some(row.room.to_owned());
                group.event = Some(row.event.to_owned());
            }
            self.groups.advance();
        }
        while self.edges.id() == Some(id) {
            if let Some((k, v)) = self.edges.peek() {
                let prev = edge_prev(k)?;
                let line: u64 = decode(v, "staged edge")?;
                if let Some((_, first)) = group.prev {
                    return Err(ImportError::input(
                        line,
                        format!("state group {id} has more than one prev group (also on line {first})"),
                    )
                    .in_group(id, line));
                }
                group.prev = Some((prev, line));
            }
            self.edges.advance();
        }
        while self.rows.id() == Some(id) {
            if let Some((_, chunk)) = self.rows.peek() {
                let mut rows = ChunkRows::new(chunk)?;
                while let Some(row) = rows.next_row()? {
                    group.add_row(id, row, &mut self.cache)?;
                }
            }
            self.rows.advance();
        }
        Ok(Some((id, group)))
    }
}
