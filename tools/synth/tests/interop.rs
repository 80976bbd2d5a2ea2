//! The dump read back by `mxstate_synapse_dump`'s reader and loaded into a
//! real PostgreSQL, where Synapse's own state query resolves it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;

use mxstate_synapse_dump::{DumpReader, PgCluster, Record};
use mxstate_synth::{write_dump, Generator, SynthOptions};

fn opts() -> SynthOptions {
    SynthOptions {
        rooms: 3,
        members: 150,
        seed: 42,
        fork_every: 15,
        ..Default::default()
    }
}

#[test]
fn dump_reader_reads_every_row() {
    let mut out = Vec::new();
    let summary = write_dump(&opts(), &mut out).expect("write_dump");
    let mut counts = [0u64; 4];
    for record in DumpReader::from_bufread("synth", std::io::Cursor::new(out)) {
        let i = match record.expect("record") {
            Record::StateGroup { .. } => 0,
            Record::Edge { .. } => 1,
            Record::StateRow { .. } => 2,
            Record::EventToStateGroup { .. } => 3,
        };
        counts[i] += 1;
    }
    assert_eq!(
        counts,
        [summary.groups, summary.edges, summary.state_rows, summary.events_mapped]
    );
}

/// Synapse's `_get_state_groups_from_groups_txn` query (PostgreSQL flavour).
const STATE_QUERY: &str = "
WITH RECURSIVE sgs(state_group) AS (
    VALUES(GROUP_ID::bigint)
    UNION ALL
    SELECT prev_state_group FROM state_group_edges e, sgs s
    WHERE s.state_group = e.state_group
)
SELECT DISTINCT ON (type, state_key) type, state_key, event_id
FROM state_groups_state
WHERE state_group IN (SELECT state_group FROM sgs)
ORDER BY type, state_key, state_group DESC";

#[test]
fn loads_into_postgres_and_resolves_like_synapse() {
    // PostgreSQL is a test prerequisite (.ci/run installs it): no skipping.
    let cluster = PgCluster::start().expect("start a private PostgreSQL cluster");
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    let summary = write_dump(&opts(), file.as_file_mut()).expect("write_dump");
    file.flush().expect("flush");
    cluster.create_database("synth").expect("create database");
    cluster.psql_file("synth", file.path()).expect("psql loads the dump");
    let mut client = cluster.connect("synth").expect("connect");

    for (table, expected) in [
        ("state_groups", summary.groups),
        ("state_group_edges", summary.edges),
        ("state_groups_state", summary.state_rows),
        ("event_to_state_groups", summary.events_mapped),
    ] {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .expect("count");
        let n: i64 = row.get(0);
        assert_eq!(n as u64, expected, "{table}");
    }
    let row = client
        .query_one("SELECT nextval('state_group_id_seq')", &[])
        .expect("nextval");
    let next: i64 = row.get(0);
    assert_eq!(next, summary.max_group_id + 1);

    // Resolve a sample of groups (every 7th, and each room's last).
    let mut generator = Generator::new(&opts()).expect("generator");
    let mut checked = 0;
    while let Some(group) = generator.next_group() {
        if group.id() % 7 != 0 && !group.is_last_in_room() {
            continue;
        }
        let expected: BTreeMap<(String, String), String> = group
            .state()
            .map(|r| ((r.event_type.to_owned(), r.state_key.to_owned()), r.event_id.to_owned()))
            .collect();
        let sql = STATE_QUERY.replace("GROUP_ID", &group.id().to_string());
        let resolved: BTreeMap<(String, String), String> = client
            .query(&sql, &[])
            .expect("state query")
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect();
        assert_eq!(resolved, expected, "group {}", group.id());
        checked += 1;
    }
    assert!(checked > 50);
}
