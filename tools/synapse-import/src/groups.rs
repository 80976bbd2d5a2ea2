//! Walking the scratch store group by group, in id order.

use mxstate_api::{EventId, GroupId, StateKey};
use mxstate_rocks::{Scratch, ScratchIter};

use crate::error::{ImportError, Result};
use crate::staged::{decode, edge_prev, GroupRow, StateRow, TAG_EDGE, TAG_GROUP, TAG_ROW};

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
                return Err(
                    ImportError::input(line, format!("row of room {room} in a group of room {r}")).in_group(id, line),
                );
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

fn at(line: u64, group: GroupId, e: mxstate_api::Error) -> ImportError {
    ImportError::input(line, e.to_string()).in_group(group, line)
}

/// Every staged group id (from `state_groups`, edges or rows), ascending.
pub struct GroupWalk<'s> {
    groups: ScratchIter<'s>,
    edges: ScratchIter<'s>,
    rows: ScratchIter<'s>,
}

impl<'s> GroupWalk<'s> {
    /// Starts at the lowest id.
    pub fn new(staging: &'s Scratch) -> Self {
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
            if let Some((_, v)) = self.rows.peek() {
                let r: StateRow<'_> = decode(v, "staged row")?;
                group.add_row(id, r.line, r.room, r.event_type, r.state_key, r.event)?;
            }
            self.rows.advance();
        }
        Ok(Some((id, group)))
    }
}
