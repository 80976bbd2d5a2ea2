//! Import, verify and export against the real Synapse fixture, a real
//! PostgreSQL (private cluster), and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use common::{fails, fixture, fixture_sql, mxstate, ok, s};
use mxstate_synapse_dump::{PgCluster, STATE_SCHEMA_SQL};

const GROUPS: usize = 1198;

#[test]
fn fixture_imports_and_verifies_plain_gz_and_zst() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("small.sql");
    std::fs::write(&plain, fixture_sql()).unwrap();
    let gz = dir.path().join("small.sql.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(fixture_sql().as_bytes()).unwrap();
    enc.finish().unwrap();
    for (i, src) in [fixture(), plain, gz].iter().enumerate() {
        let db = dir.path().join(format!("db{i}"));
        let out = ok(&["import", "--db", s(&db), s(src)]);
        assert!(out.contains("groups stored          1198"), "{out}");
        assert!(out.contains("event mappings         1070"), "{out}");
        let v = ok(&["verify", "--db", s(&db), s(src)]);
        assert!(v.contains("checked 1198 of 1198 groups: 0 mismatches"), "{v}");
    }
    // The odd state keys come back exactly.
    let db = dir.path().join("db0");
    let json = ok(&["state", "--db", s(&db), "--group", "1111", "--group", "1142", "--json"]);
    let all = ok(&["export", "--db", s(&db), "--out", "-"]);
    // COPY text escapes and JSON escapes of a tab, a newline, a backslash.
    for k in ["tab\\there", "new\\nline", "back\\\\slash"] {
        assert!(all.contains(k), "export lacks {k}");
        assert!(json.contains(k), "state --json lacks {k}");
    }
    // Without the event mappings (for a Synapse whose main database kept them).
    let state_only = ok(&["export", "--db", s(&db), "--out", "-", "--without-event-mappings"]);
    assert!(
        all.contains("event_to_state_groups"),
        "the full export has the mappings"
    );
    assert!(!state_only.contains("event_to_state_groups"), "mappings left out");
    assert!(state_only.contains("state_groups_state"));
}

#[test]
fn verify_reports_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    ok(&["import", "--quiet", "--db", s(&db), s(&fixture())]);
    // Change one event id in the source: verify must notice.
    let sql = fixture_sql();
    let line = sql
        .lines()
        .skip_while(|l| !l.starts_with("COPY public.state_groups_state"))
        .nth(5)
        .unwrap()
        .to_owned();
    let last = line.rsplit('\t').next().unwrap();
    let changed = line.replace(last, "$changedeventid");
    let bad = dir.path().join("changed.sql");
    std::fs::write(&bad, sql.replacen(&line, &changed, 1)).unwrap();
    let out = mxstate(&["verify", "--quiet", "--db", s(&db), s(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mismatch: state group"), "{err}");
    assert!(err.contains("$changedeventid"), "{err}");
}

/// A private cluster with the fixture loaded into database `synapse`.
fn cluster_with_fixture(dir: &Path) -> PgCluster {
    let pg = PgCluster::start().expect("PostgreSQL is a test prerequisite; .ci/run installs it");
    pg.create_database("synapse").unwrap();
    let sql = dir.join("fixture.sql");
    std::fs::write(&sql, fixture_sql()).unwrap();
    pg.psql_file("synapse", &sql).unwrap();
    pg
}

/// Synapse's own query for the state of `g`.
const SYNAPSE_QUERY: &str = "WITH RECURSIVE sgs(state_group) AS (VALUES($1::bigint) UNION ALL \
    SELECT prev_state_group FROM state_group_edges e, sgs s WHERE s.state_group = e.state_group) \
    SELECT DISTINCT ON (type, state_key) type, state_key, event_id FROM state_groups_state \
    WHERE state_group IN (SELECT state_group FROM sgs) ORDER BY type, state_key, state_group DESC";

fn synapse_states(client: &mut postgres::Client) -> BTreeMap<i64, Vec<(String, String, String)>> {
    let ids: Vec<i64> = client
        .query("SELECT id FROM state_groups ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let stmt = client.prepare(SYNAPSE_QUERY).unwrap();
    ids.into_iter()
        .map(|g| {
            let rows = client.query(&stmt, &[&g]).unwrap();
            (g, rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
        })
        .collect()
}

#[test]
fn live_custom_format_and_export_round_trip_through_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let pg = cluster_with_fixture(dir.path());
    let url = pg.url_for("synapse");

    // Live import, verified against the dump and against the live database.
    let live_db = dir.path().join("live");
    let out = ok(&["import", "--db", s(&live_db), "--postgres", &url]);
    assert!(out.contains("groups stored          1198"), "{out}");
    assert!(out.contains("postgres state tables"), "{out}");
    assert!(ok(&["verify", "--db", s(&live_db), s(&fixture())]).contains(": 0 mismatches"));
    assert!(ok(&["verify", "--db", s(&live_db), "--postgres", &url]).contains(": 0 mismatches"));

    // Custom format through pg_restore.
    let custom = dir.path().join("small.dump");
    let st = pg
        .command("pg_dump")
        .args(["-Fc", "-d", "synapse", "-f", s(&custom)])
        .status()
        .unwrap();
    assert!(st.success());
    let custom_db = dir.path().join("custom");
    ok(&["import", "--quiet", "--db", s(&custom_db), s(&custom)]);
    assert!(ok(&["verify", "--db", s(&custom_db), s(&custom)]).contains("checked 1198 of 1198 groups: 0 mismatches"));

    // Export, load into an empty Synapse schema, compare Synapse's answers.
    let exported = dir.path().join("export.sql");
    ok(&["export", "--db", s(&live_db), "--out", s(&exported)]);
    pg.create_database("roundtrip").unwrap();
    let schema = dir.path().join("schema.sql");
    std::fs::write(&schema, STATE_SCHEMA_SQL).unwrap();
    pg.psql_file("roundtrip", &schema).unwrap();
    pg.psql_file("roundtrip", &exported).unwrap();
    let mut orig = pg.connect("synapse").unwrap();
    let mut back = pg.connect("roundtrip").unwrap();
    let a = synapse_states(&mut orig);
    let b = synapse_states(&mut back);
    assert_eq!(a.len(), GROUPS);
    assert_eq!(a, b, "Synapse's query answers differently after the round trip");
    let count = |c: &mut postgres::Client, q: &str| -> i64 { c.query_one(q, &[]).unwrap().get(0) };
    assert_eq!(
        count(&mut orig, "SELECT count(*) FROM event_to_state_groups"),
        count(&mut back, "SELECT count(*) FROM event_to_state_groups")
    );
    assert_eq!(
        count(&mut orig, "SELECT count(*) FROM state_group_edges"),
        count(&mut back, "SELECT count(*) FROM state_group_edges")
    );
}

/// A minimal dump with the given COPY bodies.
fn mini_dump(groups: &str, edges: &str, rows: &str) -> String {
    format!(
        "--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'UTF8';\n\n\
         COPY public.state_group_edges (state_group, prev_state_group) FROM stdin;\n{edges}\\.\n\n\
         COPY public.state_groups (id, room_id, event_id) FROM stdin;\n{groups}\\.\n\n\
         COPY public.state_groups_state (state_group, room_id, type, state_key, event_id) FROM stdin;\n{rows}\\.\n\n"
    )
}

/// Imports `text`, requires failure naming `needle`, and a database that
/// refuses reads (or none at all).
fn bad_import(name: &str, text: &[u8], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let db = dir.path().join("db");
    let err = fails(&["import", "--quiet", "--db", s(&db), s(&file)]);
    assert!(err.contains(needle), "{name}: {err}");
    if db.exists() {
        let e = fails(&["stats", "--db", s(&db)]);
        assert!(
            e.contains("did not complete") || e.contains("no database"),
            "{name}: {e}"
        );
        let e = fails(&["state", "--db", s(&db), "--group", "1"]);
        assert!(
            e.contains("did not complete") || e.contains("no database"),
            "{name}: {e}"
        );
    }
}

const R1: &str = "!r1:x";
const R2: &str = "!r2:x";

#[test]
fn bad_inputs_are_refused_with_the_line() {
    let good_groups = format!("1\t{R1}\t$a\n2\t{R1}\t$b\n");
    let good_rows = format!("1\t{R1}\tm.room.create\t\t$a\n");
    let sql = fixture_sql();
    let cut = sql.find("COPY public.state_groups_state").unwrap() + 4000;
    bad_import("truncated.sql", &sql.as_bytes()[..cut], "");
    bad_import(
        "unterminated.sql",
        format!("-- PostgreSQL database dump\nCOPY public.state_groups (id, room_id, event_id) FROM stdin;\n{good_groups}\n-- next\n").as_bytes(),
        "not terminated",
    );
    bad_import(
        "columns.sql",
        mini_dump(&good_groups, "", &format!("{good_rows}1\t{R1}\tm.room.name\n")).as_bytes(),
        "expected 5 columns, found 3",
    );
    bad_import(
        "nonnumeric.sql",
        mini_dump(&format!("{good_groups}x7\t{R1}\t$c\n"), "", &good_rows).as_bytes(),
        "x7",
    );
    bad_import(
        "cycle.sql",
        mini_dump(&format!("{good_groups}3\t{R1}\t$c\n"), "2\t3\n3\t2\n", &good_rows).as_bytes(),
        "cycle in state_group_edges",
    );
    bad_import(
        "other_room.sql",
        mini_dump(&format!("1\t{R1}\t$a\n2\t{R2}\t$b\n"), "2\t1\n", &good_rows).as_bytes(),
        "state group 2",
    );
    let mut utf8 = mini_dump(&good_groups, "", &good_rows).into_bytes();
    let pos = utf8.windows(13).position(|w| w == b"m.room.create").unwrap();
    utf8[pos] = 0xff;
    bad_import("utf8.sql", &utf8, "UTF-8");
    bad_import("random.sql", &[0x13, 0x00, 0xfe, 0x77, 0x01, 0x02, 0x99, 0x10], "not");
    bad_import("text.sql", b"just some words\nthat are not a dump\n", "not");
    bad_import(
        "bad_room.sql",
        mini_dump("1\tnot-a-room\t$a\n", "", "").as_bytes(),
        "invalid room id",
    );
}

#[test]
fn interrupted_import_is_refused_then_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("big.sql");
    ok(&["synth", "--out", s(&dump), "--members", "8000", "--seed", "7"]);
    let db = dir.path().join("db");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mxstate"))
        .args(["import", "--quiet", "--db", s(&db), s(&dump)])
        .spawn()
        .unwrap();
    // Kill -9 once the import has started writing.
    let start = std::time::Instant::now();
    while !db.join("CURRENT").exists() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the import finished before it could be interrupted; use a bigger dump"
    );
    let e = fails(&["stats", "--db", s(&db)]);
    assert!(e.contains("did not complete"), "{e}");
    // What was stored before the kill is whole: the checker finds no damage.
    let c = ok(&["check", "--db", s(&db)]);
    assert!(c.contains("an import did not finish") && c.contains("clean"), "{c}");
    assert!(fails(&["state", "--db", s(&db), "--group", "1"]).contains("did not complete"));
    ok(&["import", "--quiet", "--db", s(&db), s(&dump)]);
    let v = ok(&["verify", "--db", s(&db), s(&dump), "--sample", "300"]);
    assert!(v.contains(": 0 mismatches"), "{v}");
    ok(&["stats", "--db", s(&db)]);
}

#[test]
fn import_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = assert_cmd::Command::cargo_bin("mxstate")
        .unwrap()
        .args(["import", "--db", s(&db), "-"])
        .pipe_stdin(fixture())
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("groups stored          1198"));
    assert!(ok(&["verify", "--db", s(&db), s(&fixture())]).contains("checked 1198 of 1198 groups: 0 mismatches"));
}

/// The directory's bytes and the bytes of RocksDB's table files in it.
fn dir_and_table_bytes(db: &Path) -> (u64, u64) {
    let (mut all, mut tables) = (0, 0);
    for e in std::fs::read_dir(db).unwrap() {
        let e = e.unwrap();
        let len = e.metadata().unwrap().len();
        all += len;
        if e.file_name().to_string_lossy().ends_with(".sst") {
            tables += len;
        }
    }
    (all, tables)
}

/// A small database stays small: RocksDB's info log goes to tracing (no
/// `LOG` file), one OPTIONS file is kept, and reopening adds nothing that
/// grows with uptime. The directory is at most twice its table files.
#[test]
fn small_database_directory_is_at_most_twice_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    ok(&["import", "--quiet", "--db", s(&db), s(&fixture())]);
    let (first, _) = dir_and_table_bytes(&db);
    for _ in 0..5 {
        ok(&["check", "--db", s(&db)]);
    }
    let names: Vec<String> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("LOG")), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("OPTIONS-")).count(),
        1,
        "{names:?}"
    );
    let (all, tables) = dir_and_table_bytes(&db);
    assert!(
        all <= 2 * tables,
        "directory {all} bytes, table files {tables} bytes: {names:?}"
    );
    assert!(
        all <= first + first / 10,
        "reopening grew the directory from {first} to {all} bytes"
    );
}
