//! Helpers for the CLI tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The bundled real Synapse dump.
pub fn fixture() -> PathBuf {
    Path::new(&manifest_dir()).join("../../tests/fixtures/synapse-small.sql.zst")
}

/// The fixture, decompressed.
pub fn fixture_sql() -> String {
    let mut s = String::new();
    zstd::Decoder::new(std::fs::File::open(fixture()).unwrap())
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// Runs `mxstate ARGS`.
pub fn mxstate(args: &[&str]) -> Output {
    Command::cargo_bin("mxstate").unwrap().args(args).output().unwrap()
}

/// Runs `mxstate ARGS` and requires success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = mxstate(args);
    assert!(
        out.status.success(),
        "mxstate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `mxstate ARGS`, requires exit 1 and a one-line error without a
/// panic; returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = mxstate(args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "mxstate {args:?}: stderr {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
    assert!(err.starts_with("mxstate: "), "{err}");
    err
}

/// A path as str.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The package's directory: cargo's at run time (a target directory shared
/// by clones at other paths may hold a binary built in another clone),
/// else the one this was compiled in.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
