//! In-memory caches of decoded records and interned strings.

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
impl Weighed for Arc<StateTable> {
    fn weight(&self) -> u64 {
        StateTable::weight(self)
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

impl<K, V: Weighed> Weighter<K, V> for ByWeight {
    fn weight(&self, _key: &K, val: &V) -> u64 {
        val.weight()
    }
}

type WCache<K, V> = Cache<K, V, ByWeight>;

fn cache<K: Eq + std::hash::Hash, V: Weighed + Clone>(bytes: u64) -> WCache<K, V> {
    Cache::with_weighter((bytes / 256) as usize, bytes, ByWeight)
}

/// All caches of one engine.
pub struct Caches {
    pub records: WCache<u64, Arc<GroupRecord>>,
    pub sections: WCache<(u64, TypeNid), Arc<Section>>,
    pub headers: WCache<u64, Arc<SnapHeader>>,
    /// Snapshot sections with their strings, as views share them.
    pub section_tables: WCache<(u64, TypeNid), Arc<StateTable>>,
    /// Delta records with their strings, by group id; an entry is dropped
    /// when its group's record is rewritten.
    pub delta_tables: WCache<u64, Arc<StateTable>>,
    /// Resolved full states of checkpoints, by group id; dropped with the
    /// chains, and when the group's record is rewritten.
    pub bases: WCache<u64, Arc<Base>>,
    /// Physical chains of committed groups; cleared when a purge rewrites records.
    pub chains: WCache<u64, Arc<Chain>>,
    /// `(kind, text) -> nid`, one cache per kind.
    to_nid: [WCache<Box<str>, u64>; 4],
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
            records: cache(part * 2),
            sections: cache(part * 3),
            headers: cache(part / 4),
            section_tables: cache(part * 2),
            delta_tables: cache(part),
            bases: cache(part),
            chains: cache(part),
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
        self.to_nid[slot(kind)].insert(Box::from(&*s), nid);
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
