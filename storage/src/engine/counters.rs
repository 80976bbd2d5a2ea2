//! Id counters, persisted under `meta/counters` in every write batch.
//!
//! Layout: `version u8`, then six varints: next group, room, type, state
//! key, event and snapshot id.

use crate::error::Result;
use crate::format::keys::StrKind;
use crate::format::varint::{put_u64, Reader};
use crate::format::version::{check_record, RECORD_VERSION};

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
    /// Takes the next nid of a string kind.
    pub fn next_nid(&mut self, kind: StrKind) -> u64 {
        let c = match kind {
            StrKind::Room => &mut self.room,
            StrKind::Type => &mut self.event_type,
            StrKind::Skey => &mut self.skey,
            StrKind::Event => &mut self.event,
        };
        *c += 1;
        *c - 1
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
