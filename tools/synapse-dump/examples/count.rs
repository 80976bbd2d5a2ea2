//! Counts the state-table records of a dump (`-` for stdin).
//!
//! `cargo run --release -p mxstate-synapse-dump --example count -- DUMP`

use std::collections::BTreeMap;
use std::path::PathBuf;

use mxstate_synapse_dump::DumpReader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "-".into()));
    let mut reader = DumpReader::open(&path)?;
    let mut counts = BTreeMap::new();
    for record in reader.by_ref() {
        *counts.entry(record?.table()).or_insert(0u64) += 1;
    }
    for (table, count) in counts {
        println!("{table:<24} {count}");
    }
    println!("{} lines, {} input bytes", reader.line(), reader.bytes_read());
    Ok(())
}
