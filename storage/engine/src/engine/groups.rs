//! Storing groups and reading their state.

use std::collections::{BTreeMap, BTreeSet};

use mxstate_api::{Error, EventId, GroupDelta, GroupId, Result, RoomId, StateFilter, StateKey, StateMap, StateView};

use crate::access::Source;
use crate::format::group::GroupRecord;
use crate::format::keys;
use crate::format::keys::{ikey_skey, ikey_type, StrKind};
use crate::kv::Cf;
use crate::write::room_index;
use crate::write::store::{store_group, Latest};
use crate::write::{GroupState, NewGroup};

use super::Engine;

impl Engine {
    /// Stores one group; returns its id.
    pub fn store_group(&self, group: NewGroup<'_>) -> Result<GroupId> {
        self.store_groups(&[group])?
            .pop()
            .ok_or_else(|| Error::internal("store_groups returned no id for one group"))
    }

    /// Stores groups atomically, in order (later ones may build on earlier ones).
    pub fn store_groups(&self, groups: &[NewGroup<'_>]) -> Result<Vec<GroupId>> {
        self.store_groups_at(groups, None)
    }

    /// [`Engine::store_groups`]; with `now_ms`, the prev groups' pending
    /// deletions are bumped in the same transaction (Synapse's deletion
    /// protocol: "the prev group exists and is not being deleted: store").
    pub fn store_groups_at(&self, groups: &[NewGroup<'_>], now_ms: Option<u64>) -> Result<Vec<GroupId>> {
        self.write(|txn| {
            prefetch(txn, groups)?;
            let mut latest = Latest::default();
            groups
                .iter()
                .map(|g| store_group(txn, &self.policy, &mut latest, g, now_ms))
                .collect()
        })
    }

    /// `{group: prev}` for the given groups that exist and have a prev.
    pub fn previous_groups(&self, groups: &BTreeSet<GroupId>) -> Result<BTreeMap<GroupId, GroupId>> {
        let _shared = self.read_gate()?;
        let src = self.committed();
        let mut out = BTreeMap::new();
        for &g in groups {
            if let Some(p) = src.record(g)?.filter(|r| !r.ghost).and_then(|r| r.prev) {
                out.insert(g, p);
            }
        }
        Ok(out)
    }

    /// `{child: prev}` for every group whose prev is one of `groups`.
    /// Reads the records of the rooms of `groups` (there is no reverse
    /// index of prev edges).
    pub fn next_groups(&self, groups: &BTreeSet<GroupId>) -> Result<BTreeMap<GroupId, GroupId>> {
        let _shared = self.read_gate()?;
        let src = self.committed();
        let mut rooms = BTreeSet::new();
        for &g in groups {
            if let Some(r) = src.record(g)? {
                rooms.insert(r.room);
            }
        }
        let mut out = BTreeMap::new();
        for room in rooms {
            for (c, ghost) in room_index::members(&*self.kv, room)? {
                if ghost {
                    continue;
                }
                if let Some(p) = src.existing(c)?.prev.filter(|p| groups.contains(p)) {
                    out.insert(c, p);
                }
            }
        }
        Ok(out)
    }

    /// The event a group was stored for.
    pub fn group_event(&self, group: GroupId) -> Result<mxstate_api::EventId> {
        let _shared = self.read_gate()?;
        let rec = self.committed().existing(group)?;
        if rec.ghost {
            return Err(Error::UnknownGroup(group));
        }
        Ok(mxstate_api::EventId::from_validated(
            self.text(StrKind::Event, rec.event)?,
        ))
    }

    /// The highest group id, if any group exists.
    pub fn max_group(&self) -> Result<Option<GroupId>> {
        Ok(self.groups_below(u64::MAX, 1)?.first().copied())
    }

    /// Up to `limit` ids of existing groups below `before`, descending.
    pub fn groups_below(&self, before: GroupId, limit: usize) -> Result<Vec<GroupId>> {
        let _shared = self.read_gate()?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.kv
            .scan_range_rev(Cf::Groups, &[], &keys::group_key(before), &mut |k, v| {
                let g = keys::parse_u64(k, "groups key")?;
                if !GroupRecord::decode(g, v)?.ghost {
                    out.push(g);
                }
                Ok(out.len() < limit)
            })?;
        Ok(out)
    }

    /// The state of each group, restricted to `filter`.
    pub fn state_for_groups(&self, groups: &[GroupId], filter: &StateFilter) -> Result<BTreeMap<GroupId, StateMap>> {
        let _shared = self.read_gate()?;
        let f = self.ifilter(filter)?;
        let src = self.committed();
        let mut out = BTreeMap::new();
        for &g in groups {
            src.check_live(g)?;
            let resolved = self.resolved(&src, g, &f)?;
            out.insert(g, self.map_of(&self.view(resolved)?));
        }
        Ok(out)
    }

    /// The state of one group, restricted to `filter`.
    pub fn state_for_group(&self, group: GroupId, filter: &StateFilter) -> Result<StateMap> {
        self.state_for_groups(&[group], filter)?
            .remove(&group)
            .ok_or_else(|| Error::internal("state_for_groups left out a group it was asked for"))
    }

    /// The state of a group under `filter`, as a view sharing the big
    /// snapshot parts with the caches (no per-entry copy).
    pub fn state_view(&self, group: GroupId, filter: &StateFilter) -> Result<StateView> {
        let _shared = self.read_gate()?;
        self.view_of(group, filter)
    }

    /// [`Engine::state_view`] from the caches alone, for a caller that must
    /// not wait (an async runtime's thread): `None` when the answer needs
    /// the store (something is not cached), when a commit holds readers
    /// out, or on any error. The caller then asks [`Engine::state_view`]
    /// on a thread that may block, which gives the answer or the error.
    /// A cached state's view costs the bookkeeping of its chain (tens of
    /// microseconds for 100k members), no copy of its entries.
    pub fn state_view_cached(&self, group: GroupId, filter: &StateFilter) -> Option<StateView> {
        self.without_waiting(|e| e.state_view(group, filter))
    }

    fn view_of(&self, group: GroupId, filter: &StateFilter) -> Result<StateView> {
        let f = self.ifilter(filter)?;
        let src = self.committed();
        src.check_live(group)?;
        self.view(self.resolved(&src, group, &f)?)
    }

    /// The state at `event` in one call: the event's group and that group's
    /// state under `filter` as a view; `None` for an event with no group.
    pub fn state_view_at_event(&self, event: &EventId, filter: &StateFilter) -> Result<Option<(GroupId, StateView)>> {
        let _shared = self.read_gate()?;
        let Some(group) = self.event_group(event)? else {
            return Ok(None);
        };
        Ok(Some((group, self.view_of(group, filter)?)))
    }

    /// The prev group and the delta as the caller stored them; `None` for a
    /// group stored with a full state.
    pub fn state_group_delta(&self, group: GroupId) -> Result<Option<GroupDelta>> {
        let _shared = self.read_gate()?;
        let rec = self.committed().existing(group)?;
        if rec.ghost {
            return Err(Error::UnknownGroup(group));
        }
        let (Some(prev), Some(d)) = (rec.prev, rec.logical_delta()) else {
            return Ok(None);
        };
        let mut delta = BTreeMap::new();
        for &(k, v) in d {
            let t = self.text(StrKind::Type, u64::from(ikey_type(k)))?;
            let s = self.text(StrKind::Skey, u64::from(ikey_skey(k)))?;
            let v = match v {
                Some(e) => Some(mxstate_api::EventId::from_validated(self.text(StrKind::Event, e)?)),
                None => None,
            };
            delta.insert(StateKey::from_validated(t, s), v);
        }
        Ok(Some(GroupDelta {
            prev_group: prev,
            delta,
        }))
    }

    /// The room of a group.
    pub fn group_room(&self, group: GroupId) -> Result<RoomId> {
        let _shared = self.read_gate()?;
        let rec = self.committed().existing(group)?;
        if rec.ghost {
            return Err(Error::UnknownGroup(group));
        }
        RoomId::parse(&*self.text(StrKind::Room, u64::from(rec.room))?)
    }

    /// Whether a group exists.
    pub fn has_group(&self, group: GroupId) -> Result<bool> {
        let _shared = self.read_gate()?;
        Ok(self.committed().record(group)?.is_some_and(|r| !r.ghost))
    }
}

/// Reads what `groups` will look up (their chosen ids, event ids, types
/// and state keys) in one multi-get per family and kind, before storing
/// them one by one, on a backend where a read is a round trip
/// (PostgreSQL): a batch then costs a few reads instead of a few per group.
fn prefetch(txn: &mut crate::write::txn::Txn<'_>, groups: &[NewGroup<'_>]) -> Result<()> {
    if !txn.kv().reads_are_round_trips() {
        // Embedded (RocksDB): a read of an absent key is a bloom filter
        // probe; gathering the strings cost the import of the 10k compare
        // dump 10% (1.56 -> 1.67 s).
        return Ok(());
    }
    let ids: Vec<GroupId> = groups.iter().filter_map(|g| g.id).collect();
    txn.prefetch_groups(&ids)?;
    let (mut events, mut keys) = (Vec::new(), Vec::new());
    for g in groups {
        events.push(g.event_id.as_str());
        match g.state {
            GroupState::Delta { delta, .. } | GroupState::DeltaOnPrevious { delta } => {
                for (k, v) in delta {
                    keys.push(k);
                    events.extend(v.as_ref().map(EventId::as_str));
                }
            }
            GroupState::Full(state) => {
                for (k, e) in state {
                    keys.push(k);
                    events.push(e.as_str());
                }
            }
        }
    }
    let types: Vec<&str> = keys.iter().map(|k| k.event_type()).collect();
    let skeys: Vec<&str> = keys.iter().map(|k| k.state_key()).collect();
    txn.prefetch_strings(&[
        (StrKind::Type, &types),
        (StrKind::Skey, &skeys),
        (StrKind::Event, &events),
    ])
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use mxstate_api::{EventId, RoomId, StateDelta, StateKey, StateMap};

    use super::*;
    use crate::kv::{Batch, KvStore, MemKv, Visit};
    use crate::EngineOptions;

    /// A store in memory that says its reads are round trips, and counts them.
    struct Remote {
        kv: Arc<MemKv>,
        reads: Arc<AtomicUsize>,
    }

    impl KvStore for Remote {
        fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.kv.get(cf, key)
        }
        fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.kv.multi_get(cf, keys)
        }
        fn multi_get_families(&self, wanted: &[(Cf, Vec<Vec<u8>>)]) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
            // One round trip, as on PostgreSQL.
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.kv.multi_get_families(wanted)
        }
        fn write(&self, batch: Batch) -> Result<()> {
            self.kv.write(batch)
        }
        fn sync(&self) -> Result<()> {
            self.kv.sync()
        }
        fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.kv.scan_prefix(cf, prefix, visit)
        }
        fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.kv.scan_range_rev(cf, lower, upper, visit)
        }
        fn scan_range(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.kv.scan_range(cf, lower, upper, visit)
        }
        fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.kv.last_with_prefix(cf, prefix)
        }
        fn location(&self) -> String {
            "remote (test)".into()
        }
        fn reads_are_round_trips(&self) -> bool {
            true
        }
    }

    /// Event `i`: a room-version-4+ id (its hash the bytes of `i`),
    /// interned in its `event_groups` bucket (format 6).
    fn ev(i: u64) -> EventId {
        use base64::Engine as _;
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&i.to_le_bytes());
        hash[8] = 0x5a;
        EventId::parse(format!(
            "${}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
        ))
        .unwrap()
    }

    fn member(i: u64) -> StateKey {
        StateKey::new("m.room.member", format!("@u{i}:x.test")).unwrap()
    }

    /// 300 groups with chosen ids, each a new member: their ids, events and
    /// state keys are read up front, a few reads in all, and the states
    /// are the same as stored one by one on an embedded store.
    #[test]
    fn a_batch_on_a_remote_store_reads_what_it_looks_up_up_front() {
        let reads = Arc::new(AtomicUsize::new(0));
        let kv = Arc::new(MemKv::new());
        let remote = Engine::with_kv(
            Box::new(Remote {
                kv: kv.clone(),
                reads: reads.clone(),
            }),
            EngineOptions::default(),
        )
        .unwrap();
        let local = Engine::with_kv(Box::new(MemKv::new()), EngineOptions::default()).unwrap();
        let room = RoomId::parse("!r:x.test").unwrap();
        let mut root = StateMap::default();
        root.insert(StateKey::new("m.room.create", "").unwrap(), ev(0));
        let deltas: Vec<StateDelta> = (1..=300)
            .map(|i| {
                let mut d = StateDelta::new();
                d.insert(member(i), Some(ev(i)));
                d
            })
            .collect();
        let events: Vec<EventId> = (1..=300).map(ev).collect();
        let mut groups = vec![NewGroup {
            id: Some(10),
            room_id: &room,
            event_id: &events[0],
            state: GroupState::Full(&root),
        }];
        for (i, d) in deltas.iter().enumerate() {
            groups.push(NewGroup {
                id: Some(11 + i as u64),
                room_id: &room,
                event_id: &events[i],
                state: GroupState::Delta {
                    prev: 10 + i as u64,
                    delta: d,
                },
            });
        }
        let before = reads.load(Ordering::Relaxed);
        let ids = remote.store_groups(&groups).unwrap();
        let used = reads.load(Ordering::Relaxed) - before;
        // Without the reads up front: two or three a group (about 900).
        assert!(used <= 30, "{used} reads for {} groups", groups.len());
        assert_eq!(local.store_groups(&groups).unwrap(), ids);
        for &g in [ids[0], ids[1], ids[150], ids[300]].iter() {
            assert_eq!(
                remote.state_for_group(g, &StateFilter::all()).unwrap(),
                local.state_for_group(g, &StateFilter::all()).unwrap()
            );
        }
        assert_eq!(
            remote.state_for_group(ids[300], &StateFilter::all()).unwrap().len(),
            301
        );
        // A chosen id taken is still refused.
        let again = remote.store_groups(&groups[..2]).unwrap_err();
        assert!(matches!(again, Error::GroupIdTaken(10)), "{again}");

        // One group with a new event and a new member: its two strings
        // are read together in one multi-get (two reads before). The
        // first such call also reads the room's last id range, which the
        // failed call above made the engine forget; the next reads only
        // its strings.
        let mut prev = ids[300];
        for (i, most) in [(1000, 2), (1001, 1)] {
            let (e, mut d) = (ev(i), StateDelta::new());
            d.insert(member(i), Some(e.clone()));
            let before = reads.load(Ordering::Relaxed);
            prev = remote
                .store_group(NewGroup {
                    id: None,
                    room_id: &room,
                    event_id: &e,
                    state: GroupState::Delta { prev, delta: &d },
                })
                .unwrap();
            let used = reads.load(Ordering::Relaxed) - before;
            assert!(used <= most, "{used} reads for one group");
        }
        let one = prev;
        assert_eq!(remote.state_for_group(one, &StateFilter::all()).unwrap().len(), 303);
    }

    /// An engine on `kv` whose store counts its reads in `reads`.
    fn open_counted(kv: &Arc<MemKv>, reads: &Arc<AtomicUsize>) -> Engine {
        let remote = Remote {
            kv: kv.clone(),
            reads: reads.clone(),
        };
        Engine::with_kv(Box::new(remote), EngineOptions::default()).unwrap()
    }

    /// Stores `state` as a root group of `room` (event 0's).
    fn store_full(engine: &Engine, room: &RoomId, state: &StateMap) -> GroupId {
        engine
            .store_group(NewGroup {
                id: None,
                room_id: room,
                event_id: &ev(0),
                state: GroupState::Full(state),
            })
            .unwrap()
    }

    /// A view from the caches alone is the view a read gives, for every
    /// filter shape; when anything it needs is not cached (a fresh engine,
    /// a group stored since) or a commit holds readers out, there is no
    /// answer and the store was not touched.
    #[test]
    fn cached_views_answer_as_reads_do_without_touching_the_store() {
        let (kv, reads) = (Arc::new(MemKv::new()), Arc::new(AtomicUsize::new(0)));
        let open = || open_counted(&kv, &reads);
        let writer = open();
        let room = RoomId::parse("!r:x.test").unwrap();
        let mut root = StateMap::default();
        root.insert(StateKey::new("m.room.create", "").unwrap(), ev(0));
        root.insert(StateKey::new("m.room.power_levels", "").unwrap(), ev(1));
        let mut prev = writer
            .store_group(NewGroup {
                id: None,
                room_id: &room,
                event_id: &ev(0),
                state: GroupState::Full(&root),
            })
            .unwrap();
        let mut groups = vec![(prev, ev(0))];
        for i in 2..300u64 {
            let mut d = StateDelta::new();
            // Joins, and now and then a member leaves (a removal).
            d.insert(member(i), Some(ev(i)));
            if i % 7 == 0 {
                d.insert(member(i - 5), None);
            }
            prev = writer
                .store_group(NewGroup {
                    id: None,
                    room_id: &room,
                    event_id: &ev(i),
                    state: GroupState::Delta { prev, delta: &d },
                })
                .unwrap();
            groups.push((prev, ev(i)));
        }
        let mut one = StateFilter::from_types([("m.room.member", Some("@u40:x.test"))]);
        one.add("m.room.power_levels", Some(""));
        let filters = [
            StateFilter::all(),
            one,
            StateFilter::all_except_types(["m.room.member"]),
            StateFilter::from_types([("m.room.member", None)]).with_include_others(true),
        ];
        let sorted = |v: &StateView| {
            let mut e: Vec<(String, String, String)> = v
                .iter()
                .map(|(t, k, e)| (t.to_owned(), k.to_owned(), e.to_owned()))
                .collect();
            e.sort();
            e
        };
        let engine = open();
        for &(g, _) in groups.iter().step_by(23) {
            for f in &filters {
                // Nothing cached for this group and filter yet.
                let before = reads.load(Ordering::Relaxed);
                if engine.state_view_cached(g, f).is_some() {
                    // Only when everything it needs came with earlier reads.
                    assert_eq!(reads.load(Ordering::Relaxed), before);
                }
                assert_eq!(reads.load(Ordering::Relaxed), before, "group {g}: the store was read");
                let read = engine.state_view(g, f).unwrap();
                let before = reads.load(Ordering::Relaxed);
                let cached = engine.state_view_cached(g, f).expect("cached after a read");
                assert_eq!(reads.load(Ordering::Relaxed), before);
                assert_eq!(sorted(&cached), sorted(&read), "group {g}, filter {f:?}");
                assert_eq!(sorted(&read), sorted(&writer.state_view(g, f).unwrap()));
                // Any read runs so: the map form too.
                let map = engine.state_for_groups(&[g], f).unwrap();
                let before = reads.load(Ordering::Relaxed);
                assert_eq!(engine.without_waiting(|e| e.state_for_groups(&[g], f)), Some(map));
                assert_eq!(reads.load(Ordering::Relaxed), before);
            }
        }
        // A checkpoint's base not cached (dropped here as a purge drops
        // it): merging the chain is left to a read that may wait.
        let (g, _) = groups[92];
        assert!(engine.state_view_cached(g, &StateFilter::all()).is_some());
        engine.caches.bases.clear();
        assert!(engine.state_view_cached(g, &StateFilter::all()).is_none());
        engine.state_view(g, &StateFilter::all()).unwrap();
        assert!(engine.state_view_cached(g, &StateFilter::all()).is_some());
        // A commit that changes what exists holds readers out: no answer,
        // rather than waiting for it.
        {
            let _commit = engine.gate.write().unwrap();
            assert!(engine.state_view_cached(g, &StateFilter::all()).is_none());
            assert!(engine
                .without_waiting(|e| e.state_for_groups(&[g], &StateFilter::all()))
                .is_none());
        }
        // A group stored since: its record is not cached.
        let mut d = StateDelta::new();
        d.insert(member(1000), Some(ev(1000)));
        let newer = writer
            .store_group(NewGroup {
                id: None,
                room_id: &room,
                event_id: &ev(1000),
                state: GroupState::Delta { prev, delta: &d },
            })
            .unwrap();
        let before = reads.load(Ordering::Relaxed);
        assert!(engine.state_view_cached(newer, &StateFilter::all()).is_none());
        assert_eq!(reads.load(Ordering::Relaxed), before);
        assert_eq!(
            engine.state_view(newer, &StateFilter::all()).unwrap().len(),
            1 + writer.state_view(prev, &StateFilter::all()).unwrap().len()
        );
    }

    /// A large cold state (read on two threads when it may wait): the
    /// attempt from the caches starts no thread that would read the store.
    #[test]
    fn a_cached_view_of_a_large_cold_state_reads_nothing() {
        let (kv, reads) = (Arc::new(MemKv::new()), Arc::new(AtomicUsize::new(0)));
        let open = || open_counted(&kv, &reads);
        let room = RoomId::parse("!r:x.test").unwrap();
        // 2 x 9,000 texts: past the two-thread threshold.
        let state: StateMap = (0..9_000).map(|i| (member(i), ev(i))).collect();
        let g = store_full(&open(), &room, &state);
        let engine = open();
        let before = reads.load(Ordering::Relaxed);
        assert!(engine.state_view_cached(g, &StateFilter::all()).is_none());
        assert_eq!(reads.load(Ordering::Relaxed), before);
        // One key read: the group's record and its snapshot's sections are
        // cached now, not the texts of the whole state.
        let one = StateFilter::from_types([("m.room.member", Some("@u7:x.test"))]);
        assert_eq!(engine.state_view(g, &one).unwrap().len(), 1);
        let before = reads.load(Ordering::Relaxed);
        assert!(engine.state_view_cached(g, &StateFilter::all()).is_none());
        assert_eq!(reads.load(Ordering::Relaxed), before);
        assert_eq!(engine.state_view(g, &StateFilter::all()).unwrap().len(), 9_000);
        assert_eq!(
            engine.state_view_cached(g, &StateFilter::all()).map(|v| v.len()),
            Some(9_000)
        );
    }

    /// A snapshot section read cold is cached with its texts packed; the
    /// first map over it makes a shared string per text, and the section
    /// cache is told: its weight grows by at least those strings.
    #[test]
    fn a_map_over_a_cold_section_is_counted_in_the_cache() {
        let (kv, reads) = (Arc::new(MemKv::new()), Arc::new(AtomicUsize::new(0)));
        let open = || open_counted(&kv, &reads);
        let room = RoomId::parse("!r:x.test").unwrap();
        let state: StateMap = (0..500).map(|i| (member(i), ev(i))).collect();
        let g = store_full(&open(), &room, &state);
        // A fresh engine: the section is read cold.
        let engine = open();
        assert_eq!(engine.state_view(g, &StateFilter::all()).unwrap().len(), 500);
        let viewed = engine.caches.section_tables.weight();
        assert!(viewed > 0, "the cold section's table is cached");
        assert_eq!(engine.state_for_group(g, &StateFilter::all()).unwrap(), state);
        let mapped = engine.caches.section_tables.weight();
        // Two columns of 500 entries, each string at least 32 bytes more.
        assert!(
            mapped >= viewed + 2 * 500 * 32,
            "the map's shared strings are counted: {viewed} then {mapped} bytes"
        );
        // Mapped again: made once, counted once.
        assert_eq!(engine.state_for_group(g, &StateFilter::all()).unwrap(), state);
        assert_eq!(engine.caches.section_tables.weight(), mapped);
    }
}
