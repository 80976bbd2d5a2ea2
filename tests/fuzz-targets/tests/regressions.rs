//! Every input that ever made a fuzz target fail, and a few interesting
//! corpus entries, run through their target: `regressions/<target>/<name>`.
//!
//! A directory whose name is not a target fails the test, so that an input
//! filed under a misspelt or renamed target is not silently skipped.
//!
//! The process's address space is capped ([`ADDRESS_SPACE_LIMIT`]), as
//! libFuzzer's `-malloc_limit_mb` caps one allocation: an input that once
//! made a decoder allocate hundreds of megabytes aborts this test if it
//! does again.

use std::path::Path;

use mxstate_fuzz_targets::{target, TARGETS};

/// Address space allowed to this test process: room for the test harness
/// and the targets on inputs of a few KiB, not for a huge allocation.
const ADDRESS_SPACE_LIMIT: u64 = 768 << 20;

#[test]
fn every_regression_input_passes_its_target() {
    #[cfg(target_os = "linux")]
    rlimit::Resource::AS
        .set(ADDRESS_SPACE_LIMIT, rlimit::INFINITY)
        .expect("caps the address space");
    let root = Path::new(&manifest_dir()).join("regressions");
    let mut ran = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("regressions/ exists")
        .map(|entry| entry.expect("reads regressions/").path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !dir.is_dir() {
            // README and other notes beside the directories.
            continue;
        }
        let run = target(&name).unwrap_or_else(|| {
            let known: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            panic!("regressions/{name}: no such fuzz target (known: {known:?})")
        });
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("reads a target directory")
            .map(|entry| entry.expect("reads a target directory").path())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).expect("reads a regression input");
            eprintln!("{name}: {}", file.display());
            run(&data);
            ran += 1;
        }
    }
    eprintln!("{ran} regression inputs passed");
}

#[test]
fn every_target_has_a_regression_directory() {
    let root = Path::new(&manifest_dir()).join("regressions");
    for (name, _) in TARGETS {
        assert!(root.join(name).is_dir(), "regressions/{name} is missing");
    }
}

/// The package's directory: cargo's at run time (a target directory shared
/// by clones at other paths may hold a binary built in another clone),
/// else the one this was compiled in.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
