//! Custom-format dumps when pg_restore fails or is missing. Its own test
//! binary: one test sets `MXSTATE_PG_BIN`, which would disturb other tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use mxstate_synapse_dump::{DumpError, DumpReader, PgCluster};

/// Serializes the tests of this file around the environment variable.
static ENV: Mutex<()> = Mutex::new(());

fn garbage_archive(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("broken.dump");
    std::fs::write(&path, b"PGDMP\x01\x0e\x00\x04\x08\x01\x01this is not really an archive").expect("write");
    path
}

#[test]
fn broken_custom_dump_reports_pg_restore_failure() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = garbage_archive(dir.path());
    let err = DumpReader::open(&path)
        .expect("pg_restore starts")
        .find_map(Result::err)
        .expect("an error");
    assert!(matches!(err, DumpError::PgRestoreFailed { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("pg_restore failed"), "{message}");
    assert!(message.contains("broken.dump"), "{message}");
}

#[test]
fn missing_pg_restore_is_a_typed_error() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = garbage_archive(dir.path());
    let empty = dir.path().join("empty-bin");
    std::fs::create_dir(&empty).expect("mkdir");
    std::env::set_var("MXSTATE_PG_BIN", &empty);
    let reader = DumpReader::open(&path);
    let cluster = PgCluster::start();
    std::env::remove_var("MXSTATE_PG_BIN");
    let err = reader.expect_err("no pg_restore");
    assert!(matches!(err, DumpError::PgRestoreNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("pg_restore was not found"), "{err}");
    let err = cluster.expect_err("no initdb");
    assert!(matches!(err, DumpError::PgBinariesNotFound { .. }), "{err:?}");
}
