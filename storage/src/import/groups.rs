//! Walking the scratch store group by group, in id order.

use crate::error::{Error, Result};
use crate::format::varint::Reader;
use crate::ids::{EventId, GroupId};
use crate::state::StateKey;

use super::staging::{get_str, Staging, TagIter};

pub const TAG_GROUP: u8 = b'G';
pub const TAG_EDGE: u8 = b'E';
pub const TAG_ROW: u8 = b'R';
pub const TAG_MAP: u8 = b'M';

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
    fn add_row(&mut self, id: GroupId, line: u64, room: &str, t: &str, k: &str, e: &str) -> Result<()> {
        let expected = self.room.as_deref().or(self.row_room.as_deref());
        if let Some(r) = expected {
            if r != room {
                return Err(Error::Import {
                    line: Some(line),
                    group: Some(id),
                    detail: format!("row of room {room} in a group of room {r}"),
                });
            }
        } else {
            self.row_room = Some(room.to_owned());
        }
        self.first_row_line.get_or_insert(line);
        let key = StateKey::new(t, k).map_err(|err| at(line, id, err))?;
        let ev = EventId::parse(e).map_err(|err| at(line, id, err))?;
        self.rows.push((key, ev, line));
        Ok(())
    }
}

fn at(line: u64, group: GroupId, e: Error) -> Error {
    Error::Import {
        line: Some(line),
        group: Some(group),
        detail: e.to_string(),
    }
}

/// Every staged group id (from `state_groups`, edges or rows), ascending.
pub struct GroupWalk<'s> {
    groups: TagIter<'s>,
    edges: TagIter<'s>,
    rows: TagIter<'s>,
}

impl<'s> GroupWalk<'s> {
    /// Starts at the lowest id.
    pub fn new(staging: &'s Staging) -> Self {
        GroupWalk {
            groups: staging.iter(TAG_GROUP),
            edges: staging.iter(TAG_EDGE),
            rows: staging.iter(TAG_ROW),
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
                let mut r = Reader::new(v, "staged group");
                group.line = Some(r.u64()?);
                group.room = Some(get_str(&mut r)?.to_owned());
                group.event = Some(get_str(&mut r)?.to_owned());
            }
            self.groups.advance();
        }
        while self.edges.id() == Some(id) {
            if let Some((k, v)) = self.edges.peek() {
                let prev = edge_prev(k)?;
                let line = Reader::new(v, "staged edge").u64()?;
                if let Some((_, first)) = group.prev {
                    return Err(Error::Import {
                        line: Some(line),
                        group: Some(id),
                        detail: format!("state group {id} has more than one prev group (also on line {first})"),
                    });
                }
                group.prev = Some((prev, line));
            }
            self.edges.advance();
        }
        while self.rows.id() == Some(id) {
            if let Some((_, v)) = self.rows.peek() {
                let mut r = Reader::new(v, "staged row");
                let line = r.u64()?;
                let room = get_str(&mut r)?;
                let (t, k, e) = (get_str(&mut r)?, get_str(&mut r)?, get_str(&mut r)?);
                group.add_row(id, line, room, t, k, e)?;
            }
            self.rows.advance();
        }
        Ok(Some((id, group)))
    }
}

/// The prev group in an edge key.
pub fn edge_prev(k: &[u8]) -> Result<GroupId> {
    k.get(9..17)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::corrupt("staged edge", "scratch", "short key"))
}
