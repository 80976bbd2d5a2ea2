//! What an import spills to its scratch store, sorted by group.
//!
//! Keys: `G id` -> group row; `E id prev` -> edge; `R id seq` -> a chunk
//! of state rows of group `id` ([`RowChunk`]);
//! `M seq` -> event mapping (ids u64 big-endian, so keys sort by group);
//! `A room event auth` -> an `event_auth` row (each id preceded by its
//! length in one byte, the last one not: keys sort by room, then event, then
//! auth event, and a repeated row is stored once).
//! Values: bincode (varint integers) of the line and the row's strings,
//! except state rows. Those are hand-packed, and consecutive rows of one
//! group (a dump lists a group's rows together) share one value of up to
//! [`CHUNK_BYTES`]: the scratch store handles tens of thousands of entries
//! instead of millions. In a row, the part naming the entry (type, state
//! key, event) is one contiguous byte string: a group walk recognises a row
//! it saw before by those bytes, without decoding or validating them again.

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

/// A staged `state_groups_state` row, split but not decoded: its line,
/// the room's bytes, and the entry's bytes (type, state key and event, each
/// after its varint length) for [`split_entry`].
pub struct RawRow<'a> {
    pub line: u64,
    pub room: &'a [u8],
    pub entry: &'a [u8],
}

/// Bytes of staged rows per scratch value.
const CHUNK_BYTES: usize = 64 << 10;

/// The rows being gathered for one scratch value: consecutive rows of one
/// group and one room, written as `R group seq` (`seq` taken when the
/// chunk starts, so a group's chunks sort in source order). The value is
/// the room (varint length, bytes), then per row the zigzag varint of its
/// line minus the previous row's (the first: minus 0) and its entry: type,
/// state key and event, each after its varint length.
#[derive(Default)]
pub struct RowChunk {
    key: Option<[u8; 17]>,
    room: String,
    line: u64,
    buf: Vec<u8>,
}

impl RowChunk {
    /// Adds one row of group `g`, writing the chunk first when it belongs
    /// to another group or room, or is full.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        scratch: &mut Scratch,
        g: GroupId,
        line: u64,
        room: &str,
        event_type: &str,
        state_key: &str,
        event: &str,
    ) -> Result<()> {
        let same = self.key.is_some_and(|k| k[1..9] == g.to_be_bytes()) && self.room == room;
        if !same || self.buf.len() >= CHUNK_BYTES {
            self.flush(scratch)?;
            let mut k = [TAG_ROW; 17];
            k[1..9].copy_from_slice(&g.to_be_bytes());
            k[9..].copy_from_slice(&scratch.next_seq().to_be_bytes());
            self.key = Some(k);
            room.clone_into(&mut self.room);
            self.line = 0;
            put_varint(&mut self.buf, room.len() as u64);
            self.buf.extend_from_slice(room.as_bytes());
        }
        let step = line.wrapping_sub(self.line) as i64;
        put_varint(&mut self.buf, ((step << 1) ^ (step >> 63)) as u64);
        self.line = line;
        for field in [event_type, state_key, event] {
            put_varint(&mut self.buf, field.len() as u64);
            self.buf.extend_from_slice(field.as_bytes());
        }
        Ok(())
    }

    /// Writes the rows gathered (to the scratch store's batch).
    pub fn flush(&mut self, scratch: &mut Scratch) -> Result<()> {
        if let Some(k) = self.key.take() {
            scratch.put(&k, &self.buf)?;
        }
        self.buf.clear();
        Ok(())
    }
}

/// The rows of one staged chunk ([`RowChunk`]), in order.
pub struct ChunkRows<'a> {
    room: &'a [u8],
    line: u64,
    rest: &'a [u8],
}

impl<'a> ChunkRows<'a> {
    /// The rows of a chunk's value.
    pub fn new(value: &'a [u8]) -> Result<Self> {
        let mut rest = value;
        let room = get_bytes(&mut rest).ok_or_else(bad_row)?;
        Ok(ChunkRows { room, line: 0, rest })
    }

    /// The next row, or `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<RawRow<'a>>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let rest = &mut self.rest;
        let mut parse = || {
            let z = get_varint(rest)?;
            let step = ((z >> 1) as i64) ^ -((z & 1) as i64);
            let line = self.line.wrapping_add(step as u64);
            let start = *rest;
            for _ in 0..3 {
                get_bytes(rest)?;
            }
            let entry = start.get(..start.len() - rest.len())?;
            Some((line, entry))
        };
        let (line, entry) = parse().ok_or_else(bad_row)?;
        self.line = line;
        Ok(Some(RawRow {
            line,
            room: self.room,
            entry,
        }))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn get_bytes<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = usize::try_from(get_varint(bytes)?).ok()?;
    let (field, rest) = bytes.split_at_checked(n)?;
    *bytes = rest;
    Some(field)
}

fn bad_row() -> ImportError {
    mxstate_api::Error::corrupt("staged row", "import scratch store", "bad value").into()
}

/// The type, state key and event of [`RawRow::entry`].
pub fn split_entry(entry: &[u8]) -> Result<(&str, &str, &str)> {
    split_entry_at(entry).map(|(t, k, e, _)| (t, k, e))
}

/// [`split_entry`], and the length of the entry's first part, the one
/// naming the type and state key (`entry[..n]` stands for the key).
pub fn split_entry_at(entry: &[u8]) -> Result<(&str, &str, &str, usize)> {
    fn next<'a>(rest: &mut &'a [u8]) -> Result<&'a str> {
        get_bytes(rest)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(bad_row)
    }
    let mut rest = entry;
    let (t, k) = (next(&mut rest)?, next(&mut rest)?);
    let key_len = entry.len() - rest.len();
    let e = next(&mut rest)?;
    if !rest.is_empty() {
        return Err(bad_row());
    }
    Ok((t, k, e, key_len))
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

/// Spills one source record to the scratch store; state rows gather in
/// `chunk` (flush it before reading the scratch store).
pub fn stage(
    scratch: &mut Scratch,
    summary: &mut ImportSummary,
    rec: &Record,
    line: u64,
    chunk: &mut RowChunk,
) -> Result<()> {
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
            chunk.push(scratch, g, line, room_id, event_type, state_key, event_id)
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
