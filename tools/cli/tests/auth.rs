//! The auth index through the CLI: `event_auth` imported from the real
//! Synapse fixture (dump and live database), verified, and asked with
//! `auth-chain` / `auth-difference`, against plain walks of the dump's rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{fails, fixture, fixture_sql, mxstate, ok, s};
use mxstate_synapse_dump::PgCluster;

const AUTH_ROWS: usize = 3433;
const COPY_AUTH: &str = "COPY public.event_auth (event_id, auth_id, room_id) FROM stdin;";

/// The `event_auth` rows of a dump's text: `(event, auth, room)`.
fn auth_rows(sql: &str) -> Vec<(String, String, String)> {
    sql.lines()
        .skip_while(|l| *l != COPY_AUTH)
        .skip(1)
        .take_while(|l| *l != "\\.")
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "{l}");
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect()
}

/// Each event's auth events.
fn edges(rows: &[(String, String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (e, a, _) in rows {
        m.entry(e.clone()).or_default().push(a.clone());
    }
    m
}

/// The events reachable from `from` by zero or more edges.
fn closure(edges: &BTreeMap<String, Vec<String>>, from: &[String]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = from.to_vec();
    while let Some(e) = stack.pop() {
        if seen.insert(e.clone()) {
            stack.extend(edges.get(&e).into_iter().flatten().cloned());
        }
    }
    seen
}

/// Synapse's auth chain of `events` (one or more edges).
fn chain(edges: &BTreeMap<String, Vec<String>>, events: &[String]) -> BTreeSet<String> {
    let auth: Vec<String> = events
        .iter()
        .flat_map(|e| edges.get(e).into_iter().flatten().cloned())
        .collect();
    closure(edges, &auth)
}

fn lines(out: &str) -> BTreeSet<String> {
    out.lines().map(str::to_owned).collect()
}

/// `mxstate verify --json` of `db` against `src`, as JSON (any exit status).
fn verify_json(db: &Path, src: &Path) -> (Option<i32>, serde_json::Value) {
    let out = mxstate(&["verify", "--quiet", "--json", "--db", s(db), s(src)]);
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

#[test]
fn fixture_auth_index_imports_verifies_and_answers_as_a_plain_walk() {
    let rows = auth_rows(&fixture_sql());
    assert_eq!(rows.len(), AUTH_ROWS);
    let edges = edges(&rows);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let started = std::time::Instant::now();
    let out = ok(&["import", "--db", s(&db), s(&fixture())]);
    let import_secs = started.elapsed().as_secs_f64();
    assert!(
        out.contains(&format!(
            "auth events            {} of 3 rooms ({AUTH_ROWS} event_auth rows)",
            edges.len()
        )),
        "{out}"
    );
    assert!(out.contains("groups stored          1198"), "{out}");

    let started = std::time::Instant::now();
    let (code, v) = verify_json(&db, &fixture());
    let verify_secs = started.elapsed().as_secs_f64();
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["groups_checked"], 1198);
    assert_eq!(v["mismatches"], 0);
    assert_eq!(v["auth_rows"], AUTH_ROWS as u64);
    assert_eq!(v["auth_events_in_source"], edges.len() as u64);
    assert!(v["auth_chains_checked"].as_u64().unwrap() > 0, "{v}");
    assert!(v["auth_differences_checked"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["auth_mismatches"], 0, "{v}");
    eprintln!(
        "fixture: import {import_secs:.2} s, verify {verify_secs:.2} s ({} auth chains, {} differences compared)",
        v["auth_chains_checked"], v["auth_differences_checked"]
    );
    let text = ok(&["verify", "--db", s(&db), s(&fixture())]);
    assert!(text.contains("checked 1198 of 1198 groups: 0 mismatches"), "{text}");
    assert!(text.contains(" auth chain differences: 0 mismatches"), "{text}");

    // A repeat import changes nothing.
    let again = ok(&["import", "--db", s(&db), s(&fixture())]);
    assert!(again.contains("already complete"), "{again}");

    // auth-chain: the plain walk, for the events with the longest chains
    // and a few others.
    let mut by_len: Vec<(usize, &String)> = edges
        .keys()
        .map(|e| (chain(&edges, std::slice::from_ref(e)).len(), e))
        .collect();
    by_len.sort();
    let picked: Vec<&String> = by_len
        .iter()
        .rev()
        .take(3)
        .chain(by_len.iter().step_by(97))
        .map(|x| x.1)
        .collect();
    for e in &picked {
        let expected = chain(&edges, std::slice::from_ref(*e));
        assert!(!expected.is_empty());
        let got = ok(&["auth-chain", "--db", s(&db), "--event", e]);
        assert_eq!(lines(&got), expected, "auth chain of {e}");
        let mut sorted: Vec<&str> = got.lines().collect();
        sorted.sort();
        assert_eq!(got.lines().collect::<Vec<_>>(), sorted, "sorted output");
    }
    // Several events of one room, with the given ones, as JSON.
    let room = &rows.iter().find(|r| &r.0 == picked[0]).unwrap().2;
    let same_room: Vec<String> = rows
        .iter()
        .filter(|r| &r.2 == room)
        .map(|r| r.0.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .step_by(50)
        .collect();
    let mut args = vec!["auth-chain", "--db", s(&db), "--include-given", "--json"];
    for e in &same_room {
        args.extend(["--event", e.as_str()]);
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    let mut expected = chain(&edges, &same_room);
    expected.extend(same_room.iter().cloned());
    let got: Vec<String> = serde_json::from_value(json["auth_chain"].clone()).unwrap();
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted");

    // auth-difference: union of the full chains minus their intersection.
    let a: Vec<String> = same_room.iter().take(3).cloned().collect();
    let b: Vec<String> = same_room.iter().skip(2).take(3).cloned().collect();
    let (fa, fb) = (closure(&edges, &a), closure(&edges, &b));
    let expected: BTreeSet<String> = fa.symmetric_difference(&fb).cloned().collect();
    let got = ok(&[
        "auth-difference",
        "--db",
        s(&db),
        "--set",
        &a.join(","),
        "--set",
        &b.join(","),
    ]);
    assert_eq!(lines(&got), expected);
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "auth-difference",
        "--db",
        s(&db),
        "--json",
        "--set",
        &a.join(","),
        "--set",
        &b.join(","),
    ]))
    .unwrap();
    let got: BTreeSet<String> = serde_json::from_value(json["auth_difference"].clone()).unwrap();
    assert_eq!(got, expected);

    // Usage errors: exit 1 naming the events.
    let rooms: BTreeSet<&String> = rows.iter().map(|r| &r.2).collect();
    assert_eq!(rooms.len(), 3);
    let other = &rows.iter().find(|r| &r.2 != room).unwrap().0;
    let e = fails(&["auth-chain", "--db", s(&db), "--event", picked[0], "--event", other]);
    assert!(e.contains("different rooms") && e.contains(other.as_str()), "{e}");
    let e = fails(&["auth-chain", "--db", s(&db), "--event", "$neveradded"]);
    assert!(e.contains("$neveradded"), "{e}");
    let e = fails(&["auth-chain", "--db", s(&db), "--event", "not-an-event"]);
    assert!(e.contains("invalid event id"), "{e}");
    let e = fails(&["auth-difference", "--db", s(&db), "--set", picked[0]]);
    assert!(e.contains("two or more"), "{e}");
    // An unknown event beside a known one adds nothing (and is named on stderr).
    let out = mxstate(&[
        "auth-chain",
        "--db",
        s(&db),
        "--event",
        picked[0],
        "--event",
        "$neveradded",
    ]);
    assert!(out.status.success());
    assert_eq!(
        lines(&String::from_utf8(out.stdout).unwrap()),
        chain(&edges, std::slice::from_ref(picked[0]))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("$neveradded"));
}

/// The fixture's text with `edit` applied to its `event_auth` rows.
fn edited_fixture(dir: &Path, name: &str, edit: impl Fn(Vec<String>) -> Vec<String>) -> std::path::PathBuf {
    let sql = fixture_sql();
    let start = sql.find(COPY_AUTH).unwrap() + COPY_AUTH.len() + 1;
    let end = start + sql[start..].find("\\.\n").unwrap();
    let rows: Vec<String> = sql[start..end].lines().map(str::to_owned).collect();
    let mut body = edit(rows).join("\n");
    body.push('\n');
    let path = dir.join(name);
    std::fs::write(&path, format!("{}{body}{}", &sql[..start], &sql[end..])).unwrap();
    path
}

#[test]
fn verify_fails_when_the_auth_index_differs_from_the_source() {
    let dir = tempfile::tempdir().unwrap();
    // The source without every row of one event that has auth events.
    let rows = auth_rows(&fixture_sql());
    let dropped = rows[10].0.clone();
    let less = edited_fixture(dir.path(), "less.sql", |rows| {
        rows.into_iter()
            .filter(|r| !r.starts_with(&format!("{dropped}\t")))
            .collect()
    });
    let db = dir.path().join("db");
    ok(&["import", "--quiet", "--db", s(&db), s(&less)]);
    assert!(ok(&["verify", "--db", s(&db), s(&less)]).contains("differences: 0 mismatches"));
    // Against the full source: the event's chain is missing.
    let (code, v) = verify_json(&db, &fixture());
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["mismatches"], 0, "the groups are the same: {v}");
    assert!(v["auth_mismatches"].as_u64().unwrap() >= 1, "{v}");
    let detail = v["first_auth"][0]["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("auth chain of {dropped}")), "{detail}");
    let out = mxstate(&["verify", "--quiet", "--db", s(&db), s(&fixture())]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mismatch: room !") && err.contains(&dropped), "{err}");
    assert!(err.contains("auth chain answers differ from the source"), "{err}");
    // The changed source is not taken for the one imported.
    let again = mxstate(&["import", "--quiet", "--db", s(&db), s(&fixture())]);
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("already complete"),
        "a changed source is imported again"
    );
}

#[test]
fn invalid_event_auth_ids_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let bad = edited_fixture(dir.path(), "bad-ids.sql", |mut rows| {
        let f: Vec<String> = rows[0].split('\t').map(str::to_owned).collect();
        rows[0] = format!("{}\tnot-an-event\t{}", f[0], f[2]);
        let f: Vec<String> = rows[1].split('\t').map(str::to_owned).collect();
        rows[1] = format!("{}\t{}\tnot a room", f[0], f[1]);
        rows.push("\t$x\t!r:x".to_owned());
        rows
    });
    let db = dir.path().join("db");
    let out = ok(&["import", "--db", s(&db), s(&bad)]);
    assert!(
        out.contains("auth rows left out     3 (an id is not a valid room or event id)"),
        "{out}"
    );
    assert!(out.contains(&format!("({} event_auth rows)", AUTH_ROWS - 2)), "{out}");
    let v = ok(&["verify", "--db", s(&db), s(&bad)]);
    assert!(v.contains("differences: 0 mismatches"), "{v}");
    assert!(v.contains("auth: 3 event_auth rows name an invalid id"), "{v}");
    assert!(ok(&["import", "--db", s(&db), s(&bad)]).contains("already complete"));

    // A row that is not a row (a column lost) is damage, named by line, as
    // in the other tables.
    let damaged = edited_fixture(dir.path(), "damaged.sql", |mut rows| {
        rows.insert(5, "$only\t$two".to_owned());
        rows
    });
    let e = fails(&["import", "--quiet", "--db", s(&dir.path().join("db2")), s(&damaged)]);
    assert!(e.contains("event_auth: expected 3 columns, found 2"), "{e}");
}

#[test]
fn a_dump_without_event_auth_imports_as_before() {
    let dir = tempfile::tempdir().unwrap();
    // The fixture without its event_auth block (as a state database's dump).
    let sql = fixture_sql();
    let start = sql.find(COPY_AUTH).unwrap();
    let end = start + sql[start..].find("\\.\n").unwrap() + 3;
    let state_only = dir.path().join("state.sql");
    std::fs::write(&state_only, format!("{}{}", &sql[..start], &sql[end..])).unwrap();
    let db = dir.path().join("db");
    let out = ok(&["import", "--db", s(&db), s(&state_only)]);
    assert!(out.contains("groups stored          1198"), "{out}");
    assert!(
        out.contains("auth events            0 (the source has no event_auth rows)"),
        "{out}"
    );
    let v = ok(&["verify", "--db", s(&db), s(&state_only)]);
    assert!(v.contains("checked 1198 of 1198 groups: 0 mismatches"), "{v}");
    assert!(v.contains("no event_auth rows"), "{v}");
    // A repeat import of the same state-only source changes nothing.
    assert!(ok(&["import", "--db", s(&db), s(&state_only)]).contains("already complete"));
    // Verified against the full dump, the missing auth index is a mismatch.
    let (code, v) = verify_json(&db, &fixture());
    assert_eq!(code, Some(1));
    assert_eq!(v["mismatches"], 0);
    assert!(v["auth_mismatches"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn live_database_event_auth_imports_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgCluster::start().expect("PostgreSQL is a test prerequisite; .ci/run installs it");
    pg.create_database("synapse").unwrap();
    let sql = dir.path().join("fixture.sql");
    std::fs::write(&sql, fixture_sql()).unwrap();
    pg.psql_file("synapse", &sql).unwrap();
    let url = pg.url_for("synapse");

    let db = dir.path().join("live");
    let out = ok(&["import", "--db", s(&db), "--postgres", &url]);
    assert!(out.contains(&format!("({AUTH_ROWS} event_auth rows)")), "{out}");
    assert!(out.contains("postgres event_auth"), "{out}");
    // The live source and the dump are the same source.
    assert!(ok(&["import", "--db", s(&db), s(&fixture())]).contains("already complete"));
    for src in [vec!["--postgres", url.as_str()], vec![s(&fixture())]] {
        let mut args = vec!["verify", "--quiet", "--json", "--db", s(&db)];
        args.extend(src);
        let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        assert_eq!(v["auth_rows"], AUTH_ROWS as u64, "{v}");
        assert!(v["auth_chains_checked"].as_u64().unwrap() > 0, "{v}");
        assert_eq!(v["auth_mismatches"], 0, "{v}");
    }
}

#[test]
fn state_database_then_main_database_with_event_auth() {
    // Synapse with a separate state database: the state tables in one dump,
    // event_to_state_groups and event_auth in the main database's.
    let dir = tempfile::tempdir().unwrap();
    let sql = fixture_sql();
    let block = |header: &str| {
        let start = sql.find(header).unwrap();
        let len = sql[start..].find("\n\\.\n").unwrap() + 4;
        sql[start..start + len].to_owned()
    };
    let (mappings, auth) = (block("COPY public.event_to_state_groups"), block(COPY_AUTH));
    let state_only = dir.path().join("state.sql");
    std::fs::write(&state_only, sql.replacen(&mappings, "", 1).replacen(&auth, "", 1)).unwrap();
    let main_only = dir.path().join("main.sql");
    std::fs::write(&main_only, format!("{auth}\n{mappings}")).unwrap();
    let db = dir.path().join("db");
    let a = ok(&["import", "--db", s(&db), s(&state_only)]);
    assert!(
        a.contains("auth events            0 (the source has no event_auth rows)"),
        "{a}"
    );
    let b = ok(&["import", "--db", s(&db), s(&main_only)]);
    assert!(b.contains(&format!("({AUTH_ROWS} event_auth rows)")), "{b}");
    assert!(b.contains("event mappings         1070"), "{b}");
    for src in [&state_only, &main_only] {
        assert!(ok(&["import", "--db", s(&db), s(src)]).contains("already complete"));
    }
    let (code, v) = verify_json(&db, &fixture());
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["groups_checked"], 1198);
    assert!(v["auth_differences_checked"].as_u64().unwrap() > 0, "{v}");
    assert!(ok(&["check", "--db", s(&db)]).contains("clean"));
}

/// `mxstate synth --auth` writes `event_auth` (and Synapse's chain cover)
/// that `mxstate import` reads: the auth chains of its events, asked with
/// `auth-chain`, are the plain walks of the rows it wrote.
#[test]
fn synth_auth_rows_import_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("synth.sql");
    let db = dir.path().join("db");
    let out = mxstate(&["synth", "--out", s(&dump), "--members", "300", "--seed", "3", "--auth"]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("event_auth rows"), "{said}");
    let sql = std::fs::read_to_string(&dump).unwrap();
    assert!(sql.contains("COPY public.event_auth_chains (event_id, chain_id, sequence_number) FROM stdin;"));
    let rows = auth_rows(&sql);
    assert!(rows.len() > 1000, "{} rows", rows.len());
    ok(&["import", "--db", s(&db), s(&dump)]);
    let edges = edges(&rows);
    for e in edges.keys().step_by(97) {
        let expected = chain(&edges, std::slice::from_ref(e));
        let got = ok(&["auth-chain", "--db", s(&db), "--event", e]);
        assert_eq!(lines(&got), expected, "auth chain of {e}");
    }
}
