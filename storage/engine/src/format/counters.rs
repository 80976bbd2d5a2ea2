//! Id counters, persisted under `meta/counters` in every write batch.
//!
//! Layout: `version u8`, then six varints: next group, room, type, state
//! key, event and snapshot id.

use mxstate_api::{Error, Result};

use super::keys::StrKind;
use super::varint::{put_u64, Reader};
use super::version::{check_record, RECORD_VERSION};

/// The next free id of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub group: u64,
    pub room: u64,
    pub event_type: u64,
    pub skey: u64,
    pub event: u64,
    pub snap: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            group: 1,
            room: 0,
            event_type: 0,
            skey: 0,
            event: 0,
            snap: 1,
        }
    }
}

impl Counters {
    /// Takes the next nid of a string kind. Rooms, types and state keys
    /// are 32-bit in keys and records; events are 64-bit.
    pub fn next_nid(&mut self, kind: StrKind) -> Result<u64> {
        let (c, limit, what) = match kind {
            StrKind::Room => (&mut self.room, u64::from(u32::MAX), "room nid"),
            StrKind::Type => (&mut self.event_type, u64::from(u32::MAX), "event type nid"),
            StrKind::Skey => (&mut self.skey, u64::from(u32::MAX), "state key nid"),
            StrKind::Event => (&mut self.event, u64::MAX - 1, "event nid"),
        };
        let n = *c;
        if n > limit {
            return Err(Error::Capacity {
                what,
                value: n,
                limit: if limit == u64::MAX - 1 { "u64" } else { "u32" },
            });
        }
        *c = n + 1;
        Ok(n)
    }

    /// The next nid of a string kind, without taking it.
    pub fn peek_nid(&self, kind: StrKind) -> u64 {
        match kind {
            StrKind::Room => self.room,
            StrKind::Type => self.event_type,
            StrKind::Skey => self.skey,
            StrKind::Event => self.event,
        }
    }

    /// Encodes the counters.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        for v in [self.group, self.room, self.event_type, self.skey, self.event, self.snap] {
            put_u64(&mut out, v);
        }
        out
    }

    /// Decodes the counters.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "counters");
        check_record(&mut r)?;
        let c = Counters {
            group: r.u64()?,
            room: r.u64()?,
            event_type: r.u64()?,
            skey: r.u64()?,
            event: r.u64()?,
            snap: r.u64()?,
        };
        r.finish()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_capacity() {
        let mut c = Counters::default();
        assert_eq!(c.next_nid(StrKind::Room).unwrap(), 0);
        assert_eq!(c.next_nid(StrKind::Room).unwrap(), 1);
        c.group = 1 << 40;
        assert_eq!(Counters::decode(&c.encode()).unwrap(), c);
        let mut bad = c.encode();
        bad[0] = 9;
        assert!(Counters::decode(&bad).is_err(), "unknown version");
        c.skey = u64::from(u32::MAX) + 1;
        let e = c.next_nid(StrKind::Skey).unwrap_err();
        assert_eq!(e.kind(), mxstate_api::ErrorKind::Capacity);
    }
}
