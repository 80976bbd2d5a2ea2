//! Finding events in `event_groups` (format 6): a text-form id is its own
//! key; a hash-form id is an entry of the bucket of its first 5 stored
//! bytes (`format::event_bucket`), told apart from the bucket's other
//! entries by its remaining bytes or, for an interned event, by the text
//! of its nid.

use mxstate_api::{GroupId, Result};

use crate::format::event_bucket::{self, Slot, KEY_LEN, REST_LEN};
use crate::format::keys::StrKind;
use crate::format::{event_key, record, values};
use crate::kv::{Cf, KvStore};

use super::{intern, Caches};

/// Where an event id lives in `event_groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A text-form id: its key.
    Text(Vec<u8>),
    /// A hash-form id: its bucket's key and the rest of its stored bytes.
    Bucket([u8; KEY_LEN], [u8; REST_LEN]),
}

impl Place {
    /// The place of event id `text`.
    pub fn of(text: &str) -> Place {
        let stored = event_key::encode(text);
        match event_bucket::split(&stored) {
            Some((key, rest)) => Place::Bucket(key, rest),
            None => Place::Text(stored),
        }
    }

    /// The `event_groups` key to read.
    pub fn key(&self) -> &[u8] {
        match self {
            Place::Text(k) => k,
            Place::Bucket(k, _) => k,
        }
    }
}

/// A bucket's entries from its stored value (`None`: no bucket).
pub fn decode_bucket(key: &[u8], value: Option<&[u8]>) -> Result<Vec<Slot>> {
    match value {
        Some(v) => event_bucket::decode(v, || format!("event_groups/{}", record::shown(key))),
        None => Ok(Vec::new()),
    }
}

/// The index in `slots` (the bucket of `text`, whose stored id ends with
/// `rest`) of the entry of event `text`.
///
/// `known` is the event's nid when the caller knows it is interned;
/// entries naming nids at or past `new_from` are skipped (interned by the
/// caller's unfinished transaction: their texts are not stored yet, and
/// the caller knows its own). Other entries naming a nid are compared by
/// the nid's text, read in one call.
pub fn find(
    kv: &dyn KvStore,
    caches: &Caches,
    slots: &[Slot],
    text: &str,
    rest: &[u8; REST_LEN],
    known: Option<u64>,
    new_from: u64,
) -> Result<Option<usize>> {
    let mut candidates: Vec<(usize, u64)> = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        match *s {
            Slot::Mapped { rest: r, .. } if r == *rest => return Ok(Some(i)),
            Slot::Interned { nid, .. } if known == Some(nid) => return Ok(Some(i)),
            Slot::Interned { nid, .. } if known.is_none() && nid < new_from => candidates.push((i, nid)),
            _ => {}
        }
    }
    if candidates.is_empty() {
        return Ok(None);
    }
    let nids: Vec<u64> = candidates.iter().map(|c| c.1).collect();
    let texts = intern::resolve(kv, caches, StrKind::Event, &nids)?;
    for ((i, nid), t) in candidates.into_iter().zip(texts) {
        if &*t == text {
            caches.remember(StrKind::Event, nid, t);
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The nid of interned hash-form event `text`, read from its bucket.
pub fn interned_nid(kv: &dyn KvStore, caches: &Caches, text: &str) -> Result<Option<u64>> {
    let Place::Bucket(key, rest) = Place::of(text) else {
        return Ok(None);
    };
    let slots = decode_bucket(&key, kv.get(Cf::EventGroups, &key)?.as_deref())?;
    Ok(
        match find(kv, caches, &slots, text, &rest, None, u64::MAX)?.and_then(|i| slots.get(i)) {
            Some(Slot::Interned { nid, .. }) => Some(*nid),
            _ => None,
        },
    )
}

/// The groups of `events` (`None` for an unmapped one), in one multi-get.
pub fn groups_of(kv: &dyn KvStore, caches: &Caches, events: &[&str]) -> Result<Vec<Option<GroupId>>> {
    let places: Vec<Place> = events.iter().map(|e| Place::of(e)).collect();
    let ks: Vec<Vec<u8>> = places.iter().map(|p| p.key().to_vec()).collect();
    let mut out = Vec::with_capacity(events.len());
    for ((p, v), text) in places.iter().zip(kv.multi_get(Cf::EventGroups, &ks)?).zip(events) {
        out.push(match p {
            Place::Text(_) => v.as_deref().map(values::decode_event_group).transpose()?,
            Place::Bucket(key, rest) => {
                let slots = decode_bucket(key, v.as_deref())?;
                let known = caches.nid(StrKind::Event, text);
                find(kv, caches, &slots, text, rest, known, u64::MAX)?
                    .and_then(|i| slots.get(i))
                    .and_then(Slot::group)
            }
        });
    }
    Ok(out)
}

/// The stored id of each of `slots` (bucket `key`) mapped to group `g`.
pub fn stored_ids_in(
    kv: &dyn KvStore,
    caches: &Caches,
    key: &[u8],
    slots: &[Slot],
    g: GroupId,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut nids = Vec::new();
    for s in slots.iter().filter(|s| s.group() == Some(g)) {
        match s {
            Slot::Mapped { rest, .. } => out.push(event_bucket::join(key, rest)),
            Slot::Interned { nid, .. } => nids.push(*nid),
        }
    }
    for t in intern::resolve(kv, caches, StrKind::Event, &nids)? {
        out.push(event_key::encode(&t));
    }
    Ok(out)
}

/// Visits every mapping of the `event_groups` entry `(k, v)`: the event's
/// text and group.
pub fn each_mapping(
    kv: &dyn KvStore,
    caches: &Caches,
    k: &[u8],
    v: &[u8],
    visit: &mut dyn FnMut(std::sync::Arc<str>, GroupId) -> Result<()>,
) -> Result<()> {
    if !event_bucket::is_bucket_key(k) {
        let g = values::decode_event_group(v)?;
        let text = event_key::decode_arc(k, || format!("event_groups/{}", record::shown(k)))?;
        return visit(text, g);
    }
    for s in decode_bucket(k, Some(v))? {
        match s {
            Slot::Mapped { rest, group } => {
                let stored = event_bucket::join(k, &rest);
                let text = event_key::decode_arc(&stored, || format!("event_groups/{}", record::shown(k)))?;
                visit(text, group)?;
            }
            Slot::Interned { nid, group: Some(g) } => {
                visit(intern::resolve_one(kv, caches, StrKind::Event, nid)?, g)?;
            }
            Slot::Interned { group: None, .. } => {}
        }
    }
    Ok(())
}
