//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use mxstate_synapse_dump::{AuthEdge, DumpError, DumpReader, Include, Record, SourceRow, Table};

/// The real Synapse 1.163 dump shipped with the repository.
pub fn fixture() -> PathBuf {
    Path::new(&manifest_dir()).join("../../tests/fixtures/synapse-small.sql.zst")
}

/// The fixture, decompressed.
pub fn fixture_sql() -> Vec<u8> {
    let file = std::fs::File::open(fixture()).expect("fixture exists");
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(file)
        .expect("zstd")
        .read_to_end(&mut out)
        .expect("decompresses");
    out
}

/// All records of a dump, or the first error.
pub fn read_all(path: &Path) -> Result<Vec<Record>, DumpError> {
    DumpReader::open(path)?.collect()
}

/// The `event_auth` rows of a dump read with `Include::StateAndAuth`,
/// sorted, and the number of state records read alongside.
pub fn read_auth(path: &Path) -> Result<(Vec<AuthEdge>, usize), DumpError> {
    let mut reader = DumpReader::open_including(path, Include::StateAndAuth)?;
    let (mut auth, mut state) = (Vec::new(), 0);
    while let Some(row) = reader.next_row() {
        match row? {
            SourceRow::Auth(a) => auth.push(a),
            SourceRow::State(_) => state += 1,
        }
    }
    auth.sort();
    Ok((auth, state))
}

/// The fixture's `event_auth` rows.
pub const FIXTURE_AUTH_ROWS: usize = 3433;

/// Records sorted, to compare as multisets.
pub fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort();
    records
}

/// Number of records per table.
pub fn counts(records: &[Record]) -> BTreeMap<Table, usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        *counts.entry(record.table()).or_default() += 1;
    }
    counts
}

/// The fixture's row counts (synapse-small.stats.txt).
pub fn fixture_counts() -> BTreeMap<Table, usize> {
    BTreeMap::from([
        (Table::StateGroups, 1198),
        (Table::StateGroupEdges, 1186),
        (Table::StateGroupsState, 1977),
        (Table::EventToStateGroups, 1070),
    ])
}

/// The package's directory: cargo's at run time (a target directory shared
/// by clones at other paths may hold a binary built in another clone),
/// else the one this was compiled in.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
