//! `event_groups` buckets (format 6): the hash-form event ids that share
//! their first 5 stored bytes (the tag and 4 hash bytes), under one key.
//!
//! A state event's id is stored once, as the text of its nid (`nids`):
//! its bucket entry holds the nid, not the 28 remaining hash bytes, and
//! `strings` holds no entry for it. A mapped event that is not interned
//! (a message event) keeps its remaining 28 bytes in its entry. An entry
//! that names a nid matches an id only once the nid's text is read and
//! compared: the 5 bytes of the key alone do not tell two ids apart.
//!
//! A bucket's value is its entries, one after another, each led by a tag:
//!
//! | tag | entry |
//! |---|---|
//! | `00` | the 28 bytes of the stored id after the key, the group (varint) |
//! | `01` | the event's nid (varint), the group (varint) |
//! | `02` | the event's nid (varint): interned, mapped to no group |
//!
//! An id has at most one entry in its bucket, and a bucket with no entry
//! is deleted.

use mxstate_api::{Error, GroupId, Result};

use super::event_key::HASH_LEN;
use super::varint::{put_u64, Reader};

/// Bytes of a bucket key: the tag of a hash form and its first 4 bytes.
pub const KEY_LEN: usize = 5;
/// Bytes of a hash-form id after its bucket key.
pub const REST_LEN: usize = HASH_LEN - KEY_LEN;

const MAPPED: u8 = 0;
const INTERNED_MAPPED: u8 = 1;
const INTERNED: u8 = 2;

/// One event of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A mapped event that is not interned: the rest of its stored id.
    Mapped { rest: [u8; REST_LEN], group: GroupId },
    /// An interned event, mapped to `group` or to none.
    Interned { nid: u64, group: Option<GroupId> },
}

impl Slot {
    /// The group the event is mapped to, if any.
    pub fn group(&self) -> Option<GroupId> {
        match *self {
            Slot::Mapped { group, .. } => Some(group),
            Slot::Interned { group, .. } => group,
        }
    }
}

/// The bucket key and the rest of hash-form stored id `stored` (33 bytes
/// starting with a hash tag), or `None` for any other form.
pub fn split(stored: &[u8]) -> Option<([u8; KEY_LEN], [u8; REST_LEN])> {
    if stored.len() != HASH_LEN || !super::event_key::is_hash_tag(stored.first().copied()?) {
        return None;
    }
    let key: [u8; KEY_LEN] = stored.get(..KEY_LEN)?.try_into().ok()?;
    let rest: [u8; REST_LEN] = stored.get(KEY_LEN..)?.try_into().ok()?;
    Some((key, rest))
}

/// The stored id of bucket `key`'s entry with `rest`.
pub fn join(key: &[u8], rest: &[u8; REST_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HASH_LEN);
    out.extend_from_slice(key);
    out.extend_from_slice(rest);
    out
}

/// Whether `key` is a bucket key (as opposed to a text-form event id).
pub fn is_bucket_key(key: &[u8]) -> bool {
    key.len() == KEY_LEN && key.first().is_some_and(|&t| super::event_key::is_hash_tag(t))
}

/// Encodes a bucket's entries.
pub fn encode(slots: &[Slot]) -> Vec<u8> {
    let mut out = Vec::with_capacity(slots.len() * (1 + REST_LEN + 4));
    for s in slots {
        match *s {
            Slot::Mapped { rest, group } => {
                out.push(MAPPED);
                out.extend_from_slice(&rest);
                put_u64(&mut out, group);
            }
            Slot::Interned {
                nid,
                group: Some(group),
            } => {
                out.push(INTERNED_MAPPED);
                put_u64(&mut out, nid);
                put_u64(&mut out, group);
            }
            Slot::Interned { nid, group: None } => {
                out.push(INTERNED);
                put_u64(&mut out, nid);
            }
        }
    }
    out
}

/// Decodes bucket `key`'s value; `at` names it in errors.
pub fn decode(bytes: &[u8], at: impl Fn() -> String) -> Result<Vec<Slot>> {
    let mut r = Reader::new(bytes, "event bucket");
    let mut out = Vec::with_capacity(1);
    let bad = |detail: String| Error::corrupt("event bucket", at(), detail);
    while !r.remaining().is_empty() {
        let slot = match r.u8()? {
            MAPPED => {
                let rest: [u8; REST_LEN] = r.bytes(REST_LEN)?.try_into().map_err(|_| bad("short id".into()))?;
                Slot::Mapped { rest, group: r.u64()? }
            }
            INTERNED_MAPPED => Slot::Interned {
                nid: r.u64()?,
                group: Some(r.u64()?),
            },
            INTERNED => Slot::Interned {
                nid: r.u64()?,
                group: None,
            },
            t => return Err(bad(format!("unknown entry tag {t:#04x}"))),
        };
        out.push(slot);
    }
    if out.is_empty() {
        return Err(bad("no entry".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back() {
        let slots = vec![
            Slot::Mapped {
                rest: [7; REST_LEN],
                group: 300,
            },
            Slot::Interned {
                nid: 1 << 40,
                group: Some(1),
            },
            Slot::Interned { nid: 5, group: None },
        ];
        let b = encode(&slots);
        assert_eq!(b.len(), (1 + REST_LEN + 2) + (1 + 6 + 1) + 2);
        assert_eq!(decode(&b, String::new).unwrap(), slots);
    }

    #[test]
    fn refuses_damaged_values() {
        assert!(decode(&[], String::new).is_err());
        assert!(decode(&[3, 1], String::new).is_err());
        assert!(decode(&[0, 1, 2], String::new).is_err());
        assert!(decode(&[1, 5], String::new).is_err());
        assert!(decode(&[2, 0x80], String::new).is_err());
    }

    #[test]
    fn splits_hash_forms_only() {
        let stored = super::super::event_key::encode("$JLFoDwfMIMtFR6sC2CsZNRiwMMhdS0mNp9LgSGvdUXA");
        let (k, rest) = split(&stored).unwrap();
        assert_eq!(join(&k, &rest), stored);
        assert!(is_bucket_key(&k));
        assert!(split(b"$abc:example.org").is_none());
        assert!(!is_bucket_key(b"$abcd"));
    }
}
