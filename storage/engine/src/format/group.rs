//! `groups` values: one record per state group.
//!
//! Ids are coded as differences modulo 2^64 (`id - prev` wrapped, read as
//! a signed zigzag varint), so that every pair of ids round-trips, even
//! more than `i64::MAX` apart.
//!
//! Layout: `version u8`, `flags u8` (low nibble: flags, high nibble: level),
//! `room` varint, `zigzag(event - id)` varint (a group's event is usually
//! interned about when the group is stored), then `zigzag(id - prev)` if FLAG_PREV, then either the snapshot
//! id (FLAG_SNAPSHOT) or `zigzag(id - base)` and the physical delta, then the
//! logical delta if FLAG_LOGICAL. Deltas are encoded by `format::delta`.

use super::delta::{self, Entry};
use super::keys::{EventNid, IKey, RoomNid};
use super::varint::{put_u64, zigzag, Reader};
use super::version::{check_record, RECORD_VERSION};
use mxstate_api::Result;

const FLAG_PREV: u8 = 1;
const FLAG_SNAPSHOT: u8 = 2;
const FLAG_LOGICAL: u8 = 4;
const FLAG_GHOST: u8 = 8;
const KNOWN_FLAGS: u8 = FLAG_PREV | FLAG_SNAPSHOT | FLAG_LOGICAL | FLAG_GHOST;

/// How a group's state is physically stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Physical {
    /// The full state, in snapshot `snap`.
    Snapshot(u64),
    /// `state(base)` with `delta` applied.
    Delta { base: u64, delta: Vec<Entry> },
}

/// A decoded group record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub room: RoomNid,
    /// The group's own event (Synapse's `state_groups.event_id`).
    pub event: EventNid,
    /// Chain level: 0 = delta on prev; `top` = snapshot (see `engine::chain`).
    pub level: u8,
    /// Deleted, kept only because other groups are stored against it.
    pub ghost: bool,
    /// The caller's prev group.
    pub prev: Option<u64>,
    pub physical: Physical,
    /// The caller's delta when it differs from the physical one; `None` with
    /// a prev means "same as the physical delta".
    pub logical: Option<Vec<Entry>>,
}

impl GroupRecord {
    /// The delta against `prev` as the caller gave it (None for a root).
    pub fn logical_delta(&self) -> Option<&[Entry]> {
        self.prev?;
        match (&self.logical, &self.physical) {
            (Some(d), _) => Some(d),
            (None, Physical::Delta { delta, .. }) => Some(delta),
            (None, Physical::Snapshot(_)) => None,
        }
    }

    /// Approximate heap size, for cache weighting.
    pub fn weight(&self) -> u64 {
        let n = match &self.physical {
            Physical::Delta { delta, .. } => delta.len(),
            Physical::Snapshot(_) => 0,
        } + self.logical.as_ref().map_or(0, Vec::len);
        64 + 16 * n as u64
    }

    /// Appends the encoding of the record of group `id`.
    pub fn encode(&self, id: u64, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.prev.is_some() {
            flags |= FLAG_PREV;
        }
        if matches!(self.physical, Physical::Snapshot(_)) {
            flags |= FLAG_SNAPSHOT;
        }
        if self.logical.is_some() {
            flags |= FLAG_LOGICAL;
        }
        if self.ghost {
            flags |= FLAG_GHOST;
        }
        out.extend_from_slice(&[RECORD_VERSION, flags | (self.level << 4)]);
        put_u64(out, u64::from(self.room));
        put_u64(out, zigzag(self.event.wrapping_sub(id) as i64));
        if let Some(p) = self.prev {
            put_u64(out, zigzag(id.wrapping_sub(p) as i64));
        }
        match &self.physical {
            Physical::Snapshot(s) => put_u64(out, *s),
            Physical::Delta { base, delta: d } => {
                put_u64(out, zigzag(id.wrapping_sub(*base) as i64));
                delta::encode(d, self.event, out);
            }
        }
        if let Some(l) = &self.logical {
            delta::encode(l, self.event, out);
        }
    }

    /// Decodes the record of group `id`.
    pub fn decode(id: u64, bytes: &[u8]) -> Result<Self> {
        let head = RecordHead::parse(id, bytes)?;
        let mut r = head.rest;
        let physical = match head.physical {
            HeadPhysical::Snapshot(s) => Physical::Snapshot(s),
            HeadPhysical::Delta { base } => Physical::Delta {
                base,
                delta: delta::decode(&mut r, head.event)?,
            },
        };
        let logical = if head.flags & FLAG_LOGICAL != 0 {
            Some(delta::decode(&mut r, head.event)?)
        } else {
            None
        };
        r.finish()?;
        Ok(GroupRecord {
            room: head.room,
            event: head.event,
            level: head.level,
            ghost: head.flags & FLAG_GHOST != 0,
            prev: head.prev,
            physical,
            logical,
        })
    }
}

/// Where a record's state is, as read by [`RecordHead::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadPhysical {
    /// The full state, in this snapshot.
    Snapshot(u64),
    /// A delta on this base; [`RecordHead::delta`] reads it.
    Delta { base: u64 },
}

/// The fields of an encoded record before its deltas, read without
/// decoding them: what a point read walking a chain needs.
pub struct RecordHead<'a> {
    flags: u8,
    pub level: u8,
    pub room: RoomNid,
    pub event: EventNid,
    pub prev: Option<u64>,
    pub physical: HeadPhysical,
    /// At the physical delta (for a delta record), else after the snapshot id.
    rest: Reader<'a>,
}

impl<'a> RecordHead<'a> {
    /// Reads the head of the record of group `id`.
    pub fn parse(id: u64, bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "group record");
        check_record(&mut r)?;
        let byte = r.u8()?;
        let (flags, level) = (byte & 0x0f, byte >> 4);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(r.error(format!("unknown flags {flags:#04x} in group {id}")));
        }
        let room = r.u32()?;
        let event = id.wrapping_add(r.i64()? as u64);
        let prev = if flags & FLAG_PREV != 0 {
            let d = r.i64()?;
            Some(id.wrapping_sub(d as u64))
        } else {
            None
        };
        let physical = if flags & FLAG_SNAPSHOT != 0 {
            HeadPhysical::Snapshot(r.u64()?)
        } else {
            let d = r.i64()?;
            HeadPhysical::Delta {
                base: id.wrapping_sub(d as u64),
            }
        };
        Ok(RecordHead {
            flags,
            level,
            room,
            event,
            prev,
            physical,
            rest: r,
        })
    }

    /// Whether the group is a ghost (deleted, kept as a base).
    pub fn ghost(&self) -> bool {
        self.flags & FLAG_GHOST != 0
    }

    /// Looks `keys` (ascending) up in the physical delta, as
    /// [`delta::find`]; nothing for a snapshot record.
    pub fn find(&self, keys: &[IKey], found: &mut [Option<Option<EventNid>>]) -> Result<()> {
        match self.physical {
            HeadPhysical::Snapshot(_) => Ok(()),
            HeadPhysical::Delta { .. } => {
                let mut r = self.rest.clone();
                delta::find(&mut r, self.event, keys, found)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::keys::ikey;

    #[test]
    fn round_trip_and_corruption() {
        let rec = GroupRecord {
            room: 3,
            event: 1000,
            level: 1,
            ghost: false,
            prev: Some(41),
            physical: Physical::Delta {
                base: 10,
                delta: vec![(ikey(1, 2), Some(999)), (ikey(1, 5), None), (ikey(4, 0), Some(1001))],
            },
            logical: Some(vec![(ikey(4, 0), Some(1001))]),
        };
        let mut buf = Vec::new();
        rec.encode(42, &mut buf);
        assert_eq!(GroupRecord::decode(42, &buf).unwrap(), rec);
        let head = RecordHead::parse(42, &buf).unwrap();
        assert_eq!(
            (
                head.level,
                head.room,
                head.event,
                head.prev,
                head.physical,
                head.ghost()
            ),
            (1, 3, 1000, Some(41), HeadPhysical::Delta { base: 10 }, false)
        );
        // The physical delta, not the logical one; removals found as such.
        let keys = [ikey(1, 2), ikey(1, 3), ikey(1, 5), ikey(4, 0)];
        let mut found = [None; 4];
        head.find(&keys, &mut found).unwrap();
        assert_eq!(found, [Some(Some(999)), None, Some(None), Some(Some(1001))]);
        for cut in 0..buf.len() {
            assert!(GroupRecord::decode(42, &buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[0] = 9;
        assert!(GroupRecord::decode(42, &bad).is_err());
    }

    #[test]
    fn ids_more_than_i64_max_apart_round_trip() {
        for (id, prev, base) in [
            (5, u64::MAX - 1, u64::MAX - 1),
            (u64::MAX, 1, 0),
            (1 << 63, 0, u64::MAX),
        ] {
            let rec = GroupRecord {
                room: 0,
                event: 7,
                level: 0,
                ghost: false,
                prev: Some(prev),
                physical: Physical::Delta {
                    base,
                    delta: vec![(ikey(1, 2), Some(9))],
                },
                logical: None,
            };
            let mut buf = Vec::new();
            rec.encode(id, &mut buf);
            assert_eq!(GroupRecord::decode(id, &buf).unwrap(), rec, "id {id}");
        }
    }
}
