//! [`decode_record`]: any stored key and value, decoded by the layout of
//! its column family. The consistency checker reads every record through
//! it, and the fuzz targets feed it arbitrary bytes: it returns a typed
//! error for anything that is not a valid record, and never panics.

use mxstate_api::{Error, Result};

use super::counters::Counters;
use super::deletion::{self, Pending};
use super::group::GroupRecord;
use super::keys::{self, meta, EventNid, IKey, RoomNid, StrKind, TypeNid, ROOM_GHOST, ROOM_RANGE};
use super::nid_block;
use super::snapshot::{Section, SnapHeader};
use super::values;
use super::version::FormatVersion;
use super::{event_bucket, event_key};
use crate::kv::Cf;

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Format(FormatVersion),
    Counters(Counters),
    /// An import is running (or was interrupted): its description.
    ImportMarker(String),
    /// A completed import of the source with this fingerprint.
    ImportDone {
        fingerprint: u128,
        description: String,
    },
    /// `strings`: text to nid.
    String {
        kind: StrKind,
        text: String,
        nid: u64,
    },
    /// `nids`: nid to text.
    Nid {
        kind: StrKind,
        nid: u64,
        text: String,
    },
    /// `nids`: a packed block (format 5): `(nid, text)` of each present slot.
    NidBlock {
        kind: StrKind,
        block: u64,
        texts: Vec<(u64, String)>,
    },
    Group {
        id: u64,
        record: GroupRecord,
    },
    /// `room_groups`: the ids `start..=end` are groups of `room`.
    RoomRange {
        room: RoomNid,
        start: u64,
        end: u64,
    },
    RoomGhost {
        room: RoomNid,
        group: u64,
    },
    SnapHeader {
        snap: u64,
        header: SnapHeader,
    },
    SnapSection {
        snap: u64,
        event_type: TypeNid,
        section: Section,
    },
    SnapHash {
        room: RoomNid,
        hash: u128,
        snap: u64,
    },
    /// `event_groups`: a text-form event id and its group.
    EventGroup {
        event: String,
        group: u64,
    },
    /// `event_groups`: the bucket of the hash-form ids starting with `key`
    /// (format 6, `event_bucket`).
    EventBucket {
        key: Vec<u8>,
        slots: Vec<event_bucket::Slot>,
    },
    /// `group_events`: a group and the part of a stored event id that
    /// finds the event in `event_groups` (`event_key::reverse_part`).
    GroupEvent {
        group: u64,
        part: Vec<u8>,
    },
    Current {
        room: RoomNid,
        key: IKey,
        event: EventNid,
    },
    PendingDeletion {
        group: u64,
        pending: Pending,
    },
    DeletionByTime {
        ts: u64,
        group: u64,
    },
    Persisting {
        group: u64,
        instance: String,
        ts: u64,
    },
    DeletionSequence(u64),
    /// `meta/auth-mark`.
    AuthMark(super::auth::AuthMark),
    /// `auth`: an event of a room and its auth events.
    Auth {
        room: RoomNid,
        event: EventNid,
        auth: Vec<EventNid>,
    },
}

fn bad(what: &'static str, cf: Cf, key: &[u8], detail: impl Into<String>) -> Error {
    Error::corrupt(what, format!("{}/{}", cf.name(), shown(key)), detail)
}

/// A key for messages: text when it is printable, else hex.
pub fn shown(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn kind(cf: Cf, key: &[u8]) -> Result<StrKind> {
    match key.first() {
        Some(b'R') => Ok(StrKind::Room),
        Some(b'T') => Ok(StrKind::Type),
        Some(b'S') => Ok(StrKind::Skey),
        Some(b'E') => Ok(StrKind::Event),
        _ => Err(bad("string kind", cf, key, "unknown kind byte")),
    }
}

fn utf8(what: &'static str, cf: Cf, key: &[u8], bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| bad(what, cf, key, "not UTF-8"))
}

fn fixed<const N: usize>(what: &'static str, cf: Cf, key: &[u8]) -> Result<[u8; N]> {
    key.try_into()
        .map_err(|_| bad(what, cf, key, format!("key of {} bytes, want {N}", key.len())))
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

fn empty(what: &'static str, cf: Cf, key: &[u8], value: &[u8]) -> Result<()> {
    if value.is_empty() {
        Ok(())
    } else {
        Err(bad(what, cf, key, format!("value of {} bytes, want none", value.len())))
    }
}

/// Decodes the record stored under `key` in `cf`.
pub fn decode_record(cf: Cf, key: &[u8], value: &[u8]) -> Result<Record> {
    decode(cf, key, value).map_err(|e| match e {
        Error::Corrupt { what, location, detail } => Error::Corrupt {
            what,
            location: format!("{}/{} {location}", cf.name(), shown(key)),
            detail,
        },
        other => other,
    })
}

fn decode(cf: Cf, key: &[u8], value: &[u8]) -> Result<Record> {
    match cf {
        Cf::Meta => {
            if key == meta::FORMAT {
                Ok(Record::Format(FormatVersion::from_bytes(value)?))
            } else if key == meta::COUNTERS {
                Ok(Record::Counters(Counters::decode(value)?))
            } else if key == meta::AUTH_MARK {
                Ok(Record::AuthMark(super::auth::AuthMark::decode(value)?))
            } else if key == meta::IMPORT {
                Ok(Record::ImportMarker(utf8("import marker", cf, key, value)?))
            } else if let Some(fp) = key.strip_prefix(meta::IMPORT_DONE) {
                let fp: [u8; 16] = fp
                    .try_into()
                    .map_err(|_| bad("import record", cf, key, "fingerprint is not 16 bytes"))?;
                Ok(Record::ImportDone {
                    fingerprint: u128::from_be_bytes(fp),
                    description: utf8("import record", cf, key, value)?,
                })
            } else {
                Err(bad("meta key", cf, key, "unknown key"))
            }
        }
        Cf::Strings => {
            let kind = kind(cf, key)?;
            let text = keys::text_from_bytes(kind, key.get(1..).unwrap_or_default(), || {
                format!("{}/{}", cf.name(), shown(key))
            })?;
            let nid = values::decode_string_nid(value)?;
            Ok(Record::String { kind, text, nid })
        }
        Cf::Nids if key.first().is_some_and(u8::is_ascii_lowercase) => {
            let k: [u8; 9] = fixed("nids block key", cf, key)?;
            let upper: Vec<u8> = key.iter().take(1).map(u8::to_ascii_uppercase).collect();
            let kind = kind(cf, &upper)?;
            let block = be64(&k[1..]);
            if block > u64::MAX >> nid_block::BLOCK_BITS {
                return Err(bad("nids block key", cf, key, "block number out of range"));
            }
            let at = || format!("{}/{}", cf.name(), shown(key));
            let texts = nid_block::Block::parse(value)
                .map_err(|e| bad("nids block", cf, key, e.to_string()))?
                .entries()
                .map(|(slot, t)| {
                    let nid = nid_block::first_nid(block) + u64::from(slot);
                    Ok((nid, keys::text_from_bytes(kind, t, at)?))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Record::NidBlock { kind, block, texts })
        }
        Cf::Nids => {
            let k: [u8; 9] = fixed("nid key", cf, key)?;
            let kind = kind(cf, key)?;
            let nid = be64(&k[1..]);
            Ok(Record::Nid {
                kind,
                nid,
                text: keys::text_from_bytes(kind, value, || format!("{}/{}", cf.name(), shown(key)))?,
            })
        }
        Cf::Groups => {
            let id = be64(&fixed::<8>("group key", cf, key)?);
            Ok(Record::Group {
                id,
                record: GroupRecord::decode(id, value)?,
            })
        }
        Cf::RoomGroups => {
            let k: [u8; 13] = fixed("room_groups key", cf, key)?;
            let room = be32(&k[..4]);
            let g = be64(&k[5..]);
            match k[4] {
                ROOM_RANGE => {
                    let len = values::decode_range_len(value)?;
                    let end = g
                        .checked_add(len)
                        .ok_or_else(|| bad("room_groups range", cf, key, "end overflows"))?;
                    Ok(Record::RoomRange { room, start: g, end })
                }
                ROOM_GHOST => {
                    empty("room_groups ghost", cf, key, value)?;
                    Ok(Record::RoomGhost { room, group: g })
                }
                t => Err(bad("room_groups key", cf, key, format!("unknown tag {t}"))),
            }
        }
        Cf::Snapshots => match key.len() {
            8 => Ok(Record::SnapHeader {
                snap: be64(&fixed::<8>("snapshot key", cf, key)?),
                header: SnapHeader::decode(value)?,
            }),
            12 => {
                let k: [u8; 12] = fixed("snapshot key", cf, key)?;
                Ok(Record::SnapSection {
                    snap: be64(&k[..8]),
                    event_type: be32(&k[8..]),
                    section: Section::decode(value)?,
                })
            }
            n => Err(bad("snapshot key", cf, key, format!("key of {n} bytes, want 8 or 12"))),
        },
        Cf::SnapHashes => {
            let k: [u8; 20] = fixed("snap_hashes key", cf, key)?;
            let mut h = [0u8; 16];
            h.copy_from_slice(&k[4..]);
            Ok(Record::SnapHash {
                room: be32(&k[..4]),
                hash: u128::from_be_bytes(h),
                snap: values::decode_snap_ref(value, format!("{}/{}", cf.name(), shown(key)))?,
            })
        }
        Cf::EventGroups if event_bucket::is_bucket_key(key) => Ok(Record::EventBucket {
            key: key.to_vec(),
            slots: event_bucket::decode(value, || format!("{}/{}", cf.name(), shown(key)))?,
        }),
        Cf::EventGroups => Ok(Record::EventGroup {
            event: event_key::decode(key, || format!("{}/{}", cf.name(), shown(key)))?,
            group: values::decode_event_group(value)?,
        }),
        Cf::GroupEvents => {
            let (g, part) = key
                .split_first_chunk::<8>()
                .ok_or_else(|| bad("group_events key", cf, key, format!("key of {} bytes", key.len())))?;
            let whole = part.first() == Some(&b'$') && event_key::is_event_key(part);
            let hash = part.len() == 5 && matches!(part.first(), Some(&(event_key::STANDARD | event_key::URL_SAFE)));
            if !whole && !hash {
                return Err(bad(
                    "group_events key",
                    cf,
                    key,
                    "not a stored event id or its 5-byte part",
                ));
            }
            empty("group_events entry", cf, key, value)?;
            Ok(Record::GroupEvent {
                group: u64::from_be_bytes(*g),
                part: part.to_vec(),
            })
        }
        Cf::CurrentState => {
            let k: [u8; 12] = fixed("current_state key", cf, key)?;
            Ok(Record::Current {
                room: be32(&k[..4]),
                key: be64(&k[4..]),
                event: values::decode_current_event(value)?,
            })
        }
        Cf::Deletion => match key.first() {
            Some(&deletion::PENDING) => Ok(Record::PendingDeletion {
                group: be64(&fixed::<9>("pending deletion key", cf, key)?[1..]),
                pending: Pending::decode(value)?,
            }),
            Some(&deletion::BY_TIME) => {
                fixed::<17>("deletion time key", cf, key)?;
                empty("deletion time entry", cf, key, value)?;
                let (ts, group) = deletion::parse_by_time_key(key)?;
                Ok(Record::DeletionByTime { ts, group })
            }
            Some(&deletion::PERSISTING) => {
                let (group, instance) = deletion::parse_persisting_key(key)?;
                Ok(Record::Persisting {
                    group,
                    instance,
                    ts: deletion::decode_varint(value, "persisting mark")?,
                })
            }
            _ if key == deletion::SEQUENCE => Ok(Record::DeletionSequence(deletion::decode_varint(
                value,
                "deletion sequence",
            )?)),
            _ => Err(bad("deletion key", cf, key, "unknown key")),
        },
        Cf::Auth => {
            let (room, event) = super::auth::parse_auth_key(key)?;
            Ok(Record::Auth {
                room,
                event,
                auth: super::auth::decode_auth_events(value)?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::keys;

    #[test]
    fn refuses_garbage_in_every_family() {
        for cf in Cf::ALL {
            for (k, v) in [
                (&b""[..], &b""[..]),
                (b"\xff", b"\xff\xff"),
                (b"0123456789abcdefghijklmnopqrstuvwxyz", b"\x09"),
            ] {
                if let Err(e) = decode_record(cf, k, v) {
                    assert_eq!(e.kind(), mxstate_api::ErrorKind::Corrupt, "{cf:?} {k:?}: {e}");
                }
            }
        }
        assert!(decode_record(Cf::Meta, b"nonsense", b"").is_err());
        assert!(decode_record(Cf::Groups, &7u64.to_be_bytes(), b"\x09\x00").is_err());
    }

    #[test]
    fn decodes_what_the_encoders_write() {
        let c = Counters::default();
        assert_eq!(
            decode_record(Cf::Meta, meta::COUNTERS, &c.encode()).ok(),
            Some(Record::Counters(c))
        );
        let k = keys::room_group_key(3, ROOM_RANGE, 10);
        assert_eq!(
            decode_record(Cf::RoomGroups, &k, &values::encode_range_len(5)).ok(),
            Some(Record::RoomRange {
                room: 3,
                start: 10,
                end: 15
            })
        );
        let k = keys::nid_key(StrKind::Event, 9);
        assert_eq!(
            decode_record(Cf::Nids, &k, b"$e").ok(),
            Some(Record::Nid {
                kind: StrKind::Event,
                nid: 9,
                text: "$e".into()
            })
        );
    }
}
