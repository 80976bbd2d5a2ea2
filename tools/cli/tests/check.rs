//! `mxstate check` on real databases (clean, damaged, mid-import), and
//! imports that are safe to repeat: a completed import rerun changes
//! nothing and exits 0; a state database then a main database still
//! import one after the other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{fails, fixture, fixture_sql, mxstate, ok, s};

/// Every key and value of every column family, read with RocksDB itself.
fn contents(db: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), db).unwrap();
    let rdb = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), db, &cfs, false).unwrap();
    let mut out = Vec::new();
    for cf in &cfs {
        let h = rdb.cf_handle(cf).unwrap();
        for kv in rdb.iterator_cf(h, rocksdb::IteratorMode::Start) {
            let (k, v) = kv.unwrap();
            out.push((cf.clone(), k.to_vec(), v.to_vec()));
        }
    }
    out
}

#[test]
fn a_real_database_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    ok(&["import", "--quiet", "--db", s(&db), s(&fixture())]);
    let out = ok(&["check", "--db", s(&db)]);
    assert!(out.contains("1198 groups"), "{out}");
    assert!(out.contains("clean: every invariant holds"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(&["check", "--db", s(&db), "--json"])).unwrap();
    assert_eq!(json["clean"], true);
    assert_eq!(json["groups"], 1198);
    assert_eq!(json["event_mappings"], 1070);
    assert_eq!(json["problems_total"], 0);
}

#[test]
fn a_damaged_record_is_reported_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    ok(&["import", "--quiet", "--db", s(&db), s(&fixture())]);
    {
        let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &db).unwrap();
        let rdb = rocksdb::DB::open_cf(&rocksdb::Options::default(), &db, &cfs).unwrap();
        let groups = rdb.cf_handle("groups").unwrap();
        rdb.put_cf(groups, 500u64.to_be_bytes(), b"\x01\xff\xff\xff").unwrap();
        let events = rdb.cf_handle("group_events").unwrap();
        let (k, _) = rdb
            .iterator_cf(events, rocksdb::IteratorMode::Start)
            .next()
            .unwrap()
            .unwrap();
        rdb.delete_cf(events, k).unwrap();
    }
    let out = mxstate(&["check", "--db", s(&db)]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("record decodes: groups/00000000000001f4"), "{stdout}");
    assert!(stdout.contains("event mappings agree"), "{stdout}");
    assert!(stderr.contains("the database is damaged"), "{stderr}");
    let json = mxstate(&["check", "--db", s(&db), "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["clean"], false);
    assert!(v["problems_total"].as_u64().unwrap() >= 2);
}

#[test]
fn check_refuses_what_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let e = fails(&["check", "--db", s(&dir.path().join("none"))]);
    assert!(e.contains("none"), "{e}");
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    fails(&["check", "--db", s(&dir.path().join("file"))]);
}

#[test]
fn a_completed_import_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    ok(&["import", "--quiet", "--db", s(&db), s(&fixture())]);
    let before = contents(&db);
    // The same tables, from a plain dump this time: recognised by content.
    let plain = dir.path().join("same.sql");
    std::fs::write(&plain, fixture_sql()).unwrap();
    for src in [fixture(), plain] {
        let out = ok(&["import", "--db", s(&db), s(&src)]);
        assert!(out.contains("already complete"), "{out}");
        assert!(out.contains("nothing was changed"), "{out}");
    }
    assert!(before == contents(&db), "a repeated import changed the database");
    assert!(ok(&["check", "--db", s(&db)]).contains("clean"));
}

#[test]
fn state_then_main_database_import_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let sql = fixture_sql();
    // The main database's table: event_to_state_groups alone.
    let start = sql.find("COPY public.event_to_state_groups").unwrap();
    let len = sql[start..].find("\n\\.\n").unwrap() + 4;
    let mappings = &sql[start..start + len];
    let state_only = dir.path().join("state.sql");
    std::fs::write(&state_only, sql.replacen(mappings, "", 1)).unwrap();
    let main_only = dir.path().join("main.sql");
    std::fs::write(&main_only, mappings).unwrap();
    let db = dir.path().join("db");
    let a = ok(&["import", "--db", s(&db), s(&state_only)]);
    assert!(a.contains("groups stored          1198"), "{a}");
    assert!(a.contains("event mappings         0"), "{a}");
    let b = ok(&["import", "--db", s(&db), s(&main_only)]);
    assert!(b.contains("event mappings         1070"), "{b}");
    // Both are now complete: rerunning either changes nothing.
    for src in [&state_only, &main_only] {
        assert!(ok(&["import", "--db", s(&db), s(src)]).contains("already complete"));
    }
    let v = ok(&["verify", "--db", s(&db), s(&fixture())]);
    assert!(v.contains("checked 1198 of 1198 groups: 0 mismatches"), "{v}");
    assert!(ok(&["check", "--db", s(&db)]).contains("1070 event mappings"));
}
