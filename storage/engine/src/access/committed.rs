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

/// Records read with a missing one: the group and the ones just below it
/// in id order, where a chain's earlier groups mostly are (a room's groups
/// take ids close together). One ordered range read instead of a point
/// read per hop: a cold chain costs a few reads, not one per group.
const PREFETCH: u64 = 32;

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
        // `g` and up to PREFETCH groups below it, newest first, stopping at
        // the first one already cached (the rest of the chain likely is too).
        let lower = keys::group_key(g.saturating_sub(PREFETCH));
        let upper = keys::group_key(g.saturating_add(1));
        let mut found = None;
        let mut first = true;
        self.kv.scan_range_rev(Cf::Groups, &lower, &upper, &mut |k, v| {
            let id = keys::parse_group_key(k)
                .ok_or_else(|| Error::corrupt("group key", format!("groups/{k:02x?}"), "not 8 bytes"))?;
            if !first && self.caches.records.get(&id).is_some() {
                return Ok(false);
            }
            first = false;
            let rec = Arc::new(GroupRecord::decode(id, v).map_err(|e| at(e, format!("groups/{id}")))?);
            self.caches.records.insert(id, rec.clone());
            if id == g {
                found = Some(rec);
            }
            Ok(true)
        })?;
        Ok(found)
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
