//! The questions asked of an [`AuthGraph`], with Synapse's meaning
//! (`synapse/storage/databases/main/event_federation.py`):
//!
//! - the auth chain of some events: every event reachable from them by
//!   one or more auth edges, plus the events themselves when asked;
//! - the auth chain difference of state sets: with each set's full auth
//!   chain taken to include the set's own events, the events in some of
//!   these chains but not in all;
//! - state res v2.1's conflicted subgraph: the events that are both
//!   reachable from a conflicted (or additional) event, or are one, and
//!   reach a conflicted event, or are one.
//!
//! Work is on local ids in roaring bitmaps; events the graph does not name
//! are the caller's (they have no edges).

use roaring::RoaringBitmap;

use super::graph::AuthGraph;

/// State res v2.1's inputs for the conflicted subgraph, as local ids.
pub struct Conflicted {
    pub conflicted: Vec<u32>,
    pub additional: Vec<u32>,
}

impl AuthGraph {
    /// Everything reachable from `starts` by zero or more edges, not
    /// entering `stop` (which must be closed under auth edges: whatever
    /// it holds, it holds with its auth chain).
    pub fn closure(&self, starts: impl IntoIterator<Item = u32>, stop: Option<&RoaringBitmap>) -> RoaringBitmap {
        // Local ids are dense: a flag per event marks the visited ones (a
        // bitmap insert per visit cost a third of a walk); the bitmap is
        // built once, from the sorted visits.
        let mut seen = vec![false; self.event_count()];
        let mut visited: Vec<u32> = Vec::new();
        let mut stack: Vec<u32> = Vec::new();
        let mut visit = |e: u32, stack: &mut Vec<u32>| {
            if stop.is_some_and(|b| b.contains(e)) {
                return;
            }
            if let Some(flag @ false) = seen.get_mut(e as usize) {
                *flag = true;
                visited.push(e);
                stack.push(e);
            }
        };
        for s in starts {
            visit(s, &mut stack);
        }
        while let Some(e) = stack.pop() {
            for &a in self.auth(e) {
                visit(a, &mut stack);
            }
        }
        visited.sort_unstable();
        RoaringBitmap::from_sorted_iter(visited).unwrap_or_default()
    }

    /// The auth chain of `events`: reachable by one or more edges.
    pub fn chain(&self, events: &[u32]) -> RoaringBitmap {
        self.closure(events.iter().flat_map(|&e| self.auth(e).iter().copied()), None)
    }

    /// The auth chain difference of `sets` (each set's chain including the
    /// set itself). The chain of the events common to every set is in
    /// every chain: it is walked once, and the walks from each set's other
    /// events stop at it.
    pub fn difference(&self, sets: &[RoaringBitmap]) -> RoaringBitmap {
        let Some((first, rest)) = sets.split_first() else {
            return RoaringBitmap::new();
        };
        let common = rest.iter().fold(first.clone(), |acc, s| acc & s);
        let base = self.closure(common.iter(), None);
        let walks: Vec<RoaringBitmap> = sets
            .iter()
            .map(|s| self.closure((s - &common).iter(), Some(&base)))
            .collect();
        let union = walks.iter().fold(RoaringBitmap::new(), |acc, w| acc | w);
        let all = walks
            .split_first()
            .map(|(f, r)| r.iter().fold(f.clone(), |acc, w| acc & w))
            .unwrap_or_default();
        union - all
    }

    /// The conflicted subgraph: events reachable (by zero or more edges)
    /// from a conflicted or additional event that also reach a conflicted
    /// event (by zero or more edges).
    pub fn conflicted_subgraph(&self, c: &Conflicted) -> RoaringBitmap {
        let back = self.closure(c.conflicted.iter().chain(&c.additional).copied(), None);
        let targets: RoaringBitmap = c.conflicted.iter().copied().collect();
        // Within `back` (closed under auth edges), an event reaches a
        // conflicted event if it is one or one of its auth events does:
        // decided depth first, each event once.
        let mut reaches = RoaringBitmap::new();
        let mut decided = RoaringBitmap::new();
        for root in back.iter() {
            if decided.contains(root) {
                continue;
            }
            // (event, next auth edge to look at)
            let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
            decided.insert(root);
            while let Some(top) = stack.last_mut() {
                let (e, i) = *top;
                let auth = self.auth(e);
                if let Some(&a) = auth.get(i) {
                    top.1 += 1;
                    if decided.insert(a) {
                        stack.push((a, 0));
                    }
                    continue;
                }
                stack.pop();
                if targets.contains(e) || auth.iter().any(|&a| reaches.contains(a)) {
                    reaches.insert(e);
                }
            }
        }
        // An auth cycle (impossible with hashed event ids, not excluded
        // for older room versions) can leave an event decided before what
        // it reaches: settle by repeating until nothing changes (one pass,
        // finding nothing, on a DAG).
        loop {
            let more: Vec<u32> = back
                .iter()
                .filter(|&e| !reaches.contains(e) && self.auth(e).iter().any(|&a| reaches.contains(a)))
                .collect();
            if more.is_empty() {
                break;
            }
            reaches.extend(more);
        }
        back & reaches
    }
}
