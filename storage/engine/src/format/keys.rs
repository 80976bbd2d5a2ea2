//! Key layouts. All integers in keys are big-endian so that keys sort by value.

use mxstate_api::{Error, Result};

/// Interned id of a room.
pub type RoomNid = u32;
/// Interned id of an event type.
pub type TypeNid = u32;
/// Interned id of a state key string.
pub type SkeyNid = u32;
/// Interned id of an event id.
pub type EventNid = u64;
/// An interned `(type, state_key)`: type in the high 32 bits. Sorts by type.
pub type IKey = u64;

/// A room nid from an interned id (32 bits in keys and records).
pub fn room_nid(n: u64) -> Result<RoomNid> {
    Error::fit("room nid", n, "u32")
}
/// A type nid from an interned id.
pub fn type_nid(n: u64) -> Result<TypeNid> {
    Error::fit("event type nid", n, "u32")
}
/// A state-key nid from an interned id.
pub fn skey_nid(n: u64) -> Result<SkeyNid> {
    Error::fit("state key nid", n, "u32")
}

/// Packs a `(type, state_key)` pair.
pub fn ikey(t: TypeNid, s: SkeyNid) -> IKey {
    (u64::from(t) << 32) | u64::from(s)
}
/// The type half of an [`IKey`].
pub fn ikey_type(k: IKey) -> TypeNid {
    (k >> 32) as u32
}
/// The state-key half of an [`IKey`].
pub fn ikey_skey(k: IKey) -> SkeyNid {
    // The low 32 bits, by definition of the packing.
    (k & 0xffff_ffff) as u32
}

/// Kinds of interned strings (first byte of `strings` and `nids` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StrKind {
    Room = b'R',
    Type = b'T',
    Skey = b'S',
    Event = b'E',
}

/// `meta` keys.
pub mod meta {
    /// u32 LE format version.
    pub const FORMAT: &[u8] = b"format";
    /// The id counters (see `engine::counters`).
    pub const COUNTERS: &[u8] = b"counters";
    /// Present while an import runs: its description, UTF-8.
    pub const IMPORT: &[u8] = b"import";
    /// The auth index's mark: how far the homeserver's table of auth
    /// events was read (`format::auth::AuthMark`).
    pub const AUTH_MARK: &[u8] = b"auth-mark";
    /// Prefix of the completed-import keys: this, then the source's
    /// 16-byte fingerprint (big-endian); value: the description, UTF-8.
    pub const IMPORT_DONE: &[u8] = b"import-done/";

    /// The key that records a completed import of a source.
    pub fn import_done_key(fingerprint: u128) -> Vec<u8> {
        let mut k = Vec::with_capacity(IMPORT_DONE.len() + 16);
        k.extend_from_slice(IMPORT_DONE);
        k.extend_from_slice(&fingerprint.to_be_bytes());
        k
    }
}

/// `strings` key: kind byte, then the text as stored: an event id in its
/// stored form ([`super::event_key`]), any other string as UTF-8.
pub fn string_key(kind: StrKind, s: &str) -> Vec<u8> {
    let text = text_bytes(kind, s);
    let mut k = Vec::with_capacity(1 + text.len());
    k.push(kind as u8);
    k.extend_from_slice(&text);
    k
}

/// A string as stored in `strings` keys and `nids` values: event ids in
/// their stored form, other strings as UTF-8.
pub fn text_bytes(kind: StrKind, s: &str) -> std::borrow::Cow<'_, [u8]> {
    match kind {
        StrKind::Event => std::borrow::Cow::Owned(super::event_key::encode(s)),
        _ => std::borrow::Cow::Borrowed(s.as_bytes()),
    }
}

/// Reads a string stored by [`text_bytes`]; `at` names where.
pub fn text_from_bytes(kind: StrKind, bytes: &[u8], at: impl FnOnce() -> String) -> Result<String> {
    match kind {
        StrKind::Event => super::event_key::decode(bytes, at),
        _ => String::from_utf8(bytes.to_vec()).map_err(|_| Error::corrupt("interned string", at(), "not UTF-8")),
    }
}

/// `nids` key: kind byte, then the nid as u64 BE.
pub fn nid_key(kind: StrKind, nid: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = kind as u8;
    k[1..].copy_from_slice(&nid.to_be_bytes());
    k
}

/// `nids` key of a packed block (format 5, `super::nid_block`): the kind
/// byte in lower case, then the block number (`nid >> 6`) as u64 BE. Block
/// keys of a kind sort apart from its single keys.
pub fn nid_block_key(kind: StrKind, block: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = (kind as u8).to_ascii_lowercase();
    k[1..].copy_from_slice(&block.to_be_bytes());
    k
}

/// `groups` key: the group id.
pub fn group_key(g: u64) -> [u8; 8] {
    g.to_be_bytes()
}

/// The group id of a `groups` key; `None` if it is not 8 bytes.
pub fn parse_group_key(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

/// `room_groups` tag of a range of group ids (value: `end - start` varint).
pub const ROOM_RANGE: u8 = 0;
/// `room_groups` tag of a ghost group (empty value).
pub const ROOM_GHOST: u8 = 1;

/// `room_groups` key: room, tag, group id (range start or ghost).
pub fn room_group_key(room: RoomNid, tag: u8, g: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..4].copy_from_slice(&room.to_be_bytes());
    k[4] = tag;
    k[5..].copy_from_slice(&g.to_be_bytes());
    k
}

/// The prefix of a room's ranges or ghosts in `room_groups`.
pub fn room_tag_prefix(room: RoomNid, tag: u8) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[..4].copy_from_slice(&room.to_be_bytes());
    k[4] = tag;
    k
}

/// A room's prefix in `room_groups`, `snap_hashes` and `current_state`.
pub fn room_prefix(room: RoomNid) -> [u8; 4] {
    room.to_be_bytes()
}

/// `snapshots` header key: the snapshot id.
pub fn snap_header_key(snap: u64) -> [u8; 8] {
    snap.to_be_bytes()
}

/// `snapshots` section key: snapshot id, type.
pub fn snap_section_key(snap: u64, t: TypeNid) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&snap.to_be_bytes());
    k[8..].copy_from_slice(&t.to_be_bytes());
    k
}

/// `snap_hashes` key: room, 128-bit state hash (BE).
pub fn snap_hash_key(room: RoomNid, hash: u128) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..4].copy_from_slice(&room.to_be_bytes());
    k[4..].copy_from_slice(&hash.to_be_bytes());
    k
}

/// `event_groups` key: the event id in its stored form
/// ([`super::event_key`]).
pub fn event_key(e: &str) -> Vec<u8> {
    super::event_key::encode(e)
}

/// `group_events` key: group, then the part of the stored event id that
/// finds it in `event_groups` ([`super::event_key::reverse_part`]).
pub fn group_event_key(g: u64, event_key: &[u8]) -> Vec<u8> {
    let part = super::event_key::reverse_part(event_key);
    let mut k = Vec::with_capacity(8 + part.len());
    k.extend_from_slice(&g.to_be_bytes());
    k.extend_from_slice(part);
    k
}

/// `current_state` key: room, type, state key.
pub fn current_key(room: RoomNid, k: IKey) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..4].copy_from_slice(&room.to_be_bytes());
    out[4..].copy_from_slice(&k.to_be_bytes());
    out
}

fn be_u64(bytes: &[u8], what: &'static str) -> Result<u64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::corrupt(what, format!("{bytes:02x?}"), "expected 8 bytes"))?;
    Ok(u64::from_be_bytes(arr))
}

/// Splits a key made of a 4-byte prefix and a u64: returns the u64.
pub fn suffix_u64(key: &[u8], prefix_len: usize, what: &'static str) -> Result<u64> {
    be_u64(key.get(prefix_len..).unwrap_or_default(), what)
}

/// Parses a big-endian u64 key.
pub fn parse_u64(key: &[u8], what: &'static str) -> Result<u64> {
    be_u64(key, what)
}
