//! The `auth` family (format version 3): each event's auth events, per
//! room.
//!
//! Key: room nid (u32 BE), event nid (u64 BE): a room's events are one
//! key range, read whole when its auth graph is loaded. Value: the auth
//! events' nids, each an unsigned varint, in the order given. Absolute
//! nids, not differences from the event's: most events of a room name the
//! same few auth events (create, power levels, join rules), so the values
//! repeat byte for byte and RocksDB's block compression takes them to
//! about 5 bytes an event (differences, unique to each event, left 10.7).
//! An empty value is an event with no auth events (the room's create
//! event). An event named as an auth event but never added itself has no
//! record.

use mxstate_api::{Error, Result};

use super::keys::{EventNid, RoomNid};
use super::varint::{put_u64, unzigzag, zigzag, Reader};

/// `auth` key: room, event.
pub fn auth_key(room: RoomNid, event: EventNid) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&room.to_be_bytes());
    k[4..].copy_from_slice(&event.to_be_bytes());
    k
}

/// Splits an `auth` key into room and event.
pub fn parse_auth_key(key: &[u8]) -> Result<(RoomNid, EventNid)> {
    let k: [u8; 12] = key
        .try_into()
        .map_err(|_| Error::corrupt("auth key", format!("{key:02x?}"), "expected 12 bytes"))?;
    let (room, event) = k.split_at(4);
    let room: [u8; 4] = room.try_into().map_err(|_| Error::internal("auth key split"))?;
    let event: [u8; 8] = event.try_into().map_err(|_| Error::internal("auth key split"))?;
    Ok((u32::from_be_bytes(room), u64::from_be_bytes(event)))
}

/// Encodes an event's auth events.
pub fn encode_auth_events(auth: &[EventNid]) -> Vec<u8> {
    let mut out = Vec::with_capacity(auth.len() * 3);
    for &a in auth {
        put_u64(&mut out, a);
    }
    out
}

/// Decodes an event's auth events.
pub fn decode_auth_events(bytes: &[u8]) -> Result<Vec<EventNid>> {
    let mut r = Reader::new(bytes, "auth events");
    let mut out = Vec::with_capacity(bytes.len() / 2);
    while !r.remaining().is_empty() {
        out.push(r.u64()?);
    }
    Ok(out)
}

/// How far a homeserver's own table of auth events has been read into the
/// index (`meta/auth-mark`): every event with a stream ordering in
/// `min..=max` was added. Synapse's stream orderings grow for new events
/// and fall below zero for backfilled ones, so a catch-up reads what is
/// above `max` and below `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthMark {
    pub min: i64,
    pub max: i64,
}

impl AuthMark {
    /// The mark covering both.
    pub fn merge(self, other: AuthMark) -> AuthMark {
        AuthMark {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// `zz(min)`, `zz(max)` varints.
    pub fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4);
        put_u64(&mut out, zigzag(self.min));
        put_u64(&mut out, zigzag(self.max));
        out
    }

    /// Decodes [`AuthMark::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<AuthMark> {
        let mut r = Reader::new(bytes, "auth mark");
        let min = unzigzag(r.u64()?);
        let max = unzigzag(r.u64()?);
        r.finish()?;
        Ok(AuthMark { min, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_events_round_trip() {
        for auth in [vec![], vec![1, 9, 3], vec![7, 500_000], vec![0, u64::MAX, 1]] {
            assert_eq!(decode_auth_events(&encode_auth_events(&auth)).unwrap(), auth);
        }
        assert_eq!(encode_auth_events(&[99, 300]), vec![99, 0xac, 0x02]);
    }

    #[test]
    fn marks_round_trip_and_merge() {
        let m = AuthMark { min: -5, max: 1 << 40 };
        assert_eq!(AuthMark::decode(&m.encode()).unwrap(), m);
        assert!(AuthMark::decode(&[2]).is_err());
        assert!(AuthMark::decode(&[2, 2, 2]).is_err());
        let n = m.merge(AuthMark { min: 3, max: 1 << 41 });
        assert_eq!(n, AuthMark { min: -5, max: 1 << 41 });
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        assert!(decode_auth_events(&[0x80]).is_err());
        assert!(parse_auth_key(&[0; 11]).is_err());
        assert_eq!(parse_auth_key(&auth_key(7, 9)).unwrap(), (7, 9));
    }
}
