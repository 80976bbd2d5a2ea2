//! Resolving a group's state in interned ids: walk the physical chain to its
//! snapshot, let the nearest delta win, fill the rest from the snapshot
//! sections the filter needs.

use std::sync::Arc;

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

/// The entries of one delta record that a state takes: `visible` are
/// indexes into the record's physical delta (ascending), each setting a key
/// no nearer delta decided.
pub struct DeltaPart {
    pub g: u64,
    pub rec: Arc<GroupRecord>,
    pub visible: Vec<u32>,
}

/// A resolved state: loose entries (from named keys), parts of delta
/// records, and whole snapshot sections minus the keys in `shadowed`
/// (decided by a delta; ascending).
pub struct Resolved {
    pub loose: Vec<(IKey, EventNid)>,
    pub deltas: Vec<DeltaPart>,
    pub sections: Vec<SectionPart>,
    pub shadowed: Vec<IKey>,
}

impl Resolved {
    /// The indexes of `part`'s entries that a delta decided, ascending.
    pub fn hidden_in(&self, part: &SectionPart) -> Vec<u32> {
        let lo = self.shadowed.partition_point(|&k| ikey_type(k) < part.t);
        let hi = self.shadowed.partition_point(|&k| ikey_type(k) <= part.t);
        let mut out = Vec::new();
        let mut from = 0;
        let skeys = &part.sec.skeys;
        for &k in self.shadowed.get(lo..hi).unwrap_or_default() {
            let s = ikey_skey(k);
            // Gallop from the last match: decided keys are often dense in
            // the section, so the next one is near.
            let mut step = 1;
            while skeys.get(from + step - 1).is_some_and(|&x| x < s) {
                step *= 2;
            }
            let end = (from + step).min(skeys.len());
            let window = skeys.get(from..end).unwrap_or_default();
            let i = from + window.partition_point(|&x| x < s);
            if part.sec.skeys.get(i) == Some(&ikey_skey(k)) {
                // Sections are far shorter than 2^32 entries.
                out.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
            from = i;
        }
        out
    }
}

impl Resolved {
    /// Every `(key, event)`, unordered.
    pub fn into_entries(self) -> Vec<(IKey, EventNid)> {
        let mut out = self.loose;
        for p in &self.deltas {
            let d = phys_delta(&p.rec);
            out.extend(
                p.visible
                    .iter()
                    .filter_map(|&i| d.get(i as usize))
                    .filter_map(|&(k, v)| Some((k, v?))),
            );
        }
        for p in &self.sections {
            for (&s, &e) in p.sec.skeys.iter().zip(&p.sec.events) {
                let k = ikey(p.t, s);
                if self.shadowed.binary_search(&k).is_err() {
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
            deltas: Vec::new(),
            sections: Vec::new(),
            shadowed: Vec::new(),
        });
    }
    let (mut loose, deltas, shadowed) = merge_deltas(&chain, f);
    let header = src.header(chain.snap)?;
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
                    if let (Some(e), Err(_)) = (sec.get(s), shadowed.binary_search(&k)) {
                        loose.push((k, e));
                    }
                }
            }
        }
    }
    Ok(Resolved {
        loose,
        deltas,
        sections,
        shadowed,
    })
}

/// The state of group `g` restricted to `f`, unordered.
pub fn state_of(src: &dyn Source, g: u64, f: &IFilter) -> Result<Vec<(IKey, EventNid)>> {
    Ok(resolve(src, g, f)?.into_entries())
}

/// Where a delta entry came from: its delta's place on the chain (0 =
/// nearest), its index in that delta, and whether the filter named its key
/// (rather than taking its whole type).
#[derive(Clone, Copy)]
struct Origin {
    delta: u32,
    pos: u32,
    named: bool,
}

/// The deltas of `chain` merged under `f`: the nearest delta decides each
/// key. Returns the named keys they set, the parts of each delta taken
/// whole-type, and every decided key (ascending, removals included).
///
/// Each delta is sorted by key, so their entries form sorted runs; one
/// stable sort merges the runs and keeps equal keys in chain order, nearest
/// first. No hashing: the visible indexes of each delta and the decided
/// keys come out ascending.
fn merge_deltas(chain: &Chain, f: &IFilter) -> (Vec<(IKey, EventNid)>, Vec<DeltaPart>, Vec<IKey>) {
    let mut all: Vec<(IKey, Origin)> = Vec::with_capacity(chain.deltas.iter().map(|r| phys_delta(r).len()).sum());
    for (di, rec) in chain.deltas.iter().enumerate() {
        // A chain is at most MAX_HOPS deltas, and a delta of 2^32 entries
        // would be a record of over 12 GB: both fit.
        let delta = u32::try_from(di).unwrap_or(u32::MAX);
        let d = phys_delta(rec);
        let mut i = 0;
        while let Some(&(k, _)) = d.get(i) {
            let t = ikey_type(k);
            let run = d.get(i..).unwrap_or_default();
            let len = run.partition_point(|e| ikey_type(e.0) == t);
            match f.scope(t) {
                IScope::Nothing => {}
                IScope::All => all.extend((i..i + len).filter_map(|j| {
                    let (k, _) = *d.get(j)?;
                    let pos = u32::try_from(j).unwrap_or(u32::MAX);
                    Some((
                        k,
                        Origin {
                            delta,
                            pos,
                            named: false,
                        },
                    ))
                })),
                IScope::Keys(ks) => {
                    let run = run.get(..len).unwrap_or_default();
                    for &s in ks {
                        if let Ok(j) = run.binary_search_by_key(&ikey(t, s), |e| e.0) {
                            let pos = u32::try_from(i + j).unwrap_or(u32::MAX);
                            all.push((
                                ikey(t, s),
                                Origin {
                                    delta,
                                    pos,
                                    named: true,
                                },
                            ));
                        }
                    }
                }
            }
            i += len.max(1);
        }
    }
    all.sort_by_key(|e| e.0);
    let mut visible: Vec<Vec<u32>> = vec![Vec::new(); chain.deltas.len()];
    let (mut loose, mut shadowed) = (Vec::new(), Vec::new());
    let mut last = None;
    for &(k, o) in &all {
        if last == Some(k) {
            continue;
        }
        last = Some(k);
        shadowed.push(k);
        let Some(rec) = chain.deltas.get(o.delta as usize) else {
            continue;
        };
        let Some(&(_, Some(e))) = phys_delta(rec).get(o.pos as usize) else {
            continue;
        };
        if o.named {
            loose.push((k, e));
        } else if let Some(v) = visible.get_mut(o.delta as usize) {
            v.push(o.pos);
        }
    }
    let parts = chain
        .deltas
        .iter()
        .zip(&chain.groups)
        .zip(visible)
        .filter(|(_, v)| !v.is_empty())
        .map(|((rec, &g), visible)| {
            // Keys ascend, and a delta's positions ascend with its keys.
            debug_assert!(visible.windows(2).all(|w| w[0] < w[1]));
            DeltaPart {
                g,
                rec: rec.clone(),
                visible,
            }
        })
        .collect();
    (loose, parts, shadowed)
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
