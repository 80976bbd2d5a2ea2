//! From interned ids back to strings: maps, views, cached section strings.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use mxstate_api::{Error, EventId, Result, StateKey, StateMap};

use crate::access::{intern, SectionStrings};
use crate::format::keys::{ikey_skey, ikey_type, EventNid, IKey, StrKind};
use crate::read::resolve::{Resolved, SectionPart};
use crate::read::view::{LooseEntry, StateView, ViewPart};

use super::Engine;

impl Engine {
    /// A resolved state as a view over cached section strings.
    pub(super) fn view(&self, r: Resolved) -> Result<StateView> {
        let loose = self.resolve_loose(&r.loose)?;
        let mut len = loose.len();
        // Entries of the sections that a nearer delta decided, per type.
        let mut hidden: FxHashMap<u32, usize> = FxHashMap::default();
        if !r.shadowed.is_empty() {
            let by_type: FxHashMap<u32, &SectionPart> = r.sections.iter().map(|p| (p.t, p)).collect();
            for &k in r.shadowed.keys() {
                if let Some(p) = by_type.get(&ikey_type(k)) {
                    if p.sec.get(ikey_skey(k)).is_some() {
                        *hidden.entry(p.t).or_default() += 1;
                    }
                }
            }
        }
        let mut parts = Vec::with_capacity(r.sections.len());
        for part in &r.sections {
            let ty = self.text(StrKind::Type, u64::from(part.t))?;
            let strings = self.section_strings(part)?;
            len += part.sec.skeys.len() - hidden.get(&part.t).copied().unwrap_or(0);
            parts.push(ViewPart {
                snap: part.snap,
                t: part.t,
                ty,
                sec: part.sec.clone(),
                strings,
            });
        }
        Ok(StateView {
            loose,
            parts,
            shadowed: r.shadowed,
            len,
        })
    }

    /// The strings of a snapshot section, resolved once and cached.
    fn section_strings(&self, part: &SectionPart) -> Result<Arc<SectionStrings>> {
        if let Some(s) = self.caches.section_strings.get(&(part.snap, part.t)) {
            return Ok(s);
        }
        let skeys: Vec<u64> = part.sec.skeys.iter().map(|&s| u64::from(s)).collect();
        let strings = Arc::new(SectionStrings {
            skeys: intern::resolve(&*self.kv, &self.caches, StrKind::Skey, &skeys)?,
            events: intern::resolve(&*self.kv, &self.caches, StrKind::Event, &part.sec.events)?,
        });
        self.caches.section_strings.insert((part.snap, part.t), strings.clone());
        Ok(strings)
    }

    /// The text of one interned id.
    pub(super) fn text(&self, kind: StrKind, nid: u64) -> Result<Arc<str>> {
        intern::resolve_one(&*self.kv, &self.caches, kind, nid)
    }

    /// Interned entries with their strings.
    fn resolve_loose(&self, entries: &[(IKey, EventNid)]) -> Result<Vec<LooseEntry>> {
        let mut types: FxHashMap<u32, Arc<str>> = FxHashMap::default();
        for &(k, _) in entries {
            if let std::collections::hash_map::Entry::Vacant(slot) = types.entry(ikey_type(k)) {
                slot.insert(self.text(StrKind::Type, u64::from(ikey_type(k)))?);
            }
        }
        let skeys: Vec<u64> = entries.iter().map(|&(k, _)| u64::from(ikey_skey(k))).collect();
        let skeys = intern::resolve(&*self.kv, &self.caches, StrKind::Skey, &skeys)?;
        let events: Vec<u64> = entries.iter().map(|&(_, e)| e).collect();
        let events = intern::resolve(&*self.kv, &self.caches, StrKind::Event, &events)?;
        let mut out = Vec::with_capacity(entries.len());
        for ((&(key, event), skey), ev) in entries.iter().zip(skeys).zip(events) {
            let ty = types
                .get(&ikey_type(key))
                .cloned()
                .ok_or_else(|| Error::internal(format!("type nid {} resolved above is missing", ikey_type(key))))?;
            out.push(LooseEntry {
                key,
                event,
                ty,
                skey,
                ev,
            });
        }
        Ok(out)
    }

    /// Interned entries to strings.
    pub(super) fn materialize(&self, entries: &[(IKey, EventNid)]) -> Result<StateMap> {
        let mut types: FxHashMap<u32, Arc<str>> = FxHashMap::default();
        for &(k, _) in entries {
            let t = ikey_type(k);
            if let std::collections::hash_map::Entry::Vacant(slot) = types.entry(t) {
                slot.insert(self.text(StrKind::Type, u64::from(t))?);
            }
        }
        let skeys: Vec<u64> = entries.iter().map(|&(k, _)| u64::from(ikey_skey(k))).collect();
        let skeys = intern::resolve(&*self.kv, &self.caches, StrKind::Skey, &skeys)?;
        let events: Vec<u64> = entries.iter().map(|&(_, e)| e).collect();
        let events = intern::resolve(&*self.kv, &self.caches, StrKind::Event, &events)?;
        let mut out = StateMap::with_capacity_and_hasher(entries.len(), Default::default());
        for ((&(k, _), s), e) in entries.iter().zip(skeys).zip(events) {
            let t = types
                .get(&ikey_type(k))
                .cloned()
                .ok_or_else(|| Error::internal(format!("type nid {} resolved above is missing", ikey_type(k))))?;
            out.insert(StateKey::from_validated(t, s), EventId::from_validated(e));
        }
        Ok(out)
    }
}
