//! [`Committed`]: the committed database as a [`Source`], read through
//! the caches.

use std::sync::Arc;

use mxstate_api::{Error, Result};

use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{self, EventNid, IKey, TypeNid};
use crate::format::snapshot::{Section, SnapHeader};
use crate::kv::{Cf, KvStore};

use super::cache::{Caches, Page, PAGE_IDS};
use super::source::{at, endless, found_entries, lookup_in_chain, Chain, Source, MAX_HOPS};

/// The committed database, read through the caches.
pub struct Committed<'a> {
    pub kv: &'a dyn KvStore,
    pub caches: &'a Caches,
}

impl Committed<'_> {
    /// Page `n` of group records: cached, or read in one range read.
    pub(super) fn page(&self, n: u64) -> Result<Arc<Page>> {
        let records = &self.caches.records;
        if let Some(p) = records.page(n) {
            return Ok(p);
        }
        let before = records.changes();
        let lower = keys::group_key(n.saturating_mul(PAGE_IDS));
        let upper = match n.checked_add(1).and_then(|e| e.checked_mul(PAGE_IDS)) {
            Some(end) => keys::group_key(end).to_vec(),
            // The last page: every 8-byte key is below 8 `ff` bytes and a `00`.
            None => {
                let mut past_all = vec![0xff; 8];
                past_all.push(0);
                past_all
            }
        };
        let mut page = Page::new();
        self.kv.scan_range(Cf::Groups, &lower, &upper, &mut |k, v| {
            let id = keys::parse_group_key(k)
                .ok_or_else(|| Error::corrupt("group key", format!("groups/{k:02x?}"), "not 8 bytes"))?;
            page.push(id, v);
            Ok(true)
        })?;
        let page = Arc::new(page);
        records.keep_page(n, page.clone(), before);
        Ok(page)
    }

    /// Decodes and caches the record of group `g` from its bytes.
    fn decoded(&self, g: u64, bytes: &[u8]) -> Result<Arc<GroupRecord>> {
        let rec = Arc::new(GroupRecord::decode(g, bytes).map_err(|e| at(e, format!("groups/{g}")))?);
        self.caches.records.insert_read(g, rec.clone());
        Ok(rec)
    }

    /// The physical chain of `g`, walked down to the first checkpoint (a
    /// delta of level 1 or more) whose chain is cached, or to the
    /// snapshot. The chains of the checkpoints walked are cached on the
    /// way: the groups stored above a checkpoint share its chain, so a
    /// later walk stops there.
    ///
    /// The records below `g` are decoded from their pages (the last one
    /// kept at hand) and are not looked up in or added to the record
    /// cache: a walk mostly meets records no read has decoded yet, and
    /// the chain keeps them.
    fn walk(&self, g: u64) -> Result<Chain> {
        let (mut deltas, mut groups) = (Vec::with_capacity(32), Vec::with_capacity(32));
        // Indexes into `deltas` of the checkpoints walked (`g` aside).
        let mut checkpoints = Vec::new();
        let mut page: Option<(u64, Arc<Page>)> = None;
        let mut cur = g;
        let (tail, snap) = loop {
            let rec = if cur == g {
                self.existing(cur)?
            } else {
                let n = cur / PAGE_IDS;
                let p = match &page {
                    Some((at, p)) if *at == n => p.clone(),
                    _ => {
                        let p = self.page(n)?;
                        page = Some((n, p.clone()));
                        p
                    }
                };
                match p.get(cur) {
                    Some(bytes) => {
                        Arc::new(GroupRecord::decode(cur, bytes).map_err(|e| at(e, format!("groups/{cur}")))?)
                    }
                    None => self.existing(cur)?,
                }
            };
            let base = match &rec.physical {
                Physical::Snapshot(s) => break (None, *s),
                Physical::Delta { base, .. } => *base,
            };
            if cur != g && rec.level >= 1 {
                if let Some(c) = self.caches.chains.get(&cur) {
                    break (Some(c.clone()), c.snap);
                }
                checkpoints.push(deltas.len());
            }
            groups.push(cur);
            deltas.push(rec);
            if deltas.len() > MAX_HOPS {
                return Err(endless(g));
            }
            cur = base;
        };
        if let Some(t) = &tail {
            deltas.reserve_exact(t.deltas.len());
            groups.reserve_exact(t.groups.len());
            deltas.extend(t.deltas.iter().cloned());
            groups.extend(t.groups.iter().copied());
        }
        for &i in &checkpoints {
            if let (Some(d), Some(gs), Some(&c)) = (deltas.get(i..), groups.get(i..), groups.get(i)) {
                let chain = Chain {
                    deltas: d.to_vec(),
                    groups: gs.to_vec(),
                    snap,
                };
                self.caches.chains.insert(c, Arc::new(chain));
            }
        }
        Ok(Chain { deltas, groups, snap })
    }
}

impl Source for Committed<'_> {
    fn record(&self, g: u64) -> Result<Option<Arc<GroupRecord>>> {
        if let Some(r) = self.caches.records.get(&g) {
            return Ok(Some(r));
        }
        let page = self.page(g / PAGE_IDS)?;
        if let Some(bytes) = page.get(g) {
            return self.decoded(g, bytes).map(Some);
        }
        // Not in the page: no such group (a point read to be sure).
        match self.kv.get(Cf::Groups, &keys::group_key(g))? {
            Some(bytes) => self.decoded(g, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn chain(&self, g: u64) -> Result<Arc<Chain>> {
        if let Some(c) = self.caches.chains.get(&g) {
            return Ok(c);
        }
        let c = Arc::new(self.walk(g)?);
        self.caches.chains.insert(g, c.clone());
        Ok(c)
    }

    /// On a cached chain; the first time a group is read this way, walked
    /// in encoded form ([`super::point`]); the second time, on its chain,
    /// built and cached then. A cold read of many groups, each once, builds
    /// no chains; a group read again is read as fast as a warm one.
    fn point_lookup(&self, g: u64, keys: &[IKey]) -> Result<Vec<(IKey, EventNid)>> {
        let chain = match self.caches.chains.get(&g) {
            Some(chain) => chain,
            None if self.caches.walked.get(&g).is_some() => self.chain(g)?,
            None => {
                self.caches.walked.insert(g, ());
                return self.point_walk(g, keys);
            }
        };
        let mut found = vec![None; keys.len()];
        lookup_in_chain(self, &chain, keys, &mut found)?;
        Ok(found_entries(keys, &found))
    }

    fn header(&self, snap: u64) -> Result<Arc<SnapHeader>> {
        if let Some(h) = self.caches.headers.get(&snap) {
            return Ok(h);
        }
        let bytes = self
            .kv
            .get(Cf::Snapshots, &keys::snap_header_key(snap))?
            .ok_or_else(|| Error::corrupt("snapshot header", format!("snapshots/{snap}"), "missing"))?;
        let h = Arc::new(SnapHeader::decode(&bytes).map_err(|e| at(e, format!("snapshots/{snap}")))?);
        self.caches.headers.insert(snap, h.clone());
        Ok(h)
    }

    fn section(&self, snap: u64, t: TypeNid) -> Result<Arc<Section>> {
        if let Some(s) = self.caches.sections.get(&(snap, t)) {
            return Ok(s);
        }
        let sec = match self.kv.get(Cf::Snapshots, &keys::snap_section_key(snap, t))? {
            Some(bytes) => Section::decode(&bytes).map_err(|e| at(e, format!("snapshots/{snap}/{t}")))?,
            None => Section::default(),
        };
        let sec = Arc::new(sec);
        self.caches.sections.insert((snap, t), sec.clone());
        Ok(sec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::chain_of;
    use crate::access::source::{found_entries, lookup_in_chain};
    use crate::kv::{Batch, MemKv};

    /// The committed records read with point reads only: the reference.
    struct Plain<'a>(&'a MemKv);

    impl Source for Plain<'_> {
        fn record(&self, g: u64) -> Result<Option<Arc<GroupRecord>>> {
            Ok(match self.0.get(Cf::Groups, &keys::group_key(g))? {
                Some(b) => Some(Arc::new(GroupRecord::decode(g, &b)?)),
                None => None,
            })
        }
        fn header(&self, snap: u64) -> Result<Arc<SnapHeader>> {
            let b = self.0.get(Cf::Snapshots, &keys::snap_header_key(snap))?;
            Ok(Arc::new(SnapHeader::decode(
                &b.ok_or_else(|| Error::internal("no header"))?,
            )?))
        }
        fn section(&self, snap: u64, t: TypeNid) -> Result<Arc<Section>> {
            Ok(Arc::new(
                match self.0.get(Cf::Snapshots, &keys::snap_section_key(snap, t))? {
                    Some(b) => Section::decode(&b)?,
                    None => Section::default(),
                },
            ))
        }
    }

    fn record(g: u64, level: u8, physical: Physical) -> (u64, Vec<u8>) {
        let rec = GroupRecord {
            room: 1,
            event: g,
            level,
            ghost: false,
            prev: None,
            physical,
            logical: None,
        };
        let mut v = Vec::new();
        rec.encode(g, &mut v);
        (g, v)
    }

    /// Groups 1..=n of one room as the chain policy lays them out (runs of
    /// 8): level-0 deltas on the previous group, level-1 checkpoints on
    /// the previous checkpoint, a snapshot at 1; ids from `first`. Group
    /// `first + i` sets key `i`, and sets or (every fifth) removes key
    /// `ikey(1, i % 7)`, which many deltas of a chain decide.
    fn put_room(kv: &MemKv, first: u64, n: u64) {
        let mut b = Batch::default();
        let mut checkpoint = first;
        for i in 0..n {
            let g = first + i;
            let shared = (keys::ikey(1, (i % 7) as u32), (i % 5 != 0).then_some(g));
            let (id, v) = if i == 0 {
                record(g, 3, Physical::Snapshot(first))
            } else if i % 8 == 0 {
                let base = checkpoint;
                checkpoint = g;
                record(
                    g,
                    1,
                    Physical::Delta {
                        base,
                        delta: vec![(i, Some(g)), shared],
                    },
                )
            } else {
                record(
                    g,
                    0,
                    Physical::Delta {
                        base: g - 1,
                        delta: vec![(i, Some(g)), shared],
                    },
                )
            };
            b.put(Cf::Groups, keys::group_key(id).to_vec(), v);
        }
        kv.write(b).unwrap();
    }

    /// The snapshot of a room put by [`put_room`]: type 0 with state keys
    /// 0, 3, 6, ... below 60 (the deltas set keys 1, 2, ...).
    fn put_snapshot(kv: &MemKv, snap: u64) {
        let skeys: Vec<u32> = (0..20).map(|i| i * 3).collect();
        let sec = Section {
            events: skeys.iter().map(|&s| 5000 + u64::from(s)).collect(),
            skeys,
        };
        let header = SnapHeader {
            room: 1,
            hash: 0,
            refs: 1,
            entries: 20,
            types: vec![0],
        };
        let mut b = Batch::default();
        b.put(Cf::Snapshots, keys::snap_header_key(snap).to_vec(), header.encode());
        b.put(Cf::Snapshots, keys::snap_section_key(snap, 0).to_vec(), sec.encode());
        kv.write(b).unwrap();
    }

    /// Point reads walked in encoded form answer what a search of the
    /// plainly walked chain answers: from pages, from records decoded in
    /// the cache (committed after their page was read), stopping at cached
    /// checkpoint chains, with caches small enough to evict.
    #[test]
    fn point_walks_answer_what_the_chain_answers() {
        let kv = MemKv::new();
        put_room(&kv, 1, 700);
        put_snapshot(&kv, 1);
        let key_sets: Vec<Vec<IKey>> = vec![
            vec![0],
            vec![5],
            vec![3, 4, 59],
            (0..64).collect(),
            vec![61, 1000],
            (0..8).map(|s| keys::ikey(1, s)).collect(),
            vec![2, keys::ikey(1, 3)],
        ];
        for bytes in [64 << 20, 64 << 10] {
            let caches = Caches::new(bytes);
            let src = Committed {
                kv: &kv,
                caches: &caches,
            };
            for (n, g) in (0..700u64).map(|i| 1 + i * 337 % 700).enumerate() {
                match n % 4 {
                    // Some chains cached: later walks stop at them.
                    0 => drop(src.chain(g).unwrap()),
                    // Some records decoded in the cache, their pages dropped.
                    1 => {
                        let r = Plain(&kv).record(g).unwrap().unwrap();
                        caches.records.insert(g, r);
                    }
                    _ => {}
                }
                let chain = chain_of(&Plain(&kv), g).unwrap();
                for ks in &key_sets {
                    let mut want = vec![None; ks.len()];
                    lookup_in_chain(&Plain(&kv), &chain, ks, &mut want).unwrap();
                    let got = src.point_lookup(g, ks).unwrap();
                    assert_eq!(got, found_entries(ks, &want), "group {g}, keys {ks:?}");
                    let walked = src.point_walk(g, ks).unwrap();
                    assert_eq!(walked, got, "group {g}, keys {ks:?}");
                }
                // Read more than once, a group has its chain cached (unless
                // the small caches evicted it).
                if bytes > 1 << 20 {
                    assert!(caches.chains.get(&g).is_some(), "group {g}");
                }
                src.check_live(g).unwrap();
            }
            assert!(matches!(src.check_live(701), Err(Error::UnknownGroup(701))));
            assert!(matches!(src.point_walk(701, &[1]), Err(Error::UnknownGroup(701))));
        }
    }

    /// A ghost is not live, whether read from its page or decoded.
    #[test]
    fn ghosts_are_not_live() {
        let kv = MemKv::new();
        put_room(&kv, 1, 20);
        let mut rec = Plain(&kv).record(5).unwrap().unwrap().as_ref().clone();
        rec.ghost = true;
        let mut v = Vec::new();
        rec.encode(5, &mut v);
        let mut b = Batch::default();
        b.put(Cf::Groups, keys::group_key(5).to_vec(), v);
        kv.write(b).unwrap();
        let caches = Caches::new(64 << 20);
        let src = Committed {
            kv: &kv,
            caches: &caches,
        };
        assert!(matches!(src.check_live(5), Err(Error::UnknownGroup(5))));
        src.check_live(6).unwrap();
        caches.records.insert(5, Arc::new(rec));
        assert!(matches!(src.check_live(5), Err(Error::UnknownGroup(5))));
    }

    fn same(a: &Chain, b: &Chain) -> bool {
        a.snap == b.snap && a.groups == b.groups && a.deltas.iter().zip(&b.deltas).all(|(x, y)| x == y)
    }

    /// Chains read through pages and cached checkpoint chains are the
    /// chains walked one point read at a time, in any order, across page
    /// boundaries, with caches small enough to evict.
    #[test]
    fn chains_through_pages_are_the_walked_chains() {
        let kv = MemKv::new();
        put_room(&kv, 1, 700);
        put_room(&kv, PAGE_IDS * 5 - 3, 40);
        for bytes in [64 << 20, 64 << 10] {
            let caches = Caches::new(bytes);
            let src = Committed {
                kv: &kv,
                caches: &caches,
            };
            let order = (0..700u64)
                .map(|i| 1 + i * 337 % 700)
                .chain((PAGE_IDS * 5 - 3..PAGE_IDS * 5 + 37).rev());
            for g in order {
                let want = chain_of(&Plain(&kv), g).unwrap();
                let got = src.chain(g).unwrap();
                assert!(same(&got, &want), "group {g}");
                assert_eq!(
                    src.record(g).unwrap().as_deref(),
                    Plain(&kv).record(g).unwrap().as_deref()
                );
            }
            assert!(src.record(0).unwrap().is_none());
            assert!(src.record(702).unwrap().is_none());
            assert!(src.record(u64::MAX).unwrap().is_none());
        }
    }

    /// A page read from the store is not kept when a commit told a change
    /// meanwhile, and a commit drops the page of a record it writes: a
    /// group written after its page was read is found.
    #[test]
    fn pages_never_hide_a_committed_record() {
        let kv = MemKv::new();
        put_room(&kv, 1, 20);
        let caches = Caches::new(64 << 20);
        let src = Committed {
            kv: &kv,
            caches: &caches,
        };
        assert!(src.record(5).unwrap().is_some());
        assert!(caches.records.page(0).is_some());
        // A commit of group 21 (store, then caches), then eviction of its
        // record: the page read before does not answer for it.
        let (g, v) = record(
            21,
            0,
            Physical::Delta {
                base: 20,
                delta: vec![(1, Some(21))],
            },
        );
        let mut b = Batch::default();
        b.put(Cf::Groups, keys::group_key(g).to_vec(), v.clone());
        kv.write(b).unwrap();
        caches.records.insert(g, Arc::new(GroupRecord::decode(g, &v).unwrap()));
        assert!(caches.records.page(0).is_none());
        let fresh = Caches::new(64 << 20);
        let before = fresh.records.changes();
        let stale = Arc::new(Page::new());
        fresh.records.insert(g, Arc::new(GroupRecord::decode(g, &v).unwrap()));
        fresh.records.keep_page(0, stale, before);
        assert!(fresh.records.page(0).is_none());
        let src = Committed {
            kv: &kv,
            caches: &fresh,
        };
        assert!(src.chain(21).unwrap().groups.starts_with(&[21, 20]));
    }
}
