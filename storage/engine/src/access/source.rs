//! The data-access trait the read and write paths are written against:
//! decoded group records and snapshots, from the committed database
//! ([`super::Committed`], through the caches) or from a write
//! transaction's overlay on top of it.

use std::sync::Arc;

use mxstate_api::{Error, Result};

use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{ikey_skey, ikey_type, EventNid, IKey, TypeNid};
use crate::format::snapshot::{Section, SnapHeader};

/// Longest physical chain accepted before the data is called corrupt.
pub(super) const MAX_HOPS: usize = 1 << 16;

/// A group's physical chain: deltas nearest first, then the snapshot.
pub struct Chain {
    pub deltas: Vec<Arc<GroupRecord>>,
    /// The group id of each delta record, in the same order.
    pub groups: Vec<u64>,
    pub snap: u64,
}

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
    fn chain(&self, g: u64) -> Result<Arc<Chain>> {
        Ok(Arc::new(chain_of(self, g)?))
    }

    /// The entries of group `g` for `keys` (ascending): the nearest delta
    /// of its chain that mentions a key decides it, else its snapshot.
    fn point_lookup(&self, g: u64, keys: &[IKey]) -> Result<Vec<(IKey, EventNid)>> {
        let chain = self.chain(g)?;
        let mut found = vec![None; keys.len()];
        lookup_in_chain(self, &chain, keys, &mut found)?;
        Ok(found_entries(keys, &found))
    }
}

/// Decides the keys of `keys` whose `found` is `None` on `chain`: the
/// nearest delta mentioning a key, else the snapshot (`Some(None)` when
/// neither has it).
pub fn lookup_in_chain<S: Source + ?Sized>(
    src: &S,
    chain: &Chain,
    keys: &[IKey],
    found: &mut [Option<Option<EventNid>>],
) -> Result<()> {
    for (&k, slot) in keys.iter().zip(found.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        *slot = chain.deltas.iter().find_map(|rec| match &rec.physical {
            Physical::Delta { delta, .. } => crate::delta::lookup(delta, k),
            Physical::Snapshot(_) => None,
        });
    }
    in_snapshot(src, chain.snap, keys, found)
}

/// Decides the keys of `keys` whose `found` is `None` from snapshot `snap`.
pub fn in_snapshot<S: Source + ?Sized>(
    src: &S,
    snap: u64,
    keys: &[IKey],
    found: &mut [Option<Option<EventNid>>],
) -> Result<()> {
    if found.iter().all(Option::is_some) {
        return Ok(());
    }
    let header = src.header(snap)?;
    for (&k, slot) in keys.iter().zip(found.iter_mut()) {
        if slot.is_none() {
            let t = ikey_type(k);
            *slot = Some(if header.types.binary_search(&t).is_ok() {
                src.section(snap, t)?.get(ikey_skey(k))
            } else {
                None
            });
        }
    }
    Ok(())
}

/// The `(key, event)` pairs of the keys found set.
pub fn found_entries(keys: &[IKey], found: &[Option<Option<EventNid>>]) -> Vec<(IKey, EventNid)> {
    keys.iter().zip(found).filter_map(|(&k, f)| Some((k, (*f)??))).collect()
}

/// Walks the physical chain of group `g`.
pub fn chain_of<S: Source + ?Sized>(src: &S, g: u64) -> Result<Chain> {
    let (mut deltas, mut groups) = (Vec::new(), Vec::new());
    let mut cur = g;
    loop {
        let rec = src.existing(cur)?;
        match &rec.physical {
            Physical::Snapshot(s) => {
                return Ok(Chain {
                    deltas,
                    groups,
                    snap: *s,
                })
            }
            Physical::Delta { base, .. } => {
                groups.push(cur);
                cur = *base;
                deltas.push(rec);
            }
        }
        if deltas.len() > MAX_HOPS {
            return Err(endless(g));
        }
    }
}

/// The error for the chain of group `g` when it is longer than
/// [`MAX_HOPS`]: a cycle or damage.
pub(super) fn endless(g: u64) -> Error {
    Error::corrupt("group chain", format!("groups/{g}"), "chain does not end")
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
