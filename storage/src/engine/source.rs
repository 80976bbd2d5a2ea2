//! Where decoded records come from: the committed database (through the
//! caches), or a write transaction's overlay on top of it.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::group::GroupRecord;
use crate::format::keys::{self, TypeNid};
use crate::format::snapshot::{Section, SnapHeader};
use crate::kv::{Cf, KvStore};

use super::cache::Caches;

/// Read access to decoded group records and snapshots.
pub trait Source {
    /// The record of group `g` (ghosts included), if any.
    fn record(&self, g: u64) -> Result<Option<Arc<GroupRecord>>>;
    /// A snapshot header.
    fn header(&self, snap: u64) -> Result<Arc<SnapHeader>>;
    /// A snapshot section; empty when the snapshot has no such type.
    fn section(&self, snap: u64, t: TypeNid) -> Result<Arc<Section>>;

    /// The record of a group that must exist.
    fn existing(&self, g: u64) -> Result<Arc<GroupRecord>> {
        self.record(g)?.ok_or(Error::UnknownGroup(g))
    }

    /// The physical chain of group `g`.
    fn chain(&self, g: u64) -> Result<Arc<super::read::Chain>> {
        Ok(Arc::new(super::read::chain_of(self, g)?))
    }
}

/// The committed database, read through the caches.
pub struct Committed<'a> {
    pub kv: &'a dyn KvStore,
    pub caches: &'a Caches,
}

impl Source for Committed<'_> {
    fn record(&self, g: u64) -> Result<Option<Arc<GroupRecord>>> {
        if let Some(r) = self.caches.records.get(&g) {
            return Ok(Some(r));
        }
        let Some(bytes) = self.kv.get(Cf::Groups, &keys::group_key(g))? else {
            return Ok(None);
        };
        let rec = Arc::new(GroupRecord::decode(g, &bytes).map_err(|e| at(e, format!("groups/{g}")))?);
        self.caches.records.insert(g, rec.clone());
        Ok(Some(rec))
    }

    fn chain(&self, g: u64) -> Result<Arc<super::read::Chain>> {
        if let Some(c) = self.caches.chains.get(&g) {
            return Ok(c);
        }
        let c = Arc::new(super::read::chain_of(self, g)?);
        self.caches.chains.insert(g, c.clone());
        Ok(c)
    }

    fn header(&self, snap: u64) -> Result<Arc<SnapHeader>> {
        if let Some(h) = self.caches.headers.get(&snap) {
            return Ok(h);
        }
        let bytes = self
            .kv
            .get(Cf::Snapshots, &keys::snap_header_key(snap))?
            .ok_or_else(|| Error::corrupt("snapshot header", format!("snapshots/{snap}"), "missing"))?;
        let h = Arc::new(SnapHeader::decode(&bytes).map_err(|e| at(e, format!("snapshots/{snap}")))?);
        self.caches.headers.insert(snap, h.clone());
        Ok(h)
    }

    fn section(&self, snap: u64, t: TypeNid) -> Result<Arc<Section>> {
        if let Some(s) = self.caches.sections.get(&(snap, t)) {
            return Ok(s);
        }
        let sec = match self.kv.get(Cf::Snapshots, &keys::snap_section_key(snap, t))? {
            Some(bytes) => Section::decode(&bytes).map_err(|e| at(e, format!("snapshots/{snap}/{t}")))?,
            None => Section::default(),
        };
        let sec = Arc::new(sec);
        self.caches.sections.insert((snap, t), sec.clone());
        Ok(sec)
    }
}

/// Names the key where corrupt bytes were found.
pub fn at(e: Error, location: String) -> Error {
    match e {
        Error::Corrupt {
            what,
            location: pos,
            detail,
        } => Error::Corrupt {
            what,
            location: format!("{location} {pos}"),
            detail,
        },
        other => other,
    }
}
