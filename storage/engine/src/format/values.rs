//! Values that are one integer (or nothing). They carry no version byte:
//! their layout is fixed by the database format version under `meta`.
//!
//! | column family | value |
//! |---|---|
//! | `strings` | the nid, varint |
//! | `event_groups` | the group id, varint |
//! | `current_state` | the event nid, varint |
//! | `room_groups`, range entry | `end - start` of the id range, varint |
//! | `room_groups`, ghost entry; `group_events` | empty |
//! | `snap_hashes` | the snapshot id, u64 little-endian (8 bytes) |

use mxstate_api::{Error, Result};

use super::varint::{put_u64, Reader};

fn varint(v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    put_u64(&mut out, v);
    out
}

fn one_varint(bytes: &[u8], what: &'static str) -> Result<u64> {
    let mut r = Reader::new(bytes, what);
    let v = r.u64()?;
    r.finish()?;
    Ok(v)
}

/// A `strings` value: the nid of the key's text.
pub fn encode_string_nid(nid: u64) -> Vec<u8> {
    varint(nid)
}
/// Decodes a `strings` value.
pub fn decode_string_nid(bytes: &[u8]) -> Result<u64> {
    one_varint(bytes, "string nid")
}

/// An `event_groups` value: the event's group.
pub fn encode_event_group(group: u64) -> Vec<u8> {
    varint(group)
}
/// Decodes an `event_groups` value.
pub fn decode_event_group(bytes: &[u8]) -> Result<u64> {
    one_varint(bytes, "event group")
}

/// A `current_state` value: the event nid.
pub fn encode_current_event(event: u64) -> Vec<u8> {
    varint(event)
}
/// Decodes a `current_state` value.
pub fn decode_current_event(bytes: &[u8]) -> Result<u64> {
    one_varint(bytes, "current state entry")
}

/// A `room_groups` range value: `end - start`.
pub fn encode_range_len(len: u64) -> Vec<u8> {
    varint(len)
}
/// Decodes a `room_groups` range value.
pub fn decode_range_len(bytes: &[u8]) -> Result<u64> {
    one_varint(bytes, "room_groups range")
}

/// A `snap_hashes` value: the snapshot id, little-endian.
pub fn encode_snap_ref(snap: u64) -> [u8; 8] {
    snap.to_le_bytes()
}
/// Decodes a `snap_hashes` value.
pub fn decode_snap_ref(bytes: &[u8], location: impl Into<String>) -> Result<u64> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        Error::corrupt(
            "snapshot hash entry",
            location,
            format!("{} bytes, want 8", bytes.len()),
        )
    })?;
    Ok(u64::from_le_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refusals() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(decode_string_nid(&encode_string_nid(v)).unwrap(), v);
            assert_eq!(decode_event_group(&encode_event_group(v)).unwrap(), v);
            assert_eq!(decode_current_event(&encode_current_event(v)).unwrap(), v);
            assert_eq!(decode_range_len(&encode_range_len(v)).unwrap(), v);
            assert_eq!(decode_snap_ref(&encode_snap_ref(v), "t").unwrap(), v);
        }
        assert!(decode_event_group(&[]).is_err());
        assert!(decode_event_group(&[1, 2]).is_err(), "trailing byte");
        assert!(decode_string_nid(&[0x80]).is_err(), "unterminated");
        assert!(decode_snap_ref(&[1, 2, 3], "t").is_err());
    }
}
