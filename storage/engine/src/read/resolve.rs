//! Resolving a group's state in interned ids: walk the physical chain to its
//! snapshot, let the nearest delta win, fill the rest from the snapshot
//! sections the filter needs.
//!
//! A resolved state is a plan, not a copy: which entries of which delta
//! records and snapshot sections it takes. Full states are resolved on top
//! of a [`Base`]: the resolved state of the nearest checkpoint (a delta of
//! level 1 or more) on the chain, computed once and shared by every group
//! stored above that checkpoint, so a read costs the few level-0 deltas
//! above it, not the whole chain.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::access::Source;
use crate::format::delta as delta_format;
use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{ikey, ikey_skey, ikey_type, EventNid, IKey, TypeNid};
use crate::format::snapshot::Section;
use crate::kv::no_wait;
use mxstate_api::Result;

use super::filter::{IFilter, IScope};

fn phys_delta(rec: &GroupRecord) -> &[delta_format::Entry] {
    match &rec.physical {
        Physical::Delta { delta, .. } => delta,
        Physical::Snapshot(_) => &[],
    }
}

/// An index into a delta or a section. A chain is at most 2^16 deltas, a
/// delta of 2^32 entries would be a record of over 12 GB, and a section of
/// 2^32 entries a snapshot of as many bytes: every index fits.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// A snapshot section a state takes, but for `hidden` (indexes into the
/// section, ascending): the keys a delta decided.
#[derive(Clone)]
pub struct SectionPart {
    pub snap: u64,
    pub t: TypeNid,
    pub sec: Arc<Section>,
    pub hidden: Arc<[u32]>,
}

/// The entries of one delta record that a state takes: `visible` are
/// indexes into the record's physical delta (ascending), each setting a key
/// no nearer delta decided.
#[derive(Clone)]
pub struct DeltaPart {
    pub g: u64,
    pub rec: Arc<GroupRecord>,
    pub visible: Arc<[u32]>,
}

/// A resolved state: loose entries (from named keys), parts of delta
/// records, and parts of snapshot sections. No key is taken twice.
pub struct Resolved {
    pub loose: Vec<(IKey, EventNid)>,
    pub deltas: Vec<DeltaPart>,
    pub sections: Vec<SectionPart>,
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
            let mut hidden = p.hidden.iter().peekable();
            for (i, (&s, &e)) in p.sec.skeys.iter().zip(&p.sec.events).enumerate() {
                if hidden.next_if(|&&h| h as usize == i).is_none() {
                    out.push((ikey(p.t, s), e));
                }
            }
        }
        out
    }
}

/// A key some delta decided: where its entry is, in the parts of a merge
/// (`part == NONE` when the merge does not take it: a removal, or a named
/// key that went to the loose entries).
#[derive(Clone, Copy)]
struct Decided {
    key: IKey,
    part: u32,
    pos: u32,
}

const NONE: u32 = u32::MAX;

/// A checkpoint's full state, resolved once and shared by the groups stored
/// above it (see the module's note).
pub struct Base {
    deltas: Vec<DeltaPart>,
    /// Every section of the snapshot, by ascending type.
    sections: Vec<SectionPart>,
    /// Every key a delta of the checkpoint's chain decided, ascending.
    decided: Vec<Decided>,
}

impl Base {
    /// Approximate heap bytes.
    pub fn weight(&self) -> u64 {
        let visible: usize = self.deltas.iter().map(|d| d.visible.len()).sum();
        let hidden: usize = self.sections.iter().map(|s| s.hidden.len()).sum();
        (64 + 48 * (self.deltas.len() + self.sections.len()) + 4 * (visible + hidden) + 16 * self.decided.len()) as u64
    }
}

/// Where [`resolve_full`] keeps its bases (the engine's cache).
pub trait Bases {
    fn get(&self, g: u64) -> Option<Arc<Base>>;
    fn insert(&self, g: u64, base: Arc<Base>);
}

/// The state of group `g` restricted to `f`.
pub fn resolve(src: &dyn Source, g: u64, f: &IFilter) -> Result<Resolved> {
    if let Some(keys) = f.point_keys() {
        return Ok(Resolved {
            loose: src.point_lookup(g, &keys)?,
            deltas: Vec::new(),
            sections: Vec::new(),
        });
    }
    let chain = src.chain(g)?;
    let mut m = merge_deltas(&chain.deltas, &chain.groups, f);
    let header = src.header(chain.snap)?;
    let mut sections = Vec::new();
    for &t in &header.types {
        match f.scope(t) {
            IScope::Nothing => {}
            IScope::All => {
                let sec = src.section(chain.snap, t)?;
                sections.push(SectionPart {
                    snap: chain.snap,
                    t,
                    hidden: hidden_in(&m.decided, t, &sec).into(),
                    sec,
                });
            }
            IScope::Keys(ks) => {
                let sec = src.section(chain.snap, t)?;
                for &s in ks {
                    let k = ikey(t, s);
                    if let (Some(e), Err(_)) = (sec.get(s), m.decided.binary_search_by_key(&k, |d| d.key)) {
                        m.loose.push((k, e));
                    }
                }
            }
        }
    }
    Ok(Resolved {
        loose: m.loose,
        deltas: m.parts,
        sections,
    })
}

/// The full state of group `g`, on the base of the nearest checkpoint of
/// its chain (taken from `bases`, or resolved and left there).
pub fn resolve_full(src: &dyn Source, bases: &dyn Bases, g: u64) -> Result<Resolved> {
    let chain = src.chain(g)?;
    let split = chain
        .deltas
        .iter()
        .position(|r| r.level >= 1)
        .unwrap_or(chain.deltas.len());
    let (top, rest) = chain.deltas.split_at(split);
    let (top_groups, rest_groups) = chain.groups.split_at(split.min(chain.groups.len()));
    let base = match rest_groups.first() {
        Some(&c) => match bases.get(c) {
            Some(b) => b,
            None => {
                // Merging a checkpoint's chain (up to the whole state) is
                // not for a thread that must not wait; a read that may
                // computes it once for every later one.
                no_wait::refuse("computing a checkpoint's base")?;
                let b = Arc::new(base_of(src, rest, rest_groups, chain.snap)?);
                bases.insert(c, b.clone());
                b
            }
        },
        None => Arc::new(base_of(src, &[], &[], chain.snap)?),
    };
    if top.is_empty() {
        return Ok(Resolved {
            loose: Vec::new(),
            deltas: base.deltas.clone(),
            sections: base.sections.clone(),
        });
    }
    let m = merge_deltas(top, top_groups, &IFilter::all());
    // What the top deltas decide, taken out of the base.
    let mut removed: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    let mut hidden: FxHashMap<usize, Vec<u32>> = FxHashMap::default();
    for d in &m.decided {
        match base.decided.binary_search_by_key(&d.key, |b| b.key) {
            Ok(j) => {
                if let Some(b) = base.decided.get(j).filter(|b| b.part != NONE) {
                    removed.entry(b.part).or_default().push(b.pos);
                }
            }
            Err(_) => {
                let Ok(si) = base.sections.binary_search_by_key(&ikey_type(d.key), |s| s.t) else {
                    continue;
                };
                if let Some(Ok(i)) = base
                    .sections
                    .get(si)
                    .map(|s| s.sec.skeys.binary_search(&ikey_skey(d.key)))
                {
                    hidden.entry(si).or_default().push(index(i));
                }
            }
        }
    }
    let mut deltas = m.parts;
    for (pi, p) in base.deltas.iter().enumerate() {
        match removed.get_mut(&index(pi)) {
            None => deltas.push(p.clone()),
            Some(out) => {
                out.sort_unstable();
                let visible = minus(&p.visible, out);
                if !visible.is_empty() {
                    deltas.push(DeltaPart {
                        g: p.g,
                        rec: p.rec.clone(),
                        visible: visible.into(),
                    });
                }
            }
        }
    }
    let sections = base
        .sections
        .iter()
        .enumerate()
        .map(|(si, s)| match hidden.get_mut(&si) {
            None => s.clone(),
            Some(more) => {
                more.sort_unstable();
                SectionPart {
                    hidden: union(&s.hidden, more).into(),
                    ..s.clone()
                }
            }
        })
        .collect();
    Ok(Resolved {
        loose: m.loose,
        deltas,
        sections,
    })
}

/// The full state of the chain `deltas` (nearest first) over snapshot `snap`.
fn base_of(src: &dyn Source, deltas: &[Arc<GroupRecord>], groups: &[u64], snap: u64) -> Result<Base> {
    let m = merge_deltas(deltas, groups, &IFilter::all());
    let header = src.header(snap)?;
    let mut sections = Vec::with_capacity(header.types.len());
    for &t in &header.types {
        let sec = src.section(snap, t)?;
        sections.push(SectionPart {
            snap,
            t,
            hidden: hidden_in(&m.decided, t, &sec).into(),
            sec,
        });
    }
    Ok(Base {
        deltas: m.parts,
        sections,
        decided: m.decided,
    })
}

/// `a` without the elements of `b` (both ascending).
fn minus(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut b = b.iter().peekable();
    a.iter()
        .copied()
        .filter(|&x| {
            while b.next_if(|&&y| y < x).is_some() {}
            b.peek().is_none_or(|&&y| y != x)
        })
        .collect()
}

/// The elements of `a` and `b` (both ascending), ascending, once each.
fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.iter().copied().peekable(), b.iter().copied().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(&x), Some(&y)) if x < y => a.next(),
            (Some(&x), Some(&y)) if y < x => b.next(),
            (Some(_), Some(_)) => {
                b.next();
                a.next()
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

/// The indexes of section `sec` (of type `t`) whose keys are in `decided`,
/// ascending.
fn hidden_in(decided: &[Decided], t: TypeNid, sec: &Section) -> Vec<u32> {
    let lo = decided.partition_point(|d| ikey_type(d.key) < t);
    let hi = decided.partition_point(|d| ikey_type(d.key) <= t);
    let mut out = Vec::new();
    let mut from = 0;
    let skeys = &sec.skeys;
    for d in decided.get(lo..hi).unwrap_or_default() {
        let s = ikey_skey(d.key);
        // Gallop from the last match: decided keys are often dense in the
        // section, so the next one is near.
        let mut step = 1;
        while skeys.get(from + step - 1).is_some_and(|&x| x < s) {
            step *= 2;
        }
        let end = (from + step).min(skeys.len());
        let window = skeys.get(from..end).unwrap_or_default();
        let i = from + window.partition_point(|&x| x < s);
        if skeys.get(i) == Some(&s) {
            out.push(index(i));
        }
        from = i;
    }
    out
}

/// The state of group `g` restricted to `f`, unordered.
pub fn state_of(src: &dyn Source, g: u64, f: &IFilter) -> Result<Vec<(IKey, EventNid)>> {
    Ok(resolve(src, g, f)?.into_entries())
}

/// Where a delta entry came from: its delta's place in the merge (0 =
/// nearest), its index in that delta, and whether the filter named its key
/// (rather than taking its whole type).
#[derive(Clone, Copy)]
struct Origin {
    delta: u32,
    pos: u32,
    named: bool,
}

/// Deltas merged under a filter.
struct Merged {
    /// The named keys they set.
    loose: Vec<(IKey, EventNid)>,
    /// The entries of each delta taken with their whole type.
    parts: Vec<DeltaPart>,
    /// Every key decided (removals included), ascending; `part` indexes
    /// `parts`.
    decided: Vec<Decided>,
}

/// The deltas `deltas` (nearest first; `groups` their ids) merged under
/// `f`: the nearest delta decides each key.
///
/// Each delta is sorted by key, so their entries form sorted runs; one
/// stable sort merges the runs and keeps equal keys in chain order, nearest
/// first. No hashing: the visible indexes of each delta and the decided
/// keys come out ascending.
fn merge_deltas(deltas: &[Arc<GroupRecord>], groups: &[u64], f: &IFilter) -> Merged {
    let mut all: Vec<(IKey, Origin)> = Vec::with_capacity(deltas.iter().map(|r| phys_delta(r).len()).sum());
    for (di, rec) in deltas.iter().enumerate() {
        let delta = index(di);
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
                    Some((
                        k,
                        Origin {
                            delta,
                            pos: index(j),
                            named: false,
                        },
                    ))
                })),
                IScope::Keys(ks) => {
                    let run = run.get(..len).unwrap_or_default();
                    for &s in ks {
                        if let Ok(j) = run.binary_search_by_key(&ikey(t, s), |e| e.0) {
                            let origin = Origin {
                                delta,
                                pos: index(i + j),
                                named: true,
                            };
                            all.push((ikey(t, s), origin));
                        }
                    }
                }
            }
            i += len.max(1);
        }
    }
    all.sort_by_key(|e| e.0);
    let mut visible: Vec<Vec<u32>> = vec![Vec::new(); deltas.len()];
    let mut loose = Vec::new();
    let mut decided: Vec<Decided> = Vec::new();
    for &(k, o) in &all {
        if decided.last().is_some_and(|d| d.key == k) {
            continue;
        }
        let set = deltas
            .get(o.delta as usize)
            .and_then(|rec| phys_delta(rec).get(o.pos as usize))
            .and_then(|&(_, v)| v);
        let mut part = NONE;
        match (set, o.named) {
            (Some(e), true) => loose.push((k, e)),
            (Some(_), false) => {
                if let Some(v) = visible.get_mut(o.delta as usize) {
                    v.push(o.pos);
                    // Delta index for now; made a part index below.
                    part = o.delta;
                }
            }
            (None, _) => {}
        }
        decided.push(Decided {
            key: k,
            part,
            pos: o.pos,
        });
    }
    let mut part_of = vec![NONE; deltas.len()];
    let mut parts = Vec::new();
    for (di, ((rec, &g), visible)) in deltas.iter().zip(groups).zip(visible).enumerate() {
        if visible.is_empty() {
            continue;
        }
        // Keys ascend, and a delta's positions ascend with its keys.
        debug_assert!(visible.windows(2).all(|w| w[0] < w[1]));
        if let Some(slot) = part_of.get_mut(di) {
            *slot = index(parts.len());
        }
        parts.push(DeltaPart {
            g,
            rec: rec.clone(),
            visible: visible.into(),
        });
    }
    for d in &mut decided {
        if d.part != NONE {
            d.part = part_of.get(d.part as usize).copied().unwrap_or(NONE);
        }
    }
    Merged { loose, parts, decided }
}

/// `state(g)` in full, sorted by key.
pub fn full_sorted(src: &dyn Source, g: u64) -> Result<Vec<(IKey, EventNid)>> {
    let mut v = state_of(src, g, &IFilter::all())?;
    v.sort_unstable_by_key(|e| e.0);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_and_union_of_ascending_lists() {
        assert_eq!(minus(&[1, 2, 3, 5, 8], &[0, 2, 5, 9]), vec![1, 3, 8]);
        assert_eq!(minus(&[1, 2], &[]), vec![1, 2]);
        assert_eq!(union(&[1, 4, 6], &[0, 4, 7]), vec![0, 1, 4, 6, 7]);
        assert_eq!(union(&[], &[3]), vec![3]);
    }
}
