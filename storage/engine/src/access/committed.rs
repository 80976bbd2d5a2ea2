//! [`Committed`]: the committed database as a [`Source`], read through
//! the caches.

use std::sync::Arc;

use mxstate_api::{Error, Result};

use crate::format::group::GroupRecord;
use crate::format::keys::{self, TypeNid};
use crate::format::snapshot::{Section, SnapHeader};
use crate::kv::{Cf, KvStore};

use super::cache::Caches;
use super::source::{at, chain_of, Chain, Source};

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

    fn chain(&self, g: u64) -> Result<Arc<Chain>> {
        if let Some(c) = self.caches.chains.get(&g) {
            return Ok(c);
        }
        let c = Arc::new(chain_of(self, g)?);
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
