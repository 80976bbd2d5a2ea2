//! Damaged and foreign inputs: each gives its own error variant at the right line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{fixture_sql, read_all};
use mxstate_synapse_dump::{DumpError, DumpReader, Record, Table};

/// Line numbers in the fixture (see synapse-small.stats.txt).
const SGS_COPY_LINE: u64 = 21275;
/// A data line of state_groups_state:
/// `2\t!hRGFcyTOsbXnpilAHH:gen.test\tm.room.create\t\t$t1Sg...`.
const SGS_ROW_LINE: u64 = 21276;
/// The `\.` closing state_groups_state.
const SGS_END_LINE: u64 = 23253;

/// The fixture's lines (without newlines).
fn fixture_lines() -> Vec<Vec<u8>> {
    fixture_sql().split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn line(lines: &[Vec<u8>], number: u64) -> &[u8] {
    &lines[number as usize - 1]
}

fn set_line(lines: &mut [Vec<u8>], number: u64, text: &[u8]) {
    lines[number as usize - 1] = text.to_vec();
}

/// Writes lines (joined with `\n`) to `dir/name`.
fn write(dir: &Path, name: &str, lines: &[Vec<u8>]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join(&b'\n')).expect("write");
    path
}

fn first_error(path: &Path) -> DumpError {
    read_all(path).expect_err("the input is bad")
}

#[test]
fn fixture_lines_are_where_the_tests_expect() {
    let lines = fixture_lines();
    assert!(line(&lines, SGS_COPY_LINE).starts_with(b"COPY public.state_groups_state ("));
    assert!(line(&lines, SGS_ROW_LINE).starts_with(b"2\t!hRGFcyTOsbXnpilAHH:gen.test\tm.room.create\t\t$"));
    assert_eq!(line(&lines, SGS_END_LINE), b"\\.");
}

#[test]
fn truncated_mid_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = fixture_lines();
    let mut cut: Vec<Vec<u8>> = lines[..SGS_ROW_LINE as usize].to_vec();
    let last = cut.last_mut().expect("a line");
    last.truncate(20); // `2\t!hRGFcyTOsbXnpil` without newline
    let err = first_error(&write(dir.path(), "cut.sql", &cut));
    assert!(
        matches!(err, DumpError::Truncated { ref at, ref table, copy_line: SGS_COPY_LINE }
            if at.line == SGS_ROW_LINE && table == "state_groups_state"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}:{SGS_ROW_LINE}: state_groups_state: input ends inside the COPY block started at line {SGS_COPY_LINE} (truncated dump?)",
            dir.path().join("cut.sql").display()
        )
    );
}

#[test]
fn truncated_at_a_line_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = fixture_lines();
    // Lines up to and including SGS_ROW_LINE + 5, each with its newline.
    let mut cut: Vec<Vec<u8>> = lines[..(SGS_ROW_LINE + 5) as usize].to_vec();
    cut.push(Vec::new());
    let err = first_error(&write(dir.path(), "cut.sql", &cut));
    assert!(
        matches!(err, DumpError::Truncated { ref at, copy_line: SGS_COPY_LINE, .. }
            if at.line == SGS_ROW_LINE + 6),
        "{err:?}"
    );
    // The rows before the cut were delivered first.
    let mut reader = DumpReader::open(&dir.path().join("cut.sql")).expect("opens");
    let ok = reader.by_ref().take_while(Result::is_ok).count();
    assert_eq!(ok, 1070 + 1186 + 1198 + 6);
}

#[test]
fn truncated_inside_a_skipped_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = fixture_lines();
    // Cut inside `COPY public.state_groups_pending_deletion` (line 21242).
    let cut: Vec<Vec<u8>> = lines[..21245].to_vec();
    let err = first_error(&write(dir.path(), "cut.sql", &cut));
    assert!(
        matches!(err, DumpError::Truncated { ref at, ref table, copy_line: 21242 }
            if at.line == 21245 && table == "state_groups_pending_deletion"),
        "{err:?}"
    );
}

#[test]
fn unterminated_copy_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = fixture_lines();
    lines.remove(SGS_END_LINE as usize - 1);
    // The blank line after the block now sits where `\.` was.
    let err = first_error(&write(dir.path(), "unterminated.sql", &lines));
    assert!(
        matches!(err, DumpError::Unterminated { ref at, ref table, copy_line: SGS_COPY_LINE }
            if at.line == SGS_END_LINE && table == "state_groups_state"),
        "{err:?}"
    );
}

#[test]
fn wrong_column_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = fixture_lines();
    set_line(&mut lines, SGS_ROW_LINE, b"2\t!r:x\tm.room.create\t$event");
    let path = write(dir.path(), "synapse-small.sql", &lines);
    let err = first_error(&path);
    assert!(
        matches!(err, DumpError::ColumnCount { ref at, table: Table::StateGroupsState, expected: 5, found: 4 }
            if at.line == SGS_ROW_LINE),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}:21276: state_groups_state: expected 5 columns, found 4",
            path.display()
        )
    );
    assert_eq!(err.line(), SGS_ROW_LINE);
}

#[test]
fn non_numeric_group_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = fixture_lines();
    let mut row = line(&lines, SGS_ROW_LINE).to_vec();
    row.splice(0..1, b"2x".iter().copied());
    set_line(&mut lines, SGS_ROW_LINE, &row);
    let err = first_error(&write(dir.path(), "bad-id.sql", &lines));
    assert!(
        matches!(err, DumpError::BadNumber { ref at, table: Table::StateGroupsState, column: "state_group", ref value }
            if at.line == SGS_ROW_LINE && value == "2x"),
        "{err:?}"
    );
}

#[test]
fn null_group_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = fixture_lines();
    // state_group_edges block: `COPY public.state_group_edges (...)` on 18842.
    assert!(line(&lines, 18842).starts_with(b"COPY public.state_group_edges "));
    set_line(&mut lines, 18843, b"5\t\\N");
    let err = first_error(&write(dir.path(), "null-id.sql", &lines));
    assert!(
        matches!(err, DumpError::Null { ref at, table: Table::StateGroupEdges, column: "prev_state_group" }
            if at.line == 18843),
        "{err:?}"
    );
}

#[test]
fn invalid_utf8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = fixture_lines();
    set_line(
        &mut lines,
        SGS_ROW_LINE,
        b"2\t!r:x\tm.room.member\t@bad\xff\xfeuser\t$e",
    );
    let err = first_error(&write(dir.path(), "bad-utf8.sql", &lines));
    assert!(
        matches!(err, DumpError::InvalidUtf8 { ref at, table: Some(Table::StateGroupsState), column: 4 }
            if at.line == SGS_ROW_LINE),
        "{err:?}"
    );
    // Escaped invalid bytes are caught too.
    set_line(&mut lines, SGS_ROW_LINE, b"2\t!r:x\tm.room.member\t@bad\\377\t$e");
    let err = first_error(&write(dir.path(), "bad-utf8-escaped.sql", &lines));
    assert!(
        matches!(err, DumpError::InvalidUtf8 { column: 4, ref at, .. } if at.line == SGS_ROW_LINE),
        "{err:?}"
    );
}

#[test]
fn random_bytes_are_not_a_dump() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Deterministic pseudo-random bytes (xorshift), with a newline early on.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let path = dir.path().join("random.sql");
    std::fs::write(&path, &bytes).expect("write");
    let err = first_error(&path);
    assert!(
        matches!(err, DumpError::NotADump { ref at, ref reason } if at.line == 1 && reason == "binary data"),
        "{err:?}"
    );
}

#[test]
fn text_files_are_not_a_dump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long: Vec<Vec<u8>> = (0..500)
        .map(|i| format!("line {i} of an ordinary text file").into_bytes())
        .collect();
    let err = first_error(&write(dir.path(), "notes.txt", &long));
    assert!(
        matches!(err, DumpError::NotADump { ref at, .. } if at.line == 200),
        "{err:?}"
    );
    let short = vec![b"hello".to_vec(), b"world".to_vec(), Vec::new()];
    let err = first_error(&write(dir.path(), "short.txt", &short));
    assert!(
        matches!(err, DumpError::NotADump { ref at, .. } if at.line == 2),
        "{err:?}"
    );
    let err = first_error(&write(dir.path(), "empty.sql", &[]));
    assert!(
        matches!(err, DumpError::NotADump { ref at, .. } if at.line == 0),
        "{err:?}"
    );
}

#[test]
fn dump_without_state_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'UTF8';\n\n\
                COPY public.users (name, admin) FROM stdin;\n@a:x\t0\n\\.\n\n";
    let path = dir.path().join("users.sql");
    std::fs::write(&path, text).expect("write");
    let err = first_error(&path);
    assert!(
        matches!(err, DumpError::NoStateTables { ref at } if at.line == 10),
        "{err:?}"
    );
}

#[test]
fn missing_column_in_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "SET client_encoding = 'UTF8';\n\
                COPY public.state_groups_state (state_group, room_id, type, event_id) FROM stdin;\n\\.\n";
    let path = dir.path().join("missing.sql");
    std::fs::write(&path, text).expect("write");
    let err = first_error(&path);
    assert!(
        matches!(err, DumpError::MissingColumn { ref at, table: Table::StateGroupsState, column: "state_key" }
            if at.line == 2),
        "{err:?}"
    );
}

#[test]
fn columns_found_by_name_and_schema_optional() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "SET client_encoding = 'UTF8';\n\
                COPY state_groups (event_id, extra, id, room_id) FROM stdin;\n\
                $e\t\\N\t7\t!r:x\n\\.\n\
                COPY other.state_groups (id, room_id, event_id) FROM stdin;\n\
                8\t!r:x\t$f\n\\.\n\
                COPY public.state_group_edges (prev_state_group, state_group) FROM stdin;\n\
                7\t9\n\\.\n";
    let path = dir.path().join("reordered.sql");
    std::fs::write(&path, text).expect("write");
    let records = read_all(&path).expect("reads");
    assert_eq!(
        records,
        vec![
            Record::StateGroup {
                id: 7,
                room_id: "!r:x".into(),
                event_id: "$e".into()
            },
            Record::Edge {
                state_group: 9,
                prev_state_group: 7
            },
        ]
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let err = DumpReader::open(Path::new("/nonexistent/synapse.sql")).expect_err("no file");
    assert!(matches!(err, DumpError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("/nonexistent/synapse.sql: I/O error"),
        "{err}"
    );
}
