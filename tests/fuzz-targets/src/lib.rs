//! The fuzz targets of mxstate, as plain functions of the input bytes.
//!
//! Each `pub fn TARGET(data: &[u8])` feeds `data` to the code under test
//! and panics only on a real bug: a panic inside that code, an error of the
//! wrong kind, a broken round trip. Inputs that must be refused (bad
//! identifiers, corrupt records, inputs claiming huge lengths) must come
//! back as errors, not panics or huge allocations.
//!
//! Two drivers run them:
//! - `tests/fuzz` (cargo-fuzz, libFuzzer, nightly): one `fuzz_targets/`
//!   file per target, each calling the function here; `tests/fuzz/run`
//!   runs them all;
//! - `cargo test`: `tests/regressions.rs` feeds every file under
//!   `regressions/<target>/` (every input that ever failed, and a few
//!   interesting ones) to its target.
//!
//! | target | code under test |
//! | --- | --- |
//! | [`dump_copy`] | COPY-text decoding, COPY headers, the dump reader on plain SQL |
//! | [`dump_compressed`] | the dump reader on gzip/zstd input, compression sniffing |
//! | [`records`] | every record decoder of the engine's on-disk format |
//! | [`ids`] | room and event id parsers, state keys |
//! | [`filter`] | the `--type TYPE[,KEY]` filter parser and the filter constructors |

mod dump;
mod filter;
mod ids;
mod records;

pub use dump::{dump_compressed, dump_copy};
pub use filter::filter;
pub use ids::ids;
pub use records::{record_input, records};

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name its `tests/fuzz/fuzz_targets/` file and its
/// `regressions/` directory have.
pub const TARGETS: [(&str, Target); 5] = [
    ("dump_copy", dump_copy),
    ("dump_compressed", dump_compressed),
    ("records", records),
    ("ids", ids),
    ("filter", filter),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
}
