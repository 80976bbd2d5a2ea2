//! The consistency checker: clean on every database the engine writes
//! (stores, forks, purges, mappings, current state, deletion marks), and
//! each kind of damage, made by editing single records under a closed
//! engine, reported under the invariant it breaks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use mxstate_engine::kv::{Batch, Cf, KvStore};
use mxstate_engine::{
    ChainPolicy, Engine, EngineOptions, EventId, GroupId, GroupState, MemKv, NewGroup, RoomId, StateDelta, StateKey,
    StateMap,
};

fn opts() -> EngineOptions {
    EngineOptions {
        policy: ChainPolicy::new(vec![3, 3]).unwrap().with_snapshot_min_delta(2),
        ..EngineOptions::default()
    }
}

fn open(kv: &Arc<MemKv>) -> Engine {
    Engine::with_kv(Box::new(kv.clone()), opts()).unwrap()
}

fn ev(n: u64) -> EventId {
    EventId::parse(format!("$e{n}")).unwrap()
}

fn key(n: u64) -> StateKey {
    StateKey::new("m.room.member", format!("@u{n}:x")).unwrap()
}

/// Two rooms with chains, a fork, a purge (making ghosts), event mappings,
/// current state and deletion marks; returns the store and the group ids.
fn workload() -> (Arc<MemKv>, Vec<GroupId>) {
    let kv = Arc::new(MemKv::new());
    let e = open(&kv);
    let mut ids = Vec::new();
    for r in 0..2u64 {
        let room = RoomId::parse(format!("!r{r}:x")).unwrap();
        let root: StateMap = [(StateKey::new("m.room.create", "").unwrap(), ev(1000 * r))]
            .into_iter()
            .collect();
        let mut prev = e
            .store_group(NewGroup {
                id: None,
                room_id: &room,
                event_id: &ev(1000 * r),
                state: GroupState::Full(&root),
            })
            .unwrap();
        ids.push(prev);
        for i in 1..=20u64 {
            let d: StateDelta = [(key(i % 7), Some(ev(1000 * r + i)))].into_iter().collect();
            // Every fifth group forks from two back.
            let on = if i % 5 == 0 { ids[ids.len() - 2] } else { prev };
            prev = e
                .store_group(NewGroup {
                    id: None,
                    room_id: &room,
                    event_id: &ev(1000 * r + i),
                    state: GroupState::Delta { prev: on, delta: &d },
                })
                .unwrap();
            ids.push(prev);
        }
        e.set_current_state(&room, &e.state_for_group(prev, &Default::default()).unwrap())
            .unwrap();
    }
    let pairs: Vec<(EventId, GroupId)> = ids.iter().map(|&g| (ev(5000 + g), g)).collect();
    e.set_event_groups(&pairs).unwrap();
    let room0 = RoomId::parse("!r0:x").unwrap();
    e.purge_groups(&room0, &ids[3..6]).unwrap();
    e.mark_pending_deletion(&BTreeSet::from([ids[30]]), 1_000).unwrap();
    (kv, ids)
}

fn problems(kv: &Arc<MemKv>) -> Vec<(String, String)> {
    let r = open(kv).check().unwrap();
    assert_eq!(r.problems_total as usize, r.problems.len());
    r.problems
        .iter()
        .map(|p| (p.invariant.to_owned(), p.location.clone()))
        .collect()
}

fn first(kv: &Arc<MemKv>, cf: Cf, pick: impl Fn(&[u8]) -> bool) -> (Vec<u8>, Vec<u8>) {
    let mut found = None;
    kv.scan_prefix(cf, &[], &mut |k, v| {
        if pick(k) {
            found = Some((k.to_vec(), v.to_vec()));
            return Ok(false);
        }
        Ok(true)
    })
    .unwrap();
    found.expect("a record to damage")
}

fn put(kv: &Arc<MemKv>, cf: Cf, k: &[u8], v: &[u8]) {
    let mut b = Batch::default();
    b.put(cf, k.to_vec(), v.to_vec());
    kv.write(b).unwrap();
}

fn delete(kv: &Arc<MemKv>, cf: Cf, k: &[u8]) {
    let mut b = Batch::default();
    b.delete(cf, k.to_vec());
    kv.write(b).unwrap();
}

fn reports(kv: &Arc<MemKv>, invariant: &str) {
    let p = problems(kv);
    assert!(
        p.iter().any(|(i, _)| i == invariant),
        "expected a {invariant:?} problem, got {p:?}"
    );
}

#[test]
fn the_engine_writes_clean_databases() {
    let (kv, _) = workload();
    let r = open(&kv).check().unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    assert_eq!(r.groups, 42 - 3 + r.ghosts);
    assert!(r.snapshots >= 2);
    assert_eq!(r.event_mappings, 42 - 3);
    assert!(r.import_incomplete.is_none());
}

#[test]
fn a_record_that_does_not_decode() {
    let (kv, ids) = workload();
    put(&kv, Cf::Groups, &ids[10].to_be_bytes(), b"\x07garbage");
    let p = problems(&kv);
    assert!(
        p.contains(&(
            "record decodes".into(),
            format!("groups/{}", hex(&ids[10].to_be_bytes()))
        )),
        "{p:?}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_missing_prev_or_base() {
    let (kv, ids) = workload();
    delete(&kv, Cf::Groups, &ids[8].to_be_bytes());
    reports(&kv, "group links");
    reports(&kv, "room index matches groups");
}

#[test]
fn a_missing_room_range() {
    let (kv, _) = workload();
    let (k, _) = first(&kv, Cf::RoomGroups, |k| k.get(4) == Some(&0));
    delete(&kv, Cf::RoomGroups, &k);
    reports(&kv, "room index matches groups");
}

#[test]
fn a_wrong_snapshot_count_or_hash() {
    let (kv, _) = workload();
    let (k, mut v) = first(&kv, Cf::Snapshots, |k| k.len() == 8);
    // Header: version, room varint (< 128), 16 bytes of hash, refs varint.
    v[2] ^= 1;
    put(&kv, Cf::Snapshots, &k, &v);
    reports(&kv, "snapshot hash");
    v[2] ^= 1;
    v[18] += 1;
    put(&kv, Cf::Snapshots, &k, &v);
    reports(&kv, "snapshot refs");
}

#[test]
fn a_missing_section() {
    let (kv, _) = workload();
    let (k, _) = first(&kv, Cf::Snapshots, |k| k.len() == 12);
    delete(&kv, Cf::Snapshots, &k);
    reports(&kv, "snapshot contents");
}

#[test]
fn event_indexes_that_disagree() {
    let (kv, _) = workload();
    let (k, _) = first(&kv, Cf::GroupEvents, |_| true);
    delete(&kv, Cf::GroupEvents, &k);
    reports(&kv, "event mappings agree");
}

#[test]
fn strings_without_their_nid() {
    let (kv, _) = workload();
    let (k, _) = first(&kv, Cf::Nids, |k| k.first() == Some(&b'S'));
    delete(&kv, Cf::Nids, &k);
    reports(&kv, "strings and nids agree");
}

/// The workload and 60 more state events: the first block of event nids
/// is packed.
fn workload_with_a_packed_block() -> Arc<MemKv> {
    let (kv, ids) = workload();
    let e = open(&kv);
    let room = RoomId::parse("!r1:x").unwrap();
    let mut prev = *ids.last().unwrap();
    for i in 0..60u64 {
        let d: StateDelta = [(key(i % 11), Some(ev(7000 + i)))].into_iter().collect();
        prev = e
            .store_group(NewGroup {
                id: None,
                room_id: &room,
                event_id: &ev(7000 + i),
                state: GroupState::Delta { prev, delta: &d },
            })
            .unwrap();
    }
    drop(e);
    assert!(problems(&kv).is_empty());
    kv
}

#[test]
fn packed_strings_that_disagree() {
    // A block of event texts: version 1, presence, then length and text.
    let (block_key, block) = {
        let kv = workload_with_a_packed_block();
        first(&kv, Cf::Nids, |k| k.first() == Some(&b'e'))
    };
    assert_eq!(block_key, [b'e', 0, 0, 0, 0, 0, 0, 0, 0]);
    // A nid both packed and single.
    let kv = workload_with_a_packed_block();
    put(&kv, Cf::Nids, &[b'E', 0, 0, 0, 0, 0, 0, 0, 3], b"$e3");
    reports(&kv, "nids packed once");
    // A block written before the counter passed it.
    let kv = workload_with_a_packed_block();
    put(&kv, Cf::Nids, &[b'e', 0, 0, 0, 0, 0, 0, 0, 9], &block);
    reports(&kv, "nids packed once");
    // A lost block: its strings have no text.
    let kv = workload_with_a_packed_block();
    delete(&kv, Cf::Nids, &block_key);
    reports(&kv, "strings and nids agree");
    // A damaged block.
    let kv = workload_with_a_packed_block();
    put(&kv, Cf::Nids, &block_key, &block[..block.len() - 1]);
    let p = problems(&kv);
    assert!(
        p.iter().any(|(i, l)| i == "record decodes" && l.starts_with("nids/")),
        "{p:?}"
    );
}

#[test]
fn counters_behind_the_ids_in_use() {
    let (kv, _) = workload();
    // The counters record: version 1, then next group, room, type, skey, event, snapshot.
    put(&kv, Cf::Meta, b"counters", &[1, 2, 1, 1, 1, 1, 1]);
    reports(&kv, "counters above ids");
}

#[test]
fn deletion_marks_without_their_index() {
    let (kv, _) = workload();
    let (k, _) = first(&kv, Cf::Deletion, |k| k.first() == Some(&b'T'));
    delete(&kv, Cf::Deletion, &k);
    reports(&kv, "deletion marks agree");
}

#[test]
fn an_unknown_record_version() {
    let (kv, _) = workload();
    let (k, mut v) = first(&kv, Cf::Snapshots, |k| k.len() == 12);
    v[0] = 2;
    put(&kv, Cf::Snapshots, &k, &v);
    let p = problems(&kv);
    assert!(
        p.iter()
            .any(|(i, l)| i == "record decodes" && l.starts_with("snapshots/")),
        "{p:?}"
    );
}
