//! The CLI on the PostgreSQL backend: `--db postgresql://...` for import,
//! verify, check, stats, state, export and serve, against a private
//! cluster the test starts; the same answers as on RocksDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fails, fixture, ok, s};
use mxstate_synapse_dump::PgCluster;

#[test]
fn every_command_works_on_postgresql() {
    let pg = PgCluster::start().expect("PostgreSQL is a test prerequisite; .ci/run installs it");
    pg.create_database("mx").unwrap();
    let url = pg.url_for("mx");
    let dir = tempfile::tempdir().unwrap();
    let rocks = dir.path().join("db");
    let fx = fixture();

    let imported = ok(&["import", "--db", &url, "--quiet", s(&fx)]);
    assert!(imported.is_empty(), "{imported}");
    ok(&["import", "--db", s(&rocks), "--quiet", s(&fx)]);
    let again = ok(&["import", "--db", &url, s(&fx)]);
    assert!(again.contains("already complete"), "{again}");
    let verified = ok(&["verify", "--db", &url, s(&fx)]);
    assert!(
        verified.contains("checked 1198 of 1198 groups: 0 mismatches"),
        "{verified}"
    );
    let checked = ok(&["check", "--db", &url]);
    assert!(checked.contains("clean"), "{checked}");

    // The same answers as the same import on RocksDB.
    let stats_pg: serde_json::Value = serde_json::from_str(&ok(&["stats", "--db", &url, "--json"])).unwrap();
    let stats_rocks: serde_json::Value = serde_json::from_str(&ok(&["stats", "--db", s(&rocks), "--json"])).unwrap();
    for k in ["rooms", "groups", "snapshots", "event_mappings"] {
        assert_eq!(stats_pg[k], stats_rocks[k], "{k}: {stats_pg} vs {stats_rocks}");
    }
    for g in ["1", "600", "1198"] {
        assert_eq!(
            ok(&["state", "--db", &url, "--group", g, "--json"]),
            ok(&["state", "--db", s(&rocks), "--group", g, "--json"]),
            "group {g}"
        );
    }
    let out_pg = dir.path().join("pg.sql");
    let out_rocks = dir.path().join("rocks.sql");
    ok(&["export", "--db", &url, "--out", s(&out_pg)]);
    ok(&["export", "--db", s(&rocks), "--out", s(&out_rocks)]);
    assert_eq!(std::fs::read(&out_pg).unwrap(), std::fs::read(&out_rocks).unwrap());

    // One owner: served, the database refuses a second opener; read through the service.
    let sock = dir.path().join("mx.sock");
    let listen = format!("unix:{}", s(&sock));
    let mut serve = Command::new(env!("CARGO_BIN_EXE_mxstate"))
        .args(["serve", "--db", &url, "--listen", &listen])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "the service did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let in_use = fails(&["stats", "--db", &url]);
    assert!(in_use.contains("in use"), "{in_use}");
    let served: serde_json::Value = serde_json::from_str(&ok(&["stats", "--server", &listen, "--json"])).unwrap();
    assert_eq!(served["database"]["groups"], stats_rocks["groups"], "{served}");
    assert_eq!(
        ok(&["state", "--server", &listen, "--group", "600", "--json"]),
        ok(&["state", "--db", s(&rocks), "--group", "600", "--json"])
    );
    sigterm(serve.id());
    assert!(serve.wait().unwrap().success());
    // Given back on exit: the next opener owns it.
    ok(&["check", "--db", &url]);

    // A database never made, and a server that is not there.
    pg.create_database("empty").unwrap();
    let none = fails(&["stats", "--db", &pg.url_for("empty")]);
    assert!(none.contains("no database here"), "{none}");
    let down = fails(&["stats", "--db", "postgresql://postgres@127.0.0.1:1/none"]);
    assert!(down.contains("postgresql"), "{down}");
}

/// SIGTERM through `kill(1)`, as an admin would stop the service.
fn sigterm(pid: u32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}
