//! A write transaction: everything one call writes, gathered into one atomic
//! batch, with an overlay so later steps see earlier ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use mxstate_api::{Error, GroupId, Result};

use crate::access::event_index::Place;
use crate::access::{at, intern, Caches, Committed, Source};
use crate::format::counters::Counters;
use crate::format::deletion::{self, Pending};
use crate::format::group::GroupRecord;
use crate::format::keys::{self, EventNid, IKey, RoomNid, StrKind, TypeNid};
use crate::format::nid_block;
use crate::format::snapshot::{Section, SnapHeader};
use crate::format::values;
use crate::kv::{Batch, Cf, KvStore};

use super::chain::RunMemory;
use super::event_map::Buckets;

const KINDS: [StrKind; 4] = [StrKind::Room, StrKind::Type, StrKind::Skey, StrKind::Event];

fn kind_slot(kind: StrKind) -> usize {
    match kind {
        StrKind::Room => 0,
        StrKind::Type => 1,
        StrKind::Skey => 2,
        StrKind::Event => EVENT_SLOT,
    }
}

/// The slot of event ids in the per-kind fields.
pub(super) const EVENT_SLOT: usize = 3;

/// The engine's memory of each room's last id range in the room index,
/// kept between transactions so that an append costs no read (see
/// `room_index`). Cleared when a transaction rewrites records.
#[derive(Default)]
pub struct LastRanges {
    last: FxHashMap<RoomNid, Option<(GroupId, GroupId)>>,
}

impl LastRanges {
    /// The remembered last range of `room`: `None` when not remembered,
    /// `Some(None)` when the room has no range.
    pub fn get(&self, room: RoomNid) -> Option<Option<(GroupId, GroupId)>> {
        self.last.get(&room).copied()
    }
    /// Remembers the last range of `room`.
    pub fn set(&mut self, room: RoomNid, range: Option<(GroupId, GroupId)>) {
        self.last.insert(room, range);
    }
}

/// What the engine's writer remembers between transactions, so that a
/// store reads nothing for it: each room's last index range and the chain
/// runs of recently stored groups. A transaction that rewrites records
/// hands back an empty memory.
#[derive(Default)]
pub struct WriterMemory {
    pub ranges: LastRanges,
    pub runs: RunMemory,
    /// Per string kind, the texts written as single keys in the last,
    /// incomplete `nids` block.
    texts: [UnpackedTexts; 4],
}

/// The texts of one `nids` block written as single keys by earlier
/// transactions, nids ascending: the transaction that completes the block
/// packs them without reading them back (a range read of up to 63 keys,
/// and most of the cost of the one store in 32 that packs a block).
#[derive(Default)]
struct UnpackedTexts {
    block: u64,
    texts: Vec<(u64, Vec<u8>)>,
}

impl UnpackedTexts {
    /// Remembers `texts` (ascending nids of `block`), written as single keys.
    fn add(&mut self, block: u64, texts: &[(u64, Vec<u8>)]) {
        let follows = self.texts.last().map(|&(n, _)| n + 1) == texts.first().map(|&(n, _)| n);
        if self.block != block || !follows {
            self.texts.clear();
            self.block = block;
        }
        self.texts.extend_from_slice(texts);
    }

    /// The texts of nids `from..before` of `block`, if exactly those are held.
    fn take(&mut self, block: u64, from: u64, before: u64) -> Option<Vec<(u64, Vec<u8>)>> {
        let exact = self.block == block
            && self.texts.first().map(|&(n, _)| n) == Some(from)
            && self.texts.last().map(|&(n, _)| n + 1) == Some(before)
            && self.texts.len() as u64 == before - from;
        exact.then(|| std::mem::take(&mut self.texts))
    }
}

/// Pending writes of one call. Every write goes through a method that
/// keeps the overlay in step, so later steps see earlier ones.
pub struct Txn<'a> {
    pub(super) kv: &'a dyn KvStore,
    pub(super) caches: &'a Caches,
    pub(super) batch: Batch,
    pub(super) counters: Counters,
    /// Strings interned by this transaction, one map per kind.
    pub(super) new_strings: [FxHashMap<Arc<str>, u64>; 4],
    /// Their `(nid, stored text)`, in nid order, one list per kind: written
    /// to `nids` when the transaction finishes (`write_texts`).
    pub(super) new_texts: [Vec<(u64, Vec<u8>)>; 4],
    records: FxHashMap<u64, Option<Arc<GroupRecord>>>,
    /// Strings (one set per kind) and groups read by `prefetch` and found
    /// absent from the store: no point read for them again.
    pub(super) absent_strings: [FxHashSet<Box<str>>; 4],
    absent_groups: FxHashSet<u64>,
    headers: FxHashMap<u64, Option<Arc<SnapHeader>>>,
    sections: FxHashMap<(u64, TypeNid), Arc<Section>>,
    snap_hashes: FxHashMap<(RoomNid, u128), Option<u64>>,
    dropped_sections: FxHashSet<u64>,
    /// Set when existing records change (purges): cached chains go stale.
    rewrites_records: bool,
    memory: WriterMemory,
    /// Deletion-protocol marks written by this transaction.
    pending: FxHashMap<GroupId, Option<Pending>>,
    persisting: BTreeMap<(GroupId, String), Option<u64>>,
    deletion_seq: Option<u64>,
    /// The counters as the transaction found them.
    pub(super) counters_at_start: Counters,
    /// The `event_groups` buckets read, with their changes.
    pub(super) buckets: Buckets,
}

impl<'a> Txn<'a> {
    /// Starts a transaction from the current counters.
    pub fn new(kv: &'a dyn KvStore, caches: &'a Caches, counters: Counters, memory: WriterMemory) -> Self {
        Txn {
            kv,
            caches,
            batch: Batch::default(),
            counters,
            new_strings: Default::default(),
            new_texts: Default::default(),
            records: FxHashMap::default(),
            absent_strings: Default::default(),
            absent_groups: FxHashSet::default(),
            headers: FxHashMap::default(),
            sections: FxHashMap::default(),
            snap_hashes: FxHashMap::default(),
            dropped_sections: FxHashSet::default(),
            rewrites_records: false,
            memory,
            pending: FxHashMap::default(),
            persisting: BTreeMap::new(),
            deletion_seq: None,
            counters_at_start: counters,
            buckets: Buckets::default(),
        }
    }

    /// The committed store, for scans of what the overlay does not hold
    /// (room index, event mappings, current state).
    pub fn kv(&self) -> &'a dyn KvStore {
        self.kv
    }

    /// The engine's caches.
    pub fn caches(&self) -> &'a Caches {
        self.caches
    }

    /// The next group id the counters would give.
    pub fn next_group_id(&self) -> GroupId {
        self.counters.group
    }

    /// Records that group `id` is used: the counter moves past it.
    pub fn group_used(&mut self, id: GroupId) -> Result<()> {
        let next = id.checked_add(1).ok_or(Error::Capacity {
            what: "state group id",
            value: id,
            limit: "u64",
        })?;
        self.counters.group = self.counters.group.max(next);
        Ok(())
    }

    /// Marks this transaction as rewriting existing records (purges):
    /// cached chains and the writer's memory go stale.
    pub fn rewriting_records(&mut self) {
        self.rewrites_records = true;
    }

    /// The memory of each room's last range.
    pub fn last_ranges(&mut self) -> &mut LastRanges {
        &mut self.memory.ranges
    }

    /// The memory of recently stored groups' chain runs.
    pub fn runs(&mut self) -> &mut RunMemory {
        &mut self.memory.runs
    }

    fn committed(&self) -> Committed<'a> {
        Committed {
            kv: self.kv,
            caches: self.caches,
        }
    }

    /// The nid of `s`, without interning it.
    pub fn lookup(&self, kind: StrKind, s: &str) -> Result<Option<u64>> {
        if let Some(&n) = self.new_strings[kind_slot(kind)].get(s) {
            return Ok(Some(n));
        }
        if self.absent_strings[kind_slot(kind)].contains(s) {
            return Ok(None);
        }
        intern::lookup(self.kv, self.caches, kind, s)
    }

    /// Reads in one multi-get the strings of `wanted` (of each kind, its
    /// strings) that are neither new in this transaction nor cached:
    /// those found are cached, those absent remembered, so that interning
    /// them later reads nothing (a batch of groups then costs one read for
    /// its strings, not one per string; a single group with a new event
    /// and a new state key, one instead of two).
    pub fn prefetch_strings(&mut self, wanted: &[(StrKind, &[&str])]) -> Result<()> {
        let mut unknown: Vec<(StrKind, &str)> = Vec::new();
        for &(kind, strs) in wanted {
            let slot = kind_slot(kind);
            let mut mine: Vec<&str> = strs
                .iter()
                .copied()
                .filter(|s| {
                    !self.new_strings[slot].contains_key(*s)
                        && !self.absent_strings[slot].contains(*s)
                        && self.caches.nid(kind, s).is_none()
                })
                .collect();
            mine.sort_unstable();
            mine.dedup();
            unknown.extend(mine.into_iter().map(|s| (kind, s)));
        }
        if unknown.len() < 2 {
            // One string: interning it reads it as cheaply.
            return Ok(());
        }
        // Hash-form event ids: their buckets in `event_groups` (format 6),
        // read with the strings in one call.
        let mut hashed = Vec::new();
        let mut strings = Vec::with_capacity(unknown.len());
        for (kind, s) in unknown {
            if kind == StrKind::Event {
                if let Place::Bucket(key, rest) = Place::of(s) {
                    hashed.push((s, key, rest));
                    continue;
                }
            }
            strings.push((kind, s));
        }
        let unknown = strings;
        let buckets = self.buckets_to_load(hashed.iter().map(|h| h.1));
        let ks: Vec<Vec<u8>> = unknown.iter().map(|&(kind, s)| keys::string_key(kind, s)).collect();
        let mut wanted = Vec::with_capacity(2);
        if !buckets.is_empty() {
            wanted.push((Cf::EventGroups, buckets.iter().map(|k| k.to_vec()).collect()));
        }
        if !ks.is_empty() {
            wanted.push((Cf::Strings, ks));
        }
        let mut got = match wanted.as_slice() {
            [] => Vec::new(),
            [(cf, keys)] => vec![self.kv.multi_get(*cf, keys)?],
            _ => self.kv.multi_get_families(&wanted)?,
        }
        .into_iter();
        if !buckets.is_empty() {
            let values = got
                .next()
                .ok_or_else(|| Error::internal("prefetch: the buckets' answers are missing"))?;
            self.loaded_buckets(buckets, values)?;
        }
        for (s, key, rest) in &hashed {
            self.settle_prefetched(s, *key, rest)?;
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let strings = got
            .next()
            .ok_or_else(|| Error::internal("prefetch: the strings' answers are missing"))?;
        for ((kind, s), v) in unknown.into_iter().zip(strings) {
            match v {
                Some(v) => self
                    .caches
                    .remember(kind, values::decode_string_nid(&v)?, std::sync::Arc::from(s)),
                None => {
                    self.absent_strings[kind_slot(kind)].insert(Box::from(s));
                }
            }
        }
        Ok(())
    }

    /// Reads in one multi-get whether the groups `ids` exist, remembering
    /// those that do not (callers choosing ids check each is free).
    pub fn prefetch_groups(&mut self, ids: &[u64]) -> Result<()> {
        let mut unknown: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|g| !self.records.contains_key(g) && self.caches.records.get(g).is_none())
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.len() < 2 {
            return Ok(());
        }
        let ks: Vec<Vec<u8>> = unknown.iter().map(|&g| keys::group_key(g).to_vec()).collect();
        for (g, v) in unknown.into_iter().zip(self.kv.multi_get(Cf::Groups, &ks)?) {
            if v.is_none() {
                self.absent_groups.insert(g);
            }
        }
        Ok(())
    }

    /// The nid of `s`, interning it in this transaction if new.
    pub fn intern(&mut self, kind: StrKind, s: &str) -> Result<u64> {
        if kind == StrKind::Event {
            if let Place::Bucket(key, rest) = Place::of(s) {
                if let Some(&n) = self.new_strings[EVENT_SLOT].get(s) {
                    return Ok(n);
                }
                if let Some(n) = self.caches.nid(kind, s) {
                    return Ok(n);
                }
                return self.intern_hashed(s, key, &rest);
            }
        }
        if let Some(n) = self.lookup(kind, s)? {
            return Ok(n);
        }
        let n = self.counters.next_nid(kind)?;
        self.batch
            .put(Cf::Strings, keys::string_key(kind, s), values::encode_string_nid(n));
        self.new_texts[kind_slot(kind)].push((n, keys::text_bytes(kind, s).into_owned()));
        self.new_strings[kind_slot(kind)].insert(Arc::from(s), n);
        Ok(n)
    }

    /// Interns many strings at once (one multi-get for the misses); each
    /// answer says whether the string is new in this transaction.
    pub fn intern_many(&mut self, kind: StrKind, strs: &[&str]) -> Result<Vec<(u64, bool)>> {
        let slot = kind_slot(kind);
        if kind == StrKind::Event {
            // Hash-form ids live in `event_groups` buckets: read them all
            // at once, then intern each.
            self.prefetch_strings(&[(kind, strs)])?;
            return strs
                .iter()
                .map(|s| {
                    let n = self.intern(kind, s)?;
                    Ok((n, self.new_strings[slot].contains_key(*s)))
                })
                .collect();
        }
        let mut out: Vec<Option<(u64, bool)>> = strs
            .iter()
            .map(|s| match self.new_strings[slot].get(*s) {
                Some(&n) => Some((n, true)),
                None => self.caches.nid(kind, s).map(|n| (n, false)),
            })
            .collect();
        let missing: Vec<usize> = (0..strs.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let ks: Vec<Vec<u8>> = missing.iter().map(|&i| keys::string_key(kind, strs[i])).collect();
            for (&i, v) in missing.iter().zip(self.kv.multi_get(Cf::Strings, &ks)?) {
                out[i] = match v {
                    Some(v) => {
                        let n = values::decode_string_nid(&v)?;
                        self.caches.remember(kind, n, std::sync::Arc::from(strs[i]));
                        Some((n, false))
                    }
                    None => {
                        let fresh = !self.new_strings[slot].contains_key(strs[i]);
                        Some((self.intern(kind, strs[i])?, fresh))
                    }
                };
            }
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| Error::internal("intern_many: a string was left unresolved")))
            .collect()
    }

    /// Interns a `(type, state_key)` pair.
    pub fn intern_key(&mut self, t: &str, s: &str) -> Result<IKey> {
        let t = keys::type_nid(self.intern(StrKind::Type, t)?)?;
        let s = keys::skey_nid(self.intern(StrKind::Skey, s)?)?;
        Ok(keys::ikey(t, s))
    }

    /// Interns a room id.
    pub fn intern_room(&mut self, room: &str) -> Result<RoomNid> {
        keys::room_nid(self.intern(StrKind::Room, room)?)
    }

    /// Writes a group record.
    pub fn put_record(&mut self, g: u64, rec: GroupRecord) {
        let mut v = Vec::with_capacity(32);
        rec.encode(g, &mut v);
        self.batch.put(Cf::Groups, keys::group_key(g).to_vec(), v);
        self.records.insert(g, Some(Arc::new(rec)));
    }

    /// Deletes a group record.
    pub fn delete_record(&mut self, g: u64) {
        self.batch.delete(Cf::Groups, keys::group_key(g).to_vec());
        self.records.insert(g, None);
    }

    /// Stores the full `state` (sorted) of a room as a snapshot, or takes
    /// another reference on an identical one. Returns the snapshot id.
    pub fn put_snapshot(&mut self, room: RoomNid, state: &[(IKey, EventNid)]) -> Result<u64> {
        let hash = state_hash(state);
        if let Some(snap) = self.snap_by_hash(room, hash)? {
            let mut h = (*self.header(snap)?).clone();
            h.refs += 1;
            self.put_header(snap, h);
            return Ok(snap);
        }
        let snap = self.counters.snap;
        self.counters.snap += 1;
        let mut types = Vec::new();
        let mut i = 0;
        while i < state.len() {
            let t = keys::ikey_type(state[i].0);
            let mut sec = Section::default();
            while let Some(&(k, e)) = state.get(i).filter(|(k, _)| keys::ikey_type(*k) == t) {
                sec.skeys.push(keys::ikey_skey(k));
                sec.events.push(e);
                i += 1;
            }
            self.batch
                .put(Cf::Snapshots, keys::snap_section_key(snap, t).to_vec(), sec.encode());
            self.sections.insert((snap, t), Arc::new(sec));
            types.push(t);
        }
        self.put_header(
            snap,
            SnapHeader {
                room,
                hash,
                refs: 1,
                entries: state.len() as u64,
                types,
            },
        );
        self.batch.put(
            Cf::SnapHashes,
            keys::snap_hash_key(room, hash).to_vec(),
            values::encode_snap_ref(snap).to_vec(),
        );
        self.snap_hashes.insert((room, hash), Some(snap));
        Ok(snap)
    }

    /// Drops one reference on a snapshot, deleting it with the last.
    pub fn unref_snapshot(&mut self, snap: u64) -> Result<()> {
        let mut h = (*self.header(snap)?).clone();
        h.refs = h.refs.saturating_sub(1);
        if h.refs > 0 {
            self.put_header(snap, h);
            return Ok(());
        }
        self.drop_snapshot(snap, &h);
        Ok(())
    }

    /// Deletes a snapshot whatever its references.
    pub fn drop_snapshot(&mut self, snap: u64, h: &SnapHeader) {
        for &t in &h.types {
            self.batch
                .delete(Cf::Snapshots, keys::snap_section_key(snap, t).to_vec());
        }
        self.batch.delete(Cf::Snapshots, keys::snap_header_key(snap).to_vec());
        self.batch
            .delete(Cf::SnapHashes, keys::snap_hash_key(h.room, h.hash).to_vec());
        self.headers.insert(snap, None);
        self.snap_hashes.insert((h.room, h.hash), None);
        self.dropped_sections.insert(snap);
    }

    fn put_header(&mut self, snap: u64, h: SnapHeader) {
        self.batch
            .put(Cf::Snapshots, keys::snap_header_key(snap).to_vec(), h.encode());
        self.headers.insert(snap, Some(Arc::new(h)));
    }

    fn snap_by_hash(&self, room: RoomNid, hash: u128) -> Result<Option<u64>> {
        if let Some(s) = self.snap_hashes.get(&(room, hash)) {
            return Ok(*s);
        }
        match self.kv.get(Cf::SnapHashes, &keys::snap_hash_key(room, hash))? {
            None => Ok(None),
            Some(v) => Ok(Some(values::decode_snap_ref(&v, format!("snap_hashes/{room}"))?)),
        }
    }

    /// Puts a `meta` record.
    pub fn put_meta(&mut self, key: &[u8], value: Vec<u8>) {
        self.batch.put(Cf::Meta, key.to_vec(), value);
    }

    /// Records an event's auth events (encoded by `format::auth`).
    pub fn put_auth(&mut self, room: RoomNid, e: EventNid, value: Vec<u8>) {
        self.batch
            .put(Cf::Auth, crate::format::auth::auth_key(room, e).to_vec(), value);
    }

    /// Deletes a room's auth records (every event's).
    pub fn clear_auth(&mut self, room: RoomNid) -> Result<()> {
        self.clear_room(Cf::Auth, room)
    }

    /// Deletes every record of `cf` under a room's prefix.
    fn clear_room(&mut self, cf: Cf, room: RoomNid) -> Result<()> {
        let mut old = Vec::new();
        self.kv.scan_prefix(cf, &keys::room_prefix(room), &mut |k, _| {
            old.push(k.to_vec());
            Ok(true)
        })?;
        for k in old {
            self.batch.delete(cf, k);
        }
        Ok(())
    }

    /// Sets one entry of a room's current state.
    pub fn put_current(&mut self, room: RoomNid, k: IKey, e: EventNid) {
        self.batch.put(
            Cf::CurrentState,
            keys::current_key(room, k).to_vec(),
            values::encode_current_event(e),
        );
    }

    /// Deletes a room's current state (every entry).
    pub fn clear_current(&mut self, room: RoomNid) -> Result<()> {
        self.clear_room(Cf::CurrentState, room)
    }

    /// Puts a room index entry (a range start with its length, or a ghost).
    pub fn put_room_entry(&mut self, room: RoomNid, tag: u8, g: GroupId, value: Vec<u8>) {
        self.batch
            .put(Cf::RoomGroups, keys::room_group_key(room, tag, g).to_vec(), value);
    }

    /// Deletes a room index entry.
    pub fn delete_room_entry(&mut self, room: RoomNid, tag: u8, g: GroupId) {
        self.batch
            .delete(Cf::RoomGroups, keys::room_group_key(room, tag, g).to_vec());
    }

    /// A group's pending-deletion mark, as this transaction sees it.
    pub fn pending(&self, g: GroupId) -> Result<Option<Pending>> {
        if let Some(p) = self.pending.get(&g) {
            return Ok(*p);
        }
        match self.kv.get(Cf::Deletion, &deletion::pending_key(g))? {
            Some(v) => Ok(Some(Pending::decode(&v).map_err(|e| at(e, format!("deletion/P/{g}")))?)),
            None => Ok(None),
        }
    }

    /// Sets or clears a group's pending-deletion mark (and its time index).
    pub fn set_pending(&mut self, g: GroupId, p: Option<Pending>) -> Result<()> {
        if let Some(old) = self.pending(g)? {
            self.batch
                .delete(Cf::Deletion, deletion::by_time_key(old.ts, g).to_vec());
        }
        match p {
            Some(p) => {
                self.batch
                    .put(Cf::Deletion, deletion::pending_key(g).to_vec(), p.encode());
                self.batch
                    .put(Cf::Deletion, deletion::by_time_key(p.ts, g).to_vec(), Vec::new());
            }
            None => self.batch.delete(Cf::Deletion, deletion::pending_key(g).to_vec()),
        }
        self.pending.insert(g, p);
        Ok(())
    }

    /// A new deletion sequence number.
    pub fn next_deletion_seq(&mut self) -> Result<u64> {
        let next = match self.deletion_seq {
            Some(n) => n,
            None => match self.kv.get(Cf::Deletion, deletion::SEQUENCE)? {
                Some(v) => deletion::decode_varint(&v, "deletion sequence")?,
                None => 1,
            },
        };
        let after = next.checked_add(1).ok_or(Error::Capacity {
            what: "deletion sequence number",
            value: next,
            limit: "u64",
        })?;
        self.deletion_seq = Some(after);
        self.batch.put(
            Cf::Deletion,
            deletion::SEQUENCE.to_vec(),
            deletion::encode_varint(after),
        );
        Ok(next)
    }

    /// The persists in flight that use group `g`: `(instance, inserted_ts)`.
    pub fn persisting(&self, g: GroupId) -> Result<Vec<(String, u64)>> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        self.kv
            .scan_prefix(Cf::Deletion, &deletion::persisting_prefix(g), &mut |k, v| {
                let (_, instance) = deletion::parse_persisting_key(k)?;
                out.insert(instance, deletion::decode_varint(v, "persisting entry")?);
                Ok(true)
            })?;
        for ((og, instance), ts) in &self.persisting {
            if *og == g {
                match ts {
                    Some(ts) => out.insert(instance.clone(), *ts),
                    None => out.remove(instance),
                };
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Records (or, with `None`, clears) a persist in flight of `instance` using `g`.
    pub fn set_persisting(&mut self, g: GroupId, instance: &str, ts: Option<u64>) {
        let k = deletion::persisting_key(g, instance);
        match ts {
            Some(ts) => self.batch.put(Cf::Deletion, k, deletion::encode_varint(ts)),
            None => self.batch.delete(Cf::Deletion, k),
        }
        self.persisting.insert((g, instance.to_owned()), ts);
    }

    /// Writes the texts of the strings interned by this transaction to
    /// `nids`: each block that this transaction completes (the counter now
    /// past its end) packed, with the single keys of its nids interned by
    /// earlier transactions deleted; the nids of the last, incomplete block
    /// as single keys.
    fn write_texts(&mut self) -> Result<()> {
        for kind in KINDS {
            let texts = std::mem::take(&mut self.new_texts[kind_slot(kind)]);
            let Some(&(first, _)) = texts.first() else {
                continue;
            };
            let next = self.counters.peek_nid(kind);
            for mine in texts.chunk_by(|(a, _), (b, _)| nid_block::block_of(*a) == nid_block::block_of(*b)) {
                let block = nid_block::block_of(mine.first().map_or(first, |(n, _)| *n));
                if !nid_block::is_complete(block, next) {
                    for (n, t) in mine {
                        self.batch.put(Cf::Nids, keys::nid_key(kind, *n).to_vec(), t.clone());
                    }
                    self.memory.texts[kind_slot(kind)].add(block, mine);
                    continue;
                }
                // Earlier nids of the block are single keys of earlier
                // transactions: remembered by the writer, else read.
                let from = nid_block::first_nid(block);
                let before = mine.first().map_or(first, |&(n, _)| n);
                let remembered = if from < before {
                    self.memory.texts[kind_slot(kind)].take(block, from, before)
                } else {
                    None
                };
                let read_back = remembered.is_none();
                let mut earlier: Vec<(u64, Vec<u8>)> = remembered.unwrap_or_default();
                if from < before && read_back {
                    self.kv.scan_range(
                        Cf::Nids,
                        &keys::nid_key(kind, from),
                        &keys::nid_key(kind, before),
                        &mut |k, v| {
                            earlier.push((keys::suffix_u64(k, 1, "nids key")?, v.to_vec()));
                            Ok(true)
                        },
                    )?;
                }
                for (n, _) in &earlier {
                    self.batch.delete(Cf::Nids, keys::nid_key(kind, *n).to_vec());
                }
                let all = earlier.iter().chain(mine).map(|(n, t)| (*n, t.as_slice()));
                self.batch.put(
                    Cf::Nids,
                    keys::nid_block_key(kind, block).to_vec(),
                    nid_block::encode(all),
                );
            }
        }
        Ok(())
    }

    /// Writes the interned texts and the counters and hands back the batch
    /// and what the caches must learn once it is committed.
    pub fn finish(mut self) -> Result<(Batch, Counters, WriterMemory, CacheUpdate)> {
        self.write_texts()?;
        std::mem::take(&mut self.buckets).write(&mut self.batch);
        if self.counters != self.counters_at_start {
            self.batch
                .put(Cf::Meta, keys::meta::COUNTERS.to_vec(), self.counters.encode());
        }
        let update = CacheUpdate {
            strings: self
                .new_strings
                .into_iter()
                .zip(KINDS)
                .flat_map(|(m, kind)| m.into_iter().map(move |(s, n)| ((kind, s), n)))
                .collect(),
            records: self.records.into_iter().collect(),
            headers: self.headers.into_iter().collect(),
            sections: self.sections.into_iter().collect(),
            dropped_sections: self.dropped_sections.into_iter().collect(),
            clear_chains: self.rewrites_records,
        };
        let memory = if self.rewrites_records {
            WriterMemory::default()
        } else {
            self.memory
        };
        Ok((self.batch, self.counters, memory, update))
    }
}

/// What a committed transaction changes in the caches.
pub struct CacheUpdate {
    strings: Vec<((StrKind, Arc<str>), u64)>,
    records: Vec<(u64, Option<Arc<GroupRecord>>)>,
    headers: Vec<(u64, Option<Arc<SnapHeader>>)>,
    sections: Vec<((u64, TypeNid), Arc<Section>)>,
    dropped_sections: Vec<u64>,
    clear_chains: bool,
}

impl CacheUpdate {
    /// Whether the transaction only added to the database: new records,
    /// snapshots and strings, and no record, snapshot or section changed
    /// or removed (a snapshot header's reference count aside, which reads
    /// do not use). Readers then cannot see a mix of versions, since no
    /// old version exists, and need not wait for the commit.
    pub fn only_adds(&self) -> bool {
        !self.clear_chains
            && self.dropped_sections.is_empty()
            && self.records.iter().all(|(_, r)| r.is_some())
            && self.headers.iter().all(|(_, h)| h.is_some())
    }

    /// Applies the update (call after the batch is durable in the store).
    pub fn apply(self, caches: &Caches) {
        for ((kind, s), n) in self.strings {
            caches.remember(kind, n, s);
        }
        for (g, r) in self.records {
            caches.delta_tables.remove(&g);
            caches.bases.remove(&g);
            match r {
                Some(r) => caches.records.insert(g, r),
                None => {
                    caches.records.remove(&g);
                }
            }
        }
        for (s, h) in self.headers {
            match h {
                Some(h) => caches.headers.insert(s, h),
                None => {
                    caches.headers.remove(&s);
                }
            }
        }
        for (k, s) in self.sections {
            caches.sections.insert(k, s);
        }
        if self.clear_chains {
            caches.chains.clear();
            caches.delta_tables.clear();
            caches.bases.clear();
        }
        if !self.dropped_sections.is_empty() {
            let dropped: FxHashSet<u64> = self.dropped_sections.into_iter().collect();
            caches.sections.retain(|k, _| !dropped.contains(&k.0));
            caches.section_tables.retain(|k| !dropped.contains(&k.0));
        }
    }
}

impl Source for Txn<'_> {
    fn record(&self, g: u64) -> Result<Option<Arc<GroupRecord>>> {
        match self.records.get(&g) {
            Some(r) => Ok(r.clone()),
            None if self.absent_groups.contains(&g) => Ok(None),
            None => self.committed().record(g),
        }
    }
    fn header(&self, snap: u64) -> Result<Arc<SnapHeader>> {
        match self.headers.get(&snap) {
            Some(Some(h)) => Ok(h.clone()),
            Some(None) => Err(Error::corrupt(
                "snapshot header",
                format!("snapshots/{snap}"),
                "deleted",
            )),
            None => self.committed().header(snap),
        }
    }
    fn section(&self, snap: u64, t: TypeNid) -> Result<Arc<Section>> {
        match self.sections.get(&(snap, t)) {
            Some(s) => Ok(s.clone()),
            None => self.committed().section(snap, t),
        }
    }
}

/// xxh3-128 over the sorted entries (key and event, big-endian).
pub fn state_hash(state: &[(IKey, EventNid)]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for &(k, e) in state {
        h.update(&k.to_be_bytes());
        h.update(&e.to_be_bytes());
    }
    h.digest128()
}
