//! What an import spills to its scratch store, sorted by group.
//!
//! Keys: `G id` -> group row; `E id prev` -> edge; `R id seq` -> state row;
//! `M seq` -> event mapping (ids u64 big-endian, so keys sort by group).
//! Values: bincode (varint integers) of the line and the row's strings.

use bincode::Options;
use mxstate_api::GroupId;
use mxstate_rocks::Scratch;
use mxstate_synapse_dump::Record;
use serde::{Deserialize, Serialize};

use crate::error::{ImportError, Result};
use crate::ImportSummary;

pub const TAG_GROUP: u8 = b'G';
pub const TAG_EDGE: u8 = b'E';
pub const TAG_ROW: u8 = b'R';
pub const TAG_MAP: u8 = b'M';

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

fn group_id(v: i64, line: u64, what: &str) -> Result<GroupId> {
    u64::try_from(v)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| ImportError::input(line, format!("{what} {v} is not a positive group id")))
}
