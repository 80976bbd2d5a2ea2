//! Databases written by older format versions (committed fixtures: the real
//! Synapse dump imported by the version-1, 3, 4 and 5 builds) open, are
//! migrated to the current version, and answer exactly as their source
//! says; a migration interrupted at any store operation finishes when the
//! database is opened again, with the same result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mxstate_api::{EventId, GroupId};
use mxstate_engine::event_bucket::Slot;
use mxstate_engine::kv::{Batch, Cf, KvStore};
use mxstate_engine::{decode_record, event_key, Engine, EngineOptions, KvMaintenance, Record};
use mxstate_rocks::{RocksConfig, RocksKv};
use mxstate_synapse_dump::{DumpReader, Record as DumpRecord};
use mxstate_synapse_import::Verifier;
use mxstate_tests::fault::{is_injected, Durability, FailPlan, FaultKv};

fn fixture(name: &str) -> PathBuf {
    Path::new(&manifest_dir()).join("fixtures").join(name)
}

fn unpack(name: &str, into: &Path) -> PathBuf {
    let bytes = std::fs::read(fixture(name)).unwrap();
    let tar = zstd::decode_all(&bytes[..]).unwrap();
    tar::Archive::new(&tar[..]).unpack(into).unwrap();
    into.join("db")
}

fn existing() -> EngineOptions {
    EngineOptions {
        create: false,
        ..EngineOptions::default()
    }
}

/// Every group has its source's state, every event its source's group,
/// and the checker finds nothing.
fn answers_as_its_source(engine: &Engine, work: &Path) {
    let report = engine.check().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let mut verifier = Verifier::new(engine, work).unwrap();
    let mut mappings: BTreeMap<EventId, GroupId> = BTreeMap::new();
    let mut dump = DumpReader::open(&fixture("synapse-small.sql.zst")).unwrap();
    while let Some(rec) = dump.next() {
        let rec = rec.unwrap();
        if let DumpRecord::EventToStateGroup { event_id, state_group } = &rec {
            mappings.insert(
                EventId::parse(event_id).unwrap(),
                GroupId::try_from(*state_group).unwrap(),
            );
        }
        verifier.add(&rec, dump.line()).unwrap();
    }
    let report = verifier.finish(None, 5, &mut |_| {}).unwrap();
    assert_eq!(report.groups_checked, 1198);
    assert_eq!(report.mismatches, 0, "{:?}", report.first);
    assert_eq!(mappings.len(), 1070);
    let events: Vec<EventId> = mappings.keys().cloned().collect();
    assert_eq!(engine.event_groups(&events).unwrap(), mappings);
    let mut all = BTreeMap::new();
    engine
        .for_each_event_group(&mut |e, g| {
            all.insert(e.clone(), g);
            Ok(())
        })
        .unwrap();
    assert_eq!(all, mappings);
}

#[test]
fn version_1_opens_migrates_and_answers_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = unpack("format-v1-synapse-small.tar.zst", dir.path());
    {
        let engine = mxstate_rocks::open(&db, existing()).unwrap();
        assert_eq!(engine.stats().unwrap().groups, 1198);
        // Version 2 bookkeeping works on the migrated database.
        engine.mark_pending_deletion(&BTreeSet::from([5]), 1).unwrap();
        assert_eq!(engine.pending_deletions(&BTreeSet::from([5])).unwrap().len(), 1);
    }
    // Reopened (now the current version on disk), every group still has
    // its source state.
    let engine = mxstate_rocks::open(&db, existing()).unwrap();
    answers_as_its_source(&engine, dir.path());
}

/// How many `strings` entries and `event_groups` entries hold an event id
/// in text form, and how many of the latter there are in all.
fn event_id_forms(kv: &dyn KvStore) -> (u64, u64, u64) {
    let (mut text_strings, mut text_keys, mut mappings) = (0, 0, 0);
    kv.scan_prefix(Cf::Strings, b"E$", &mut |_, _| {
        text_strings += 1;
        Ok(true)
    })
    .unwrap();
    kv.scan_prefix(Cf::EventGroups, &[], &mut |k, _| {
        mappings += 1;
        if !event_key::is_event_key(k) || k.first() == Some(&b'$') {
            text_keys += 1;
        }
        Ok(true)
    })
    .unwrap();
    (text_strings, text_keys, mappings)
}

/// Interned event ids (`strings` entries of kind `E`).
fn interned_events(kv: &dyn KvStore) -> u64 {
    count(kv, Cf::Strings, b"E")
}

fn count(kv: &dyn KvStore, cf: Cf, prefix: &[u8]) -> u64 {
    let mut n = 0;
    kv.scan_prefix(cf, prefix, &mut |_, _| {
        n += 1;
        Ok(true)
    })
    .unwrap();
    n
}

/// `nids` keys: `(single, packed blocks)` over all kinds. Single keys
/// start with the kind's upper-case letter, blocks with its lower case.
fn nid_keys(kv: &dyn KvStore) -> (u64, u64) {
    let (mut single, mut blocks) = (0, 0);
    kv.scan_prefix(Cf::Nids, &[], &mut |k, _| {
        match k.first() {
            Some(b) if b.is_ascii_uppercase() => single += 1,
            Some(b) if b.is_ascii_lowercase() => blocks += 1,
            _ => panic!("nids key {k:?}"),
        }
        Ok(true)
    })
    .unwrap();
    (single, blocks)
}

#[test]
fn version_4_opens_packs_its_strings_and_answers_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = unpack("format-v4-synapse-small.tar.zst", dir.path());
    let strings = {
        let kv = RocksKv::open(&db, false, &RocksConfig::default()).unwrap();
        // Version 4: one `nids` key per interned string, no block.
        let strings = count(&kv, Cf::Strings, &[]);
        assert_eq!(nid_keys(&kv), (strings, 0));
        strings
    };
    assert_eq!(strings, 1194);
    {
        let engine = mxstate_rocks::open(&db, existing()).unwrap();
        answers_as_its_source(&engine, dir.path());
    }
    let kv = RocksKv::open(&db, false, &RocksConfig::default()).unwrap();
    // Format 6: the hash-form event ids left `strings` for their buckets.
    assert_eq!(count(&kv, Cf::Strings, &[]), strings - hash_events_in_strings_of_v4());
    // 3 rooms, 21 types, 156 state keys and 1,014 event ids: every block
    // but the last of each kind is packed (0 + 0 + 2 + 15 blocks), the
    // last ones' strings stay single keys (3 + 21 + 28 + 54).
    assert_eq!(nid_keys(&kv), (3 + 21 + 28 + 54, 2 + 15));
    drop(kv);
    // Opening the migrated database again changes nothing.
    let snapshot = contents(&RocksKv::open(&db, false, &RocksConfig::default()).unwrap());
    drop(mxstate_rocks::open(&db, existing()).unwrap());
    assert!(snapshot == contents(&RocksKv::open(&db, false, &RocksConfig::default()).unwrap()));
}

/// Interned event ids of the version-4 and 5 fixtures in hash form: all
/// 1,014 interned events but the text-form ones.
fn hash_events_in_strings_of_v4() -> u64 {
    1014 - TEXT_FORM_INTERNED
}

/// Interned event ids of the fixtures in text form (not room-version-3+
/// hashes), counted in the version-5 fixture below.
const TEXT_FORM_INTERNED: u64 = 0;

/// Interned events kept in `event_groups` buckets (format 6).
fn interned_in_buckets(kv: &dyn KvStore) -> u64 {
    let mut n = 0;
    kv.scan_prefix(Cf::EventGroups, &[], &mut |k, v| {
        if let Record::EventBucket { slots, .. } = decode_record(Cf::EventGroups, k, v).unwrap() {
            n += slots.iter().filter(|s| matches!(s, Slot::Interned { .. })).count() as u64;
        }
        Ok(true)
    })
    .unwrap();
    n
}

/// `event_groups` keys: `(buckets, text-form ids, hash-form ids outside a
/// bucket)`.
fn event_group_keys(kv: &dyn KvStore) -> (u64, u64, u64) {
    let (mut buckets, mut text, mut loose) = (0, 0, 0);
    kv.scan_prefix(Cf::EventGroups, &[], &mut |k, _| {
        match (k.len(), k.first()) {
            (5, Some(1 | 2)) => buckets += 1,
            (33, Some(1 | 2)) => loose += 1,
            (_, Some(b'$')) => text += 1,
            _ => panic!("event_groups key {k:?}"),
        }
        Ok(true)
    })
    .unwrap();
    (buckets, text, loose)
}

#[test]
fn version_5_opens_moves_event_ids_into_buckets_and_answers_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = unpack("format-v5-synapse-small.tar.zst", dir.path());
    let (strings, bytes) = {
        let kv = RocksKv::open(&db, false, &RocksConfig::default()).unwrap();
        // Version 5: every interned event in `strings`, every mapping its
        // own key.
        assert_eq!(count(&kv, Cf::Strings, b"E$"), TEXT_FORM_INTERNED);
        assert_eq!(interned_events(&kv), 1014);
        let (buckets, text, loose) = event_group_keys(&kv);
        assert_eq!((buckets, text + loose), (0, 1070));
        let strings = count(&kv, Cf::Strings, &[]);
        (strings, kv.bytes_on_disk().unwrap())
    };
    {
        let engine = mxstate_rocks::open(&db, existing()).unwrap();
        answers_as_its_source(&engine, dir.path());
        let stats = engine.stats().unwrap();
        assert_eq!((stats.events, stats.event_mappings), (1014, 1070));
    }
    let kv = RocksKv::open(&db, false, &RocksConfig::default()).unwrap();
    assert_eq!(count(&kv, Cf::Strings, &[]), strings - hash_events_in_strings_of_v4());
    assert_eq!(count(&kv, Cf::Strings, b"E"), TEXT_FORM_INTERNED);
    let (buckets, text, loose) = event_group_keys(&kv);
    assert_eq!(loose, 0);
    // 1,070 mapped and some interned-only events, a bucket each but for
    // the rare shared one.
    assert!(
        buckets + text <= 1070 + 1014 && buckets > 1000,
        "{buckets} buckets, {text} text"
    );
    let after = kv.bytes_on_disk().unwrap();
    assert!(after < bytes, "{after} bytes after, {bytes} before");
    drop(kv);
    // Opening the migrated database again changes nothing.
    let snapshot = contents(&RocksKv::open(&db, false, &RocksConfig::default()).unwrap());
    drop(mxstate_rocks::open(&db, existing()).unwrap());
    assert!(snapshot == contents(&RocksKv::open(&db, false, &RocksConfig::default()).unwrap()));
}

#[test]
fn version_3_opens_migrates_and_answers_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = unpack("format-v3-synapse-small.tar.zst", dir.path());
    let (before_text, before_interned) = {
        let kv = RocksKv::open(&db, false, &RocksConfig::default()).unwrap();
        let (text_strings, text_keys, mappings) = event_id_forms(&kv);
        // Version 3: every mapping keyed by an 8-byte nid, every id text.
        assert_eq!((text_keys, mappings), (1070, 1070));
        (text_strings, interned_events(&kv))
    };
    assert!(before_interned >= 1070, "{before_interned}");
    {
        let engine = mxstate_rocks::open(&db, existing()).unwrap();
        answers_as_its_source(&engine, dir.path());
    }
    let kv = RocksKv::open(&db, false, &RocksConfig::default()).unwrap();
    let (buckets, text_keys, loose) = event_group_keys(&kv);
    assert_eq!(loose, 0);
    assert!(buckets > 1000, "{buckets}");
    // The fixture's ids are room-version-10 hashes, but for a few.
    assert!(text_keys < 20, "{text_keys} mappings still keyed by text");
    let text_strings = count(&kv, Cf::Strings, b"E$");
    assert!(text_strings < before_text / 10, "{text_strings} of {before_text}");
    // Message events are no longer interned.
    let interned = text_strings + interned_in_buckets(&kv);
    assert!(interned < before_interned, "{interned} of {before_interned}");
    drop(kv);
    // Opening the migrated database again changes nothing.
    let snapshot = contents(&RocksKv::open(&db, false, &RocksConfig::default()).unwrap());
    drop(mxstate_rocks::open(&db, existing()).unwrap());
    assert!(snapshot == contents(&RocksKv::open(&db, false, &RocksConfig::default()).unwrap()));
}

/// Every record of `kv`, by family.
fn contents(kv: &dyn KvStore) -> BTreeMap<(&'static str, Vec<u8>), Vec<u8>> {
    let mut out = BTreeMap::new();
    for cf in Cf::ALL {
        kv.scan_prefix(cf, &[], &mut |k, v| {
            out.insert((cf.name(), k.to_vec()), v.to_vec());
            Ok(true)
        })
        .unwrap();
    }
    out
}

/// A store holding a copy of `kv`.
fn copied(kv: &dyn KvStore) -> FaultKv {
    let out = FaultKv::new(Durability::Synced);
    for cf in Cf::ALL {
        let mut b = Batch::default();
        kv.scan_prefix(cf, &[], &mut |k, v| {
            b.put(cf, k.to_vec(), v.to_vec());
            Ok(true)
        })
        .unwrap();
        out.write(b).unwrap();
    }
    out
}

#[test]
fn a_migration_interrupted_anywhere_finishes_when_reopened() {
    interrupted_anywhere("format-v3-synapse-small.tar.zst");
}

#[test]
fn a_migration_from_version_5_interrupted_anywhere_finishes_when_reopened() {
    interrupted_anywhere("format-v5-synapse-small.tar.zst");
}

fn interrupted_anywhere(fixture_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = unpack(fixture_name, dir.path());
    let source = RocksKv::open(&db, false, &RocksConfig::default()).unwrap();
    let whole = copied(&source);
    let before = whole.counts().of(None);
    drop(Engine::with_kv(Box::new(whole.clone()), existing()).unwrap());
    let ops = whole.counts().of(None) - before;
    let expected = contents(&whole);
    assert!(ops >= 6, "the migration took {ops} store operations");
    for nth in 0..ops {
        let kv = copied(&source);
        kv.fail(FailPlan::once(None, nth));
        match Engine::with_kv(Box::new(kv.clone()), existing()) {
            Err(e) => assert!(is_injected(&e), "operation {nth}: {e}"),
            Ok(_) => panic!("operation {nth} of {ops} failed, yet the database opened"),
        }
        kv.clear_faults();
        let engine = Engine::with_kv(Box::new(kv.clone()), existing()).unwrap();
        assert!(engine.check().unwrap().problems.is_empty(), "operation {nth}");
        drop(engine);
        assert!(
            contents(&kv) == expected,
            "interrupted at operation {nth} of {ops}: another result"
        );
    }
}

/// The package's directory: cargo's at run time (a target directory shared
/// by clones at other paths may hold a binary built in another clone),
/// else the one this was compiled in.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
