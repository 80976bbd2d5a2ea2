//! Resolving a group's state in interned ids: walk the physical chain to its
//! snapshot, let the nearest delta win, fill the rest from the snapshot
//! sections the filter needs.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::access::{Chain, Source};
use crate::delta;
use crate::format::delta as delta_format;
use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{ikey, ikey_skey, ikey_type, EventNid, IKey, TypeNid};
use crate::format::snapshot::Section;
use mxstate_api::Result;

use super::filter::{IFilter, IScope};

fn phys_delta(rec: &GroupRecord) -> &[delta_format::Entry] {
    match &rec.physical {
        Physical::Delta { delta, .. } => delta,
        Physical::Snapshot(_) => &[],
    }
}

/// A part of a state taken whole from one snapshot section.
pub struct SectionPart {
    pub snap: u64,
    pub t: TypeNid,
    pub sec: Arc<Section>,
}

/// A resolved state: loose entries (from deltas and point lookups) plus
/// whole snapshot sections, minus the keys in `shadowed` (decided by a delta).
pub struct Resolved {
    pub loose: Vec<(IKey, EventNid)>,
    pub sections: Vec<SectionPart>,
    pub shadowed: FxHashMap<IKey, Option<EventNid>>,
}

impl Resolved {
    /// Every `(key, event)`, unordered.
    pub fn into_entries(self) -> Vec<(IKey, EventNid)> {
        let mut out = self.loose;
        for p in &self.sections {
            for (&s, &e) in p.sec.skeys.iter().zip(&p.sec.events) {
                let k = ikey(p.t, s);
                if self.shadowed.is_empty() || !self.shadowed.contains_key(&k) {
                    out.push((k, e));
                }
            }
        }
        out
    }
}

/// The state of group `g` restricted to `f`.
pub fn resolve(src: &dyn Source, g: u64, f: &IFilter) -> Result<Resolved> {
    let chain = src.chain(g)?;
    if let Some(keys) = f.point_keys() {
        return Ok(Resolved {
            loose: point_lookup(src, &chain, &keys)?,
            sections: Vec::new(),
            shadowed: FxHashMap::default(),
        });
    }
    let mut seen: FxHashMap<IKey, Option<EventNid>> = FxHashMap::default();
    for rec in &chain.deltas {
        collect_matching(phys_delta(rec), f, &mut seen);
    }
    let header = src.header(chain.snap)?;
    let mut loose: Vec<(IKey, EventNid)> = seen.iter().filter_map(|(&k, v)| v.map(|e| (k, e))).collect();
    let mut sections = Vec::new();
    for &t in &header.types {
        match f.scope(t) {
            IScope::Nothing => {}
            IScope::All => sections.push(SectionPart {
                snap: chain.snap,
                t,
                sec: src.section(chain.snap, t)?,
            }),
            IScope::Keys(ks) => {
                let sec = src.section(chain.snap, t)?;
                for &s in ks {
                    let k = ikey(t, s);
                    if let (Some(e), false) = (sec.get(s), seen.contains_key(&k)) {
                        loose.push((k, e));
                    }
                }
            }
        }
    }
    Ok(Resolved {
        loose,
        sections,
        shadowed: seen,
    })
}

/// The state of group `g` restricted to `f`, unordered.
pub fn state_of(src: &dyn Source, g: u64, f: &IFilter) -> Result<Vec<(IKey, EventNid)>> {
    Ok(resolve(src, g, f)?.into_entries())
}

/// Adds the entries of sorted delta `d` that pass `f` to `seen` (nearer
/// deltas came first and win). A delta is sorted by type, so a type the
/// filter excludes is skipped as one run, and named keys are searched.
fn collect_matching(d: &[delta_format::Entry], f: &IFilter, seen: &mut FxHashMap<IKey, Option<EventNid>>) {
    let mut i = 0;
    while let Some(&(k, _)) = d.get(i) {
        let t = ikey_type(k);
        let run = d.get(i..).unwrap_or_default();
        let len = run.partition_point(|e| ikey_type(e.0) == t);
        let run = run.get(..len).unwrap_or_default();
        match f.scope(t) {
            IScope::Nothing => {}
            IScope::All => {
                for &(k, v) in run {
                    seen.entry(k).or_insert(v);
                }
            }
            IScope::Keys(ks) => {
                for &s in ks {
                    let k = ikey(t, s);
                    if let Some(v) = delta::lookup(run, k) {
                        seen.entry(k).or_insert(v);
                    }
                }
            }
        }
        i += len.max(1);
    }
}

/// A few named keys: search each delta, then one snapshot section per type.
fn point_lookup(src: &dyn Source, chain: &Chain, keys: &[IKey]) -> Result<Vec<(IKey, EventNid)>> {
    let mut out = Vec::with_capacity(keys.len());
    'key: for &k in keys {
        for rec in &chain.deltas {
            if let Some(v) = delta::lookup(phys_delta(rec), k) {
                if let Some(e) = v {
                    out.push((k, e));
                }
                continue 'key;
            }
        }
        let header = src.header(chain.snap)?;
        if header.types.binary_search(&ikey_type(k)).is_ok() {
            if let Some(e) = src.section(chain.snap, ikey_type(k))?.get(ikey_skey(k)) {
                out.push((k, e));
            }
        }
    }
    Ok(out)
}

/// `state(g)` in full, sorted by key.
pub fn full_sorted(src: &dyn Source, g: u64) -> Result<Vec<(IKey, EventNid)>> {
    let mut v = state_of(src, g, &IFilter::all())?;
    v.sort_unstable_by_key(|e| e.0);
    Ok(v)
}
