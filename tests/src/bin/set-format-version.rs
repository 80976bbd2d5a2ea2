//! Test tool: rewrites the format version recorded in an mxstate database,
//! to check how a build treats a database of another version.
//!
//! Usage: set-format-version DIR VERSION

use std::path::PathBuf;

use mxstate_engine::kv::{Batch, Cf, KvStore};
use mxstate_rocks::{RocksConfig, RocksKv};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(version)) = (args.get(1), args.get(2).and_then(|v| v.parse::<u32>().ok())) else {
        eprintln!("usage: set-format-version DIR VERSION");
        std::process::exit(2);
    };
    let kv = match RocksKv::open(&PathBuf::from(dir), false, &RocksConfig::default()) {
        Ok(kv) => kv,
        Err(e) => {
            eprintln!("set-format-version: {e}");
            std::process::exit(1);
        }
    };
    let mut b = Batch::default();
    // `meta/format`: the version, u32 little-endian (docs/design.md).
    b.put(Cf::Meta, b"format".to_vec(), version.to_le_bytes().to_vec());
    if let Err(e) = kv.write(b) {
        eprintln!("set-format-version: {e}");
        std::process::exit(1);
    }
}
