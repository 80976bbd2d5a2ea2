//! Fuzz target `filter`: see `mxstate_fuzz_targets::filter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mxstate_fuzz_targets::filter(data));
