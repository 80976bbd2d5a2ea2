//! Fuzz target `ids`: see `mxstate_fuzz_targets::ids`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mxstate_fuzz_targets::ids(data));
