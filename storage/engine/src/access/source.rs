//! The data-access trait the read and write paths are written against:
//! decoded group records and snapshots, from the committed database
//! ([`super::Committed`], through the caches) or from a write
//! transaction's overlay on top of it.

use std::sync::Arc;

use mxstate_api::{Error, Result};

use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::TypeNid;
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
