//! `compare_auth` on a small room: Synapse's chain cover SQL (run on a
//! real PostgreSQL over the chain cover `mxstate synth --auth` computes)
//! and mxstate's auth index give the same answers to every question, or
//! the binary fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn synapse_sql_and_mxstate_agree_on_every_auth_question() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_compare_auth"))
        .args(["--members", "400", "--repeat", "1", "--work-dir"])
        .arg(work.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "compare_auth failed:\n{stderr}\n{stdout}");
    // Five questions, each checked equal before it was timed.
    assert_eq!(stderr.matches(", equal").count(), 5, "{stderr}");
    for row in [
        "auth chain of the full state",
        "states 1 membership events apart",
        "states 100 membership events apart",
        "conflicted subgraph",
        "disk: event_auth + chain cover tables",
    ] {
        assert!(stdout.contains(row), "no row {row:?} in\n{stdout}");
    }
}
