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

/// A set of local ids below a bound, a bit each.
pub struct Bits(Vec<u64>, usize);

impl Bits {
    /// The empty set of ids below `n`.
    pub fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)], n)
    }

    /// Adds `id`; true if it was not there. Ids out of bounds are not
    /// added (and give false).
    pub fn insert(&mut self, id: u32) -> bool {
        if id as usize >= self.1 {
            return false;
        }
        let Some(word) = self.0.get_mut(id as usize / 64) else {
            return false;
        };
        let bit = 1u64 << (id % 64);
        let new = *word & bit == 0;
        *word |= bit;
        new
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        self.0
            .get(id as usize / 64)
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }

    /// The ids, as a bitmap.
    pub fn to_bitmap(&self) -> RoaringBitmap {
        let ids = self.0.iter().enumerate().flat_map(|(i, &w)| {
            let base = (i * 64) as u32;
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(base + b)
            })
        });
        RoaringBitmap::from_sorted_iter(ids).unwrap_or_default()
    }
}

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
        // Local ids are dense: a bit per event marks the visited ones (a
        // bitmap insert per visit cost a third of a walk); the bitmap is
        // built once, from the bits in order (sorting the visits cost a
        // tenth).
        let mut seen = Bits::new(self.event_count());
        let mut stack: Vec<u32> = Vec::new();
        let mut visit = |e: u32, stack: &mut Vec<u32>| {
            if stop.is_some_and(|b| b.contains(e)) {
                return;
            }
            if seen.insert(e) {
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
        seen.to_bitmap()
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
        if sets.len() <= 64 {
            return self.difference_marked(sets, &common);
        }
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

    /// [`AuthGraph::difference`] for at most 64 sets: one mask per event,
    /// a bit per set whose chain holds it. The common events' chain is
    /// walked first with every bit; each set's walk then goes on only
    /// through events missing its bit. The difference is the events with
    /// some bits but not all.
    fn difference_marked(&self, sets: &[RoaringBitmap], common: &RoaringBitmap) -> RoaringBitmap {
        let full: u64 = if sets.len() == 64 {
            u64::MAX
        } else {
            (1u64 << sets.len()) - 1
        };
        let mut marks = vec![0u64; self.event_count()];
        let mut stack: Vec<u32> = Vec::new();
        let mut walk = |starts: &mut dyn Iterator<Item = u32>, bits: u64, marks: &mut Vec<u64>| {
            let mut visit = |e: u32, stack: &mut Vec<u32>| {
                if let Some(m) = marks.get_mut(e as usize) {
                    if *m & bits != bits {
                        *m |= bits;
                        stack.push(e);
                    }
                }
            };
            for e in starts {
                visit(e, &mut stack);
            }
            while let Some(e) = stack.pop() {
                for &a in self.auth(e) {
                    visit(a, &mut stack);
                }
            }
        };
        walk(&mut common.iter(), full, &mut marks);
        for (i, s) in sets.iter().enumerate() {
            walk(&mut (s - common).iter(), 1 << i, &mut marks);
        }
        let partial = marks
            .iter()
            .enumerate()
            .filter(|(_, &m)| m != 0 && m != full)
            .map(|(i, _)| i as u32);
        RoaringBitmap::from_sorted_iter(partial).unwrap_or_default()
    }

    /// The conflicted subgraph: events reachable (by zero or more edges)
    /// from a conflicted or additional event that also reach a conflicted
    /// event (by zero or more edges).
    pub fn conflicted_subgraph(&self, c: &Conflicted) -> RoaringBitmap {
        let back = self.closure(c.conflicted.iter().chain(&c.additional).copied(), None);
        let n = self.event_count();
        let mut targets = Bits::new(n);
        for &e in &c.conflicted {
            targets.insert(e);
        }
        // Within `back` (closed under auth edges), an event reaches a
        // conflicted event if it is one or one of its auth events does:
        // decided depth first, each event once.
        let mut reaches = Bits::new(n);
        let mut decided = Bits::new(n);
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
            for e in more {
                reaches.insert(e);
            }
        }
        back & reaches.to_bitmap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graph of `n` events where event `e` has the auth events `e / 2`
    /// and `e / 3` (below it), and sets drawn from it.
    fn graph(n: u64) -> AuthGraph {
        let mut g = AuthGraph::default();
        g.add(0, &[]);
        for e in 1..n {
            let mut auth = vec![e / 2];
            if e / 3 != e / 2 {
                auth.push(e / 3);
            }
            g.add(e, &auth);
        }
        g
    }

    /// The plain meaning: union of the full chains less their intersection.
    fn plain(g: &AuthGraph, sets: &[RoaringBitmap]) -> RoaringBitmap {
        let chains: Vec<RoaringBitmap> = sets.iter().map(|s| g.closure(s.iter(), None)).collect();
        let union = chains.iter().fold(RoaringBitmap::new(), |a, c| a | c);
        let all = chains.iter().skip(1).fold(chains[0].clone(), |a, c| a & c);
        union - all
    }

    #[test]
    fn difference_is_the_plain_one_for_few_and_many_sets() {
        let g = graph(3000);
        for count in [1usize, 2, 3, 64, 65, 100] {
            let sets: Vec<RoaringBitmap> = (0..count)
                .map(|i| {
                    let mut s: RoaringBitmap = (2000..2100).collect();
                    s.insert(1000 + i as u32 * 17);
                    s.insert(2999 - i as u32);
                    s
                })
                .collect();
            let got = g.difference(&sets);
            assert_eq!(got, plain(&g, &sets), "{count} sets");
            if count > 1 {
                assert!(!got.is_empty());
            }
        }
    }

    #[test]
    fn bits_keep_order_and_bounds() {
        let mut b = Bits::new(130);
        assert!(b.insert(129) && b.insert(0) && b.insert(64));
        assert!(!b.insert(64) && !b.insert(130));
        assert!(b.contains(129) && !b.contains(1) && !b.contains(1000));
        assert_eq!(b.to_bitmap().iter().collect::<Vec<_>>(), vec![0, 64, 129]);
    }
}
