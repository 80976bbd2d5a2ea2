//! The chain policy: where a new group is stored physically.
//!
//! Levels 0..top-1 are deltas, level `top` is a snapshot. A level-L group
//! is stored against the nearest group of level >= L on its parent's
//! physical chain; at most `runs[L] - 1` level-L groups follow each other
//! on a chain. So a read walks at most `sum(runs[L] - 1)` deltas and one
//! snapshot, however the caller chained its groups, while a level-L delta
//! holds about `prod(runs[..L])` changes (see docs/design.md). The writer
//! remembers recent groups' run counts ([`RunMemory`]), so that most
//! placements read no record.

use std::sync::Arc;

use rustc_hash::FxHashMap;

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

/// A group's runs: `at[L]` is how many level-`L` records a placement
/// walking from the group meets at level `L` (see [`place`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Runs {
    at: [u32; 7],
}

impl Runs {
    /// The runs of a group stored at `level` on top of a parent with these
    /// runs: no run below its level (it breaks them), one more at its level
    /// (it follows its base, where the parent's run at that level starts),
    /// the parent's above. A snapshot (`level` at or past the policy's
    /// top) has none.
    pub fn child(&self, policy: &ChainPolicy, level: u8) -> Runs {
        let mut at = [0u32; 7];
        if level >= policy.top() {
            return Runs { at };
        }
        let l = usize::from(level);
        for (i, slot) in at.iter_mut().enumerate().skip(l) {
            let parent = self.at.get(i).copied().unwrap_or(0);
            *slot = if i == l { parent.saturating_add(1) } else { parent };
        }
        Runs { at }
    }
}

/// The runs of recently stored groups, kept by the engine's writer so
/// that placing a group on one of them walks no record: a level-0 delta,
/// 31 stores in 32 with the default policy, is placed from the parent's
/// runs alone. At most [`RunMemory::MAX`] groups; it starts over when full.
/// The counts only bound the chains' lengths: a level-0 delta holds the
/// change against its parent, whatever they say.
#[derive(Default)]
pub struct RunMemory {
    by_group: FxHashMap<u64, Runs>,
}

impl RunMemory {
    /// Groups remembered at most.
    pub const MAX: usize = 1 << 16;

    /// The runs of group `g`, if remembered.
    pub fn get(&self, g: u64) -> Option<Runs> {
        self.by_group.get(&g).copied()
    }

    /// Remembers the runs of group `g`.
    pub fn set(&mut self, g: u64, runs: Runs) {
        if self.by_group.len() >= Self::MAX && !self.by_group.contains_key(&g) {
            self.by_group.clear();
        }
        self.by_group.insert(g, runs);
    }
}

/// Places a new group whose parent is `parent`, given the parent's runs
/// when remembered; returns the placement and the parent's runs.
///
/// A level-L group goes against the record where the parent's walk meets
/// level L, when fewer than `runs[L] - 1` level-L records follow there.
/// With the parent's runs known and room at level 0, no record is read;
/// otherwise the records are walked (to the end of every level when the
/// runs are not known, to learn them).
pub fn place(src: &dyn Source, policy: &ChainPolicy, parent: u64, known: Option<Runs>) -> Result<(Placement, Runs)> {
    if let (Some(runs), Some(&run)) = (known, policy.runs.first()) {
        if runs.at[0].saturating_add(1) < run {
            let placement = Placement::Delta {
                level: 0,
                base: parent,
                path: Vec::new(),
            };
            return Ok((placement, runs));
        }
    }
    let mut path = Vec::new();
    let mut placement = None;
    let mut counted = Runs::default();
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
            if placement.is_none() {
                walked.push(cur);
            }
            id = next;
            cur = src.existing(next)?;
        }
        if let Some(slot) = counted.at.get_mut(usize::from(level)) {
            *slot = count;
        }
        if placement.is_none() {
            if count + 1 < run {
                placement = Some(Placement::Delta {
                    level,
                    base: anchor,
                    path: std::mem::take(&mut path),
                });
                if let Some(runs) = known {
                    // The runs above this level are the remembered ones.
                    for (i, slot) in counted.at.iter_mut().enumerate().skip(usize::from(level) + 1) {
                        *slot = runs.at.get(i).copied().unwrap_or(0);
                    }
                    break;
                }
            } else {
                path.extend(walked);
            }
        }
        anchor = id;
        rec = cur;
    }
    Ok((placement.unwrap_or(Placement::Snapshot), counted))
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

    /// The record a group placed by `p` gets, its change naming it.
    fn placed(policy: &ChainPolicy, p: &Placement, g: u64) -> GroupRecord {
        let change = vec![(ikey(1, u32::try_from(g).unwrap()), Some(g))];
        match p {
            Placement::Delta { level, base, .. } => record(
                *level,
                Physical::Delta {
                    base: *base,
                    delta: p.physical_delta(&change),
                },
            ),
            Placement::Snapshot => record(policy.top(), Physical::Snapshot(g)),
        }
    }

    /// Stores groups 2..=n each on top of the previous one, as the write
    /// path places them; returns the records.
    fn linear(policy: &ChainPolicy, n: u64) -> Records {
        let mut recs = Records::default();
        recs.0.insert(1, Arc::new(record(policy.top(), Physical::Snapshot(1))));
        for g in 2..=n {
            let (p, _) = place(&recs, policy, g - 1, None).unwrap();
            recs.0.insert(g, Arc::new(placed(policy, &p, g)));
        }
        recs
    }

    /// A placement as comparable values: level, base and the path's records.
    fn shape(p: &Placement) -> Option<(u8, u64, Vec<*const GroupRecord>)> {
        match p {
            Placement::Delta { level, base, path } => Some((*level, *base, path.iter().map(Arc::as_ptr).collect())),
            Placement::Snapshot => None,
        }
    }

    #[test]
    fn remembered_runs_place_as_walking_does() {
        let policies = [
            ChainPolicy::new(vec![3, 3, 2]).unwrap(),
            ChainPolicy::new(vec![4, 2, 3, 2]).unwrap(),
            ChainPolicy::new(vec![2, 2]).unwrap(),
            ChainPolicy::default(),
        ];
        for policy in policies {
            let mut recs = Records::default();
            let mut memory = RunMemory::default();
            recs.0.insert(1, Arc::new(record(policy.top(), Physical::Snapshot(1))));
            memory.set(1, Runs::default());
            let mut seed = 7u64;
            for g in 2..=3000u64 {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                // Mostly on the newest group, one in eight on an older one
                // (a fork), and some groups forgotten (a restart).
                let parent = if seed >> 61 == 0 {
                    1 + (seed >> 20) % (g - 1)
                } else {
                    g - 1
                };
                let known = if (seed >> 8).is_multiple_of(29) {
                    None
                } else {
                    memory.get(parent)
                };
                let (walked, walked_runs) = place(&recs, &policy, parent, None).unwrap();
                let (p, runs) = place(&recs, &policy, parent, known).unwrap();
                assert_eq!(runs, walked_runs, "{policy:?}: runs of group {parent}");
                assert_eq!(shape(&p), shape(&walked), "{policy:?}: group {g} on {parent}");
                let rec = placed(&policy, &p, g);
                memory.set(g, runs.child(&policy, rec.level));
                recs.0.insert(g, Arc::new(rec));
                // What is remembered for the new group is what a walk finds.
                assert_eq!(
                    memory.get(g),
                    Some(place(&recs, &policy, g, None).unwrap().1),
                    "{policy:?}: runs of the new group {g}"
                );
            }
        }
    }

    #[test]
    fn run_memory_is_bounded() {
        let mut memory = RunMemory::default();
        for g in 0..(RunMemory::MAX as u64 + 10) {
            memory.set(g, Runs::default());
        }
        assert!(memory.by_group.len() <= RunMemory::MAX);
        assert!(memory.get(RunMemory::MAX as u64 + 9).is_some());
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
