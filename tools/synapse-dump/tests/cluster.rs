//! Tests against a private PostgreSQL server ([`PgCluster`]): custom-format
//! dumps through pg_restore, live reading, and loading written SQL with psql.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{counts, fixture, fixture_counts, fixture_sql, read_all, read_auth, sorted, FIXTURE_AUTH_ROWS};
use mxstate_synapse_dump::writer::{CopyWriter, Schema};
use mxstate_synapse_dump::{
    DumpError, DumpReader, Include, LiveSource, PgCluster, Record, SourceRow, Table, STATE_SCHEMA_SQL,
};

fn run(mut command: Command) {
    let output = command.output().expect("command starts");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn live_records(url: &str) -> Vec<Record> {
    let source = LiveSource::connect(url).expect("connects");
    source.records().collect::<Result<Vec<_>, _>>().expect("live rows read")
}

#[test]
fn custom_format_and_live_database_match_the_plain_dump() {
    let expected = sorted(read_all(&fixture()).expect("plain dump reads"));
    assert_eq!(counts(&expected), fixture_counts());

    let cluster = PgCluster::start().expect("cluster starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("synapse-small.sql");
    std::fs::write(&plain, fixture_sql()).expect("write plain");
    cluster.create_database("synapse").expect("createdb");
    cluster.psql_file("synapse", &plain).expect("fixture loads");

    // Custom format, read through pg_restore.
    let custom = dir.path().join("synapse.dump");
    let mut pg_dump = cluster.command("pg_dump");
    pg_dump.args(["-Fc", "-d", "synapse", "-f"]).arg(&custom);
    run(pg_dump);
    let mut reader = DumpReader::open(&custom).expect("custom dump opens");
    let size = std::fs::metadata(&custom).expect("dump").len();
    assert_eq!(reader.total_bytes(), Some(size));
    let records: Vec<Record> = reader.by_ref().collect::<Result<_, _>>().expect("custom reads");
    assert_eq!(sorted(records), expected);
    assert_eq!(reader.bytes_read(), size);

    // The same custom dump zstd-compressed: decompressed into pg_restore's stdin.
    let compressed = dir.path().join("synapse.dump.zst");
    let raw = std::fs::read(&custom).expect("read dump");
    std::fs::write(&compressed, zstd::encode_all(&raw[..], 3).expect("zstd")).expect("write");
    assert_eq!(sorted(read_all(&compressed).expect("zstd custom reads")), expected);

    // Directory and tar formats.
    let directory = dir.path().join("synapse.dir");
    let mut pg_dump = cluster.command("pg_dump");
    pg_dump.args(["-Fd", "-d", "synapse", "-f"]).arg(&directory);
    run(pg_dump);
    assert_eq!(sorted(read_all(&directory).expect("directory reads")), expected);
    let tar = dir.path().join("synapse.tar");
    let mut pg_dump = cluster.command("pg_dump");
    pg_dump.args(["-Ft", "-d", "synapse", "-f"]).arg(&tar);
    run(pg_dump);
    assert_eq!(sorted(read_all(&tar).expect("tar reads")), expected);

    // event_auth, when asked for: through pg_restore as in the plain dump.
    let (auth, _) = read_auth(&fixture()).expect("plain reads");
    assert_eq!(auth.len(), FIXTURE_AUTH_ROWS);
    for archive in [&custom, &compressed, &directory, &tar] {
        let (got, state) = read_auth(archive).expect("archive reads");
        assert_eq!(got, auth, "{}", archive.display());
        assert_eq!(state, expected.len());
    }

    // The live database.
    let mut source = LiveSource::connect(&cluster.url_for("synapse")).expect("connects");
    assert!(source.relation_sizes().expect("sizes") > 0);
    let mut live = source.records();
    let records: Vec<Record> = live.by_ref().collect::<Result<_, _>>().expect("live reads");
    assert!(live.bytes_read() > 0);
    assert_eq!(sorted(records), expected);

    // And with event_auth.
    let mut source = LiveSource::connect(&cluster.url_for("synapse")).expect("connects");
    assert!(source.table_sizes(&[Table::EventAuth]).expect("sizes") > 0);
    let mut live = source.rows(Include::StateAndAuth);
    let (mut got, mut state) = (Vec::new(), Vec::new());
    while let Some(row) = live.next_row() {
        match row.expect("live reads") {
            SourceRow::Auth(a) => got.push(a),
            SourceRow::State(r) => state.push(r),
        }
    }
    got.sort();
    assert_eq!(got, auth);
    assert_eq!(sorted(state), expected);
}

/// Strings that need every kind of escaping.
fn tricky_records() -> Vec<Record> {
    let keys = [
        "tab\there",
        "new\nline",
        "carriage\rreturn",
        "back\\slash",
        "\\N",
        "\\.",
        ".",
        "",
        "bell\u{7}bs\u{8}ff\u{c}vt\u{b}del\u{7f}",
        "ünïcödé-ключ-键",
        "🔑emoji",
        "quote\"d 'single'",
        "trailing backslash\\",
    ];
    let mut records = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let group = i as i64 + 1;
        records.push(Record::StateGroup {
            id: group,
            room_id: format!("!room{key}:example.org"),
            event_id: format!("$create{i}"),
        });
        records.push(Record::StateRow {
            state_group: group,
            room_id: format!("!room{key}:example.org"),
            event_type: format!("m.type\t{key}"),
            state_key: (*key).to_owned(),
            event_id: format!("$ev{key}"),
        });
        records.push(Record::EventToStateGroup {
            event_id: format!("$ev{i}{key}"),
            state_group: group,
        });
        if group > 1 {
            records.push(Record::Edge {
                state_group: group,
                prev_state_group: group - 1,
            });
        }
    }
    records.push(Record::StateGroup {
        id: i64::MAX,
        room_id: "!max:x".into(),
        event_id: "$max".into(),
    });
    records
}

fn write_dump(path: &Path, records: &[Record], schema: Schema) {
    let file = std::fs::File::create(path).expect("create");
    let mut writer = CopyWriter::new(file);
    writer.write_prologue(schema).expect("prologue");
    for table in Table::ALL {
        writer.begin_table(table).expect("begin");
        for record in records.iter().filter(|r| r.table() == table) {
            writer.record(record).expect("record");
        }
        writer.end_table().expect("end");
    }
    writer.set_state_group_sequence(13).expect("setval");
    writer.finish().expect("finish");
}

#[test]
fn written_sql_loads_with_psql_and_reads_back_live() {
    let records = tricky_records();
    let expected = sorted(records.clone());
    let cluster = PgCluster::start().expect("cluster starts");
    let dir = tempfile::tempdir().expect("tempdir");

    // Schema created by the file itself.
    let with_schema = dir.path().join("with-schema.sql");
    write_dump(&with_schema, &records, Schema::Create);
    assert_eq!(sorted(read_all(&with_schema).expect("reads back")), expected);
    cluster.create_database("created").expect("createdb");
    cluster.psql_file("created", &with_schema).expect("psql loads");
    assert_eq!(sorted(live_records(&cluster.url_for("created"))), expected);

    // Data only, into a database that has STATE_SCHEMA_SQL; via row().
    cluster.create_database("existing").expect("createdb");
    let mut client = cluster.connect("existing").expect("connect");
    client.batch_execute(STATE_SCHEMA_SQL).expect("schema");
    let data_only = dir.path().join("data-only.sql");
    let mut writer = CopyWriter::new(std::fs::File::create(&data_only).expect("create"));
    writer.write_prologue(Schema::DataOnly).expect("prologue");
    writer.begin_table(Table::StateGroupsState).expect("begin");
    writer
        .row(&["1", "!r:x", "m.room.member", "a\tb\nc\\d\re\u{1F511}", "$e"])
        .expect("row");
    writer.end_table().expect("end");
    writer.finish().expect("finish");
    cluster.psql_file("existing", &data_only).expect("psql loads");
    let key: String = client
        .query_one("SELECT state_key FROM state_groups_state", &[])
        .expect("query")
        .get(0);
    assert_eq!(key, "a\tb\nc\\d\re\u{1F511}");

    // The constraints exist: a duplicate state group is refused.
    let err = client
        .batch_execute("INSERT INTO state_groups VALUES (1, '!r', '$e'), (1, '!r', '$f')")
        .expect_err("primary key");
    let constraint = err.as_db_error().and_then(|db| db.constraint());
    assert_eq!(constraint, Some("state_groups_pkey"), "{err:?}");

    // A pg_dump of the loaded database reads back the same (pg_dump's escaping).
    let dumped = dir.path().join("dumped.sql");
    let mut pg_dump = cluster.command("pg_dump");
    pg_dump.args(["-d", "created", "-f"]).arg(&dumped);
    run(pg_dump);
    assert_eq!(sorted(read_all(&dumped).expect("pg_dump reads")), expected);
}

#[test]
fn live_source_skips_missing_tables() {
    let cluster = PgCluster::start().expect("cluster starts");
    cluster.create_database("state_only").expect("createdb");
    let mut client = cluster.connect("state_only").expect("connect");
    client.batch_execute(STATE_SCHEMA_SQL).expect("schema");
    client
        .batch_execute(
            "DROP TABLE event_to_state_groups;
             INSERT INTO state_groups VALUES (1, '!r:x', '$a'), (2, '!r:x', '$b');
             INSERT INTO state_group_edges VALUES (2, 1);",
        )
        .expect("setup");
    let mut source = LiveSource::connect(&cluster.url_for("state_only")).expect("connects");
    assert!(source.relation_sizes().expect("sizes") > 0);
    let records = sorted(source.records().collect::<Result<_, _>>().expect("reads"));
    assert_eq!(
        records,
        sorted(vec![
            Record::Edge {
                state_group: 2,
                prev_state_group: 1
            },
            Record::StateGroup {
                id: 1,
                room_id: "!r:x".into(),
                event_id: "$a".into()
            },
            Record::StateGroup {
                id: 2,
                room_id: "!r:x".into(),
                event_id: "$b".into()
            },
        ])
    );
}

#[test]
fn server_errors_show_the_server_message() {
    let cluster = PgCluster::start().expect("cluster starts");
    let err = LiveSource::connect(&cluster.url_for("no_such_db")).expect_err("no database");
    let message = err.to_string();
    assert!(message.contains("database \"no_such_db\" does not exist"), "{message}");
}

#[test]
fn connection_failure_is_a_postgres_error() {
    let err =
        LiveSource::connect("postgresql://postgres:secret@127.0.0.1:1/synapse").expect_err("nothing listens on port 1");
    assert!(matches!(err, DumpError::Postgres { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("postgresql://postgres@127.0.0.1:1/synapse: connecting"),
        "{message}"
    );
    assert!(!message.contains("secret"));
}
