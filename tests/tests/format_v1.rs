//! A database written by format version 1 (committed as a fixture: the
//! real Synapse dump imported by the version-1 build) opens, is migrated
//! to the current version, and answers exactly as its source says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mxstate_engine::EngineOptions;
use mxstate_synapse_dump::DumpReader;
use mxstate_synapse_import::Verifier;

fn fixture(name: &str) -> PathBuf {
    Path::new(&manifest_dir()).join("fixtures").join(name)
}

fn unpack_v1(into: &Path) -> PathBuf {
    let bytes = std::fs::read(fixture("format-v1-synapse-small.tar.zst")).unwrap();
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

#[test]
fn version_1_opens_migrates_and_answers_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = unpack_v1(dir.path());
    {
        let engine = mxstate_rocks::open(&db, existing()).unwrap();
        assert_eq!(engine.stats().unwrap().groups, 1198);
        // Version 2 bookkeeping works on the migrated database.
        engine.mark_pending_deletion(&BTreeSet::from([5]), 1).unwrap();
        assert_eq!(engine.pending_deletions(&BTreeSet::from([5])).unwrap().len(), 1);
    }
    // Reopened (now version 2 on disk), every group still has its source state.
    let engine = mxstate_rocks::open(&db, existing()).unwrap();
    let mut verifier = Verifier::new(&engine, dir.path()).unwrap();
    let mut dump = DumpReader::open(&fixture("synapse-small.sql.zst")).unwrap();
    while let Some(rec) = dump.next() {
        verifier.add(&rec.unwrap(), dump.line()).unwrap();
    }
    let report = verifier.finish(None, 5, &mut |_| {}).unwrap();
    assert_eq!(report.groups_checked, 1198);
    assert_eq!(report.mismatches, 0, "{:?}", report.first);
}

/// The package's directory: cargo's at run time (a target directory shared
/// by clones at other paths may hold a binary built in another clone),
/// else the one this was compiled in.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
