//! The chain policy: where a new group is stored physically.
//!
//! Levels 0..top-1 are deltas, level `top` is a snapshot. A level-L group
//! is stored against the nearest group of level >= L on its parent's
//! physical chain; at most `runs[L] - 1` level-L groups follow each other
//! on a chain. So a read walks at most `sum(runs[L] - 1)` deltas and one
//! snapshot, however the caller chained its groups, while a level-L delta
//! holds about `prod(runs[..L])` changes (see docs/design.md).

use std::sync::Arc;

use mxstate_api::{Error, Result};

use crate::access::Source;
use crate::delta;
use crate::format::delta::Entry;
use crate::format::group::{GroupRecord, Physical};

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
    /// The snapshot level (at most 7: `new` refuses more levels).
    pub fn top(&self) -> u8 {
        u8::try_from(self.runs.len()).expect("invariant: ChainPolicy::new allows at most 7 levels")
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
    for (level, &run) in (0u8..).zip(policy.runs.iter()) {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use mxstate_api::{Error, Result};

    use super::*;
    use crate::format::keys::{ikey, TypeNid};
    use crate::format::snapshot::{Section, SnapHeader};

    /// Records in a map: enough of a `Source` for placement.
    #[derive(Default)]
    struct Records(BTreeMap<u64, Arc<GroupRecord>>);

    impl Source for Records {
        fn record(&self, g: u64) -> Result<Option<Arc<GroupRecord>>> {
            Ok(self.0.get(&g).cloned())
        }
        fn header(&self, snap: u64) -> Result<Arc<SnapHeader>> {
            Err(Error::internal(format!("no header {snap} in this test")))
        }
        fn section(&self, snap: u64, t: TypeNid) -> Result<Arc<Section>> {
            Err(Error::internal(format!("no section {snap}/{t} in this test")))
        }
    }

    fn record(level: u8, physical: Physical) -> GroupRecord {
        GroupRecord {
            room: 0,
            event: 0,
            level,
            ghost: false,
            prev: None,
            physical,
            logical: None,
        }
    }

    /// Stores groups 2..=n each on top of the previous one, as the write
    /// path places them; returns the records.
    fn linear(policy: &ChainPolicy, n: u64) -> Records {
        let mut recs = Records::default();
        recs.0.insert(1, Arc::new(record(policy.top(), Physical::Snapshot(1))));
        for g in 2..=n {
            let change = vec![(ikey(1, u32::try_from(g).unwrap()), Some(g))];
            let p = place(&recs, policy, g - 1).unwrap();
            let rec = match &p {
                Placement::Delta { level, base, .. } => record(
                    *level,
                    Physical::Delta {
                        base: *base,
                        delta: p.physical_delta(&change),
                    },
                ),
                Placement::Snapshot => record(policy.top(), Physical::Snapshot(g)),
            };
            recs.0.insert(g, Arc::new(rec));
        }
        recs
    }

    fn hops(recs: &Records, g: u64) -> u64 {
        crate::access::chain_of(recs, g).unwrap().deltas.len() as u64
    }

    #[test]
    fn levels_follow_the_runs() {
        let policy = ChainPolicy::new(vec![3, 3, 2]).unwrap();
        let recs = linear(&policy, 40);
        let levels: Vec<u8> = (1..=19).map(|g| recs.0[&g].level).collect();
        // Two level-0 deltas, then a level-1 checkpoint; two level-1
        // checkpoints, then a level-2 one; one level-2, then a snapshot.
        assert_eq!(levels, [3, 0, 0, 1, 0, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 1, 0, 0, 3]);
        for g in 1..=40 {
            assert!(
                hops(&recs, g) <= policy.max_hops(),
                "group {g}: {} hops",
                hops(&recs, g)
            );
        }
    }

    #[test]
    fn a_checkpoint_carries_every_change_since_its_base() {
        let policy = ChainPolicy::new(vec![3, 3, 2]).unwrap();
        let recs = linear(&policy, 4);
        // Group 4 is the level-1 checkpoint on snapshot group 1: its delta
        // holds the changes of groups 2, 3 and 4.
        let Physical::Delta { base, delta } = &recs.0[&4].physical else {
            panic!("group 4 is a delta")
        };
        assert_eq!(*base, 1);
        assert_eq!(delta.len(), 3);
    }

    #[test]
    fn policies_are_checked() {
        assert!(ChainPolicy::new(vec![]).is_none());
        assert!(ChainPolicy::new(vec![1]).is_none());
        assert!(ChainPolicy::new(vec![2; 8]).is_none());
        assert_eq!(ChainPolicy::new(vec![32, 32, 32]).unwrap().max_hops(), 93);
        assert_eq!(ChainPolicy::default().max_hops(), 93);
    }
}
