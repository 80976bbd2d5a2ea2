//! Measures DumpReader throughput.
//!
//! `cargo run --release -p mxstate-synapse-dump --example read_speed [ROWS]`
//!
//! Writes a synthetic dump of ROWS (default 2,000,000) `state_groups_state`
//! rows with CopyWriter into a temporary directory, plain and zstd, and
//! reads them back; also reads the repository's fixture.

use std::path::Path;
use std::time::Instant;

use mxstate_synapse_dump::writer::{CopyWriter, Schema};
use mxstate_synapse_dump::{DumpError, DumpReader, Record, Table};

fn measure(label: &str, path: &Path) -> Result<(), DumpError> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let start = Instant::now();
    let mut rows = 0u64;
    let mut key_bytes = 0usize;
    for record in DumpReader::open(path)? {
        if let Record::StateRow { state_key, .. } = record? {
            key_bytes += state_key.len();
        }
        rows += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label:<28} {rows:>9} rows {:>8.1} MB in {secs:>6.3} s = {:>6.2} M rows/s, {:>7.1} MB/s (keys {key_bytes} B)",
        size as f64 / 1e6,
        rows as f64 / secs / 1e6,
        size as f64 / secs / 1e6,
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/synapse-small.sql.zst");
    measure("fixture (zstd, 5431 rows)", &fixture)?;

    let dir = tempfile::tempdir()?;
    let plain = dir.path().join("synthetic.sql");
    let start = Instant::now();
    let mut writer = CopyWriter::new(std::fs::File::create(&plain)?);
    writer.write_prologue(Schema::DataOnly)?;
    writer.begin_table(Table::StateGroupsState)?;
    for i in 0..rows {
        let key = format!("@user{:06}:matrix.example.org", i % 50_000);
        writer.record(&Record::StateRow {
            state_group: (i / 8) as i64,
            room_id: format!("!room{:05}:matrix.example.org", i % 1000),
            event_type: if i % 10 == 0 {
                "m.room.power_levels".into()
            } else {
                "m.room.member".into()
            },
            state_key: if i % 1000 == 0 { format!("tab\t{key}") } else { key },
            event_id: format!("$event{i:016}AbCdEfGhIjKlMnOpQrStUvWx"),
        })?;
    }
    writer.end_table()?;
    writer.finish()?;
    println!("wrote {rows} rows in {:.2} s", start.elapsed().as_secs_f64());

    let zst = dir.path().join("synthetic.sql.zst");
    let mut encoder = zstd::stream::write::Encoder::new(std::fs::File::create(&zst)?, 3)?;
    std::io::copy(&mut std::fs::File::open(&plain)?, &mut encoder)?;
    encoder.finish()?;

    measure("synthetic plain", &plain)?;
    measure("synthetic zstd", &zst)?;
    Ok(())
}
