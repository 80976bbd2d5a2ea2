//! Writing the two indexes of event mappings: `event_groups` (a text-form
//! id -> group; a bucket of hash-form ids, `format::event_bucket`) and
//! `group_events` (group + a part of the stored id -> empty). A hash-form
//! id keeps only its first 5 bytes (its bucket key) in the reverse index,
//! so two events of one group may share a reverse entry.
//!
//! Buckets are read into the transaction once, changed there (interning
//! an event, mapping it, purging a group) and written when it finishes.

use rustc_hash::FxHashMap;

use mxstate_api::{GroupId, Result};

use crate::access::event_index::{self, Place};
use crate::format::event_bucket::{self, Slot, KEY_LEN, REST_LEN};
use crate::format::keys::{self, StrKind};
use crate::format::values;
use crate::kv::{Batch, Cf};

use super::txn::{Txn, EVENT_SLOT};

/// The buckets a transaction has read, with its changes.
#[derive(Default)]
pub struct Buckets {
    map: FxHashMap<[u8; KEY_LEN], Bucket>,
}

struct Bucket {
    slots: Vec<Slot>,
    dirty: bool,
}

impl Buckets {
    /// Writes the changed buckets into `batch` (an emptied one deleted).
    pub fn write(self, batch: &mut Batch) {
        for (key, b) in self.map {
            if !b.dirty {
                continue;
            }
            if b.slots.is_empty() {
                batch.delete(Cf::EventGroups, key.to_vec());
            } else {
                batch.put(Cf::EventGroups, key.to_vec(), event_bucket::encode(&b.slots));
            }
        }
    }
}

impl Txn<'_> {
    /// Reads the buckets `keys` not read yet, in one multi-get.
    pub fn load_buckets(&mut self, keys: impl IntoIterator<Item = [u8; KEY_LEN]>) -> Result<()> {
        let wanted = self.buckets_to_load(keys);
        let ks: Vec<Vec<u8>> = wanted.iter().map(|k| k.to_vec()).collect();
        let values = match ks.as_slice() {
            [] => return Ok(()),
            [one] => vec![self.kv.get(Cf::EventGroups, one)?],
            _ => self.kv.multi_get(Cf::EventGroups, &ks)?,
        };
        self.loaded_buckets(wanted, values)
    }

    /// The buckets of `keys` not read yet, sorted and distinct.
    pub(super) fn buckets_to_load(&self, keys: impl IntoIterator<Item = [u8; KEY_LEN]>) -> Vec<[u8; KEY_LEN]> {
        let mut wanted: Vec<[u8; KEY_LEN]> = keys.into_iter().filter(|k| !self.buckets.map.contains_key(k)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted
    }

    /// Takes in buckets `keys` as read (`values`, in order).
    pub(super) fn loaded_buckets(&mut self, keys: Vec<[u8; KEY_LEN]>, values: Vec<Option<Vec<u8>>>) -> Result<()> {
        if keys.len() != values.len() {
            return Err(mxstate_api::Error::internal(format!(
                "{} buckets asked for, {} answers",
                keys.len(),
                values.len()
            )));
        }
        for (key, v) in keys.into_iter().zip(values) {
            let slots = event_index::decode_bucket(&key, v.as_deref())?;
            self.buckets.map.insert(key, Bucket { slots, dirty: false });
        }
        Ok(())
    }

    /// The entry of hash-form event `text` in its bucket (read if needed).
    /// `maybe_interned: false` skips the entries naming nids (the caller
    /// knows the event is not interned).
    fn find_in_bucket(
        &mut self,
        text: &str,
        key: [u8; KEY_LEN],
        rest: &[u8; REST_LEN],
        maybe_interned: bool,
    ) -> Result<Option<usize>> {
        self.load_buckets([key])?;
        let (known, new_from) = if maybe_interned {
            let known = self.new_strings[EVENT_SLOT]
                .get(text)
                .copied()
                .or_else(|| self.caches.nid(StrKind::Event, text));
            (known, self.counters_at_start.peek_nid(StrKind::Event))
        } else {
            (None, 0)
        };
        let slots = self.buckets.map.get(&key).map_or(&[][..], |b| &b.slots);
        event_index::find(self.kv, self.caches, slots, text, rest, known, new_from)
    }

    fn bucket_mut(&mut self, key: &[u8; KEY_LEN]) -> &mut Vec<Slot> {
        let b = self.buckets.map.entry(*key).or_insert_with(|| Bucket {
            slots: Vec::new(),
            dirty: false,
        });
        b.dirty = true;
        &mut b.slots
    }

    /// The nid of hash-form event `text`, interning it (an entry in its
    /// bucket, no `strings` entry) if new. `key`, `rest`: its place.
    pub(super) fn intern_hashed(&mut self, text: &str, key: [u8; KEY_LEN], rest: &[u8; REST_LEN]) -> Result<u64> {
        let maybe_interned = !self.absent_strings[EVENT_SLOT].contains(text);
        let found = self.find_in_bucket(text, key, rest, maybe_interned)?;
        let slot = found.and_then(|i| self.buckets.map.get(&key).and_then(|b| b.slots.get(i)).copied());
        if let Some(Slot::Interned { nid, .. }) = slot {
            return Ok(nid);
        }
        let n = self.counters.next_nid(StrKind::Event)?;
        let slots = self.bucket_mut(&key);
        match (found, slot) {
            (Some(i), Some(Slot::Mapped { group, .. })) => {
                if let Some(s) = slots.get_mut(i) {
                    *s = Slot::Interned {
                        nid: n,
                        group: Some(group),
                    };
                }
            }
            _ => slots.push(Slot::Interned { nid: n, group: None }),
        }
        self.new_texts[EVENT_SLOT].push((n, event_bucket::join(&key, rest)));
        self.new_strings[EVENT_SLOT].insert(std::sync::Arc::from(text), n);
        Ok(n)
    }

    /// Whether prefetched hash-form event `text` is interned: its nid
    /// remembered in the caches, or the event remembered as absent.
    /// `key`, `rest`: its place.
    pub(super) fn settle_prefetched(&mut self, text: &str, key: [u8; KEY_LEN], rest: &[u8; REST_LEN]) -> Result<()> {
        let found = self.find_in_bucket(text, key, rest, true)?;
        let slot = found.and_then(|i| self.buckets.map.get(&key).and_then(|b| b.slots.get(i)).copied());
        match slot {
            Some(Slot::Interned { nid, .. }) => self.caches.remember(StrKind::Event, nid, std::sync::Arc::from(text)),
            _ => {
                self.absent_strings[EVENT_SLOT].insert(Box::from(text));
            }
        }
        Ok(())
    }

    /// Reads, in one multi-get each, what `events` are mapped to: the
    /// buckets of hash-form ids, the values of text-form ones. Returns the
    /// text-form values.
    pub fn load_events(&mut self, events: &[&str]) -> Result<FxHashMap<Vec<u8>, GroupId>> {
        let places: Vec<Place> = events.iter().map(|e| Place::of(e)).collect();
        self.load_buckets(places.iter().filter_map(|p| match p {
            Place::Bucket(k, _) => Some(*k),
            Place::Text(_) => None,
        }))?;
        let texts: Vec<Vec<u8>> = places
            .into_iter()
            .filter_map(|p| match p {
                Place::Text(k) => Some(k),
                Place::Bucket(..) => None,
            })
            .collect();
        let mut out = FxHashMap::default();
        if !texts.is_empty() {
            for (k, v) in texts.iter().zip(self.kv.multi_get(Cf::EventGroups, &texts)?) {
                if let Some(v) = v {
                    out.insert(k.clone(), values::decode_event_group(&v)?);
                }
            }
        }
        Ok(out)
    }

    /// The group event `text` is mapped to in this transaction's view
    /// (text-form ids: `text_values` from [`Txn::load_events`]).
    pub fn event_group_of(&mut self, text: &str, text_values: &FxHashMap<Vec<u8>, GroupId>) -> Result<Option<GroupId>> {
        match Place::of(text) {
            Place::Text(k) => Ok(text_values.get(&k).copied()),
            Place::Bucket(key, rest) => {
                let found = self.find_in_bucket(text, key, &rest, true)?;
                Ok(found
                    .and_then(|i| self.buckets.map.get(&key).and_then(|b| b.slots.get(i)))
                    .and_then(Slot::group))
            }
        }
    }

    /// Maps event `text` to group `g` (both indexes). A previous mapping's
    /// reverse entry is the caller's to drop ([`Txn::delete_reverse`]),
    /// before this: it may be shared.
    pub fn map_event(&mut self, text: &str, g: GroupId) -> Result<()> {
        match Place::of(text) {
            Place::Text(k) => {
                self.batch
                    .put(Cf::GroupEvents, keys::group_event_key(g, &k), Vec::new());
                self.batch.put(Cf::EventGroups, k, values::encode_event_group(g));
            }
            Place::Bucket(key, rest) => {
                let found = self.find_in_bucket(text, key, &rest, true)?;
                let slots = self.bucket_mut(&key);
                match found.and_then(|i| slots.get_mut(i)) {
                    Some(Slot::Mapped { group, .. }) => *group = g,
                    Some(Slot::Interned { group, .. }) => *group = Some(g),
                    None => slots.push(Slot::Mapped { rest, group: g }),
                }
                self.batch
                    .put(Cf::GroupEvents, keys::group_event_key(g, &key), Vec::new());
            }
        }
        Ok(())
    }

    /// Drops the reverse entry `part` (a bucket key or a text-form id) of
    /// group `g`.
    pub fn delete_reverse(&mut self, part: &[u8], g: GroupId) {
        self.batch.delete(Cf::GroupEvents, keys::group_event_key(g, part));
    }

    /// The stored ids of the events behind reverse entry `part` of group
    /// `g`: the events of bucket `part` (the event `part`, for a text-form
    /// id) mapped to `g`.
    pub fn events_of_part(&mut self, part: &[u8], g: GroupId) -> Result<Vec<Vec<u8>>> {
        let Some(key) = bucket_key(part) else {
            let mapped = match self.kv.get(Cf::EventGroups, part)? {
                Some(v) => values::decode_event_group(&v)? == g,
                None => false,
            };
            return Ok(if mapped { vec![part.to_vec()] } else { Vec::new() });
        };
        self.load_buckets([key])?;
        let slots = self.buckets.map.get(&key).map_or(&[][..], |b| &b.slots);
        let new_from = self.counters_at_start.peek_nid(StrKind::Event);
        // Events interned by this transaction: their texts are its own.
        let (mine, stored): (Vec<Slot>, Vec<Slot>) = slots
            .iter()
            .partition(|s| matches!(s, Slot::Interned { nid, .. } if *nid >= new_from));
        let mut out = event_index::stored_ids_in(self.kv, self.caches, &key, &stored, g)?;
        for s in mine.iter().filter(|s| s.group() == Some(g)) {
            if let Slot::Interned { nid, .. } = s {
                if let Ok(i) = self.new_texts[EVENT_SLOT].binary_search_by_key(nid, |(n, _)| *n) {
                    out.extend(self.new_texts[EVENT_SLOT].get(i).map(|(_, t)| t.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Removes every mapping to group `g` behind reverse entry `part`, and
    /// the entry (a purge of `g`).
    pub fn unmap_part(&mut self, part: &[u8], g: GroupId) -> Result<()> {
        match bucket_key(part) {
            None => {
                if let Some(v) = self.kv.get(Cf::EventGroups, part)? {
                    if values::decode_event_group(&v)? == g {
                        self.batch.delete(Cf::EventGroups, part.to_vec());
                    }
                }
            }
            Some(key) => {
                self.load_buckets([key])?;
                let slots = self.bucket_mut(&key);
                slots.retain(|s| !matches!(s, Slot::Mapped { group, .. } if *group == g));
                for s in slots.iter_mut() {
                    if let Slot::Interned { group, .. } = s {
                        if *group == Some(g) {
                            *group = None;
                        }
                    }
                }
            }
        }
        self.delete_reverse(part, g);
        Ok(())
    }
}

fn bucket_key(part: &[u8]) -> Option<[u8; KEY_LEN]> {
    if event_bucket::is_bucket_key(part) {
        part.try_into().ok()
    } else {
        None
    }
}
