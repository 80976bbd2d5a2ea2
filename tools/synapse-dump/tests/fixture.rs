//! Reading the real Synapse dump fixture: zstd, gzip and plain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;

use common::{counts, fixture, fixture_counts, fixture_sql, read_all, read_auth, sorted, FIXTURE_AUTH_ROWS};
use mxstate_synapse_dump::{DumpReader, Include, Record, SourceRow, Table};

fn state_keys(records: &[Record]) -> Vec<&str> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::StateRow { state_key, .. } => Some(state_key.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn zstd_fixture_has_exact_row_counts() {
    let records = read_all(&fixture()).expect("fixture reads");
    assert_eq!(counts(&records), fixture_counts());
}

#[test]
fn escaped_state_keys_decode() {
    let records = read_all(&fixture()).expect("fixture reads");
    let keys = state_keys(&records);
    // In the dump: `tab\there`, `new\nline`, `back\\slash`, `quote"d`, and
    // non-ASCII keys written raw.
    for expected in [
        "tab\there",
        "new\nline",
        "back\\slash",
        "quote\"d",
        "ünïcödé-ключ-键",
        "🔑emoji",
    ] {
        assert!(keys.contains(&expected), "missing state key {expected:?}");
    }
    assert_eq!(keys.iter().filter(|k| **k == "tab\there").count(), 4);
    assert_eq!(keys.iter().filter(|k| **k == "back\\slash").count(), 4);
    // No escape sequence survives decoding.
    assert!(!keys.iter().any(|k| k.contains("\\t") || k.contains("\\n")));
    // A specific row, field by field.
    let row = records
        .iter()
        .find(|r| matches!(r, Record::StateRow { state_group: 1082, .. }))
        .expect("group 1082 has a row");
    assert_eq!(
        row,
        &Record::StateRow {
            state_group: 1082,
            room_id: "!hRGFcyTOsbXnpilAHH:gen.test".into(),
            event_type: "org.example.gen.config".into(),
            state_key: "new\nline".into(),
            event_id: "$MJJGBJTI7KO0nO2LDKKv2iMwRJZ8WoppeaiCJKcLAns".into(),
        }
    );
    // Empty state keys (m.room.create etc.) are empty strings, not NULL.
    assert!(keys.iter().filter(|k| k.is_empty()).count() > 100);
}

#[test]
fn first_records_of_each_table() {
    let records = read_all(&fixture()).expect("fixture reads");
    // pg_dump order: event_to_state_groups, state_group_edges, state_groups, state_groups_state.
    let order: Vec<Table> = records
        .windows(2)
        .filter(|w| w[0].table() != w[1].table())
        .map(|w| w[1].table())
        .collect();
    assert_eq!(
        order,
        vec![Table::StateGroupEdges, Table::StateGroups, Table::StateGroupsState]
    );
    assert!(records.iter().any(|r| matches!(r, Record::StateGroup { id: 1198, .. })));
    assert!(records.contains(&Record::StateRow {
        state_group: 2,
        room_id: "!hRGFcyTOsbXnpilAHH:gen.test".into(),
        event_type: "m.room.create".into(),
        state_key: String::new(),
        event_id: "$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY".into(),
    }));
}

#[test]
fn plain_and_gzip_give_the_same_records() {
    let expected = sorted(read_all(&fixture()).expect("zstd reads"));
    let sql = fixture_sql();
    let dir = tempfile::tempdir().expect("tempdir");

    let plain = dir.path().join("synapse-small.sql");
    std::fs::write(&plain, &sql).expect("write plain");
    assert_eq!(sorted(read_all(&plain).expect("plain reads")), expected);

    // Named .sql but gzip inside: detection is by magic bytes.
    let gz = dir.path().join("synapse-small-really-gzip.sql");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create gz"),
        flate2::Compression::fast(),
    );
    encoder.write_all(&sql).expect("gzip");
    encoder.finish().expect("gzip finish");
    assert_eq!(sorted(read_all(&gz).expect("gzip reads")), expected);
}

#[test]
fn progress_and_line_numbers() {
    let path = fixture();
    let size = std::fs::metadata(&path).expect("fixture").len();
    let mut reader = DumpReader::open(&path).expect("opens");
    assert_eq!(reader.total_bytes(), Some(size));
    let first = reader.next().expect("a record").expect("ok");
    assert!(matches!(first, Record::EventToStateGroup { .. }));
    // The first data row follows `COPY public.event_to_state_groups` on line 13973.
    assert_eq!(reader.line(), 13974);
    assert!(reader.bytes_read() > 0 && reader.bytes_read() <= size);
    let rest = reader.by_ref().count();
    assert_eq!(rest + 1, fixture_counts().values().sum::<usize>());
    assert_eq!(reader.bytes_read(), size);
    assert_eq!(reader.tables_seen(), Table::ALL.to_vec());
    assert!(reader.next().is_none(), "fused");
}

#[test]
fn event_auth_is_read_only_when_asked_for() {
    let (auth, state) = read_auth(&fixture()).expect("fixture reads");
    assert_eq!(auth.len(), FIXTURE_AUTH_ROWS);
    assert_eq!(state, fixture_counts().values().sum::<usize>());
    assert!(auth
        .iter()
        .all(|a| a.event_id.starts_with('$') && a.auth_id.starts_with('$') && a.room_id.starts_with('!')));
    // The iterator gives the state records only, with or without event_auth.
    let mut reader = DumpReader::open_including(&fixture(), Include::StateAndAuth).expect("opens");
    let records: Vec<Record> = reader.by_ref().collect::<Result<_, _>>().expect("reads");
    assert_eq!(counts(&records), fixture_counts());
    assert_eq!(reader.tables_seen(), Table::WITH_AUTH.to_vec());
    // Not asked for: next_row never gives an event_auth row.
    let mut reader = DumpReader::open(&fixture()).expect("opens");
    while let Some(row) = reader.next_row() {
        assert!(matches!(row.expect("reads"), SourceRow::State(_)));
    }
    assert_eq!(reader.tables_seen(), Table::ALL.to_vec());
}

#[test]
fn a_dump_of_event_auth_alone_has_no_state_tables() {
    let sql = "-- PostgreSQL database dump\nCOPY public.event_auth (event_id, auth_id, room_id) FROM stdin;\n$e\t$a\t!r\n\\.\n";
    let rows: Vec<_> =
        DumpReader::from_bufread_including("auth-only", std::io::Cursor::new(sql), Include::StateAndAuth).collect();
    assert!(
        matches!(
            rows.last(),
            Some(Err(mxstate_synapse_dump::DumpError::NoStateTables { .. }))
        ),
        "{rows:?}"
    );
}
