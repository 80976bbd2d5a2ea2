//! The `deletion` column family: the bookkeeping of Synapse's deletion
//! protocol, which keeps a group from being deleted while an event that
//! uses it is being persisted.
//!
//! | key | value |
//! |---|---|
//! | `P` + group u64 BE | pending deletion: `01 \| insertion_ts varint \| sequence varint` |
//! | `T` + insertion_ts u64 BE + group u64 BE | empty: the pending deletions in time order |
//! | `S` + group u64 BE + instance name (UTF-8) | a persist in flight: `inserted_ts` varint |
//! | `Q` | the next sequence number, varint |

use mxstate_api::{Error, Result};

use super::keys;
use super::varint::{put_u64, Reader};
use super::version::{check_record, RECORD_VERSION};

pub const PENDING: u8 = b'P';
pub const BY_TIME: u8 = b'T';
pub const PERSISTING: u8 = b'S';
pub const SEQUENCE: &[u8] = b"Q";

/// A group marked for deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// When it was marked (or last found in use), milliseconds.
    pub ts: u64,
    /// Changes whenever the group may have become used again.
    pub seq: u64,
}

impl Pending {
    /// Encodes the value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        put_u64(&mut out, self.ts);
        put_u64(&mut out, self.seq);
        out
    }
    /// Decodes the value.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "pending deletion");
        check_record(&mut r)?;
        let p = Pending {
            ts: r.u64()?,
            seq: r.u64()?,
        };
        r.finish()?;
        Ok(p)
    }
}

/// `P` key of a group.
pub fn pending_key(g: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = PENDING;
    k[1..].copy_from_slice(&g.to_be_bytes());
    k
}

/// `T` key of a pending deletion.
pub fn by_time_key(ts: u64, g: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = BY_TIME;
    k[1..9].copy_from_slice(&ts.to_be_bytes());
    k[9..].copy_from_slice(&g.to_be_bytes());
    k
}

/// Splits a `T` key into `(ts, group)`.
pub fn parse_by_time_key(k: &[u8]) -> Result<(u64, u64)> {
    let ts = keys::parse_u64(k.get(1..9).unwrap_or_default(), "deletion time key")?;
    let g = keys::parse_u64(k.get(9..).unwrap_or_default(), "deletion time key")?;
    Ok((ts, g))
}

/// The `S` prefix of a group's persisting entries.
pub fn persisting_prefix(g: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = PERSISTING;
    k[1..].copy_from_slice(&g.to_be_bytes());
    k
}

/// `S` key of a group persisted by `instance`.
pub fn persisting_key(g: u64, instance: &str) -> Vec<u8> {
    let mut k = persisting_prefix(g).to_vec();
    k.extend_from_slice(instance.as_bytes());
    k
}

/// Splits an `S` key into `(group, instance)`.
pub fn parse_persisting_key(k: &[u8]) -> Result<(u64, String)> {
    let g = keys::parse_u64(k.get(1..9).unwrap_or_default(), "persisting key")?;
    let instance = std::str::from_utf8(k.get(9..).unwrap_or_default())
        .map_err(|_| Error::corrupt("persisting key", format!("group {g}"), "instance name is not UTF-8"))?;
    Ok((g, instance.to_owned()))
}

/// An `S` value or the `Q` value: one varint.
pub fn encode_varint(v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    put_u64(&mut out, v);
    out
}

/// Decodes an `S` or `Q` value.
pub fn decode_varint(bytes: &[u8], what: &'static str) -> Result<u64> {
    let mut r = Reader::new(bytes, what);
    let v = r.u64()?;
    r.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let p = Pending {
            ts: 1_700_000_000_000,
            seq: 42,
        };
        assert_eq!(Pending::decode(&p.encode()).unwrap(), p);
        let mut bad = p.encode();
        bad[0] = 7;
        assert!(Pending::decode(&bad).is_err());
        assert!(Pending::decode(&p.encode()[..3]).is_err());
        assert_eq!(parse_by_time_key(&by_time_key(5, 9)).unwrap(), (5, 9));
        assert_eq!(
            parse_persisting_key(&persisting_key(7, "worker1")).unwrap(),
            (7, "worker1".to_owned())
        );
        assert!(parse_persisting_key(&[PERSISTING, 0, 0]).is_err());
        assert_eq!(decode_varint(&encode_varint(300), "q").unwrap(), 300);
    }
}
