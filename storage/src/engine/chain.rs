//! The chain policy: where a new group is stored physically.
//!
//! Levels 0..top-1 are deltas, level `top` is a snapshot. A level-L group
//! is stored against the nearest group of level >= L on its parent's
//! physical chain; at most `runs[L] - 1` level-L groups follow each other
//! on a chain. So a read walks at most `sum(runs[L] - 1)` deltas and one
//! snapshot, however the caller chained its groups, while a level-L delta
//! holds about `prod(runs[..L])` changes (see docs/design.md).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::delta::{self, Entry};
use crate::format::group::{GroupRecord, Physical};

use super::source::Source;

/// Run lengths per delta level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPolicy {
    runs: Vec<u32>,
    snapshot_min_delta: usize,
}

impl Default for ChainPolicy {
    fn default() -> Self {
        ChainPolicy {
            runs: vec![32, 32, 32],
            snapshot_min_delta: 256,
        }
    }
}

impl ChainPolicy {
    /// A policy with the given run lengths (each >= 2; at most 8 levels).
    pub fn new(runs: Vec<u32>) -> Option<Self> {
        (!runs.is_empty() && runs.len() < 8 && runs.iter().all(|&r| r >= 2)).then_some(ChainPolicy {
            runs,
            snapshot_min_delta: 256,
        })
    }
    /// A checkpoint delta at least `n` entries long becomes a snapshot when
    /// the deltas on its chain would outnumber the snapshot's entries.
    pub fn with_snapshot_min_delta(mut self, n: usize) -> Self {
        self.snapshot_min_delta = n.max(1);
        self
    }
    /// See [`ChainPolicy::with_snapshot_min_delta`].
    pub fn snapshot_min_delta(&self) -> usize {
        self.snapshot_min_delta
    }
    /// The snapshot level.
    pub fn top(&self) -> u8 {
        self.runs.len() as u8
    }
    /// Most deltas a read can walk.
    pub fn max_hops(&self) -> u64 {
        self.runs.iter().map(|&r| u64::from(r) - 1).sum()
    }
}

/// Where a group stored "on top of" a parent goes.
pub enum Placement {
    /// A level-`level` delta against `base`; `path` holds the records
    /// between the parent (included) and `base` (excluded), nearest first.
    Delta {
        level: u8,
        base: u64,
        path: Vec<Arc<GroupRecord>>,
    },
    /// A snapshot.
    Snapshot,
}

impl Placement {
    /// The physical delta for a group whose state is `state(parent) + change`.
    pub fn physical_delta(&self, change: &[Entry]) -> Vec<Entry> {
        let Placement::Delta { path, .. } = self else {
            return change.to_vec();
        };
        let mut acc: Vec<Entry> = Vec::new();
        for rec in path.iter().rev() {
            if let Physical::Delta { delta: d, .. } = &rec.physical {
                acc = delta::compose(&acc, d);
            }
        }
        delta::compose(&acc, change)
    }
}

/// Places a new group whose parent is `parent`.
pub fn place(src: &dyn Source, policy: &ChainPolicy, parent: u64) -> Result<Placement> {
    let mut path = Vec::new();
    let mut anchor = parent;
    let mut rec = src.existing(parent)?;
    for (level, &run) in policy.runs.iter().enumerate() {
        let level = level as u8;
        let mut count = 0u32;
        let mut walked = Vec::new();
        let (mut id, mut cur) = (anchor, rec.clone());
        while cur.level == level {
            let Physical::Delta { base, .. } = &cur.physical else {
                return Err(Error::corrupt(
                    "group record",
                    format!("groups/{id}"),
                    "delta level on a snapshot",
                ));
            };
            count += 1;
            if count > run.max(4096) {
                return Err(Error::corrupt(
                    "group chain",
                    format!("groups/{parent}"),
                    "run does not end",
                ));
            }
            let next = *base;
            walked.push(cur);
            id = next;
            cur = src.existing(next)?;
        }
        if count + 1 < run {
            return Ok(Placement::Delta {
                level,
                base: anchor,
                path,
            });
        }
        path.extend(walked);
        anchor = id;
        rec = cur;
    }
    Ok(Placement::Snapshot)
}
