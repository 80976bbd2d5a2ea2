//! In-memory caches of decoded records and interned strings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use mxstate_api::StateTable;

use crate::format::group::GroupRecord;
use crate::format::keys::{StrKind, TypeNid};
use crate::format::snapshot::{Section, SnapHeader};
use crate::read::resolve::{Base, Bases};

use super::source::Chain;

/// Weighs cached values by their approximate heap size.
#[derive(Clone)]
pub struct ByWeight;

/// Values that know their approximate size.
pub trait Weighed {
    fn weight(&self) -> u64;
}

impl Weighed for Arc<GroupRecord> {
    fn weight(&self) -> u64 {
        GroupRecord::weight(self)
    }
}
impl Weighed for Arc<Section> {
    fn weight(&self) -> u64 {
        32 + 12 * self.skeys.len() as u64
    }
}
/// A cached table with its weight when it was cached.
#[derive(Clone)]
struct FixedWeight(Arc<StateTable>, u64);

impl Weighed for FixedWeight {
    fn weight(&self) -> u64 {
        self.1
    }
}

impl Weighed for Arc<Base> {
    fn weight(&self) -> u64 {
        Base::weight(self)
    }
}

impl Weighed for Arc<Chain> {
    fn weight(&self) -> u64 {
        48 + 16 * self.deltas.len() as u64
    }
}

impl Weighed for Arc<Page> {
    fn weight(&self) -> u64 {
        64 + self.bytes.len() as u64 + 12 * self.ids.len() as u64
    }
}

impl Weighed for Arc<SnapHeader> {
    fn weight(&self) -> u64 {
        64 + 4 * self.types.len() as u64
    }
}
impl Weighed for Arc<str> {
    fn weight(&self) -> u64 {
        48 + self.len() as u64
    }
}
impl Weighed for u64 {
    fn weight(&self) -> u64 {
        48
    }
}
impl Weighed for () {
    fn weight(&self) -> u64 {
        32
    }
}

impl<K, V: Weighed> Weighter<K, V> for ByWeight {
    fn weight(&self, _key: &K, val: &V) -> u64 {
        val.weight()
    }
}

type WCache<K, V> = Cache<K, V, ByWeight>;

fn cache<K: Eq + std::hash::Hash, V: Weighed + Clone>(bytes: u64) -> WCache<K, V> {
    Cache::with_weighter((bytes / 256) as usize, bytes, ByWeight)
}

/// Tables by key. A table's weight is taken when it is cached and kept
/// with it: a packed table grows when a map makes its shared strings
/// (`StateTable::weight` counts them from then on), and a cache must take
/// away on eviction exactly what it added. To count the growth, insert the
/// table again.
pub struct TableCache<K>(WCache<K, FixedWeight>);

impl<K: Eq + std::hash::Hash + Clone> TableCache<K> {
    fn new(bytes: u64) -> Self {
        TableCache(cache(bytes))
    }
    /// The cached table of `k`.
    pub fn get(&self, k: &K) -> Option<Arc<StateTable>> {
        self.0.get(k).map(|t| t.0)
    }
    /// Caches `table` under `k`, weighed now.
    pub fn insert(&self, k: K, table: Arc<StateTable>) {
        let weight = table.weight();
        self.0.insert(k, FixedWeight(table, weight));
    }
    /// Drops the table of `k`.
    pub fn remove(&self, k: &K) {
        self.0.remove(k);
    }
    /// Drops every table.
    pub fn clear(&self) {
        self.0.clear();
    }
    /// Keeps the tables whose key passes `keep`.
    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        self.0.retain(|k, _| keep(k));
    }
    /// The weight of the tables held, as counted when each was cached.
    #[cfg(test)]
    pub fn weight(&self) -> u64 {
        self.0.weight()
    }
}

/// Group ids per page: the records of ids `[n * PAGE_IDS, (n + 1) * PAGE_IDS)`
/// are read together, in one ordered range read. A room's groups mostly
/// take consecutive ids and a chain's records are below its group: a
/// cold chain costs a few range reads instead of one read per hop.
pub const PAGE_IDS: u64 = 256;

/// The encoded group records of one page of ids, as read from the store:
/// decoded one by one when a read needs them.
pub struct Page {
    /// Ascending.
    ids: Vec<u64>,
    /// Record `i` is `bytes[ends[i - 1]..ends[i]]` (from 0 for the first).
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl Page {
    /// An empty page, filled in id order by [`Page::push`].
    pub fn new() -> Self {
        Page {
            ids: Vec::with_capacity(PAGE_IDS as usize),
            ends: Vec::with_capacity(PAGE_IDS as usize),
            bytes: Vec::with_capacity(16 * PAGE_IDS as usize),
        }
    }
    /// Adds the record of group `id` (above every id pushed so far).
    pub fn push(&mut self, id: u64, record: &[u8]) {
        debug_assert!(self.ids.last().is_none_or(|&l| l < id));
        self.bytes.extend_from_slice(record);
        self.ids.push(id);
        self.ends.push(self.bytes.len());
    }
    /// The encoded record of group `id`, if the page holds it.
    pub fn get(&self, id: u64) -> Option<&[u8]> {
        let i = self.ids.binary_search(&id).ok()?;
        let start = match i.checked_sub(1) {
            Some(p) => *self.ends.get(p)?,
            None => 0,
        };
        self.bytes.get(start..*self.ends.get(i)?)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

/// Decoded group records by id, and pages of encoded records read with
/// them ([`Page`]).
///
/// A page is what the store held when it was read. [`RecordCache::insert`]
/// and [`RecordCache::remove`] are how a commit tells that a record was
/// written or deleted: they drop the record's page, and a page read while
/// such a commit was applied is not kept (see [`RecordCache::keep_page`]),
/// so a cached page never misses or holds an outdated record.
pub struct RecordCache {
    records: WCache<u64, Arc<GroupRecord>>,
    pages: WCache<u64, Arc<Page>>,
    /// Counts the changes told to the cache (pages dropped).
    changes: AtomicU64,
}

impl RecordCache {
    fn new(record_bytes: u64, page_bytes: u64) -> Self {
        RecordCache {
            records: cache(record_bytes),
            pages: Cache::with_weighter((page_bytes / 4096).max(16) as usize, page_bytes, ByWeight),
            changes: AtomicU64::new(0),
        }
    }
    /// The cached record of group `g`.
    pub fn get(&self, g: &u64) -> Option<Arc<GroupRecord>> {
        self.records.get(g)
    }
    /// Group `g`'s record was written (committed): remembers it and drops
    /// its page.
    pub fn insert(&self, g: u64, r: Arc<GroupRecord>) {
        self.changed(g);
        self.records.insert(g, r);
    }
    /// Group `g`'s record was deleted (committed).
    pub fn remove(&self, g: &u64) {
        self.changed(*g);
        self.records.remove(g);
    }
    fn changed(&self, g: u64) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.pages.remove(&(g / PAGE_IDS));
    }
    /// Remembers a record read from the store (nothing changed).
    pub fn insert_read(&self, g: u64, r: Arc<GroupRecord>) {
        self.records.insert(g, r);
    }
    /// The cached page `n`.
    pub fn page(&self, n: u64) -> Option<Arc<Page>> {
        self.pages.get(&n)
    }
    /// To take before reading a page from the store, for [`Self::keep_page`].
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }
    /// Keeps page `n`, read from the store after [`Self::changes`] gave
    /// `before`, unless a change was told since: that change may have
    /// been committed after the read, and its page dropped before this
    /// insert (a commit that only adds does not wait for readers).
    pub fn keep_page(&self, n: u64, page: Arc<Page>, before: u64) {
        self.pages.insert(n, page);
        if self.changes() != before {
            self.pages.remove(&n);
        }
    }
}

/// All caches of one engine.
pub struct Caches {
    pub records: RecordCache,
    pub sections: WCache<(u64, TypeNid), Arc<Section>>,
    pub headers: WCache<u64, Arc<SnapHeader>>,
    /// Snapshot sections with their strings, as views share them.
    pub section_tables: TableCache<(u64, TypeNid)>,
    /// Delta records with their strings, by group id; an entry is dropped
    /// when its group's record is rewritten.
    pub delta_tables: TableCache<u64>,
    /// Resolved full states of checkpoints, by group id; dropped with the
    /// chains, and when the group's record is rewritten.
    pub bases: WCache<u64, Arc<Base>>,
    /// Physical chains of committed groups; cleared when a purge rewrites records.
    pub chains: WCache<u64, Arc<Chain>>,
    /// Groups a point read walked in encoded form (`access::point`): the
    /// next point read of one builds and caches its chain. A hint only.
    pub walked: WCache<u64, ()>,
    /// `(kind, text) -> nid`, one cache per kind. The text is the same
    /// allocation as in `to_str`'s entry, when both hold the string.
    to_nid: [WCache<Arc<str>, u64>; 4],
    /// `(kind, nid) -> text`, one cache per kind.
    to_str: [WCache<u64, Arc<str>>; 4],
}

fn slot(kind: StrKind) -> usize {
    match kind {
        StrKind::Room => 0,
        StrKind::Type => 1,
        StrKind::Skey => 2,
        StrKind::Event => 3,
    }
}

impl Caches {
    /// Caches sized to about `bytes` in total.
    pub fn new(bytes: u64) -> Self {
        let part = bytes / 16;
        Caches {
            records: RecordCache::new(part * 2, part / 2),
            sections: cache(part * 3),
            headers: cache(part / 4),
            section_tables: TableCache::new(part * 2),
            delta_tables: TableCache::new(part),
            bases: cache(part),
            chains: cache(part),
            walked: cache(part / 8),
            to_nid: std::array::from_fn(|_| cache(part)),
            to_str: std::array::from_fn(|_| cache(part)),
        }
    }
    /// Cached nid of a string.
    pub fn nid(&self, kind: StrKind, s: &str) -> Option<u64> {
        self.to_nid[slot(kind)].get(s)
    }
    /// Cached string of a nid.
    pub fn text(&self, kind: StrKind, nid: u64) -> Option<Arc<str>> {
        self.to_str[slot(kind)].get(&nid)
    }
    /// Remembers both directions of an interned string.
    pub fn remember(&self, kind: StrKind, nid: u64, s: Arc<str>) {
        self.to_nid[slot(kind)].insert(s.clone(), nid);
        self.to_str[slot(kind)].insert(nid, s);
    }
    /// Remembers `nid -> text` only.
    pub fn remember_text(&self, kind: StrKind, nid: u64, s: Arc<str>) {
        self.to_str[slot(kind)].insert(nid, s);
    }
}

impl Bases for Caches {
    fn get(&self, g: u64) -> Option<Arc<Base>> {
        self.bases.get(&g)
    }
    fn insert(&self, g: u64, base: Arc<Base>) {
        self.bases.insert(g, base);
    }
}
