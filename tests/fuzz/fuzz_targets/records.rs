//! Fuzz target `records`: see `mxstate_fuzz_targets::records`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mxstate_fuzz_targets::records(data));
