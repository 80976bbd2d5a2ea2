//! What an import spills to its scratch store, sorted by group.
//!
//! Keys: `G id` -> group row; `E id prev` -> edge; `R id seq` -> state row;
//! `M seq` -> event mapping (ids u64 big-endian, so keys sort by group);
//! `A room event auth` -> an `event_auth` row (each id preceded by its
//! length in one byte, the last one not: keys sort by room, then event, then
//! auth event, and a repeated row is stored once).
//! Values: bincode (varint integers) of the line and the row's strings.

use bincode::Options;
use mxstate_api::{EventId, GroupId, RoomId};
use mxstate_rocks::Scratch;
use mxstate_synapse_dump::{AuthEdge, Record};
use serde::{Deserialize, Serialize};

use crate::error::{ImportError, Result};
use crate::ImportSummary;

pub const TAG_GROUP: u8 = b'G';
pub const TAG_EDGE: u8 = b'E';
pub const TAG_ROW: u8 = b'R';
pub const TAG_MAP: u8 = b'M';
pub const TAG_AUTH: u8 = b'A';

/// A staged `state_groups` row.
#[derive(Serialize, Deserialize)]
pub struct GroupRow<'a> {
    pub line: u64,
    pub room: &'a str,
    pub event: &'a str,
}

/// A staged `state_groups_state` row.
#[derive(Serialize, Deserialize)]
pub struct StateRow<'a> {
    pub line: u64,
    pub room: &'a str,
    pub event_type: &'a str,
    pub state_key: &'a str,
    pub event: &'a str,
}

/// A staged `event_to_state_groups` row.
#[derive(Serialize, Deserialize)]
pub struct MapRow<'a> {
    pub line: u64,
    pub event: &'a str,
    pub group: GroupId,
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new()
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    codec()
        .serialize(v)
        .map_err(|e| mxstate_api::Error::internal(format!("staging a row: {e}")).into())
}

/// Decodes a value this module staged.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T> {
    codec()
        .deserialize(bytes)
        .map_err(|e| mxstate_api::Error::corrupt(what, "import scratch store", e.to_string()).into())
}

/// Key of `tag` followed by big-endian ids.
pub fn key(tag: u8, ids: &[u64]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 8 * ids.len());
    k.push(tag);
    for id in ids {
        k.extend_from_slice(&id.to_be_bytes());
    }
    k
}

/// The prev group in an edge key.
pub fn edge_prev(k: &[u8]) -> Result<GroupId> {
    k.get(9..17)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| mxstate_api::Error::corrupt("staged edge", "import scratch store", "short key").into())
}

/// Spills one source record to the scratch store.
pub fn stage(scratch: &mut Scratch, summary: &mut ImportSummary, rec: &Record, line: u64) -> Result<()> {
    match rec {
        Record::StateGroup { id, room_id, event_id } => {
            let g = group_id(*id, line, "state_groups.id")?;
            summary.groups_read += 1;
            let v = encode(&GroupRow {
                line,
                room: room_id,
                event: event_id,
            })?;
            Ok(scratch.put(&key(TAG_GROUP, &[g]), &v)?)
        }
        Record::Edge {
            state_group,
            prev_state_group,
        } => {
            let g = group_id(*state_group, line, "state_group_edges.state_group")?;
            let p = group_id(*prev_state_group, line, "state_group_edges.prev_state_group")?;
            if g == p {
                return Err(ImportError::input(
                    line,
                    format!("cycle in state_group_edges: group {g} is its own prev"),
                ));
            }
            summary.edges += 1;
            Ok(scratch.put(&key(TAG_EDGE, &[g, p]), &encode(&line)?)?)
        }
        Record::StateRow {
            state_group,
            room_id,
            event_type,
            state_key,
            event_id,
        } => {
            let g = group_id(*state_group, line, "state_groups_state.state_group")?;
            summary.rows += 1;
            let v = encode(&StateRow {
                line,
                room: room_id,
                event_type,
                state_key,
                event: event_id,
            })?;
            let seq = scratch.next_seq();
            Ok(scratch.put(&key(TAG_ROW, &[g, seq]), &v)?)
        }
        Record::EventToStateGroup { event_id, state_group } => {
            let g = group_id(*state_group, line, "event_to_state_groups.state_group")?;
            let v = encode(&MapRow {
                line,
                event: event_id,
                group: g,
            })?;
            let seq = scratch.next_seq();
            Ok(scratch.put(&key(TAG_MAP, &[seq]), &v)?)
        }
    }
}

/// Spills one `event_auth` row to the scratch store; a row naming an
/// invalid room or event id is counted in `summary.auth_rows_invalid` and
/// left out.
pub fn stage_auth(scratch: &mut Scratch, summary: &mut ImportSummary, edge: &AuthEdge, line: u64) -> Result<()> {
    let valid = RoomId::parse(&edge.room_id).is_ok()
        && EventId::parse(&edge.event_id).is_ok()
        && EventId::parse(&edge.auth_id).is_ok();
    if !valid {
        summary.auth_rows_invalid += 1;
        return Ok(());
    }
    summary.auth_rows += 1;
    let mut k = auth_prefix(&edge.room_id, Some(&edge.event_id));
    k.extend_from_slice(edge.auth_id.as_bytes());
    scratch.put(&k, &encode(&line)?)?;
    Ok(())
}

/// The key prefix of a room's staged `event_auth` rows, or of one event's.
/// The ids are valid, so at most 255 bytes long.
pub fn auth_prefix(room: &str, event: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + room.len() + event.map_or(0, str::len) + 64);
    k.push(TAG_AUTH);
    for id in std::iter::once(room).chain(event) {
        k.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        k.extend_from_slice(id.as_bytes());
    }
    k
}

/// A staged `event_auth` key split into room, event and auth event.
pub struct AuthKey<'a> {
    pub room: &'a str,
    pub event: &'a str,
    pub auth: &'a str,
}

/// Splits a key of [`TAG_AUTH`].
pub fn parse_auth_key(k: &[u8]) -> Result<AuthKey<'_>> {
    fn part(k: &[u8]) -> Option<(&str, &[u8])> {
        let (&n, rest) = k.split_first()?;
        let (id, rest) = rest.split_at_checked(usize::from(n))?;
        Some((std::str::from_utf8(id).ok()?, rest))
    }
    let parsed = (|| {
        let rest = k.strip_prefix(&[TAG_AUTH])?;
        let (room, rest) = part(rest)?;
        let (event, rest) = part(rest)?;
        Some(AuthKey {
            room,
            event,
            auth: std::str::from_utf8(rest).ok()?,
        })
    })();
    parsed.ok_or_else(|| mxstate_api::Error::corrupt("staged auth row", "import scratch store", "bad key").into())
}

/// One room's staged `event_auth` rows, grouped by event: read in key
/// order from the scratch store.
pub struct AuthWalk<'s> {
    it: mxstate_rocks::ScratchIter<'s>,
}

/// One event's staged auth events (sorted, without repeats) and the line
/// of one of its rows.
pub struct StagedAuth {
    pub room: String,
    pub event: String,
    pub auth: Vec<String>,
    pub line: u64,
}

impl<'s> AuthWalk<'s> {
    /// From the first staged row.
    pub fn new(staging: &'s Scratch) -> Self {
        AuthWalk {
            it: staging.iter(TAG_AUTH),
        }
    }

    /// The next event and its auth events.
    pub fn next_event(&mut self) -> Result<Option<StagedAuth>> {
        let Some((k, v)) = self.it.peek() else {
            self.it.status()?;
            return Ok(None);
        };
        let first = parse_auth_key(k)?;
        let mut out = StagedAuth {
            room: first.room.to_owned(),
            event: first.event.to_owned(),
            auth: vec![first.auth.to_owned()],
            line: decode(v, "staged auth row")?,
        };
        self.it.advance();
        while let Some((k, _)) = self.it.peek() {
            let next = parse_auth_key(k)?;
            if next.room != out.room || next.event != out.event {
                break;
            }
            out.auth.push(next.auth.to_owned());
            self.it.advance();
        }
        self.it.status()?;
        Ok(Some(out))
    }
}

fn group_id(v: i64, line: u64, what: &str) -> Result<GroupId> {
    u64::try_from(v)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| ImportError::input(line, format!("{what} {v} is not a positive group id")))
}
